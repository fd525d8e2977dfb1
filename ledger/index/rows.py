"""The audit index rows of records: derived in the append transaction, rebuilt, and compared.

:func:`derive_index_rows` is the deriver :func:`ledger.storage.derive_rows` calls once per batch
(after the registry's, so a signer registered earlier in the same batch is known): it reads each
body once (:func:`~ledger.index.facts.read_facts`), attributes signers with the registry as the
log records it before the record (:mod:`ledger.index.signers`), and writes three bulk inserts.

:func:`index_rows` is the same derivation as a pure function of records, bodies and registry
rows; ``ledger reindex`` and ``ledger check`` use it over the whole log.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import Connection, String, select

from ledger._internal import schema
from ledger._internal.db import BulkInsert
from ledger.bodies import Parsed
from ledger.index.facts import MAX_VALUE, Dependency, Facts, VulnFact, read_facts
from ledger.index.signers import SignerBook, signer_book, signer_terms
from ledger.record import Record
from ledger.registry.entries import read_rows

__all__ = [
    "IndexRows",
    "derive_index_rows",
    "index_rows",
    "indexed",
    "insert_rows",
    "rows_of",
    "storable",
    "stored_rows",
    "unindexable",
]

# When one record says several things about one (vulnerability, product, component), the most
# cautious status is indexed: an open finding is never hidden by a fix in the same body.
_STATUS_RANK = {"affected": 3, "under_investigation": 2, "fixed": 1, "not_affected": 0}

TermRow = tuple[str, str, int]  # kind, value, idx
DepRow = tuple[str, str, int, str]  # package, version, idx, digest
VulnRow = tuple[str, str, int, str, str]  # vuln, product, idx, component, status


@dataclass
class IndexRows:
    terms: list[TermRow] = field(default_factory=list)
    deps: list[DepRow] = field(default_factory=list)
    vulns: list[VulnRow] = field(default_factory=list)

    def extend(self, other: IndexRows) -> None:
        self.terms.extend(other.terms)
        self.deps.extend(other.deps)
        self.vulns.extend(other.vulns)

    def sorted(self) -> IndexRows:
        return IndexRows(sorted(self.terms), sorted(self.deps), sorted(self.vulns))

    def __len__(self) -> int:
        return len(self.terms) + len(self.deps) + len(self.vulns)


_DIGEST_COLUMN = cast(String, schema.ix_deps.c.digest.type).length or MAX_VALUE  # 200


def storable(value: str, limit: int = MAX_VALUE) -> bool:
    """Whether ``value`` is indexed: every backend stores it as given. At most ``limit``
    characters (the column's), no NUL (PostgreSQL's text refuses it) and valid UTF-8 (no lone
    surrogate). Decided from the value alone, so both backends derive the same rows; until
    2026-12-01 a body with such a value stopped every PostgreSQL batch it was in."""
    if len(value) > limit or "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _why_not(value: str, limit: int = MAX_VALUE) -> str | None:
    """Why :func:`storable` refuses ``value`` (``None``: it does not)."""
    if storable(value, limit):
        return None
    if len(value) > limit:
        return f"longer than {limit} characters"
    return "contains NUL" if "\x00" in value else "not valid UTF-8"


def unindexable(facts: Facts) -> list[tuple[str, str]]:
    """``(field, reason)`` of every value read from a body that the index does not hold
    (:func:`indexed` and :func:`~ledger.index.facts.read_facts` leave it out): an answer derived
    from the index cannot contain it, so a client that finds one treats the answer as not
    complete. Not a NUL's position or the value itself — only which field and why."""
    out = list(facts.unheld)
    out.extend((kind, why) for kind, value in facts.terms if (why := _why_not(value)))
    for d in facts.deps:
        why = _why_not(d.package) or _why_not(d.version) or _why_not(d.digest, _DIGEST_COLUMN)
        if why:
            out.append(("dependency", why))
    for f in facts.vulns:
        if why := _why_not(f.vuln) or _why_not(f.product) or _why_not(f.component):
            out.append(("vulnerability", why))
    return sorted(set(out))


def _vuln_kept(f: VulnFact) -> bool:
    return storable(f.vuln) and storable(f.product) and storable(f.component)


def _dep_kept(d: Dependency) -> bool:
    return storable(d.package) and storable(d.version) and storable(d.digest, _DIGEST_COLUMN)


def indexed(facts: Facts) -> Facts:
    """``facts`` as the index rows hold them: without the terms, dependencies and vulnerability
    facts :func:`storable` leaves out. A client recomputing a story from proved bodies reads
    them through this, so it derives from exactly what the server derived from."""
    return replace(
        facts,
        terms={t for t in facts.terms if storable(t[1])},
        deps={d for d in facts.deps if _dep_kept(d)},
        vulns={f for f in facts.vulns if _vuln_kept(f)},
    )


