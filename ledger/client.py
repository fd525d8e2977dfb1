"""A client for the audit API that believes nothing it has not checked.

Every reply is an evidence document. Before a method returns, the client (1) opens the checkpoint
with the ledger's verifier key you pinned (signature, origin, the C2SP rules), (2) for every entry
parses the leaf as a record of this log at its index, (3) checks that the body hashes to the
record's body digest, (4) checks the inclusion proof of the leaf hash against the checkpoint's
root (RFC 9162, the pure :mod:`ledger.merkle` functions), and (5) when it already trusts an older
checkpoint, checks the consistency proof from it (the evidence routes carry it with ``since``;
for the others the client asks ``/api/v1/proof/consistency``) and then trusts the newer one. A
failed check raises :class:`~ledger.errors.ProofError`, :class:`~ledger.errors.NoteError` /
:class:`~ledger.errors.CheckpointError` or :class:`~ledger.errors.IntegrityError`; an HTTP error
raises :class:`ClientError`.

    with AuditClient("http://127.0.0.1:8080", vkey, "demo.example/ledger") as c:
        for entry in c.evidence("sha256:…").entries:
            print(entry.index, entry.statement["predicateType"])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger import merkle
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import Error, IntegrityError, ProofError
from ledger.note import parse_verifier
from ledger.record import Record

__all__ = ["AuditClient", "ClientError", "Entry", "Evidence", "verify_evidence"]

MEDIA_TYPE = "application/vnd.provenance-ledger.evidence.v1+json"


class ClientError(Error):
    """The server answered with an error (its problem detail is the message) or not at all."""

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
    checkpoint: Checkpoint
    note: str
    entries: list[Entry]
    next: str | None
    extra: dict[str, Any] = field(default_factory=dict)  # story, changes, …
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the document, to keep


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
    """Steps (1) to (5) of the module docstring on one document; raises at the first failure."""
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
    if trusted is not None:  # (5)
        _check_consistency(doc.get("consistency"), trusted, cp)
    nxt = doc.get("next")
    extra = {
        k: v
        for k, v in doc.items()
        if k not in ("mediaType", "checkpoint", "entries", "consistency", "next", "treeSize")
    }
    return Evidence(cp, note, verified, nxt if isinstance(nxt, str) else None, extra, dict(doc))


def _check_consistency(c: Any, trusted: Checkpoint, cp: Checkpoint) -> None:
    if cp.size < trusted.size:
        raise ProofError(f"the server answered with size {cp.size}, older than {trusted.size}")
    if not isinstance(c, dict) or c.get("fromSize") != trusted.size:
        raise ProofError(f"no consistency proof from the trusted size {trusted.size}")
    proof = [_b64(h, "consistency proof") for h in c.get("proof") or []]
    if trusted.size == cp.size:
        if trusted.root_hash != cp.root_hash:
            raise ProofError("two checkpoints of one size with different roots: a split view")
        return
    merkle.verify_consistency(trusted.size, cp.size, proof, trusted.root_hash, cp.root_hash)


class AuditClient:
    """The audit routes, every answer verified (see the module docstring) before it is returned.

    ``vkey`` is the ledger's verifier key (as ``ledger init`` printed it), obtained out of band;
    after each answer the client trusts its checkpoint and asks the next one for a consistency
    proof from it (``since``)."""

    def __init__(
        self,
        url: str,
        vkey: str,
        origin: str,
        *,
        token: str | None = None,
        trusted: Checkpoint | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        parse_verifier(vkey)
        self.vkey, self.origin, self.trusted = vkey, origin, trusted
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http or httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AuditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_json(self, method: str, path: str, query: Mapping[str, str], **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, params=query, **kw)
        except httpx.HTTPError as e:
            raise ClientError(f"{path}: {e}") from e
        if r.status_code != 200:
            try:
                detail = r.json().get("detail", r.text)
            except (ValueError, AttributeError):
                detail = r.text
            raise ClientError(f"{path}: HTTP {r.status_code}: {detail}", r.status_code)
        try:
            return r.json()
        except ValueError as e:
            raise IntegrityError(f"{path}: the answer is not JSON") from e

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        carries_since: bool = False,
        **kw: Any,
    ) -> Evidence:
        query = {k: str(v) for k, v in params.items() if v is not None}
        as_of = "asOf" in query
        trusted = None if as_of else self.trusted
        if trusted is not None and carries_since:
            query["since"] = str(trusted.size)
        doc = self._get_json(method, path, query, **kw)
        if trusted is not None and not carries_since and isinstance(doc, dict):
            doc = {**doc, "consistency": self._consistency(trusted, doc)}
        if not isinstance(doc, dict):
            raise IntegrityError(f"{path}: the answer is not an evidence document")
        ev = verify_evidence(doc, self.vkey, self.origin, trusted)
        if not as_of and (self.trusted is None or ev.checkpoint.size >= self.trusted.size):
            self.trusted = ev.checkpoint
        return ev

    def _consistency(self, trusted: Checkpoint, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The proof from ``trusted`` to the size ``doc`` claims (checked with the document)."""
        size = doc.get("treeSize")
        if type(size) is not int or size <= trusted.size or trusted.size == 0:
            return {"fromSize": trusted.size, "proof": []}
        got = self._get_json(
            "GET", "/api/v1/proof/consistency", {"from": str(trusted.size), "to": str(size)}
        )
        proof = got.get("proof") if isinstance(got, dict) else None
        return {"fromSize": trusted.size, "proof": proof if isinstance(proof, list) else []}

    def evidence(self, subject: str, *, as_of: int | str | None = None) -> Evidence:
        return self._call(
            "GET", "/api/v1/evidence", {"subject": subject, "asOf": as_of}, carries_since=True
        )

    def evidence_many(self, subjects: Sequence[str], *, as_of: int | str | None = None) -> Evidence:
        return self._call(
            "POST",
            "/api/v1/evidence",
            {"asOf": as_of},
            carries_since=True,
            json={"subjects": list(subjects)},
        )

    def search(self, **filters: Any) -> Iterator[Entry]:
        """Every matching entry, following ``next`` cursors; each page verified. Filters use
        the route's names (``purl=``, ``versions=``, ``vuln=``, ``status=``, ``asOf=``…)."""
        params = dict(filters)
        while True:
            page = self._call("GET", "/api/v1/search", params)
            yield from page.entries
            if page.next is None:
                return
            params["cursor"] = page.next

    def story(self, digest: str, *, as_of: int | str | None = None) -> Evidence:
        return self._call("GET", f"/api/v1/artifacts/{digest}/story", {"asOf": as_of})

    def changes(self, old: str, new: str, *, as_of: int | str | None = None) -> Evidence:
        return self._call(
            "GET", "/api/v1/artifacts/changes", {"from": old, "to": new, "asOf": as_of}
        )

    def signer_entries(
        self, name: str, *, since: str | None = None, until: str | None = None
    ) -> Iterator[Entry]:
        params: dict[str, Any] = {"since": since, "until": until}
        while True:
            page = self._call("GET", f"/api/v1/signers/{name}/entries", params)
            yield from page.entries
            if page.next is None:
                return
            params["cursor"] = page.next
