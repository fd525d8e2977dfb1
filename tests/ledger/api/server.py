"""Real `ledger serve` processes on free loopback ports, for the API tests."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.dsse import sign_envelope
from attest.signers import KeySigner

BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
LEDGER = shutil.which("ledger") or str(BIN / "ledger")
ORIGIN = "api.test.example/ledger"
SAMPLE_KEY = ed25519.Ed25519PrivateKey.generate()
TEST_PREDICATE = "https://example.com/api-test/v1"
_serial = itertools.count()


def sample_pub_pem(key: ed25519.Ed25519PrivateKey = SAMPLE_KEY) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signed(n: int, key: ed25519.Ed25519PrivateKey = SAMPLE_KEY) -> list[bytes]:
    """``n`` new, distinct in-toto Statements in DSSE envelopes signed with ``key``."""
    signer = KeySigner(key)
    out = []
    for _ in range(n):
        name = f"artifact-{os.getpid()}-{next(_serial)}.tar.gz"
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {"name": name, "digest": {"sha256": hashlib.sha256(name.encode()).hexdigest()}}
            ],
            "predicateType": TEST_PREDICATE,
            "predicate": {"n": name},
        }
        out.append(sign_envelope(json.dumps(statement).encode(), [signer]).to_json())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(extra)
    return env


def run_ledger(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with only the ``LEDGER_*`` variables in ``env``."""
    return subprocess.run(
        [LEDGER, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=120,
        check=False,
    )


def ledger_cli(workdir: Path, *args: str) -> str:
    p = run_ledger(workdir, *args)
    assert p.returncode == 0, p.stderr
    return p.stdout


def init_ledger(db: str, workdir: Path, register_samples: bool = True) -> Path:
    """A new ledger (CLI), with ``SAMPLE_KEY`` registered as signer ``samples`` (library)."""
    key = workdir / "checkpoint.key"
    ledger_cli(workdir, "init", "--origin", ORIGIN, "--db", db, "--key-file", str(key))
    if register_samples:
        add_signer(db, key, "samples", key=sample_pub_pem())
    return key


def add_signer(db: str, checkpoint_key: Path, name: str, **spec: object) -> None:
    """Log a signer through the library, with the admin key ``ledger init`` wrote."""
    from ledger.log import Ledger
    from ledger.registry import add_signer as add
    from ledger.registry import make_spec
    from ledger.registry.admin import admin_key_path, load_admin_key

    admin = load_admin_key(admin_key_path(checkpoint_key))
    with Ledger.open(db, checkpoint_key) as ledger:
        add(ledger, make_spec(name, now=ledger.now(), **spec), admin)  # type: ignore[arg-type]


def token(db: str, workdir: Path, name: str, *scopes: str) -> str:
    """A new token, made in-process (the CLI has its own test; each CLI start costs seconds)."""
    from ledger._internal.db import upgrade_schema
    from ledger.log import utc_now
    from ledger.storage import LedgerStore
    from ledger.tokens import Tokens

    store = LedgerStore.open(db)
    try:
        upgrade_schema(store.engine)
        return Tokens(store.engine, utc_now).create(name, scopes)
    finally:
        store.close()


@dataclass
class Server:
    url: str
    db: str
    key: Path
    proc: subprocess.Popen[bytes]

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)  # type: ignore[arg-type]

    def post(self, path: str, tok: str | None = None, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.post(self.url + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


@contextmanager
def serve(db: str, workdir: Path, key: Path, **env: str) -> Iterator[Server]:
    """Start `ledger serve` and wait until /healthz answers; stop it afterwards."""
    port = free_port()
    log = (workdir / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [
            LEDGER,
            "serve",
            "--db",
            db,
            "--key-file",
            str(key),
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(LEDGER_TOKEN_CACHE_SECONDS="0", **env),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, workdir / f"serve-{port}.log")
        yield Server(url, db, key, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ledger serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"ledger serve did not become healthy: {log.read_text()}")
