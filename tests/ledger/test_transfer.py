"""``ledger import`` as a library, on both backends: pinned key, one read, one transaction."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from attest.signers import KeySigner
from ledger.errors import IntegrityError, InvalidInput
from ledger.fsck import check_ledger
from ledger.log import Ledger, utc_now
from ledger.note import NoteSigner, NoteVerifier, generate_key, parse_verifier
from ledger.record import BodyType
from ledger.transfer import import_jsonl
from tests.conftest import envelope
from tests.ledger.exports import (
    EMPTY,
    ORIGIN,
    export_to,
    forge_export,
    stored_counts,
)


@pytest.fixture
def ledger(db_url: str, key_path: Path, admin: KeySigner) -> Iterator[Ledger]:
    """The import target: empty, same origin and admin key as ``source``."""
    with Ledger.create(db_url, ORIGIN, key_path, admin_key=admin) as lg:
        yield lg


def _verifier(signer: NoteSigner) -> NoteVerifier:
    return parse_verifier(signer.verifier_key())


def _import(target: Ledger, path: Path, source: Ledger) -> int:
    with path.open("rb") as src:
        return import_jsonl(target, src, source.verifier, utc_now)


def test_export_import_round_trip_gives_the_same_root_and_passes_check(
    source: Ledger, ledger: Ledger, tmp_path: Path
) -> None:
    assert _import(ledger, export_to(source, tmp_path / "out.jsonl"), source) == 6
    assert check_ledger(ledger.store).root == source.checkpoint().checkpoint.root_hash
    assert ledger.store.records(0, 6) == source.store.records(0, 6)


def test_export_of_an_empty_ledger_imports_as_an_empty_ledger(
    ledger: Ledger, tmp_path: Path
) -> None:
    with Ledger.create(f"sqlite:///{tmp_path / 'e.db'}", ORIGIN, tmp_path / "e.key") as empty:
        assert _import(ledger, export_to(empty, tmp_path / "empty.jsonl"), empty) == 0
    assert stored_counts(ledger) == EMPTY
    check_ledger(ledger.store)


def test_export_signed_by_a_fresh_key_for_the_same_origin_is_refused_with_the_real_key_pinned(
    source: Ledger, ledger: Ledger, tmp_path: Path
) -> None:
    forged = forge_export(tmp_path / "forged.jsonl", generate_key(ORIGIN), [(envelope(1), "dsse")])
    with pytest.raises(IntegrityError, match="does not verify with the pinned key"):
        _import(ledger, forged, source)
    assert stored_counts(ledger) == EMPTY


def test_import_pinned_to_a_key_of_another_origin_is_refused(
    ledger: Ledger, tmp_path: Path
) -> None:
    other = generate_key("other.example/log")
    path = forge_export(tmp_path / "x.jsonl", generate_key(ORIGIN), [(envelope(1), "dsse")])
    with path.open("rb") as src, pytest.raises(InvalidInput, match="pinned key is named"):
        import_jsonl(ledger, src, _verifier(other), utc_now)
    assert stored_counts(ledger) == EMPTY


def test_root_mismatch_after_a_thousand_records_were_inserted_leaves_nothing_behind(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The file holds 1500 good records, but its checkpoint covers 1501: refused at the very end,
    after whole batches were written inside the transaction — and all of it rolled back."""
    key = generate_key(ORIGIN)
    bodies: list[tuple[bytes, BodyType]] = [(envelope(i), "dsse") for i in range(1500)]
    path = forge_export(tmp_path / "short.jsonl", key, bodies, signed_size=1501)
    with path.open("rb") as src, pytest.raises(IntegrityError, match="does not match"):
        # unsigned bodies: this tests the root check, not trust (tests/ledger/test_trust.py)
        import_jsonl(ledger, src, _verifier(key), utc_now, allow_untrusted=True)
    assert stored_counts(ledger) == EMPTY
    check_ledger(ledger.store)


