"""Map a validated build request to the ARM ``GalleryImageVersion`` body (wire names).

Pure and deterministic: the same request gives the same body, so a redelivered message sends an
identical PUT. Source placement follows the service's rules (gallery-api.md §1.2):

* VHD: ``osDiskImage.source.{uri, storageAccountId}`` (the URI without its SAS: the gallery reads
  the blob through the storage account, and secrets stay out of ARM and its activity log);
* snapshot or managed disk: ``osDiskImage.source.id``;
* managed image or another gallery image version: ``storageProfile.source.id``;
* virtual machine: ``storageProfile.source.virtualMachineId``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from shared.contract.model import (
    BuildRequest,
    DataDisk,
    DiskSource,
    ImageVersionSource,
    ManagedImageSource,
    SnapshotSource,
    VhdSource,
    VirtualMachineSource,
)
from shared.core.jsontypes import JsonObject
from shared.core.timestamps import format_timestamp

#: Tags the pipeline stamps on every version it builds (values are at most 256 characters).
TAG_REQUEST_ID: Final = "gallery-pipeline.request-id"
TAG_BUILD_ID: Final = "gallery-pipeline.build-id"
TAG_SOURCE_HASH: Final = "gallery-pipeline.source-sha256"


def source_hash(source_key: str) -> str:
    """A short, tag-safe fingerprint of a source key (resource ids and URLs can pass 256 chars)."""
    return hashlib.sha256(source_key.encode("utf-8")).hexdigest()


def _disk_source(source: VhdSource | SnapshotSource | DiskSource) -> JsonObject:
    if isinstance(source, VhdSource):
        return {"uri": source.uri_without_query, "storageAccountId": str(source.storage_account_id)}
    return {"id": str(source.id)}


def _data_disk(disk: DataDisk) -> JsonObject:
    return {"lun": disk.lun, "hostCaching": disk.host_caching, "source": _disk_source(disk.source)}


def storage_profile(request: BuildRequest) -> JsonObject:
    """``properties.storageProfile`` for the request's OS source and data disks."""
    source = request.source
    profile: JsonObject = {}
    if isinstance(source, (VhdSource, SnapshotSource, DiskSource)):
        profile["osDiskImage"] = {"source": _disk_source(source)}
    elif isinstance(source, VirtualMachineSource):
        profile["source"] = {"virtualMachineId": str(source.id)}
    elif isinstance(source, (ManagedImageSource, ImageVersionSource)):
        profile["source"] = {"id": str(source.id)}
    if request.data_disks:
        profile["dataDiskImages"] = [_data_disk(d) for d in request.data_disks]
    return profile


def publishing_profile(request: BuildRequest) -> JsonObject:
    publishing = request.publishing
    profile: JsonObject = {
        "targetRegions": [
            {
                "name": region.name,
                "regionalReplicaCount": region.replica_count,
                "storageAccountType": region.storage_account_type,
                "excludeFromLatest": region.exclude_from_latest,
            }
            for region in publishing.target_regions
        ],
        "replicaCount": publishing.replica_count,
        "storageAccountType": publishing.storage_account_type,
        "replicationMode": publishing.replication_mode,
        "excludeFromLatest": publishing.exclude_from_latest,
    }
    if publishing.end_of_life_date is not None:
        profile["endOfLifeDate"] = format_timestamp(publishing.end_of_life_date)
    return profile


def image_version_body(request: BuildRequest, *, location: str, build_id: str) -> JsonObject:
    """The PUT body for the request's image version, in the gallery's ``location``."""
    tags = dict(request.tags)
    tags[TAG_REQUEST_ID] = request.request_id
    tags[TAG_BUILD_ID] = build_id
    tags[TAG_SOURCE_HASH] = source_hash(request.source_key)
    properties: JsonObject = {
        "publishingProfile": publishing_profile(request),
        "storageProfile": storage_profile(request),
    }
    if request.publishing.block_deletion_before_end_of_life:
        properties["safetyProfile"] = {"blockDeletionBeforeEndOfLife": True}
    return {"location": location, "tags": tags, "properties": properties}


def _lower_ids(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _lower_ids(v) for k, v in value.items() if k not in ("sizeInGB",)}
    if isinstance(value, list):
        return [_lower_ids(v) for v in value]
    if isinstance(value, str):
        return value.lower()
    return value


def same_source(existing_storage_profile: Mapping[str, Any], request: BuildRequest) -> bool:
    """True when an existing version was built from exactly the request's sources.

    Compares the source fields only (ids case-insensitively); server-filled fields such as
    ``hostCaching`` defaults and ``sizeInGB`` are ignored.
    """

    def sources(profile: Mapping[str, Any]) -> Any:
        os_disk = profile.get("osDiskImage") or {}
        data = sorted(
            (d.get("lun"), _lower_ids(d.get("source") or {}))
            for d in profile.get("dataDiskImages") or []
        )
        top = {k: v for k, v in (profile.get("source") or {}).items() if v}
        return (_lower_ids(top), _lower_ids(os_disk.get("source") or {}), data)

    return bool(sources(existing_storage_profile) == sources(storage_profile(request)))
