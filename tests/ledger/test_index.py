"""The audit indexes: derived from stored bodies in the append transaction, rebuilt identically by
`ledger reindex`, and compared by `ledger check` (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import insert

from attest.keys import public_key_from_crypto
from ledger._internal import schema
from ledger.api.audit_models import EvidenceDoc
from ledger.errors import IntegrityError, NotFound
from ledger.fsck import check_ledger
from ledger.index import query as q
from ledger.index.evidence import AuditReader
from ledger.index.evidence_json import document_json
from ledger.index.facts import read_facts, split_purl
from ledger.index.maintain import check_indexes, reindex
from ledger.index.rows import IndexRows, stored_rows
from ledger.log import Ledger
from ledger.registry import add_signer, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from tests.ledger import audit_samples as s

KEY = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def audited(db_url: str, key_path: Path) -> Iterator[Ledger]:
    """Record 0 registers KEY as signer ``ci``; records 1-8 are the sample pipeline."""
    with Ledger.create(db_url, "test.example/ledger", key_path) as lg:
        admin = load_admin_key(admin_key_path(key_path))
        add_signer(lg, make_spec("ci", now=lg.now(), key=_pem(KEY)), admin)
        lg.append_many(s.pipeline(KEY))
        yield lg


def _all_rows(lg: Ledger) -> IndexRows:
    with lg.store._conn() as conn:
        return stored_rows(conn, 0, 1 << 40)


def _terms(lg: Ledger, kind: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k, v, i in _all_rows(lg).terms:
        if k == kind:
            out.setdefault(v, []).append(i)
    return out


def test_pipeline_is_indexed_as_its_bodies_say(audited: Ledger) -> None:
    subjects = _terms(audited, "subject")
    assert subjects["sha256:" + s.APP1] == [1, 2, 3, 4, 8]
    assert subjects["sha256:" + s.APP2] == [5, 6, 7]
    keyid = public_key_from_crypto(KEY.public_key()).keyid
    assert _terms(audited, "signer") == {"ci": list(range(1, 9))}
    assert _terms(audited, "keyid") == {keyid: list(range(1, 9))}
    assert _terms(audited, "builder")[s.BUILDER] == [2, 5]
    assert _terms(audited, "repo")[s.REPO] == [2, 5, 8]
    assert _terms(audited, "ref") == {"refs/heads/main": [2, 5], "refs/tags/v1": [8]}
    assert _terms(audited, "commit")[s.COMMIT] == [2, 5, 8]
    assert _terms(audited, "step") == {"build": [1], "unit": [3], "release.yml": [8]}
    assert _terms(audited, "testResult") == {"PASSED": [3]}
    assert len(_terms(audited, "time")) >= 1
    rows = _all_rows(audited)
    assert ("pkg:pypi/requests", "2.31.0", 2, "sha256:" + s.sha("requests2.31.0")) in rows.deps
    assert ("pkg:pypi/requests", "2.32.3", 5, "sha256:" + s.sha("requests2.32.3")) in rows.deps
    assert ("pkg:npm/left-pad", "1.3.0", 2, "") in rows.deps  # name + purl annotation
    assert ("pkg:maven/org.apache.logging.log4j/log4j-core", "2.14.1", 8, "") in rows.deps
    assert ("src/app.py", "", 1, "sha256:" + s.SRC) in rows.deps  # a link's material
    app2 = "sha256:" + s.APP2
    assert ("CVE-2024-35195", app2, 6, "requests", "affected") in rows.vulns
    assert ("GHSA-5195", app2, 6, "requests", "affected") in rows.vulns  # an alias
    fixed = [v for v in rows.vulns if v[2] == 7]
    assert ("CVE-2024-35195", app2, 7, "pkg:pypi/requests@2.32.3", "fixed") in fixed
    assert ("CVE-2024-35195", "pkg:generic/app@2", 7, "pkg:pypi/requests@2.32.3", "fixed") in fixed


def test_a_signature_by_an_unregistered_key_names_no_signer(audited: Ledger) -> None:
    audited.append(s.sign(s.test_result(s.APP2, "FAILED"), OTHER))
    assert 9 not in _terms(audited, "signer")["ci"]
    assert _terms(audited, "testResult")["FAILED"] == [9]


def test_reindex_rebuilds_identical_rows_and_check_passes(audited: Ledger) -> None:
    before = _all_rows(audited)
    assert len(before) > 50
    written = reindex(audited.store)
    assert written == len(before)
    assert _all_rows(audited) == before
    assert check_indexes(audited.store) == len(before)
    check_ledger(audited.store)


def test_check_names_the_record_of_a_forged_row(audited: Ledger) -> None:
    with audited.store.engine.begin() as conn:
        conn.execute(insert(schema.ix_terms).values(kind="signer", value="mallory", idx=4))
    with pytest.raises(IntegrityError, match="record 4") as e:
        check_ledger(audited.store)
    assert e.value.index == 4
    reindex(audited.store)
    check_ledger(audited.store)


def test_check_finds_a_missing_row_and_a_row_beyond_the_log(audited: Ledger) -> None:
    with audited.store.engine.begin() as conn:
        conn.execute(
            schema.ix_vulns.delete().where(schema.ix_vulns.c.idx == 7)
        )  # the VEX fix hidden
    with pytest.raises(IntegrityError, match="record 7"):
        check_indexes(audited.store)
    reindex(audited.store)
    with audited.store.engine.begin() as conn:
        conn.execute(
            insert(schema.ix_deps).values(package="pkg:x/y", version="1", idx=99, digest="")
        )
    with pytest.raises(IntegrityError, match="record 99"):
        check_indexes(audited.store)


def test_unreadable_bodies_index_nothing_but_their_time() -> None:
    for body in (b"", b"[]", b'{"payload": "!!"}', b'{"payload": "bnVsbA=="}', b"\xff"):
        facts = read_facts(body)
        assert not facts.terms and not facts.deps and not facts.vulns


@pytest.mark.parametrize(
    ("purl", "want"),
    [
        ("pkg:pypi/Django_Rest@3.0?x=1#sub", ("pkg:pypi/django-rest", "3.0")),
        ("pkg:npm/%40angular/core@16.0.0", ("pkg:npm/@angular/core", "16.0.0")),
        ("pkg:Maven/org.apache/log4j-core@2.14.1", ("pkg:maven/org.apache/log4j-core", "2.14.1")),
        (
            "pkg:deb/debian/openssl@1:3.0.11-1~deb12u2?arch=amd64",
            ("pkg:deb/debian/openssl", "1:3.0.11-1~deb12u2"),
        ),
        ("pkg:golang/golang.org/x/net", ("pkg:golang/golang.org/x/net", "")),
        ("https://example.com", None),
        ("pkg:", None),
    ],
)
def test_split_purl(purl: str, want: tuple[str, str] | None) -> None:
    assert split_purl(purl) == want


def test_the_subject_shortcut_answers_as_the_general_query(audited: Ledger) -> None:
    """The evidence routes' search (primary-key seeks per digest) gives the general query's
    records for one or many subjects, at every tree size, cursor position and page size."""
    subjects = sorted(_terms(audited, "subject"))
    size = audited.store.latest_checkpoint()[0]
    asks = [
        *(q.Filters(subjects=(d,)) for d in subjects),
        *(q.Filters(terms=(("subject", d),)) for d in subjects),
        q.Filters(subjects=tuple(subjects)),
        q.Filters(subjects=(subjects[0], "sha256:" + "0" * 64)),
    ]
    compared = 0
    with audited.store._conn() as conn:
        for f in asks:
            for n in range(1, size + 1):
                for after in range(-1, n):
                    for limit in (1, 2, 100):
                        fast = q.search(conn, f, n, after, limit)
                        assert fast == q.general_search(conn, f, n, after, limit)
                        compared += bool(fast)
    assert compared > 100  # the comparison saw answers, not only empty pages


def test_the_dependency_and_vulnerability_shortcuts_answer_as_the_general_query(
    audited: Ledger,
) -> None:
    """A purl (+ range) search (one merged compound SELECT on SQLite) and a vulnerability (+
    status) search give the general query's records, at every tree size, cursor and page size;
    a package with more versions than one compound select may hold is merged across chunks."""
    from sqlalchemy import insert

    from ledger.index.params import parse_versions

    rows = _all_rows(audited).deps
    packages = sorted({r[0] for r in rows if r[0].startswith("pkg:")})
    # A package with 450 versions (three chunks of arms), two rows on some records.
    many = [
        {"package": "pkg:pypi/many", "version": f"1.{v}", "idx": v % 7 + 1, "digest": d}
        for v in range(450)
        for d in (("", "x") if v % 5 == 0 else ("",))
    ]
    sqlite = audited.store.engine.dialect.name == "sqlite"  # where the arms come in chunks
    if sqlite:
        with audited.store.engine.begin() as conn:
            conn.execute(insert(schema.ix_deps), many)
        packages.append("pkg:pypi/many")
    asks = [
        *(q.Filters(versions=parse_versions(p, None)) for p in packages),
        q.Filters(versions=parse_versions("pkg:pypi/requests", "vers:pypi/<2.32.0")),
        q.Filters(versions=parse_versions("pkg:pypi/requests", "vers:pypi/>=2.0|<2.33")),
        *(
            [q.Filters(versions=parse_versions("pkg:pypi/many", "vers:pypi/>=1.100|<1.400"))]
            if sqlite
            else []
        ),
        q.Filters(versions=parse_versions("pkg:pypi/absent", "vers:pypi/<9")),
        *(q.Filters(vuln=c) for c in ("CVE-2024-35195", "CVE-2024-37891", "CVE-0")),
        *(
            q.Filters(vuln="CVE-2024-35195", status=st)
            for st in ("affected", "fixed", "not_affected", "under_investigation")
        ),
    ]
    size = audited.store.latest_checkpoint()[0]
    compared = 0
    with audited.store._conn() as conn:
        for f in asks:
            assert q._only(f) in ("deps", "vuln")
            for n in sorted({1, 4, size - 1, size}):
                for after in range(-1, n):
                    for limit in (1, 3, 100):
                        fast = q.search(conn, f, n, after, limit)
                        assert fast == q.general_search(conn, f, n, after, limit), (f, n, after)
                        compared += bool(fast)
    assert compared > 100


def test_evidence_bytes_are_the_validated_document(audited: Ledger) -> None:
    """The paging routes' JSON bytes mean exactly what FastAPI wrote from the validated dict:
    every entry, the consistency proof, the cursor and the registry's records."""
    reader = AuditReader(audited)
    cp = reader.checkpoint(None)
    size = cp.checkpoint.size
    indices = list(range(size))
    with audited.store._conn() as conn:
        proved = reader.proved(indices, cp, conn)
    registry = reader.proved(reader.registry_indices(cp), cp)
    for since, nxt, with_registry in ((None, None, False), (1, "a-cursor", True)):
        doc = reader.document(indices, cp, since, next=nxt)
        if with_registry:
            doc["registry"] = reader.registry_entries(cp)
        want = EvidenceDoc.model_validate(doc).model_dump_json().encode()
        got = document_json(
            proved, cp, reader.consistency(since, cp), nxt, registry if with_registry else None
        )
        assert json.loads(got) == json.loads(want)
        assert list(json.loads(got)) == list(json.loads(want))  # the same fields, in order
    assert registry and [p.index for p in registry] == [0]
    first = audited.checkpoint_at(1)  # a tree of one leaf: its proof is empty
    got = json.loads(document_json(reader.proved([0], first), first, None, None))
    assert got["entries"][0]["inclusionProof"] == [] and got["treeSize"] == 1
    want = EvidenceDoc.model_validate(reader.document([0], first)).model_dump_json()
    assert got == json.loads(want)


