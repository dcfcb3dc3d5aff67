"""What the handlers of galleries, image definitions and image versions share.

PUT/PATCH/DELETE are long-running operations as the service does them (201/200/202 with
``Azure-AsyncOperation``); GET renders the stored body with the state derived from the clock.
:class:`GalleryResourceHandlers` holds the parts the three types have in common: the
provisioning state of a running operation, rendering, GET and LIST, parent checks, the quick
create/update operation and the delete operation. :func:`envelope` and :func:`parent_key` shape
every stored resource, the plain ones too.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

from devstack.armsim import operations, softdelete
from devstack.armsim.context import SimContext
from devstack.armsim.errors import ArmError, parent_not_found, resource_not_found
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.store import StoredResource

JsonObject = dict[str, Any]

STATE_BY_KIND = {"create": "Creating", "update": "Updating", "delete": "Deleting"}
NESTED_RESOURCES_MESSAGE = "Can not delete resource before nested resources are deleted"
#: ARM's answer to a PUT that moves an existing resource (the troubleshooting guide quotes it
#: for galleries and definitions; the code is ARM's; the status is assumed).
RESOURCE_LOCATION_MESSAGE = (
    "The resource '{name}' already exists in location '{existing}' in resource group "
    "'{group}'. A resource with the same name cannot be created in location '{wanted}'. "
    "Please select a new resource name."
)


def check_same_location(ref: ResourceRef, existing: StoredResource, location: str) -> None:
    """A PUT of an existing gallery resource may not name another region."""
    stored = str(existing.body.get("location", ""))
    if stored.replace(" ", "").lower() != location.replace(" ", "").lower():
        raise ArmError(
            409,
            "InvalidResourceLocation",
            RESOURCE_LOCATION_MESSAGE.format(
                name=ref.name_path,
                existing=stored,
                group=ref.resource_group,
                wanted=location,
            ),
        )


def merge_patch(target: JsonObject, patch: JsonObject) -> JsonObject:
    """``target`` updated with ``patch`` as ARM PATCH merges (RFC 7386): objects merge key by
    key, ``null`` removes a key, anything else replaces the value."""
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def request_body(request: Request) -> JsonObject:
    """The JSON object a PUT or PATCH carries (``{}`` for anything else)."""
    return request.body if isinstance(request.body, dict) else {}


def parent_key(ref: ResourceRef) -> str:
    parent = ref.parent()
    if parent is not None:
        return parent.key
    return f"/subscriptions/{ref.subscription}/resourcegroups/{ref.resource_group}".lower()


def envelope(ref: ResourceRef, body: JsonObject, properties: JsonObject) -> JsonObject:
    """A tracked resource in the service's key order: name, id, type, location, tags, properties."""
    result: JsonObject = {
        "name": ref.name,
        "id": ref.id,
        "type": ref.type,
        "location": body.get("location"),
    }
    if "tags" in body and body["tags"] is not None:
        result["tags"] = body["tags"]
    result["properties"] = properties
    return result


