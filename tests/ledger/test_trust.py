"""Admission against the trust registry kept in the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import create_engine, func, select, text

from attest.dsse import sign_envelope
from attest.signers import KeySigner
from ledger._internal import schema
from ledger._internal.sample import sample_envelopes
from ledger.admission import Admitted
from ledger.errors import IntegrityError, InvalidInput, NotFound, NotTrusted, TooLarge
from ledger.fsck import check_ledger
from ledger.log import Ledger
from ledger.note import parse_verifier
from ledger.registry import add_signer, list_signers, make_spec, revoke_signer
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.registry.entries import sign_op
from ledger.registry.model import RegistryOp
from ledger.transfer import export_jsonl, import_jsonl
from tests.conftest import FIXTURES, needs_fixtures

SLSA = "https://slsa.dev/provenance/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
CUSTOM = "https://example.com/custom/v1"  # no model in attest: any predicate object is valid
# read through module-level paths: without ../shared/fixtures every test here skips at setup
pytestmark = [
    needs_fixtures("conformance", "assets", "bundle-verify"),
    needs_fixtures("sigstore-bundles", "trust-roots"),
]
CASES = FIXTURES.joinpath("conformance", "assets", "bundle-verify")
STAGING_ROOT = FIXTURES.joinpath("sigstore-bundles", "trust-roots", "staging", "trusted_root.json")
PRODUCTION_ROOT = FIXTURES.joinpath(
    "sigstore-bundles", "trust-roots", "production", "trusted_root.json"
)
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture
def admin(key_path: Path, ledger: Ledger) -> KeySigner:
    return load_admin_key(admin_key_path(key_path))


@pytest.fixture
def ci(ledger: Ledger, admin: KeySigner, sample_pub_pem: bytes) -> Ledger:
    """The ledger with the samples' key registered as ``ci``."""
    add_signer(ledger, make_spec("ci", now=ledger.now(), key=sample_pub_pem), admin)
    return ledger


def rows(ledger: Ledger) -> int:
    with ledger.store.engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(schema.registry_entries)).scalar_one()
    return int(n)


def refused(ledger: Ledger, body: bytes, error: type[Exception], match: str) -> None:
    """``body`` is refused with ``error`` and nothing is written."""
    before = (ledger.store.size(), rows(ledger))
    with pytest.raises(error, match=match):
        ledger.admit(body)
    assert (ledger.store.size(), rows(ledger)) == before


def statement(predicate_type: str = CUSTOM, predicate: object = None, digest: bool = True) -> bytes:
    doc: dict[str, object] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a", **({"digest": {"sha256": "ab" * 32}} if digest else {})}],
        "predicateType": predicate_type,
    }
    if predicate is not None:
        doc["predicate"] = predicate
    return json.dumps(doc).encode()


def signed(payload: bytes, key: ed25519.Ed25519PrivateKey) -> bytes:
    return sign_envelope(payload, [KeySigner(key)]).to_json()


def test_a_registered_signer_is_admitted_and_an_unknown_one_is_not(
    ledger: Ledger, admin: KeySigner, signed_samples: list[bytes], sample_pub_pem: bytes
) -> None:
    refused(ledger, signed_samples[0], NotTrusted, "unknown signer")
    add_signer(ledger, make_spec("ci", now=ledger.now(), key=sample_pub_pem), admin)
    a = ledger.admit(signed_samples[0])
    assert a.signers == ("ci",) and a.predicate_type == SLSA
    r = ledger.append_admitted([a])[0]
    assert (r.index, r.duplicate) == (1, False)
    assert ledger.submit(ledger.admit(signed_samples[0])).result().duplicate


def test_a_bad_signature_by_a_registered_key_says_so(ledger: Ledger, admin: KeySigner) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    add_signer(ledger, make_spec("k", now=ledger.now(), key=_pem(key)), admin)
    env = json.loads(signed(statement(predicate={}), key))
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    refused(ledger, json.dumps(env).encode(), NotTrusted, "bad signature.*'k'")


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return KeySigner(key).public_key.spki_pem()


