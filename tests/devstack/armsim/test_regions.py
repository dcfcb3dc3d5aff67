"""Regions as Azure knows them: the locations list, and the refusal of any other name.

``GET /subscriptions/{id}/locations`` answers with the public cloud's regions in ARM's shape
(what ``SubscriptionClient.subscriptions.list_locations`` reads); every resource's ``location``
and every ``publishingProfile.targetRegions[].name`` must be one of its physical regions
(``LocationNotAvailableForResourceType``); and a version's target regions must include its own
and its gallery's region. Raw HTTP for the wire, the real SDKs for what callers see.
"""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m
from azure.mgmt.resource.subscriptions import SubscriptionClient

from devstack.armsim.regions import REGIONS
from shared.adapters.arm_regions import ArmRegionCatalog
from shared.contract.regions import PUBLIC_REGIONS
from shared.core.settings import SettingName, Settings
from tests.devstack.armsim.conftest import (
    GALLERY,
    GALLERY_ID,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    SDK_TIMEOUTS,
    SUBSCRIPTION,
    ArmSim,
    RawArm,
    resource_id,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
)

LRO_TIMEOUT = 20
LOCATIONS = f"/subscriptions/{SUBSCRIPTION}/locations"


@pytest.fixture(scope="module")
def subscriptions(armsim: ArmSim, identity_env: None) -> SubscriptionClient:
    """The real azure-mgmt-resource-subscriptions client against the simulator."""
    del identity_env
    return SubscriptionClient(
        ManagedIdentityCredential(),
        base_url=armsim.base_url,
        connection_verify=str(armsim.cert),
        **SDK_TIMEOUTS,
    )


# --------------------------------------------------------------------------- the locations list


def test_locations_list_has_arm_shape(fresh: ArmSim, raw: RawArm) -> None:
    reply = raw.call("GET", LOCATIONS, api_version="2022-12-01")
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"value"}  # one page: no nextLink
    by_name = {item["name"]: item for item in body["value"]}
    west = by_name["westeurope"]
    assert west["id"] == f"{LOCATIONS}/westeurope"
    assert west["type"] == "Region"
    assert west["displayName"] == "West Europe"
    assert west["regionalDisplayName"] == "(Europe) West Europe"
    assert west["metadata"]["regionType"] == "Physical"
    assert west["metadata"]["regionCategory"] == "Recommended"
    assert west["metadata"]["geographyGroup"] == "Europe"
    assert west["metadata"]["pairedRegion"] == [
        {"name": "northeurope", "id": f"{LOCATIONS}/northeurope"}
    ]
    assert {"latitude", "longitude", "physicalLocation", "geography"} <= set(west["metadata"])
    assert by_name["europe"]["metadata"] == {"regionType": "Logical", "regionCategory": "Other"}
    physical = [i["name"] for i in body["value"] if i["metadata"]["regionType"] == "Physical"]
    assert physical == [r.name for r in REGIONS]
    assert "x-ms-ratelimit-remaining-resource" not in reply.headers  # ARM, not Compute


def test_locations_list_checks_arm_api_versions(fresh: ArmSim, raw: RawArm) -> None:
    assert raw.call("GET", LOCATIONS, api_version="2016-06-01").status_code == 200
    unknown = raw.call("GET", LOCATIONS, api_version="2099-01-01")
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter"
    assert error["message"].startswith("The api-version '2099-01-01' is invalid.")
    missing = raw.call("GET", LOCATIONS, api_version=None)
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


def test_locations_through_the_subscription_client(
    fresh: ArmSim, subscriptions: SubscriptionClient
) -> None:
    locations = list(subscriptions.subscriptions.list_locations(SUBSCRIPTION))
    by_name = {location.name: location.as_dict() for location in locations}
    assert by_name["eastus2"]["displayName"] == "East US 2"
    assert locations[1].regional_display_name == "(US) East US 2"
    assert by_name["eastus2"]["metadata"]["regionType"] == "Physical"
    assert [p["name"] for p in by_name["eastus2"]["metadata"]["pairedRegion"]] == ["centralus"]
    assert by_name["global"]["metadata"]["regionType"] == "Logical"
    stats = fresh.admin("GET", "/admin/stats")
    assert stats["armCalls"]["ListLocations"] == 1


# --------------------------------------------------------------------------- unknown regions


def _gallery_body(location: str) -> dict[str, Any]:
    return {"location": location, "properties": {}}


def test_unknown_gallery_location_is_refused_with_arms_error(fresh: ArmSim, raw: RawArm) -> None:
    reply = raw.call("PUT", GALLERY_ID, _gallery_body("westeurop"))
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "LocationNotAvailableForResourceType"
    assert error["message"].startswith(
        "The provided location 'westeurop' is not available for resource type "
        "'Microsoft.Compute/galleries'. List of available regions for the resource type is '"
    )
    assert ",westeurope," in error["message"]
    # a logical region is in the locations list, but nothing can live there
    assert raw.call("PUT", GALLERY_ID, _gallery_body("europe")).status_code == 400
    # either spelling of a real region is fine
    assert raw.call("PUT", GALLERY_ID, _gallery_body("West Europe")).status_code == 201


