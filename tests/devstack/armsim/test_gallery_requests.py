"""Gallery requests Azure accepts, accepted the way Azure does: the azure-cli update pattern
(a PUT that leaves the source out), the older VHD source form, the older api-versions, and
PATCH of galleries and definitions with ARM's merge semantics. Raw HTTP and the real SDK."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m
from azure.storage.blob import BlobServiceClient

from devstack.vhdgen import upload_fixed_vhd
from tests.conftest import AzuriteInstance
from tests.devstack.armsim.conftest import (
    GALLERY,
    GALLERY_ID,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    STORAGE_ACCOUNT_ID,
    ArmSim,
    RawArm,
    resource_id,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
)

LRO_TIMEOUT = 20
VERSION_PATH = f"{IMAGE_ID}/versions/1.0.0"
GIB = 1024**3


def _create(raw: RawArm, body: dict[str, Any], path: str = VERSION_PATH) -> dict[str, Any]:
    reply = raw.call("PUT", path, body)
    assert reply.status_code in (200, 201), reply.text
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    result: dict[str, Any] = raw.call("GET", path).json()
    return result


# --------------------------------------------------------------------------- update by PUT


def _cli_update_body(current: dict[str, Any], **profile: Any) -> dict[str, Any]:
    """What ``az sig image-version update`` PUTs: the GET's publishing profile edited, and a
    storage profile without any source (azure-cli recording test_image_version_end_of_life_date:
    ``{"osDiskImage": {"hostCaching": "ReadWrite", "source": {}}}``)."""
    props = current["properties"]
    publishing = {k: v for k, v in props["publishingProfile"].items() if k != "publishedDate"}
    publishing.update(profile)
    return {
        "location": current["location"],
        "properties": {
            "publishingProfile": publishing,
            "safetyProfile": {"allowDeletionOfReplicatedLocations": False},
            "storageProfile": {"osDiskImage": {"hostCaching": "ReadWrite", "source": {}}},
        },
        "tags": {},
    }


def test_a_put_without_the_source_updates_and_keeps_the_source(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    snapshot = seed_snapshot(fresh, "s")
    current = _create(raw, snapshot_version_body(snapshot))
    body = _cli_update_body(
        current,
        endOfLifeDate="2099-01-01T00:00:00Z",
        targetRegions=[{"name": LOCATION}, {"name": "westus"}],
    )
    reply = raw.call("PUT", VERSION_PATH, body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["properties"]["provisioningState"] == "Updating"
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    after = raw.call("GET", VERSION_PATH).json()["properties"]
    assert after["storageProfile"]["osDiskImage"]["source"] == {"id": snapshot}
    assert after["publishingProfile"]["endOfLifeDate"] == "2099-01-01T00:00:00Z"
    assert [r["name"] for r in after["publishingProfile"]["targetRegions"]] == [
        "East US",
        "West US",
    ]


def test_the_sdk_update_pattern_and_a_real_source_change(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    snapshot = seed_snapshot(fresh, "s")
    versions = compute.gallery_image_versions
    created = versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(snapshot)),
    ).result(timeout=LRO_TIMEOUT)
    body = _cli_update_body(created.as_dict(), excludeFromLatest=True)
    updated = versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body)
    ).result(timeout=LRO_TIMEOUT)
    assert updated.publishing_profile.exclude_from_latest is True
    assert updated.storage_profile.os_disk_image.source.id == snapshot
    # naming another source is still a change Azure refuses
    with pytest.raises(ResourceExistsError) as caught:
        versions.begin_create_or_update(
            RESOURCE_GROUP,
            GALLERY,
            IMAGE,
            "1.0.0",
            m.GalleryImageVersion(snapshot_version_body(seed_snapshot(fresh, "other"))),
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "PropertyChangeNotAllowed"


def test_a_put_may_not_move_a_version(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    current = _create(raw, snapshot_version_body(seed_snapshot(fresh, "s")))
    body = _cli_update_body(current)
    body["location"] = "westus"
    reply = raw.call("PUT", VERSION_PATH, body)
    assert reply.status_code == 409
    error = reply.json()["error"]
    assert error["code"] == "InvalidResourceLocation"
    assert "already exists in location 'eastus'" in error["message"]


# --------------------------------------------------------------------------- older VHD form


@pytest.fixture
def vhd_url(azurite: AzuriteInstance) -> str:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(f"vhds-{uuid.uuid4().hex[:8]}")
    container.create_container(timeout=10)
    blob = container.get_blob_client("os.vhd")
    upload_fixed_vhd(blob, 2 * GIB)
    return str(blob.url)


def test_the_older_vhd_source_form_is_accepted(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient, vhd_url: str
) -> None:
    """``source: {id: <storage account>, uri}`` (the REST spec's 2022-03-03 VHD example)."""
    seed_gallery(fresh)
    fresh.seed({"id": STORAGE_ACCOUNT_ID, "location": LOCATION, "properties": {}})
    body: dict[str, Any] = {
        "location": LOCATION,
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": LOCATION}]},
            "storageProfile": {
                "osDiskImage": {"source": {"id": STORAGE_ACCOUNT_ID, "uri": vhd_url}}
            },
        },
    }
    reply = raw.call("PUT", VERSION_PATH, body, api_version="2023-07-03")
    assert reply.status_code == 201, reply.text
    assert reply.json()["properties"]["storageProfile"]["osDiskImage"]["source"] == {
        "id": STORAGE_ACCOUNT_ID,
        "uri": vhd_url,
    }
    status = raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded"
    built = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.1", m.GalleryImageVersion(copy.deepcopy(body))
    ).result(timeout=LRO_TIMEOUT)
    assert built.provisioning_state == "Succeeded"
    assert built.storage_profile.os_disk_image.size_in_gb == 2
    assert built.storage_profile.os_disk_image.source.id == STORAGE_ACCOUNT_ID
    # an id that is no storage account, with a uri, is still one source too many
    body["properties"]["storageProfile"]["osDiskImage"]["source"]["id"] = seed_snapshot(fresh, "s")
    reply = raw.call("PUT", f"{IMAGE_ID}/versions/1.0.2", body)
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "InvalidParameter"


