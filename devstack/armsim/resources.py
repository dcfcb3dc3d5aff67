"""Plain Compute resources (snapshots, disks, managed images, VMs, scale sets) and storage accounts.

They complete synchronously (200/201 with ``provisioningState: Succeeded``). Snapshot and disk
writes publish ``Microsoft.Resources.ResourceWriteSuccess`` events. Storage accounts are
read-only over ARM (create them with ``POST /admin/seed``); their ``primaryEndpoints.blob`` is
what a VHD source's ``storageAccountId`` resolves to.

A snapshot created with ``creationData.createOption: CopyStart`` (Azure's background copy, e.g.
of an incremental snapshot to another region) is not usable at once: it reads
``snapshotAccessState: Pending`` and a rising ``completionPercent`` until the copy has run for
:func:`copy_start_seconds` simulated seconds, then ``Available`` and 100. No event is published
when the copy completes (Azure publishes none either: it is not an ARM write).
"""

from __future__ import annotations

import copy
import math
import uuid
from typing import Any

from devstack.armsim import events, ids
from devstack.armsim.clock import ClockMark, SimClock, azure_timestamp
from devstack.armsim.context import SimContext
from devstack.armsim.errors import ArmError, resource_not_found
from devstack.armsim.gallery_common import envelope, parent_key
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.store import StoredResource
from devstack.armsim.validation import check_location

JsonObject = dict[str, Any]
GIB = 1024**3
EVENT_TYPES = (ids.SNAPSHOT, ids.DISK)
#: Simulated duration of a CopyStart background copy: a fixed part plus a part per GiB.
COPY_START_BASE_SECONDS = 60.0
COPY_START_SECONDS_PER_GIB = 10.0  # ~100 MiB/s
COPY_START = "CopyStart"


def copy_start_seconds(size_gb: int) -> float:
    """How long (simulated seconds) the background copy of a CopyStart snapshot takes."""
    return COPY_START_BASE_SECONDS + COPY_START_SECONDS_PER_GIB * size_gb


def _is_copy_start(ref: ResourceRef, props: JsonObject) -> bool:
    create_option = (props.get("creationData") or {}).get("createOption")
    return ref.type == ids.SNAPSHOT and str(create_option).lower() == COPY_START.lower()


def with_copy_progress(stored: StoredResource, clock: SimClock) -> JsonObject:
    """The body as read now: a CopyStart snapshot's progress is derived from its start mark."""
    mark = stored.meta.get("copyStart")
    if not mark:
        return stored.body
    body = copy.deepcopy(stored.body)
    done = clock.work_since(ClockMark(float(mark["real"]), float(mark["offset"])))
    percent = min(100.0, 100.0 * done / float(mark["seconds"]))
    body["properties"]["completionPercent"] = round(percent, 1)
    body["properties"]["snapshotAccessState"] = "Available" if percent >= 100.0 else "Pending"
    return body


def normalize_plain(ref: ResourceRef, body: JsonObject, context: SimContext) -> JsonObject:
    """The stored body of a plain resource with the service's defaults filled in."""
    props = copy.deepcopy(body.get("properties") or {})
    props.pop("provisioningState", None)
    now = azure_timestamp(context.clock.now())
    if ref.type in (ids.SNAPSHOT, ids.DISK):
        source_id = (props.get("creationData") or {}).get("sourceResourceId")
        if source_id:
            source_ref = ids.parse_resource_id(str(source_id))
            source = context.store.get(source_ref.key) if source_ref else None
            if source is not None:
                for name in ("diskSizeGB", "osType", "hyperVGeneration"):
                    value = source.body.get("properties", {}).get(name)
                    if value is not None:
                        props.setdefault(name, value)
        if "diskSizeGB" not in props and "diskSizeBytes" in props:
            props["diskSizeGB"] = math.ceil(int(props["diskSizeBytes"]) / GIB)
        props.setdefault("diskSizeGB", 30)
        props["diskSizeBytes"] = int(props["diskSizeGB"]) * GIB
        props.setdefault("creationData", {"createOption": "Empty"})
        props.setdefault("timeCreated", now)
        props.setdefault("uniqueId", str(uuid.uuid4()))
        props.setdefault("diskState", "Unattached")
        if ref.type == ids.SNAPSHOT:
            props.setdefault("incremental", False)
            if _is_copy_start(ref, props):  # read-only, derived on every read
                props["snapshotAccessState"] = "Pending"
                props["completionPercent"] = 0.0
            props.setdefault("snapshotAccessState", "Available")
            props.setdefault("completionPercent", 100.0)
        props.setdefault("hyperVGeneration", "V1")
    elif ref.type == ids.VM:
        props.setdefault("vmId", str(uuid.uuid4()))
        props.setdefault("timeCreated", now)
    elif ref.type == ids.VMSS:
        props.setdefault("uniqueId", str(uuid.uuid4()))
        props.setdefault("timeCreated", now)
    elif ref.type == ids.STORAGE_ACCOUNT:
        props.setdefault("primaryEndpoints", {})
        blob_endpoint = context.config.blob_endpoint
        if blob_endpoint and "blob" not in props["primaryEndpoints"]:
            props["primaryEndpoints"]["blob"] = blob_endpoint.rstrip("/") + "/"
        props.setdefault("creationTime", now)
    props["provisioningState"] = "Succeeded"
    result = envelope(ref, body, props)
    if ref.type == ids.STORAGE_ACCOUNT:
        result.setdefault("kind", body.get("kind", "StorageV2"))
        result.setdefault("sku", body.get("sku", {"name": "Standard_LRS", "tier": "Standard"}))
    elif "sku" in body:
        result["sku"] = body["sku"]
    for extra in ("zones", "identity", "plan", "extendedLocation", "managedBy"):
        if extra in body:
            result[extra] = body[extra]
    return result


