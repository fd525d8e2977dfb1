"""Issue 11's hostile-tester findings against the deploy gate, one regression test each: every
test here failed before its fix (a policy requiring nothing, registry bodies, DSSE
keyid hints, an empty trusted tree, endless pages, duplicate keys, unbounded reads, symlinks;
the vulnerability rule's are in ``test_hostile_vex.py``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from attest.dsse import sign_envelope
from tests.verify.conftest import (
    SLSA,
    TEST_RESULT,
    VULNS,
    DemoLedger,
    provenance,
    result_predicate,
    scan,
    statement,
)
from tests.verify.gate import fresh, issue_policy, record_passing, report, sha, verify
from verify.artifact import Artifact
from verify.pipeline import verify_attestations
from verify.policy import load_policy
from verify.trust import Trust

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _artifact(name: str) -> list[Artifact]:
    return [Artifact(name, {"sha256": sha(name).removeprefix("sha256:")})]


def _envelope(demo: DemoLedger, doc: dict[str, Any], signer: Any = None) -> bytes:
    return sign_envelope(json.dumps(doc).encode(), [signer or demo.ci]).to_json()


def test_a_policy_that_requires_nothing_is_refused(demo: DemoLedger, tmp_path: Path) -> None:
    name = fresh()
    demo.append(statement(fresh(), TEST_RESULT, result_predicate()), demo.other)
    demo.append(statement(name, TEST_RESULT, result_predicate()), demo.other)
    policy = demo.policy(
        tmp_path / "p.yaml", steps=[], deny={"vulnerabilities": {"severityAtLeast": "high"}}
    )
    r = verify(sha(name), "--policy", policy, "--ledger", demo.server.url)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert "steps: is empty" in r.stderr + r.stdout  # h35 #3: an empty list is no rule
    doc = yaml.safe_load(policy.read_text())
    del doc["steps"]
    policy.write_text(yaml.safe_dump(doc))
    r = verify(sha(name), "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "requires nothing" in r.stderr + r.stdout


def test_no_trusted_attestation_fails_whatever_the_rules(demo: DemoLedger, tmp_path: Path) -> None:
    """Even a policy that got past validation (built in code) fails without trusted evidence."""
    name = fresh()
    good = load_policy(demo.policy(tmp_path / "p.yaml"))
    policy = good.replace(steps=[], signers={"ci": good.signers["ci"]})
    trust = Trust.load(policy)
    untrusted = Trust.load(policy.replace(signers={}))
    body = _envelope(demo, statement(name, TEST_RESULT, result_predicate()), demo.other)
    other = _envelope(demo, statement(fresh(), TEST_RESULT, result_predicate()))
    for t, bodies in ((untrusted, [body]), (trust, [other, body])):
        out = verify_attestations(policy, t, _artifact(name), bodies, NOW)
        rule = next(r for r in out.rules if r.rule == "trusted evidence")
        assert not rule.passed and name in rule.reason
        assert out.exit_code == 1
    mine = _envelope(demo, statement(name, TEST_RESULT, result_predicate()))
    out = verify_attestations(policy, trust, _artifact(name), [mine], NOW)
    assert out.exit_code == 0 and out.rules[-1].rule == "trusted evidence"


def test_a_keyid_naming_a_trusted_key_does_not_block_deploys(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """A registered signer copies the trusted ci key's keyid into its own envelope: listed as
    not trusted with the reason, and the artifact's real evidence still passes (was exit 4)."""
    name = fresh("keyid")
    record_passing(demo, name)
    ci_keyid = json.loads(_envelope(demo, statement(name, SLSA, {})))["signatures"][0]["keyid"]
    env = json.loads(_envelope(demo, statement(name, VULNS, scan("CVE-1", "Critical")), demo.other))
    env["signatures"][0]["keyid"] = ci_keyid
    r = demo.server.post("/api/v1/entries", demo.append_token, content=json.dumps(env).encode())
    assert r.status_code in (200, 201), r.text
    policy = issue_policy(demo, tmp_path)
    code, doc = report(sha(name), "--policy", policy, "--ledger", demo.server.url)
    assert code == 0, doc
    reasons = [u["reason"] for u in doc["untrusted"]]
    assert any("names trusted signer 'ci'" in why for why in reasons), reasons


