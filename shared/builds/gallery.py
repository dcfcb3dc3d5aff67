"""The gallery as the domain sees it: a port, and what it returns, in ARM wire terms.

The build worker and the tracker talk to :class:`GalleryPort`; the adapter over
azure-mgmt-compute is ``shared.adapters.compute_gallery``. Statuses are parsed from the wire
JSON (camelCase), so nothing here depends on the SDK's model classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.contract.model import DefinitionSpec


@dataclass(frozen=True)
class DefinitionRef:
    subscription_id: str
    resource_group: str
    gallery: str
    definition: str

    def version(self, name: str) -> VersionRef:
        return VersionRef(self, name)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The parts lower-cased: ARM names are case-insensitive, so this identifies it."""
        return (
            self.subscription_id.lower(),
            self.resource_group.lower(),
            self.gallery.lower(),
            self.definition.lower(),
        )

    def __str__(self) -> str:
        return f"{self.gallery}/{self.definition}"


@dataclass(frozen=True)
class VersionRef:
    definition: DefinitionRef
    name: str

    def __str__(self) -> str:
        return f"{self.definition}/{self.name}"


@dataclass(frozen=True)
class RegionReplication:
    region: str
    state: str  # Unknown | Replicating | Completed | Failed
    progress: int
    details: str = ""


@dataclass(frozen=True)
class VersionStatus:
    """One image version: provisioning state, replication per region, sources and tags."""

    name: str
    provisioning_state: str
    aggregated_state: str | None = None
    regions: tuple[RegionReplication, ...] = ()
    storage_profile: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def completed(self) -> bool:
        """Usable in every target region: Succeeded, and every region Completed."""
        return self.provisioning_state == "Succeeded" and all(
            r.state == "Completed" for r in self.regions
        )

    @property
    def failed(self) -> bool:
        return self.provisioning_state == "Failed" or any(r.state == "Failed" for r in self.regions)

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> VersionStatus:
        properties = body.get("properties") or {}
        replication = properties.get("replicationStatus") or {}
        regions = tuple(
            RegionReplication(
                region=str(item.get("region", "")),
                state=str(item.get("state", "Unknown")),
                progress=int(item.get("progress") or 0),
                details=str(item.get("details") or ""),
            )
            for item in replication.get("summary") or ()
        )
        return cls(
            name=str(body.get("name", "")),
            provisioning_state=str(properties.get("provisioningState", "Unknown")),
            aggregated_state=replication.get("aggregatedState"),
            regions=regions,
            storage_profile=dict(properties.get("storageProfile") or {}),
            tags={str(k): str(v) for k, v in (body.get("tags") or {}).items()},
        )


class GalleryPort(Protocol):
    """What the pipeline needs of Azure Compute Gallery. Errors are ``shared.core.errors`` types."""

    def gallery_location(self, definition: DefinitionRef) -> str:
        """The location of the definition's gallery (versions are created there)."""
        ...

    def definition_exists(self, definition: DefinitionRef) -> bool: ...

    def create_definition(
        self, definition: DefinitionRef, spec: DefinitionSpec, *, location: str
    ) -> None:
        """Create the definition and wait (bounded) until it is usable; it takes about 1 s."""
        ...

    def start_version(self, version: VersionRef, body: Mapping[str, Any]) -> VersionStatus:
        """Send the PUT and return at once: never wait for the long-running operation."""
        ...

    def get_version(self, version: VersionRef) -> VersionStatus | None:
        """The version with its replication status, or ``None`` when it does not exist."""
        ...

    def list_versions(self, definition: DefinitionRef) -> Iterator[VersionStatus]:
        """Every version of the definition, page by page (no GET per version)."""
        ...

    def start_delete_version(self, version: VersionRef) -> None:
        """Send the DELETE and return at once."""
        ...