def _vuln_rows(idx: int, facts: Iterable[VulnFact]) -> list[VulnRow]:
    best: dict[tuple[str, str, str], str] = {}
    for f in facts:
        if not _vuln_kept(f):
            continue
        key = (f.vuln, f.product, f.component)
        old = best.get(key)
        if old is None or _STATUS_RANK[f.status] > _STATUS_RANK[old]:
            best[key] = f.status
    return [(v, p, idx, c, s) for (v, p, c), s in best.items()]


def _dep_rows(idx: int, deps: Iterable[Dependency]) -> list[DepRow]:
    return [(d.package, d.version, idx, d.digest) for d in deps if _dep_kept(d)]


def index_rows(
    records: Sequence[Record],
    contents: Sequence[bytes],
    registry: Sequence[tuple[int, bytes]],
    docs: Sequence[Any] | None = None,
) -> IndexRows:
    """The index rows of ``records`` (in index order, ``contents[i]`` the body of
    ``records[i]``), given every registry row (``(idx, entry)`` in index order) up to them.
    ``docs[i]``, when given, is ``contents[i]`` already parsed as strict JSON (the append path
    parsed it at submission), so it is not parsed twice."""
    items = zip((r.index for r in records), (r.time for r in records), contents, strict=True)
    return rows_of(items, registry, docs)


def rows_of(
    items: Iterable[tuple[int, str, bytes]],
    registry: Sequence[tuple[int, bytes]],
    docs: Sequence[Any] | None = None,
) -> IndexRows:
    """:func:`index_rows` of ``(index, time, body)`` triples (``ledger check``'s ranges hold no
    :class:`Record` objects)."""
    out = IndexRows()
    starts = [r[0] for r in registry]
    books: dict[int, SignerBook] = {}
    for k, (idx, time, content) in enumerate(items):
        doc = docs[k] if docs is not None else None
        facts = read_facts(content, doc)
        checked = doc.verified if isinstance(doc, Parsed) else frozenset()
        before = bisect.bisect_left(starts, idx)
        book = books.get(before)
        if book is None:
            book = books[before] = signer_book(tuple(registry[:before]))
        ptype = facts.statement.get("predicateType") if facts.statement is not None else None
        signed = signer_terms(
            facts.envelope, facts.bundle, book, time, ptype, facts.payload, checked
        )
        terms = facts.terms | signed
        terms.add(("time", time))
        out.terms.extend((kind, value, idx) for kind, value in terms if storable(value))
        if facts.deps:
            out.deps.extend(_dep_rows(idx, facts.deps))
        if facts.vulns:
            out.vulns.extend(_vuln_rows(idx, facts.vulns))
    return out


_INSERT_TERMS = BulkInsert("ix_terms", (("kind", "text"), ("value", "text"), ("idx", "bigint")))
_INSERT_DEPS = BulkInsert(
    "ix_deps", (("package", "text"), ("version", "text"), ("idx", "bigint"), ("digest", "text"))
)
_INSERT_VULNS = BulkInsert(
    "ix_vulns",
    (
        ("vuln", "text"),
        ("product", "text"),
        ("idx", "bigint"),
        ("component", "text"),
        ("status", "text"),
    ),
)


def insert_rows(conn: Connection, rows: IndexRows) -> None:
    """Bulk inserts, one per table through the driver (:class:`BulkInsert`): SQLAlchemy's
    per-row parameter processing cost ~8 µs a row, three times the insert (26 rows a record on a
    realistic log; docs/benchmarks.md, "Issue 10")."""
    _INSERT_TERMS.run(conn, rows.terms)
    _INSERT_DEPS.run(conn, rows.deps)
    _INSERT_VULNS.run(conn, rows.vulns)


def derive_index_rows(
    conn: Connection,
    records: Sequence[Record],
    contents: Sequence[bytes],
    docs: Sequence[Any] | None = None,
    registry: list[tuple[int, bytes]] | None = None,
) -> None:
    """Write the index rows of one committed batch, inside its transaction (``docs``: the bodies
    already parsed, as :func:`index_rows` takes them; ``registry``: the registry's rows, already
    read in this transaction, else read here)."""
    if records:
        rows = read_rows(conn) if registry is None else registry
        insert_rows(conn, index_rows(records, contents, rows, docs))


def stored_rows(conn: Connection, start: int, end: int) -> IndexRows:
    """The stored index rows of records ``[start, end)``, sorted."""
    t, d, v = schema.ix_terms.c, schema.ix_deps.c, schema.ix_vulns.c
    terms = conn.execute(select(t.kind, t.value, t.idx).where(t.idx >= start, t.idx < end)).all()
    deps = conn.execute(
        select(d.package, d.version, d.idx, d.digest).where(d.idx >= start, d.idx < end)
    ).all()
    vulns = conn.execute(
        select(v.vuln, v.product, v.idx, v.component, v.status).where(v.idx >= start, v.idx < end)
    ).all()
    return IndexRows(
        [tuple(r) for r in terms],
        [tuple(r) for r in deps],
        [tuple(r) for r in vulns],
    ).sorted()


def chunks(
    items: Iterator[tuple[Record, bytes]], size: int
) -> Iterator[list[tuple[Record, bytes]]]:
    batch: list[tuple[Record, bytes]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
