"""What a stored body says, read once: the facts the audit indexes hold. Pure: bytes in, values out.

The reader is deliberately lenient (it runs on every stored body, including ones written by
other tools years ago) and never raises: whatever it cannot read is simply not indexed. It reads
the standard predicates whoever wrote them:

- subjects: every ``digest`` algorithm of every subject, as ``alg:hex`` (lower-case);
- SLSA Provenance v1: builder id, source repository / ref / commit (``externalParameters`` and the
  ``git+`` dependency with a ``gitCommit``), ``resolvedDependencies`` (``uri`` a purl, or ``name``
  with a purl annotation);
- SLSA Provenance v0.2: ``builder.id``, ``invocation.configSource``, ``materials``;
- in-toto Link (v0.3 predicate and classic v0.9 links): step ``name``, ``materials``;
- Test Result: the step-like name and ``result``;
- Vulns v0.2: every ``scanner.result`` id (and aliases) is ``affected`` for each subject;
- OpenVEX v0.2: each statement's status per product (``@id`` purl, ``hashes``, subcomponents).

Dependencies are kept as ``(package, version, digest)`` where package is the purl without its
version, qualifiers and subpath (:func:`split_purl`); materials that are not purls keep their
``uri``/``name`` as the package, so the story can match products to materials by digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard
from urllib.parse import unquote

from ledger.bodies import Parsed, b64_field, envelope_of
from ledger.index.lenient_json import OBJECT_FIRST_BYTES, loads_object

__all__ = [
    "MAX_VALUE",
    "Dependency",
    "Facts",
    "VulnFact",
    "read_facts",
    "split_purl",
]

MAX_VALUE = 512  # longer values are not indexed (no one searches for them; keeps B-trees sane)
TOO_LONG = f"longer than {MAX_VALUE} characters"
NOT_TEXT = "not a string"
NOT_SHAPED = "not of the shape its schema gives (so nothing in it is indexed)"
NOT_STATUS = "not an OpenVEX status (so the statement is not indexed)"
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
LINK_PREFIX = "https://in-toto.io/attestation/link/"
TEST_RESULT_PREFIX = "https://in-toto.io/attestation/test-result/"
VULNS_PREFIX = "https://in-toto.io/attestation/vulns/"
OPENVEX_PREFIX = "https://openvex.dev/ns"
VEX_STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
_HASH_ALGS = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512", "sha-1": "sha1"}


class Dependency(NamedTuple):  # a tuple: built and hashed in C, tens of them per body
    package: str
    version: str
    digest: str  # "alg:hex" or ""


class VulnFact(NamedTuple):
    vuln: str
    product: str  # "alg:hex" or a purl
    status: str
    component: str  # a subcomponent / affected package, or ""


@dataclass
class Facts:
    """Everything indexed about one body. ``terms`` are (kind, value) pairs."""

    terms: set[tuple[str, str]] = field(default_factory=set)
    deps: set[Dependency] = field(default_factory=set)
    vulns: set[VulnFact] = field(default_factory=set)
    statement: dict[str, Any] | None = None  # the parsed (unverified) statement, for signers
    payload: bytes | None = None  # the envelope's payload, decoded (what its signatures sign)
    envelope: dict[str, Any] | None = None  # the DSSE envelope (bare or from the bundle)
    bundle: dict[str, Any] | None = None  # the Sigstore bundle, when the body is one
    # (field, reason) of each value read but left out because the index cannot hold it (too long,
    # not a string, or a shape that stopped the reading): a client recomputing from the body
    # must know its answer could not contain it
    unheld: list[tuple[str, str]] = field(default_factory=list)

    def term(self, kind: str, value: object) -> None:
        if isinstance(value, str) and value:
            if len(value) <= MAX_VALUE:
                self.terms.add((kind, value))
            else:
                self.unheld.append((kind, TOO_LONG))


def split_purl(text: str) -> tuple[str, str] | None:
    """``(package, version)`` of a purl: the package is ``pkg:type/namespace/name`` with the type
    lower-cased, percent-decoded, without qualifiers or subpath (PyPI names normalised as the
    purl spec says); ``None`` when ``text`` is not a purl. Cheap: no full purl parse per dep."""
    if not isinstance(text, str) or text[:4].lower() != "pkg:":
        return None
    core = text[4:].lstrip("/").split("#", 1)[0].split("?", 1)[0]
    kind, sep, rest = core.partition("/")
    if not sep or not kind or not rest:
        return None
    at = rest.rfind("@")
    name, version = (rest[:at], rest[at + 1 :]) if at > 0 else (rest, "")
    name = unquote(name).strip("/")
    kind = kind.lower()
    if not name:
        return None
    if kind == "pypi":
        name = name.lower().replace("_", "-")
    return f"pkg:{kind}/{name}", unquote(version)


# A payload decodes to a JSON object only if its first byte is one json.loads can start an object
# with (lenient_json.OBJECT_FIRST_BYTES). b64_field maps "-" and "_" to "+" and "/" and decodes
# strictly, so when the payload's first character is one of the base64 alphabets' (whitespace,
# which it strips, is not), that byte's top six bits are that character's: a payload starting
# with any other of those characters is never read.
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_OBJECT_STARTS = frozenset(
    c
    for c in _B64_CHARS
    if (
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".find(
            c.replace("-", "+").replace("_", "/")
        )
        in {b >> 2 for b in OBJECT_FIRST_BYTES}
    )
)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _digests(digest: Any) -> list[str]:
    out = []
    for alg, hexval in _obj(digest).items():
        if isinstance(alg, str) and isinstance(hexval, str) and alg and hexval:
            out.append(f"{alg.lower()}:{hexval.lower()}")
    return sorted(out)


def _first_digest(digest: Any) -> str:
    found = _digests(digest)
    pref = [d for d in found if d.startswith("sha256:")]
    return (pref or found or [""])[0]


def read_facts(content: bytes, doc: Any = None) -> Facts:
    """The facts of one stored body (see the module docstring); empty facts if unreadable.
    ``doc``: ``content`` already parsed by the strict parser (which accepts a subset of what
    ``json.loads`` does, and parses it to the same value), so it is not parsed again — the
    document, or admission's :class:`~ledger.bodies.Parsed` with its payload and statement."""
    facts = Facts()
    parsed = doc if isinstance(doc, Parsed) else None
    if parsed is not None:
        doc = parsed.doc
    elif doc is None:
        doc = loads_object(content)
    env, facts.bundle = envelope_of(doc)  # as admission read it: never a smuggled envelope
    if env is None:
        return facts
    facts.envelope = env
    if parsed is not None:  # admission decoded and parsed this envelope's payload
        facts.payload, facts.statement = parsed.payload, parsed.statement
    else:
        text = env.get("payload")
        if isinstance(text, str) and text[:1] in _B64_CHARS and text[:1] not in _OBJECT_STARTS:
            return facts  # whatever it decodes to is not a JSON object (see _OBJECT_STARTS)
        facts.payload = b64_field(text)
        if facts.payload is None:
            return facts
        facts.statement = loads_object(facts.payload)
    statement = facts.statement
    if statement is None:
        return facts
    try:
        _statement_facts(statement, facts)
    except (TypeError, ValueError, AttributeError, RecursionError):
        # a shape nobody expected (an unhashable vulnerability id): keep what was read so far,
        # and note that the rest was not
        facts.unheld.append(("statement", "not read to its end"))
    return facts


