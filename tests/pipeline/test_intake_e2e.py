"""Uploads and snapshots through the whole app: Event Grid -> intake -> worker -> tracker."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

from azure.storage.blob import BlobServiceClient

from devstack.stack import GALLERY, LOCATION, RESOURCE_GROUP, storage_account_id
from tests.pipeline.conftest import Stack, wait_for

DEVSTACK_ACCOUNT_ID = storage_account_id("rg-devstack")  # the sample route's account


def build_for_source(stack: Stack, source: str, timeout: float = 60) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        status, listing = stack.api("builds?limit=500")
        if status != 200:
            return None
        for build in listing["builds"]:
            if build["source"] == source.lower() and build["state"] in ("succeeded", "failed"):
                result: dict[str, Any] = build
                return result
        return None

    found: dict[str, Any] = wait_for(find, timeout=timeout, what=f"a finished build of {source}")
    return found


def test_a_vhd_upload_becomes_a_version_with_exactly_the_requested_profile(stack: Stack) -> None:
    stack.seed({"id": DEVSTACK_ACCOUNT_ID, "location": LOCATION, "properties": {}})
    definition = "e2e-upload"
    stack.seed_definition(definition)
    name = f"ubuntu/e2e-{uuid.uuid4().hex[:8]}.vhd"
    manifest = {
        "target": {"definition": definition, "version": "5.0.0"},
        "publishing": {
            "targetRegions": [
                {"name": "westeurope", "replicaCount": 3, "storageAccountType": "Premium_LRS"},
                {"name": "eastus2", "excludeFromLatest": True},
            ],
            "replicaCount": 2,
            "storageAccountType": "Standard_ZRS",
            "endOfLifeDate": "2031-06-30T00:00:00Z",
            "excludeFromLatest": False,
        },
    }

    url = stack.upload_vhd("vhds", name, 32 * 1024 * 1024)
    service = BlobServiceClient.from_connection_string(stack.storage_connection)
    service.get_blob_client("vhds", f"{name}.json").upload_blob(json.dumps(manifest))
    build = build_for_source(stack, url)

    assert build["state"] == "succeeded", build["error"]
    version = stack.compute().gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, definition, "5.0.0"
    )
    profile = version.publishing_profile
    assert profile is not None and profile.target_regions is not None
    regions = [
        (r.name, r.regional_replica_count, r.storage_account_type, r.exclude_from_latest)
        for r in profile.target_regions
    ]
    assert regions == [
        ("West Europe", 3, "Premium_LRS", False),
        ("East US 2", 2, "Standard_ZRS", True),
    ]
    assert profile.replica_count == 2 and profile.storage_account_type == "Standard_ZRS"
    assert profile.end_of_life_date is not None
    assert profile.end_of_life_date.isoformat().startswith("2031-06-30T00:00:00")
    assert profile.exclude_from_latest is False
    assert version.storage_profile.os_disk_image.source.uri == url


def test_a_snapshot_without_a_generation_builds_into_a_gen2_definition(stack: Stack) -> None:
    """Azure leaves ``hyperVGeneration`` unset unless it is sent, and builds such a snapshot
    into a V2 definition. The snapshot is written asynchronously: intake queues it once its
    write has succeeded."""
    definition = "e2e-no-generation"
    stack.seed_definition(definition)  # a Gen2 (V2) definition
    name = f"e2e-nogen-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "location": LOCATION,
        "tags": {"gallery-publish": f"{GALLERY}/{definition}:1.0.0"},
        "properties": {
            "creationData": {"createOption": "Empty"},
            "diskSizeGB": 8,
            "osType": "Linux",
        },
    }
    snapshot = (
        stack.compute()
        .snapshots.begin_create_or_update(
            "rg-builds", name, io.BytesIO(json.dumps(body).encode()), polling_interval=0
        )
        .result(timeout=30)
    )
    assert snapshot.properties is not None
    assert snapshot.properties.hyper_v_generation is None

    build = build_for_source(stack, str(snapshot.id))

    assert build["state"] == "succeeded", build["error"]
    version = stack.compute().gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, definition, "1.0.0"
    )
    assert version.properties is not None
    assert version.properties.provisioning_state == "Succeeded"


def test_a_tagged_snapshot_becomes_a_version(stack: Stack) -> None:
    definition = "e2e-snapshot"
    stack.seed_definition(definition)
    name = f"e2e-snap-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "location": LOCATION,
        "tags": {"gallery-publish": f"{GALLERY}/{definition}:7.0.0"},
        "properties": {
            "creationData": {"createOption": "Empty"},
            "diskSizeGB": 8,
            "osType": "Linux",
            "hyperVGeneration": "V2",
        },
    }
    snapshots = stack.compute().snapshots
    snapshot = snapshots.begin_create_or_update(
        "rg-builds", name, io.BytesIO(json.dumps(body).encode()), polling_interval=0
    ).result(timeout=30)

    build = build_for_source(stack, str(snapshot.id))

    assert build["state"] == "succeeded", build["error"]
    assert build["target"]["version"] == "7.0.0"
    version = stack.compute().gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, definition, "7.0.0"
    )
    assert version.storage_profile.os_disk_image.source.id.lower() == str(snapshot.id).lower()
    # A later write of the same snapshot (a tag update) queues nothing new.
    body["tags"]["owner"] = "platform"
    snapshots.begin_create_or_update(
        "rg-builds", name, io.BytesIO(json.dumps(body).encode()), polling_interval=0
    ).result(timeout=30)
    time.sleep(3)
    _, listing = stack.api("builds?limit=500")
    same_source = [b for b in listing["builds"] if b["source"] == str(snapshot.id).lower()]
    assert len(same_source) == 1
