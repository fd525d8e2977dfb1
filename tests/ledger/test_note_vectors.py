"""Every case of fixtures/checkpoints gives its upstream verdict (C2SP signed notes, checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import (
    Checkpoint,
    note_from_rfc6962_sth,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from ledger.errors import CheckpointError, Error, NoteError
from ledger.note import (
    generate_key,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
    unverified_signatures,
)
from tests.conftest import FIXTURES, fixture_cases, needs_fixtures

BASE = FIXTURES / "checkpoints"
BODY_VECTORS = ("transparency-dev-formats", "checkpoint-body-parse-vectors.json")


def load_cases(base: Path = BASE) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((base / "vectors.json").read_text())["cases"]
    return cases


ARGON_ORIGIN = "ct.googleapis.com/logs/us1/argon2024"


def _run(case: dict[str, Any]) -> None:
    raw = (BASE / case["note"]).read_bytes()
    if case["expect"] in ("parse", "parse-fail"):
        if case["note"].startswith("golang-sumdb-tlog/"):
            # sumdb tlog.ParseTree: an unsigned body whose origin must be the go.sum tree's
            cp = parse_checkpoint(raw.decode())
            if cp.origin != "go.sum database tree" or len(cp.root_hash) != 32:
                raise CheckpointError("not a go.sum tree")
        else:
            text, _ = unverified_signatures(raw)
            cp = parse_checkpoint(text)
        want = case.get("want", {})
        assert cp.size == want.get("size", cp.size)
        assert cp.origin == want.get("origin", cp.origin)
        if "root_hash_b64" in want:
            import base64

            assert cp.root_hash == base64.b64decode(want["root_hash_b64"])
        return
    verifiers = [parse_verifier(k) for k in case["verifier_keys"]]
    if case["note"].endswith(".json"):
        raw = note_from_rfc6962_sth(raw, ARGON_ORIGIN, verifiers[0].key_hash).encode()
    if "expected_origin" in case:
        open_checkpoint(raw, verifiers, case["expected_origin"])
    else:
        open_note(raw, verifiers)


@pytest.mark.parametrize(
    "case", fixture_cases(("checkpoints",), load_cases, ids=lambda c: str(c["id"]))
)
def test_vector(case: dict[str, Any]) -> None:
    if case["expect"] in ("verify", "parse"):
        _run(case)
    else:
        with pytest.raises(Error):
            _run(case)


@needs_fixtures("checkpoints")
def test_all_vectors_are_covered() -> None:
    cases = load_cases()
    assert len(cases) >= 29
    assert {c["expect"] for c in cases} == {"verify", "fail", "parse", "parse-fail"}


@needs_fixtures("checkpoints")
def test_deterministic_sign_reproduces_note_byte_for_byte() -> None:
    case = next(c for c in load_cases() if "skey" in c)
    signer = parse_signer(case["skey"])
    note = sign_note(case["deterministic_sign_from_text"], signer)
    assert note.encode() == (BASE / case["note"]).read_bytes()
    assert signer.verifier_key() == case["verifier_keys"][0]


@needs_fixtures("checkpoints", "golang-sumdb-note")
def test_verified_and_unverified_signatures_are_reported() -> None:
    raw = (BASE / "golang-sumdb-note" / "peter+enoch.note").read_bytes()
    keys = json.loads((BASE / "golang-sumdb-note" / "keys.json").read_text())
    note = open_note(raw, [parse_verifier(keys["PeterNeumann.vkey"])])
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    assert [s.name for s in note.unverified] == ["EnochRoot"]


@pytest.mark.parametrize(
    "case",
    fixture_cases(
        ("checkpoints", *BODY_VECTORS),
        lambda path: json.loads(path.read_text())["cases"],
        ids=lambda c: str(c["desc"]),
    ),
)
def test_checkpoint_body_vector(case: dict[str, Any]) -> None:
    if case["wantErr"]:
        with pytest.raises(CheckpointError):
            parse_checkpoint(case["body"])
    else:
        assert parse_checkpoint(case["body"]).origin


def test_own_checkpoints_round_trip_and_refuse_tampering() -> None:
    signer = generate_key("test.example/log")
    verifier = parse_verifier(signer.verifier_key())
    cp = Checkpoint("test.example/log", 42, bytes(range(32)))
    note = sign_checkpoint(cp, signer)
    assert open_checkpoint(note, [verifier], "test.example/log").checkpoint == cp
    with pytest.raises(NoteError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), [verifier], "test.example/log")
    with pytest.raises(CheckpointError):
        open_checkpoint(note, [verifier], "other.example/log")
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint("other.example/log", 1, bytes(32)), signer)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name+00000000",
        "na me+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+c74f20a3+CRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown alg
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier(vkey)
