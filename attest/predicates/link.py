"""in-toto Link v0.3 (``https://in-toto.io/attestation/link/v0.3``): one step that ran.

Products are the statement's subjects; the predicate holds the step name, the command, the
materials it read, and byproducts (exit code, output digests) and environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from attest._internal import fields as f
from attest._internal.frozen import Frozen, set_field
from attest.statement import ResourceDescriptor

__all__ = ["Link"]


class Link(Frozen):
    PREDICATE_TYPE: ClassVar[str] = "https://in-toto.io/attestation/link/v0.3"

    _fields = ("name", "command", "materials", "byproducts", "environment")
    name: str
    command: tuple[str, ...]
    materials: tuple[ResourceDescriptor, ...]
    byproducts: Mapping[str, Any]
    environment: Mapping[str, Any]

    def __init__(
        self,
        name: str,
        command: tuple[str, ...] = (),
        materials: tuple[ResourceDescriptor, ...] = (),
        byproducts: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "command", command)
        set_field(self, "materials", materials)
        set_field(self, "byproducts", {} if byproducts is None else byproducts)
        set_field(self, "environment", {} if environment is None else environment)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Link:
        return cls(
            name=f.text(doc, "name", "ErrLinkNameRequired", required=True),
            command=f.strings(doc, "command", "ErrLinkInvalid"),
            materials=f.descriptors(doc, "materials", "ErrLinkInvalid"),
            byproducts=f.obj(doc, "byproducts", "ErrLinkInvalid"),
            environment=f.obj(doc, "environment", "ErrLinkInvalid"),
        )

    def to_dict(self) -> dict[str, Any]:
        return f.prune(
            {
                "name": self.name,
                "command": list(self.command),
                "materials": [m.to_dict() for m in self.materials],
                "byproducts": dict(self.byproducts),
                "environment": dict(self.environment),
            }
        )
