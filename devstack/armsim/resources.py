"""Plain Compute resources (snapshots, disks, managed images, VMs, scale sets) and storage accounts.

Disks, snapshots and managed images are long-running operations, as the recorded sessions show
(docs/devstack.md, "Disks, snapshots and managed images"):

* disk or snapshot PUT and PATCH: **202**, the body sent with ``provisioningState: Updating``,
  ``Azure-AsyncOperation`` and ``Location`` under ``.../locations/{loc}/DiskOperations/{id}``;
  the operation's final status carries the resource as ``properties.output``. DELETE: 202, empty
  body, the same two headers. Successful writes publish ``ResourceWriteSuccess`` when accepted.
* managed image PUT: **201** ``Creating`` (an update: 200 ``Updating``), ``Azure-AsyncOperation``
  under ``.../locations/{loc}/operations/{id}`` and ``azure-asyncnotification: Enabled``; DELETE:
  202 with ``Location`` too. The storage profile of an image of a VM is read from the VM.

Bodies, defaults and source rules are in :mod:`devstack.armsim.disk_bodies` and
:mod:`devstack.armsim.image_bodies`. VMs and scale sets stay synchronous (200/201
``Succeeded``). Storage accounts are read-only over ARM (create them with ``POST /admin/seed``);
their ``primaryEndpoints.blob`` is what a VHD source's ``storageAccountId`` resolves to.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Final

from devstack.armsim import events, ids, operations
from devstack.armsim.clock import azure_timestamp
from devstack.armsim.context import SimContext
from devstack.armsim.disk_bodies import (
    accepted_view,
    check_creation_source,
    check_unchanged_creation,
    copy_start_mark,
    copy_start_seconds,
    is_copy_start,
    normalize_disk,
    patched_body,
    render_disk,
)
from devstack.armsim.errors import ArmError, resource_not_found
from devstack.armsim.gallery_common import envelope, parent_key
from devstack.armsim.ids import ResourceRef
from devstack.armsim.image_bodies import normalize_image
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.store import StoredResource
from devstack.armsim.validation import check_location

__all__ = ["PlainHandlers", "copy_start_seconds", "normalize_plain"]

JsonObject = dict[str, Any]
DISK_TYPES: Final = (ids.SNAPSHOT, ids.DISK)
EVENT_TYPES: Final = DISK_TYPES
#: provisioningState while an operation of each kind runs, per family.
RUNNING_STATES: Final = {
    "disk": {"create": "Updating", "update": "Updating", "delete": "Deleting"},
    "compute": {"create": "Creating", "update": "Updating", "delete": "Deleting"},
}


def normalize_plain(ref: ResourceRef, body: JsonObject, context: SimContext) -> JsonObject:
    """The stored body of a plain resource as it reads once created (``POST /admin/seed``).

    Seeding skips the API's rules (a source in another region, a missing VM), not the server
    defaults.
    """
    now = azure_timestamp(context.clock.now())
    if ref.type in DISK_TYPES:
        source_id = ((body.get("properties") or {}).get("creationData") or {}).get(
            "sourceResourceId"
        )
        source_ref = ids.parse_resource_id(str(source_id)) if source_id else None
        source = context.store.get(source_ref.key) if source_ref else None
        return normalize_disk(ref, body, source=source, now=now)
    if ref.type == ids.MANAGED_IMAGE:
        props, _ = normalize_image(body, context.store, strict=False)
        return envelope(ref, body, props)
    return _normalize_sync(ref, body, context, now)


def _normalize_sync(
    ref: ResourceRef, body: JsonObject, context: SimContext, now: str
) -> JsonObject:
    """VMs, scale sets and storage accounts: what was sent and a few server fields."""
    props = copy.deepcopy(body.get("properties") or {})
    props.pop("provisioningState", None)
    if ref.type == ids.VM:
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
    """HTTP handlers of the non-gallery resource types."""

    def __init__(self, context: SimContext) -> None:
        self.context = context

    # ------------------------------------------------------------------ state and rendering
    def _state(self, stored: StoredResource) -> tuple[str, JsonObject | None]:
        """(provisioningState now, the operation still running on it or ``None``)."""
        op_id = stored.meta.get("operationId")
        operation = self.context.store.get_operation(op_id) if op_id else None
        if (
            operation is not None
            and not operation.get("finalized")
            and not operations.evaluate(operation, self.context.clock).terminal
        ):
            running = RUNNING_STATES.get(str(operation.get("family")), RUNNING_STATES["disk"])
            return running[operation["kind"]], operation
        return str(stored.meta.get("provisioningState", "Succeeded")), None

    def render(self, stored: StoredResource, api_version: str) -> JsonObject:
        """The resource as a read with ``api_version`` returns it now."""
        state, running = self._state(stored)
        if stored.type.lower() in {t.lower() for t in DISK_TYPES}:
            return render_disk(
                stored,
                state=state,
                creating=running is not None and running["kind"] == "create",
                api_version=api_version,
                clock=self.context.clock,
            )
        pending = stored.meta.get("pendingView")
        if running is not None and running["kind"] == "create" and isinstance(pending, dict):
            return copy.deepcopy(pending)
        body = copy.deepcopy(stored.body)
        body.setdefault("properties", {})["provisioningState"] = state
        return body

    def operation_output(self, operation: JsonObject) -> JsonObject | None:
        """``properties.output`` of a succeeded disk or snapshot write: the resource as read."""
        if operation.get("family") != "disk" or operation["kind"] == "delete":
            return None
        stored = self.context.store.get(operation["resourceKey"])
        if stored is None:
            return None
        return self.render(stored, str(operation["apiVersion"]))

    # ------------------------------------------------------------------ writes
    def put(self, request: Request, ref: ResourceRef) -> Reply:
        if ref.type == ids.STORAGE_ACCOUNT:
            raise ArmError(
                405,
                "MethodNotAllowed",
                "The simulator serves storage accounts read-only; create them with "
                "POST /admin/seed.",
            )
        body = request.body if isinstance(request.body, dict) else {}
        check_location(body, ref.type)  # a real region (the type names the error)
        existing = self.context.store.get(ref.key)
        if ref.type in DISK_TYPES:
            return self._write_disk(request, ref, body, existing)
        if ref.type == ids.MANAGED_IMAGE:
            return self._write_image(request, ref, body, existing)
        return self._put_sync(request, ref, body, existing)

    def patch(self, request: Request, ref: ResourceRef) -> Reply:
        """PATCH of a disk, snapshot or managed image: tags, sku, properties merged in."""
        existing = self.context.store.get(ref.key)
        if existing is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        patch = request.body if isinstance(request.body, dict) else {}
        body = patched_body(existing, patch)
        if ref.type in DISK_TYPES:
            return self._write_disk(request, ref, body, existing, patch=True)
        return self._write_image(request, ref, body, existing)

    def _operation(
        self, request: Request, ref: ResourceRef, kind: str, location: str, family: str
    ) -> JsonObject:
        if family == "disk":
            seconds = (
                operations.DISK_DELETE_SECONDS
                if kind == "delete"
                else operations.DISK_WRITE_SECONDS
            )
        else:
            seconds = operations.IMAGE_OPERATION_SECONDS
        operation = operations.new_operation(
            kind=kind,
            resource_key=ref.key,
            resource_id=ref.id,
            location=location,
            api_version=request.api_version,
            clock=self.context.clock,
            build=seconds * self.context.faults.slow_operations,
            family=family,
        )
        self.context.store.save_operation(operation)
        return operation

    def _write_disk(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        existing: StoredResource | None,
        *,
        patch: bool = False,
    ) -> Reply:
        location = str(body.get("location") or "")
        props = body.get("properties") or {}
        if existing is None:
            source = check_creation_source(self.context.store, ref, props, location)
        else:
            check_unchanged_creation(existing, props, ref.name)
            source_id = existing.body["properties"].get("creationData", {}).get("sourceResourceId")
            source_ref = ids.parse_resource_id(str(source_id)) if source_id else None
            source = self.context.store.get(source_ref.key) if source_ref else None
        now = azure_timestamp(self.context.clock.now())
        normalized = normalize_disk(ref, body, source=source, now=now, existing=existing)
        kind = "update" if existing is not None else "create"
        operation = self._operation(request, ref, kind, location, "disk")
        meta: JsonObject = {"provisioningState": "Updating", "operationId": operation["id"]}
        if existing is None:
            meta["pendingView"] = accepted_view(ref, body)
            if is_copy_start(ref, normalized["properties"]):
                size = int(normalized["properties"]["diskSizeGB"])
                meta["copyStart"] = copy_start_mark(self.context.clock, size)
        elif "copyStart" in existing.meta:  # an update does not restart the copy
            meta["copyStart"] = existing.meta["copyStart"]
        stored = StoredResource(
            key=ref.key, type=ref.type, parent=parent_key(ref), body=normalized, meta=meta
        )
        self.context.store.put(stored)
        self._publish_write(request, ref)
        if patch:
            reply_body = copy.deepcopy(normalized)
            reply_body["properties"]["provisioningState"] = "Updating"
        else:
            reply_body = accepted_view(ref, body)
        return Reply(202, reply_body, self.context.async_headers(operation))

    def _write_image(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        existing: StoredResource | None,
    ) -> Reply:
        props, creating = normalize_image(body, self.context.store)
        kind = "update" if existing is not None else "create"
        operation = self._operation(request, ref, kind, str(body.get("location", "")), "compute")
        stored = StoredResource(
            key=ref.key,
            type=ref.type,
            parent=parent_key(ref),
            body=envelope(ref, body, props),
            meta={"provisioningState": "Succeeded", "operationId": operation["id"]},
        )
        if existing is None:
            stored.meta["pendingView"] = envelope(ref, body, creating)
        self.context.store.put(stored)
        return Reply(
            201 if existing is None else 200,
            self.render(stored, request.api_version),
            self.context.async_headers(operation),
        )

    def _put_sync(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        existing: StoredResource | None,
    ) -> Reply:
        """VMs and scale sets: created or updated at once (200/201 ``Succeeded``)."""
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
        self.context.store.put(stored)
        return Reply(201 if existing is None else 200, stored.body)

    def _publish_write(self, request: Request, ref: ResourceRef) -> None:
        """``ResourceWriteSuccess`` for an accepted disk or snapshot write (docs/devstack.md)."""
        if ref.type not in EVENT_TYPES:
            return
        self.context.events.publish(
            events.resource_event(
                events.WRITE_SUCCESS,
                ref.id,
                f"{ref.type}/write",
                ref.subscription,
                method=request.method,
                url=self.context.config.base_url + request.path,
                correlation_id=request.headers.get("x-ms-client-request-id") or str(uuid.uuid4()),
            )
        )

    # ------------------------------------------------------------------ reads and deletes
    def get(self, request: Request, ref: ResourceRef) -> Reply:
        stored = self.context.store.get(ref.key)
        if stored is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        return Reply(200, self.render(stored, request.api_version))

    def delete(self, request: Request, ref: ResourceRef) -> Reply:
        if ref.type == ids.STORAGE_ACCOUNT:
            raise ArmError(405, "MethodNotAllowed", "storage accounts are read-only")
        stored = self.context.store.get(ref.key)
        if stored is None:
            return Reply(204)
        if ref.type not in (*DISK_TYPES, ids.MANAGED_IMAGE):
            self.context.store.delete(ref.key)
            return Reply(200)
        _, running = self._state(stored)
        if running is not None and running["kind"] == "delete":
            return Reply(202, None, self.context.async_headers(running, delete=True))
        family = "disk" if ref.type in DISK_TYPES else "compute"
        location = str(stored.body.get("location", ""))
        operation = self._operation(request, ref, "delete", location, family)
        stored.meta["operationId"] = operation["id"]
        self.context.store.put(stored)
        return Reply(202, None, self.context.async_headers(operation, delete=True))

    def list(self, request: Request, collection: ResourceRef) -> Reply:
        parent = (
            f"/subscriptions/{collection.subscription}/resourcegroups/{collection.resource_group}"
        ).lower()
        items = self.context.store.children(collection.type, parent)
        return self.context.page(request, [self.render(i, request.api_version) for i in items])

    def list_subscription(self, request: Request, subscription: str, resource_type: str) -> Reply:
        prefix = f"/subscriptions/{subscription}/".lower()
        items = [
            self.render(i, request.api_version)
            for i in self.context.store.of_type(resource_type)
            if i.key.startswith(prefix)
        ]
        return self.context.page(request, items)