def test_a_verifier_that_first_saw_an_empty_ledger_is_not_bricked(
    demo: DemoLedger, tmp_path: Path
) -> None:
    from ledger.storage import LedgerStore
    from tests.ledger.api.server import add_signer, init_ledger, serve, token

    db = f"sqlite:///{tmp_path / 'empty.db'}"
    key = init_ledger(db, tmp_path, register_samples=False)
    append = token(db, tmp_path, "append", "append")
    store = LedgerStore.open(db)
    vkey = store.meta()["vkey"]
    store.close()
    doc = yaml.safe_load(demo.policy(tmp_path / "p.yaml").read_text())
    doc["ledger"] = {"keys": [vkey], "stateDir": str(tmp_path / "state")}
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(doc))
    name = fresh("empty-first")
    with serve(db, tmp_path, key) as srv:
        assert verify(sha(name), "--policy", policy, "--ledger", srv.url).exit_code == 3
        from verify.state import load_trusted

        saved = load_trusted(tmp_path / "state", vkey.split("+")[0], [vkey])
        assert saved is not None and saved.checkpoint.size == 0
        add_signer(db, key, "ci", key=demo.ci_pub.read_bytes())
        for s in (
            statement(name, SLSA, provenance()),
            statement(name, TEST_RESULT, result_predicate()),
        ):
            r = srv.post("/api/v1/entries", append, content=_envelope(demo, s))
            assert r.status_code in (200, 201), r.text
        for source in (("--ledger", srv.url), ("--db", db)):
            r = verify(sha(name), "--policy", policy, *source)
            assert r.exit_code == 0, r.stdout + r.stderr


