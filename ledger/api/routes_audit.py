"""The audit API: evidence, search, an artifact's story and changes, a signer's entries.

Every reply is an evidence document (:mod:`ledger.index.evidence`): one signed checkpoint named,
every entry with its record, exact body and inclusion proof against it. Query parameters are
taken as plain strings and parsed by :mod:`ledger.index.params`, so a malformed one is a 400 with
the reason (never a 500, never a framework 422 without one).

The routes that page through records (evidence, search, a signer's entries) return the document's
JSON bytes themselves (:mod:`ledger.index.evidence_json`): ``response_model`` still gives the
OpenAPI schema, and FastAPI's second pass (validating the dict of every entry, off the event loop
in another worker-thread hop) is skipped.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger.api.audit_models import ChangesDoc, EvidenceDoc, EvidenceRequest, StoryDoc
from ledger.api.auth import OPTIONAL_AUTH, require_read
from ledger.api.models import problem_responses
from ledger.api.request_body import json_body, read_model
from ledger.errors import BadQuery, NotFound
from ledger.index import query as q
from ledger.index import story
from ledger.index.evidence import AuditReader
from ledger.index.evidence_json import document_json
from ledger.index.params import (
    MAX_LIMIT,
    parse_as_of,
    parse_cursor,
    parse_digest,
    parse_limit,
    parse_size,
    parse_status,
    parse_text,
    parse_time_param,
    parse_versions,
    query_key,
)
from ledger.tokens import TokenInfo

__all__ = [
    "SEARCH_PARAMS",
    "changes_document",
    "evidence_answer",
    "router",
    "search_answer",
    "story_document",
]

router = APIRouter(tags=["audit"])
Reader = Annotated[TokenInfo | None, Depends(require_read)]
_ERRORS = problem_responses(400, 401, 403, 404, 422)
Opt = str | None
JSON = "application/json"


def _p(description: str, example: str | None = None) -> Any:
    return Query(description=description, examples=[example] if example else None)


AsOfQ = Annotated[Opt, _p("A tree size or an RFC 3339 time: answer as the ledger stood then.", "5")]
CursorQ = Annotated[Opt, _p("The `next` cursor of the previous page.")]
LimitQ = Annotated[Opt, _p(f"Entries per page, 1 to {MAX_LIMIT} (default 100).", "100")]
SinceSizeQ = Annotated[Opt, _p("A checkpointed size you trust: adds a consistency proof.", "3")]
RegistryQ = Annotated[
    Opt,
    _p(
        "true: also return every trust-registry record under the checkpoint (`registry`, proved "
        "like the entries), for verifiers that trust whoever the registry trusted.",
        "true",
    ),
]


def _reader(request: Request) -> AuditReader:
    return AuditReader(request.app.state.ledger)


def page(
    request: Request,
    filters: q.Filters,
    raw: dict[str, str | None],
    *,
    cursor: str | None,
    limit: int,
    as_of: str | None,
    since: str | None = None,
    registry: str | None = None,
) -> Response:
    """One page of records matching ``filters``, as an evidence document with ``next`` (and the
    registry's records when ``registry`` is ``true``), written as JSON bytes: the search, records,
    bodies and tiles in one read connection."""
    reader = _reader(request)
    key = query_key({**raw, "asOf": as_of, "limit": limit})
    at = parse_cursor(cursor, key)
    when = parse_as_of(as_of) if at is None else None
    with reader.store._conn() as conn:
        if at is not None:
            try:
                cp = reader.ledger.checkpoint_at(at.size)
            except NotFound as e:
                raise BadQuery("cursor: its checkpoint is unknown to this ledger") from e
            after = at.after
        else:
            cp = reader.checkpoint(when, conn)
            after = -1
        size = cp.checkpoint.size
        found = q.search(conn, filters, size, after, limit + 1)
        more = len(found) > limit
        found = found[:limit]
        nxt = q_cursor(found[-1], size, key) if more else None
        entries = reader.proved(found, cp, conn)
    consistency = reader.consistency(parse_size("since", since), cp)
    extra = reader.proved(reader.registry_indices(cp), cp) if _registry(registry) else None
    return Response(document_json(entries, cp, consistency, nxt, extra), media_type=JSON)


def _registry(registry: str | None) -> bool:
    if registry is None or registry == "false":
        return False
    if registry != "true":
        raise BadQuery("registry: true or false")
    return True


def q_cursor(after: int, size: int, key: str) -> str:
    from ledger.index.params import Cursor

    return Cursor(after, size, key).encode()


@router.get(
    "/api/v1/evidence",
    openapi_extra=OPTIONAL_AUTH,
    summary="Everything recorded about one artifact, with proofs",
    response_model=EvidenceDoc,
    responses=_ERRORS,
)
async def get_evidence(
    request: Request,
    _r: Reader,
    subject: Annotated[Opt, _p("The artifact digest, ALG:HEX.", "sha256:" + "ab" * 32)] = None,
    asOf: AsOfQ = None,  # noqa: N803 - the wire name
    since: SinceSizeQ = None,
    cursor: CursorQ = None,
    limit: LimitQ = None,
    registry: RegistryQ = None,
) -> Response:
    return await evidence_answer(request, subject, asOf, since, cursor, limit, registry)


async def evidence_answer(
    request: Request,
    subject: str | None,
    as_of: str | None,
    since: str | None,
    cursor: str | None,
    limit: str | None,
    registry: str | None,
) -> Response:
    """``GET /api/v1/evidence`` (also served by :mod:`ledger.api.audit_raw`)."""
    if subject is None:
        raise BadQuery("subject: required (an artifact digest such as sha256:<64 hex digits>)")
    digest = parse_digest("subject", subject)
    answer = partial(
        page,
        request,
        q.Filters(subjects=(digest,)),
        {"subject": digest},
        cursor=cursor,
        limit=parse_limit(limit, MAX_LIMIT),
        as_of=as_of,
        since=since,
        registry=registry,
    )
    # One artifact's evidence is a few records. From SQLite (a local file) it is answered on
    # the event loop: the hop to a worker thread cost about a quarter of the request's CPU.
    # PostgreSQL's reads wait on the network, so there it goes to a thread like every route.
    if request.app.state.ledger.store.engine.dialect.name == "sqlite":
        return answer()
    return await run_in_threadpool(answer)


@router.post(
    "/api/v1/evidence",
    summary="Everything recorded about up to 1,000 artifacts, with proofs",
    response_model=EvidenceDoc,
    responses=problem_responses(400, 401, 403, 404, 408, 413, 422),
    openapi_extra={**OPTIONAL_AUTH, **json_body(EvidenceRequest)},
)
async def post_evidence(
    request: Request,
    _r: Reader,
    asOf: AsOfQ = None,  # noqa: N803
    since: SinceSizeQ = None,
    cursor: CursorQ = None,
    limit: LimitQ = None,
    registry: RegistryQ = None,
) -> Response:
    # The body is read here, bounded, once the read token was checked (a declared body parameter
    # would be read whole and parsed before the dependency runs).
    body = await read_model(request, EvidenceRequest)
    digests = tuple(sorted({parse_digest("subjects", s) for s in body.subjects}))
    answer = partial(
        page,
        request,
        q.Filters(subjects=digests),
        {"subjects": ",".join(digests)},
        cursor=cursor,
        limit=parse_limit(limit, MAX_LIMIT),
        as_of=asOf,
        since=since,
        registry=registry,
    )
    return await run_in_threadpool(answer)


_TERMS = ("subject", "signer", "predicateType", "builder", "repo", "ref", "commit", "step")


@router.get(
    "/api/v1/search",
    openapi_extra=OPTIONAL_AUTH,
    summary="Records matching every filter given, with proofs (keyset pages)",
    response_model=EvidenceDoc,
    responses=_ERRORS,
)
def get_search(
    request: Request,
    _r: Reader,
    subject: Annotated[Opt, _p("Artifact digest, ALG:HEX.")] = None,
    signer: Annotated[Opt, _p("Trust-registry signer name.", "ci")] = None,
    predicateType: Annotated[Opt, _p("Predicate type URI.")] = None,  # noqa: N803
    builder: Annotated[Opt, _p("SLSA builder id.")] = None,
    repo: Annotated[Opt, _p("Source repository.")] = None,
    ref: Annotated[Opt, _p("Source ref, e.g. refs/heads/main.")] = None,
    commit: Annotated[Opt, _p("Source commit.")] = None,
    step: Annotated[Opt, _p("Step name (link, test).", "build")] = None,
    since: Annotated[Opt, _p("Records at or after this RFC 3339 time.")] = None,
    until: Annotated[Opt, _p("Records at or before this RFC 3339 time.")] = None,
    purl: Annotated[Opt, _p("A package (purl without version).", "pkg:pypi/requests")] = None,
    versions: Annotated[
        Opt, _p("A vers range, e.g. vers:pypi/<2.32.0.", "vers:pypi/<2.32.0")
    ] = None,
    vuln: Annotated[Opt, _p("Vulnerability id.", "CVE-2024-35195")] = None,
    status: Annotated[Opt, _p("affected, fixed, not_affected or under_investigation.")] = None,
    asOf: AsOfQ = None,  # noqa: N803
    cursor: CursorQ = None,
    limit: LimitQ = None,
) -> Response:
    return search_answer(
        request,
        {
            "subject": subject,
            "signer": signer,
            "predicateType": predicateType,
            "builder": builder,
            "repo": repo,
            "ref": ref,
            "commit": commit,
            "step": step,
            "since": since,
            "until": until,
            "purl": purl,
            "versions": versions,
            "vuln": vuln,
            "status": status,
            "asOf": asOf,
            "cursor": cursor,
            "limit": limit,
        },
    )


SEARCH_PARAMS = (
    *_TERMS,
    *("since", "until", "purl", "versions", "vuln", "status", "asOf", "cursor", "limit"),
)


def search_answer(request: Request, params: dict[str, str | None]) -> Response:
    """``GET /api/v1/search`` with its query parameters by wire name (every one of
    :data:`SEARCH_PARAMS`; also served by :mod:`ledger.api.audit_raw`)."""
    raw = {name: params[name] for name in _TERMS}
    terms = []
    for name in _TERMS:
        value = raw[name]
        if value is not None:
            value = parse_digest(name, value) if name == "subject" else parse_text(name, value)
            assert value is not None
            terms.append((name, value.lower() if name == "commit" else value))
    since, until, purl, versions = (params[k] for k in ("since", "until", "purl", "versions"))
    vuln, status = params["vuln"], params["status"]
    st = parse_status(status)
    vid = parse_text("vuln", vuln)
    if st is not None and vid is None:
        raise BadQuery("status: needs vuln (which vulnerability's status)")
    filters = q.Filters(
        terms=tuple(terms),
        since=parse_time_param("since", since),
        until=parse_time_param("until", until),
        versions=parse_versions(purl, versions),
        vuln=vid,
        status=st,
    )
    raw.update(since=since, until=until, purl=purl, versions=versions, vuln=vuln, status=status)
    return page(
        request,
        filters,
        raw,
        cursor=params["cursor"],
        limit=parse_limit(params["limit"]),
        as_of=params["asOf"],
    )


@router.get(
    "/api/v1/signers/{name}/entries",
    openapi_extra=OPTIONAL_AUTH,
    summary="What one signer signed, in a time range, with proofs",
    response_model=EvidenceDoc,
    responses=_ERRORS,
)
def get_signer_entries(
    request: Request,
    name: Annotated[str, Path(description="Trust-registry signer name.", examples=["ci"])],
    _r: Reader,
    since: Annotated[Opt, _p("At or after this RFC 3339 time.")] = None,
    until: Annotated[Opt, _p("At or before this RFC 3339 time.")] = None,
    asOf: AsOfQ = None,  # noqa: N803
    cursor: CursorQ = None,
    limit: LimitQ = None,
) -> Response:
    signer = parse_text("name", name)
    assert signer is not None
    # an unknown name is a 404, as for any missing resource (a later page: it was known)
    if cursor is None and signer not in request.app.state.ledger.trust().state.signers:
        raise NotFound(f"no signer {signer!r} in the trust registry")
    filters = q.Filters(
        terms=(("signer", signer),),
        since=parse_time_param("since", since),
        until=parse_time_param("until", until),
    )
    raw = {"signer": signer, "since": since, "until": until}
    return page(request, filters, raw, cursor=cursor, limit=parse_limit(limit), as_of=asOf)


@router.get(
    "/api/v1/artifacts/{digest}/story",
    openapi_extra=OPTIONAL_AUTH,
    summary="An artifact's chain: steps, materials, signers, tests, scans, fixes, VSAs",
    response_model=StoryDoc,
    responses=_ERRORS,
)
def get_story(
    request: Request,
    digest: Annotated[str, Path(description="ALG:HEX.", examples=["sha256:" + "ab" * 32])],
    _r: Reader,
    asOf: AsOfQ = None,  # noqa: N803
) -> dict[str, Any]:
    return story_document(_reader(request), parse_digest("digest", digest), asOf)


def story_document(reader: AuditReader, digest: str, as_of: str | None) -> dict[str, Any]:
    """The story route's answer: the story of ``digest``, its proofs, and what a bound cut."""
    cp = reader.checkpoint(parse_as_of(as_of))
    told = story.artifact_story(reader, digest, cp.checkpoint.size)
    return reader.document(
        told.indices,
        cp,
        story=told.steps,
        artifact=told.artifact,
        complete=not told.truncated,
        truncated=told.truncated,
    )


@router.get(
    "/api/v1/artifacts/changes",
    openapi_extra=OPTIONAL_AUTH,
    summary="Dependencies and vulnerabilities that changed between two builds",
    response_model=ChangesDoc,
    responses=_ERRORS,
)
def get_changes(
    request: Request,
    _r: Reader,
    from_: Annotated[Opt, Query(alias="from", description="The earlier build's digest.")] = None,
    to: Annotated[Opt, _p("The later build's digest.")] = None,
    asOf: AsOfQ = None,  # noqa: N803
) -> dict[str, Any]:
    if from_ is None or to is None:
        raise BadQuery("from and to: both required (two artifact digests)")
    old, new = parse_digest("from", from_), parse_digest("to", to)
    return changes_document(_reader(request), old, new, asOf)


def changes_document(reader: AuditReader, old: str, new: str, as_of: str | None) -> dict[str, Any]:
    """The changes route's answer: what changed from ``old`` to ``new``, its proofs, and what a
    bound cut."""
    cp = reader.checkpoint(parse_as_of(as_of))
    diff = story.changes(reader, old, new, cp.checkpoint.size)
    return reader.document(
        diff.indices,
        cp,
        changes=diff.summary,
        complete=not diff.truncated,
        truncated=diff.truncated,
    )