def test_revoked_expired_and_not_yet_valid_signers_are_refused_with_the_reason(
    ledger: Ledger, admin: KeySigner
) -> None:
    now = ledger.now()
    keys = {n: ed25519.Ed25519PrivateKey.generate() for n in ("old", "new", "gone")}
    add_signer(
        ledger,
        make_spec(
            "old",
            now=now,
            key=_pem(keys["old"]),
            valid_from=now - timedelta(days=2),
            valid_until=now - timedelta(days=1),
        ),
        admin,
    )
    add_signer(
        ledger,
        make_spec("new", now=now, key=_pem(keys["new"]), valid_from=now + timedelta(days=1)),
        admin,
    )
    add_signer(ledger, make_spec("gone", now=now, key=_pem(keys["gone"])), admin)
    ledger.admit(signed(statement(predicate={}), keys["gone"]))
    revoke_signer(ledger, "gone", now, admin)
    body = statement(predicate={})
    refused(ledger, signed(body, keys["old"]), NotTrusted, "'old' expired at")
    refused(ledger, signed(body, keys["new"]), NotTrusted, "'new' is not valid until")
    refused(ledger, signed(body, keys["gone"]), NotTrusted, "'gone' was revoked at")
    # ... and at a time inside their windows they are allowed
    assert ledger.admit(signed(body, keys["new"]), at=now + timedelta(days=2)).signers == ("new",)
    assert ledger.admit(signed(body, keys["old"]), at=now - timedelta(hours=36)).signers == ("old",)


