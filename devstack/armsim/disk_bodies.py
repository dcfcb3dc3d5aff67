"""Disks and snapshots as DiskRP writes and reads them (the HTTP side is in ``resources``).

* :func:`check_creation_source`: the ``creationData`` rules. A source must exist in the new
  resource's region: a plain copy across regions is Azure's 404 ``NotFound`` ("Resource <name> is
  not found."). ``CopyStart`` is the cross-region copy: it copies an incremental snapshot into an
  incremental snapshot, in any region (also the same one).
* :func:`normalize_disk`: the stored body, i.e. what was sent plus the server defaults a read
  returns, field for field as the recorded sessions show them, in the service's key order.
  Nothing is invented: a ``hyperVGeneration`` is there only when sent or inherited from the
  source, ``completionPercent`` only on CopyStart snapshots.
* :func:`accepted_view`: the 202 body (and what a read shows while the create runs): what was
  sent, plus ``provisioningState: Updating``.
* :func:`render_disk`: a read now: the provisioning state, CopyStart progress (``Pending`` and a
  rising ``completionPercent`` until the background copy ends; no event announces the end, as
  in Azure) and the fields the request's api-version knows.

Sources of every rule are cited in docs/devstack.md ("Disks, snapshots and managed images").
"""

from __future__ import annotations

import copy
import math
import uuid
from typing import Any, Final

from devstack.armsim import ids
from devstack.armsim.clock import ClockMark, SimClock
from devstack.armsim.errors import (
    copy_start_full_snapshot,
    copy_start_wrong_source,
    disk_property_change_not_allowed,
    disk_source_not_found,
)
from devstack.armsim.ids import ResourceRef
from devstack.armsim.regions import region_key
from devstack.armsim.store import Store, StoredResource

JsonObject = dict[str, Any]
GIB: Final = 1024**3
COPY_START: Final = "CopyStart"
#: Size of an ``Empty`` disk sent without ``diskSizeGB`` (not documented; kept from before).
DEFAULT_SIZE_GB: Final = 30
#: Simulated duration of a CopyStart background copy: a fixed part plus a part per GiB.
COPY_START_BASE_SECONDS: Final = 60.0
COPY_START_SECONDS_PER_GIB: Final = 10.0  # ~100 MiB/s
#: The first api-version whose reads carry ``snapshotAccessState`` (2023 recordings have none).
SNAPSHOT_ACCESS_STATE_SINCE: Final = "2024-03-02"

#: Premium SSD tiers: (largest size GiB, tier, IOPS, MB/s), learn.microsoft.com disks-types.
PREMIUM_TIERS: Final[tuple[tuple[int, str, int, int], ...]] = (
    (4, "P1", 120, 25),
    (8, "P2", 120, 25),
    (16, "P3", 120, 25),
    (32, "P4", 120, 25),
    (64, "P6", 240, 50),
    (128, "P10", 500, 100),
    (256, "P15", 1100, 125),
    (512, "P20", 2300, 150),
    (1024, "P30", 5000, 200),
    (2048, "P40", 7500, 250),
    (4096, "P50", 7500, 250),
    (8192, "P60", 16000, 500),
    (16384, "P70", 18000, 750),
    (32767, "P80", 20000, 900),
)
#: Standard HDD (Standard_LRS): (largest size GiB, IOPS, MB/s); reads carry no ``tier``.
STANDARD_HDD: Final[tuple[tuple[int, int, int], ...]] = (
    (4096, 500, 60),
    (8192, 1300, 300),
    (32767, 2000, 500),
)

#: Properties the service owns: never taken from a request body.
READ_ONLY: Final = frozenset(
    {
        "provisioningState",
        "timeCreated",
        "uniqueId",
        "diskState",
        "diskSizeBytes",
        "snapshotAccessState",
        "completionPercent",
        "incrementalSnapshotFamilyId",
    }
)
#: Properties the service derives from the size and sku (recomputed on every write).
DERIVED: Final = frozenset({"diskIOPSReadWrite", "diskMBpsReadWrite", "tier"})
#: Where properties go in a read (the recorded order); anything else sent follows ``LEADING``.
LEADING: Final[tuple[str, ...]] = (
    "osType",
    "hyperVGeneration",
    "purchasePlan",
    "supportedCapabilities",
    "supportsHibernation",
    "creationData",
    "diskSizeGB",
    "diskIOPSReadWrite",
    "diskMBpsReadWrite",
)
TRAILING: Final[tuple[str, ...]] = (
    "encryption",
    "incremental",
    "networkAccessPolicy",
    "publicNetworkAccess",
    "timeCreated",
    "provisioningState",
    "diskState",
    "diskSizeBytes",
    "uniqueId",
    "snapshotAccessState",
    "completionPercent",
    "incrementalSnapshotFamilyId",
    "tier",
)


def copy_start_seconds(size_gb: int) -> float:
    """How long (simulated seconds) the background copy of a CopyStart snapshot takes."""
    return COPY_START_BASE_SECONDS + COPY_START_SECONDS_PER_GIB * size_gb