def _statement_facts(st: dict[str, Any], facts: Facts) -> None:
    subjects = [d for s in _list(st.get("subject")) for d in _digests(_obj(s).get("digest"))]
    for d in subjects:
        facts.term("subject", d)
    ptype = st.get("predicateType")
    facts.term("predicateType", ptype)
    pred = _obj(st.get("predicate"))
    if st.get("_type") == "link":  # a classic v0.9 link: its products are its subjects
        for d in (d for v in _obj(st.get("products")).values() for d in _digests(v)):
            facts.term("subject", d)
        _link(st, facts)
        return
    if not isinstance(ptype, str):
        return
    if ptype == SLSA_V1:
        _slsa_v1(pred, facts)
    elif ptype.startswith("https://slsa.dev/provenance/v0."):
        _slsa_v02(pred, facts)
    elif ptype.startswith(LINK_PREFIX):
        _link(pred, facts)
    elif ptype.startswith(TEST_RESULT_PREFIX):
        facts.term("testResult", pred.get("result"))
        for cfg in _list(pred.get("configuration")):
            facts.term("step", _obj(cfg).get("name"))
    elif ptype.startswith(VULNS_PREFIX):
        _vulns(pred, subjects, facts)
    elif ptype.startswith(OPENVEX_PREFIX):
        _openvex(pred, facts)


