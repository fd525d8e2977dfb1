"""Step 1 of the pipeline: get the evidence document (DESIGN.md §3.3) about some digests.

Three sources, one shape: a file (``--evidence``: no network at all), a ledger's audit API
(``--ledger URL``: ``POST /api/v1/evidence`` following ``next`` pages, with ``since`` so the
answer carries a consistency proof from the checkpoint this verifier trusts) or the ledger's
database (``--db URL``: the server's own read side, imported only then). Nothing returned here is
trusted yet: the proof steps check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.answer_bounds import MAX_ANSWER_BYTES, MAX_ENTRIES, MAX_PAGES, AnswerBudget
from verify.errors import EvidenceUnavailable, UsageError

__all__ = ["TOKEN_ENV", "from_db", "from_file", "from_ledger"]

TOKEN_ENV = "LEDGER_TOKEN"  # noqa: S105 - a variable name, not a secret
MAX_EVIDENCE_BYTES = MAX_ANSWER_BYTES  # a file, or every page of a ledger's answer together
ANSWER_DEADLINE = 120.0  # seconds for a ledger's whole answer, every page and byte of it
_PAGE_LIMIT = 1000


def from_file(path: Path) -> dict[str, Any]:
    """An evidence file as written by ``verify export-evidence`` (or saved from the API)."""
    from verify._internal.files import read_limited

    data = read_limited(path, "evidence", MAX_EVIDENCE_BYTES)
    from attest._internal import jsontext
    from attest.errors import Error as AttestError

    try:
        doc = jsontext.loads(data, f"evidence {path}")
    except AttestError as e:
        raise UsageError(str(e)) from e
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: an evidence document is a JSON object")
    return doc


def _merge(pages: list[dict[str, Any]]) -> dict[str, Any]:
    doc = dict(pages[0])
    doc["entries"] = [e for p in pages for e in p.get("entries") or []]
    if "registry" in pages[-1]:  # every page carries it; the last page's is as complete
        doc["registry"] = pages[-1]["registry"]
    doc.pop("next", None)
    return doc


def from_ledger(
    url: str,
    digests: Sequence[str],
    *,
    since: int | None,
    token: str | None,
    as_of: str | None = None,
    registry: bool = False,
) -> dict[str, Any]:
    """Every record the ledger at ``url`` holds about ``digests``, as one evidence document."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params: dict[str, str] = {"limit": str(_PAGE_LIMIT)}
    if since is not None:  # 0 too: a verifier that trusted the empty tree
        params["since"] = str(since)
    if as_of:
        params["asOf"] = as_of
    if registry:
        params["registry"] = "true"
    pages: list[dict[str, Any]] = []
    budget = _budget()
    http = _Ledger(url.rstrip("/"), headers)
    try:
        pages.append(_page(http, params, list(digests), budget))
    except _Behind:  # the ledger is smaller than what this verifier trusted: step 3 says so
        params.pop("since")
        pages.append(_page(http, params, list(digests), budget))
    while True:
        nxt = pages[-1].get("next")
        if not isinstance(nxt, str) or not nxt:
            return _merge(pages)
        got = pages[-1].get("entries")
        budget.follow(nxt, len(got) if isinstance(got, list) else 0)
        params = {**params, "cursor": nxt}
        pages.append(_page(http, params, list(digests), budget))


class _Behind(EvidenceUnavailable):
    """The server refused ``since`` as past its latest checkpoint."""


def _budget() -> AnswerBudget:
    """The bounds of one ledger answer (this module's, so a test can lower them)."""
    return AnswerBudget(
        EvidenceUnavailable,
        max_bytes=MAX_EVIDENCE_BYTES,
        max_pages=MAX_PAGES,
        max_entries=MAX_ENTRIES,
        deadline=ANSWER_DEADLINE,
    )


