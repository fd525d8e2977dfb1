"""The audit searches, as SQL over the index tables: record indices in order, one page at a time.

Every query is bounded by a tree size (the checkpoint the answer is proved against): rows of
records at or past it are never read, so an answer ``asOf`` N is exactly what the ledger knew at N.
Filters combine with AND, each as ``idx IN (subquery)`` on a primary-key prefix; pages are keyset
(``idx > after``), never OFFSET.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import aliased

from ledger._internal import schema
from ledger.index.driver_sql import sqlite_driver, sqlite_rows
from ledger.index.facts import VEX_STATUSES
from ledger.index.params import VersionMatcher

__all__ = [
    "Filters",
    "about",
    "dependencies_of",
    "general_search",
    "open_vulns_of",
    "search",
    "terms_of",
]

OPEN = ("affected", "under_investigation")


@dataclass(frozen=True)
class Filters:
    """Terms are ``(kind, value)`` pairs the record must all have."""

    terms: tuple[tuple[str, str], ...] = ()
    subjects: tuple[str, ...] = ()  # any of these (POST /evidence)
    since: str | None = None
    until: str | None = None
    versions: VersionMatcher | None = None
    vuln: str | None = None
    status: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _time_bounds(conn: Connection, since: str | None, until: str | None) -> tuple[int, int] | None:
    """Record times never decrease along the log, so a time range is an index range."""
    t = schema.ix_terms.c
    lo, hi = 0, None
    if since is not None:
        row = conn.execute(
            select(t.idx)
            .where(t.kind == "time", t.value >= since)
            .order_by(t.value, t.idx)
            .limit(1)
        ).first()
        if row is None:
            return None
        lo = int(row.idx)
    if until is not None:
        row = conn.execute(
            select(t.idx)
            .where(t.kind == "time", t.value <= until)
            .order_by(t.value.desc(), t.idx.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        hi = int(row.idx)
    return lo, (hi if hi is not None else (1 << 62))


# The distinct versions of one package as a loose index scan: one seek per version on the
# primary key's (package, version) prefix, not a read of every row of a package used by most
# builds. Plain SQL that SQLite and PostgreSQL both run.
_VERSIONS = text(
    "WITH RECURSIVE v(version) AS ("
    " SELECT min(version) FROM ix_deps WHERE package = :p"
    " UNION ALL"
    " SELECT (SELECT min(d.version) FROM ix_deps d WHERE d.package = :p AND d.version > v.version)"
    " FROM v WHERE v.version IS NOT NULL"
    ") SELECT version FROM v WHERE version IS NOT NULL"
)


def _matching_versions(conn: Connection, m: VersionMatcher) -> list[str]:
    if m.exact is not None:
        return [m.exact]
    raw = sqlite_driver(conn)
    if raw is not None:  # SQLAlchemy's row-by-row fetch cost more than the statement (a page's 9 %)
        found = [r[0] for r in sqlite_rows(raw, _VERSIONS.text, {"p": m.package})]
    else:
        found = list(conn.execute(_VERSIONS, {"p": m.package}).scalars())
    return sorted(v for v in found if m.matches(v))


def _vuln_condition(f: Filters, size: int) -> ColumnElement[bool]:
    v = schema.ix_vulns
    if f.status is None:
        return schema.records.c.idx.in_(select(v.c.idx).where(v.c.vuln == f.vuln, v.c.idx < size))
    w = aliased(v)
    later = exists(
        select(w.c.idx).where(
            w.c.vuln == v.c.vuln, w.c.product == v.c.product, w.c.idx > v.c.idx, w.c.idx < size
        )
    )
    return schema.records.c.idx.in_(
        select(v.c.idx).where(v.c.vuln == f.vuln, v.c.idx < size, v.c.status == f.status, ~later)
    )


def _merged(conn: Connection, parts: list[Select[tuple[int]]], limit: int) -> list[int]:
    """The ``limit`` lowest indices of ordered, limited selects, each run as a subquery of one
    UNION ALL per chunk (SQLite allows 500 terms in a compound select)."""
    found: set[int] = set()
    for i in range(0, len(parts), 200):
        subs = [select(p.subquery().c.idx) for p in parts[i : i + 200]]
        found.update(int(x) for x in conn.execute(union_all(*subs)).scalars())
    return sorted(found)[:limit]


def _dependency_only(
    conn: Connection, m: VersionMatcher, size: int, after: int, limit: int
) -> list[int]:
    """A purl (+ range) search with no other filter: for each matching version, the first
    ``limit`` records in index order from its primary-key prefix ``(package, version)``, merged —
    so a page reads at most ``limit`` rows per version, however many records use the package."""
    d = schema.ix_deps.c
    versions = _matching_versions(conn, m)
    raw = sqlite_driver(conn)
    if raw is not None:
        return _dependency_merge(raw, m.package, versions, size, after, limit)
    parts = [
        select(d.idx)
        .where(d.package == m.package, d.version == v, d.idx > after, d.idx < size)
        .distinct()
        .order_by(d.idx)
        .limit(limit)
        for v in versions
    ]
    return _merged(conn, parts, limit) if parts else []


# SQLite: one arm per version, each a range of the primary key (package, version, idx, …) and so
# already in index order; a compound SELECT with ORDER BY merges the arms as co-routines
# ("MERGE (UNION)", duplicates dropped as they meet) and stops at LIMIT, so a page reads about
# ``limit`` + one row per version instead of ``limit`` rows of every version.
_DEPS_ARM = "SELECT idx FROM ix_deps WHERE package = ? AND version = ? AND idx > ? AND idx < ?"
_ARMS = 200  # SQLite allows 500 terms in a compound select


def _dependency_merge(
    raw: sqlite3.Connection,
    package: str,
    versions: Sequence[str],
    size: int,
    after: int,
    limit: int,
) -> list[int]:
    found: set[int] = set()
    for i in range(0, len(versions), _ARMS):
        chunk = versions[i : i + _ARMS]
        sql = " UNION ".join([_DEPS_ARM] * len(chunk)) + " ORDER BY 1 LIMIT ?"
        params = [x for v in chunk for x in (package, v, after, size)]
        found.update(int(idx) for (idx,) in sqlite_rows(raw, sql, [*params, limit]))
    return sorted(found)[:limit]


_VULN_ARM = (
    "SELECT v.idx FROM ix_vulns v WHERE v.vuln = ? AND v.status = ? AND v.idx > ? AND v.idx < ?"
)
# A status holds for a product until a later statement about it (within the tree) says otherwise.
_VULN_LAST = (
    " AND NOT EXISTS (SELECT 1 FROM ix_vulns w WHERE w.vuln = v.vuln"
    " AND w.product = v.product AND w.idx > v.idx AND w.idx < ?)"
)


def _vuln_only(
    conn: Connection, vuln: str, status: str | None, size: int, after: int, limit: int
) -> list[int]:
    """A vulnerability (+ status) search with no other filter, walking ``ix_vulns_by_status``
    (vuln, status, idx) in index order for each status asked: a page reads about ``limit`` rows
    (and, for a status, one primary-key probe each for a later statement about the product)."""
    statuses = (status,) if status is not None else VEX_STATUSES
    raw = sqlite_driver(conn)
    if raw is not None:  # the arms merged by SQLite and stopped at LIMIT, as for a purl
        # Several arms: UNION drops repeated indices. One status: GROUP BY does (SQLite 3.40's
        # DISTINCT with the NOT EXISTS probe returned an index twice).
        arm = _VULN_ARM if status is None else _VULN_ARM + _VULN_LAST + " GROUP BY v.idx"
        sql = " UNION ".join([arm] * len(statuses)) + " ORDER BY 1 LIMIT ?"
        probe = (size,) if status is not None else ()
        params = [x for st in statuses for x in (vuln, st, after, size, *probe)]
        return [int(i) for (i,) in sqlite_rows(raw, sql, [*params, limit])]
    v = schema.ix_vulns
    w = aliased(v)
    parts = []
    for st in statuses:
        q = select(v.c.idx).where(
            v.c.vuln == vuln, v.c.status == st, v.c.idx > after, v.c.idx < size
        )
        if status is not None:
            later = select(w.c.idx).where(
                w.c.vuln == v.c.vuln, w.c.product == v.c.product, w.c.idx > v.c.idx, w.c.idx < size
            )
            q = q.where(~exists(later))
        parts.append(q.distinct().order_by(v.c.idx).limit(limit))
    return _merged(conn, parts, limit)


# Records about any of a few artifacts (the evidence routes): a primary-key seek per digest, in
# the driver's own SQL (building the SQLAlchemy expression cost more than running it).
_SUBJECTS_SQLITE = (
    "SELECT DISTINCT idx FROM ix_terms WHERE kind = 'subject' AND value IN ({}) "
    "AND idx > ? AND idx < ? ORDER BY idx LIMIT ?"
)
_SUBJECTS_PG = (
    "SELECT DISTINCT idx FROM ix_terms WHERE kind = 'subject' AND value = ANY(%s) "
    "AND idx > %s AND idx < %s ORDER BY idx LIMIT %s"
)


def _subjects_only(
    conn: Connection, subjects: Sequence[str], size: int, after: int, limit: int
) -> list[int]:
    raw = sqlite_driver(conn)
    if raw is None:
        rows = conn.exec_driver_sql(_SUBJECTS_PG, (list(subjects), after, size, limit)).all()
    else:
        sql = _SUBJECTS_SQLITE.format(",".join("?" * len(subjects)))
        rows = sqlite_rows(raw, sql, (*subjects, after, size, limit))
    return [int(i) for (i,) in rows]


_ABOUT_CHUNK = 500  # digests (or record indices) per statement (SQLite binds at most 32,766)
_ABOUT_PAGE = 2000  # (index, subject) rows read per step of the walk down a chunk's records

# A record's predicate type, looked up by record: the by-record index (idx), never the primary
# key's (kind, value) prefix, which would read every predicateType row of the log per record.
_TYPES_SQLITE = (
    "SELECT idx, value FROM ix_terms INDEXED BY ix_terms_by_record"
    " WHERE idx IN ({}) AND kind = 'predicateType'"
)
_TYPES_PG = "SELECT idx, value FROM ix_terms WHERE idx = ANY(%s) AND kind = 'predicateType'"


def predicate_types(conn: Connection, indices: Sequence[int]) -> dict[int, str]:
    """Each record's predicate type (records without one are absent), read through
    ``ix_terms_by_record`` in chunks."""
    out: dict[int, str] = {}
    raw = sqlite_driver(conn)
    for k in range(0, len(indices), _ABOUT_CHUNK):
        chunk = [int(i) for i in indices[k : k + _ABOUT_CHUNK]]
        if raw is None:
            rows = conn.exec_driver_sql(_TYPES_PG, (chunk,)).all()
        else:
            rows = sqlite_rows(raw, _TYPES_SQLITE.format(",".join("?" * len(chunk))), chunk)
        for idx, value in rows:
            out.setdefault(int(idx), str(value))
    return out


def _typed(ptype: str | None, prefixes: Sequence[str], without: bool) -> bool:
    hit = ptype is not None and any(ptype.startswith(x) for x in prefixes)
    return hit != without


def _about_chunk(
    conn: Connection,
    chunk: list[str],
    size: int,
    limit: int,
    prefixes: Sequence[str],
    without: bool,
) -> list[tuple[int, str]]:
    """The newest ``limit`` pairs of one chunk of digests, descending: its subject rows walked
    newest first (a primary-key range per digest), each page's records classified by predicate
    type through the by-record index — so the cost grows with the records about the digests,
    never with the size of the log."""
    t = schema.ix_terms.c
    out: list[tuple[int, str]] = []
    below: tuple[int, str] | None = None
    page = max(limit, _ABOUT_PAGE) if prefixes else limit
    while len(out) < limit:
        query = select(t.idx, t.value).where(t.kind == "subject", t.value.in_(chunk), t.idx < size)
        if below is not None:
            query = query.where(or_(t.idx < below[0], and_(t.idx == below[0], t.value > below[1])))
        rows = [
            (int(i), str(v))
            for i, v in conn.execute(query.order_by(t.idx.desc(), t.value).limit(page))
        ]
        if prefixes:
            types = predicate_types(conn, sorted({i for i, _ in rows}))
            out.extend(r for r in rows if _typed(types.get(r[0]), prefixes, without))
        else:
            out.extend(rows)
        if len(rows) < page:
            break
        below = rows[-1]
        page *= 2  # each page re-sorts the chunk's rows: doubling keeps the whole walk O(n log n)
    return out[:limit]


def about(
    conn: Connection,
    subjects: Sequence[str],
    size: int,
    limit: int,
    prefixes: Sequence[str] = (),
    *,
    without: bool = False,
) -> list[tuple[int, str]]:
    """``(index, subject)`` of the newest ``limit`` pairs below ``size`` of a record and one of
    ``subjects`` it is about (the story's reads: every digest of one level in a few queries), in
    ascending order; with ``prefixes``, only records whose predicate type starts with one (with
    ``without``: only the others)."""
    found: list[tuple[int, str]] = []
    for k in range(0, len(subjects), _ABOUT_CHUNK):
        chunk = list(subjects[k : k + _ABOUT_CHUNK])
        found.extend(_about_chunk(conn, chunk, size, limit, prefixes, without))
    found.sort(key=lambda r: (-r[0], r[1]))
    return sorted(found[:limit])


def _only(f: Filters) -> str | None:
    """``deps`` / ``vuln`` / ``subjects`` when that is the search's one filter (a keyset walk or
    primary-key seeks serve it)."""
    if f.since is not None or f.until is not None:
        return None
    if f.versions is None and f.vuln is None:
        subject_terms = all(kind == "subject" for kind, _ in f.terms)
        return "subjects" if (f.subjects or f.terms) and subject_terms else None
    if f.terms or f.subjects or (f.versions is not None and f.vuln is not None):
        return None
    return "deps" if f.versions is not None else "vuln"


def search(conn: Connection, f: Filters, size: int, after: int, limit: int) -> list[int]:
    """Up to ``limit`` record indices in ``(after, size)`` matching every filter, ascending."""
    only = _only(f)
    if only == "subjects" and len(f.terms) + bool(f.subjects) == 1:
        subjects = f.subjects or tuple(value for _, value in f.terms)
        return _subjects_only(conn, subjects, size, after, limit)
    if only == "deps" and f.versions is not None:
        return _dependency_only(conn, f.versions, size, after, limit)
    if only == "vuln" and f.vuln is not None:
        return _vuln_only(conn, f.vuln, f.status, size, after, limit)
    return general_search(conn, f, size, after, limit)


def general_search(conn: Connection, f: Filters, size: int, after: int, limit: int) -> list[int]:
    """:func:`search` as one query for any combination of filters (what the shortcuts above must
    agree with)."""
    r, t, d = schema.records.c, schema.ix_terms.c, schema.ix_deps.c
    conds: list[ColumnElement[bool]] = [r.idx < size, r.idx > after]
    for kind, value in f.terms:
        conds.append(r.idx.in_(select(t.idx).where(t.kind == kind, t.value == value)))
    if f.subjects:
        conds.append(r.idx.in_(select(t.idx).where(t.kind == "subject", t.value.in_(f.subjects))))
    if f.since is not None or f.until is not None:
        bounds = _time_bounds(conn, f.since, f.until)
        if bounds is None:
            return []
        conds.extend([r.idx >= bounds[0], r.idx <= bounds[1]])
    if f.versions is not None:
        versions = _matching_versions(conn, f.versions)
        if not versions:
            return []
        conds.append(
            r.idx.in_(select(d.idx).where(d.package == f.versions.package, d.version.in_(versions)))
        )
    if f.vuln is not None:
        conds.append(_vuln_condition(f, size))
    q = select(r.idx).where(and_(*conds)).order_by(r.idx).limit(limit)
    return [int(i) for i in conn.execute(q).scalars()]


def terms_of(conn: Connection, indices: Sequence[int]) -> dict[int, dict[str, list[str]]]:
    """Every term of each record, by kind (values sorted)."""
    t = schema.ix_terms.c
    out: dict[int, dict[str, list[str]]] = {i: {} for i in indices}
    if indices:
        rows = conn.execute(
            select(t.idx, t.kind, t.value).where(t.idx.in_(list(indices))).order_by(t.value)
        )
        for idx, kind, value in rows:
            out[int(idx)].setdefault(kind, []).append(value)
    return out


def dependencies_of(
    conn: Connection, indices: Sequence[int]
) -> dict[int, list[tuple[str, str, str]]]:
    """Each record's dependencies / materials as ``(package, version, digest)``, sorted."""
    d = schema.ix_deps.c
    out: dict[int, list[tuple[str, str, str]]] = {i: [] for i in indices}
    if indices:
        q = select(d.idx, d.package, d.version, d.digest).where(d.idx.in_(list(indices)))
        for idx, package, version, digest in conn.execute(q.order_by(d.package, d.version)):
            out[int(idx)].append((package, version, digest))
    return out


def vuln_statuses(
    conn: Connection, products: Sequence[str], size: int
) -> dict[str, tuple[str, int]]:
    """For each vulnerability recorded about any of ``products`` (below ``size``): its latest
    status and the record that says so."""
    v = schema.ix_vulns.c
    latest: dict[str, tuple[str, int]] = {}
    if not products:
        return latest
    rows = conn.execute(
        select(v.vuln, v.idx, v.status)
        .where(v.product.in_(list(products)), v.idx < size)
        .order_by(v.idx)
    )
    for vuln, idx, status in rows:
        old = latest.get(vuln)
        if old is None or int(idx) > old[1] or (int(idx) == old[1] and status in OPEN):
            latest[vuln] = (status, int(idx))
    return latest


def open_vulns_of(conn: Connection, products: Sequence[str], size: int) -> dict[str, int]:
    return {k: i for k, (s, i) in vuln_statuses(conn, products, size).items() if s in OPEN}