class _Endless:
    """A hostile ledger: every answer is a page with one entry and a fresh ``next`` cursor."""

    def __init__(self, same_cursor: bool = False, pad: int = 0) -> None:
        import itertools
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        counter = itertools.count()
        entry = {"index": 0, "body": "x" * pad}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                n = 0 if same_cursor else next(counter)
                data = json.dumps({"entries": [entry], "next": f"c{n}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_ledger_that_always_returns_next_pages_is_refused(
    demo: DemoLedger, tmp_path: Path, monkeypatch: Any
) -> None:
    import verify.sources as sources

    policy = demo.policy(tmp_path / "p.yaml")
    monkeypatch.setattr(sources, "MAX_PAGES", 50)
    for hostile, limit in ((_Endless(), "50 pages"), (_Endless(same_cursor=True), "same next")):
        try:
            r = verify(sha(fresh()), "--policy", policy, "--ledger", hostile.url)
        finally:
            hostile.close()
        assert r.exit_code == 3 and limit in r.stderr, r.stderr
    monkeypatch.setattr(sources, "MAX_PAGES", 10_000)
    monkeypatch.setattr(sources, "MAX_EVIDENCE_BYTES", 1 << 20)
    big = _Endless(pad=100_000)
    try:
        r = verify(sha(fresh()), "--policy", policy, "--ledger", big.url)
    finally:
        big.close()
    assert r.exit_code == 3 and "larger than 1048576 bytes" in r.stderr, r.stderr


def test_a_ledger_that_drips_its_answer_is_refused_at_the_deadline(
    demo: DemoLedger, tmp_path: Path, monkeypatch: Any
) -> None:
    """A server that sends its answer a byte at a time, each within the socket timeout, would
    hold a deploy job forever: the whole answer has a deadline (exit 3)."""
    import socket
    import threading
    import time

    import verify.sources as sources

    monkeypatch.setattr(sources, "ANSWER_DEADLINE", 2.0)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            conn.sendall(b"Content-Length: 100000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.2)

    threading.Thread(target=drip, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()
    try:
        r = verify(sha(fresh()), "--policy", demo.policy(tmp_path / "p.yaml"), "--ledger", url)
    finally:
        stop.set()
        listener.close()
    assert r.exit_code == 3 and "did not arrive within 2 s" in r.stderr, r.stderr
    assert time.monotonic() - started < 20


def test_a_policy_with_a_duplicate_key_is_refused(demo: DemoLedger, tmp_path: Path) -> None:
    policy = demo.policy(tmp_path / "p.yaml")
    text = policy.read_text()
    assert verify(sha(fresh()), "--policy", policy, "--db", demo.db).exit_code == 3
    policy.write_text(text + "steps: []\n")  # a second steps: would silently win
    r = verify(sha(fresh()), "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "duplicate key 'steps'" in r.stdout + r.stderr
    nested = text.replace("  signers:\n  - ci\n", "  signers:\n  - ci\n  name: x\n", 1)
    assert nested != text
    policy.write_text(nested)
    r = verify(sha(fresh()), "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "duplicate key 'name'" in r.stdout + r.stderr


def test_third_party_files_are_parsed_strictly_and_kept_exact(
    demo: DemoLedger, tmp_path: Path
) -> None:
    from verify.run import _documents

    policy = issue_policy(demo, tmp_path)
    good = (demo.work / "attestations" / "2-provenance.json").read_bytes()
    assert _documents(good, tmp_path / "x.json") == [good]  # the exact bytes, not re-dumped
    lines = good.strip().replace(b"\n", b" ") + b"\n" + good.strip().replace(b"\n", b" ") + b"\n"
    assert _documents(lines, tmp_path / "x.jsonl") == [line for line in lines.splitlines()]
    twice = good.rstrip()[:-1] + b', "payloadType": "text/plain"}'
    deep = b"[" * 100_000
    for name, data, why in (
        ("dup.json", twice, "duplicate"),
        ("deep.json", deep, "nested deeper"),
        ("dup.jsonl", lines + twice.replace(b"\n", b" ") + b"\n", "duplicate"),
    ):
        (tmp_path / name).write_bytes(data)
        r = verify("attestations", demo.app_zip, "--policy", policy, "--bundle", tmp_path / name)
        assert r.exit_code == 2 and why in r.stdout + r.stderr, (name, r.stdout + r.stderr)


def test_files_are_read_bounded_and_regular_only(demo: DemoLedger, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.pub"
    big.write_bytes(b"#" * ((16 << 20) + 1))
    name = sha(fresh())
    for where, why in (("/dev/zero", "not a regular file"), (fifo, "not a regular file")):
        r = verify(name, "--policy", where, "--db", demo.db)
        assert r.exit_code == 2 and why in r.stderr, r.stderr
        r = verify(name, "--policy", demo.policy(tmp_path / "p.yaml"), "--evidence", where)
        assert r.exit_code == 2 and why in r.stderr, r.stderr
    for key, why in (("/dev/zero", "not a regular file"), (big, "larger than")):
        signers = {"ci": {"key": str(key)}}
        r = verify(
            name, "--policy", demo.policy(tmp_path / "k.yaml", signers=signers), "--db", demo.db
        )
        assert r.exit_code == 2 and why in r.stderr, r.stderr
    sigstore = {"issuer": "https://x", "identity": "a@b", "trustedRoot": "/dev/zero"}
    signers = {"ci": {"key": str(demo.ci_pub)}, "keyless": {"sigstore": sigstore}}
    r = verify(name, "--policy", demo.policy(tmp_path / "s.yaml", signers=signers), "--db", demo.db)
    assert r.exit_code == 2 and "trustedRoot /dev/zero is not a regular file" in r.stderr, r.stderr
    layout = {"file": "/dev/zero", "keys": [str(demo.ci_pub)], "linkDir": str(tmp_path)}
    r = verify(name, "--policy", demo.policy(tmp_path / "l.yaml", layout=layout), "--db", demo.db)
    assert r.exit_code == 2 and "not a regular file" in r.stderr, r.stderr


def test_a_directory_with_a_symlinked_subdirectory_is_refused(
    demo: DemoLedger, tmp_path: Path
) -> None:
    out, hidden = tmp_path / "out", tmp_path / "hidden"
    (out / "sub").mkdir(parents=True)
    hidden.mkdir()
    good, bad = fresh("dir-ok"), fresh("dir-unverified")
    (out / "sub" / good).write_text(good)
    (hidden / bad).write_text(bad)  # nothing in the ledger names it
    record_passing(demo, good)
    policy = demo.policy(tmp_path / "p.yaml")
    assert verify(out, "--policy", policy, "--db", demo.db).exit_code == 0
    (out / "sub" / "linked").symlink_to(hidden, target_is_directory=True)
    r = verify(out, "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "linked is a symlink to a directory" in r.stderr, r.stderr


def test_a_directory_with_a_symlink_to_a_file_outside_is_refused(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """The link ships, not the bytes verified here: a symlink out of the directory (or a dangling
    one) is exit 2; a symlink to a file inside the directory is verified as that file."""
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    good = fresh("dir-linked-ok")
    (out / good).write_text(good)
    record_passing(demo, good)
    outside.write_text(good)  # the same bytes: verified here, whatever is there on the next host
    policy = demo.policy(tmp_path / "p.yaml")
    (out / "inside-link").symlink_to(out / good)
    assert verify(out, "--policy", policy, "--db", demo.db).exit_code == 0
    (out / "escape").symlink_to(outside)
    r = verify(out, "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "escape is a symlink to" in r.stderr, r.stderr
    assert "outside" in r.stderr
    (out / "escape").unlink()
    (out / "dangling").symlink_to(tmp_path / "gone")
    r = verify(out, "--policy", policy, "--db", demo.db)
    assert r.exit_code == 2 and "dangling is a symlink to" in r.stderr, r.stderr


def test_a_deeply_nested_or_duplicate_key_evidence_file_is_exit_2(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = demo.policy(tmp_path / "p.yaml")
    deep, dup = tmp_path / "deep.json", tmp_path / "dup.json"
    deep.write_bytes(b"[" * 100_000)
    dup.write_bytes(b'{"mediaType": "a", "mediaType": "b"}')
    for path, why in ((deep, "nested deeper"), (dup, "duplicate")):
        r = verify(sha(fresh()), "--policy", policy, "--evidence", path)
        assert r.exit_code == 2 and why in r.stderr, r.stderr


def test_a_ledger_behind_the_trusted_checkpoint_is_exit_4_from_every_source(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """A log smaller than one this verifier trusted lost history (or is a stale copy): the same
    consistency failure whether read from its database or from an evidence file."""
    import sqlite3

    name = fresh("behind")
    record_passing(demo, name)
    old = tmp_path / "old.db"
    src, dst = sqlite3.connect(demo.db.removeprefix("sqlite:///")), sqlite3.connect(old)
    src.backup(dst)
    src.close()
    dst.close()
    stale = verify(
        sha(name), "--policy", demo.policy(tmp_path / "p0.yaml"), "--db", f"sqlite:///{old}"
    )
    assert stale.exit_code == 0, stale.stderr
    demo.append(statement(fresh("later"), SLSA, provenance()))
    policy = demo.policy(tmp_path / "p.yaml")
    policy.write_text(policy.read_text().replace("ledger:\n", "ledger:\n  stateDir: state\n", 1))
    assert verify(sha(name), "--policy", policy, "--db", demo.db).exit_code == 0
    r = verify(sha(name), "--policy", policy, "--db", f"sqlite:///{old}")
    assert r.exit_code == 4 and "older" in r.stderr, r.stderr
    evidence = tmp_path / "old.json"
    e = verify("export-evidence", sha(name), "--db", f"sqlite:///{old}", "-o", str(evidence))
    assert e.exit_code == 0, e.stderr
    r = verify(sha(name), "--policy", policy, "--evidence", evidence)
    assert r.exit_code == 4 and "older" in r.stderr, r.stderr
    from tests.ledger.api.server import serve

    with serve(f"sqlite:///{old}", tmp_path, demo.server.key) as stale_server:
        r = verify(sha(name), "--policy", policy, "--ledger", stale_server.url)
    assert r.exit_code == 4 and "older" in r.stderr, r.stderr
