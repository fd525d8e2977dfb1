"""Version ranges for the dependency search, read with ``univers`` (pure).

A range is either ``vers:<scheme>/<constraints>`` (the vers spec: versions compared by the
ecosystem's own ordering) or the ecosystem's native syntax, read by univers's range class for the
purl type (``RANGE_CLASS_BY_SCHEMES``). Where univers's native reader falls short of the
ecosystem's own definition, the range is first rewritten into constraints it reads, following
that definition:

- PyPI (PEP 440): ``~=V`` (compatible release) is ``>=V, ==P.*`` with P the release of V less its
  last part, and ``==P.*`` is ``>=P.dev0, <P'.dev0`` (P' = P with its last part plus one: no
  version of P' — not even a pre-release — is in it);
- npm (node-semver): an exclusive upper bound ``<X.Y.Z`` (what ``^``, ``~``, ``1.x`` and hyphen
  ranges desugar to) admits no pre-release of ``X.Y.Z`` (node-semver desugars ``^1.2.3`` to
  ``>=1.2.3 <2.0.0-0``); the text must follow node-semver's range grammar (univers accepts some
  malformed input such as ``^^1``).

Anything univers cannot read, or reads into an empty constraint, is :class:`BadQuery` with
univers's reason.
"""

from __future__ import annotations

import re
from typing import Any

from ledger.errors import BadQuery

__all__ = ["parse_range"]

# purl types whose univers scheme has another name
_SCHEMES = {"golang": "golang", "github": "github"}
_PEP440_WILDCARD = re.compile(r"\s*==\s*([0-9]+(?:\.[0-9]+)*)\.\*\s*")
_PEP440_COMPATIBLE = re.compile(r"\s*~=\s*(\S+)\s*")
# node-semver's grammar (https://github.com/npm/node-semver#range-grammar), whitespace-tolerant
_XR = r"(?:[xX*]|0|[1-9][0-9]*)"
_PARTIAL = rf"v?{_XR}(?:\.{_XR}(?:\.{_XR}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)?)?"
_SIMPLE = rf"(?:(?:<=|>=|<|>|=|~>?|\^)?\s*{_PARTIAL})"
_RANGE = rf"(?:{_PARTIAL}\s+-\s+{_PARTIAL}|{_SIMPLE}(?:\s+{_SIMPLE})*)?"
_NPM = re.compile(rf"\s*{_RANGE}\s*(?:\|\|\s*{_RANGE}\s*)*")


def scheme_of(purl_type: str) -> str:
    return _SCHEMES.get(purl_type, purl_type)


def parse_range(purl_type: str, text: str) -> Any:
    """A univers ``VersionRange`` for ``text`` (vers or native) on packages of ``purl_type``."""
    from univers.version_range import RANGE_CLASS_BY_SCHEMES, VersionRange

    scheme = scheme_of(purl_type)
    cls: Any = RANGE_CLASS_BY_SCHEMES.get(scheme)
    try:
        if text.startswith("vers:"):
            got = text[5:].split("/", 1)[0]
            if got != scheme:
                raise BadQuery(
                    f"versions: range scheme {got!r} does not match the purl type {purl_type!r}"
                )
            return _checked(VersionRange.from_string(text))  # type: ignore[no-untyped-call]
        if cls is None:
            raise BadQuery(f"versions: no version rules known for purl type {purl_type!r}")
        if scheme == "pypi":
            return _checked(cls.from_native(_pep440(text)))
        if scheme == "npm":
            return _npm(cls, text)
        return _checked(cls.from_native(text))
    except BadQuery:
        raise
    except NotImplementedError as e:
        raise BadQuery(
            f"versions: univers knows no native range syntax for {purl_type}; give a vers range, "
            f"e.g. vers:{scheme}/>=1.0|<2.0"
        ) from e
    except Exception as e:
        why = (str(e) or str(e.__cause__ or e.__context__ or "") or type(e).__name__)[:200]
        hint = f" (give a vers range, e.g. vers:{scheme}/>=1.0|<2.0)"
        raise BadQuery(f"versions: not a valid range for {purl_type}: {why}{hint}") from e


def _checked(found: Any) -> Any:
    constraints = list(getattr(found, "constraints", None) or [])
    if not constraints or any(
        c.comparator != "*" and str(c.version) in ("None", "") for c in constraints
    ):
        raise ValueError(f"univers reads it as {found}, which constrains nothing")
    return found


def _release(version: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion as e:
        raise ValueError(f"{version!r} is not a PEP 440 version") from e


def _upper(prefix: tuple[int, ...]) -> str:
    """The first version not starting with ``prefix``: ``P'.dev0``."""
    return ".".join(map(str, (*prefix[:-1], prefix[-1] + 1))) + ".dev0"


def _pep440(text: str) -> str:
    """PEP 440 specifiers with ``~=`` and ``==P.*`` rewritten into ones univers reads."""
    out = []
    for spec in text.split(","):
        if m := _PEP440_COMPATIBLE.fullmatch(spec):
            release = _release(m.group(1))
            if len(release) < 2:
                raise ValueError(
                    f"~={m.group(1)}: a compatible release needs two parts, e.g. ~=2.1"
                )
            out += [f">={m.group(1)}", f"<{_upper(release[:-1])}"]
        elif m := _PEP440_WILDCARD.fullmatch(spec):
            prefix = tuple(int(p) for p in m.group(1).split("."))
            out += [f">={m.group(1)}.dev0", f"<{_upper(prefix)}"]
        else:
            out.append(spec)
    return ",".join(out)


def _npm(cls: Any, text: str) -> Any:
    from univers.version_constraint import VersionConstraint

    if not _NPM.fullmatch(text):
        raise ValueError("not in node-semver's range grammar, e.g. ^1.2.3, ~1.2, >=1.0.0 <2.0.0")
    found = _checked(cls.from_native(text))
    constraints = [
        VersionConstraint(comparator="<", version=found.version_class(f"{c.version}-0"))
        if c.comparator == "<" and c.version is not None and not c.version.value.prerelease
        else c
        for c in found.constraints
    ]
    return cls(constraints=constraints)
