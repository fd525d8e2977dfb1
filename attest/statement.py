"""in-toto Statement v1 (and v0.1 for reading) and ResourceDescriptor, parsed into valid types.

Validation follows the in-toto attestation Go reference (``go/v1``): the same rules, in the same
order, with the same error names as :attr:`InvalidStatement.code`, so the upstream vectors get the
upstream verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from attest._internal import jsontext
from attest._internal.canonical import canonical_json
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidStatement

__all__ = [
    "STATEMENT_V01",
    "STATEMENT_V1",
    "ResourceDescriptor",
    "Statement",
    "parse_statement",
]

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
_READABLE_TYPES = frozenset({STATEMENT_V1, STATEMENT_V01})

# hex digest lengths (in hex characters) of the algorithms the Go reference knows
_HEX_LENGTHS: dict[str, tuple[int, ...]] = {
    "md5": (32,),
    "sha1": (40,),
    "sha224": (56,),
    "sha512_224": (56,),
    "sha256": (64,),
    "sha512_256": (64,),
    "sha384": (96,),
    "sha512": (128,),
    "sha3_224": (56,),
    "sha3_256": (64,),
    "sha3_384": (96,),
    "sha3_512": (128,),
    "gitBlob": (40, 64),
    "gitCommit": (40, 64),
    "gitTag": (40, 64),
    "gitTree": (40, 64),
}
_HEX = re.compile(r"[0-9a-fA-F]*")


def _check_digest(digest: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for alg, value in digest.items():
        if not isinstance(value, str):
            raise InvalidStatement("ErrInvalidDigestEncoding", f"digest {alg} must be a string")
        lengths = _HEX_LENGTHS.get(alg)
        if lengths is not None:
            if not _HEX.fullmatch(value) or len(value) % 2:
                raise InvalidStatement(
                    "ErrInvalidDigestEncoding", f"digest {alg} is not a hex string"
                )
            if len(value) not in lengths:
                raise InvalidStatement(
                    "ErrIncorrectDigestLength",
                    f"digest {alg} has {len(value)} hex characters, expected {lengths}",
                )
        out[alg] = value
    return out


class ResourceDescriptor(Frozen):
    """An artifact or resource: at least one of name, uri, digest."""

    _fields = (
        "name",
        "uri",
        "digest",
        "download_location",
        "media_type",
        "content",
        "annotations",
    )
    name: str
    uri: str
    digest: Mapping[str, str]
    download_location: str
    media_type: str
    content: str
    annotations: Mapping[str, Any]

    def __init__(
        self,
        name: str = "",
        uri: str = "",
        digest: Mapping[str, str] | None = None,
        download_location: str = "",
        media_type: str = "",
        content: str = "",
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "uri", uri)
        set_field(self, "digest", {} if digest is None else digest)
        set_field(self, "download_location", download_location)
        set_field(self, "media_type", media_type)
        set_field(self, "content", content)
        set_field(self, "annotations", {} if annotations is None else annotations)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not (self.name or self.uri or self.digest):
            raise InvalidStatement(
                "ErrRDRequiredField", "a resource descriptor needs a name, uri or digest"
            )
        object.__setattr__(self, "digest", _check_digest(self.digest))

    @classmethod
    def from_dict(cls, doc: Any) -> ResourceDescriptor:
        if not isinstance(doc, dict):
            raise InvalidStatement("ErrRDRequiredField", "a resource descriptor must be an object")
        get = doc.get
        digest = get("digest") or {}
        annotations = get("annotations") or {}
        if not isinstance(digest, dict) or not isinstance(annotations, dict):
            raise InvalidStatement("ErrRDRequiredField", "digest and annotations must be objects")
        name, uri = get("name", ""), get("uri", "")
        location, media, content = (
            get("downloadLocation", ""),
            get("mediaType", ""),
            get("content", ""),
        )
        for key, value in (
            ("name", name),
            ("uri", uri),
            ("downloadLocation", location),
            ("mediaType", media),
            ("content", content),
        ):
            if value.__class__ is not str:
                raise InvalidStatement(
                    "ErrRDRequiredField", f"resource descriptor {key} must be a string"
                )
        return cls(name, uri, digest, location, media, content, annotations)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (
            ("name", self.name),
            ("uri", self.uri),
            ("digest", dict(self.digest)),
            ("content", self.content),
            ("downloadLocation", self.download_location),
            ("mediaType", self.media_type),
            ("annotations", dict(self.annotations)),
        ):
            if value:
                out[key] = value
        return out


class Statement(Frozen):
    """A valid in-toto Statement. ``predicate`` is the JSON object as given, or ``None`` when the
    statement has none: Statement v1 makes it optional ("MAY be omitted if predicateType fully
    describes the predicate"), and PyPI's publish attestations (PEP 740) carry none."""

    _fields = ("subjects", "predicate_type", "predicate", "type")
    subjects: tuple[ResourceDescriptor, ...]
    predicate_type: str
    predicate: Mapping[str, Any] | None
    type: str

    def __init__(
        self,
        subjects: tuple[ResourceDescriptor, ...],
        predicate_type: str,
        predicate: Mapping[str, Any] | None,
        type: str = STATEMENT_V1,
    ) -> None:
        set_field(self, "subjects", subjects)
        set_field(self, "predicate_type", predicate_type)
        set_field(self, "predicate", predicate)
        set_field(self, "type", type)
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.type not in _READABLE_TYPES:
            raise InvalidStatement(
                "ErrInvalidStatementType", f"unknown statement _type {self.type!r}"
            )
        if not self.subjects:
            raise InvalidStatement("ErrSubjectRequired", "a statement needs at least one subject")
        for s in self.subjects:
            if not s.digest:
                raise InvalidStatement(
                    "ErrDigestRequired", f"subject {s.name or s.uri!r} has no digest"
                )
        if not self.predicate_type:
            raise InvalidStatement("ErrPredicateTypeRequired", "predicateType is empty")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "_type": self.type,
            "subject": [s.to_dict() for s in self.subjects],
            "predicateType": self.predicate_type,
        }
        if self.predicate is not None:
            out["predicate"] = dict(self.predicate)
        return out

    def to_json(self) -> bytes:
        """RFC 8785 canonical JSON: the bytes that get signed."""
        return canonical_json(self.to_dict())


def parse_statement(data: bytes | str | Mapping[str, Any]) -> Statement:
    """Parse and validate a Statement (v1, or v0.1 for reading)."""
    if isinstance(data, bytes | str):
        doc = jsontext.loads(
            data, "statement", error=lambda m: InvalidStatement("ErrInvalidJSON", m)
        )
    else:
        doc = data
    if not isinstance(doc, dict):
        raise InvalidStatement("ErrInvalidJSON", "statement must be a JSON object")
    kind = doc.get("_type")
    if kind not in _READABLE_TYPES:
        raise InvalidStatement("ErrInvalidStatementType", f"unknown statement _type {kind!r}")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InvalidStatement("ErrSubjectRequired", "a statement needs at least one subject")
    parsed = tuple(ResourceDescriptor.from_dict(s) for s in subjects)
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str):
        raise InvalidStatement("ErrPredicateTypeRequired", "predicateType must be a string")
    # no predicate (or null) is valid Statement v1, unlike the Go reference's ErrPredicateRequired
    predicate = doc.get("predicate")
    if predicate is not None and not isinstance(predicate, dict):
        raise InvalidStatement("ErrPredicateRequired", "predicate must be a JSON object")
    return Statement(parsed, predicate_type, predicate, kind)
