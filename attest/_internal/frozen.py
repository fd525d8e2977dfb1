"""Value classes that cost nothing to define, for the modules a cold ``verify`` run imports.

``@dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` (and, when
frozen, ``__setattr__`` and ``__delattr__``) as source text and compiles it while the module is
imported: ~0.3 ms of CPU per frozen class, ~3 M instructions. A cold ``verify`` defined 34 such
classes, ~10 ms — more than the verification itself. A class on that path derives from
:class:`Frozen` (immutable, hashable) or :class:`Value` (mutable, unhashable) instead, names its
fields in ``_fields`` and sets them in its own ``__init__``; equality, hash, repr and
``replace`` are defined once, here, with a dataclass's meaning: equal when of the same class with
equal fields, the hash of the fields, ``Name(field=value, …)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn, Self

__all__ = ["Frozen", "FrozenInstanceError", "Value"]

set_field = object.__setattr__  # how a Frozen subclass's ``__init__`` sets its fields


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a :class:`Frozen` instance (as ``dataclasses``' error)."""


class Value:
    """Fields named by ``_fields``; equality and repr over them. Mutable, so not hashable."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self._values() == other._values()

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, made through ``__init__`` (its checks run again), as
        ``dataclasses.replace``."""
        return type(self)(**{**{name: getattr(self, name) for name in self._fields}, **changes})


class Frozen(Value):
    """A :class:`Value` whose fields cannot change after ``__init__`` (which sets them with
    :data:`set_field`); hashable."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise FrozenInstanceError(f"cannot delete field {name!r}")
