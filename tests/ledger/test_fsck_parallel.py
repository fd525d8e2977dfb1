"""``ledger check`` in worker processes names the same first bad index as one pass would.

A 100,000-record ledger (seven ranges of 2^14 records) is built once per session through the
store's import path and copied per test; each test tampers with one thing, in the middle, across
a range boundary, or at the very end, and asserts the exact index and message, with the records
checked by two worker processes and in this process alone.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bench.big_ledger import body, build
from ledger.errors import IntegrityError
from ledger.fsck import RANGE, check_ledger
from ledger.log import Ledger
from ledger.record import Record
from tests.conftest import fresh_pg_schema
from tests.ledger.test_fsck import _tamper

N = 100_000
BOUNDARY = 3 * RANGE  # the first record of the fourth range
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("big")
    build(f"sqlite:///{d / 'big.db'}", d / "big.key", N)
    return d


@pytest.fixture
def big(big_source: Path, tmp_path: Path) -> Iterator[Ledger]:
    for f in big_source.iterdir():
        shutil.copy(f, tmp_path / f.name)
    with Ledger.open(f"sqlite:///{tmp_path / 'big.db'}") as lg:
        yield lg


def _both(lg: Ledger) -> tuple[str, int | None]:
    """Check in two worker processes and in this process; both must name the same failure."""
    with pytest.raises(IntegrityError) as parallel:
        check_ledger(lg.store, workers=2)
    with pytest.raises(IntegrityError) as single:
        check_ledger(lg.store, workers=1)
    assert (str(parallel.value), parallel.value.index) == (str(single.value), single.value.index)
    return str(parallel.value), parallel.value.index


def _forge(lg: Ledger, i: int) -> None:
    """Replace record ``i`` with a consistent forgery: its leaf, hash and body all agree."""
    old = lg.store.record(i)
    content = body(10_000_000 + i)
    digest = hashlib.sha256(content).digest()
    forged = Record(old.log, i, old.prev, old.time, old.body_type, "sha256:" + digest.hex())
    _tamper(
        lg,
        "bodies",
        "INSERT INTO bodies (digest, body_type, content) VALUES (:d, 'dsse', :c)",
        d=digest,
        c=content,
    )
    _tamper(
        lg,
        "records",
        f"UPDATE records SET leaf = :l, leaf_hash = :h, body_digest = :d WHERE idx = {i}",
        l=forged.leaf,
        h=forged.leaf_hash,
        d=digest,
    )


def test_the_big_ledger_passes_in_workers_and_the_progress_bar_advances(big: Ledger) -> None:
    seen: list[int] = []
    report = check_ledger(big.store, seen.append, workers=2)
    assert report.records == N and report.checkpoints == 1 + N // 1000
    assert report.root == big.checkpoint().checkpoint.root_hash
    assert seen == sorted(seen) and seen[0] == RANGE and seen[-1] == N and len(seen) > 5
    assert check_ledger(big.store, workers=1) == report


@pytest.mark.parametrize("i", [50_001, BOUNDARY, N - 1])
def test_changed_body_is_named(big: Ledger, i: int) -> None:
    digest = big.store.record(i).body_digest
    sql = "UPDATE bodies SET content = :c WHERE digest = :d"
    _tamper(big, "bodies", sql, c=body(99_999_999), d=digest)
    assert _both(big) == (f"record {i}: body bytes do not hash to sha256:{digest.hex()}", i)


@pytest.mark.parametrize("i", [50_001, N - 1])
def test_changed_leaf_is_named(big: Ledger, i: int) -> None:
    leaf = big.store.record(i).leaf.replace(b'"v":1', b'"v":2')
    _tamper(big, "records", f"UPDATE records SET leaf = :l WHERE idx = {i}", l=leaf)
    message, index = _both(big)
    assert index == i and message.startswith(f"record {i}: leaf is not a valid record")


@pytest.mark.parametrize(
    ("forged", "named", "message"),
    [
        (50_000, 50_001, "record 50001: prev does not name the leaf hash of record 50000"),
        (BOUNDARY - 1, BOUNDARY, f"record {BOUNDARY}: prev does not name"),
        (N - 1, N - 1, f"checkpoint at size {N} does not match the recomputed tree"),
    ],
)
def test_rewritten_link_is_named(big: Ledger, forged: int, named: int, message: str) -> None:
    """A consistent forgery of one record breaks the next record's ``prev`` (across a range
    boundary too); the last record's forgery breaks the latest checkpoint's root."""
    _forge(big, forged)
    got, index = _both(big)
    assert index == named and got.startswith(message)


@pytest.mark.parametrize(
    ("tile", "entry", "index"),
    [((0, 195), 77, 195 * 256 + 77), ((0, N // 256), N % 256 - 1, N - 1), ((1, 0), 200, 200 * 256)],
)
def test_corrupted_tile_is_named(
    big: Ledger, tile: tuple[int, int], entry: int, index: int
) -> None:
    level, idx = tile
    with big.store.engine.begin() as conn:
        q = text("SELECT hashes FROM tiles WHERE level = :l AND idx = :i")
        blob = bytearray(conn.execute(q, {"l": level, "i": idx}).scalar_one())
    blob[entry * 32] ^= 1
    sql = f"UPDATE tiles SET hashes = :h WHERE level = {level} AND idx = {idx}"
    _tamper(big, "tiles", sql, h=bytes(blob))
    assert _both(big) == (
        f"tile ({level}, {idx}) entry {entry} disagrees with the recomputed tree",
        index,
    )


@pytest.mark.parametrize("size", [50_000, BOUNDARY // 1000 * 1000, N])
def test_forged_checkpoint_is_named(big: Ledger, size: int) -> None:
    sql = f"UPDATE checkpoints SET note = replace(note, '\n{size}\n', '\n{size + 1}\n') WHERE size = {size}"
    _tamper(big, "checkpoints", sql)
    message, index = _both(big)
    assert index == size - 1 and message.startswith(f"checkpoint at size {size}: ")


def test_deleted_checkpoint_in_the_middle_is_named_at_its_batch(big: Ledger) -> None:
    _tamper(big, "checkpoints", "DELETE FROM checkpoints WHERE size = 50000")
    message, index = _both(big)
    assert index == 49_000 and message.startswith("records 49000..49999 have no checkpoint")


def test_the_first_of_two_failures_in_different_ranges_is_named(big: Ledger) -> None:
    """Ranges finish in any order; the lower one's failure is still the one named."""
    for i in (N - 10, 20_000):
        digest = big.store.record(i).body_digest
        sql = "UPDATE bodies SET content = :c WHERE digest = :d"
        _tamper(big, "bodies", sql, c=body(90_000_000 + i), d=digest)
    assert _both(big)[1] == 20_000