NARROW = ed25519.Ed25519PrivateKey.generate()


def _both(payload: bytes) -> bytes:
    from attest.dsse import sign_envelope
    from attest.signers import KeySigner

    return sign_envelope(payload, [KeySigner(KEY), KeySigner(NARROW)]).to_json()


def test_a_signer_is_credited_only_where_the_registry_allowed_it(
    audited: Ledger, key_path: Path
) -> None:
    """Hostile finding (2026-11-30): a co-signature by a signer limited to other predicate types,
    not yet valid, or revoked earned its name in the index. Now only the ``keyid`` says it signed."""
    from ledger.registry import revoke_signer

    admin = load_admin_key(admin_key_path(key_path))
    test_type = json.loads(s.test_result(s.APP2, "PASSED"))["predicateType"]
    add_signer(
        audited,
        make_spec("narrow", now=audited.now(), key=_pem(NARROW), predicate_types=[test_type]),
        admin,
    )
    prov = audited.append(_both(s.provenance_v1(s.APP2, [("idna", "3.7")]))).index
    test = audited.append(_both(s.test_result(s.APP2, "PASSED"))).index
    revoke_signer(audited, "narrow", None, admin)
    late = audited.append(_both(s.test_result(s.APP2, "FAILED"))).index
    signers = _terms(audited, "signer")
    assert test in signers["narrow"] and prov not in signers["narrow"]
    assert late not in signers["narrow"]
    assert {prov, test, late} <= set(signers["ci"])
    narrow_keyid = public_key_from_crypto(NARROW.public_key()).keyid
    assert {prov, test, late} <= set(_terms(audited, "keyid")[narrow_keyid])
    before = _all_rows(audited)
    reindex(audited.store)
    assert _all_rows(audited) == before
    check_indexes(audited.store)


