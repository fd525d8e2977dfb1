"""The in-toto attestation Go reference's schema vectors get the same verdict and error name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attest.errors import InvalidStatement
from attest.predicates import SLSAProvenance, parse_predicate
from attest.statement import ResourceDescriptor, Statement, parse_statement
from tests.conftest import fixture_cases, fixture_path

VECTORS_FILE = ("dsse", "statement-v1", "vectors.json")


def load_vectors(path: Path) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(path.read_text())["vectors"]
    return vectors


def check(vector: dict[str, Any]) -> None:
    kind = vector["kind"]
    if kind == "Statement":
        parse_statement(vector["json"])
    elif kind == "ResourceDescriptor":
        ResourceDescriptor.from_dict(json.loads(vector["json"]))
    else:
        parse_predicate(SLSAProvenance.PREDICATE_TYPE, json.loads(vector["json"]))


def test_all_vectors_are_here() -> None:
    vectors = load_vectors(fixture_path(*VECTORS_FILE))
    assert len(vectors) == 26
    assert {v["kind"] for v in vectors} == {
        "Statement",
        "ResourceDescriptor",
        "SLSA Provenance v1 predicate",
    }


# Our one deliberate disagreement with the Go reference (docs/design.md, deviations): the in-toto
# Statement v1 spec makes the predicate optional and PyPI publishes statements without one.
VALID_HERE = {"statement-missing-predicate"}


@pytest.mark.parametrize(
    "vector", fixture_cases(VECTORS_FILE, load_vectors, ids=lambda v: str(v["id"]))
)
def test_vector_verdict(vector: dict[str, Any]) -> None:
    if vector["id"] in VALID_HERE:
        assert not vector["valid"] and vector["error"] == "ErrPredicateRequired"
        assert parse_statement(vector["json"]).predicate is None
    elif vector["valid"]:
        check(vector)
    else:
        with pytest.raises(InvalidStatement) as info:
            check(vector)
        assert info.value.code == vector["error"]


def test_valid_statement_round_trips_through_canonical_json() -> None:
    st = parse_statement(load_vectors(fixture_path(*VECTORS_FILE))[0]["json"])
    again = parse_statement(st.to_json())
    assert again == st
    assert st.to_json() == parse_statement(json.dumps(st.to_dict(), indent=2)).to_json()


def test_statement_constructor_enforces_the_same_rules() -> None:
    rd = ResourceDescriptor(name="a", digest={"sha256": "ab" * 32})
    with pytest.raises(InvalidStatement) as e:
        Statement((), "t", {})
    assert e.value.code == "ErrSubjectRequired"
    with pytest.raises(InvalidStatement) as e:
        Statement((ResourceDescriptor(name="nodigest"),), "t", {})
    assert e.value.code == "ErrDigestRequired"
    with pytest.raises(InvalidStatement) as e:
        Statement((rd,), "t", {}, type="https://in-toto.io/Statement/v2")
    assert e.value.code == "ErrInvalidStatementType"


@pytest.mark.parametrize("doc", [b"{", b"[]", b'"x"'])
def test_non_objects_are_refused(doc: bytes) -> None:
    with pytest.raises(InvalidStatement):
        parse_statement(doc)
