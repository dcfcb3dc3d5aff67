"""The gallery adapter against the ARM simulator with the real SDK and managed identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential

from devstack.procs import wait_until
from shared.adapters.compute_gallery import ComputeGallery, build_compute_client
from shared.builds.gallery import DefinitionRef
from shared.builds.version_body import TAG_REQUEST_ID, image_version_body, same_source
from shared.contract.model import DefinitionSpec
from shared.contract.parse import parse_build_request
from shared.core.errors import NotFoundError, TransientError
from shared.core.settings import SettingName, Settings
from tests.devstack.armsim.conftest import LOCATION, RESOURCE_GROUP, SUBSCRIPTION, ArmSim

PROVIDER = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers"
SNAPSHOT_ID = f"{PROVIDER}/Microsoft.Compute/snapshots/snap-1"
GALLERY = "gal1"
DEFINITION = DefinitionRef(SUBSCRIPTION, RESOURCE_GROUP, GALLERY, "linux-base")
SPEC = DefinitionSpec(
    os_type="Linux",
    os_state="Generalized",
    publisher="contoso",
    offer="base",
    sku="24_04",
    hyper_v_generation="V2",
)


@pytest.fixture
def gallery(fresh: ArmSim, identity_env: None) -> ComputeGallery:
    del identity_env
    settings = Settings.from_env(
        {SettingName.ARM_ENDPOINT: fresh.base_url, SettingName.ARM_CA_BUNDLE: str(fresh.cert)}
    )
    credential = ManagedIdentityCredential()
    fresh.seed(
        {"id": f"{PROVIDER}/Microsoft.Compute/galleries/{GALLERY}", "location": LOCATION},
        {
            "id": SNAPSHOT_ID,
            "location": LOCATION,
            "properties": {"diskSizeGB": 10, "osType": "Linux", "hyperVGeneration": "V2"},
        },
    )
    return ComputeGallery(lambda sub: build_compute_client(settings, sub, credential))


def request_document(version: str) -> dict[str, Any]:
    return {
        "target": {
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": RESOURCE_GROUP,
            "gallery": GALLERY,
            "definition": DEFINITION.definition,
            "version": version,
        },
        "source": {"snapshot": {"id": SNAPSHOT_ID}},
        "publishing": {
            "targetRegions": [
                {"name": "eastus", "replicaCount": 2, "storageAccountType": "Standard_ZRS"},
                {"name": "westus"},
            ],
            "endOfLifeDate": (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d"),
        },
    }


def test_definition_is_created_and_a_version_started_without_waiting(
    gallery: ComputeGallery, fresh: ArmSim
) -> None:
    settings = Settings.from_env({SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*"})
    request = parse_build_request(request_document("1.0.0"), settings, now=datetime.now(UTC))
    assert gallery.gallery_location(DEFINITION) == LOCATION
    assert not gallery.definition_exists(DEFINITION)
    gallery.create_definition(DEFINITION, SPEC, location=LOCATION)
    assert gallery.definition_exists(DEFINITION)

    version = DEFINITION.version("1.0.0")
    body = image_version_body(request, location=LOCATION, build_id="b-1")
    started = gallery.start_version(version, body)
    assert started.provisioning_state == "Creating"
    assert started.tags[TAG_REQUEST_ID] == request.request_id

    def completed() -> bool:
        status = gallery.get_version(version)
        return status is not None and status.completed

    wait_until(completed, timeout=20, interval=0.1, what="version replicated everywhere")
    final = gallery.get_version(version)
    assert final is not None
    assert {r.region for r in final.regions} == {"East US", "West US"}
    assert same_source(final.storage_profile, request)
    assert [v.name for v in gallery.list_versions(DEFINITION)] == ["1.0.0"]

    gallery.start_delete_version(version)
    wait_until(lambda: gallery.get_version(version) is None, timeout=20, what="version deleted")


def test_missing_version_is_none(gallery: ComputeGallery) -> None:
    gallery.create_definition(DEFINITION, SPEC, location=LOCATION)
    assert gallery.get_version(DEFINITION.version("9.9.9")) is None


def test_errors_arrive_as_pipeline_errors_with_the_arm_code(gallery: ComputeGallery) -> None:
    missing_gallery = DefinitionRef(SUBSCRIPTION, RESOURCE_GROUP, "nogallery", "d")
    with pytest.raises(NotFoundError) as caught:
        gallery.gallery_location(missing_gallery)
    assert caught.value.reason == "ResourceNotFound"


def test_the_gallery_location_and_an_existing_definition_are_asked_once(
    gallery: ComputeGallery, fresh: ArmSim
) -> None:
    gallery.create_definition(DEFINITION, SPEC, location=LOCATION)
    before = fresh.admin("GET", "/admin/stats")["armCalls"]

    for _ in range(3):
        assert gallery.gallery_location(DEFINITION) == LOCATION
        assert gallery.definition_exists(DEFINITION)
    missing = DefinitionRef(SUBSCRIPTION, RESOURCE_GROUP, GALLERY, "not-there")
    assert not gallery.definition_exists(missing)
    assert not gallery.definition_exists(missing)  # a "no" is never cached

    after = fresh.admin("GET", "/admin/stats")["armCalls"]
    assert after.get("GetGallery", 0) - before.get("GetGallery", 0) == 1
    assert after.get("GetGalleryImage", 0) - before.get("GetGalleryImage", 0) == 1 + 2


def test_a_throttled_put_is_not_retried_inside_the_sdk(
    gallery: ComputeGallery, fresh: ArmSim
) -> None:
    """A PUT the SDK retried after sleeping out Retry-After could land after the starter lost
    its lease (found by make chaos, F1): the PUT is sent once, and a 429 comes back to the
    starter as a transient error, which renews its lease before it tries again."""
    settings = Settings.from_env({SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*"})
    request = parse_build_request(request_document("1.0.1"), settings, now=datetime.now(UTC))
    gallery.create_definition(DEFINITION, SPEC, location=LOCATION)
    fresh.admin(
        "POST",
        "/admin/faults",
        {"rules": [{"group": "CreateUpdateGalleryImageVersion", "status": 429, "retryAfter": 30}]},
    )
    body = image_version_body(request, location=LOCATION, build_id="b-2")

    with pytest.raises(TransientError) as raised:
        gallery.start_version(DEFINITION.version("1.0.1"), body)

    assert raised.value.retry_after_seconds == 30
    rules = fresh.admin("GET", "/admin/faults")["rules"]
    assert rules[0]["hits"] == 1  # one PUT reached ARM: no retry slept inside the call
    assert gallery.get_version(DEFINITION.version("1.0.1")) is None
