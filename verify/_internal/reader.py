"""Typed reading of a parsed YAML/JSON mapping that names every problem with its place.

The policy is read on every deploy, so its validation must cost no import: :class:`Fields` reads
one mapping's keys (each by its document name, or by its Python name as pydantic's
``populate_by_name`` did), converts them as pydantic's lax mode did (``"2"`` is the integer 2,
``yes`` is true), collects every problem as ``place: message`` in one list shared by the whole
document, and refuses the keys nobody read. The messages are pydantic's, so a policy error reads
as it did when the policy was a pydantic model (``steps[0].treshold: Extra inputs are not
permitted``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

__all__ = ["CLASH", "EMPTY_RULES", "MISSING", "NO_VALUE", "Fields", "Loc", "Problems", "where"]

T = TypeVar("T")
Loc = tuple[int | str, ...]
_NOT_TEXT = "Input should be a valid string"
NO_VALUE = "has no value (null): give it one, or remove the key to leave the setting out"
_EMPTY = "is empty: give a value, or remove the key to leave the setting out"
EMPTY_RULES = (
    "is empty: it would silently drop the rule its author meant to write; give at least one, "
    "or remove the key to leave the rule out"
)
MISSING: Any = object()  # a key the mapping does not have
CLASH: Any = object()  # a key given in both its spellings (recorded as a problem)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_SECONDS = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def where(loc: Loc) -> str:
    """``steps[0].threshold``: a place in the document as a reader writes it."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _part(key: Any) -> int | str:
    """A key of the document as a place: an integer key reads as ``[0]``, as pydantic wrote it."""
    return key if isinstance(key, int) and not isinstance(key, bool) else str(key)


class Problems(list[str]):
    """Every problem found in one document, each ``place: message``, in reading order."""

    def add(self, loc: Loc, message: str) -> None:
        self.append(f"{where(loc)}: {message}")


