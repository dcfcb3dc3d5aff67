"""The region names of a subscription's cloud, from ARM: a :class:`RegionCatalog` adapter.

``GET /subscriptions/{id}/locations`` through azure-mgmt-resource-subscriptions'
``SubscriptionClient`` (api-version 2022-12-01), the physical regions of the answer
(``metadata.regionType: Physical``; logical names such as ``europe`` are no place to publish
to). Each subscription's list is cached for :data:`CACHE_SECONDS` per process. When ARM cannot
be asked (no credential, a network or service error, an empty answer) the last list stays in
use, or the built-in one (:data:`shared.contract.regions.PUBLIC_REGIONS`) if there was none;
that answer is kept for :data:`RETRY_SECONDS` only, so ARM is asked again soon but not on every
request. Validation therefore never fails because ARM is away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.mgmt.resource.subscriptions import SubscriptionClient

from shared.contract.regions import PUBLIC_REGIONS
from shared.core.settings import Settings

logger = logging.getLogger(__name__)

#: How long a subscription's list is trusted (regions come rarely; a day-old list is fine).
CACHE_SECONDS: Final = 6 * 3600.0
#: How long a fallback answer (ARM unavailable) is used before ARM is asked again.
RETRY_SECONDS: Final = 60.0
#: Network bounds: a validation never waits long on ARM.
CONNECTION_TIMEOUT: Final = 5
READ_TIMEOUT: Final = 15
RETRY_TOTAL: Final = 1

#: Lists the locations of one subscription: id -> the items of the answer (SDK models).
LocationLister = Callable[[str], list[Any]]


@dataclass(frozen=True)
class _Cached:
    names: frozenset[str]
    expires: float
    live: bool


def physical_region_names(locations: list[Any]) -> frozenset[str]:
    """The names of the physical regions in a locations answer (lower case)."""
    names = set()
    for location in locations:
        metadata = getattr(location, "metadata", None)
        region_type = getattr(metadata, "region_type", None) if metadata is not None else None
        name = getattr(location, "name", None)
        if name and (region_type is None or str(region_type).lower() == "physical"):
            names.add(str(name).lower())
    return frozenset(names)


def subscription_lister(
    settings: Settings, credential: Callable[[], TokenCredential]
) -> LocationLister:
    """``SubscriptionClient.subscriptions.list_locations`` against the configured ARM endpoint
    (the client is built on first use, with bounded timeouts and one retry)."""
    clients: list[SubscriptionClient] = []

    def list_locations(subscription_id: str) -> list[Any]:
        if not clients:
            options: dict[str, Any] = {
                "base_url": settings.arm_endpoint,
                "credential_scopes": [f"{settings.arm_audience}/.default"],
                "connection_timeout": CONNECTION_TIMEOUT,
                "read_timeout": READ_TIMEOUT,
                "retry_total": RETRY_TOTAL,
            }
            if settings.arm_ca_bundle:
                options["connection_verify"] = settings.arm_ca_bundle
            clients.append(SubscriptionClient(credential(), **options))
        return list(clients[0].subscriptions.list_locations(subscription_id))

    return list_locations


class ArmRegionCatalog:
    """Region names per subscription from ARM, cached, with the built-in list as fallback."""

    def __init__(
        self,
        lister: LocationLister,
        *,
        cache_seconds: float = CACHE_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lister = lister
        self._cache_seconds = cache_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: Callable[[], TokenCredential]
    ) -> ArmRegionCatalog:
        return cls(subscription_lister(settings, credential))

    def known_regions(self, subscription_id: str | None) -> frozenset[str]:
        """The physical regions of the subscription's cloud (the built-in list without one)."""
        if not subscription_id:
            return PUBLIC_REGIONS
        key = subscription_id.lower()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.expires > self._clock():
                return cached.names
            names = self._fetch(subscription_id)
            if names:
                self._cache[key] = _Cached(names, self._clock() + self._cache_seconds, live=True)
                return names
            fallback = cached.names if cached is not None and cached.live else PUBLIC_REGIONS
            self._cache[key] = _Cached(
                fallback, self._clock() + self._retry_seconds, live=bool(cached and cached.live)
            )
            return fallback

    def _fetch(self, subscription_id: str) -> frozenset[str]:
        """ARM's answer, or an empty set when ARM cannot be asked (logged, never raised)."""
        try:
            return physical_region_names(self._lister(subscription_id))
        except (AzureError, OSError, ValueError) as error:
            logger.warning(
                "regions: the locations of subscription %s could not be listed (%s); "
                "validating against the last known or the built-in region list",
                subscription_id,
                type(error).__name__,
                extra={"subscription": subscription_id},
            )
            return frozenset()
