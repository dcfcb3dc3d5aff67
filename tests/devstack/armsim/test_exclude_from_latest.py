"""The simulator keeps ``excludeFromLatest`` at both levels, as the service does.

Azure: "You can set both the global and regional ``excludeFromLatest`` flag, but the regional flag
takes precedence" (https://learn.microsoft.com/azure/virtual-machines/azure-compute-gallery, best
practices; ``targetRegions[].excludeFromLatest`` in the REST API). Responses state the regional
flag in every target region, ``false`` when it was not sent (the REST spec's examples). The
lifecycle relies on what follows: a PATCH that sends only the version's flag leaves each region's
flag as it was, and one that sends the target regions changes each region's flag and nothing else.
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


def flags(profile: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(r["name"], r["excludeFromLatest"]) for r in profile["targetRegions"]]


def test_every_region_states_its_flag_false_when_it_was_not_sent(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_version(fresh, "1.0.0")
    profile = listed_profile(compute, "1.0.0")
    assert profile["excludeFromLatest"] is False
    assert flags(profile) == [("East US", False), ("West US", False)]


def test_a_patch_of_the_version_flag_leaves_each_regions_flag(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_version(fresh, "1.0.0")
    patch(compute, "1.0.0", {"excludeFromLatest": True})
    profile = listed_profile(compute, "1.0.0")
    assert profile["excludeFromLatest"] is True
    assert flags(profile) == [("East US", False), ("West US", False)]  # these take precedence


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
