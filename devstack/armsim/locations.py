"""``GET /subscriptions/{id}/locations``: the regions of the cloud, as ARM lists them.

azure-mgmt-resource-subscriptions' ``SubscriptionClient.subscriptions.list_locations`` (and the
older azure-mgmt-resource ``SubscriptionClient``) send this with api-version 2022-12-01; the
body is ``{"value": [...]}`` without ``nextLink``, each item ``{id, name, type: "Region",
displayName, regionalDisplayName, metadata: {regionType, regionCategory, geography, ...}}``
(:func:`devstack.armsim.regions.locations_body`). The list is not a Compute call: ARM serves
it, so there is no ``x-ms-ratelimit-remaining-resource`` header and an unknown api-version gets
ARM's ``InvalidApiVersionParameter``.
"""

from __future__ import annotations

import re
from typing import Final

from devstack.armsim.errors import missing_api_version, resources_api_version
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.regions import locations_body
from devstack.armsim.stats import Stats

LOCATIONS_PATH: Final = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/locations/?$", re.IGNORECASE)
#: The operation group the admin stats count these calls under.
LOCATIONS_GROUP: Final = "ListLocations"
#: Microsoft.Resources api-versions, as ARM lists them in its InvalidApiVersionParameter error
#: (ansible-collections/azure#1739, azure-cli#28038), plus 2024-11-01 (azure-cli 2.85, 2026).
RESOURCES_API_VERSIONS: Final[tuple[str, ...]] = (
    "2024-11-01",
    "2024-08-01",
    "2024-06-01-preview",
    "2024-03-01",
    "2023-07-01",
    "2023-07-01-preview",
    "2023-03-01-preview",
    "2022-12-01",
    "2022-11-01-preview",
    "2022-09-01",
    "2022-06-01",
    "2022-05-01",
    "2022-03-01-preview",
    "2022-01-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-09-01",
    "2020-08-01",
    "2020-07-01",
    "2020-06-01",
    "2020-05-01",
    "2020-01-01",
    "2019-11-01",
    "2019-10-01",
    "2019-09-01",
    "2019-08-01",
    "2019-07-01",
    "2019-06-01",
    "2019-05-10",
    "2019-05-01",
    "2019-03-01",
    "2018-11-01",
    "2018-09-01",
    "2018-08-01",
    "2018-07-01",
    "2018-06-01",
    "2018-05-01",
    "2018-02-01",
    "2018-01-01",
    "2017-12-01",
    "2017-08-01",
    "2017-06-01",
    "2017-05-10",
    "2017-05-01",
    "2017-03-01",
    "2016-09-01",
    "2016-07-01",
    "2016-06-01",
    "2016-02-01",
    "2015-11-01",
    "2015-01-01",
)


def list_locations(request: Request, subscription: str, stats: Stats) -> Reply:
    """Every region of the public cloud for ``subscription`` (one page, no ``nextLink``)."""
    stats.count_call(LOCATIONS_GROUP)
    if not request.api_version:
        raise missing_api_version()
    if request.api_version not in RESOURCES_API_VERSIONS:
        raise resources_api_version(request.api_version, RESOURCES_API_VERSIONS)
    return Reply(200, locations_body(subscription))