def test_a_signer_limited_to_some_predicate_types_is_refused_for_another(
    ledger: Ledger, admin: KeySigner
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    spec = make_spec("tests", now=ledger.now(), key=_pem(key), predicate_types=[TEST_RESULT])
    add_signer(ledger, spec, admin)
    refused(
        ledger, signed(statement(CUSTOM), key), NotTrusted, "not allowed to sign predicate type"
    )
    assert (
        ledger.admit(
            signed(
                statement(
                    TEST_RESULT, {"result": "PASSED", "configuration": [], "passedTests": []}
                ),
                key,
            )
        ).predicate_type
        == TEST_RESULT
    )


def test_bad_input_gets_its_own_error_and_changes_nothing(ci: Ledger, sample_key: object) -> None:
    assert isinstance(sample_key, ed25519.Ed25519PrivateKey)
    good = signed(statement(predicate={}), sample_key)
    refused(ci, b"{" + b" " * (1 << 20) + b"}", TooLarge, "limit")
    refused(ci, b"\xff{}", InvalidInput, "not UTF-8")
    refused(ci, good[:-1] + b', "payloadType": "x"}', InvalidInput, "duplicate key")
    refused(ci, b'{"payloadType": "x"}', InvalidInput, "payload")
    refused(ci, signed(b"[]", sample_key), InvalidInput, "Statement")
    refused(ci, signed(statement(digest=False), sample_key), InvalidInput, "digest")
    slsa_broken = statement(SLSA, predicate={"buildDefinition": 7})
    refused(ci, signed(slsa_broken, sample_key), InvalidInput, "Statement")
    other = sign_envelope(statement(), [KeySigner(sample_key)], "text/plain").to_json()
    refused(ci, other, InvalidInput, "payloadType")
    # a Statement without a predicate is valid
    assert ci.admit(signed(statement(), sample_key)).signers == ("ci",)
    assert ci.admit(good).signers == ("ci",)


def test_a_registry_entry_signed_by_a_non_admin_key_is_refused(
    ci: Ledger, sample_pub_pem: bytes
) -> None:
    intruder = KeySigner(ed25519.Ed25519PrivateKey.generate())
    spec = make_spec("evil", now=ci.now(), key=sample_pub_pem)
    body = sign_op(RegistryOp.add(ci.origin, spec, ci.now()), intruder)
    refused(ci, body, NotTrusted, "not signed by this ledger's admin key")
    with pytest.raises(InvalidInput, match="admin key file does not hold"):
        add_signer(ci, spec, intruder)
    # the raw path stores it, but it applies to nothing and check agrees
    ci.append(body)
    assert [s["name"] for s in list_signers(ci)] == ["ci"]
    check_ledger(ci.store)


def test_registry_changes_that_cannot_apply_are_refused(ci: Ledger, admin: KeySigner) -> None:
    with pytest.raises(InvalidInput, match="already exists"):
        add_signer(
            ci, make_spec("ci", now=ci.now(), key=_pem(ed25519.Ed25519PrivateKey.generate())), admin
        )
    with pytest.raises(NotFound, match="no such signer"):
        revoke_signer(ci, "nobody", None, admin)
    revoke_signer(ci, "ci", None, admin)
    with pytest.raises(InvalidInput, match="already revoked"):
        revoke_signer(ci, "ci", None, admin)
    assert rows(ci) == 2


def test_another_process_sees_a_revocation_at_once(
    db_url: str, key_path: Path, ci: Ledger, admin: KeySigner, signed_samples: list[bytes]
) -> None:
    with Ledger.open(db_url, key_path) as other:
        assert other.admit(signed_samples[1]).signers == ("ci",)
        revoke_signer(ci, "ci", None, admin)
        with pytest.raises(NotTrusted, match="revoked"):
            other.admit(signed_samples[1])


def _export_import(src: Ledger, db: str, key: Path, admin: KeySigner, **kw: bool) -> Ledger:
    buf = io.StringIO()
    export_jsonl(src, buf)
    dst = Ledger.create(db, src.origin, key, admin_key=admin)
    pinned = parse_verifier(src.store.meta()["vkey"])
    try:
        import_jsonl(
            dst, io.BytesIO(buf.getvalue().encode()), pinned, lambda: datetime.now(UTC), **kw
        )
    except BaseException:
        dst.close()
        raise
    return dst


def test_an_attestation_recorded_before_its_signer_was_revoked_still_imports(
    ci: Ledger, admin: KeySigner, signed_samples: list[bytes], tmp_path: Path, pg_or_sqlite: str
) -> None:
    ci.append_admitted([ci.admit(signed_samples[2])])
    revoke_signer(ci, "ci", None, admin)
    with pytest.raises(NotTrusted, match="revoked"):
        ci.admit(signed_samples[3])
    with _export_import(ci, pg_or_sqlite, tmp_path / "copy.key", admin) as copy:
        assert copy.store.size() == 3
        assert check_ledger(copy.store).records == 3
        assert list_signers(copy)[0]["revokedAt"]


def test_import_refuses_a_record_that_admission_would_have_refused(
    ci: Ledger, admin: KeySigner, tmp_path: Path, pg_or_sqlite: str
) -> None:
    junk = sample_envelopes(1)[0]  # signed by a key nobody registered
    ci.append(junk)  # the raw path, as an old ledger or another tool could have
    with pytest.raises(NotTrusted, match="record 1: unknown signer"):
        _export_import(ci, pg_or_sqlite, tmp_path / "copy.key", admin)
    with Ledger.open(pg_or_sqlite) as copy:
        assert copy.store.size() == 0


def test_allow_untrusted_imports_what_admission_would_refuse(
    ci: Ledger, admin: KeySigner, tmp_path: Path
) -> None:
    ci.append(sample_envelopes(1)[0])
    db = f"sqlite:///{tmp_path / 'forced.db'}"
    with _export_import(ci, db, tmp_path / "forced.key", admin, allow_untrusted=True) as copy:
        assert copy.store.size() == 2
        check_ledger(copy.store)


@pytest.fixture
def pg_or_sqlite(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'copy.db'}"
        return
    base = db_url.rsplit("?", 1)[0]
    schema_name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema_name}"))
    yield f"{base}?options=-csearch_path%3D{schema_name}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema_name} CASCADE"))
    admin.dispose()


