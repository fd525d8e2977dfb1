"""`materialsFrom` across artifacts: the package step's subject is the artifact and its materials
name the build's output, which the build's attestation names under its own digest. `verify`
follows the materials to their own proved records (same checkpoint), from a ledger, a database
and an exported evidence file; a material without such a record, one signed by a signer the
step does not allow, one recorded after `--at`, and a tampered one do not count or fail."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.verify.conftest import BUILDER, SLSA, DemoLedger, digest_of, provenance, statement
from tests.verify.gate import fresh, report, sha, verify

PACKAGE = "https://example.com/package/v1"


def _policy(demo: DemoLedger, where: Path) -> Path:
    steps = [
        {"name": "build", "predicateType": SLSA, "signers": ["ci"], "builderId": BUILDER},
        {"name": "package", "predicateType": PACKAGE, "signers": ["ci"], "materialsFrom": "build"},
    ]
    return demo.policy(where / "policy.yaml", steps=steps)


def _package(demo: DemoLedger, *materials: str) -> str:
    """A package of ``materials`` (names), signed by CI; its name."""
    name = fresh("pkg")
    pred = {"materials": [{"uri": m, "digest": {"sha256": digest_of(m)}} for m in materials]}
    demo.append(statement(name, PACKAGE, pred))
    return name


def _rule(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["rule"] == name)


def test_the_build_of_a_material_is_followed(demo: DemoLedger, tmp_path: Path) -> None:
    binary = fresh("bin")
    built = demo.append(statement(binary, SLSA, provenance()))
    pkg = _package(demo, binary)
    policy = _policy(demo, tmp_path)
    for source in (("--ledger", demo.server.url), ("--db", demo.db)):
        code, doc = report(sha(pkg), "--policy", policy, *source)
        assert code == 0, doc["rules"]
        assert built in _rule(doc, "step build")["records"]
        chain = _rule(doc, "step package materials from build")
        assert chain["passed"] and f"record {built}" in chain["reason"]
        assert [a["predicateType"] for a in doc["attestations"]] == [PACKAGE]  # the artifact's
    out = tmp_path / "evidence.json"
    r = verify("export-evidence", sha(pkg), "--ledger", demo.server.url, "-o", out)
    assert r.exit_code == 0, r.stderr
    exported = json.loads(out.read_text())
    assert built in [e["index"] for e in exported["entries"]]
    code, doc = report(sha(pkg), "--policy", policy, "--evidence", out)
    assert code == 0, doc["rules"]
    # the same material's record, tampered in the file: a proof failure, exit 4
    entry = next(e for e in exported["entries"] if e["index"] == built)
    body = json.loads(base64.b64decode(entry["body"]))
    body["payload"] = base64.b64encode(b'{"forged": true}').decode()
    entry["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    (tmp_path / "tampered.json").write_text(json.dumps(exported))
    code, doc = report(sha(pkg), "--policy", policy, "--evidence", tmp_path / "tampered.json")
    assert code == 4 and "altered" in doc["error"]


def test_a_material_without_a_trusted_build_does_not_count(
    demo: DemoLedger, tmp_path: Path
) -> None:
    policy = _policy(demo, tmp_path)
    unbuilt = _package(demo, fresh("bin"))
    code, doc = report(sha(unbuilt), "--policy", policy, "--ledger", demo.server.url)
    assert code == 1
    assert not _rule(doc, "step build")["passed"]
    assert not _rule(doc, "step package materials from build")["passed"]
    binary = fresh("bin")  # built, but signed by a signer the build step does not allow
    demo.append(statement(binary, SLSA, provenance()), demo.other)
    code, doc = report(sha(_package(demo, binary)), "--policy", policy, "--db", demo.db)
    assert code == 1 and not _rule(doc, "step build")["passed"]
    binary = fresh("bin")  # built by another builder: the build step's constraints apply
    demo.append(statement(binary, SLSA, provenance("https://evil.example/builder")))
    code, doc = report(sha(_package(demo, binary)), "--policy", policy, "--db", demo.db)
    assert code == 1 and "is not" in _rule(doc, "step build")["reason"]


def test_a_material_built_after_at_does_not_count(demo: DemoLedger, tmp_path: Path) -> None:
    binary = fresh("bin")
    pkg = _package(demo, binary)
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    demo.append(statement(binary, SLSA, provenance()))
    policy = _policy(demo, tmp_path)
    assert verify(sha(pkg), "--policy", policy, "--db", demo.db).exit_code == 0
    code, doc = report(sha(pkg), "--policy", policy, "--db", demo.db, "--at", at)
    assert code == 1 and not _rule(doc, "step build")["passed"]


def test_third_party_materials_are_followed_among_the_bundles(
    demo: DemoLedger, tmp_path: Path
) -> None:
    from attest.dsse import sign_envelope

    binary, pkg = fresh("bin"), fresh("pkg")
    pred = {"materials": [{"uri": binary, "digest": {"sha256": digest_of(binary)}}]}
    for path, st in (
        (tmp_path / "build.json", statement(binary, SLSA, provenance())),
        (tmp_path / "package.json", statement(pkg, PACKAGE, pred)),
    ):
        path.write_bytes(sign_envelope(json.dumps(st).encode(), [demo.ci]).to_json())
    policy = _policy(demo, tmp_path)
    both = ("--bundle", tmp_path / "build.json", "--bundle", tmp_path / "package.json")
    code, doc = report("attestations", sha(pkg), "--policy", policy, *both)
    assert code == 0, doc["rules"]
    assert (
        "about the materials' own digests"
        in _rule(doc, "step package materials from build")["reason"]
    )
    code, doc = report("attestations", sha(pkg), "--policy", policy, *both[2:])
    assert code == 1 and not _rule(doc, "step build")["passed"]


def test_the_state_moves_only_once_the_materials_proved_too(
    demo: DemoLedger, tmp_path: Path, monkeypatch: Any
) -> None:
    """A run whose materials step fails (exit 4) keeps the verifier's state where it was: the
    trusted checkpoint is replaced only when every proof of a run held."""
    import verify.material_chain
    from verify.errors import ConsistencyFailure

    binary = fresh("bin")
    demo.append(statement(binary, SLSA, provenance()))
    pkg = _package(demo, binary)
    policy = _policy(demo, tmp_path)
    policy.write_text(policy.read_text().replace("ledger:\n", "ledger:\n  stateDir: state\n", 1))

    def refused(*_: Any) -> None:
        raise ConsistencyFailure("the ledger answered the materials from another checkpoint")

    with monkeypatch.context() as m:
        m.setattr(verify.material_chain, "follow_materials", refused)
        code, _ = report(sha(pkg), "--policy", policy, "--db", demo.db)
    assert code == 4
    assert not any((tmp_path / "state").glob("*")), "the state moved on a failed run"
    code, _ = report(sha(pkg), "--policy", policy, "--db", demo.db)
    assert code == 0 and any((tmp_path / "state").glob("*"))


def _two_builders(demo: DemoLedger, where: Path) -> Path:
    """build: ci and other, threshold 2; package (ci): materialsFrom build."""
    steps = [
        {"name": "build", "predicateType": SLSA, "signers": ["ci", "other"], "threshold": 2},
        {"name": "package", "predicateType": PACKAGE, "signers": ["ci"], "materialsFrom": "build"},
    ]
    return demo.policy(where / "policy.yaml", steps=steps)


def test_a_threshold_is_met_per_material_not_across_them(demo: DemoLedger, tmp_path: Path) -> None:
    """Regression (h33 r06): `ci` (compromised) builds evil.bin and packages [evil.bin, lib.so];
    `other` only ever attested lib.so. Two distinct signers there are, but on different
    materials: no material reaches the threshold of 2, so neither row may pass."""
    evil, lib = fresh("evil"), fresh("lib")
    demo.append(statement(evil, SLSA, provenance()), demo.ci)
    demo.append(statement(lib, SLSA, provenance()), demo.other)
    policy = _two_builders(demo, tmp_path)
    for pkg in (_package(demo, evil, lib), _package(demo, evil)):
        code, doc = report(sha(pkg), "--policy", policy, "--db", demo.db)
        assert code == 1, doc["rules"]
        build = _rule(doc, "step build")
        assert not build["passed"] and f"material {evil}: 1 of 2" in build["reason"], build
        chain = _rule(doc, "step package materials from build")
        assert not chain["passed"] and f"material {evil} is no product" in chain["reason"]
    # the same material signed by both (one record each, or one record signed by both): met
    demo.append(statement(evil, SLSA, provenance()), demo.other)
    both = fresh("both")
    demo.append(statement(both, SLSA, provenance()), demo.ci, demo.other)
    code, doc = report(sha(_package(demo, evil, both)), "--policy", policy, "--db", demo.db)
    assert code == 0, doc["rules"]
    assert "on each of its 2 material(s)" in _rule(doc, "step build")["reason"]
    # ... and a material of the package no build made is not a product: the package fails
    code, doc = report(sha(_package(demo, evil, both, lib)), "--policy", policy, "--db", demo.db)
    assert code == 1 and f"material {lib}: 1 of 2" in _rule(doc, "step build")["reason"]


def test_every_material_must_be_a_product(demo: DemoLedger, tmp_path: Path) -> None:
    """With threshold 1 too: a package listing one built material and one nobody built fails
    the materialsFrom row (in-toto's MATCH * WITH PRODUCTS FROM build, then DISALLOW *)."""
    built, stray = fresh("bin"), fresh("stray")
    demo.append(statement(built, SLSA, provenance()))
    policy = _policy(demo, tmp_path)
    assert verify(sha(_package(demo, built)), "--policy", policy, "--db", demo.db).exit_code == 0
    code, doc = report(sha(_package(demo, built, stray)), "--policy", policy, "--db", demo.db)
    assert code == 1
    chain = _rule(doc, "step package materials from build")
    assert not chain["passed"] and f"material {stray} is no product" in chain["reason"], chain


def _sha512(name: str) -> str:
    import hashlib

    return hashlib.sha512(name.encode()).hexdigest()


def _by_sha512(name: str) -> dict[str, Any]:
    """A build provenance whose only subject names ``name`` by its SHA-512."""
    st = statement(name, SLSA, provenance())
    st["subject"] = [{"name": name, "digest": {"sha512": _sha512(name)}}]
    return st


def _package_of(demo: DemoLedger, *materials: dict[str, Any]) -> str:
    """A package (signed by CI) whose materials are exactly ``materials``; its name."""
    name = fresh("pkg")
    demo.append(statement(name, PACKAGE, {"materials": list(materials)}))
    return name


def test_a_threshold_is_met_on_one_digest_not_across_algorithms(
    demo: DemoLedger, tmp_path: Path
) -> None:
    """Regression (h35 a03): `ci` (compromised) builds evil.bin (SHA-256 subject); `other` only
    ever attested lib.so, by its SHA-512. A package material pairing evil.bin's SHA-256 with
    lib.so's SHA-512 has two distinct builders, each on another artifact: no one (algorithm,
    value) pair has two, so the threshold of 2 is not met and the gate fails."""
    evil, lib = fresh("evil"), fresh("lib")
    demo.append(statement(evil, SLSA, provenance()), demo.ci)
    demo.append(_by_sha512(lib), demo.other)
    policy = _two_builders(demo, tmp_path)
    forged = {"uri": evil, "digest": {"sha256": digest_of(evil), "sha512": _sha512(lib)}}
    code, doc = report(sha(_package_of(demo, forged)), "--policy", policy, "--db", demo.db)
    assert code == 1, doc["rules"]
    build = _rule(doc, "step build")
    assert not build["passed"] and f"material {evil}: 1 of 2" in build["reason"], build
    chain = _rule(doc, "step package materials from build")
    assert not chain["passed"] and "never add up" in chain["reason"], chain
    # a digest an accepted subject contradicts (evil's SHA-256 with another SHA-512): two
    # artifacts in one material, refused even where one pair alone would meet the threshold
    demo.append(statement(evil, SLSA, provenance()), demo.other)
    assert verify(sha(_package(demo, evil)), "--policy", policy, "--db", demo.db).exit_code == 0
    twin = dict(statement(evil, SLSA, provenance()))
    twin["subject"] = [{"name": evil, "digest": {"sha256": digest_of(evil), "sha512": "ab" * 64}}]
    demo.append(twin, demo.other)
    code, doc = report(sha(_package_of(demo, forged)), "--policy", policy, "--db", demo.db)
    assert code == 1, doc["rules"]
    assert "two different artifacts" in _rule(doc, "step build")["reason"]


def test_a_material_named_by_sha512_or_by_both_digests(demo: DemoLedger, tmp_path: Path) -> None:
    """Legitimate materials: one named only by its SHA-512 (threshold 1, built under SHA-512),
    and one listing the SHA-256 and SHA-512 of the same bytes, built by both builders under
    SHA-256 (threshold 2: met on that one pair)."""
    lib = fresh("lib")
    demo.append(_by_sha512(lib), demo.ci)
    policy = _policy(demo, tmp_path)
    pkg = _package_of(demo, {"uri": lib, "digest": {"sha512": _sha512(lib)}})
    code, doc = report(sha(pkg), "--policy", policy, "--db", demo.db)
    assert code == 0, doc["rules"]
    both = fresh("both")
    demo.append(statement(both, SLSA, provenance()), demo.ci)
    demo.append(statement(both, SLSA, provenance()), demo.other)
    pkg = _package_of(
        demo, {"uri": both, "digest": {"sha256": digest_of(both), "sha512": _sha512(both)}}
    )
    code, doc = report(sha(pkg), "--policy", _two_builders(demo, tmp_path), "--db", demo.db)
    assert code == 0, doc["rules"]
    assert (
        "signed by ci, other (threshold 2) on each of its 1" in _rule(doc, "step build")["reason"]
    )
