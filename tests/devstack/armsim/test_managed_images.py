"""Managed images are CRP long-running operations; an image of a VM takes the VM's disks."""

from __future__ import annotations

import re
from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from tests.devstack.armsim.conftest import (
    IMAGE,
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    ArmSim,
    RawArm,
    resource_id,
    rg_path,
    seed_gallery,
)

IMAGE_API = "2024-07-01"
LRO_TIMEOUT = 20


def seed_vm(sim: ArmSim) -> str:
    """A generalized Gen2 VM with a 64 GiB Premium OS disk and a 16 GiB data disk."""
    os_disk = resource_id("Microsoft.Compute/disks", "vm1-os")
    data_disk = resource_id("Microsoft.Compute/disks", "vm1-data")
    vm = resource_id("Microsoft.Compute/virtualMachines", "vm1")
    sim.seed(
        {
            "id": os_disk,
            "location": LOCATION,
            "sku": {"name": "Premium_LRS"},
            "properties": {"diskSizeGB": 64, "osType": "Linux", "hyperVGeneration": "V2"},
        },
        {"id": data_disk, "location": LOCATION, "properties": {"diskSizeGB": 16}},
        {
            "id": vm,
            "location": LOCATION,
            "properties": {
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "caching": "ReadWrite",
                        "managedDisk": {"id": os_disk, "storageAccountType": "Premium_LRS"},
                    },
                    "dataDisks": [
                        {
                            "lun": 0,
                            "managedDisk": {"id": data_disk, "storageAccountType": "Standard_LRS"},
                        }
                    ],
                },
                "instanceView": {"statuses": [{"code": "OSState/generalized"}]},
            },
        },
    )
    return vm


def image_path(name: str) -> str:
    return rg_path("Microsoft.Compute/images", name)


def test_image_of_a_snapshot_is_created_asynchronously_with_the_recorded_defaults(
    fresh: ArmSim, raw: RawArm
) -> None:
    snapshot_id = resource_id("Microsoft.Compute/snapshots", "golden")
    fresh.seed({"id": snapshot_id, "location": LOCATION, "properties": {"diskSizeGB": 200}})
    fresh.admin("POST", "/admin/faults", {"slowOperations": 1_000_000})
    body: dict[str, Any] = {
        "location": LOCATION,
        "properties": {
            "storageProfile": {
                "osDisk": {
                    "snapshot": {"id": snapshot_id.lstrip("/")},
                    "osType": "Linux",
                    "osState": "Generalized",
                },
                "zoneResilient": False,
            },
            "hyperVGeneration": "V1",
        },
    }
    reply = raw.call("PUT", image_path("img1"), body, api_version=IMAGE_API)

    assert reply.status_code == 201
    creating = reply.json()
    assert list(creating) == ["name", "id", "type", "location", "properties"]
    assert creating["properties"] == {
        "storageProfile": {
            "osDisk": {
                "osType": "Linux",
                "osState": "Generalized",
                "snapshot": {"id": snapshot_id},
                "caching": "None",
                "storageAccountType": "Standard_LRS",
            },
            "dataDisks": [],
            "zoneResilient": False,
        },
        "provisioningState": "Creating",
        "hyperVGeneration": "V1",
    }
    assert re.fullmatch(
        rf"{re.escape(fresh.base_url)}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute"
        rf"/locations/{LOCATION}/operations/[0-9a-f-]{{36}}\?p=[0-9a-f-]{{36}}&"
        rf"api-version={IMAGE_API}",
        reply.headers["Azure-AsyncOperation"],
    )
    assert "Location" not in reply.headers
    assert reply.headers["azure-asyncnotification"] == "Enabled"
    assert reply.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/CreateImages3Min;"
    )
    assert raw.call("GET", image_path("img1"), api_version=IMAGE_API).json() == creating

    fresh.admin("POST", "/admin/clock", {"advanceSeconds": 100_000_000})
    status = raw.session.get(reply.headers["Azure-AsyncOperation"], timeout=10).json()
    assert list(status) == ["startTime", "endTime", "status", "name"]
    image = raw.call("GET", image_path("img1"), api_version=IMAGE_API).json()
    assert image["properties"]["provisioningState"] == "Succeeded"
    assert image["properties"]["storageProfile"]["osDisk"]["diskSizeGB"] == 200
    assert list(image["properties"]["storageProfile"]["osDisk"]) == [
        "osType",
        "osState",
        "diskSizeGB",
        "snapshot",
        "caching",
        "storageAccountType",
    ]

    deleted = raw.call("DELETE", image_path("img1"), api_version=IMAGE_API)
    assert deleted.status_code == 202
    assert "monitor=true" in deleted.headers["Location"]
    assert deleted.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/DeleteImages3Min;"
    )


def test_image_of_a_vm_takes_the_vms_storage_profile(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    vm = seed_vm(fresh)
    image = compute.images.begin_create_or_update(
        RESOURCE_GROUP,
        "from-vm",
        m.Image(
            location=LOCATION,
            properties=m.ImageProperties(source_virtual_machine=m.SubResource(id=vm)),
        ),
    ).result(timeout=LRO_TIMEOUT)

    assert image.properties is not None
    assert image.properties.provisioning_state == "Succeeded"
    assert image.properties.hyper_v_generation == "V2"  # the VM's OS disk says so
    profile = image.as_dict()["properties"]["storageProfile"]
    assert profile == {
        "osDisk": {
            "osType": "Linux",
            "osState": "Generalized",
            "diskSizeGB": 64,
            "managedDisk": {"id": resource_id("Microsoft.Compute/disks", "vm1-os")},
            "caching": "ReadWrite",
            "storageAccountType": "Premium_LRS",
        },
        "dataDisks": [
            {
                "lun": 0,
                "diskSizeGB": 16,
                "managedDisk": {"id": resource_id("Microsoft.Compute/disks", "vm1-data")},
                "caching": "None",
                "storageAccountType": "Standard_LRS",
            }
        ],
        "zoneResilient": False,
    }

    # A gallery version builds from the image (the definition is Gen2, like the VM's disk).
    seed_gallery(fresh)
    version = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        "gal",
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(
            {
                "location": LOCATION,
                "properties": {
                    "publishingProfile": {"targetRegions": [{"name": LOCATION}]},
                    "storageProfile": {"source": {"id": image.id}},
                },
            }
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert version.as_dict()["properties"]["provisioningState"] == "Succeeded"

    compute.images.begin_delete(RESOURCE_GROUP, "from-vm").result(timeout=LRO_TIMEOUT)


def test_image_of_a_vm_elsewhere_is_refused(fresh: ArmSim, raw: RawArm) -> None:
    vm = seed_vm(fresh)
    body = {"location": "westus", "properties": {"sourceVirtualMachine": {"id": vm}}}
    reply = raw.call("PUT", image_path("far"), body, api_version=IMAGE_API)
    assert reply.status_code == 404
    assert reply.json()["error"] == {"code": "NotFound", "message": "Resource vm1 is not found."}
