"""Strict in what the registry and the token table write: text that names a predicate type, a
Sigstore identity or a token is refused with a reason when it cannot be what it claims (a NUL, a
space, no URI scheme), and a name no token can have is "no such token" on both backends (on
PostgreSQL it reached the database, which refused the NUL: a 422 naming a database error)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import func, select

from ledger._internal import schema
from ledger.errors import InvalidInput, NotFound
from ledger.log import Ledger, utc_now
from ledger.registry import add_signer, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.tokens import Tokens
from tests.conftest import fixture_path

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PEM = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://slsa.dev/provenance/v1\x00",
        "https://example.com/a type",
        "https://example.com/\ttab",
        "slsa-provenance",  # no scheme
        "",
        "https://example.com/" + "a" * 2048,
        "https://x\u009b31m",  # C1 control (CSI)
        "https://x/\u202egnp.exe",  # right-to-left override
        "https://x/\u200bv1",  # zero-width space
        "https://x/\ufeffv1",  # byte order mark
        "https://x/\uffff",  # noncharacter
        "https://x/\u2028v1",  # line separator
    ],
)
def test_a_predicate_type_that_is_not_a_uri_is_refused(uri: str) -> None:
    with pytest.raises(InvalidInput, match="expected a URI"):
        make_spec("ci", now=NOW, key=PEM, predicate_types=["https://slsa.dev/provenance/v1", uri])


def test_repeated_or_too_many_predicate_types_are_refused() -> None:
    with pytest.raises(InvalidInput, match="listed twice"):
        make_spec("ci", now=NOW, key=PEM, predicate_types=["https://a.test/v1"] * 2)
    many = [f"https://a.test/v{i}" for i in range(257)]
    with pytest.raises(InvalidInput, match="at most 256 predicate types"):
        make_spec("ci", now=NOW, key=PEM, predicate_types=many)
    assert len(make_spec("ci", now=NOW, key=PEM, predicate_types=many[:256]).predicate_types) == 256


def test_predicate_type_uris_of_any_scheme_are_accepted() -> None:
    types = [
        "https://slsa.dev/provenance/v1",
        "urn:example:attestation:v1",
        "http://x.test/a?b=c",
        "https://example.com/attestation/\u00e9t\u00e9/v1",  # letters beyond ASCII are fine
    ]
    assert make_spec("ci", now=NOW, key=PEM, predicate_types=types).predicate_types == tuple(types)


@pytest.mark.parametrize(
    ("issuer", "identity"),
    [
        ("https://token.actions.githubusercontent.com\x00", "https://github.com/o/r/.github/w.yml"),
        ("https://token.actions.githubusercontent.com", "ci@example.com\n"),
        ("https://token.actions.githubusercontent.com", "ci@example\x7f.com"),
        ("https://token.actions.githubusercontent.com", "ci@example\u009b.com"),
        ("https://token.actions.githubusercontent.com\u202e", "ci@example.com"),
        ("https://token.actions.githubusercontent.com", "ci@exa\u200bmple.com"),
    ],
)
def test_a_sigstore_identity_with_control_characters_is_refused(issuer: str, identity: str) -> None:
    with pytest.raises(InvalidInput, match="without control, format or separator characters"):
        make_spec("ci", now=NOW, issuer=issuer, identity=identity, trusted_root=b"{}")


def test_the_refused_signer_is_not_logged(ledger: Ledger, key_path: Path) -> None:
    admin = load_admin_key(admin_key_path(key_path))
    size = ledger.store.size()
    with pytest.raises(InvalidInput):
        add_signer(
            ledger,
            make_spec("ci", now=ledger.now(), key=PEM, predicate_types=["https://x.test/\x00"]),
            admin,
        )
    assert ledger.store.size() == size


@pytest.mark.parametrize("name", ["a\x00b", "\x00", "a b", "x" * 129])
def test_revoking_a_name_no_token_can_have_is_not_found(ledger: Ledger, name: str) -> None:
    tokens = Tokens(ledger.store.engine, utc_now, 0)
    tokens.create("ci", ["read"])
    with pytest.raises(NotFound, match="no token named"):
        tokens.revoke(name)
    with ledger.store.engine.connect() as conn:  # nothing else was touched
        count = conn.execute(select(func.count()).select_from(schema.api_tokens)).scalar_one()
    assert count == 1


@pytest.mark.parametrize(
    "text", ["2099-01-01T00:00:00\x00Z", "2099-01-01T00:00:00\u202eZ", "2099-01-01\u00a0T00:00Z"]
)
def test_a_time_with_a_character_no_time_has_is_refused_everywhere(text: str) -> None:
    from ledger.errors import BadQuery
    from ledger.index.params import parse_time_param
    from ledger.record import parse_when
    from ledger.tokens import parse_expiry

    with pytest.raises(InvalidInput, match="not an RFC 3339 time"):
        parse_when(text, "validUntil")
    with pytest.raises(InvalidInput, match="neither RFC 3339"):
        parse_expiry(text, NOW)
    with pytest.raises(BadQuery, match="since"):
        parse_time_param("since", text)
    assert parse_when("2099-01-01T00:00:00Z", "validUntil") == datetime(2099, 1, 1, tzinfo=UTC)


def _production_root(*junk: str) -> bytes:
    """The production trusted root, with the base64 of its first CA certificate ("ca") or of
    every Rekor ("rekor") or CT log key ("ct") replaced by junk, or every Rekor key declared
    of a type it is not ("rekor-type")."""
    path = fixture_path("sigstore-bundles/trust-roots/production/trusted_root.json")
    root = json.loads(path.read_bytes())
    where = {
        "ca": [root["certificateAuthorities"][0]["certChain"]["certificates"][0]],
        "rekor": [log["publicKey"] for log in root["tlogs"]],
        "ct": [log["publicKey"] for log in root["ctlogs"]],
    }
    for part in junk:
        for value in where[part.removesuffix("-type")]:
            if part.endswith("-type"):
                value["keyDetails"] = "PKIX_RSA_PKCS1V15_2048_SHA256"
            else:
                value["rawBytes"] = "AAAA"
    return json.dumps(root).encode()


@pytest.mark.parametrize("part", ["ca", "rekor", "ct", "rekor-type"])
def test_a_trusted_root_with_a_key_or_certificate_that_is_not_one_is_refused(part: str) -> None:
    """sigstore reads a root's keys and certificates only when it verifies a bundle: a CA
    certificate of junk was taken and logged for good, and every bundle of its signer refused
    later with an ASN.1 error; then log keys declared RSA that are not, which sigstore
    skips, leaving no key to verify with (the hostile tests of 2026-12-02)."""
    issuer, identity = "https://token.actions.githubusercontent.com", "https://github.com/o/r"
    assert make_spec(
        "ci", now=NOW, issuer=issuer, identity=identity, trusted_root=_production_root()
    )
    with pytest.raises(InvalidInput, match="not a Sigstore trusted root"):
        make_spec(
            "ci",
            now=NOW,
            issuer=issuer,
            identity=identity,
            trusted_root=_production_root(part),
        )
