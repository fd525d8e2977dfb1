"""Record encoding: the fast canonical template agrees with the rfc8785 library, always."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.record import GENESIS_PREV, MAX_INDEX, Record, format_time, parse_time

HEX = st.text("0123456789abcdef", min_size=64, max_size=64)


@given(
    log=st.text(min_size=1, max_size=40),
    index=st.integers(1, MAX_INDEX),
    prev=HEX,
    digest=HEX,
    body_type=st.sampled_from(["dsse", "sigstore-bundle"]),
    micro=st.integers(0, 999999),
)
def test_leaf_is_rfc8785_canonical(
    log: str, index: int, prev: str, digest: str, body_type: str, micro: int
) -> None:
    try:
        rfc8785.dumps(log)
    except Exception:
        return  # strings the JCS library cannot encode (lone surrogates) are not origins
    rec = Record(
        log, index, prev, f"2026-11-28T01:02:03.{micro:06d}Z", body_type, f"sha256:{digest}"
    )  # type: ignore[arg-type]
    assert rec.leaf == rfc8785.dumps(rec.to_json())
    assert Record.from_leaf(rec.leaf) == rec


def _ok(**kw: object) -> Record:
    base: dict[str, object] = dict(
        log="l",
        index=0,
        prev=GENESIS_PREV,
        time="2026-11-28T01:02:03.000000Z",
        body_type="dsse",
        body="sha256:" + "a" * 64,
    )
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [
        {"index": -1},
        {"index": 0, "prev": "1" * 64},
        {"prev": "A" * 64},
        {"time": "2026-11-28T01:02:03Z"},
        {"time": "2026-13-28T01:02:03.000000Z"},
        {"body_type": "zip"},
        {"body": "sha512:" + "a" * 64},
        {"log": ""},
    ],
)
def test_invalid_records_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        _ok(**kw)


def test_non_canonical_leaf_is_refused() -> None:
    rec = _ok()
    with pytest.raises(InvalidInput, match="canonical"):
        Record.from_leaf(rec.leaf.replace(b",", b", ", 1))
    with pytest.raises(InvalidInput):
        Record.from_leaf(rec.leaf[:-1] + b',"extra":1}')
    with pytest.raises(InvalidInput):
        Record.from_leaf(b"\xff")


@pytest.mark.parametrize("index", [2**53, 2**64])
def test_index_of_2_to_the_53_or_more_is_refused_as_rfc8785_cannot_encode_it(index: int) -> None:
    with pytest.raises(InvalidInput, match="2\\^53"):
        _ok(index=index, prev="1" * 64)
    leaf = _ok(index=MAX_INDEX, prev="1" * 64).leaf.replace(
        str(MAX_INDEX).encode(), str(index).encode()
    )
    with pytest.raises(InvalidInput):
        Record.from_leaf(leaf)
    assert Record.from_leaf(_ok(index=MAX_INDEX, prev="1" * 64).leaf).index == MAX_INDEX


@given(
    log=st.text(min_size=1, max_size=40),
    index=st.integers(0, 1000),
    prev=HEX,
    kinds=st.lists(st.sampled_from(["dsse", "sigstore-bundle"]), min_size=1, max_size=8),
    seed=st.binary(min_size=1, max_size=8),
)
def test_a_chain_is_the_records_constructed_one_by_one(
    log: str, index: int, prev: str, kinds: list[str], seed: bytes
) -> None:
    """``Record.chain`` (the writer's batch) gives the same records, leaves and leaf hashes as
    the checked constructor, each linked to the one before, origins the template cannot encode
    included."""
    try:
        rfc8785.dumps(log)
    except Exception:
        return
    prev = GENESIS_PREV if index == 0 else prev
    time = "2026-11-28T01:02:03.000000Z"
    bodies = [(k, hashlib.sha256(seed + bytes([n])).digest()) for n, k in enumerate(kinds)]
    got = Record.chain(log, index, prev, time, bodies)  # type: ignore[arg-type]
    want: list[Record] = []
    for n, (kind, digest) in enumerate(bodies):
        link = want[-1].leaf_hash.hex() if want else prev
        want.append(Record(log, index + n, link, time, kind, "sha256:" + digest.hex()))  # type: ignore[arg-type]
    assert got == want
    assert [(r.leaf, r.leaf_hash) for r in got] == [(r.leaf, r.leaf_hash) for r in want]
    assert all(Record.from_leaf(r.leaf) == r for r in got)


@pytest.mark.parametrize(
    ("bodies", "index"),
    [
        ([("dsse", b"\x00" * 32), ("zip", b"\x00" * 32)], 0),
        ([("dsse", b"\x00" * 32), ("dsse", b"\x00" * 31)], 0),
        ([("dsse", b"\x00" * 32), ("dsse", "00" * 32)], 0),
        ([("dsse", b"\x00" * 32), ("dsse", b"\x01" * 32)], MAX_INDEX),
        ([("dsse", b"\x00" * 33)], 0),
    ],
)
def test_a_chain_refuses_what_the_constructor_refuses(
    bodies: list[tuple[str, object]], index: int
) -> None:
    with pytest.raises(InvalidInput):
        Record.chain(
            "l",
            index,
            GENESIS_PREV if index == 0 else "a" * 64,
            "2026-11-28T01:02:03.000000Z",
            bodies,
        )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        (b'"index":0', b'"index":00'),
        (b'"v":1', b'"v":2'),
        (b'"bodyType":"dsse"', b'"bodyType":"zip"'),
        (b'"time":"2026-11-28T01:02:03.000000Z"', b'"time":"2026-13-28T01:02:03.000000Z"'),
        (b'"time":"2026-11-28T01:02:03.000000Z"', b'"time":"2026-11-28T01:02:03.00000:Z"'),
        (b'"prev":"' + GENESIS_PREV.encode(), b'"prev":"' + b"1" * 64),
        (b'"log":"l"', b'"log":"l\\u0041"'),
    ],
)
def test_a_leaf_read_by_its_template_is_still_checked_in_full(change: tuple[bytes, bytes]) -> None:
    """Leaves in the template's shape are read without the JSON parser (the fast path), but a
    record whose fields are invalid or whose bytes are not canonical is refused as before."""
    leaf = _ok().leaf
    assert Record.from_leaf(leaf) == _ok()
    bad = leaf.replace(*change)
    assert bad != leaf
    with pytest.raises(InvalidInput):
        Record.from_leaf(bad)


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC), "2026-11-28T01:02:03.000000Z"),
        (  # converted to UTC first
            datetime(2026, 1, 1, 0, 30, 0, 7, tzinfo=timezone(timedelta(hours=2))),
            "2025-12-31T22:30:00.000007Z",
        ),
        (datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=UTC), "0999-05-06T07:08:09.000010Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
    ],
)
def test_format_time_writes_the_one_record_format_and_parse_time_reads_it_back(
    when: datetime, text: str
) -> None:
    assert format_time(when) == text
    assert parse_time(text) == when


def test_format_time_refuses_a_naive_time() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        format_time(datetime(2026, 11, 28))