# --------------------------------------------------------------------------- api-versions


@pytest.mark.parametrize(
    "api_version", ["2021-10-01", "2022-01-03", "2022-03-03", "2022-08-03", "2023-07-03"]
)
def test_older_gallery_api_versions_are_served(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient, api_version: str
) -> None:
    seed_gallery(fresh)
    assert raw.call("GET", GALLERY_ID, api_version=api_version).status_code == 200
    assert raw.call("GET", f"{IMAGE_ID}/versions", api_version=api_version).status_code == 200
    gallery = compute.galleries.get(RESOURCE_GROUP, GALLERY, api_version=api_version)
    assert gallery.name == GALLERY


# --------------------------------------------------------------------------- PATCH


def test_patch_of_a_gallery_merges(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    created = raw.call(
        "PUT",
        GALLERY_ID,
        {"location": LOCATION, "tags": {"team": "a"}, "properties": {"description": "first"}},
    )
    raw.wait_operation(created.headers["Azure-AsyncOperation"])
    reply = raw.call("PATCH", GALLERY_ID, {"tags": {"team": "b"}})
    assert reply.status_code == 200
    body = reply.json()
    assert body["properties"]["provisioningState"] == "Updating"
    assert body["properties"]["description"] == "first"  # not named: kept
    assert body["tags"] == {"team": "b"}
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    gallery = compute.galleries.begin_update(
        RESOURCE_GROUP, GALLERY, m.GalleryUpdate({"properties": {"description": "second"}})
    ).result(timeout=LRO_TIMEOUT)
    assert gallery.description == "second"
    assert gallery.tags == {"team": "b"}
    assert gallery.identifier.unique_name.endswith(f"-{GALLERY.upper()}")
    missing = raw.call("PATCH", resource_id("Microsoft.Compute/galleries", "nope"), {})
    assert missing.status_code == 404


def test_patch_of_a_definition_merges_and_keeps_immutables(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    reply = raw.call(
        "PATCH",
        IMAGE_ID,
        {"properties": {"description": "gen2 base", "identifier": {"sku": "base"}}},
    )
    assert reply.status_code == 200, reply.text
    props = reply.json()["properties"]
    assert props["description"] == "gen2 base"
    assert props["identifier"] == {"publisher": "contoso", "offer": IMAGE, "sku": "base"}
    assert props["osType"] == "Linux"
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_images.begin_update(
            RESOURCE_GROUP,
            GALLERY,
            IMAGE,
            m.GalleryImageUpdate({"properties": {"osState": "Specialized"}}),
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "PropertyChangeNotAllowed"
    assert caught.value.error.target == "galleryImage.properties.osState"
    updated = compute.gallery_images.begin_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        m.GalleryImageUpdate({"properties": {"endOfLifeDate": "2099-01-01T00:00:00Z"}}),
    ).result(timeout=LRO_TIMEOUT)
    assert updated.description == "gen2 base"
    with pytest.raises(ResourceNotFoundError):
        compute.gallery_images.begin_update(
            RESOURCE_GROUP, GALLERY, "absent", m.GalleryImageUpdate({"properties": {}})
        )
