"""A client for the audit API that believes nothing it has not checked.

Every reply is an evidence document. Before a method returns, the client (1) opens the checkpoint
with the ledger's verifier key you pinned (signature, origin, the C2SP rules), (2) for every entry
parses the leaf as a record of this log at its index, (3) checks that the body hashes to the
record's body digest, (4) checks the inclusion proof of the leaf hash against the checkpoint's
root (RFC 9162, the pure :mod:`ledger.merkle` functions), (5) when it already trusts a checkpoint,
checks that the answer's checkpoint and the trusted one are one history: a newer one must extend
the trusted one (the evidence routes carry the consistency proof with ``since``; for the others
the client asks ``/api/v1/proof/consistency``) and is then trusted; with ``asOf`` the answer's
checkpoint must be no larger than the size asked and a proved prefix of the trusted one (a fork
signed with the same key is refused), (6) checks that every entry is an answer to the question
asked, as far as its proved body shows (:mod:`ledger.client_checks`: the subject digest of an
evidence query, the search filters a body can show) and (7) recomputes the derived parts of a
story or a change from the proved entries, with the server's own rules, and refuses any
difference. What a client cannot check from an answer — a record the server left out, the
signer names the trust registry attributes — is listed in docs/api.md; the signer names are
returned apart, in :attr:`Evidence.unverified`.

Every call is bounded (:mod:`ledger.answer_bounds`): its bytes, its pages, a repeated cursor and
a deadline for the whole answer. A failed check raises :class:`~ledger.errors.ProofError`,
:class:`~ledger.errors.NoteError` / :class:`~ledger.errors.CheckpointError` or
:class:`~ledger.errors.IntegrityError`; an HTTP error or a bound raises :class:`ClientError`.

    with AuditClient("http://127.0.0.1:8080", vkey, "demo.example/ledger") as c:
        for entry in c.evidence("sha256:…").entries:
            print(entry.index, entry.statement["predicateType"])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from ledger import merkle
from ledger.answer_bounds import MAX_ANSWER_BYTES, MAX_PAGES, AnswerBudget
from ledger.checkpoint import Checkpoint, check_prefix, open_checkpoint
from ledger.errors import Error, IntegrityError, ProofError
from ledger.note import parse_verifier
from ledger.record import Record

__all__ = ["AuditClient", "ClientError", "Entry", "Evidence", "verify_evidence"]

MEDIA_TYPE = "application/vnd.provenance-ledger.evidence.v1+json"
DEADLINE = 120.0  # seconds for one answer, every page of it
_CORE = ("mediaType", "checkpoint", "entries", "consistency", "next", "treeSize")


class ClientError(Error):
    """The server answered with an error (its problem detail is the message), not at all, or
    past a bound (too large, too many pages, a repeated cursor, too slow)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Entry:
    """One verified record: its index, record, exact body bytes and (unverified-signature)
    statement — the ledger proved it was logged; checking who signed it is policy's job."""

    index: int
    record: Record
    body: bytes
    statement: dict[str, Any] | None


