"""Disks and snapshots are DiskRP long-running operations, with the server defaults Azure reads.

Every expectation here is a recorded Azure session (azure-cli and azure-sdk-for-python test
recordings) or a REST spec example; docs/devstack.md ("Disks, snapshots and managed images")
cites each one.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from devstack.armsim.disk_bodies import performance
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
    snapshot_version_body,
)

DISK_API = "2026-03-02"
#: The api-version of the 2025 recording (azure-cli test_disk_snapshot_hyper_v_generation...).
RECORDED_API = "2023-04-02"
LRO_TIMEOUT = 20
#: Stretches every operation so a test sees it running (POST /admin/clock ends it).
SLOW = {"slowOperations": 1_000_000}


def disk_path(name: str) -> str:
    return rg_path("Microsoft.Compute/disks", name)


def snapshot_path(name: str) -> str:
    return rg_path("Microsoft.Compute/snapshots", name)


def empty_disk(size_gb: int = 4, sku: str = "Premium_LRS", **props: Any) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size_gb, **props},
        "sku": {"name": sku},
        "tags": {},
    }


def copy_of(source_id: str, *, location: str = LOCATION, **props: Any) -> dict[str, Any]:
    return {
        "location": location,
        "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": source_id},
            **props,
        },
        "sku": {"name": "Standard_LRS"},
        "tags": {},
    }


def put(raw: RawArm, path: str, body: dict[str, Any], api: str = DISK_API) -> Any:
    return raw.call("PUT", path, body, api_version=api)


def create(raw: RawArm, path: str, body: dict[str, Any], api: str = DISK_API) -> dict[str, Any]:
    """PUT, wait for the operation, and return the resource as read afterwards."""
    reply = put(raw, path, body, api)
    assert reply.status_code == 202, reply.text
    status = raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded", status
    got = raw.call("GET", path, api_version=api)
    assert got.status_code == 200
    result: dict[str, Any] = got.json()
    return result


def test_disk_put_is_accepted_with_both_headers_and_completes_with_the_recorded_body(
    fresh: ArmSim, raw: RawArm
) -> None:
    fresh.admin("POST", "/admin/faults", SLOW)
    reply = put(raw, disk_path("disk1"), empty_disk(), RECORDED_API)

    assert reply.status_code == 202
    disk_id = resource_id("Microsoft.Compute/disks", "disk1")
    assert reply.json() == {
        "name": "disk1",
        "id": disk_id,
        "type": "Microsoft.Compute/disks",
        "location": LOCATION,
        "tags": {},
        "sku": {"name": "Premium_LRS"},
        "properties": {
            "creationData": {"createOption": "Empty"},
            "diskSizeGB": 4,
            "provisioningState": "Updating",
        },
    }
    operations = (
        rf"{re.escape(fresh.base_url)}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute"
        rf"/locations/{LOCATION}/DiskOperations/(?P<id>[0-9a-f-]{{36}})\?p=[0-9a-f-]{{36}}&"
    )
    poll = re.fullmatch(
        operations + f"api-version={RECORDED_API}", reply.headers["Azure-AsyncOperation"]
    )
    monitor = re.fullmatch(
        operations + f"monitor=true&api-version={RECORDED_API}", reply.headers["Location"]
    )
    assert poll and monitor and poll.group("id") == monitor.group("id")
    assert "azure-asyncnotification" not in reply.headers
    assert reply.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/CreateUpdateDisks3Min;"
    )

    running = raw.session.get(reply.headers["Azure-AsyncOperation"], timeout=10)
    assert list(running.json()) == ["startTime", "status", "name"]
    assert running.json()["status"] == "InProgress"
    assert running.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/GetOperation3Min;"
    )
    assert raw.session.get(reply.headers["Location"], timeout=10).status_code == 202
    during = raw.call("GET", disk_path("disk1"), api_version=RECORDED_API).json()
    assert during["properties"] == reply.json()["properties"]  # nothing server-side yet

    fresh.admin("POST", "/admin/clock", {"advanceSeconds": 10_000_000})
    done = raw.session.get(reply.headers["Azure-AsyncOperation"], timeout=10).json()
    assert list(done) == ["startTime", "endTime", "status", "properties", "name"]
    assert done["status"] == "Succeeded"
    disk = raw.call("GET", disk_path("disk1"), api_version=RECORDED_API).json()
    assert done["properties"]["output"] == disk
    assert raw.session.get(reply.headers["Location"], timeout=10).json() == disk

    assert disk["sku"] == {"name": "Premium_LRS", "tier": "Premium"}
    props = disk["properties"]
    assert list(props) == [
        "creationData",
        "diskSizeGB",
        "diskIOPSReadWrite",
        "diskMBpsReadWrite",
        "encryption",
        "networkAccessPolicy",
        "publicNetworkAccess",
        "timeCreated",
        "provisioningState",
        "diskState",
        "diskSizeBytes",
        "uniqueId",
        "tier",
    ]
    assert props["diskIOPSReadWrite"] == 120 and props["diskMBpsReadWrite"] == 25
    assert props["tier"] == "P1"
    assert props["encryption"] == {"type": "EncryptionAtRestWithPlatformKey"}
    assert props["networkAccessPolicy"] == "AllowAll"
    assert props["publicNetworkAccess"] == "Enabled"
    assert props["provisioningState"] == "Succeeded"
    assert props["diskState"] == "Unattached"
    assert props["diskSizeBytes"] == 4 * 1024**3
    assert re.fullmatch(r"[0-9a-f-]{36}", props["uniqueId"])


@pytest.mark.parametrize(
    ("sku", "size_gb", "expected"),
    [
        ("Premium_LRS", 4, {"diskIOPSReadWrite": 120, "diskMBpsReadWrite": 25, "tier": "P1"}),
        ("Premium_LRS", 128, {"diskIOPSReadWrite": 500, "diskMBpsReadWrite": 100, "tier": "P10"}),
        ("Premium_LRS", 200, {"diskIOPSReadWrite": 1100, "diskMBpsReadWrite": 125, "tier": "P15"}),
        ("Premium_LRS", 1025, {"diskIOPSReadWrite": 7500, "diskMBpsReadWrite": 250, "tier": "P40"}),
        ("Standard_LRS", 200, {"diskIOPSReadWrite": 500, "diskMBpsReadWrite": 60}),
        ("StandardSSD_LRS", 200, {}),
    ],
)
def test_disk_performance_follows_the_size_tables(
    sku: str, size_gb: int, expected: dict[str, Any]
) -> None:
    assert performance(sku, size_gb, {}) == expected


def test_standard_disk_without_sku_reads_standard_lrs_without_a_tier(
    fresh: ArmSim, raw: RawArm
) -> None:
    body = empty_disk(200)
    del body["sku"]
    disk = create(raw, disk_path("hdd"), body)
    assert disk["sku"] == {"name": "Standard_LRS", "tier": "Standard"}
    assert "tier" not in disk["properties"]
    assert (disk["properties"]["diskIOPSReadWrite"], disk["properties"]["diskMBpsReadWrite"]) == (
        500,
        60,
    )


def test_snapshot_copy_of_a_disk_has_no_invented_generation_and_the_recorded_fields(
    fresh: ArmSim, raw: RawArm
) -> None:
    disk = create(raw, disk_path("disk2"), empty_disk())
    reply = put(raw, snapshot_path("snap3"), copy_of(disk["id"]), "2023-10-02")
    assert reply.status_code == 202
    assert reply.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/HighCostSnapshotCreateHydrate3Min;"
    )
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])

    old = raw.call("GET", snapshot_path("snap3"), api_version="2023-10-02").json()
    assert old["sku"] == {"name": "Standard_LRS", "tier": "Standard"}
    assert old["properties"] == {
        "creationData": {
            "createOption": "Copy",
            "sourceResourceId": disk["id"],
            "sourceUniqueId": disk["properties"]["uniqueId"],
        },
        "diskSizeGB": 4,
        "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        "incremental": False,
        "networkAccessPolicy": "AllowAll",
        "publicNetworkAccess": "Enabled",
        "timeCreated": old["properties"]["timeCreated"],
        "provisioningState": "Succeeded",
        "diskState": "Unattached",
        "diskSizeBytes": 4 * 1024**3,
        "uniqueId": old["properties"]["uniqueId"],
    }
    new = raw.call("GET", snapshot_path("snap3"), api_version=DISK_API).json()
    assert new["properties"]["snapshotAccessState"] == "Available"  # 2024-03-02 and later
    assert "completionPercent" not in new["properties"]


def test_a_copy_keeps_the_generation_its_source_has(fresh: ArmSim, raw: RawArm) -> None:
    disk = create(raw, disk_path("gen2"), empty_disk(hyperVGeneration="V2", osType="Linux"))
    snapshot = create(raw, snapshot_path("gen2-snap"), copy_of(disk["id"]))
    assert snapshot["properties"]["hyperVGeneration"] == "V2"
    assert snapshot["properties"]["osType"] == "Linux"
    assert list(snapshot["properties"])[:3] == ["osType", "hyperVGeneration", "creationData"]


def test_a_copy_from_another_region_or_of_nothing_is_azures_404(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    source = create(raw, disk_path("west-disk"), {**empty_disk(), "location": "westus"})
    reply = put(raw, snapshot_path("east-copy"), copy_of(source["id"]))
    assert reply.status_code == 404
    assert reply.json() == {
        "error": {"code": "NotFound", "message": "Resource west-disk is not found."}
    }
    assert raw.call("GET", snapshot_path("east-copy"), api_version=DISK_API).status_code == 404

    missing = resource_id("Microsoft.Compute/snapshots", "gone")
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.snapshots.begin_create_or_update(
            RESOURCE_GROUP,
            "copy-of-nothing",
            m.Snapshot(
                location=LOCATION,
                properties=m.SnapshotProperties(
                    creation_data=m.CreationData(create_option="Copy", source_resource_id=missing)
                ),
            ),
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "NotFound"
    assert caught.value.error.message == "Resource gone is not found."


def test_copy_start_copies_incremental_snapshots_across_regions_only(
    fresh: ArmSim, raw: RawArm
) -> None:
    disk = create(raw, disk_path("src-disk"), {**empty_disk(), "location": "westus"})
    incremental = create(
        raw,
        snapshot_path("snapa"),
        {**copy_of(disk["id"], incremental=True), "location": "westus"},
    )
    assert re.fullmatch(r"[0-9a-f-]{36}", incremental["properties"]["incrementalSnapshotFamilyId"])

    body = copy_of(incremental["id"], incremental=True)
    body["properties"]["creationData"]["createOption"] = "CopyStart"
    reply = put(raw, snapshot_path("snapb"), body, RECORDED_API)
    assert reply.status_code == 202, reply.text
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    copied = raw.call("GET", snapshot_path("snapb"), api_version=RECORDED_API).json()
    assert copied["location"] == LOCATION  # another region than its source
    assert copied["properties"]["completionPercent"] < 100
    assert "snapshotAccessState" not in copied["properties"]  # not in 2023-04-02 reads
    assert (
        raw.call("GET", snapshot_path("snapb"), api_version=DISK_API).json()["properties"][
            "snapshotAccessState"
        ]
        == "Pending"
    )

    full = create(raw, snapshot_path("full"), {**copy_of(disk["id"]), "location": "westus"})
    not_incremental = copy_of(full["id"], incremental=True)
    not_incremental["properties"]["creationData"]["createOption"] = "CopyStart"
    refused = put(raw, snapshot_path("full-copy"), not_incremental)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "InvalidParameter"
    assert refused.json()["error"]["target"] == "incremental"

    from_disk = copy_of(disk["id"], incremental=True)
    from_disk["properties"]["creationData"]["createOption"] = "CopyStart"
    wrong = put(raw, snapshot_path("disk-copy"), from_disk)
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": {"code": "InvalidParameter", "message": "Entity not of expected type"}
    }


def test_an_existing_disk_cannot_change_its_source(fresh: ArmSim, raw: RawArm) -> None:
    first = create(raw, disk_path("one"), empty_disk())
    second = create(raw, disk_path("two"), empty_disk())
    create(raw, snapshot_path("snap"), copy_of(first["id"]))
    reply = put(raw, snapshot_path("snap"), copy_of(second["id"]))
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "code": "BadRequest",
        "message": "Changing property 'sourceResourceId' is not allowed for existing disk 'snap'.",
    }
    again = create(raw, snapshot_path("snap"), {**copy_of(first["id"]), "tags": {"a": "b"}})
    assert again["tags"] == {"a": "b"}


def test_delete_is_accepted_with_both_headers_and_gone_when_the_operation_ends(
    fresh: ArmSim, raw: RawArm
) -> None:
    create(raw, snapshot_path("doomed"), {"location": LOCATION, "properties": {"diskSizeGB": 8}})
    fresh.admin("POST", "/admin/faults", SLOW)
    reply = raw.call("DELETE", snapshot_path("doomed"), api_version=DISK_API)
    assert reply.status_code == 202
    assert reply.content == b""
    assert "/DiskOperations/" in reply.headers["Azure-AsyncOperation"]
    assert "monitor=true" in reply.headers["Location"]
    assert reply.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/DeleteDisks3Min;"
    )
    during = raw.call("GET", snapshot_path("doomed"), api_version=DISK_API).json()
    assert during["properties"]["provisioningState"] == "Deleting"
    fresh.admin("POST", "/admin/clock", {"advanceSeconds": 10_000_000})
    done = raw.session.get(reply.headers["Azure-AsyncOperation"], timeout=10).json()
    assert list(done) == ["startTime", "endTime", "status", "name"]  # no output for a delete
    assert raw.call("GET", snapshot_path("doomed"), api_version=DISK_API).status_code == 404
    gone = raw.call("DELETE", snapshot_path("doomed"), api_version=DISK_API)
    assert gone.status_code == 204


@pytest.mark.parametrize(
    "api", ["2022-03-02", "2022-07-02", "2023-01-02", "2023-04-02", "2023-10-02", "2025-01-02"]
)
def test_older_disk_api_versions_are_accepted(fresh: ArmSim, raw: RawArm, api: str) -> None:
    disk = create(raw, disk_path(f"v{api}"), empty_disk(), api)
    assert disk["properties"]["provisioningState"] == "Succeeded"
    listed = raw.call("GET", rg_path("Microsoft.Compute/disks"), api_version=api)
    assert [d["name"] for d in listed.json()["value"]] == [f"v{api}"]


def test_unknown_disk_api_versions_are_still_refused(fresh: ArmSim, raw: RawArm) -> None:
    reply = raw.call("GET", disk_path("x"), api_version="2021-12-01")
    assert reply.status_code == 400
    assert reply.json()["error"]["target"] == "api-version"


def test_the_sdk_waits_for_disk_and_snapshot_operations(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    disk = compute.disks.begin_create_or_update(
        RESOURCE_GROUP,
        "sdk-disk",
        m.Disk(
            location=LOCATION,
            sku=m.DiskSku(name="Premium_LRS"),
            properties=m.DiskProperties(
                disk_size_gb=128, creation_data=m.CreationData(create_option="Empty")
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert disk.properties is not None
    assert disk.properties.provisioning_state == "Succeeded"
    assert disk.properties.tier == "P10"
    assert disk.properties.hyper_v_generation is None

    snapshot = compute.snapshots.begin_create_or_update(
        RESOURCE_GROUP,
        "sdk-snap",
        m.Snapshot(
            location=LOCATION,
            properties=m.SnapshotProperties(
                creation_data=m.CreationData(create_option="Copy", source_resource_id=disk.id)
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert snapshot.properties is not None
    assert snapshot.properties.disk_size_gb == 128
    assert snapshot.properties.hyper_v_generation is None

    updated = compute.snapshots.begin_update(
        RESOURCE_GROUP, "sdk-snap", m.SnapshotUpdate(tags={"team": "platform"})
    ).result(timeout=LRO_TIMEOUT)
    assert updated.tags == {"team": "platform"}
    assert updated.properties is not None
    assert updated.properties.unique_id == snapshot.properties.unique_id

    compute.snapshots.begin_delete(RESOURCE_GROUP, "sdk-snap").result(timeout=LRO_TIMEOUT)
    compute.disks.begin_delete(RESOURCE_GROUP, "sdk-disk").result(timeout=LRO_TIMEOUT)
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(RESOURCE_GROUP, "sdk-disk")


def test_the_sdk_sees_the_refusals_as_azure_answers_them(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    fresh.seed(
        {
            "id": resource_id("Microsoft.Compute/snapshots", "full"),
            "location": LOCATION,
            "properties": {"diskSizeGB": 8},
        }
    )
    copy_start = m.Snapshot(
        location="westus",
        properties=m.SnapshotProperties(
            incremental=True,
            creation_data=m.CreationData(
                create_option="CopyStart",
                source_resource_id=resource_id("Microsoft.Compute/snapshots", "full"),
            ),
        ),
    )
    with pytest.raises(HttpResponseError) as caught:
        compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "copy", copy_start)
    assert caught.value.status_code == 400
    fresh.seed(
        {
            "id": resource_id("Microsoft.Compute/snapshots", "mine"),
            "location": LOCATION,
            "properties": {
                "diskSizeGB": 8,
                "creationData": {"createOption": "Import", "sourceUri": "https://a/b.vhd"},
            },
        }
    )
    with pytest.raises(HttpResponseError) as changed:  # 400 BadRequest
        compute.snapshots.begin_create_or_update(
            RESOURCE_GROUP,
            "mine",
            m.Snapshot(
                location=LOCATION,
                properties=m.SnapshotProperties(
                    creation_data=m.CreationData(
                        create_option="Import", source_uri="https://a/c.vhd"
                    )
                ),
            ),
        )
    assert changed.value.status_code == 400
    assert changed.value.error is not None
    assert changed.value.error.message == (
        "Changing property 'sourceUri' is not allowed for existing disk 'mine'."
    )


def test_seeded_disks_are_succeeded_at_once_with_the_same_defaults(fresh: ArmSim) -> None:
    (seeded,) = fresh.seed(
        {
            "id": resource_id("Microsoft.Compute/disks", "seeded"),
            "location": LOCATION,
            "sku": {"name": "Premium_LRS"},
            "properties": {"diskSizeGB": 256},
        }
    )
    assert seeded["properties"]["tier"] == "P15"
    assert "hyperVGeneration" not in seeded["properties"]


def test_a_snapshot_without_a_generation_builds_into_a_gen2_definition(
    fresh: ArmSim, raw: RawArm, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh, hyper_v="V2")
    unset = create(
        raw, snapshot_path("no-gen"), {"location": LOCATION, "properties": {"diskSizeGB": 8}}
    )
    assert "hyperVGeneration" not in unset["properties"]
    version = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        "gal",
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(unset["id"])),
    ).result(timeout=LRO_TIMEOUT)
    assert version.as_dict()["properties"]["provisioningState"] == "Succeeded"

    gen1 = create(
        raw,
        snapshot_path("gen1"),
        {"location": LOCATION, "properties": {"diskSizeGB": 8, "hyperVGeneration": "V1"}},
    )
    refused = raw.call(
        "PUT",
        rg_path("Microsoft.Compute/galleries", "gal", "images", IMAGE, "versions", "1.0.1"),
        snapshot_version_body(gen1["id"]),
    )
    assert refused.status_code == 400
    assert "different Hypervisor generation ['V1']" in refused.json()["error"]["message"]


def test_an_update_keeps_what_the_snapshot_was_created_with(fresh: ArmSim, raw: RawArm) -> None:
    disk = create(raw, disk_path("base"), empty_disk(hyperVGeneration="V2"))
    body = copy_of(disk["id"], incremental=True)
    body["sku"] = {"name": "Standard_ZRS"}
    first = create(raw, snapshot_path("inc"), body)
    tags_only = {"location": LOCATION, "tags": {"team": "x"}, "properties": {}}
    updated = create(raw, snapshot_path("inc"), tags_only)
    assert updated["tags"] == {"team": "x"}
    assert updated["sku"] == {"name": "Standard_ZRS", "tier": "Standard"}
    kept = ("incremental", "hyperVGeneration", "uniqueId", "timeCreated", "creationData")
    assert {k: updated["properties"][k] for k in kept} == {k: first["properties"][k] for k in kept}
