"""``ledger.index.lenient_json.loads`` is ``json.loads``: the same value (types, float bits, key
order, also for duplicate keys) or the same exception, on the upstream fixtures (every JSON file,
and every DSSE payload in them decoded), crafted edge cases, generated documents and mutated
bytes. The audit index derivation runs on it, on the append path and in ``ledger check``."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.bodies import b64_field, envelope_of
from ledger.index import facts as facts_module
from ledger.index.facts import Facts, read_facts
from ledger.index.lenient_json import loads
from tests.conftest import fixture_path


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout: floats bit for bit, dicts in the same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _outcome(fn: Any, data: bytes) -> tuple[str, Any]:
    try:
        return ("value", fn(data))
    except RecursionError:
        return ("error", "RecursionError")
    except Exception as e:  # the exact type is what must agree
        return ("error", type(e).__name__)


def _agrees(data: bytes) -> None:
    want, got = _outcome(json.loads, data), _outcome(loads, data)
    assert want[0] == got[0], data[:200]
    if want[0] == "value":
        assert _same(want[1], got[1]), data[:200]
    else:
        assert want[1] == got[1], data[:200]


EDGE_CASES = [
    b'{"a":1,"a":2}',
    b'{"a":1,"b":0,"a":{"c":2}}',
    b'{"subject":[{"digest":{"sha256":"ab"}}],"subject":[]}',
    b"123456789012345678901234567890",  # orjson: a float; json: the int
    b"-9223372036854775809",
    b"-9223372036854775808",
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b'{"n":[99999999999999999999999,-99999999999999999999,1e999999]}',
    b"1000000000000000000",  # 19 digits: json.loads is asked
    b"999999999999999999",  # 18 digits: orjson answers
    b'"\\ud800"',
    b'"\\ud83d"',
    b'"\\ud83d\\ude00"',
    b'"\\ude00\\ud83d"',
    b'"\xed\xa0\x80"',  # a raw UTF-8 surrogate: json.loads reads bytes with surrogatepass
    b'"\xff"',
    b'"\xc0\xaf"',
    b"NaN",
    b"[Infinity,-Infinity,NaN]",
    b"1e400",
    b"-1e400",
    b"-0",
    b"-0.0",
    b"0e0",
    b"1E2",
    b"0.1",
    b"1.7976931348623157e308",
    b"1.7976931348623159e308",
    b"5e-324",
    b"2.4703282292062328e-324",
    b"2.4703282292062327e-324",
    b"1.0000000000000000000000001",
    b"123456789012345678901.5",
    b"01",
    b"1.",
    b".1",
    b"+1",
    b"\xef\xbb\xbf{}",
    '{"a":"é"}'.encode("utf-16"),
    '{"a":"é"}'.encode("utf-16-le"),
    '{"a":"é"}'.encode("utf-32-be"),
    b'{"a":"\\u0000"}',
    b'{"a":"\x00"}',
    b'{"a":"\t"}',
    b" {} ",
    b"\t\n\r{}\r\n",
    b"\x0c{}",
    b"\xc2\xa0{}",
    b"[1,]",
    b'{"a":1,}',
    b"{}{}",
    b"",
    b"   ",
    b"[" * 1100 + b"]" * 1100,
    b"[" * 5000 + b"]" * 5000,
    b'{"a":true,"b":false,"c":null}',
    b"tru",
    b'"\\x41"',
    b'"\\/"',
    '{"ключ":"значение","🔑":"\U0001f511"}'.encode(),
]


@pytest.mark.parametrize("data", EDGE_CASES)
def test_edge_cases_agree_with_json_loads(data: bytes) -> None:
    _agrees(data)


def test_fixture_documents_and_their_payloads_agree_with_json_loads() -> None:
    root = fixture_path()
    seen = payloads = 0
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if path.suffix not in {".json", ".jsonl", ".link", ".layout", ".sigstore", ".bundle"}:
            continue
        data = path.read_bytes()
        lines = data.splitlines() if path.suffix == ".jsonl" else [data]
        for line in lines:
            _agrees(line)
            seen += 1
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            env = doc.get("dsseEnvelope", doc) if isinstance(doc, dict) else None
            payload = env.get("payload") if isinstance(env, dict) else None
            if isinstance(payload, str):
                try:
                    _agrees(base64.b64decode(payload))
                    payloads += 1
                except binascii.Error:
                    pass
    assert seen > 100
    assert payloads > 5


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_documents, st.booleans())
def test_generated_documents_agree_with_json_loads(doc: Any, ascii_only: bool) -> None:
    _agrees(json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None)
@given(_documents, st.data())
def test_mutated_documents_agree_with_json_loads(doc: Any, data: st.DataObject) -> None:
    raw = bytearray(json.dumps(doc).encode("utf-8", "surrogatepass"))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    _agrees(bytes(raw))


def test_only_inputs_with_a_run_of_19_digits_bypass_orjson() -> None:
    """The conservative test for integers orjson reads as floats: 18 digits pass, 19 do not."""
    from ledger.index import lenient_json

    def bypass(data: bytes) -> bool:
        return lenient_json._LONG_RUN in data.translate(lenient_json._DIGITS)

    assert not bypass(b'{"payload":"eyJh","n":123456789012345678,"s":"a1b2"}')
    assert bypass(b'{"n":1234567890123456789}')
    assert bypass(b'{"s":"x1234567890123456789y"}')


def _reference_facts(content: bytes) -> Facts:
    """read_facts as it was before orjson and the payload's first-character test: json.loads
    of the body and of every payload that decodes."""
    facts = Facts()
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError):
        return facts
    env, facts.bundle = envelope_of(doc)
    if env is None:
        return facts
    facts.envelope = env
    payload = b64_field(env.get("payload"))
    if payload is None:
        return facts
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        return facts
    if not isinstance(statement, dict):
        return facts
    facts.statement = statement
    with contextlib.suppress(TypeError, ValueError, AttributeError, RecursionError):
        facts_module._statement_facts(statement, facts)
    return facts


def _same_facts(content: bytes) -> Facts:
    want, got = _reference_facts(content), read_facts(content)
    assert _same(want.statement, got.statement), content[:120]
    assert _same(want.envelope, got.envelope), content[:120]
    assert _same(want.bundle, got.bundle), content[:120]
    assert (want.terms, want.deps, want.vulns) == (got.terms, got.deps, got.vulns), content[:120]
    return got


_STATEMENT = json.dumps(
    {"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "ab" * 32}}]}
).encode()
_PAYLOADS = [
    b"",
    _STATEMENT,
    b" \t" + _STATEMENT,
    b"\xef\xbb\xbf" + _STATEMENT,
    _STATEMENT.decode().encode("utf-16"),
    _STATEMENT.decode().encode("utf-16-le"),
    _STATEMENT.decode().encode("utf-32-be"),
    b"[1]",
    b"\xfb\xff",
    b"0000000000000001" + b"\x00" * 40,
]


def _encodings(payload: bytes) -> list[str]:
    std = base64.b64encode(payload).decode()
    url = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return [std, url, "=" + std, "!" + std, " " + std, "-" + std[1:], "_" + std[1:], std[:1]]


@pytest.mark.parametrize("payload", _PAYLOADS)
def test_read_facts_reads_every_payload_as_before(payload: bytes) -> None:
    for text in _encodings(payload):
        env = {"payloadType": "application/vnd.in-toto+json", "payload": text, "signatures": []}
        _same_facts(json.dumps(env).encode())
        _same_facts(json.dumps({"dsseEnvelope": env}).encode())


def test_read_facts_skips_exactly_the_payloads_no_object_starts() -> None:
    """Every first character (and every first byte behind it) reads as before."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=.é "
    for first in alphabet:
        for rest in ("e30=", "eyJhIjoxfQ==", "AAAA", ""):
            env = {"payloadType": "x", "payload": first + rest}
            _same_facts(json.dumps(env).encode())
    for byte in range(256):
        for tail in (b"}", b'"a":1}', b"\x00{\x00}\x00", b"\xbb\xbf{}"):
            env = {"payload": base64.b64encode(bytes([byte]) + tail).decode()}
            _same_facts(json.dumps(env).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([0, 1, 2]))
def test_read_facts_of_generated_payloads_as_before(raw: bytes, how: int) -> None:
    text = [base64.b64encode, base64.urlsafe_b64encode, lambda b: b"%" + b][how](raw).decode(
        "latin-1"
    )
    _same_facts(json.dumps({"payload": text}).encode())


def test_read_facts_of_fixture_bodies_as_before() -> None:
    seen = statements = 0
    for path in sorted(Path(fixture_path()).rglob("*")):
        if path.is_file() and path.suffix in {".json", ".sigstore", ".bundle"}:
            statements += _same_facts(path.read_bytes()).statement is not None
            seen += 1
    assert seen > 100
    assert statements > 5