def test_a_dsse_envelope_smuggling_a_bundle_member_is_refused_and_read_as_signed() -> None:
    """Hostile finding (2026-11-30): a signed envelope with a top-level ``dsseEnvelope`` holding
    another, unsigned statement was admitted as DSSE and indexed as the inner statement."""
    from ledger.bodies import parse_submission
    from ledger.errors import InvalidInput

    signed = json.loads(s.sign(s.test_result(s.APP1, "PASSED"), KEY))
    forged = json.loads(s.sign(s.test_result(s.APP2, "PASSED"), OTHER))
    smuggled = json.dumps({**signed, "dsseEnvelope": forged}).encode()
    with pytest.raises(InvalidInput, match="could be read two ways"):
        parse_submission(smuggled)
    facts = read_facts(smuggled)  # a body stored by something else is read as admission reads it
    assert ("subject", "sha256:" + s.APP1) in facts.terms
    assert ("subject", "sha256:" + s.APP2) not in facts.terms


def test_a_url_safe_envelope_is_credited_to_its_signer(audited: Ledger) -> None:
    """DSSE readers accept URL-safe base64, and admission does: so does signer attribution."""
    st = json.loads(s.test_result(s.APP2, "PASSED"))
    st["predicate"]["note"] = "???"  # "?" is 0x3f: one of three is a "/" in standard base64
    payload = json.dumps(st).encode()
    assert "/" in base64.b64encode(payload).decode()
    doc = json.loads(s.sign(payload, KEY))
    doc["payload"] = doc["payload"].replace("+", "-").replace("/", "_").rstrip("=")
    doc["signatures"][0]["sig"] = doc["signatures"][0]["sig"].replace("+", "-").replace("/", "_")
    assert "-" in doc["payload"] or "_" in doc["payload"]
    idx = audited.append(json.dumps(doc).encode()).index
    assert idx in _terms(audited, "signer")["ci"]