def test_deleted_record_is_named_at_a_range_end(big: Ledger) -> None:
    _tamper(big, "records", f"DELETE FROM records WHERE idx = {BOUNDARY - 1}")
    message, index = _both(big)
    assert index == BOUNDARY - 1
    assert message == f"record {BOUNDARY - 1} is missing (next stored index is {BOUNDARY})"


def test_audit_index_rows_are_compared_in_the_ranges_and_named_last(big: Ledger) -> None:
    """Each range compares its own records' index rows; the lowest differing record is named,
    and only once every other check has passed (as the single pass that compared them after
    the tiles and the registry named it)."""
    forged = "INSERT INTO ix_terms (kind, value, idx) VALUES ('signer', 'mallory', :i)"
    _tamper(big, "ix_terms", forged, i=BOUNDARY + 5)
    _tamper(big, "ix_terms", "DELETE FROM ix_terms WHERE idx = :i", i=RANGE + 3)
    message, index = _both(big)
    assert index == RANGE + 3
    assert message == (
        f"audit index rows of record {RANGE + 3} disagree with the log "
        "(run `ledger reindex` to rebuild them)"
    )
    digest = big.store.record(N - 2).body_digest
    sql = "UPDATE bodies SET content = :c WHERE digest = :d"
    _tamper(big, "bodies", sql, c=body(90_000_000), d=digest)
    assert _both(big) == (f"record {N - 2}: body bytes do not hash to sha256:{digest.hex()}", N - 2)


