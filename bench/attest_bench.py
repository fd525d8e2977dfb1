"""Benchmarks for attest (issue 3): statements built and signed per second (Ed25519), and DSSE
verifications per second against this machine's raw Ed25519 verify rate (the ceiling)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.build import provenance_statement
from attest.collect.ci import detect_ci
from attest.collect.git import GitInfo, Person
from attest.dsse import Envelope, sign_envelope, verify_envelope
from attest.predicates import parse_predicate
from attest.signers import KeySigner
from attest.statement import ResourceDescriptor, parse_statement

GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "example/app",
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_SHA": "a" * 40,
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_WORKFLOW_REF": "example/app/.github/workflows/release.yml@refs/heads/main",
    "GITHUB_EVENT_NAME": "push",
}


def _rates(
    fns: dict[str, tuple[Callable[[int], None], int]], rounds: int = 7
) -> dict[str, dict[str, float]]:
    """Interleaved: each round runs every loop once, so machine drift hits them alike."""
    seen: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, (fn, n) in fns.items():
            t = time.perf_counter()
            fn(n)
            seen[name].append(n / (time.perf_counter() - t))
    return {
        name: {"median_per_s": round(statistics.median(r)), "min_per_s": round(min(r))}
        for name, r in seen.items()
    }


def _statement(i: int):  # type: ignore[no-untyped-def]
    when = datetime(2026, 11, 28, tzinfo=UTC)
    person = Person("Ada", "ada@example.com", "2026-11-28T00:00:00Z")
    git = GitInfo("a" * 40, "main", (), person, person, "https://github.com/example/app", False)
    deps = [
        ResourceDescriptor(
            name=f"dep{j}", uri=f"pkg:pypi/dep{j}@1.{j}.0", digest={"sha256": f"{j:064x}"}
        )
        for j in range(10)
    ]
    return provenance_statement(
        subjects=[ResourceDescriptor(name=f"dist/app-{i}.whl", digest={"sha256": f"{i:064x}"})],
        ci=detect_ci(GITHUB),
        git=git,
        dependencies=deps,
        started_on=when,
        finished_on=when + timedelta(minutes=3),
    )


def attest_sign_verify(n: int = 4000) -> dict[str, object]:
    signer = KeySigner(ed25519.Ed25519PrivateKey.generate())
    public = signer.public_key
    sample = sign_envelope(_statement(0).to_json(), [signer])
    raw_envelope = sample.to_json()
    message = sample.pae()
    sig = sample.signatures[0].sig
    crypto_key = public.key
    assert isinstance(crypto_key, ed25519.Ed25519PublicKey)

    def raw_verify(k: int) -> None:
        for _ in range(k):
            crypto_key.verify(sig, message)

    def envelope_verify(k: int) -> None:
        for _ in range(k):
            verify_envelope(sample, [public])

    def parse_and_verify(k: int) -> None:
        for _ in range(k):
            v = verify_envelope(Envelope.from_json(raw_envelope), [public])
            st = parse_statement(v.payload)
            parse_predicate(st.predicate_type, st.predicate)

    def build_and_sign(k: int) -> None:
        for i in range(k):
            sign_envelope(_statement(i).to_json(), [signer]).to_json()

    r = _rates(
        {
            "raw": (raw_verify, n),
            "env": (envelope_verify, n),
            "full": (parse_and_verify, n),
            "signed": (build_and_sign, n // 2),
        }
    )
    raw, env, full, signed = r["raw"], r["env"], r["full"], r["signed"]
    return {
        "envelope_bytes": len(raw_envelope),
        "raw_ed25519_verify": raw,
        "dsse_verify": env,
        "dsse_parse_verify_statement": full,
        "statements_built_and_signed": signed,
        "dsse_verify_vs_raw": round(env["median_per_s"] / raw["median_per_s"], 2),
        "full_verify_vs_raw": round(full["median_per_s"] / raw["median_per_s"], 2),
    }
