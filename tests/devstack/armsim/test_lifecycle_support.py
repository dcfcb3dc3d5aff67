"""Simulator pieces the lifecycle relies on: subscription-wide gallery listing, scale-set and VM
image references through ``list_all``, and a version PATCH that excludes it from latest."""

from __future__ import annotations

import io
import json

from azure.mgmt.compute import ComputeManagementClient

from tests.devstack.armsim.conftest import (
    GALLERY,
    GALLERY_ID,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    ArmSim,
    resource_id,
    seed_gallery,
)


def test_galleries_list_in_subscription_is_paged_and_rendered(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    fresh.seed(
        *(
            {"id": resource_id("Microsoft.Compute/galleries", f"g{n}"), "location": LOCATION}
            for n in range(3)
        )
    )
    fresh.admin("POST", "/admin/config", {"pageSize": 2})
    found = list(compute.galleries.list())
    assert sorted(str(g.name) for g in found) == ["g0", "g1", "g2"]
    assert {g["properties"]["provisioningState"] for g in found} == {"Succeeded"}
    assert fresh.admin("GET", "/admin/stats")["armCalls"]["ListGalleryInResourceGroup"] == 2


def test_scale_set_and_vm_image_references_come_back_from_list_all(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    version_id = f"{IMAGE_ID}/versions/1.0.0"
    fresh.seed(
        {
            "id": resource_id("Microsoft.Compute/virtualMachineScaleSets", "web"),
            "location": LOCATION,
            "properties": {
                "virtualMachineProfile": {"storageProfile": {"imageReference": {"id": version_id}}}
            },
        },
        {
            "id": resource_id("Microsoft.Compute/virtualMachines", "vm1"),
            "location": LOCATION,
            "properties": {"storageProfile": {"imageReference": {"id": IMAGE_ID}}},
        },
    )
    [scale_set] = compute.virtual_machine_scale_sets.list_all()
    profile = scale_set["properties"]["virtualMachineProfile"]
    assert profile["storageProfile"]["imageReference"]["id"] == version_id
    [vm] = compute.virtual_machines.list_all()
    assert vm["properties"]["storageProfile"]["imageReference"]["id"] == IMAGE_ID


def test_patch_excludes_a_version_from_latest_and_replaces_its_tags(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    fresh.seed(
        {
            "id": f"{IMAGE_ID}/versions/1.0.0",
            "location": LOCATION,
            "tags": {"owner": "a"},
            "properties": {"publishingProfile": {"targetRegions": [{"name": LOCATION}]}},
        }
    )
    body = {
        "tags": {"owner": "a", "lifecycle": "deprecated"},
        "properties": {"publishingProfile": {"excludeFromLatest": True}},
    }
    reply = compute.gallery_image_versions.begin_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        io.BytesIO(json.dumps(body).encode()),
        polling=False,
    ).result()
    assert reply["properties"]["provisioningState"] == "Updating"
    [listed] = compute.gallery_image_versions.list_by_gallery_image(RESOURCE_GROUP, GALLERY, IMAGE)
    assert listed["properties"]["publishingProfile"]["excludeFromLatest"] is True
    assert listed["tags"] == {"owner": "a", "lifecycle": "deprecated"}
    assert GALLERY_ID in listed["id"]
