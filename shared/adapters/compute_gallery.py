"""``GalleryPort`` over azure-mgmt-compute 39.x (api-version 2026-03-03).

Sources in another tenant's subscription (``GALLERY_SOURCE_TENANTS``): reads of such a
subscription use the cross-tenant app registration's credential in that tenant, and a version PUT
whose sources live there goes out with ``x-ms-authorization-auxiliary`` (azure-mgmt-core's
``AuxiliaryAuthenticationPolicy``, one token per source tenant, at most three) and the app
registration's token in the app's own tenant as the primary one (:class:`ComputeClients`).

Long-running operations are started with ``polling=False``: the PUT or DELETE is sent, its first
response parsed, and nothing polls in the background; the tracker follows up later with GETs.
Bodies go out as JSON bytes, so the wire shape is exactly :mod:`shared.builds.version_body`.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.core.policies import AuxiliaryAuthenticationPolicy

from shared.adapters.azure_errors import azure_call
from shared.adapters.identity import CrossTenantIdentity
from shared.builds.gallery import DefinitionRef, VersionRef, VersionStatus
from shared.contract.model import DefinitionSpec
from shared.core.errors import NotFoundError, PermanentError, TransientError
from shared.core.settings import Settings

logger = logging.getLogger(__name__)

#: Per-request network timeouts (seconds) so that no call can hang a function.
CONNECTION_TIMEOUT = 10
READ_TIMEOUT = 60
DEFINITION_READY_TIMEOUT = 60.0
#: How long "this definition exists" is trusted without asking ARM again.
DEFINITION_CACHE_SECONDS = 300.0
#: ARM's code for "this resource does not exist" (its parent does).
RESOURCE_NOT_FOUND = "ResourceNotFound"
#: "The auxiliary header can hold up to three auxiliary tokens" (Authenticate requests across
#: tenants, learn.microsoft.com).
MAX_AUXILIARY_TENANTS = 3


def build_compute_client(
    settings: Settings,
    subscription_id: str,
    credential: TokenCredential,
    *,
    auxiliary_credentials: Sequence[TokenCredential] = (),
    **options: Any,
) -> ComputeManagementClient:
    """The client for one subscription, pointed at the configured ARM endpoint.

    ``auxiliary_credentials``: tokens of other tenants sent in ``x-ms-authorization-auxiliary``
    on every request of this client (cross-tenant sources)."""
    if auxiliary_credentials:
        scope = f"{settings.arm_audience}/.default"
        policy = AuxiliaryAuthenticationPolicy(list(auxiliary_credentials), scope)
        options["per_retry_policies"] = [*options.get("per_retry_policies", []), policy]
    kwargs: dict[str, Any] = {
        "base_url": settings.arm_endpoint,
        "credential_scopes": [f"{settings.arm_audience}/.default"],
        "connection_timeout": CONNECTION_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        **options,
    }
    if settings.arm_ca_bundle:
        kwargs["connection_verify"] = settings.arm_ca_bundle
    return ComputeManagementClient(credential, subscription_id, **kwargs)


#: Builds a client for a subscription with a primary credential and auxiliary ones.
ClientWithCredentials = Callable[
    [str, TokenCredential, Sequence[TokenCredential]], ComputeManagementClient
]


class ComputeClients:
    """One ``ComputeManagementClient`` per subscription, built on first use (thread-safe).

    Every compute adapter (gallery, snapshots, lifecycle inventory) takes one of these, so a
    process keeps one client, and one connection pool, per subscription. With ``cross_tenant``
    (and ``client_with`` to build clients with other credentials), a subscription of another
    tenant is read with the app registration's credential in that tenant, and
    :meth:`for_sources` gives the client that writes a resource whose sources are in other
    tenants: the app registration's primary token and one auxiliary token per source tenant.
    """

    def __init__(
        self,
        client_for_subscription: Callable[[str], ComputeManagementClient],
        *,
        cross_tenant: CrossTenantIdentity | None = None,
        client_with: ClientWithCredentials | None = None,
    ) -> None:
        self._client_for = client_for_subscription
        self._cross_tenant = cross_tenant
        self._client_with = client_with
        self._clients: dict[tuple[str, ...], ComputeManagementClient] = {}
        self._lock = threading.Lock()

    def _cached(
        self, key: tuple[str, ...], make: Callable[[], ComputeManagementClient]
    ) -> ComputeManagementClient:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make()
            return client

    def __call__(self, subscription_id: str) -> ComputeManagementClient:
        cross = self._cross_tenant
        if (
            cross is not None
            and self._client_with is not None
            and cross.is_foreign(subscription_id)
        ):
            tenant = cross.tenant_of(subscription_id)
            build = self._client_with
            return self._cached(
                (subscription_id.lower(), tenant),
                lambda: build(subscription_id, cross.credential(tenant), ()),
            )
        return self._cached((subscription_id.lower(),), lambda: self._client_for(subscription_id))

    def for_sources(
        self, subscription_id: str, source_ids: Iterable[str]
    ) -> ComputeManagementClient:
        """The client for a write in ``subscription_id`` that links ``source_ids``."""
        cross = self._cross_tenant
        if cross is None or self._client_with is None:
            return self(subscription_id)
        own = cross.tenant_of(subscription_id)
        tenants = sorted({cross.tenant_of(s) for s in _subscriptions_of(source_ids)} - {own})
        if not tenants:
            return self(subscription_id)
        if len(tenants) > MAX_AUXILIARY_TENANTS:
            raise PermanentError(
                f"the sources are in {len(tenants)} other tenants; Azure accepts at most "
                f"{MAX_AUXILIARY_TENANTS} auxiliary tokens in one request",
                reason="TooManySourceTenants",
            )
        build = self._client_with
        return self._cached(
            (subscription_id.lower(), own, *tenants),
            lambda: build(
                subscription_id,
                cross.credential(own),
                [cross.credential(t) for t in tenants],
            ),
        )


def _subscriptions_of(resource_ids: Iterable[str]) -> list[str]:
    found: list[str] = []
    for resource_id in resource_ids:
        parts = [p for p in resource_id.split("/") if p]
        if len(parts) >= 2 and parts[0].lower() == "subscriptions":
            found.append(parts[1])
    return found


def linked_source_ids(body: Mapping[str, Any]) -> list[str]:
    """The resource ids a version body's ``storageProfile`` names (sources, storage accounts)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in ("id", "virtualMachineId", "storageAccountId") and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk((body.get("properties") or {}).get("storageProfile") or {})
    return found