def _tamper(ledger: Ledger, sql: str) -> None:
    with ledger.store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            for what in ("update", "delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS registry_entries_no_{what}"))
        else:
            conn.execute(text("ALTER TABLE registry_entries DISABLE TRIGGER USER"))
        conn.execute(text(sql))


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE registry_entries SET name = 'mallory' WHERE idx = 0",
        "DELETE FROM registry_entries WHERE idx = 0",
    ],
    ids=["changed", "deleted"],
)
def test_check_detects_a_tampered_registry_row(ci: Ledger, sql: str) -> None:
    check_ledger(ci.store)
    _tamper(ci, sql)
    with pytest.raises(IntegrityError, match="registry") as e:
        check_ledger(ci.store)
    assert e.value.index == 0


def _bundle(case: str) -> bytes:
    return (CASES / case / "bundle.sigstore.json").read_bytes()


def _root(case: str) -> bytes:
    own = CASES / case / "trusted_root.json"
    return (own if own.exists() else PRODUCTION_ROOT).read_bytes()


def test_sigstore_bundles_need_their_identity_and_matching_root(
    ledger: Ledger, admin: KeySigner
) -> None:
    # a real bundle whose SLSA predicate lacks externalParameters fails the schema step first
    refused(ledger, _bundle("rekor2-dsse-happy-path"), InvalidInput, "externalParameters")
    case = "happy-path-intoto-in-dsse-v3"  # production root, SLSA v1 predicate
    bundle = _bundle(case)
    refused(ledger, bundle, NotTrusted, "unknown signer: no Sigstore identity")
    wrong = make_spec(
        "staging-root",
        now=ledger.now(),
        issuer=ISSUER,
        identity=IDENTITY,
        trusted_root=STAGING_ROOT.read_bytes(),
    )
    add_signer(ledger, wrong, admin)
    refused(ledger, bundle, NotTrusted, "bad signature for signer 'staging-root'")
    other = make_spec(
        "someone-else",
        now=ledger.now(),
        issuer=ISSUER,
        identity=r"https://github\.com/other/.*",
        regex=True,
        trusted_root=_root(case),
    )
    add_signer(ledger, other, admin)
    refused(ledger, bundle, NotTrusted, "bad signature for signer 'staging-root'")
    right = make_spec(
        "beacon",
        now=ledger.now(),
        issuer=ISSUER,
        identity=r"https://github\.com/sigstore-conformance/.*",
        regex=True,
        trusted_root=_root(case),
    )
    add_signer(ledger, right, admin)
    admitted = ledger.admit(bundle)
    assert admitted.signers == ("beacon",)
    assert admitted.submission.body_type == "sigstore-bundle"
    r = ledger.append_admitted([admitted])[0]
    assert r.index == 3 and not r.duplicate
    check_ledger(ledger.store)


def test_a_failed_sigstore_bundle_is_refused_even_for_a_registered_identity(
    ledger: Ledger, admin: KeySigner
) -> None:
    case = "dsse-invalid-sig_fail"
    spec = make_spec(
        "beacon", now=ledger.now(), issuer=ISSUER, identity=IDENTITY, trusted_root=_root(case)
    )
    add_signer(ledger, spec, admin)
    refused(ledger, _bundle(case), NotTrusted, "bad signature for signer 'beacon'")


def test_admitted_is_what_the_server_is_written_against(
    ci: Ledger, signed_samples: list[bytes]
) -> None:
    a = ci.admit(signed_samples[4])
    assert isinstance(a, Admitted)
    assert a.submission.content == signed_samples[4]
    assert a.submission.body_type == "dsse"