def _option(props: JsonObject) -> str:
    return str((props.get("creationData") or {}).get("createOption") or "Empty")


def is_copy_start(ref: ResourceRef, props: JsonObject) -> bool:
    return ref.type == ids.SNAPSHOT and _option(props).lower() == COPY_START.lower()


def sku_of(body: JsonObject) -> JsonObject:
    """The sku a read shows: the sent name (default ``Standard_LRS``) and its tier."""
    name = str((body.get("sku") or {}).get("name") or "Standard_LRS")
    tier = "Premium" if name.startswith("Premium") else "Ultra" if "Ultra" in name else "Standard"
    return {"name": name, "tier": tier}


def performance(sku_name: str, size_gb: int, sent: JsonObject) -> JsonObject:
    """``diskIOPSReadWrite``, ``diskMBpsReadWrite`` (and ``tier`` on Premium SSD) of a disk.

    Premium SSD and Standard HDD follow the published size tables (a ``tier`` sent wins, as a
    performance-tier upgrade does); other skus show only what was sent.
    """
    if sku_name in ("Premium_LRS", "Premium_ZRS"):
        wanted = sent.get("tier")
        for limit, tier, iops, mbps in PREMIUM_TIERS:
            if (wanted and tier == wanted) or (not wanted and size_gb <= limit):
                return {"diskIOPSReadWrite": iops, "diskMBpsReadWrite": mbps, "tier": tier}
    if sku_name == "Standard_LRS":
        for limit, iops, mbps in STANDARD_HDD:
            if size_gb <= limit:
                return {"diskIOPSReadWrite": iops, "diskMBpsReadWrite": mbps}
    return {key: sent[key] for key in DERIVED if key in sent}


def check_creation_source(
    store: Store, ref: ResourceRef, props: JsonObject, location: str
) -> StoredResource | None:
    """The disk or snapshot ``creationData.sourceResourceId`` names, checked as DiskRP does."""
    creation = props.get("creationData") or {}
    source_id = creation.get("sourceResourceId")
    copy_start = is_copy_start(ref, props)
    if not source_id:
        return None
    source_ref = ids.parse_resource_id(str(source_id))
    if source_ref is None or source_ref.type not in (ids.SNAPSHOT, ids.DISK):
        if copy_start:
            raise copy_start_wrong_source()
        raise disk_source_not_found(str(source_id).rstrip("/").rsplit("/", 1)[-1])
    source = store.get(source_ref.key)
    if source is None:
        raise disk_source_not_found(source_ref.name)
    if copy_start:
        if source_ref.type != ids.SNAPSHOT:
            raise copy_start_wrong_source()
        source_incremental = bool(source.body.get("properties", {}).get("incremental"))
        if not (source_incremental and props.get("incremental") is True):
            raise copy_start_full_snapshot()
        return source  # CopyStart is the copy to another region: any region will do
    if region_key(str(source.body.get("location", ""))) != region_key(location):
        raise disk_source_not_found(source_ref.name)
    return source


def check_unchanged_creation(existing: StoredResource, props: JsonObject, name: str) -> None:
    """How a disk was created cannot change: a PUT with another source is refused."""
    if "creationData" not in props:
        return  # left out: the stored one stays
    before = existing.body.get("properties", {}).get("creationData") or {}
    after = props.get("creationData") or {}
    for field in ("createOption", "sourceResourceId", "sourceUri", "storageAccountId"):
        old, new = before.get(field), after.get(field)
        if field == "createOption" and new is None:
            continue  # an update may leave it out
        if (str(old).lower() if old else None) != (str(new).lower() if new else None):
            raise disk_property_change_not_allowed(field, name)


def _size_gb(sent: JsonObject, source_props: JsonObject) -> int:
    if "diskSizeGB" in sent:
        return int(sent["diskSizeGB"])
    if "diskSizeBytes" in sent:
        return math.ceil(int(sent["diskSizeBytes"]) / GIB)
    if "diskSizeGB" in source_props:
        return int(source_props["diskSizeGB"])
    return DEFAULT_SIZE_GB


def _ordered(props: JsonObject) -> JsonObject:
    result: JsonObject = {key: props[key] for key in LEADING if key in props}
    result.update({k: v for k, v in props.items() if k not in LEADING and k not in TRAILING})
    result.update({key: props[key] for key in TRAILING if key in props})
    return result