@pytest.mark.parametrize("origin", ["t.example/log", 'tëst.example/"log"'])
def test_a_clean_log_never_takes_the_slow_path(
    tmp_path: Path, origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path accepts every valid record (its leaf template holds any origin's RFC 8785
    literal); the slow path is only for rows that fail, so it may not run here at all."""
    from ledger.fsck_range import _Range

    with Ledger.create(f"sqlite:///{tmp_path / 'l.db'}", origin, tmp_path / "k") as lg:
        lg.append_many([body(i) for i in range(300)])
        monkeypatch.setattr(_Range, "slow", lambda self, idx: pytest.fail(f"slow path at {idx}"))
        assert check_ledger(lg.store).records == 300
        monkeypatch.undo()
        _tamper(lg, "records", "UPDATE records SET time = 'x' WHERE idx = 150")
        assert _both(lg) == ("record 150: indexed columns disagree with the leaf", 150)


def test_a_time_that_is_not_utf8_names_its_record(big: Ledger) -> None:
    """TEXT bytes that are not UTF-8 in a record's time (SQLite stores what it is given) fail
    that record's checks — in the middle of a range, and as the link the next range reads —
    instead of failing the read with no record named."""
    bad = "UPDATE records SET time = CAST(x'fffe41' AS TEXT) WHERE idx = :i"
    _tamper(big, "records", bad, i=BOUNDARY - 1)  # the record the fourth range links from
    assert _both(big) == (
        f"record {BOUNDARY - 1}: indexed columns disagree with the leaf",
        BOUNDARY - 1,
    )
    _tamper(big, "records", bad, i=RANGE + 11)
    assert _both(big) == (
        f"record {RANGE + 11}: indexed columns disagree with the leaf",
        RANGE + 11,
    )


@pytest.mark.postgres
def test_parallel_check_on_postgresql_names_a_body_and_a_link_across_ranges(
    tmp_path: Path,
) -> None:
    """PostgreSQL, three ranges: the workers connect to the test's own schema."""
    n = 2 * RANGE + 500
    with fresh_pg_schema() as url:
        build(url, tmp_path / "k", n)
        with Ledger.open(url) as lg:
            report = check_ledger(lg.store, workers=2)
            assert report.records == n
            assert report.root == lg.checkpoint().checkpoint.root_hash
            digest = lg.store.record(RANGE + 7).body_digest
            sql = "UPDATE bodies SET content = :c WHERE digest = :d"
            _tamper(lg, "bodies", sql, c=body(77_777_777), d=digest)
            assert _both(lg)[1] == RANGE + 7
            _forge(lg, RANGE - 1)  # a lower failure: record RANGE's prev, the next range's first
            message, index = _both(lg)
            assert index == RANGE and "prev does not name" in message


def _upper_hex_after(key: bytes) -> Callable[[bytes], bytes]:
    def change(leaf: bytes) -> bytes:
        at = leaf.index(key) + len(key)
        return leaf[:at] + leaf[at : at + 64].upper() + leaf[at + 64 :]

    return change


@pytest.mark.parametrize(
    "change",
    [
        _upper_hex_after(b'"body":"sha256:'),
        _upper_hex_after(b'"prev":"'),
        lambda leaf: leaf.replace(b'"bodyType":"dsse"', b'"bodyType":"sigstore-bundle"'),
        lambda leaf: leaf.replace(b'"index":150', b'"index":0150'),
        lambda leaf: leaf.replace(b'"index":150', b'"index":150.0'),
        lambda leaf: leaf.replace(b'"v":1}', b'"v":1 }'),
        lambda leaf: leaf.replace(b'"v":1}', b'"v":1,"x":0}'),
        lambda leaf: leaf.replace(b'Z"', b'+00:00"'),
    ],
    ids=["body-hex", "prev-hex", "body-type", "index-zero", "index-float", "space", "extra", "tz"],
)
def test_a_leaf_that_is_almost_canonical_is_named(
    tmp_path: Path, change: Callable[[bytes], bytes]
) -> None:
    """The fast path compares the stored leaf with the one the row's columns make: a leaf that
    differs from it in any byte — with its hash rewritten to match — goes to the slow path,
    which names it; nothing is accepted that the slow path would refuse."""
    with Ledger.create(f"sqlite:///{tmp_path / 'l.db'}", "t.example/log", tmp_path / "k") as lg:
        lg.append_many([body(i) for i in range(300)])
        leaf = change(lg.store.record(150).leaf)
        assert leaf != lg.store.record(150).leaf
        sql = "UPDATE records SET leaf = :l, leaf_hash = :h WHERE idx = 150"
        _tamper(lg, "records", sql, l=leaf, h=hashlib.sha256(b"\x00" + leaf).digest())
        message, index = _both(lg)
        assert index == 150 and message.startswith("record 150: "), message


def test_a_time_that_is_no_date_is_named_in_leaf_and_column(tmp_path: Path) -> None:
    """A time of the right shape that is no date (30 February), in the leaf and the column
    alike, is refused as the slow path refuses it."""
    with Ledger.create(f"sqlite:///{tmp_path / 'l.db'}", "t.example/log", tmp_path / "k") as lg:
        lg.append_many([body(i) for i in range(300)])
        old = lg.store.record(299)
        bad = "2999-02-30T00:00:00.000000Z"
        leaf = old.leaf.replace(old.time.encode(), bad.encode())
        sql = "UPDATE records SET leaf = :l, leaf_hash = :h, time = :t WHERE idx = 299"
        _tamper(lg, "records", sql, l=leaf, h=hashlib.sha256(b"\x00" + leaf).digest(), t=bad)
        message, index = _both(lg)
        assert index == 299 and message.startswith("record 299: "), message
