"""SLSA Provenance v1 (``https://slsa.dev/provenance/v1``): what was built, how, by whom, when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from attest._internal import fields as f
from attest._internal.frozen import Frozen, set_field
from attest.errors import InvalidStatement
from attest.statement import ResourceDescriptor

__all__ = ["BuildMetadata", "Builder", "SLSAProvenance"]


class Builder(Frozen):
    _fields = ("id", "version", "builder_dependencies")
    id: str
    version: Mapping[str, str]
    builder_dependencies: tuple[ResourceDescriptor, ...]

    def __init__(
        self,
        id: str,
        version: Mapping[str, str] | None = None,
        builder_dependencies: tuple[ResourceDescriptor, ...] = (),
    ) -> None:
        set_field(self, "id", id)
        set_field(self, "version", {} if version is None else version)
        set_field(self, "builder_dependencies", builder_dependencies)


class BuildMetadata(Frozen):
    _fields = ("invocation_id", "started_on", "finished_on")
    invocation_id: str
    started_on: datetime | None
    finished_on: datetime | None

    def __init__(
        self,
        invocation_id: str = "",
        started_on: datetime | None = None,
        finished_on: datetime | None = None,
    ) -> None:
        set_field(self, "invocation_id", invocation_id)
        set_field(self, "started_on", started_on)
        set_field(self, "finished_on", finished_on)


class SLSAProvenance(Frozen):
    PREDICATE_TYPE: ClassVar[str] = "https://slsa.dev/provenance/v1"

    _fields = (
        "build_type",
        "external_parameters",
        "builder",
        "internal_parameters",
        "resolved_dependencies",
        "metadata",
        "byproducts",
    )
    build_type: str
    external_parameters: Mapping[str, Any]
    builder: Builder
    internal_parameters: Mapping[str, Any]
    resolved_dependencies: tuple[ResourceDescriptor, ...]
    metadata: BuildMetadata
    byproducts: tuple[ResourceDescriptor, ...]

    def __init__(
        self,
        build_type: str,
        external_parameters: Mapping[str, Any],
        builder: Builder,
        internal_parameters: Mapping[str, Any] | None = None,
        resolved_dependencies: tuple[ResourceDescriptor, ...] = (),
        metadata: BuildMetadata | None = None,
        byproducts: tuple[ResourceDescriptor, ...] = (),
    ) -> None:
        set_field(self, "build_type", build_type)
        set_field(self, "external_parameters", external_parameters)
        set_field(self, "builder", builder)
        set_field(
            self, "internal_parameters", {} if internal_parameters is None else internal_parameters
        )
        set_field(self, "resolved_dependencies", resolved_dependencies)
        set_field(self, "metadata", BuildMetadata() if metadata is None else metadata)
        set_field(self, "byproducts", byproducts)

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
