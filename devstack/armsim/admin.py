"""The admin API (``/admin/*``, plain HTTP or HTTPS, no token): health, stats, reset, seed
(resources, subscriptions with their tenants, app registrations), faults, clock, webhooks, config
and a token shortcut (any tenant). See docs/devstack.md."""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager
from typing import Any, Protocol

from devstack.armsim import events, ids, regions
from devstack.armsim.clock import azure_timestamp
from devstack.armsim.context import SimContext
from devstack.armsim.errors import ArmError, parent_not_found
from devstack.armsim.faults import Faults
from devstack.armsim.gallery_common import envelope, parent_key
from devstack.armsim.identity import IdentityService
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.resources import normalize_plain
from devstack.armsim.store import StoredResource
from devstack.armsim.tenants import DEFAULT_TENANT_ID, Directory, is_guid, service_principal_id
from devstack.armsim.version_bodies import normalize_version

JsonObject = dict[str, Any]


class AdminTarget(Protocol):
    """What the admin API drives: the simulator (``devstack.armsim.simulator.Simulator``)."""

    @property
    def context(self) -> SimContext: ...

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held while the state changes (ARM requests hold it too)."""

    @property
    def identity(self) -> IdentityService: ...

    @property
    def directory(self) -> Directory:
        """Subscriptions per tenant and app registrations."""

    def settle(self) -> None:
        """Finalize every operation that has reached a terminal state."""

    def reset(self) -> None:
        """Back to an empty simulator (``POST /admin/reset``)."""

    def set_faults(self, faults: Faults) -> None: ...

    def advance_clock(self, seconds: float) -> float: ...


def handle_admin(sim: AdminTarget, request: Request) -> Reply:
    try:
        return _dispatch(sim, request)
    except ArmError as error:
        return Reply(error.status, error.body(), error.headers)


def _dispatch(sim: AdminTarget, request: Request) -> Reply:
    context = sim.context
    path = request.path.rstrip("/")
    method = request.method
    body = request.body if isinstance(request.body, dict) else {}
    if path == "/admin/health" and method == "GET":
        return Reply(200, {"status": "ok", "speed": context.config.speed})
    with sim.lock:
        if path == "/admin/stats" and method == "GET":
            sim.settle()
            return Reply(
                200, {**context.stats.snapshot(), "eventsPending": context.events.pending()}
            )
        if path == "/admin/reset" and method == "POST":
            sim.reset()
            return Reply(200, {"reset": True})
        if path == "/admin/seed" and method == "POST":
            subscriptions = [
                sim.directory.declare_subscription(item) for item in body.get("subscriptions", [])
            ]
            applications = [
                sim.directory.declare_application(item) for item in body.get("applications", [])
            ]
            items = body.get("resources", [body] if "id" in body else [])
            seeded = [seed_resource(context, item) for item in items]
            answer: JsonObject = {"value": seeded}
            if subscriptions:
                answer["subscriptions"] = subscriptions
            if applications:
                answer["applications"] = applications
            return Reply(200, answer)
        if path == "/admin/faults":
            if method == "GET":
                return Reply(200, context.faults.to_json())
            if method == "POST":
                sim.set_faults(Faults.from_json(body))
                return Reply(200, context.faults.to_json())
            if method == "DELETE":
                sim.set_faults(Faults())
                return Reply(200, context.faults.to_json())
        if path == "/admin/clock":
            if method == "POST":
                try:
                    seconds = float(body.get("advanceSeconds", 0))
                    sim.advance_clock(seconds)
                except (TypeError, ValueError) as exc:
                    raise ArmError(400, "InvalidClock", str(exc)) from exc
            return Reply(200, _clock(context))
        if path == "/admin/webhooks":
            if method == "POST":
                webhook = events.validate_webhook(body)
                context.store.add_webhook(webhook["id"], webhook)
                return Reply(201, webhook)
            if method == "GET":
                return Reply(200, {"value": context.store.webhooks()})
        if path.startswith("/admin/webhooks/") and method == "DELETE":
            removed = context.store.delete_webhook(path.rsplit("/", 1)[1])
            return Reply(200 if removed else 404, {"deleted": removed})
        if path == "/admin/config" and method == "POST":
            if "pageSize" in body:
                size = int(body["pageSize"])
                if size < 1:
                    raise ArmError(400, "InvalidConfig", "pageSize must be at least 1")
                context.pager.size = size
                context.store.set_setting("pageSize", size)
            return Reply(200, {"pageSize": context.pager.size})
        if path == "/admin/token" and method == "POST":
            return Reply(200, _admin_token(sim, body))
    raise ArmError(404, "NotFound", f"no admin route {method} {path}")


def _admin_token(sim: AdminTarget, body: JsonObject) -> JsonObject:
    """``{"resource"?, "tenantId"?, "clientId"?}`` -> a token without any handshake. Without a
    client id it is the managed identity's (default tenant); with one, that application's
    service principal in ``tenantId`` (the application must have one there)."""
    resource = str(body.get("resource") or "https://management.azure.com")
    tenant = str(body.get("tenantId") or DEFAULT_TENANT_ID)
    if not is_guid(tenant):
        raise ArmError(400, "InvalidTenant", f"tenantId must be a GUID, got {tenant!r}")
    client_id = body.get("clientId")
    if client_id:
        app = sim.directory.application(str(client_id))
        if app is None or not app.in_tenant(tenant):
            raise ArmError(
                400,
                "UnknownApplication",
                f"application {client_id} has no service principal "
                f'in tenant {tenant} (declare it with POST /admin/seed {{"applications"}})',
            )
        token = sim.identity.mint(
            resource,
            tenant_id=tenant,
            app_id=app.app_id,
            object_id=service_principal_id(app.app_id, tenant),
        )
    else:
        token = sim.identity.mint(resource, tenant_id=tenant)
    return {"access_token": token, "token_type": "Bearer", "tenantId": tenant}


def _clock(context: SimContext) -> JsonObject:
    return {
        "now": azure_timestamp(context.clock.now()),
        "offsetSeconds": context.clock.offset,
        "speed": context.clock.speed,
    }


def seed_resource(context: SimContext, item: JsonObject) -> JsonObject:
    """Create a resource directly, skipping the API's rules (e.g. an end of life in the past)."""
    resource_id = str(item.get("id", ""))
    ref = ids.parse_resource_id(resource_id)
    if ref is None:
        raise ArmError(400, "InvalidSeed", f"not a resource id the simulator knows: {resource_id}")
    parent = ref.parent()
    if parent is not None and context.store.get(parent.key) is None:
        raise parent_not_found(parent.name_path)
    if not item.get("location"):
        raise ArmError(400, "InvalidSeed", f"{resource_id}: location is required")
    if not regions.is_known(str(item["location"])):  # seeds skip rules, never the region list
        raise ArmError(400, "InvalidSeed", f"{resource_id}: unknown region {item['location']!r}")
    props = copy.deepcopy(item.get("properties") or {})
    state = str(props.pop("provisioningState", "Succeeded"))
    meta: JsonObject = {"provisioningState": state, "operationId": None}
    if ref.type == ids.GALLERY:
        props["identifier"] = {"uniqueName": f"{ref.subscription}-{ref.name.upper()}"}
        body = envelope(ref, item, props)
    elif ref.type == ids.IMAGE:
        ordered: JsonObject = {"hyperVGeneration": props.pop("hyperVGeneration", "V1")}
        ordered.update(props)
        ordered.setdefault("architecture", "x64")
        body = envelope(ref, item, ordered)
    elif ref.type == ids.VERSION:
        storage = props.get("storageProfile") or {}
        os_size = int((storage.get("osDiskImage") or {}).get("sizeInGB") or 30)
        data = {
            str(d.get("lun")): int(d.get("sizeInGB") or 30)
            for d in storage.get("dataDiskImages") or []
        }
        keys = [
            str(s).lower()
            for s in (
                (storage.get("source") or {}).get("id"),
                ((storage.get("osDiskImage") or {}).get("source") or {}).get("id"),
                ((storage.get("osDiskImage") or {}).get("source") or {}).get("uri"),
            )
            if s
        ]
        normalized = normalize_version(
            props, str(item["location"]), None, azure_timestamp(context.clock.now())
        )
        body = envelope(ref, item, normalized)
        meta.update({"sizes": {"os": os_size, "data": data}, "sourceKeys": keys})
    else:
        body = normalize_plain(ref, item, context)
    stored = StoredResource(
        key=ref.key, type=ref.type, parent=parent_key(ref), body=body, meta=meta
    )
    context.store.put(stored)
    return body
