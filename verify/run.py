"""The commands' I/O around the pure pipeline: read the policy and artifacts, load the state,
fetch the evidence, run :mod:`verify.pipeline`, save the state, record the decision."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attest._internal.frozen import Frozen, set_field
from verify.artifact import Artifact, resolve_artifacts
from verify.errors import Error as VerifyError
from verify.errors import UsageError
from verify.pipeline import Outcome, verify_attestations, verify_evidence
from verify.policy import Policy, load_policy
from verify.sources import TOKEN_ENV, from_db, from_file, from_ledger
from verify.trust import Trust

if TYPE_CHECKING:
    from verify.layout_gate import LayoutFiles

__all__ = ["Request", "export", "read_bundles", "run_attestations", "run_check"]


class Request(Frozen):
    _fields = (
        "artifact",
        "policy",
        "ledger",
        "evidence",
        "db",
        "record",
        "record_key",
        "layout",
        "layout_keys",
        "link_dir",
    )
    artifact: str
    policy: Path
    ledger: str | None
    evidence: Path | None
    db: str | None
    record: bool
    record_key: Path | None
    layout: Path | None
    layout_keys: tuple[Path, ...]
    link_dir: Path | None

    def __init__(
        self,
        artifact: str,
        policy: Path,
        ledger: str | None,
        evidence: Path | None,
        db: str | None,
        record: bool = False,
        record_key: Path | None = None,
        layout: Path | None = None,
        layout_keys: tuple[Path, ...] = (),
        link_dir: Path | None = None,
    ) -> None:
        set_field(self, "artifact", artifact)
        set_field(self, "policy", policy)
        set_field(self, "ledger", ledger)
        set_field(self, "evidence", evidence)
        set_field(self, "db", db)
        set_field(self, "record", record)
        set_field(self, "record_key", record_key)
        set_field(self, "layout", layout)
        set_field(self, "layout_keys", layout_keys)
        set_field(self, "link_dir", link_dir)

    def check(self) -> None:
        given = [x for x in (self.ledger, self.evidence, self.db) if x is not None]
        if len(given) != 1:
            raise UsageError("give exactly one of --ledger URL, --evidence FILE or --db URL")
        if self.record and (self.ledger is None or self.record_key is None):
            raise UsageError("--record needs --ledger URL and --record-key FILE")


def _digests(arts: list[Artifact]) -> list[str]:
    return sorted({k for a in arts for k in a.digest_keys()})


def _evidence(
    req: Request, arts: list[Artifact], since: int | None, registry: bool
) -> dict[str, Any]:
    if req.evidence is not None:
        return from_file(req.evidence)
    digests = _digests(arts)
    if req.ledger is not None:
        token = os.environ.get(TOKEN_ENV)
        return from_ledger(req.ledger, digests, since=since, token=token, registry=registry)
    assert req.db is not None
    return from_db(req.db, digests, since=since, registry=registry)


def _state_dir(policy: Policy) -> Path | None:
    if policy.ledger is None or policy.ledger.state_dir is None:
        return None
    return policy.path(policy.ledger.state_dir)


def _layout(req: Request, policy: Policy) -> LayoutFiles | None:
    """The in-toto layout to check too (options, else the policy's ``layout:``), read now: an
    unreadable one is exit 2 before any evidence is fetched. in-toto is not imported here."""
    if req.layout is None and not req.layout_keys and req.link_dir is None and not policy.layout:
        return None
    from verify.layout_gate import read_layout, spec_from

    spec = spec_from(req.layout, req.layout_keys, req.link_dir, policy)
    return read_layout(spec) if spec is not None else None


def run_check(req: Request, at: datetime, *, as_of: bool = False) -> Outcome:
    """``verify ARTIFACT``: every step of the pipeline; the state saved once the proofs held.
    ``as_of`` (``--at`` given): from ``--ledger``, the server's as-of answer (:mod:`verify.as_of`)."""
    req.check()
    policy = load_policy(req.policy)
    if policy.ledger is None:
        raise UsageError(f"{req.policy}: ledger.keys is required to check ledger evidence")
    trust = Trust.load(policy)
    arts = resolve_artifacts(req.artifact)
    layout = _layout(req, policy)
    state = _state_dir(policy)
    origin, keys = policy.ledger.origin, policy.ledger.keys
    trusted, on_proved = None, None
    if state is not None:  # the state file's module loads only for a policy with a stateDir
        from verify.state import load_trusted, save_trusted

        trusted = load_trusted(state, origin, keys)
        on_proved = lambda cp: save_trusted(state, cp, trusted)  # noqa: E731
    if as_of and req.ledger is not None:
        from verify.as_of import as_of_evidence

        token = os.environ.get(TOKEN_ENV)
        doc, trusted, on_proved = as_of_evidence(
            req.ledger, policy, _digests(arts), at, trusted, token, trust.wants_registry
        )
    else:
        since = trusted.checkpoint.size if trusted else None
        doc = _evidence(req, arts, since, trust.wants_registry)
    # The checkpoint is kept once every proof of the run held — also when the run then ends for
    # want of evidence or on policy (exit 3, 1): what it saw is genuine. A proof or signature
    # failure anywhere, the materials' included (exit 4), keeps the state where it was.
    proved: list[Any] = []

    def keep() -> None:
        if on_proved is not None and proved:
            on_proved(proved[-1])

    try:
        out = verify_evidence(
            policy, trust, arts, doc, at=at, trusted=trusted, on_proved=proved.append
        )
        if any(s.materials_from for s in policy.steps):
            from verify.material_chain import follow_materials

            follow_materials(out, policy, trust, _material_fetch(req, doc))
    except VerifyError as e:
        if e.exit_code != 4:
            keep()
        raise
    keep()
    if layout is not None:
        from verify.layout_gate import layout_rule

        out.rules.append(layout_rule(layout, arts, at))
    if req.record:
        from verify.record import record_decision

        assert req.ledger is not None and req.record_key is not None
        record_decision(out, req.policy, req.ledger, req.record_key)
    return out


def _material_fetch(
    req: Request, doc: dict[str, Any]
) -> Callable[[list[str], int], dict[str, Any]]:
    """Where ``materialsFrom`` gets the materials' records: the same source, as of a tree size
    (an evidence file holds them already: ``export-evidence`` adds them)."""
    token = os.environ.get(TOKEN_ENV)
    if req.ledger is not None:
        url = req.ledger
        return lambda keys, size: from_ledger(url, keys, since=None, token=token, as_of=str(size))
    if req.db is not None:
        db = req.db
        return lambda keys, size: from_db(db, keys, since=None, as_of=size)
    return lambda keys, size: doc


def export(
    artifact: str, output: Path, ledger: str | None, db: str | None, since: int | None
) -> int:
    """``verify export-evidence``: write what the ledger proves about ARTIFACT to a file."""
    from attest._internal.files import write_atomic

    if (ledger is None) == (db is None):
        raise UsageError("give exactly one of --ledger URL or --db URL")
    arts = resolve_artifacts(artifact)
    if ledger is not None:
        token = os.environ.get(TOKEN_ENV)
        doc = from_ledger(ledger, _digests(arts), since=since, token=token, registry=True)
    else:
        assert db is not None
        doc = from_db(db, _digests(arts), since=since, registry=True)
    from verify.material_chain import add_material_evidence

    token = os.environ.get(TOKEN_ENV)
    doc = add_material_evidence(
        doc,
        _digests(arts),
        lambda keys, size: (
            from_ledger(ledger, keys, since=None, token=token, as_of=str(size))
            if ledger is not None
            else from_db(str(db), keys, since=None, as_of=size)
        ),
    )
    write_atomic(str(output), json.dumps(doc, indent=1).encode() + b"\n")
    return 0


def _parsed(data: bytes, path: Path) -> list[tuple[Any, bytes]]:
    """(value, exact bytes) of a JSON document, or of each JSON Lines record, parsed strictly
    (attest's JSON: UTF-8, no duplicate keys, bounded nesting): exit 2, never a crash."""
    from attest._internal import jsontext
    from attest.errors import Error as AttestError

    try:
        return [(jsontext.loads(data, str(path)), data)]
    except AttestError as whole:
        lines = [line for line in data.splitlines() if line.strip()]
        try:
            if len(lines) < 2:
                raise UsageError(str(whole)) from None
            first = jsontext.loads(lines[0], f"{path} line 1")
        except AttestError:
            raise UsageError(str(whole)) from None
        out = [(first, lines[0])]
        try:
            for i, line in enumerate(lines[1:], 2):
                out.append((jsontext.loads(line, f"{path} JSON Lines record {i}"), line))
        except AttestError as e:
            raise UsageError(str(e)) from e
        return out


_KINDS = "a DSSE envelope, a Sigstore bundle, PEP 740 provenance or npm's/gh's wrapper of bundles"


def _documents(data: bytes, path: Path) -> list[bytes]:
    """One file's attestations: a JSON document, or JSON Lines of them, each kept as its exact
    bytes; PyPI's PEP 740 provenance converted (:mod:`verify.pep740`); npm's ``{"attestations": [{"bundle": …}]}`` and gh's ``{"bundle": …}`` unwrapped (the
    strict parse already refused duplicate keys, so re-serialising those loses nothing)."""
    from verify.pep740 import bundles_from_pep740, is_pep740

    out: list[bytes] = []
    for doc, raw in _parsed(data, path):
        if not isinstance(doc, dict):
            raise UsageError(f"{path}: {_KINDS} is a JSON object, not {type(doc).__name__}")
        if is_pep740(doc):  # PyPI's provenance: each attestation as a Sigstore bundle
            out.extend(bundles_from_pep740(doc, str(path)))
            continue
        if "attestations" in doc:
            items, wrapped = doc["attestations"], True
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise UsageError(f'{path}: "attestations" must be a list of objects ({_KINDS})')
        else:
            items, wrapped = [doc], False
        for item in items:
            inner = item.get("bundle") if isinstance(item, dict) else None
            if isinstance(inner, dict):
                out.append(json.dumps(inner).encode())
            else:
                out.append(json.dumps(item).encode() if wrapped else raw)
    return out


def read_bundles(paths: list[Path]) -> list[bytes]:
    from attest.errors import Error as AttestError
    from attest.verification import read_document

    out: list[bytes] = []
    for p in paths:
        try:
            data = read_document(p, limit=64 << 20)
        except AttestError as e:
            raise UsageError(str(e)) from e
        out.extend(_documents(data, p))
    return out


def run_attestations(
    artifact: str,
    policy_file: Path,
    bundles: list[Path],
    at: datetime,
    layout: Path | None = None,
    layout_keys: tuple[Path, ...] = (),
    link_dir: Path | None = None,
) -> Outcome:
    """``verify attestations``: third-party attestations against the policy's rules (and an
    in-toto layout, :mod:`verify.layout_attestations`)."""
    policy = load_policy(policy_file)
    trust = Trust.load(policy)
    arts = resolve_artifacts(artifact)
    bodies = read_bundles(bundles)
    if layout is None and not layout_keys and link_dir is None and policy.layout is None:
        out = verify_attestations(policy, trust, arts, bodies, at)
    else:
        from verify.layout_attestations import verify_with_layout

        out = verify_with_layout(policy, trust, arts, bodies, at, layout, layout_keys, link_dir)
    if any(s.materials_from for s in policy.steps):
        from verify.material_chain import follow_given_materials

        follow_given_materials(out, policy, trust, bodies)
    return out
