"""attest._internal.frozen: the value classes on verify's cold path keep a frozen dataclass's
meaning — equality by class and fields, hash of the fields, no assignment, a repr naming every
field, and copies made through ``__init__`` so its checks run again."""

from __future__ import annotations

import pytest

from attest._internal.frozen import Frozen, FrozenInstanceError, Value, set_field
from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor
from ledger.checkpoint import Checkpoint


class _Point(Frozen):
    _fields = ("x", "y")
    x: int
    y: int

    def __init__(self, x: int, y: int = 0) -> None:
        set_field(self, "x", x)
        set_field(self, "y", y)
        if x < 0:
            raise ValueError("x must not be negative")


class _Other(_Point):
    pass


class _Box(Value):
    _fields = ("items",)

    def __init__(self, items: list[int]) -> None:
        self.items = items


def test_equality_and_hash_are_by_class_and_fields() -> None:
    assert _Point(1, 2) == _Point(1, 2) and hash(_Point(1, 2)) == hash(_Point(1, 2))
    assert _Point(1, 2) != _Point(2, 1)
    assert _Point(1, 2) != _Other(1, 2)  # a subclass is another class, as for dataclasses
    assert _Point(1, 2) != (1, 2)  # not a tuple
    assert len({_Point(1, 2), _Point(1, 2), _Point(3)}) == 2


def test_fields_cannot_be_assigned_or_deleted() -> None:
    p = _Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del p.y
    with pytest.raises(AttributeError):  # dataclasses' FrozenInstanceError is one too
        p.z = 1  # type: ignore[attr-defined]
    assert (p.x, p.y) == (1, 2)


def test_repr_names_every_field() -> None:
    assert repr(_Point(1, 2)) == "_Point(x=1, y=2)"
    assert repr(Checkpoint("o", 3, b"\0")) == (
        "Checkpoint(origin='o', size=3, root_hash=b'\\x00', extensions=())"
    )


def test_replace_runs_the_checks_of_init_again() -> None:
    p = _Point(1, 2)
    assert p.replace(y=7) == _Point(1, 7) and p == _Point(1, 2)
    with pytest.raises(ValueError, match="negative"):
        p.replace(x=-1)
    rd = ResourceDescriptor(name="a", digest={"sha256": "0" * 64})
    with pytest.raises(InvalidStatement):
        rd.replace(digest={"sha256": "not hex"})
    with pytest.raises(TypeError):
        p.replace(z=1)


def test_a_mutable_value_compares_by_fields_and_is_not_hashable() -> None:
    b = _Box([1])
    b.items.append(2)
    b.items = [1, 2]
    assert b == _Box([1, 2]) and b != _Box([1])
    with pytest.raises(TypeError):
        hash(b)


def test_defaults_that_were_factories_are_fresh_per_instance() -> None:
    a, b = ResourceDescriptor(name="a"), ResourceDescriptor(name="b")
    assert a.digest == {} and a.digest is not b.digest
