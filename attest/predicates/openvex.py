"""OpenVEX v0.2.0 (``https://openvex.dev/ns/v0.2.0``) as an in-toto predicate.

A VEX statement says what one vulnerability means for some products: ``fixed``, ``not_affected``
(with a justification or impact statement), ``affected`` (with an action statement) or
``under_investigation``. The rules below are the MUSTs of the OpenVEX spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, cast

from attest._internal import fields as f
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidStatement

__all__ = ["JUSTIFICATIONS", "STATUSES", "OpenVEX", "VexStatement"]

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"
_CODE = "ErrOpenVEXInvalid"
Status = Literal["not_affected", "affected", "fixed", "under_investigation"]
STATUSES: tuple[Status, ...] = ("not_affected", "affected", "fixed", "under_investigation")
JUSTIFICATIONS = (
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
)


class VexStatement(Frozen):
    _fields = (
        "vulnerability",
        "products",
        "status",
        "justification",
        "impact_statement",
        "action_statement",
        "timestamp",
        "product_hashes",
    )
    vulnerability: str
    products: tuple[str, ...]
    status: Status
    justification: str
    impact_statement: str
    action_statement: str
    timestamp: datetime | None
    product_hashes: Mapping[str, Mapping[str, str]] | None

    def __init__(
        self,
        vulnerability: str,
        products: tuple[str, ...],
        status: Status,
        justification: str = "",
        impact_statement: str = "",
        action_statement: str = "",
        timestamp: datetime | None = None,
        product_hashes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        set_field(self, "vulnerability", vulnerability)
        set_field(self, "products", products)
        set_field(self, "status", status)
        set_field(self, "justification", justification)
        set_field(self, "impact_statement", impact_statement)
        set_field(self, "action_statement", action_statement)
        set_field(self, "timestamp", timestamp)
        set_field(self, "product_hashes", product_hashes)
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidStatement(_CODE, f"status must be one of {', '.join(STATUSES)}")
        if not self.vulnerability:
            raise InvalidStatement(_CODE, "a VEX statement needs a vulnerability name")
        if not self.products:
            raise InvalidStatement(_CODE, f"VEX statement for {self.vulnerability} has no products")
        if self.status == "not_affected" and not (self.justification or self.impact_statement):
            raise InvalidStatement(
                _CODE, "not_affected needs a justification or an impact_statement"
            )
        if self.justification and self.justification not in JUSTIFICATIONS:
            raise InvalidStatement(_CODE, f"unknown justification {self.justification!r}")
        if self.status == "affected" and not self.action_statement:
            raise InvalidStatement(_CODE, "affected needs an action_statement")

    @classmethod
    def from_dict(cls, doc: Any) -> VexStatement:
        if not isinstance(doc, dict):
            raise InvalidStatement(_CODE, "each VEX statement must be an object")
        vuln = f.obj(doc, "vulnerability", _CODE, required=True)
        name = vuln.get("name") or vuln.get("@id") or ""
        products = doc.get("products") or []
        if not isinstance(products, list) or not all(
            isinstance(p, dict) and isinstance(p.get("@id"), str) for p in products
        ):
            raise InvalidStatement(_CODE, "products must be a list of objects with an @id")
        hashes = {p["@id"]: p["hashes"] for p in products if isinstance(p.get("hashes"), dict)}
        return cls(
            vulnerability=str(name),
            products=tuple(p["@id"] for p in products),
            status=cast(Status, f.text(doc, "status", _CODE, required=True)),
            justification=f.text(doc, "justification", _CODE),
            impact_statement=f.text(doc, "impact_statement", _CODE),
            action_statement=f.text(doc, "action_statement", _CODE),
            timestamp=f.timestamp(doc, "timestamp", _CODE),
            product_hashes=hashes or None,
        )

    def to_dict(self) -> dict[str, Any]:
        hashes = self.product_hashes or {}
        products = [f.prune({"@id": p, "hashes": dict(hashes.get(p, {}))}) for p in self.products]
        return f.prune(
            {
                "vulnerability": {"name": self.vulnerability},
                "products": products,
                "status": self.status,
                "justification": self.justification,
                "impact_statement": self.impact_statement,
                "action_statement": self.action_statement,
                "timestamp": self.timestamp and f.format_time(self.timestamp),
            }
        )


class OpenVEX(Frozen):
    PREDICATE_TYPE: ClassVar[str] = OPENVEX_CONTEXT

    _fields = ("id", "author", "timestamp", "statements", "version")
    id: str
    author: str
    timestamp: datetime
    statements: tuple[VexStatement, ...]
    version: int

    def __init__(
        self,
        id: str,
        author: str,
        timestamp: datetime,
        statements: tuple[VexStatement, ...],
        version: int = 1,
    ) -> None:
        set_field(self, "id", id)
        set_field(self, "author", author)
        set_field(self, "timestamp", timestamp)
        set_field(self, "statements", statements)
        set_field(self, "version", version)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> OpenVEX:
        context = f.text(doc, "@context", _CODE, required=True)
        if not context.startswith("https://openvex.dev/ns"):
            raise InvalidStatement(_CODE, f"@context {context!r} is not OpenVEX")
        stamp = f.timestamp(doc, "timestamp", _CODE)
        if stamp is None:
            raise InvalidStatement(_CODE, "timestamp is required")
        statements = doc.get("statements")
        if not isinstance(statements, list) or not statements:
            raise InvalidStatement(_CODE, "statements must be a non-empty list")
        version = doc.get("version", 1)
        if not isinstance(version, int) or version < 1:
            raise InvalidStatement(_CODE, "version must be a positive integer")
        return cls(
            id=f.text(doc, "@id", _CODE, required=True),
            author=f.text(doc, "author", _CODE, required=True),
            timestamp=stamp,
            statements=tuple(VexStatement.from_dict(s) for s in statements),
            version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "@context": OPENVEX_CONTEXT,
            "@id": self.id,
            "author": self.author,
            "timestamp": f.format_time(self.timestamp),
            "version": self.version,
            "statements": [s.to_dict() for s in self.statements],
        }