class _Invalid(Exception):
    """One value's problem (its message), raised by a converter."""


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(_NOT_TEXT)
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool):  # Python's bool is an int: ``threshold: true`` is no count
        raise _Invalid("Input should be a valid integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _Invalid("Input should be a valid integer, got a number with a fractional part")
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        return int(value)
    if isinstance(value, str):
        raise _Invalid("Input should be a valid integer, unable to parse string as an integer")
    raise _Invalid("Input should be a valid integer")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and (isinstance(value, int) or value.is_integer()):
        if value in (0, 1):
            return bool(value)
        raise _Invalid("Input should be a valid boolean, unable to interpret input")
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise _Invalid("Input should be a valid boolean, unable to interpret input")
    raise _Invalid("Input should be a valid boolean")


def _datetime(value: Any) -> datetime:
    """A datetime, a date (its midnight), or RFC 3339 text. A number is refused: whether it
    counts seconds or milliseconds is a guess (pydantic guessed by size), and a validity window
    read as wider than written would trust a signer longer than the policy says."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) or (isinstance(value, str) and _SECONDS.fullmatch(value)):
        raise _Invalid(
            "Input should be an RFC 3339 date-time such as 2026-12-01T00:00:00Z, not a number "
            "(seconds or milliseconds would be a guess)"
        )
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except (ValueError, OverflowError):
            raise _Invalid("Input should be a valid datetime or date, invalid format") from None
    raise _Invalid("Input should be a valid datetime")


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    quoted = [repr(o) for o in options]
    said = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"

    def convert(value: Any) -> str:
        if value not in options or not isinstance(value, str):
            raise _Invalid(f"Input should be {said}")
        return value

    return convert


class Fields:
    """One mapping of the document at ``loc``. Each getter reads one key and returns its value,
    or the default (also when the value is wrong: the problem is recorded, and
    :attr:`ok` tells whether this mapping read cleanly). :meth:`done` refuses unread keys."""

    def __init__(self, doc: dict[Any, Any], loc: Loc, problems: Problems) -> None:
        self.doc, self.loc, self.problems = doc, loc, problems
        self._read: set[Any] = set()
        self._start = len(problems)

    @classmethod
    def of(cls, value: Any, loc: Loc, problems: Problems, model: str) -> Fields | None:
        """A reader over ``value``, or ``None`` (recorded) if it is not a mapping."""
        if not isinstance(value, dict):
            problems.add(loc, f"Input should be a valid dictionary or instance of {model}")
            return None
        return cls(value, loc, problems)

    @property
    def ok(self) -> bool:
        """No problem was recorded inside this mapping so far."""
        return len(self.problems) == self._start

    def fail(self, message: str, *, key: str | None = None) -> None:
        """Record a problem of this mapping (a rule across its fields), or of one of its keys."""
        self.problems.add(self.loc + ((key,) if key else ()), message)

    def raw(self, key: str, name: str | None = None) -> Any:
        """The value under ``key`` (or its Python ``name``), or a missing marker."""
        self._read.update((key, name) if name else (key,))
        if name and name != key and key in self.doc and name in self.doc:
            self.fail(f"give {key} or {name}, not both (they are one setting)", key=key)
            return CLASH
        if key in self.doc:
            return self.doc[key]
        return self.doc[name] if name and name in self.doc else MISSING

    def _get(
        self,
        key: str,
        convert: Callable[[Any], T],
        default: Any,
        *,
        name: str | None = None,
    ) -> Any:
        value = self.raw(key, name)
        if value is CLASH:
            return default if default is not MISSING else None
        if value is MISSING:
            if default is MISSING:
                self.fail("Field required", key=key)
                return None
            return default
        if value is None:
            # a key with no value (YAML's ``builderId:`` with nothing after it) is refused, never
            # read as absent: that would silently drop the rule its author meant to write
            self.fail(NO_VALUE, key=key)
            return default if default is not MISSING else None
        try:
            return convert(value)
        except _Invalid as e:
            self.fail(str(e), key=key)
            return default if default is not MISSING else None

    def text(
        self,
        key: str,
        *,
        name: str | None = None,
        required: bool = False,
        min_length: int = 0,
        pattern: str | None = None,
    ) -> Any:
        """A string (``None`` when absent, unless ``required``; a null value is refused)."""

        def convert(value: Any) -> str:
            s = _string(value)
            if not s and not min_length:
                raise _Invalid(_EMPTY)
            if len(s) < min_length:
                raise _Invalid(f"String should have at least {min_length} character")
            if pattern is not None and not re.search(pattern, s):
                raise _Invalid(f"String should match pattern '{pattern}'")
            return s

        return self._get(key, convert, MISSING if required else None, name=name)

    def choice(self, key: str, options: tuple[str, ...], *, name: str | None = None) -> Any:
        """One of ``options``, required."""
        return self._get(key, _choice(options), MISSING, name=name)

    def optional_choice(self, key: str, options: tuple[str, ...]) -> Any:
        return self._get(key, _choice(options), None)

    def integer(self, key: str, default: int, *, ge: int) -> int:
        def convert(value: Any) -> int:
            n = _integer(value)
            if n < ge:
                raise _Invalid(f"Input should be greater than or equal to {ge}")
            return n

        result: int = self._get(key, convert, default)
        return result

    def flag(self, key: str, *, name: str | None = None) -> bool:
        result: bool = self._get(key, _boolean, False, name=name)
        return result

    def time(self, key: str, *, name: str) -> datetime | None:
        result: datetime | None = self._get(key, _datetime, None, name=name)
        return result

    def texts(
        self, key: str, *, name: str | None = None, min_items: int = 0, rules: bool = False
    ) -> list[str]:
        """A list of strings; each bad item is named by its index. With ``rules`` (the list
        is rules, such as a step's expressions) an empty list is refused: read as "no rule", it
        would silently drop the rules its author meant to write."""
        value = self.raw(key, name)
        if value is CLASH:
            return []
        if value is MISSING:
            if min_items:
                self.fail("Field required", key=key)
            return []
        if value is None:
            self.fail(NO_VALUE, key=key)
            return []
        if not isinstance(value, list | tuple):
            self.fail("Input should be a valid list", key=key)
            return []
        if rules and not value:
            self.fail(EMPTY_RULES, key=key)
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.problems.add((*self.loc, key, i), _NOT_TEXT)
        if len(value) < min_items:
            self.fail(
                f"List should have at least {min_items} item after validation, not {len(value)}",
                key=key,
            )
        return out

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw(key)
        if value is MISSING:
            return {}
        if value is None:
            self.fail(NO_VALUE, key=key)
            return {}
        if not isinstance(value, dict):
            self.fail("Input should be a valid dictionary", key=key)
            return {}
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                self.problems.add((*self.loc, key, _part(k), "[key]"), _NOT_TEXT)
            if not isinstance(v, str):
                self.problems.add((*self.loc, key, _part(k)), _NOT_TEXT)
            elif isinstance(k, str):
                out[k] = v
        return out

    def model(self, key: str, read: Callable[[Any, Loc, Problems], T | None]) -> T | None:
        """A nested mapping read by ``read`` (``None`` when absent). A key with no value (YAML's
        ``vulnerabilities:`` with nothing under it is null) is refused: read as absent, it
        would silently drop the rule its author meant to write."""
        value = self.raw(key)
        if value is MISSING:
            return None
        if value is None:
            self.fail(NO_VALUE, key=key)
            return None
        return read(value, (*self.loc, key), self.problems)

    def models(self, key: str, read: Callable[[Any, Loc, Problems], T | None]) -> list[T] | None:
        """A list of nested mappings (rules: steps, denied dependencies); ``None`` if any of
        them (or the list) is wrong. An empty list is refused like a null one: read as "no
        rule", it would silently drop the rules its author meant to write."""
        value = self.raw(key)
        if value is MISSING:
            return []
        if value is None:
            self.fail(NO_VALUE, key=key)
            return None
        if not isinstance(value, list | tuple):
            self.fail("Input should be a valid list", key=key)
            return None
        if not value:
            self.fail(EMPTY_RULES, key=key)
            return None
        got = [read(item, (*self.loc, key, i), self.problems) for i, item in enumerate(value)]
        return None if any(g is None for g in got) else [g for g in got if g is not None]

    def model_map(
        self, key: str, read: Callable[[Any, Loc, Problems], T | None]
    ) -> dict[str, T] | None:
        """A mapping of names to nested mappings; ``None`` if any of them is wrong."""
        value = self.raw(key)
        if value is MISSING:
            return {}
        if value is None:
            self.fail(NO_VALUE, key=key)
            return None
        if not isinstance(value, dict):
            self.fail("Input should be a valid dictionary", key=key)
            return None
        out: dict[str, T] = {}
        bad = False
        for name, item in value.items():
            if not isinstance(name, str):
                self.problems.add((*self.loc, key, _part(name), "[key]"), _NOT_TEXT)
                bad = True
            got = read(item, (*self.loc, key, _part(name)), self.problems)
            if got is None:
                bad = True
            else:
                out[name] = got
        return None if bad else out

    def done(self) -> bool:
        """Refuse every key no getter read; whether the mapping read cleanly."""
        for key in self.doc:
            if not isinstance(key, str):
                self.problems.add((*self.loc, _part(key)), "Keys should be strings")
            elif key not in self._read:
                self.problems.add((*self.loc, key), "Extra inputs are not permitted")
        return self.ok
