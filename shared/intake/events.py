"""The events that start an intake, as typed commands, and their parsers.

* ``Microsoft.Storage.BlobCreated`` for ``<name>.vhd`` or its manifest ``<name>.vhd.json``:
  :class:`BlobCreated` (:func:`parse_blob_created`).
* ``Microsoft.Resources.ResourceWriteSuccess`` for ``Microsoft.Compute/snapshots/write``:
  :class:`SnapshotWritten` (:func:`parse_snapshot_write`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared.core.errors import PermanentError
from shared.core.redaction import strip_query
from shared.core.resource_ids import (
    SNAPSHOT_TYPE,
    InvalidResourceId,
    ResourceId,
    parse_resource_id,
)

logger = logging.getLogger(__name__)

BLOB_CREATED: Final = "Microsoft.Storage.BlobCreated"
RESOURCE_WRITE_SUCCESS: Final = "Microsoft.Resources.ResourceWriteSuccess"
SNAPSHOT_WRITE_OPERATION: Final = "Microsoft.Compute/snapshots/write"
VHD_SUFFIX: Final = ".vhd"
MANIFEST_SUFFIX: Final = ".vhd.json"


@dataclass(frozen=True)
class BlobCreated:
    """A ``Microsoft.Storage.BlobCreated`` event, as far as intake cares."""

    url: str
    blob_type: str
    event_id: str = ""
    api: str = ""
    etag: str = ""
    content_length: int | None = None

    @property
    def is_manifest(self) -> bool:
        return strip_query(self.url).lower().endswith(MANIFEST_SUFFIX)

    @property
    def vhd_url(self) -> str:
        """The VHD this event is about (for a manifest: the VHD it describes)."""
        url = strip_query(self.url)
        return url[: -len(".json")] if self.is_manifest else url


@dataclass(frozen=True)
class SnapshotWritten:
    """A successful ARM write of a snapshot."""

    snapshot_id: ResourceId
    event_id: str = ""


def parse_blob_created(event_type: str, data: object, *, event_id: str = "") -> BlobCreated:
    """Read a BlobCreated event's ``data``; :class:`PermanentError` when it is not one."""
    if event_type != BLOB_CREATED:
        raise PermanentError(f"expected a {BLOB_CREATED} event, got {event_type!r}")
    if not isinstance(data, Mapping) or not isinstance(data.get("url"), str) or not data["url"]:
        raise PermanentError("BlobCreated event without data.url", reason="MalformedEvent")
    length = data.get("contentLength")
    return BlobCreated(
        url=str(data["url"]),
        blob_type=str(data.get("blobType") or ""),
        event_id=event_id,
        api=str(data.get("api") or ""),
        etag=str(data.get("eTag") or "").strip('"'),
        content_length=length if isinstance(length, int) and not isinstance(length, bool) else None,
    )


def parse_snapshot_write(
    event_type: str, subject: str, data: object, *, event_id: str = ""
) -> SnapshotWritten | None:
    """A snapshot write event, or ``None`` for any other resource event (not for intake)."""
    if event_type != RESOURCE_WRITE_SUCCESS or not isinstance(data, Mapping):
        return None
    operation = str(data.get("operationName") or "")
    if operation.lower() != SNAPSHOT_WRITE_OPERATION.lower():
        return None
    if str(data.get("status") or "Succeeded").lower() != "succeeded":
        return None
    text = str(data.get("resourceUri") or subject or "")
    try:
        resource_id = parse_resource_id(text)
    except InvalidResourceId:
        logger.warning("snapshot write event with an unreadable resource id: %s", text[:300])
        return None
    if not resource_id.is_type(SNAPSHOT_TYPE):
        return None
    return SnapshotWritten(resource_id, event_id)