@dataclass(frozen=True)
class Evidence:
    """A verified answer. ``extra``: the derived parts (``story`` and ``artifact``, ``changes``)
    once the client recomputed them from the proved entries; ``unverified``: whatever the
    answer says that the client could not check (the signer names the trust registry attributes
    to each story step, and any member it does not know), to be taken as the server's word."""

    checkpoint: Checkpoint
    note: str
    entries: list[Entry]
    next: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the document, to keep
    unverified: dict[str, Any] = field(default_factory=dict)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise IntegrityError(f"evidence: {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise IntegrityError(f"evidence: {what} is not base64") from e


def _statement(body: bytes) -> dict[str, Any] | None:
    """The body's statement, read as admission and the index read it (``envelope_of``)."""
    from ledger.bodies import b64_field, envelope_of

    try:
        env, _ = envelope_of(json.loads(body))
        payload = b64_field(env.get("payload")) if env is not None else None
        out = json.loads(payload) if payload is not None else None
    except (ValueError, RecursionError):
        return None
    return out if isinstance(out, dict) else None


def _entry(e: Any, cp: Checkpoint, origin: str) -> Entry:
    if not isinstance(e, dict) or type(e.get("index")) is not int:
        raise IntegrityError("evidence: an entry has no integer index")
    i = e["index"]
    leaf, body = _b64(e.get("leaf"), f"entry {i} leaf"), _b64(e.get("body"), f"entry {i} body")
    rec = Record.from_leaf(leaf)  # (2)
    if rec.index != i or rec.log != origin:
        raise IntegrityError(f"evidence: entry {i} holds the record of {rec.log!r} #{rec.index}", i)
    if hashlib.sha256(body).digest() != rec.body_digest:  # (3)
        raise IntegrityError(f"evidence: entry {i} body does not hash to {rec.body}", i)
    proof = e.get("inclusionProof")
    if not isinstance(proof, list):
        raise IntegrityError(f"evidence: entry {i} has no inclusion proof", i)
    hashes = [_b64(h, f"entry {i} proof") for h in proof]
    merkle.verify_inclusion(merkle.hash_leaf(leaf), i, cp.size, hashes, cp.root_hash)  # (4)
    return Entry(i, rec, body, _statement(body))


def verify_evidence(
    doc: Mapping[str, Any], vkey: str, origin: str, trusted: Checkpoint | None = None
) -> Evidence:
    """Steps (1) to (5) of the module docstring on one document; raises at the first failure.
    Every member but the proved ones is returned in ``unverified``."""
    if doc.get("mediaType") != MEDIA_TYPE:
        raise IntegrityError(f"evidence: mediaType is not {MEDIA_TYPE}")
    note = doc.get("checkpoint")
    if not isinstance(note, str):
        raise IntegrityError("evidence: no checkpoint")
    cp = open_checkpoint(note, [parse_verifier(vkey)], origin).checkpoint  # (1)
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise IntegrityError("evidence: entries is not a list")
    verified = [_entry(e, cp, origin) for e in entries]
    if len({e.index for e in verified}) != len(verified):
        raise IntegrityError("evidence: an entry is listed twice")
    if trusted is not None:  # (5)
        _check_consistency(doc.get("consistency"), trusted, cp)
    nxt = doc.get("next")
    rest = {k: v for k, v in doc.items() if k not in _CORE}
    return Evidence(cp, note, verified, nxt if isinstance(nxt, str) else None, {}, dict(doc), rest)


def _check_consistency(c: Any, trusted: Checkpoint, cp: Checkpoint) -> None:
    if cp.size < trusted.size:
        raise ProofError(f"the server answered with size {cp.size}, older than {trusted.size}")
    if not isinstance(c, dict) or c.get("fromSize") != trusted.size:
        raise ProofError(f"no consistency proof from the trusted size {trusted.size}")
    raw = c.get("proof")
    proof = [_b64(h, "consistency proof") for h in (raw if isinstance(raw, list) else [])]
    check_prefix(trusted, cp, proof)


def _complete(extra: Mapping[str, Any], what: str, required: bool) -> None:
    if required and not extra["complete"]:
        parts = ", ".join(
            f"{t.get('part')} of {t.get('digest') or 'record ' + str(t.get('index'))}"
            for t in extra["truncated"]
        )
        raise ClientError(f"{what} is incomplete: a bound cut {parts}")


class AuditClient:
    """The audit routes, every answer verified (see the module docstring) before it is returned.

    ``vkey`` is the ledger's verifier key (as ``ledger init`` printed it), obtained out of band;
    after each answer the client trusts its checkpoint and asks the next one for a consistency
    proof from it (``since``). ``deadline`` (seconds), ``max_bytes`` and ``max_pages`` bound
    each call: one answer, or every page a :meth:`search` iteration follows."""

    def __init__(
        self,
        url: str,
        vkey: str,
        origin: str,
        *,
        token: str | None = None,
        trusted: Checkpoint | None = None,
        http: httpx.Client | None = None,
        deadline: float = DEADLINE,
        max_bytes: int = MAX_ANSWER_BYTES,
        max_pages: int = MAX_PAGES,
    ) -> None:
        parse_verifier(vkey)
        self.vkey, self.origin, self.trusted = vkey, origin, trusted
        self.deadline, self.max_bytes, self.max_pages = deadline, max_bytes, max_pages
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http or httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _budget(self) -> AnswerBudget:
        return AnswerBudget(
            ClientError,
            max_bytes=self.max_bytes,
            max_pages=self.max_pages,
            deadline=self.deadline,
        )

    def _get_json(
        self, method: str, path: str, query: Mapping[str, str], budget: AnswerBudget, **kw: Any
    ) -> Any:
        """The JSON of one answer, read within ``budget``: its bytes count against the size
        bound as they arrive, and each read waits no longer than the deadline leaves."""
        left = budget.left() or 30.0
        data = bytearray()
        try:
            timeout = httpx.Timeout(min(30.0, left))
            with self._http.stream(method, path, params=query, timeout=timeout, **kw) as r:
                for chunk in r.iter_bytes():
                    data += chunk
                    budget.take(len(chunk))
                status = r.status_code
        except httpx.HTTPError as e:
            budget.left()  # a read that timed out at the deadline says so
            raise ClientError(f"{path}: {e}") from e
        if status != 200:
            try:
                detail = json.loads(data).get("detail", data.decode("utf-8", "replace"))
            except (ValueError, AttributeError):
                detail = data[:300].decode("utf-8", "replace")
            raise ClientError(f"{path}: HTTP {status}: {detail}", status)
        try:
            return json.loads(data)
        except ValueError as e:
            raise IntegrityError(f"{path}: the answer is not JSON") from e

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        budget: AnswerBudget | None = None,
        carries_since: bool = False,
        **kw: Any,
    ) -> Evidence:
        from ledger.client_checks import AsOfQuestion

        budget = budget or self._budget()
        query = {k: str(v) for k, v in params.items() if v is not None}
        as_of = AsOfQuestion.parse(query.get("asOf"))
        trusted = None if as_of is not None else self.trusted
        if trusted is not None and carries_since:
            query["since"] = str(trusted.size)
        doc = self._get_json(method, path, query, budget, **kw)
        if not isinstance(doc, dict):
            raise IntegrityError(f"{path}: the answer is not an evidence document")
        if trusted is not None and not carries_since:
            doc = {**doc, "consistency": self._consistency(trusted, doc, budget)}
        ev = verify_evidence(doc, self.vkey, self.origin, trusted)
        if as_of is not None:
            as_of.check(ev)
            self._check_as_of(ev.checkpoint, budget)
        elif self.trusted is None or ev.checkpoint.size >= self.trusted.size:
            self.trusted = ev.checkpoint
        return ev

    def _check_as_of(self, cp: Checkpoint, budget: AnswerBudget) -> None:
        """(5) for an ``asOf`` answer: ``cp`` and the trusted checkpoint are one history, in
        whichever order their sizes go (asked of ``/api/v1/proof/consistency``, checked against
        both roots); a larger ``cp`` is then trusted, a smaller one leaves the trust as it was."""
        trusted = self.trusted
        if trusted is None:
            return
        old, new = (cp, trusted) if cp.size <= trusted.size else (trusted, cp)
        try:
            check_prefix(old, new, self._proof(old.size, new.size, budget))
        except (ProofError, ClientError) as e:
            if isinstance(e, ClientError) and e.status is None:
                raise  # not an answer: the network, or a bound
            raise ProofError(
                f"the asOf answer's checkpoint (size {cp.size}) and the one this client trusts "
                f"(size {trusted.size}) are not one history: the server answered from another "
                f"(a fork), or could not prove they are ({e})"
            ) from e
        if new is cp:
            self.trusted = cp

    def _proof(self, old: int, new: int, budget: AnswerBudget) -> list[bytes]:
        if old in (0, new):
            return []
        got = self._get_json(
            "GET", "/api/v1/proof/consistency", {"from": str(old), "to": str(new)}, budget
        )
        raw = got.get("proof") if isinstance(got, dict) else None
        if not isinstance(raw, list):
            raise ProofError(f"no consistency proof from size {old} to {new}")
        return [_b64(h, "consistency proof") for h in raw]

    def _consistency(
        self, trusted: Checkpoint, doc: Mapping[str, Any], budget: AnswerBudget
    ) -> dict[str, Any]:
        """The proof from ``trusted`` to the size ``doc`` claims (checked with the document)."""
        size = doc.get("treeSize")
        if type(size) is not int or size <= trusted.size or trusted.size == 0:
            return {"fromSize": trusted.size, "proof": []}
        got = self._get_json(
            "GET",
            "/api/v1/proof/consistency",
            {"from": str(trusted.size), "to": str(size)},
            budget,
        )
        proof = got.get("proof") if isinstance(got, dict) else None
        return {"fromSize": trusted.size, "proof": proof if isinstance(proof, list) else []}

    def evidence(self, subject: str, *, as_of: int | str | None = None) -> Evidence:
        """Every record about ``subject`` (every page, see :meth:`_every_page`); each entry's
        statement names it as a subject."""
        from ledger.client_checks import check_subjects, digest_of

        digest = digest_of("subject", subject)
        return self._every_page(
            "GET",
            "/api/v1/evidence",
            {"subject": digest, "asOf": as_of},
            lambda entries: check_subjects(entries, {digest}),
        )

    def evidence_many(self, subjects: Sequence[str], *, as_of: int | str | None = None) -> Evidence:
        """Every record about any of ``subjects``; each entry names one of them as a subject."""
        from ledger.client_checks import check_subjects, digest_of

        digests = sorted({digest_of("subjects", s) for s in subjects})
        return self._every_page(
            "POST",
            "/api/v1/evidence",
            {"asOf": as_of},
            lambda entries: check_subjects(entries, set(digests)),
            json={"subjects": digests},
        )

    def _every_page(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        check: Callable[[list[Entry]], None],
        **kw: Any,
    ) -> Evidence:
        """One evidence answer of every page (following ``next``, each page verified and
        checked): the first page's checkpoint, every page proved against it (a cursor pins it),
        ``next`` ``None``. One answer's bounds hold for all its pages together: bytes, deadline,
        pages, entries and a repeated cursor."""
        pages = self._budget()
        first = page = self._call(method, path, params, budget=pages, carries_since=True, **kw)
        entries: list[Entry] = []
        raw_entries: list[Any] = []
        while True:
            if page.note != first.note:
                raise IntegrityError(f"{path}: a later page is proved against another checkpoint")
            check(page.entries)
            entries.extend(page.entries)
            raw_entries.extend(page.raw["entries"])
            if page.next is None:
                break
            pages.follow(page.next, len(page.entries))
            query = {**params, "cursor": page.next}
            page = self._call(method, path, query, budget=pages, carries_since=True, **kw)
        if len({e.index for e in entries}) != len(entries):
            raise IntegrityError(f"{path}: an entry is on two pages")
        raw = {**first.raw, "entries": raw_entries, "next": None}
        return replace(first, entries=entries, next=None, raw=raw)

    def _pages(
        self, path: str, params: dict[str, Any], check: Callable[[list[Entry]], None]
    ) -> Iterator[Entry]:
        """Every page, each bounded like one answer (its bytes, its deadline); the pages
        followed, their entries and a repeated cursor are bounded for the whole iteration."""
        pages = self._budget()
        while True:
            page = self._call("GET", path, params)
            check(page.entries)
            yield from page.entries
            if page.next is None:
                return
            pages.follow(page.next, len(page.entries))
            params["cursor"] = page.next

    def search(self, **filters: Any) -> Iterator[Entry]:
        """Every matching entry, following ``next`` cursors; each page verified, and each entry
        checked against the filters its body can show (:func:`ledger.client_checks.Filters`).
        Filters use the route's names (``purl=``, ``versions=``, ``vuln=``, ``status=``,
        ``asOf=``…)."""
        from ledger.client_checks import SearchFilters

        wanted = SearchFilters.parse(filters)
        return self._pages("/api/v1/search", dict(filters), wanted.check)

    def story(
        self, digest: str, *, as_of: int | str | None = None, require_complete: bool = False
    ) -> Evidence:
        """The artifact's story, recomputed from the proved entries (``extra["story"]`` and
        ``extra["artifact"]``); the signer names are in ``unverified["signers"]``.

        ``extra["complete"]`` is false when a bound cut the answer, and ``extra["truncated"]``
        names each part cut (page the rest with :meth:`search` ``subject=``); with
        ``require_complete`` such an answer is a :class:`ClientError`. A true ``complete`` is
        the server's claim: no answer can prove that nothing was left out."""
        from ledger.client_checks import digest_of
        from ledger.client_story_checks import check_story

        d = digest_of("digest", digest)
        ev = self._call("GET", f"/api/v1/artifacts/{d}/story", {"asOf": as_of})
        extra, unverified = check_story(ev, d)
        _complete(extra, f"the story of {d}", require_complete)
        return replace(ev, extra=extra, unverified=unverified)

    def changes(
        self,
        old: str,
        new: str,
        *,
        as_of: int | str | None = None,
        require_complete: bool = False,
    ) -> Evidence:
        """What changed between two builds (``extra["changes"]``), recomputed from the proved
        entries; ``extra["complete"]`` and ``extra["truncated"]`` as for :meth:`story`."""
        from ledger.client_checks import digest_of
        from ledger.client_story_checks import check_changes

        a, b = digest_of("from", old), digest_of("to", new)
        ev = self._call("GET", "/api/v1/artifacts/changes", {"from": a, "to": b, "asOf": as_of})
        extra, unverified = check_changes(ev, a, b)
        _complete(extra, f"the changes from {a} to {b}", require_complete)
        return replace(ev, extra=extra, unverified=unverified)

    def signer_entries(
        self, name: str, *, since: str | None = None, until: str | None = None
    ) -> Iterator[Entry]:
        """What ``name`` signed: each entry's record time is checked against the range; that
        ``name`` signed it is the trust registry's attribution, which the client does not check
        (``verify`` does, against its policy)."""
        from ledger.client_checks import SearchFilters

        wanted = SearchFilters.parse({"since": since, "until": until})
        params: dict[str, Any] = {"since": since, "until": until}
        return self._pages(f"/api/v1/signers/{name}/entries", params, wanted.check)
