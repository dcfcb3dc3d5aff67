"""What intake reads through ports: upload blobs and snapshots (adapters in ``shared.adapters``).

The records intake keeps are a :class:`shared.core.documents.DocumentStore`
(see :mod:`shared.intake.records`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shared.core.resource_ids import ResourceId
from shared.vhd.preflight import VhdReport


@dataclass(frozen=True)
class BlobState:
    """A blob's properties as storage reports them now."""

    url: str
    blob_type: str
    size: int
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: ``pending`` while a Copy Blob into this blob runs; ``None`` when it was never copied.
    copy_status: str | None = None


@dataclass(frozen=True)
class SmallBlob:
    """The content of a small blob (a manifest) and its ETag."""

    content: bytes
    etag: str


class UploadBlobs(Protocol):
    """Reads upload blobs without downloading a VHD. Errors are ``shared.core.errors`` types."""

    def state(self, url: str) -> BlobState | None:
        """The blob's properties, or ``None`` when there is no such blob."""
        ...

    def read_small(self, url: str, *, max_bytes: int) -> SmallBlob | None:
        """At most ``max_bytes + 1`` bytes of a small blob, or ``None`` when it does not exist."""
        ...

    def inspect_vhd(self, url: str) -> VhdReport:
        """The VHD preflight on the blob's 512-byte footer (one ranged read)."""
        ...


@dataclass(frozen=True)
class SnapshotState:
    """What intake needs to know about a snapshot."""

    id: ResourceId
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    access_state: str | None = None
    completion_percent: float | None = None
    unique_id: str | None = None
    time_created: str | None = None
    disk_size_bytes: int | None = None
    provisioning_state: str | None = None

    def tag(self, name: str) -> str | None:
        """A tag value by name; Azure tag names are case-insensitive."""
        for key, value in self.tags.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def identity(self) -> str:
        """What tells this snapshot apart from an earlier one of the same name."""
        return self.unique_id or self.time_created or ""


class SnapshotReader(Protocol):
    """Reads snapshots over ARM. Errors are ``shared.core.errors`` types."""

    def get(self, snapshot_id: ResourceId) -> SnapshotState | None:
        """The snapshot, or ``None`` when it does not exist (any more)."""
        ...