class _StalledSource(io.BytesIO):
    """An export that, once the import is past its header, stalls until an append has landed
    (or 10 seconds have passed)."""

    def __init__(self, data: bytes, importing: threading.Event, appended: threading.Event):
        super().__init__(data)
        self.lines, self.importing, self.appended = 0, importing, appended
        self.append_landed_mid_import: bool | None = None

    def readline(self, size: int | None = -1, /) -> bytes:
        self.lines += 1
        if self.lines == 3:  # record 1: the import is reading
            self.importing.set()
            self.append_landed_mid_import = self.appended.wait(10)
        return super().readline(size)


def test_stalled_import_input_holds_no_lock_an_append_lands_and_the_import_is_refused_whole(
    source: Ledger, ledger: Ledger, db_url: str, key_path: Path, tmp_path: Path
) -> None:
    """Import reads and verifies the whole file before it takes the writer's lock: a stalled
    pipe must not stall every writer (it did: the append waited for the pipe, or timed out)."""
    data = export_to(source, tmp_path / "out.jsonl").read_bytes()
    importing, appended = threading.Event(), threading.Event()
    indices: list[int] = []

    def append() -> None:
        importing.wait(30)
        with Ledger.open(db_url, key_path) as other:
            indices.append(other.append(envelope(7)).index)
        appended.set()

    appender = threading.Thread(target=append)
    appender.start()
    src = _StalledSource(data, importing, appended)
    with pytest.raises(InvalidInput, match="needs an empty ledger"):
        import_jsonl(ledger, src, source.verifier, utc_now)
    appender.join(60)
    assert src.append_landed_mid_import is True
    assert indices == [0]
    assert check_ledger(ledger.store).records == 1


def test_import_into_a_ledger_an_append_reached_first_is_refused_whole(
    source: Ledger, ledger: Ledger, tmp_path: Path
) -> None:
    path = export_to(source, tmp_path / "out.jsonl")
    ledger.append(envelope(7))
    before = stored_counts(ledger)
    with pytest.raises(InvalidInput, match="needs an empty ledger"):
        _import(ledger, path, source)
    # the same refusal under the write lock, for an append that lands after the first look
    with pytest.raises(InvalidInput, match="needs an empty ledger"):
        ledger.store.import_records(
            iter([]), ORIGIN, ledger.require_signer(), utc_now, root=b"\0" * 32
        )
    assert stored_counts(ledger) == before
    assert check_ledger(ledger.store).records == 1


_BUNDLE_MEDIA = b'"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"'
_NOT_JSON = os.urandom(16)  # never valid UTF-8 JSON
BAD_BODIES: dict[str, tuple[bytes, BodyType, str]] = {
    "3.6MB-non-JSON-body-labelled-sigstore-bundle": (
        b"\x00" * 3_600_000,
        "sigstore-bundle",
        "longer than",
    ),
    "body-over-1MiB-within-the-line-cap": (
        b'{"payloadType": "x", "pad": "' + b"a" * (1 << 20) + b'"}',
        "dsse",
        "the limit is",
    ),
    "non-JSON-body-labelled-sigstore-bundle": (b"\xff" + _NOT_JSON, "sigstore-bundle", "not UTF-8"),
    "dsse-envelope-labelled-sigstore-bundle": (
        envelope(1),
        "sigstore-bundle",
        "the leaf says sigstore-bundle but the body is dsse",
    ),
    "bundle-without-verificationMaterial": (
        b"{" + _BUNDLE_MEDIA + b"}",
        "sigstore-bundle",
        "verificationMaterial",
    ),
    "deeply-nested-JSON-body": (b"[" * 100_000 + b"]" * 100_000, "dsse", "nested deeper than"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_import_of_a_body_append_would_refuse_is_refused_and_writes_nothing(
    case: str, ledger: Ledger, tmp_path: Path
) -> None:
    body, kind, message = BAD_BODIES[case]
    key = generate_key(ORIGIN)
    good: tuple[bytes, BodyType] = (envelope(0), "dsse")
    path = forge_export(tmp_path / "bad.jsonl", key, [good, (body, kind)])
    with path.open("rb") as src, pytest.raises(InvalidInput, match=message) as err:
        # the shape checks append applies; trust comes after them (tests/ledger/test_trust.py)
        import_jsonl(ledger, src, _verifier(key), utc_now, allow_untrusted=True)
    assert "\n" not in str(err.value)
    assert stored_counts(ledger) == EMPTY