def _dependency(rd: dict[str, Any], facts: Facts) -> None:
    digest = _first_digest(rd.get("digest"))
    annotations = _obj(rd.get("annotations"))
    candidates = [rd.get("uri"), annotations.get("purl"), rd.get("name")]
    for c in candidates:
        parts = split_purl(c) if isinstance(c, str) else None
        if parts is not None:
            version = parts[1] or str(annotations.get("version") or rd.get("version") or "")
            if len(parts[0]) <= MAX_VALUE and len(version) <= MAX_VALUE:
                facts.deps.add(Dependency(parts[0], version, digest))
            else:
                facts.unheld.append(("dependency", TOO_LONG))
            return
    plain = rd.get("uri") or rd.get("name")
    if isinstance(plain, str) and plain:
        if len(plain) <= MAX_VALUE:
            facts.deps.add(Dependency(plain, "", digest))
        else:
            facts.unheld.append(("dependency", TOO_LONG))


def _source_from_git_dependency(rd: dict[str, Any], facts: Facts) -> None:
    uri = rd.get("uri")
    digest = _obj(rd.get("digest"))
    commit = digest.get("gitCommit") or digest.get("sha1")
    if isinstance(uri, str) and uri.startswith("git+") and isinstance(commit, str):
        repo, _, ref = uri[4:].partition("@")
        facts.term("repo", repo)
        facts.term("ref", ref)
        facts.term("commit", commit.lower())


def _slsa_v1(pred: dict[str, Any], facts: Facts) -> None:
    bd = _obj(pred.get("buildDefinition"))
    run = _obj(pred.get("runDetails"))
    facts.term("builder", _obj(run.get("builder")).get("id"))
    ext = _obj(bd.get("externalParameters"))
    workflow = _obj(ext.get("workflow"))
    facts.term("repo", ext.get("repository") or workflow.get("repository"))
    facts.term("ref", ext.get("ref") or workflow.get("ref"))
    source = _obj(ext.get("source"))
    if source:
        _source_from_git_dependency(source, facts)
    for rd in _list(bd.get("resolvedDependencies")):
        if isinstance(rd, dict):
            _dependency(rd, facts)
            _source_from_git_dependency(rd, facts)


def _slsa_v02(pred: dict[str, Any], facts: Facts) -> None:
    facts.term("builder", _obj(pred.get("builder")).get("id"))
    cfg = _obj(_obj(pred.get("invocation")).get("configSource"))
    if cfg:
        _source_from_git_dependency(cfg, facts)
        facts.term("step", cfg.get("entryPoint"))
    for m in _list(pred.get("materials")):
        if isinstance(m, dict):
            _dependency(m, facts)
            _source_from_git_dependency(m, facts)


def _link(pred: dict[str, Any], facts: Facts) -> None:
    facts.term("step", pred.get("name"))
    materials = pred.get("materials")
    if isinstance(materials, dict):  # classic links: {path: {alg: hex}}
        items = [{"name": k, "digest": v} for k, v in materials.items()]
    else:
        items = [m for m in _list(materials) if isinstance(m, dict)]
    for m in items:
        _dependency(m, facts)