class PlainHandlers:
    """Synchronous CRUD for the non-gallery resource types."""

    def __init__(self, context: SimContext) -> None:
        self.context = context

    def put(self, request: Request, ref: ResourceRef) -> Reply:
        if ref.type == ids.STORAGE_ACCOUNT:
            raise ArmError(
                405,
                "MethodNotAllowed",
                "The simulator serves storage accounts read-only; create them with "
                "POST /admin/seed.",
            )
        body = request.body if isinstance(request.body, dict) else {}
        check_location(body)
        existing = self.context.store.get(ref.key)
        stored = StoredResource(
            key=ref.key,
            type=ref.type,
            parent=parent_key(ref),
            body=normalize_plain(ref, body, self.context),
        )
        if existing is not None:
            stored.body["properties"].update(
                {
                    k: existing.body["properties"][k]
                    for k in ("timeCreated", "uniqueId", "vmId")
                    if k in existing.body["properties"]
                }
            )
            if "copyStart" in existing.meta:  # an update does not restart the copy
                stored.meta["copyStart"] = existing.meta["copyStart"]
        elif _is_copy_start(ref, stored.body["properties"]):
            mark = self.context.clock.mark()
            stored.meta["copyStart"] = {
                "real": mark.real,
                "offset": mark.offset,
                "seconds": copy_start_seconds(int(stored.body["properties"]["diskSizeGB"])),
            }
        self.context.store.put(stored)
        if ref.type in EVENT_TYPES:
            self.context.events.publish(
                events.resource_event(
                    events.WRITE_SUCCESS,
                    ref.id,
                    f"{ref.type}/write",
                    ref.subscription,
                    method=request.method,
                    url=self.context.config.base_url + request.path,
                    correlation_id=request.headers.get("x-ms-client-request-id")
                    or str(uuid.uuid4()),
                )
            )
        created = existing is None and ref.type not in (ids.SNAPSHOT, ids.DISK)
        return Reply(201 if created else 200, with_copy_progress(stored, self.context.clock))

    def get(self, request: Request, ref: ResourceRef) -> Reply:
        del request
        stored = self.context.store.get(ref.key)
        if stored is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        return Reply(200, with_copy_progress(stored, self.context.clock))

    def delete(self, request: Request, ref: ResourceRef) -> Reply:
        del request
        if ref.type == ids.STORAGE_ACCOUNT:
            raise ArmError(405, "MethodNotAllowed", "storage accounts are read-only")
        if self.context.store.get(ref.key) is None:
            return Reply(204)
        self.context.store.delete(ref.key)
        return Reply(200)

    def list(self, request: Request, collection: ResourceRef) -> Reply:
        parent = (
            f"/subscriptions/{collection.subscription}/resourcegroups/{collection.resource_group}"
        ).lower()
        items = self.context.store.children(collection.type, parent)
        return self.context.page(
            request, [with_copy_progress(i, self.context.clock) for i in items]
        )

    def list_subscription(self, request: Request, subscription: str, resource_type: str) -> Reply:
        prefix = f"/subscriptions/{subscription}/".lower()
        items = [
            with_copy_progress(i, self.context.clock)
            for i in self.context.store.of_type(resource_type)
            if i.key.startswith(prefix)
        ]
        return self.context.page(request, items)
