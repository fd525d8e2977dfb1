"""Which vulnerabilities trusted OpenVEX statements clear for the artifact, pure.

OpenVEX v0.2 semantics, strictly: a statement speaks only about the products it lists, so it
counts for an artifact only when one of its products names the artifact's digest as its identity
— its ``@id`` or an ``identifiers`` value is the digest (``sha256:HEX``), a purl whose version or
``digest``/``checksum`` qualifier is it (``pkg:oci/app@sha256%3AHEX``) or a reference ending in
``@sha256:HEX``; or its ``hashes`` list it — or when the product's ``@id`` is the name of an in-toto
subject of the same attestation whose digest is the artifact's. For each (vulnerability,
artifact) the latest statement wins: by its timestamp (the statement's, else its document's;
never later than its record's ledger time, or ``--at`` for a third-party attestation), then by
its ledger record, then by its place in the document; the artifact is cleared only when
that latest status is ``fixed`` or ``not_affected``.

A product may scope a statement to its ``subcomponents``: such a statement speaks only about
findings in one of those packages (the finding's package purl, compared after purl
normalisation, PEP 503 for ``pkg:pypi``); a finding that names no package is outside every
scope. The latest statement that speaks about a finding decides it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from verify.artifact import Artifact
    from verify.trust import Attestation

__all__ = ["CLEARED", "Clearances", "cleared_for"]

CLEARED = ("fixed", "not_affected")
OPENVEX_TYPE = "https://openvex.dev/ns/v0.2.0"
_DIGEST = re.compile(
    r"(sha256|sha384|sha512|sha1|sha-256|sha-384|sha-512|sha-1):([0-9a-f]+)", re.IGNORECASE
)
# purl types whose namespace and name are case-insensitive (the purl specification's types)
_FOLDED = frozenset({"bitbucket", "composer", "deb", "github", "hex", "npm", "pypi"})
Order = tuple[datetime, int, int]
# a package as a purl's parts: (type, namespace, name, version, qualifiers)
Package = tuple[str, str, str, str | None, frozenset[tuple[str, str]]]


def _alg(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _digest(text: str) -> tuple[str, str] | None:
    m = _DIGEST.fullmatch(text)
    return (_alg(m.group(1)), m.group(2).lower()) if m else None


def _digests_in(text: str) -> set[tuple[str, str]]:
    """The digests that are ``text``'s identity: ``text`` is a digest (``sha256:HEX``), a purl
    whose version is one (``pkg:oci/app@sha256%3AHEX``) or whose ``digest`` / ``checksum``
    qualifier lists it, or a reference ending in one (``ghcr.io/org/app@sha256:HEX``). A digest
    anywhere else (``pkg:npm/unrelated@1.0?note=sha256:HEX``, a path, a fragment) names nothing:
    anyone can write the artifact's digest into a product that is something else."""
    whole = _digest(unquote(text))
    if whole is not None:
        return {whole}
    if text.startswith("pkg:"):
        return _purl_digests(text)
    head, at, tail = text.rpartition("@")
    if not at or any(c in head for c in "?#") or any(c.isspace() for c in head):
        return set()
    found = _digest(unquote(tail))
    return {found} if found is not None else set()


def _purl_digests(purl: str) -> set[tuple[str, str]]:
    from packageurl import PackageURL

    try:
        p = PackageURL.from_string(purl)
    except ValueError:
        return set()
    qualifiers = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    values = [p.version or ""] + [
        str(v) for k, v in qualifiers.items() if k in ("digest", "checksum", "checksums")
    ]
    found = {_digest(unquote(part.strip())) for value in values for part in value.split(",")}
    return {d for d in found if d is not None}


def _product_digests(
    product: Mapping[str, Any], subjects: Mapping[str, Any]
) -> set[tuple[str, str]]:
    """Every (algorithm, hex) a product names: its ``@id``, ``identifiers``, ``hashes``, and the
    digest of the attestation's subject the ``@id`` names."""
    pid = product.get("@id")
    out = _digests_in(pid) if isinstance(pid, str) else set()
    idents = product.get("identifiers")
    for value in idents.values() if isinstance(idents, dict) else []:
        if isinstance(value, str):
            out |= _digests_in(value)
    hashes = product.get("hashes")
    for alg, value in hashes.items() if isinstance(hashes, dict) else []:
        if isinstance(alg, str) and isinstance(value, str):
            out.add((_alg(alg), value.lower()))
    subject = subjects.get(pid) if isinstance(pid, str) else None
    if isinstance(subject, dict):
        out |= {(_alg(a), str(h).lower()) for a, h in subject.items()}
    return out


def _names(art: Artifact, digests: set[tuple[str, str]]) -> bool:
    return any((_alg(a), h.lower()) in digests for a, h in art.digest.items())


def package(purl: str) -> Package | None:
    """A purl's package, normalised (``None`` if it is no purl): type, namespace and name
    folded where the purl type is case-insensitive, a ``pkg:pypi`` name PEP 503-normalised."""
    from packageurl import PackageURL

    try:
        p = PackageURL.from_string(purl.strip())
    except ValueError:
        return None
    kind, namespace, name = p.type.lower(), p.namespace or "", p.name
    if kind in _FOLDED:
        namespace, name = namespace.lower(), name.lower()
    if kind == "pypi":
        from packaging.utils import canonicalize_name

        name = canonicalize_name(name)
    qualifiers = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    return (
        kind,
        namespace,
        name,
        p.version,
        frozenset((str(k), str(v)) for k, v in qualifiers.items()),
    )