def _held(value: Any, name: str, facts: Facts) -> TypeGuard[str]:
    """Whether ``value`` is a string the index can hold (``None`` and ``""`` are absent values,
    not held); a value it cannot hold (too long, not a string) is noted in ``facts.unheld``."""
    if isinstance(value, str):
        if len(value) <= MAX_VALUE:
            return bool(value)
        facts.unheld.append((name, TOO_LONG))
    elif value is not None:
        facts.unheld.append((name, NOT_TEXT))
    return False


def _shaped_obj(value: Any, name: str, facts: Facts) -> dict[str, Any]:
    """``value`` as an object; one of another shape (present, not an object) is noted in
    ``facts.unheld``: whatever it held is not indexed, so an answer built on it is not complete."""
    if value is not None and not isinstance(value, dict):
        facts.unheld.append((name, NOT_SHAPED))
    return _obj(value)


def _shaped_list(value: Any, name: str, facts: Facts) -> list[Any]:
    """``value`` as a list, noting one of another shape as :func:`_shaped_obj` does."""
    if value is not None and not isinstance(value, list):
        facts.unheld.append((name, NOT_SHAPED))
    return _list(value)


def _vulns(pred: dict[str, Any], subjects: list[str], facts: Facts) -> None:
    scanner = _shaped_obj(pred.get("scanner"), "scanner", facts)
    for result in _shaped_list(scanner.get("result"), "scanner.result", facts):
        r = _shaped_obj(result, "scanner.result[]", facts)
        ids = {r.get("id")}
        component = ""
        for annotation in _shaped_list(r.get("annotations"), "annotations", facts):
            a = _shaped_obj(annotation, "annotations[]", facts)
            aliases = _list(a.get("aliases"))
            ids.update(x for x in aliases if isinstance(x, str))
            for x in aliases:  # what the index cannot hold, noted (the others are added above)
                if not isinstance(x, str):
                    _held(x, "vulnerability", facts)
            pkg = a.get("package") or a.get("purl")
            if _held(pkg, "component", facts) or pkg == "":
                component = pkg
        for vid in ids:
            if _held(vid, "vulnerability", facts):
                for product in subjects:
                    facts.vulns.add(VulnFact(vid, product, "affected", component))


def _product_keys(product: dict[str, Any], name: str, facts: Facts) -> list[str]:
    keys = []
    ident = product.get("@id")
    if isinstance(ident, str) and split_purl(ident) is not None:
        keys.append(ident)
    for alg, hexval in _obj(product.get("hashes")).items():
        if isinstance(alg, str) and isinstance(hexval, str) and hexval:
            keys.append(f"{_HASH_ALGS.get(alg.lower(), alg.lower())}:{hexval.lower()}")
    for ident_value in _obj(product.get("identifiers")).values():
        if isinstance(ident_value, str) and split_purl(ident_value) is not None:
            keys.append(ident_value)
    return [k for k in keys if _held(k, name, facts)]


def _openvex(pred: dict[str, Any], facts: Facts) -> None:
    for statement in _shaped_list(pred.get("statements"), "statements", facts):
        s = _shaped_obj(statement, "statements[]", facts)
        status = s.get("status")
        if status not in VEX_STATUSES:
            facts.unheld.append(("status", NOT_STATUS))  # not indexed: it may reopen a finding
            continue
        vuln = _shaped_obj(s.get("vulnerability"), "vulnerability", facts)
        ids = {vuln.get("name"), vuln.get("@id")}
        aliases = _list(vuln.get("aliases"))
        ids.update(a for a in aliases if isinstance(a, str))
        for a in aliases:  # what the index cannot hold, noted (the others are added above)
            if not isinstance(a, str):
                _held(a, "vulnerability", facts)
        held = {vid for vid in ids if _held(vid, "vulnerability", facts)}
        for item in _shaped_list(s.get("products"), "products", facts):
            product = _shaped_obj(item, "products[]", facts)
            subs = [
                k
                for sc in _shaped_list(product.get("subcomponents"), "subcomponents", facts)
                for k in _product_keys(_obj(sc), "component", facts)
            ]
            for key in _product_keys(product, "product", facts):
                for vid in held:
                    for comp in subs or [""]:
                        facts.vulns.add(VulnFact(vid, key, str(status), comp))