def normalize_disk(
    ref: ResourceRef,
    body: JsonObject,
    *,
    source: StoredResource | None,
    now: str,
    existing: StoredResource | None = None,
) -> JsonObject:
    """The stored body of a disk or snapshot: what was sent and the server defaults."""
    sent = copy.deepcopy(body.get("properties") or {})
    for key in READ_ONLY:
        sent.pop(key, None)
    before = existing.body.get("properties", {}) if existing is not None else {}
    source_props = source.body.get("properties", {}) if source is not None else {}
    props: JsonObject = {k: v for k, v in sent.items() if k not in DERIVED or k == "tier"}
    for name in ("osType", "hyperVGeneration", "incremental"):
        # An update keeps what the resource has; a copy keeps what its source knows, only.
        if name not in props and name in before:
            props[name] = before[name]
        elif name not in props and name in source_props and name != "incremental":
            props[name] = source_props[name]
    creation = dict(
        sent.get("creationData") or before.get("creationData") or {"createOption": "Empty"}
    )
    unique_source = source_props.get("uniqueId") or (before.get("creationData") or {}).get(
        "sourceUniqueId"
    )
    if creation.get("sourceResourceId") and unique_source:
        creation["sourceUniqueId"] = unique_source
    props["creationData"] = creation
    size = _size_gb(sent, source_props)
    props["diskSizeGB"] = size
    sku = sku_of(body if body.get("sku") or existing is None else existing.body)
    if ref.type == ids.DISK:
        props.pop("tier", None)
        props.update(performance(sku["name"], size, sent))
    props.setdefault("encryption", {"type": "EncryptionAtRestWithPlatformKey"})
    if ref.type == ids.SNAPSHOT:
        props.setdefault("incremental", False)
    props.setdefault("networkAccessPolicy", "AllowAll")
    props.setdefault("publicNetworkAccess", "Enabled")
    props["timeCreated"] = before.get("timeCreated", now)
    props["provisioningState"] = "Succeeded"  # the read's state replaces it (render_disk)
    props["diskState"] = before.get("diskState", "Unattached")
    props["diskSizeBytes"] = size * GIB
    props["uniqueId"] = before.get("uniqueId") or str(uuid.uuid4())
    if ref.type == ids.SNAPSHOT:
        props["snapshotAccessState"] = "Available"
        if is_copy_start(ref, props):
            props["completionPercent"] = 0.0
        if props.get("incremental") is True:
            props["incrementalSnapshotFamilyId"] = before.get(
                "incrementalSnapshotFamilyId"
            ) or _family_id(source_props, str(body.get("location", "")))
    result = _envelope(ref, body)
    result["sku"] = sku
    result["properties"] = _ordered(props)
    for extra in ("zones", "extendedLocation", "managedBy"):
        if extra in body:
            result[extra] = body[extra]
    return result


def _family_id(source_props: JsonObject, location: str) -> str:
    """Incremental snapshots of one disk in one region share a family (a stable id)."""
    root = source_props.get("incrementalSnapshotFamilyId") or source_props.get("uniqueId")
    if not root:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{root}/{region_key(location)}"))


def _envelope(ref: ResourceRef, body: JsonObject) -> JsonObject:
    result: JsonObject = {
        "name": ref.name,
        "id": ref.id,
        "type": ref.type,
        "location": body.get("location"),
    }
    if body.get("tags") is not None:
        result["tags"] = body["tags"]
    return result


def accepted_view(ref: ResourceRef, body: JsonObject) -> JsonObject:
    """The body of the 202 that accepts a write: what was sent, ``provisioningState: Updating``."""
    result = _envelope(ref, body)
    if body.get("sku") is not None:
        result["sku"] = copy.deepcopy(body["sku"])
    props = {
        k: copy.deepcopy(v) for k, v in (body.get("properties") or {}).items() if k not in READ_ONLY
    }
    props["provisioningState"] = "Updating"
    result["properties"] = props
    return result


def patched_body(existing: StoredResource, patch: JsonObject) -> JsonObject:
    """A PATCH (tags, sku, properties) applied to what the resource was created with."""
    body = copy.deepcopy(existing.body)
    props = {
        k: v
        for k, v in body.get("properties", {}).items()
        if k not in READ_ONLY and k not in DERIVED
    }
    props.update(copy.deepcopy(patch.get("properties") or {}))
    body["properties"] = props
    for field in ("tags", "sku"):
        if field in patch:
            body[field] = copy.deepcopy(patch[field])
    return body


def copy_start_mark(clock: SimClock, size_gb: int) -> JsonObject:
    """The stored start of a CopyStart background copy."""
    mark = clock.mark()
    return {"real": mark.real, "offset": mark.offset, "seconds": copy_start_seconds(size_gb)}


def render_disk(
    stored: StoredResource,
    *,
    state: str,
    creating: bool,
    api_version: str,
    clock: SimClock,
) -> JsonObject:
    """A disk or snapshot as a read returns it now (``creating``: its first write still runs)."""
    pending = stored.meta.get("pendingView")
    if creating and isinstance(pending, dict):
        body = copy.deepcopy(pending)
        body["properties"]["provisioningState"] = state
        return body
    body = copy.deepcopy(stored.body)
    props = body["properties"]
    props["provisioningState"] = state
    mark = stored.meta.get("copyStart")
    if mark and "completionPercent" in props:
        done = clock.work_since(ClockMark(float(mark["real"]), float(mark["offset"])))
        percent = min(100.0, 100.0 * done / float(mark["seconds"]))
        props["completionPercent"] = round(percent, 1)
        props["snapshotAccessState"] = "Available" if percent >= 100.0 else "Pending"
    if api_version and api_version < SNAPSHOT_ACCESS_STATE_SINCE:
        props.pop("snapshotAccessState", None)
    return body
