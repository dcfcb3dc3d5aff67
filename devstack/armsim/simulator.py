"""The simulator core: wiring, ARM request dispatch and LRO settlement.

:class:`Simulator` owns the state and builds the :class:`~devstack.armsim.context.SimContext` its
resource handlers get (galleries, definitions, versions, plain resources); the admin API
(:mod:`devstack.armsim.admin`) drives it through its own narrow protocol.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from devstack.armsim import ids, operations, softdelete
from devstack.armsim.clock import SimClock
from devstack.armsim.config import (
    COMPUTE_API_VERSIONS,
    DISK_API_VERSIONS,
    GALLERY_API_VERSIONS,
    SimConfig,
)
from devstack.armsim.context import SimContext
from devstack.armsim.definitions import DefinitionHandlers
from devstack.armsim.entra import EntraService
from devstack.armsim.errors import (
    ArmError,
    bad_api_version,
    internal_error,
    missing_api_version,
)
from devstack.armsim.events import EventPublisher
from devstack.armsim.faults import Faults
from devstack.armsim.galleries import GalleryHandlers
from devstack.armsim.gallery_common import GalleryResourceHandlers
from devstack.armsim.identity import IdentityService, Principal
from devstack.armsim.locations import LOCATIONS_PATH, list_locations
from devstack.armsim.locks import LockRegistry, parse_lock_path
from devstack.armsim.paging import Pager
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.resources import PlainHandlers
from devstack.armsim.sources import SourceResolver, VhdInspector
from devstack.armsim.stats import Stats
from devstack.armsim.store import Store
from devstack.armsim.tenants import (
    SUBSCRIPTION_API_VERSIONS,
    Directory,
    linked_authorization_failed,
    linked_resource_ids,
    read_action,
    subscription_of,
    wrong_tenant,
)
from devstack.armsim.throttling import ThrottleOverride, Throttler
from devstack.armsim.versions import VersionHandlers
from devstack.armsim.vhdsource import BlobVhdInspector

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]

OPERATION_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)"
    r"/(?P<segment>capsOperations|DiskOperations|operations)/(?P<id>[^/]+)$",
    re.IGNORECASE,
)
#: Operation status paths by segment: (resource type whose api-versions apply, throttling group).
OPERATION_ROUTES: dict[str, tuple[str, str]] = {
    "capsoperations": (ids.VERSION, "GetOperationStatus"),
    "diskoperations": (ids.DISK, "GetOperation"),
    "operations": (ids.MANAGED_IMAGE, "GetOperation"),
}
SUBSCRIPTION_PATH = re.compile(r"^/subscriptions(?:/(?P<sub>[^/]+))?/?$", re.IGNORECASE)
SUBSCRIPTION_LIST_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/(?P<ns>Microsoft\.Compute)/(?P<type>[A-Za-z]+)$",
    re.IGNORECASE,
)
GALLERY_TYPES = (ids.GALLERY, ids.IMAGE, ids.VERSION)
DISK_TYPES = (ids.SNAPSHOT, ids.DISK)
GROUP_NAMES: dict[str, tuple[str, str, str, str]] = {
    # type: (create/update, get, list, delete)
    ids.VERSION: (
        "CreateUpdateGalleryImageVersion",
        "GetGalleryImageVersion",
        "ListGalleryImageVersion",
        "DeleteGalleryImageVersion",
    ),
    ids.IMAGE: (
        "CreateUpdateGalleryImage",
        "GetGalleryImage",
        "ListGalleryImage",
        "DeleteGalleryImage",
    ),
    ids.GALLERY: (
        "CreateUpdateGallery",
        "GetGallery",
        "ListGalleryInResourceGroup",
        "DeleteGallery",
    ),
    ids.SNAPSHOT: ("CreateUpdateDisks", "LowCostGet", "HighCostGet", "DeleteDisks"),
    ids.DISK: ("CreateUpdateDisks", "LowCostGet", "HighCostGet", "DeleteDisks"),
    ids.MANAGED_IMAGE: ("CreateImages", "GetImages", "HighCostGet", "DeleteImages"),
    ids.VM: ("PutVM", "LowCostGet", "HighCostGet", "DeleteVM"),
    ids.VMSS: ("PutVM", "LowCostGet", "HighCostGet", "DeleteVM"),
}


def operation_group(
    method: str, resource_type: str, is_collection: bool, body: Any = None
) -> str | None:
    names = GROUP_NAMES.get(resource_type)
    if names is None:
        return None
    if method == "PUT" and resource_type == ids.SNAPSHOT and isinstance(body, dict):
        creation = (body.get("properties") or {}).get("creationData") or {}
        if creation.get("sourceResourceId"):  # a copy hydrates: its own bucket (recorded)
            return "HighCostSnapshotCreateHydrate"
    if method in ("PUT", "PATCH"):
        return names[0]
    if method == "DELETE":
        return names[3]
    return names[2] if is_collection else names[1]


def supported_versions(resource_type: str) -> tuple[str, ...] | None:
    if resource_type in GALLERY_TYPES:
        return GALLERY_API_VERSIONS
    if resource_type in DISK_TYPES:
        return DISK_API_VERSIONS
    if resource_type.startswith("Microsoft.Compute/"):
        return COMPUTE_API_VERSIONS
    return None  # other providers (storage): any api-version


class Simulator:
    """Holds the state and serves ARM, identity and admin requests."""

    def __init__(self, config: SimConfig, vhd_inspector: VhdInspector | None = None) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.store = Store(config.data_dir)
        self.clock = SimClock(config.speed, float(self.store.setting("clockOffset", 0.0)))
        self.stats = Stats()
        self.throttler = Throttler(config.throttle_retry_after)
        self._faults = Faults.from_json(self.store.setting("faults", {}))
        self._apply_throttle_faults()
        self.events = EventPublisher(self.store, self.stats)
        self.identity = IdentityService(self.store, config.identity_header, config.data_dir)
        self.directory = Directory(self.store)
        self.entra = EntraService(self.identity, self.directory, config.base_url)
        if vhd_inspector is None and config.blob_connection_string:
            vhd_inspector = BlobVhdInspector(config.blob_connection_string)
        self.pager = Pager(config.base_url, int(self.store.setting("pageSize", config.page_size)))
        self.context = SimContext(
            config=config,
            store=self.store,
            clock=self.clock,
            stats=self.stats,
            events=self.events,
            resolver=SourceResolver(self.store, vhd_inspector),
            pager=self.pager,
            current_faults=lambda: self.faults,
        )
        self.galleries = GalleryHandlers(self.context)
        self.versions = VersionHandlers(self.context)
        self.gallery_handlers: dict[str, GalleryResourceHandlers] = {
            ids.GALLERY: self.galleries,
            ids.IMAGE: DefinitionHandlers(self.context),
            ids.VERSION: self.versions,
        }
        self.plain = PlainHandlers(self.context)
        self.locks = LockRegistry(
            self.store, self.pager, lambda key: self.store.get(key) is not None
        )
        self._rng = random.Random(int(self.store.setting("seed", 0)) or None)

    # ---------------------------------------------------------------- state helpers
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        self._faults = faults
        self.store.set_setting("faults", faults.to_json())
        self._apply_throttle_faults()

    def _apply_throttle_faults(self) -> None:
        overrides = {
            group: ThrottleOverride(int(spec["limit"]), float(spec["windowSeconds"]))
            for group, spec in self._faults.throttle.items()
        }
        self.throttler.configure(overrides, self._faults.throttle_retry_after)

    def advance_clock(self, seconds: float) -> float:
        offset = self.clock.advance(seconds)
        self.store.set_setting("clockOffset", offset)
        return offset

    def reset(self) -> None:
        self.store.reset()
        self.clock.reset()
        self._faults = Faults()
        self._apply_throttle_faults()
        self.throttler.reset()
        self.stats.reset()
        self.pager.size = self.config.page_size

    def close(self) -> None:
        self.events.close()
        self.store.close()

    def settle(self) -> None:
        """Finalize every operation that has reached a terminal state."""
        for operation in self.store.pending_operations():
            state = operations.evaluate(operation, self.clock)
            if state.terminal:
                self._finalize(operation, state)

    def _finalize(self, operation: JsonObject, state: operations.OperationState) -> None:
        stored = self.store.get(operation["resourceKey"])
        if operation["kind"] == "delete":
            if stored is not None and state.status == operations.SUCCEEDED:
                if stored.meta.get(softdelete.SOFT_DELETE_MARK):  # kept 7 days for a restore
                    softdelete.retire(self.store, stored, self.clock.now())
                else:
                    self.store.delete(stored.key)
        elif stored is not None and stored.meta.get("operationId") == operation["id"]:
            stored.meta["provisioningState"] = state.status
            stored.meta["operationId"] = None
            self.store.put(stored)
        operation["finalized"] = True
        operation["status"] = state.status
        operation["error"] = state.error
        self.store.save_operation(operation)
        logger.info(
            "operation %s (%s %s) finished: %s",
            operation["id"],
            operation["kind"],
            operation["resourceId"],
            state.status,
        )

    # ---------------------------------------------------------------- ARM dispatch
    def handle_arm(self, request: Request) -> Reply:
        """Serve one ARM request (auth, api-version, faults, throttling, then the handler)."""
        common = {
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-correlation-request-id": request.headers.get("x-ms-client-request-id")
            or str(uuid.uuid4()),
            "Cache-Control": "no-cache",
        }
        try:
            reply = self._handle_arm(request, common)
        except ArmError as error:
            reply = Reply(error.status, error.body(), {**error.headers})
        reply.headers = {**common, **reply.headers}
        return reply

    def _handle_arm(self, request: Request, common: dict[str, str]) -> Reply:
        principal = self.identity.authenticate(request.headers.get("authorization"))
        self._check_tenant(principal, request.path)
        special = self._authorization_routes(request, principal)
        if special is not None:
            with self.lock:
                return special()
        route = self._route(request)
        resource_type, is_collection, group, handler = route
        versions = supported_versions(resource_type)
        if versions is not None:
            if not request.api_version:
                raise missing_api_version()
            if request.api_version not in versions:
                raise bad_api_version(request.api_version, versions)
        if request.method in ("PUT", "PATCH", "DELETE", "POST") and not is_collection:
            self._check_linked(request, principal, resource_type)
            with self.lock:
                self.locks.check_write(request.method, request.path.rstrip("/"))
        if group is not None:
            self.stats.count_call(group)
            if self._faults.latency_ms:
                time.sleep(self._faults.latency_ms / 1000)
            if self._faults.should_fail(group, self._rng):
                self.stats.count_injected(group)
                raise internal_error()
            try:
                common["x-ms-ratelimit-remaining-resource"] = self.throttler.acquire(group)
            except ArmError:
                self.stats.count_throttle(group)
                raise
        with self.lock:
            self.settle()
            reply: Reply = handler()
            return reply

    # ---------------------------------------------------------------- tenants and locks
    def _check_tenant(self, principal: Principal, path: str) -> None:
        """A token is good only for subscriptions of its own tenant (ARM's 401 otherwise)."""
        subscription = subscription_of(path)
        if subscription is None:
            return
        tenant = self.directory.tenant_of(subscription)
        if tenant.lower() != principal.tenant_id.lower():
            raise wrong_tenant(principal.tenant_id, tenant)

    def _check_linked(self, request: Request, principal: Principal, resource_type: str) -> None:
        """Resources the body links to in another tenant need an auxiliary token of that
        tenant for the same application (``x-ms-authorization-auxiliary``), else 403."""
        auxiliary = self.identity.auxiliary(request.headers.get("x-ms-authorization-auxiliary"))
        usable = {
            aux.tenant_id.lower()
            for aux in auxiliary
            if aux.app_id.lower() == principal.app_id.lower()
        }
        for linked in linked_resource_ids(resource_type, request.body):
            subscription = subscription_of(linked)
            if subscription is None:
                continue
            tenant = self.directory.tenant_of(subscription).lower()
            if tenant == principal.tenant_id.lower() or tenant in usable:
                continue
            raise linked_authorization_failed(
                read_action(linked), request.path, principal.tenant_id, subscription
            )

    def _authorization_routes(
        self, request: Request, principal: Principal
    ) -> Callable[[], Reply] | None:
        """The Subscriptions API and the management-lock API (served by ARM itself)."""
        lock_path = parse_lock_path(request.path)
        if lock_path is not None:
            scope, name = lock_path
            return lambda: self.locks.handle(request, scope, name)
        match = SUBSCRIPTION_PATH.match(request.path)
        if match is None:
            return None
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed here")
        if not request.api_version:
            raise missing_api_version()
        if request.api_version not in SUBSCRIPTION_API_VERSIONS:
            raise bad_api_version(request.api_version, SUBSCRIPTION_API_VERSIONS)
        subscription = match.group("sub")
        if subscription:
            return lambda: Reply(200, self.directory.subscription_body(subscription))
        return lambda: self.pager.page(
            request, self.directory.subscriptions_of(principal.tenant_id)
        )

    def _route(self, request: Request) -> tuple[str, bool, str | None, Any]:
        method = request.method
        locations = LOCATIONS_PATH.match(request.path)
        if locations and method == "GET":  # ARM's own list: no Compute group, its api-versions
            sub = locations.group("sub")
            return (
                "Microsoft.Resources/locations",
                True,
                None,
                lambda: list_locations(request, sub, self.stats),
            )
        match = OPERATION_PATH.match(request.path)
        if match and method == "GET":
            op_id = match.group("id")
            status_type, status_group = OPERATION_ROUTES[match.group("segment").lower()]
            return (
                status_type,
                False,
                status_group,
                lambda: self._operation_status(request, op_id),
            )
        match = SUBSCRIPTION_LIST_PATH.match(request.path)
        if match and method == "GET":
            type_key = f"microsoft.compute/{match.group('type').lower()}"
            canonical = ids.KNOWN_TYPES.get(type_key)
            if canonical == ids.GALLERY:  # galleries.list(): rendered like the RG listing
                return (
                    canonical,
                    True,
                    operation_group("GET", canonical, True),
                    lambda: self._list_galleries_in_subscription(request, match.group("sub")),
                )
            if canonical is not None and canonical != ids.STORAGE_ACCOUNT:
                return (
                    canonical,
                    True,
                    operation_group("GET", canonical, True),
                    lambda: self.plain.list_subscription(request, match.group("sub"), canonical),
                )
        ref = ids.parse_resource_path(request.path)
        if ref is None:
            raise ArmError(
                404,
                "InvalidResourceType",
                f"The resource type could not be found for path '{request.path}'.",
            )
        group = operation_group(method, ref.type, ref.is_collection, request.body)
        handlers = self.gallery_handlers.get(ref.type, self.plain)
        if ref.is_collection:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
            return ref.type, True, group, lambda: handlers.list(request, ref)
        if method == "GET":
            return ref.type, False, group, lambda: handlers.get(request, ref)
        if method == "DELETE":
            return ref.type, False, group, lambda: handlers.delete(request, ref)
        if method == "PUT":
            return ref.type, False, group, lambda: handlers.put(request, ref)
        if method == "PATCH" and ref.type in GALLERY_TYPES:
            gallery_handlers = self.gallery_handlers[ref.type]
            return ref.type, False, group, lambda: gallery_handlers.patch(request, ref)
        if method == "PATCH" and ref.type in (*DISK_TYPES, ids.MANAGED_IMAGE):
            return ref.type, False, group, lambda: self.plain.patch(request, ref)
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on {ref.type}")

    def _list_galleries_in_subscription(self, request: Request, subscription: str) -> Reply:
        prefix = f"/subscriptions/{subscription}/".lower()
        items = [
            self.galleries.render(item)
            for item in self.store.of_type(ids.GALLERY)
            if item.key.startswith(prefix)
        ]
        return self.context.page(request, items)

    def _operation_status(self, request: Request, op_id: str) -> Reply:
        operation = self.store.get_operation(op_id)
        if operation is None:
            raise ArmError(404, "ResourceNotFound", f"The operation '{op_id}' was not found.")
        state = operations.evaluate(operation, self.clock)
        output = self.plain.operation_output(operation) if state.terminal else None
        body = operations.status_body(operation, state, output)
        if request.query.get("monitor", "").lower() == "true":
            if not state.terminal:
                return Reply(202, None, self.context.async_headers(operation, delete=True))
            if operation.get("family", "gallery") != "gallery":
                # DiskRP/CRP monitor URLs end with the result itself: the resource, or nothing.
                return Reply(200, output)
            return Reply(200, body)
        headers: dict[str, str] = {}
        if not state.terminal and self.config.lro_retry_after > 0:
            headers["Retry-After"] = str(self.config.lro_retry_after)
        return Reply(200, body, headers)