class GalleryResourceHandlers(ABC):
    """HTTP handlers one gallery resource type shares with the others (subclassed per type)."""

    def __init__(self, context: SimContext) -> None:
        self.context = context

    @abstractmethod
    def put(self, request: Request, ref: ResourceRef) -> Reply:
        """Create or update the resource: a long-running operation."""

    @abstractmethod
    def patch(self, request: Request, ref: ResourceRef) -> Reply:
        """Update the properties the request names, keep the others: a long-running operation
        (404 when the resource does not exist)."""

    def _existing(self, ref: ResourceRef) -> StoredResource:
        """The stored resource a PATCH updates, or 404 ``ResourceNotFound``."""
        existing = self.context.store.get(ref.key)
        if existing is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        return existing

    def provisioning_state(self, stored: StoredResource) -> tuple[str, JsonObject | None]:
        """(provisioningState, running operation) of a stored gallery resource."""
        op_id = stored.meta.get("operationId")
        if op_id:
            operation = self.context.store.get_operation(op_id)
            if operation is not None and not operation.get("finalized"):
                state = operations.evaluate(operation, self.context.clock)
                if not state.terminal:
                    return STATE_BY_KIND[operation["kind"]], operation
                if operation["kind"] == "delete":
                    return "Deleting", operation
                return state.status, operation
        return str(stored.meta.get("provisioningState", "Succeeded")), None

    def render(self, stored: StoredResource, *, expand: str = "") -> JsonObject:
        """The body as GET returns it now."""
        del expand  # only versions expand (replicationStatus)
        body = copy.deepcopy(stored.body)
        state, _ = self.provisioning_state(stored)
        props = body.setdefault("properties", {})
        props["provisioningState"] = state
        return body

    def _lro_reply(self, status: int, body: JsonObject | None, operation: JsonObject) -> Reply:
        return Reply(status, body, self.context.async_headers(operation))

    def _start(self, operation: JsonObject) -> None:
        self.context.store.save_operation(operation)

    def _require_parent(self, ref: ResourceRef) -> StoredResource:
        parent = ref.parent()
        if parent is None:
            raise AssertionError("nested resource expected")
        stored = self.context.store.get(parent.key)
        if stored is None:
            raise parent_not_found(parent.name_path)
        return stored

    def get(self, request: Request, ref: ResourceRef) -> Reply:
        stored = self.context.store.get(ref.key)
        if stored is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        if ref.parent() is not None:
            self._require_parent(ref)
        return Reply(200, self.render(stored, expand=request.query.get("$expand", "")))

    def list(self, request: Request, collection: ResourceRef) -> Reply:
        if collection.names:
            parent_ref = ResourceRef(
                collection.subscription,
                collection.resource_group,
                collection.provider,
                collection.segments[:-1],
                collection.names,
            )
            if self.context.store.get(parent_ref.key) is None:
                raise parent_not_found(parent_ref.name_path)
            parent_id = parent_ref.key
        else:
            parent_id = (
                f"/subscriptions/{collection.subscription}/resourcegroups/"
                f"{collection.resource_group}"
            ).lower()
        items = self.context.store.children(collection.type, parent_id)
        expand = request.query.get("$expand", "")
        return self.context.page(request, [self.render(i, expand=expand) for i in items])

    def delete(self, request: Request, ref: ResourceRef) -> Reply:
        """A gallery or definition: refused while it has children, else a quick operation."""
        stored = self.context.store.get(ref.key)
        if stored is None:
            return Reply(204)
        softdelete.purge_expired(self.context.store, ref.key, self.context.clock.now())
        if self.context.store.count_children(ref.key):
            raise ArmError(409, "CannotDeleteResource", NESTED_RESOURCES_MESSAGE)
        return self._start_delete(request, ref, stored, operations.QUICK_OPERATION_SECONDS)

    def _put_simple(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        location: str,
        props: JsonObject,
        *,
        existing: StoredResource | None,
    ) -> Reply:
        """Create or update a gallery or definition: a quick operation."""
        kind = "update" if existing else "create"
        operation = operations.new_operation(
            kind=kind,
            resource_key=ref.key,
            resource_id=ref.id,
            location=location,
            api_version=request.api_version,
            clock=self.context.clock,
            build=operations.QUICK_OPERATION_SECONDS,
        )
        stored = StoredResource(
            key=ref.key,
            type=ref.type,
            parent=parent_key(ref),
            body=envelope(ref, {**body, "location": location}, props),
            meta={
                "provisioningState": STATE_BY_KIND[kind],
                "operationId": operation["id"],
            },
        )
        self._start(operation)
        self.context.store.put(stored)
        return self._lro_reply(200 if existing else 201, self.render(stored), operation)

    def _start_delete(
        self, request: Request, ref: ResourceRef, stored: StoredResource, seconds: float
    ) -> Reply:
        """Start the delete operation of ``stored`` and answer 202 with its monitor headers."""
        operation = operations.new_operation(
            kind="delete",
            resource_key=ref.key,
            resource_id=ref.id,
            location=str(stored.body.get("location", "")),
            api_version=request.api_version,
            clock=self.context.clock,
            build=seconds,
        )
        self._start(operation)
        stored.meta["operationId"] = operation["id"]
        self.context.store.put(stored)
        return Reply(202, None, self.context.async_headers(operation, delete=True))