def test_unknown_locations_through_the_sdk(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    with pytest.raises(HttpResponseError) as gallery:
        compute.galleries.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, m.Gallery(location="mars")
        )
    assert gallery.value.status_code == 400
    assert gallery.value.error is not None
    assert gallery.value.error.code == "LocationNotAvailableForResourceType"
    seed_gallery(fresh)
    definition: dict[str, Any] = {
        "location": "westus9",
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
        },
    }
    with pytest.raises(HttpResponseError) as image:
        compute.gallery_images.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, "other", m.GalleryImage(definition)
        )
    assert image.value.error is not None
    assert image.value.error.code == "LocationNotAvailableForResourceType"
    body = snapshot_version_body(seed_snapshot(fresh, "s"))
    body["location"] = "eastus9"
    with pytest.raises(HttpResponseError) as version:
        compute.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body)
        )
    assert version.value.error is not None
    assert version.value.error.code == "LocationNotAvailableForResourceType"
    assert "'eastus9'" in str(version.value.error.message)


def test_unknown_target_region_is_refused(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    body = snapshot_version_body(seed_snapshot(fresh, "s"))
    body["properties"]["publishingProfile"]["targetRegions"].append({"name": "westeurop"})
    reply = raw.call("PUT", f"{IMAGE_ID}/versions/1.0.0", body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "LocationNotAvailableForResourceType"
    assert error["target"] == "publishingProfile.targetRegions.name"
    assert "'westeurop'" in error["message"]
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body)
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "LocationNotAvailableForResourceType"


def test_a_patch_to_an_unknown_target_region_is_refused(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(seed_snapshot(fresh, "s"))),
    ).result(timeout=LRO_TIMEOUT)
    update = {
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": LOCATION}, {"name": "nowhere"}]}
        }
    }
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_update(
            RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersionUpdate(update)
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "LocationNotAvailableForResourceType"


def test_seeding_an_unknown_region_is_refused(fresh: ArmSim) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        fresh.seed({"id": GALLERY_ID, "location": "mars", "properties": {}})
    assert caught.value.code == 400
    assert "unknown region 'mars'" in caught.value.read().decode()


# --------------------------------------------------------------------------- own regions


def test_target_regions_must_include_the_versions_region(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    body = snapshot_version_body(seed_snapshot(fresh, "s"))
    body["properties"]["publishingProfile"]["targetRegions"] = [{"name": "northeurope"}]
    reply = raw.call("PUT", f"{IMAGE_ID}/versions/1.0.0", body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "InvalidParameter"
    assert error["message"] == (
        "Gallery image version publishing profile regions 'northeurope' must contain the "
        "location of image version 'East US'."
    )


def test_target_regions_must_include_the_gallerys_region(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)  # in eastus
    snapshot = seed_snapshot(fresh, "far", location="westeurope")
    body = snapshot_version_body(snapshot)
    body["location"] = "westeurope"
    body["properties"]["publishingProfile"]["targetRegions"] = [{"name": "westeurope"}]
    reply = raw.call("PUT", f"{IMAGE_ID}/versions/1.0.0", body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "InvalidParameter"
    assert error["target"] == "publishingProfile.targetRegions"
    assert "must contain the location of the gallery 'East US'" in error["message"]
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body)
        )
    assert caught.value.error is not None
    assert "location of the gallery" in str(caught.value.error.message)
    # with the gallery's region among the targets, a version may live elsewhere
    body["properties"]["publishingProfile"]["targetRegions"].append({"name": LOCATION})
    version = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body)
    ).result(timeout=LRO_TIMEOUT)
    assert version.provisioning_state == "Succeeded"


def test_plain_resources_refuse_unknown_regions(fresh: ArmSim, raw: RawArm) -> None:
    reply = raw.call(
        "PUT",
        resource_id("Microsoft.Compute/snapshots", "s"),
        {"location": "eastuss", "properties": {"creationData": {"createOption": "Empty"}}},
        api_version="2025-01-02",
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "LocationNotAvailableForResourceType"
    assert "'Microsoft.Compute/snapshots'" in error["message"]


# --------------------------------------------------------------------------- the pipeline's side


def test_the_pipelines_region_catalog_reads_the_list_through_arm(
    fresh: ArmSim, identity_env: None
) -> None:
    """shared.adapters.arm_regions over the real SubscriptionClient, against the simulator."""
    del identity_env
    settings = Settings.from_env(
        {
            SettingName.ARM_ENDPOINT: fresh.base_url,
            SettingName.ARM_CA_BUNDLE: str(fresh.cert),
        }
    )
    catalog = ArmRegionCatalog.from_settings(settings, ManagedIdentityCredential)
    names = catalog.known_regions(SUBSCRIPTION)
    assert names == {r.name for r in REGIONS}  # physical only: no "europe", no "global"
    assert catalog.known_regions(SUBSCRIPTION) is names  # cached
    assert fresh.admin("GET", "/admin/stats")["armCalls"]["ListLocations"] == 1


def test_the_built_in_list_is_the_simulators_list() -> None:
    """Both are Azure's public physical regions: one changes, the other must follow."""
    assert {r.name for r in REGIONS} == PUBLIC_REGIONS