def test_as_of_time_goes_by_the_signed_record_times_not_the_checkpoint_column(
    db_url: str, key_path: Path
) -> None:
    """Hostile finding (2026-11-30): the checkpoints table's ``time`` column is signed by nothing
    and `ledger check` cannot tie it to anything; an as-of-time answer chose its checkpoint by
    it, so moving the newest one into 2099 hid records logged in 2026 from ``asOf=2030``."""
    from datetime import UTC, datetime

    from ledger.index.params import AsOf
    from tests.ledger.test_fsck import _tamper

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with Ledger.create(db_url, "t.example/ledger", key_path, clock=lambda: now[0]) as lg:
        for day in (2, 3):
            now[0] = datetime(2026, 1, day, tzinfo=UTC)
            lg.append(s.sign(s.test_result(s.APP1, f"PASSED-{day}"), KEY))
        reader = AuditReader(lg)
        t = "2026-01-02T12:00:00.000000Z"
        assert reader.checkpoint(AsOf(time=t)).checkpoint.size == 1
        assert reader.checkpoint(AsOf(time="2030-01-01T00:00:00.000000Z")).checkpoint.size == 2
        _tamper(lg, "checkpoints", "UPDATE checkpoints SET time = '2099-01-01T00:00:00.000000Z'")
        assert reader.checkpoint(AsOf(time="2030-01-01T00:00:00.000000Z")).checkpoint.size == 2
        assert reader.checkpoint(AsOf(time=t)).checkpoint.size == 1
        with pytest.raises(NotFound):  # before any record, and the size-0 row says 2099 now
            reader.checkpoint(AsOf(time="2026-01-01T12:00:00.000000Z"))