def _wire(model: Any) -> dict[str, Any]:
    wire: dict[str, Any] = model.as_dict() if hasattr(model, "as_dict") else dict(model)
    return wire


def _json_bytes(body: Mapping[str, Any]) -> io.BytesIO:
    return io.BytesIO(json.dumps(body).encode("utf-8"))


class ComputeGallery:
    """:class:`shared.builds.gallery.GalleryPort` backed by ``ComputeManagementClient``
    instances."""

    def __init__(
        self,
        client_for_subscription: Callable[[str], ComputeManagementClient],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = (
            client_for_subscription
            if isinstance(client_for_subscription, ComputeClients)
            else ComputeClients(client_for_subscription)
        )
        self._sleep = sleep
        self._monotonic = time.monotonic
        self._locations: dict[tuple[str, ...], str] = {}
        self._definitions_seen: dict[tuple[str, ...], float] = {}

    def gallery_location(self, definition: DefinitionRef) -> str:
        """The gallery's location: fixed for the gallery's life, so asked once per process."""
        parts = (definition.subscription_id, definition.resource_group, definition.gallery)
        key = tuple(part.lower() for part in parts)
        cached = self._locations.get(key)
        if cached is not None:
            return cached
        client = self._client(definition.subscription_id)
        with azure_call(f"get gallery {definition.gallery}"):
            gallery = client.galleries.get(definition.resource_group, definition.gallery)
        location = self._locations[key] = str(gallery.location)
        return location

    def definition_exists(self, definition: DefinitionRef) -> bool:
        """Whether the definition exists. A "yes" is remembered for a few minutes (a definition
        deleted meanwhile makes the PUT fail with ParentResourceNotFound, a clear error)."""
        key = definition.key
        seen = self._definitions_seen.get(key)
        if seen is not None and self._monotonic() - seen < DEFINITION_CACHE_SECONDS:
            return True
        if self._lookup_definition(definition):
            self._definitions_seen[key] = self._monotonic()
            return True
        return False

    def _lookup_definition(self, definition: DefinitionRef) -> bool:
        client = self._client(definition.subscription_id)
        try:
            with azure_call(f"get definition {definition}"):
                client.gallery_images.get(
                    definition.resource_group, definition.gallery, definition.definition
                )
        except NotFoundError as exc:
            if exc.reason == RESOURCE_NOT_FOUND:
                return False
            raise
        return True

    def create_definition(
        self, definition: DefinitionRef, spec: DefinitionSpec, *, location: str
    ) -> None:
        client = self._client(definition.subscription_id)
        properties: dict[str, Any] = {
            "osType": spec.os_type,
            "osState": spec.os_state,
            "hyperVGeneration": spec.hyper_v_generation,
            "architecture": spec.architecture,
            "identifier": {"publisher": spec.publisher, "offer": spec.offer, "sku": spec.sku},
        }
        if spec.features:
            properties["features"] = [{"name": f.name, "value": f.value} for f in spec.features]
        body = {"location": location, "properties": properties}
        with azure_call(f"create definition {definition}"):
            client.gallery_images.begin_create_or_update(
                definition.resource_group,
                definition.gallery,
                definition.definition,
                _json_bytes(body),
                polling=False,
            )
        deadline = time.monotonic() + DEFINITION_READY_TIMEOUT
        while True:
            with azure_call(f"get definition {definition}"):
                image = client.gallery_images.get(
                    definition.resource_group, definition.gallery, definition.definition
                )
            state = (_wire(image).get("properties") or {}).get("provisioningState")
            if state == "Succeeded":
                return
            if state == "Failed":
                raise TransientError(f"definition {definition} failed to provision")
            if time.monotonic() >= deadline:
                raise TransientError(f"definition {definition} not ready after 60 s")
            self._sleep(1.0)

    def start_version(self, version: VersionRef, body: Mapping[str, Any]) -> VersionStatus:
        ref = version.definition
        client = self._client.for_sources(ref.subscription_id, linked_source_ids(body))
        with azure_call(f"create image version {version}"):
            poller = client.gallery_image_versions.begin_create_or_update(
                ref.resource_group,
                ref.gallery,
                ref.definition,
                version.name,
                _json_bytes(body),
                polling=False,
                # Sent once: a PUT the SDK retried after sleeping out Retry-After could land
                # after the starter's lease ran out and another starter built the version
                # (make chaos, docs/reliability.md F1). A 429 or 5xx comes back as a transient
                # error; the starter renews its lease before it sends the PUT again.
                retry_total=0,
            )
            initial = poller.result()
        return VersionStatus.from_wire(_wire(initial))

    def get_version(self, version: VersionRef) -> VersionStatus | None:
        ref = version.definition
        client = self._client(ref.subscription_id)
        try:
            with azure_call(f"get image version {version}"):
                found = client.gallery_image_versions.get(
                    ref.resource_group,
                    ref.gallery,
                    ref.definition,
                    version.name,
                    expand="ReplicationStatus",
                )
        except NotFoundError as exc:
            if exc.reason == RESOURCE_NOT_FOUND:
                return None
            raise  # e.g. ParentResourceNotFound: the definition itself is missing
        return VersionStatus.from_wire(_wire(found))

    def list_versions(self, definition: DefinitionRef) -> Iterator[VersionStatus]:
        client = self._client(definition.subscription_id)
        with azure_call(f"list image versions of {definition}"):
            pages = client.gallery_image_versions.list_by_gallery_image(
                definition.resource_group, definition.gallery, definition.definition
            )
            for item in pages:
                yield VersionStatus.from_wire(_wire(item))

    def start_delete_version(self, version: VersionRef) -> None:
        ref = version.definition
        client = self._client(ref.subscription_id)
        with azure_call(f"delete image version {version}"):
            client.gallery_image_versions.begin_delete(
                ref.resource_group, ref.gallery, ref.definition, version.name, polling=False
            )