class _Ledger:
    """The ledger's evidence endpoint over the standard library's HTTP client (``urllib``: the
    proxy variables ``HTTPS_PROXY``/``NO_PROXY`` honoured, as httpx did; TLS verified against
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set, else certifi's roots, as httpx did, else the
    system's). httpx's import alone cost a cold ``verify --ledger`` ~50 ms more (issue 11 §6)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url, self.headers = base_url, headers

    def post(
        self, path: str, params: dict[str, str], body: Any, budget: AnswerBudget
    ) -> tuple[int, bytes]:
        """(HTTP status, body) of a JSON ``POST``, the body read within ``budget``."""
        import json
        import urllib.error
        import urllib.parse
        import urllib.request

        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        if not url.startswith(("http://", "https://")):
            raise EvidenceUnavailable(f"cannot reach the ledger at {self.base_url}: not http(s)")
        request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked above
            url,
            data=json.dumps(body).encode(),
            headers={**self.headers, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            context = _tls() if url.startswith("https://") else None
            wait = min(30.0, budget.left() or 30.0)  # each socket operation; the deadline overall
            response = urllib.request.urlopen(request, timeout=wait, context=context)  # noqa: S310
        except urllib.error.HTTPError as e:
            response = e  # an answer all the same: its status and body are judged by _page
        except (OSError, ValueError) as e:
            raise EvidenceUnavailable(f"cannot reach the ledger at {self.base_url}: {e}") from e
        with response:
            data = bytearray()
            try:
                while chunk := response.read1(1 << 16):  # what arrived: a drip meets the deadline
                    data += chunk
                    budget.take(len(chunk))
            except OSError as e:
                raise EvidenceUnavailable(f"cannot reach the ledger at {self.base_url}: {e}") from e
            return int(response.status), bytes(data)


def _tls() -> Any:
    import os
    import ssl

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not cafile and not capath:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:  # pragma: no cover - certifi comes with the other clients
            cafile = None
    return ssl.create_default_context(cafile=cafile or None, capath=capath or None)


def _page(
    http: _Ledger, params: dict[str, str], digests: list[str], budget: AnswerBudget
) -> dict[str, Any]:
    status, body = http.post("/api/v1/evidence", params, {"subjects": digests}, budget)
    if status in (401, 403):
        raise EvidenceUnavailable(
            f"the ledger refused to answer (HTTP {status}): set {TOKEN_ENV} to a token "
            "with the read scope"
        )
    if status == 400 and "since" in params and b"is past the checkpoint" in body:
        raise _Behind(body[:300].decode("utf-8", "replace"))
    if status != 200:
        text = body[:300].decode("utf-8", "replace")
        raise EvidenceUnavailable(f"the ledger answered HTTP {status}: {text}")
    from attest._internal import jsontext
    from attest.errors import Error as AttestError

    try:
        doc = jsontext.loads(body, "the ledger's answer")
    except AttestError as e:
        raise EvidenceUnavailable(str(e)) from e
    if not isinstance(doc, dict):
        raise EvidenceUnavailable("the ledger's answer is not an evidence document")
    return doc


def from_db(
    url: str,
    digests: Sequence[str],
    *,
    since: int | None,
    registry: bool = False,
    as_of: int | None = None,
) -> dict[str, Any]:
    """The same document, read from the ledger's database directly (read-only); ``as_of``: from
    the newest checkpoint of at most that size (the API's ``asOf=SIZE``)."""
    from ledger.errors import Error as LedgerError
    from ledger.index import query as q
    from ledger.index.evidence import AuditReader
    from ledger.index.params import AsOf
    from ledger.log import Ledger

    try:
        with Ledger.open(url) as ledger:
            reader = AuditReader(ledger)
            cp = reader.checkpoint(AsOf(size=as_of) if as_of is not None else None)
            with reader.store._conn() as conn:
                found = q.search(
                    conn,
                    q.Filters(subjects=tuple(sorted(digests))),
                    cp.checkpoint.size,
                    -1,
                    1 << 30,
                )
            if since is not None and since > cp.checkpoint.size:
                since = None  # the ledger is behind what this verifier trusted: step 3 says so
            doc = reader.document(found, cp, since)
            if registry:
                doc["registry"] = reader.registry_entries(cp)
            return doc
    except LedgerError as e:
        raise EvidenceUnavailable(f"cannot read the ledger database: {e}") from e