def _within(found: Package, scope: Package) -> bool:
    """Whether a finding's package is the subcomponent ``scope``: the same package, and the
    same version and qualifiers wherever the subcomponent gives them."""
    if found[:3] != scope[:3]:
        return False
    return (scope[3] is None or scope[3] == found[3]) and scope[4] <= found[4]


def _scope(product: Mapping[str, Any]) -> frozenset[Package] | None:
    """The packages a product's ``subcomponents`` scope its statement to (``None``: the whole
    product). A subcomponent given by no purl (its ``@id`` or ``identifiers.purl``) is in the
    scope but matches no finding; ``subcomponents`` that is not a non-empty list scopes the
    statement to nothing, never to the whole product."""
    if "subcomponents" not in product:
        return None
    raw = product["subcomponents"]
    out: set[Package] = set()
    for sub in raw if isinstance(raw, list) else []:
        idents = sub.get("identifiers") if isinstance(sub, dict) else None
        texts = [sub.get("@id")] if isinstance(sub, dict) else []
        texts += [idents.get("purl")] if isinstance(idents, dict) else []
        out |= {p for t in texts if isinstance(t, str) for p in [package(t)] if p is not None}
    return frozenset(out)


class Clearances:
    """What trusted VEX statements say about each (vulnerability, artifact name): every
    statement's order, status and scope (``None`` for the whole artifact)."""

    def __init__(
        self, said: Mapping[tuple[str, str], list[tuple[Order, str, frozenset[Package] | None]]]
    ) -> None:
        self._said = said

    def clears(self, vulnerability: str, artifact: str, packages: Sequence[str]) -> bool:
        """Whether the latest statement that speaks about this finding — about the whole
        artifact, or scoped to subcomponents that include each of the finding's ``packages``
        (purls) — says ``fixed`` or ``not_affected``."""
        found = [package(p) for p in packages]
        latest: tuple[Order, str] | None = None
        for order, status, scope in self._said.get((vulnerability, artifact), []):
            if scope is not None and not (
                found and all(f is not None and any(_within(f, s) for s in scope) for f in found)
            ):
                continue  # scoped to other packages, or the finding names none
            if latest is None or latest[0] <= order:
                latest = (order, status)
        return latest is not None and latest[1] in CLEARED


def _statements(
    atts: Sequence[Attestation],
) -> Iterable[tuple[Order, str, str, list[Any], dict[str, Any]]]:
    """(order, vulnerability, status, raw products, subjects by name) of every VEX statement."""
    for position, a in enumerate(atts):
        if a.statement.predicate_type != OPENVEX_TYPE:
            continue  # only that type parses to an OpenVEX model (whose module loads here)
        from attest.predicates import OpenVEX

        pred = a.verified.predicate
        if not isinstance(pred, OpenVEX):
            continue
        raw = (a.statement.predicate or {}).get("statements") or []
        subjects = {s.name: dict(s.digest) for s in a.statement.subjects if s.name}
        for s, doc in zip(pred.statements, raw, strict=False):
            products = doc.get("products") if isinstance(doc, dict) else None
            # a statement cannot be later than its record: dated in the future, it would
            # outrank every statement recorded after it (clamped, the later record wins)
            when = min(s.timestamp or pred.timestamp, a.time)
            order = (when, a.index if a.index is not None else -1, position)
            for vuln in _names_of(s.vulnerability, doc):
                yield order, vuln, s.status, products or [], subjects


def _names_of(name: str, doc: Any) -> list[str]:
    """A statement's vulnerability name and every alias (and ``@id``) it gives: a statement about
    ``GHSA-…`` with the alias ``CVE-…`` speaks about the CVE too (the audit index reads it so)."""
    vuln = doc.get("vulnerability") if isinstance(doc, dict) else None
    vuln = vuln if isinstance(vuln, dict) else {}
    aliases = vuln.get("aliases")
    others = [vuln.get("@id"), *(aliases if isinstance(aliases, list) else [])]
    return list(dict.fromkeys([name, *(o for o in others if isinstance(o, str) and o)]))


def cleared_for(atts: Sequence[Attestation], arts: Sequence[Artifact]) -> Clearances:
    """What the trusted VEX statements say about each (vulnerability, artifact name)."""
    said: dict[tuple[str, str], list[tuple[Order, str, frozenset[Package] | None]]] = {}
    for order, vuln, status, products, subjects in _statements(atts):
        for art in arts:
            naming = [
                p
                for p in products
                if isinstance(p, dict) and _names(art, _product_digests(p, subjects))
            ]
            if not naming:
                continue
            scopes = [_scope(p) for p in naming]
            # one product naming the artifact unscoped makes the statement about all of it
            scope = None if None in scopes else frozenset().union(*(s for s in scopes if s))
            said.setdefault((vuln, art.name), []).append((order, status, scope))
    return Clearances(said)
