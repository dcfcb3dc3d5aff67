"""Response bodies field for field as real sessions show them (azure-cli recording
``test_image_version_end_of_life_date``, 2026): nothing echoed that was not sent, apart from the
service's own defaults. Raw HTTP for the exact keys, the real SDK for what callers read."""

from __future__ import annotations

from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from tests.devstack.armsim.conftest import (
    GALLERY,
    GALLERY_ID,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    ArmSim,
    RawArm,
    resource_id,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
)

LRO_TIMEOUT = 20
VERSION_PATH = f"{IMAGE_ID}/versions/1.0.0"
DEFINITION: dict[str, Any] = {
    "location": LOCATION,
    "properties": {
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V1",
        "identifier": {"publisher": "publisher1", "offer": "offer1", "sku": "sku1"},
    },
    "tags": {},
}


def _seed_managed_image(sim: ArmSim) -> str:
    image_id = resource_id("Microsoft.Compute/images", "captured")
    sim.seed(
        {
            "id": image_id,
            "location": LOCATION,
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {"osType": "Linux", "osState": "Generalized", "diskSizeGB": 30},
                    "dataDisks": [{"lun": 0, "diskSizeGB": 4}],
                },
            },
        }
    )
    return image_id


def test_a_definition_echoes_no_empty_disallowed_or_features(fresh: ArmSim, raw: RawArm) -> None:
    fresh.seed({"id": GALLERY_ID, "location": LOCATION, "properties": {}})
    sent = {
        **DEFINITION,
        "properties": {**DEFINITION["properties"], "disallowed": {}, "features": []},
    }
    reply = raw.call("PUT", IMAGE_ID, sent, api_version="2021-10-01")
    assert reply.status_code == 201
    body = reply.json()
    assert body["tags"] == {}
    assert list(body["properties"]) == [
        "hyperVGeneration",
        "osType",
        "osState",
        "identifier",
        "architecture",
        "provisioningState",
    ]
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    listed = raw.call("GET", IMAGE_ID).json()["properties"]
    assert "disallowed" not in listed and "features" not in listed
    kept = {
        **sent,
        "properties": {
            **sent["properties"],
            "features": [{"name": "IsAcceleratedNetworkSupported", "value": "True"}],
        },
    }
    reply = raw.call("PUT", IMAGE_ID, kept)
    assert reply.json()["properties"]["features"] == kept["properties"]["features"]


def test_the_sdk_sees_no_empty_lists_on_a_definition(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    fresh.seed({"id": GALLERY_ID, "location": LOCATION, "properties": {}})
    image = compute.gallery_images.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        m.GalleryImage(
            location=LOCATION,
            properties=m.GalleryImageProperties(
                os_type="Linux",
                os_state="Generalized",
                identifier=m.GalleryImageIdentifier(publisher="p", offer="o", sku="s"),
                disallowed=m.Disallowed(disk_types=[]),
                features=[],
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert image.disallowed is None
    assert image.features is None
    assert image.architecture == "x64"


def test_target_regions_state_only_what_was_sent(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    body = snapshot_version_body(seed_snapshot(fresh, "s"))
    body["properties"]["publishingProfile"]["targetRegions"] = [
        {"name": LOCATION},
        {"name": "westus", "excludeFromLatest": True},
    ]
    reply = raw.call("PUT", VERSION_PATH, body)
    profile = reply.json()["properties"]["publishingProfile"]
    assert profile["targetRegions"] == [
        {"name": "East US", "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS"},
        {
            "name": "West US",
            "regionalReplicaCount": 1,
            "storageAccountType": "Standard_LRS",
            "excludeFromLatest": True,
        },
    ]
    assert profile["excludeFromLatest"] is False  # the version-wide default is the service's


def test_a_whole_image_source_lists_its_disks_once_built(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    image_id = _seed_managed_image(fresh)
    body: dict[str, Any] = {
        "location": LOCATION,
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": LOCATION}]},
            "storageProfile": {"source": {"id": image_id}},
        },
    }
    reply = raw.call("PUT", VERSION_PATH, body)
    assert reply.status_code == 201
    created = reply.json()["properties"]
    assert created["storageProfile"] == {"source": {"id": image_id}}
    assert created["validationsProfile"] == {"validationOperationStatus": "NotExecuted"}
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    storage = raw.call("GET", VERSION_PATH).json()["properties"]["storageProfile"]
    assert storage["osDiskImage"] == {"sizeInGB": 30, "hostCaching": "ReadWrite", "source": {}}
    assert storage["dataDiskImages"] == [
        {"lun": 0, "sizeInGB": 4, "hostCaching": "ReadOnly", "source": {}}
    ]
    version = compute.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    assert version.storage_profile.source.id == image_id
    assert version.storage_profile.os_disk_image.size_in_gb == 30
    assert version.storage_profile.data_disk_images[0].size_in_gb == 4


def test_an_update_reply_has_no_validations_profile(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(seed_snapshot(fresh, "s"))),
    ).result(timeout=LRO_TIMEOUT)
    reply = raw.call(
        "PATCH", VERSION_PATH, {"properties": {"publishingProfile": {"excludeFromLatest": True}}}
    )
    assert reply.status_code == 200
    assert "validationsProfile" not in reply.json()["properties"]
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    assert "validationsProfile" in raw.call("GET", VERSION_PATH).json()["properties"]
