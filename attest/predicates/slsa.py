"""SLSA Provenance v1 (``https://slsa.dev/provenance/v1``): what was built, how, by whom, when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from attest._internal import fields as f
from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor

__all__ = ["BuildMetadata", "Builder", "SLSAProvenance"]


@dataclass(frozen=True)
class Builder:
    id: str
    version: Mapping[str, str] = field(default_factory=dict)
    builder_dependencies: tuple[ResourceDescriptor, ...] = ()


@dataclass(frozen=True)
class BuildMetadata:
    invocation_id: str = ""
    started_on: datetime | None = None
    finished_on: datetime | None = None


@dataclass(frozen=True)
class SLSAProvenance:
    PREDICATE_TYPE: ClassVar[str] = "https://slsa.dev/provenance/v1"

    build_type: str
    external_parameters: Mapping[str, Any]
    builder: Builder
    internal_parameters: Mapping[str, Any] = field(default_factory=dict)
    resolved_dependencies: tuple[ResourceDescriptor, ...] = ()
    metadata: BuildMetadata = field(default_factory=BuildMetadata)
    byproducts: tuple[ResourceDescriptor, ...] = ()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SLSAProvenance:
        bd = f.obj(doc, "buildDefinition", "ErrBuildDefinitionRequired", required=True)
        build_type = f.text(bd, "buildType", "ErrBuildTypeRequired", required=True)
        external = f.obj(bd, "externalParameters", "ErrExternalParamsRequired", required=True)
        rd = f.obj(doc, "runDetails", "ErrRunDetailsRequired", required=True)
        b = f.obj(rd, "builder", "ErrBuilderRequired", required=True)
        builder = Builder(
            id=f.text(b, "id", "ErrBuilderIdRequired", required=True),
            version=f.obj(b, "version", "ErrBuilderRequired"),
            builder_dependencies=f.descriptors(b, "builderDependencies", "ErrBuilderRequired"),
        )
        md = f.obj(rd, "metadata", "ErrMetadataInvalid")
        metadata = BuildMetadata(
            invocation_id=f.text(md, "invocationId", "ErrMetadataInvalid"),
            started_on=f.timestamp(md, "startedOn", "ErrMetadataInvalid"),
            finished_on=f.timestamp(md, "finishedOn", "ErrMetadataInvalid"),
        )
        if (
            metadata.started_on
            and metadata.finished_on
            and metadata.finished_on < metadata.started_on
        ):
            raise InvalidStatement("ErrMetadataInvalid", "finishedOn is before startedOn")
        return cls(
            build_type=build_type,
            external_parameters=external,
            builder=builder,
            internal_parameters=f.obj(bd, "internalParameters", "ErrBuildDefinitionRequired"),
            resolved_dependencies=f.descriptors(
                bd, "resolvedDependencies", "ErrBuildDefinitionRequired"
            ),
            metadata=metadata,
            byproducts=f.descriptors(rd, "byproducts", "ErrRunDetailsRequired"),
        )

    def to_dict(self) -> dict[str, Any]:
        md = self.metadata
        return {
            "buildDefinition": f.prune(
                {
                    "buildType": self.build_type,
                    "externalParameters": dict(self.external_parameters),
                    "internalParameters": dict(self.internal_parameters),
                    "resolvedDependencies": [d.to_dict() for d in self.resolved_dependencies],
                }
            ),
            "runDetails": f.prune(
                {
                    "builder": f.prune(
                        {
                            "id": self.builder.id,
                            "version": dict(self.builder.version),
                            "builderDependencies": [
                                d.to_dict() for d in self.builder.builder_dependencies
                            ],
                        }
                    ),
                    "metadata": f.prune(
                        {
                            "invocationId": md.invocation_id,
                            "startedOn": md.started_on and f.format_time(md.started_on),
                            "finishedOn": md.finished_on and f.format_time(md.finished_on),
                        }
                    ),
                    "byproducts": [d.to_dict() for d in self.byproducts],
                }
            ),
        }
