"""Management locks over azure-mgmt-resource-locks 1.0.0 (``ManagementLockClient``, api-version
2020-05-01): :class:`shared.lifecycle.locks.LockReader`.

One ``ManagementLocks_ListAtResourceGroupLevel`` per resource group
(``GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Authorization/locks``): the
group's own locks, those of every resource in it (galleries, definitions, versions) and those it
inherits from the subscription, paged by ``nextLink``. The locks client moved out of
azure-mgmt-resource (whose 26.x wheel holds only ``azure.mgmt.resource.resources``) into its own
package; it shares azure-mgmt-core's pipeline with the compute clients, so the lifecycle's
:class:`~shared.adapters.gallery_inventory.ArmCallCounter`, the endpoint, the CA bundle and the
timeouts are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.resource.locks import ManagementLockClient

from shared.adapters.azure_errors import azure_call
from shared.adapters.compute_gallery import CONNECTION_TIMEOUT, READ_TIMEOUT
from shared.core.settings import Settings
from shared.lifecycle.locks import LockFacts


def build_lock_client(
    settings: Settings, subscription_id: str, credential: TokenCredential, **options: Any
) -> ManagementLockClient:
    """The locks client for one subscription, pointed at the configured ARM endpoint."""
    kwargs: dict[str, Any] = {
        "base_url": settings.arm_endpoint,
        "credential_scopes": [f"{settings.arm_audience}/.default"],
        "connection_timeout": CONNECTION_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        **options,
    }
    if settings.arm_ca_bundle:
        kwargs["connection_verify"] = settings.arm_ca_bundle
    return ManagementLockClient(credential, subscription_id, **kwargs)


class ArmLockReader:
    """:class:`shared.lifecycle.locks.LockReader`: one client per subscription (thread-safe)."""

    def __init__(self, client_for_subscription: Callable[[str], ManagementLockClient]) -> None:
        self._client_for = client_for_subscription
        self._clients: dict[str, ManagementLockClient] = {}
        self._lock = threading.Lock()

    def _client(self, subscription_id: str) -> ManagementLockClient:
        with self._lock:
            client = self._clients.get(subscription_id.lower())
            if client is None:
                client = self._clients[subscription_id.lower()] = self._client_for(subscription_id)
            return client

    def locks(self, subscription_id: str, resource_group: str) -> Iterator[LockFacts]:
        client = self._client(subscription_id)
        with azure_call(f"list management locks of {subscription_id}/{resource_group}"):
            for lock in client.management_locks.list_at_resource_group_level(resource_group):
                level = getattr(lock.level, "value", lock.level)
                if lock.id and level:
                    yield LockFacts(id=str(lock.id), level=str(level))


def arm_lock_reader(
    settings: Settings, credential: Callable[[], TokenCredential], **client_options: Any
) -> ArmLockReader:
    """The lock reader for a lifecycle run (``client_options``: e.g. the call counter policy)."""
    return ArmLockReader(
        lambda sub: build_lock_client(settings, sub, credential(), **client_options)
    )
