"""The simulator keeps ``excludeFromLatest`` at both levels, as the service does.

Azure: "You can set both the global and regional ``excludeFromLatest`` flag, but the regional flag
takes precedence" (https://learn.microsoft.com/azure/virtual-machines/azure-compute-gallery, best
practices; ``targetRegions[].excludeFromLatest`` in the REST API). Responses state a region's
flag only when it was sent: the real service does not add ``excludeFromLatest: false`` to a
region that did not name it (azure-cli recording test_image_version_end_of_life_date, 2026;
the REST spec's examples send it, so they echo it). The lifecycle relies on what follows: a
PATCH that sends only the version's flag leaves each region's flag as it was, and one that sends
the target regions changes each region's flag and nothing else.
"""

from __future__ import annotations

import io
import json
from typing import Any

from azure.mgmt.compute import ComputeManagementClient

from tests.devstack.armsim.conftest import (
    GALLERY,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    ArmSim,
    seed_gallery,
)

REGIONS = [
    {"name": LOCATION, "regionalReplicaCount": 2, "storageAccountType": "Standard_ZRS"},
    {"name": "westus", "regionalReplicaCount": 1, "excludeFromLatest": False},
]


def seed_version(sim: ArmSim, name: str) -> None:
    seed_gallery(sim)
    sim.seed(
        {
            "id": f"{IMAGE_ID}/versions/{name}",
            "location": LOCATION,
            "properties": {"publishingProfile": {"targetRegions": REGIONS}},
        }
    )


def patch(compute: ComputeManagementClient, name: str, publishing: dict[str, Any]) -> None:
    body = {"properties": {"publishingProfile": publishing}}
    compute.gallery_image_versions.begin_update(
        RESOURCE_GROUP, GALLERY, IMAGE, name, io.BytesIO(json.dumps(body).encode()), polling=False
    ).result()


def listed_profile(compute: ComputeManagementClient, name: str) -> dict[str, Any]:
    [found] = [
        v
        for v in compute.gallery_image_versions.list_by_gallery_image(
            RESOURCE_GROUP, GALLERY, IMAGE
        )
        if v.name == name
    ]
    profile: dict[str, Any] = found["properties"]["publishingProfile"]
    return profile


def flags(profile: dict[str, Any]) -> list[tuple[str, bool | None]]:
    return [(r["name"], r.get("excludeFromLatest")) for r in profile["targetRegions"]]


def test_a_region_states_its_flag_only_when_it_was_sent(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_version(fresh, "1.0.0")
    profile = listed_profile(compute, "1.0.0")
    assert profile["excludeFromLatest"] is False  # the version-wide default is always stated
    assert flags(profile) == [("East US", None), ("West US", False)]


def test_a_patch_of_the_version_flag_leaves_each_regions_flag(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_version(fresh, "1.0.0")
    patch(compute, "1.0.0", {"excludeFromLatest": True})
    profile = listed_profile(compute, "1.0.0")
    assert profile["excludeFromLatest"] is True
    assert flags(profile) == [("East US", None), ("West US", False)]  # the regions' own flags


def test_a_patch_of_the_regions_flags_keeps_the_rest_of_each_region(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_version(fresh, "1.0.0")
    before = listed_profile(compute, "1.0.0")["targetRegions"]
    hidden = [{**r, "excludeFromLatest": True} for r in before]
    patch(compute, "1.0.0", {"excludeFromLatest": True, "targetRegions": hidden})
    profile = listed_profile(compute, "1.0.0")
    assert profile["excludeFromLatest"] is True
    assert profile["targetRegions"] == hidden
    assert [(r["regionalReplicaCount"], r["storageAccountType"]) for r in hidden] == [
        (2, "Standard_ZRS"),
        (1, "Standard_LRS"),
    ]
