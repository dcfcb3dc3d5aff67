"""Gallery image versions with the real azure-mgmt-compute: every source kind, LRO, expand,
paging, update and delete."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m
from azure.storage.blob import BlobServiceClient

from devstack.procs import wait_until
from devstack.vhdgen import upload_fixed_vhd
from tests.conftest import AzuriteInstance
from tests.devstack.armsim.conftest import (
    GALLERY,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    STORAGE_ACCOUNT_ID,
    SUBSCRIPTION,
    ArmSim,
    RawArm,
    resource_id,
    rg_path,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
    timed,
)

GIB = 1024**3
LRO_TIMEOUT = 20


def _version(storage_profile: m.GalleryImageVersionStorageProfile) -> m.GalleryImageVersion:
    return m.GalleryImageVersion(
        location=LOCATION,
        properties=m.GalleryImageVersionProperties(
            publishing_profile=m.GalleryImageVersionPublishingProfile(
                target_regions=[m.TargetRegion(name=LOCATION)]
            ),
            storage_profile=storage_profile,
        ),
    )


def _create(compute: ComputeManagementClient, name: str, version: m.GalleryImageVersion) -> Any:
    poller = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, name, version
    )
    return poller.result(timeout=LRO_TIMEOUT)


def test_gallery_and_definition_created_through_the_sdk(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    gallery = compute.galleries.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        m.Gallery(location=LOCATION, properties=m.GalleryProperties(description="team images")),
    ).result(timeout=LRO_TIMEOUT)
    assert gallery.provisioning_state == "Succeeded"
    assert gallery.identifier is not None
    assert gallery.identifier.unique_name == f"{SUBSCRIPTION}-{GALLERY.upper()}"
    image = compute.gallery_images.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        m.GalleryImage(
            location=LOCATION,
            properties=m.GalleryImageProperties(
                os_type="Linux",
                os_state="Generalized",
                hyper_v_generation="V2",
                identifier=m.GalleryImageIdentifier(publisher="contoso", offer="ubuntu", sku="24"),
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert image.provisioning_state == "Succeeded"
    assert image.architecture == "x64"
    listed = list(compute.gallery_images.list_by_gallery(RESOURCE_GROUP, GALLERY))
    assert [i.name for i in listed] == [IMAGE]


def test_version_from_snapshot_has_server_defaults_and_completes_fast(
    fresh: ArmSim, compute: ComputeManagementClient, raw: RawArm
) -> None:
    seed_gallery(fresh)
    snapshot_id = seed_snapshot(fresh, "snap-os", size_gb=10)
    reply = raw.call(
        "PUT",
        f"{IMAGE_ID}/versions/1.0.0",
        {
            "location": LOCATION,
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "eastus"}, {"name": "westus2"}]},
                "storageProfile": {"osDiskImage": {"source": {"id": snapshot_id}}},
            },
        },
    )
    assert reply.status_code == 201
    assert "Location" not in reply.headers
    assert "/capsOperations/" in reply.headers["Azure-AsyncOperation"]
    assert "api-version=2026-03-03" in reply.headers["Azure-AsyncOperation"]
    assert reply.headers["x-ms-ratelimit-remaining-resource"].startswith(
        "Microsoft.Compute/CreateUpdateGalleryImageVersion3Min;"
    )
    props = reply.json()["properties"]
    assert props["provisioningState"] == "Creating"
    profile = props["publishingProfile"]
    assert [r["name"] for r in profile["targetRegions"]] == ["East US", "West US 2"]
    assert profile["replicaCount"] == 1
    assert profile["storageAccountType"] == "Standard_LRS"
    assert profile["excludeFromLatest"] is False
    assert profile["publishedDate"].endswith("+00:00")
    assert props["storageProfile"]["osDiskImage"]["hostCaching"] == "ReadWrite"
    assert "sizeInGB" not in props["storageProfile"]["osDiskImage"]
    assert props["safetyProfile"] == {
        "reportedForPolicyViolation": False,
        "allowDeletionOfReplicatedLocations": False,
    }
    status = raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded"
    assert status["endTime"] > status["startTime"]

    # the SDK, tight polling: a small single-region version completes in under 2 s
    version, seconds = timed(
        lambda: _create(
            compute,
            "1.0.1",
            _version(
                m.GalleryImageVersionStorageProfile(
                    os_disk_image=m.GalleryOSDiskImage(
                        source=m.GalleryDiskImageSource(id=seed_snapshot(fresh, "snap-2"))
                    )
                )
            ),
        )
    )
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.os_disk_image.size_in_gb == 10
    assert seconds < 2.0


def _seed_vm_sources(sim: ArmSim) -> dict[str, str]:
    disk_id = resource_id("Microsoft.Compute/disks", "os-disk")
    data_disk_id = resource_id("Microsoft.Compute/disks", "data-disk")
    image_id = resource_id("Microsoft.Compute/images", "golden")
    vm_id = resource_id("Microsoft.Compute/virtualMachines", "builder")
    sim.seed(
        {
            "id": disk_id,
            "location": LOCATION,
            "properties": {"diskSizeGB": 16, "osType": "Linux", "hyperVGeneration": "V2"},
        },
        {"id": data_disk_id, "location": LOCATION, "properties": {"diskSizeGB": 8}},
        {
            "id": image_id,
            "location": LOCATION,
            "properties": {
                "hyperVGeneration": "V2",
                "storageProfile": {
                    "osDisk": {"osType": "Linux", "osState": "Generalized", "diskSizeGB": 12},
                    "dataDisks": [{"lun": 0, "diskSizeGB": 4}],
                },
            },
        },
        {
            "id": vm_id,
            "location": LOCATION,
            "properties": {
                "storageProfile": {
                    "osDisk": {"osType": "Linux", "managedDisk": {"id": disk_id}},
                },
                "instanceView": {
                    "hyperVGeneration": "V2",
                    "statuses": [{"code": "OSState/generalized"}],
                },
            },
        },
    )
    return {"disk": disk_id, "data_disk": data_disk_id, "image": image_id, "vm": vm_id}


def test_versions_from_disk_managed_image_vm_and_another_version(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    ids = _seed_vm_sources(fresh)
    from_disk = _create(
        compute,
        "1.0.0",
        _version(
            m.GalleryImageVersionStorageProfile(
                os_disk_image=m.GalleryOSDiskImage(source=m.GalleryDiskImageSource(id=ids["disk"])),
                data_disk_images=[
                    m.GalleryDataDiskImage(
                        lun=1, source=m.GalleryDiskImageSource(id=ids["data_disk"])
                    )
                ],
            )
        ),
    )
    assert from_disk.storage_profile.os_disk_image.size_in_gb == 16
    assert from_disk.storage_profile.data_disk_images[0].size_in_gb == 8
    assert from_disk.storage_profile.data_disk_images[0].host_caching == "ReadOnly"

    from_image = _create(
        compute,
        "1.1.0",
        _version(
            m.GalleryImageVersionStorageProfile(
                source=m.GalleryArtifactVersionFullSource(id=ids["image"])
            )
        ),
    )
    assert from_image.storage_profile.os_disk_image.size_in_gb == 12
    assert from_image.storage_profile.data_disk_images[0].lun == 0

    from_vm = _create(
        compute,
        "1.2.0",
        _version(
            m.GalleryImageVersionStorageProfile(
                source=m.GalleryArtifactVersionFullSource(virtual_machine_id=ids["vm"])
            )
        ),
    )
    assert from_vm.storage_profile.os_disk_image.size_in_gb == 16

    from_version = _create(
        compute,
        "2.0.0",
        _version(
            m.GalleryImageVersionStorageProfile(
                source=m.GalleryArtifactVersionFullSource(id=from_disk.id)
            )
        ),
    )
    assert from_version.provisioning_state == "Succeeded"
    assert from_version.storage_profile.os_disk_image.size_in_gb == 16


@pytest.fixture
def vhd_container(azurite: AzuriteInstance) -> Any:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(f"vhds-{uuid.uuid4().hex[:8]}")
    container.create_container(timeout=10)
    return container


def _seed_storage_account(sim: ArmSim) -> None:
    sim.seed({"id": STORAGE_ACCOUNT_ID, "location": LOCATION, "properties": {}})


def test_version_from_a_vhd_in_azurite(
    fresh: ArmSim, compute: ComputeManagementClient, vhd_container: Any
) -> None:
    seed_gallery(fresh)
    _seed_storage_account(fresh)
    account = compute.galleries._client
    del account
    blob = vhd_container.get_blob_client("os.vhd")
    upload_fixed_vhd(blob, 3 * GIB)
    version = _create(
        compute,
        "1.0.0",
        _version(
            m.GalleryImageVersionStorageProfile(
                os_disk_image=m.GalleryOSDiskImage(
                    source=m.GalleryDiskImageSource(
                        uri=blob.url, storage_account_id=STORAGE_ACCOUNT_ID
                    )
                )
            )
        ),
    )
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.os_disk_image.size_in_gb == 3
    assert version.storage_profile.os_disk_image.source.uri == blob.url


def test_misaligned_vhd_fails_the_operation_asynchronously(
    fresh: ArmSim, compute: ComputeManagementClient, vhd_container: Any
) -> None:
    seed_gallery(fresh)
    _seed_storage_account(fresh)
    blob = vhd_container.get_blob_client("odd.vhd")
    upload_fixed_vhd(blob, GIB + 512)  # not a whole number of MiB
    poller = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        _version(
            m.GalleryImageVersionStorageProfile(
                os_disk_image=m.GalleryOSDiskImage(
                    source=m.GalleryDiskImageSource(
                        uri=blob.url, storage_account_id=STORAGE_ACCOUNT_ID
                    )
                )
            )
        ),
    )
    assert poller.status() == "InProgress"  # accepted first, as Azure does
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=LRO_TIMEOUT)
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidParameter"
    version = compute.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    assert version.provisioning_state == "Failed"


def test_replication_status_progresses_and_state_follows_all_regions(
    fresh: ArmSim, raw: RawArm
) -> None:
    seed_gallery(fresh)
    snapshot_id = seed_snapshot(fresh, "big", size_gb=500)
    fresh.admin("POST", "/admin/faults", {"slowRegions": {"westeurope": 3}})
    reply = raw.call(
        "PUT",
        f"{IMAGE_ID}/versions/1.0.0",
        {
            "location": LOCATION,
            "properties": {
                "publishingProfile": {
                    "targetRegions": [{"name": "eastus"}, {"name": "westeurope"}]
                },
                "storageProfile": {"osDiskImage": {"source": {"id": snapshot_id}}},
            },
        },
    )
    assert reply.status_code == 201
    seen: list[dict[str, Any]] = []

    def completed() -> bool:
        body = raw.call(
            "GET", f"{IMAGE_ID}/versions/1.0.0", params={"$expand": "ReplicationStatus"}
        ).json()["properties"]
        seen.append(body)
        return bool(body["provisioningState"] == "Succeeded")

    wait_until(completed, timeout=15, interval=0.05, what="replication")
    final = seen[-1]["replicationStatus"]
    assert final["aggregatedState"] == "Completed"
    assert {s["state"] for s in final["summary"]} == {"Completed"}
    # while eastus was complete and the slow region was not, the version was still Creating
    partial = [
        s
        for s in seen
        if s["replicationStatus"]["summary"][0]["state"] == "Completed"
        and s["replicationStatus"]["summary"][1]["state"] == "Replicating"
    ]
    assert partial, "expected a moment with one region done and the slow one replicating"
    assert all(s["provisioningState"] == "Creating" for s in partial)
    assert all(s["replicationStatus"]["aggregatedState"] == "InProgress" for s in partial)
    progress = [s["replicationStatus"]["summary"][1]["progress"] for s in seen]
    assert progress == sorted(progress)
    assert 0 < max(p for p in progress if p < 100) < 100
    fresh.admin("DELETE", "/admin/faults")


def test_list_pages_by_next_link_with_api_version(
    fresh: ArmSim, compute: ComputeManagementClient, raw: RawArm
) -> None:
    seed_gallery(fresh)
    names = [f"1.0.{i}" for i in range(5)]
    fresh.seed(
        *[
            {
                "id": f"{IMAGE_ID}/versions/{name}",
                "location": LOCATION,
                "properties": {
                    "storageProfile": {
                        "osDiskImage": {"source": {"id": f"/snap/{name}"}, "sizeInGB": 4}
                    }
                },
            }
            for name in names
        ]
    )
    fresh.admin("POST", "/admin/config", {"pageSize": 2})
    first = raw.call("GET", f"{IMAGE_ID}/versions", api_version="2025-03-03").json()
    assert len(first["value"]) == 2
    assert "api-version=2025-03-03" in first["nextLink"]
    listed = list(
        compute.gallery_image_versions.list_by_gallery_image(RESOURCE_GROUP, GALLERY, IMAGE)
    )
    assert [v.name for v in listed] == names
    assert all(v.provisioning_state == "Succeeded" for v in listed)


def test_patch_adds_a_region_then_delete_removes_the_version(
    fresh: ArmSim, compute: ComputeManagementClient, raw: RawArm
) -> None:
    seed_gallery(fresh)
    snapshot_id = seed_snapshot(fresh, "snap")
    reply = raw.call("PUT", f"{IMAGE_ID}/versions/1.0.0", snapshot_version_body(snapshot_id))
    raw.wait_operation(reply.headers["Azure-AsyncOperation"])

    patched = raw.call(
        "PATCH",
        f"{IMAGE_ID}/versions/1.0.0",
        {
            "properties": {
                "publishingProfile": {
                    "targetRegions": [{"name": "eastus"}, {"name": "northeurope"}],
                    "excludeFromLatest": True,
                }
            }
        },
    )
    assert patched.status_code == 200
    assert patched.json()["properties"]["provisioningState"] == "Updating"
    raw.wait_operation(patched.headers["Azure-AsyncOperation"])

    version = compute.gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", expand="ReplicationStatus"
    )
    assert version.provisioning_state == "Succeeded"
    assert version.publishing_profile.exclude_from_latest is True
    assert [r.name for r in version.publishing_profile.target_regions] == [
        "East US",
        "North Europe",
    ]
    assert version.replication_status.aggregated_state == "Completed"

    # the SDK's update path (PATCH, model under .properties) works too
    update = m.GalleryImageVersionUpdate(
        properties=m.GalleryImageVersionProperties(
            publishing_profile=m.GalleryImageVersionPublishingProfile(
                end_of_life_date=dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
            ),
            storage_profile=m.GalleryImageVersionStorageProfile(),
        )
    )
    updated = compute.gallery_image_versions.begin_update(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", update
    ).result(timeout=LRO_TIMEOUT)
    assert str(updated.publishing_profile.end_of_life_date).startswith("2099-01-01")

    deleted = raw.call("DELETE", f"{IMAGE_ID}/versions/1.0.0")
    assert deleted.status_code == 202
    assert deleted.content == b""
    assert "monitor=true" in deleted.headers["Location"]
    assert "api-version=2026-03-03" in deleted.headers["Location"]
    compute.gallery_image_versions.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0").result(
        timeout=LRO_TIMEOUT
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"
    assert raw.call("DELETE", f"{IMAGE_ID}/versions/1.0.0").status_code == 204


def test_scale_sets_and_storage_accounts_are_readable(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    image_version_id = f"{IMAGE_ID}/versions/1.0.0"
    vmss = compute.virtual_machine_scale_sets.begin_create_or_update(
        RESOURCE_GROUP,
        "web",
        m.VirtualMachineScaleSet(
            location=LOCATION,
            properties=m.VirtualMachineScaleSetProperties(
                virtual_machine_profile=m.VirtualMachineScaleSetVMProfile(
                    storage_profile=m.VirtualMachineScaleSetStorageProfile(
                        image_reference=m.ImageReference(id=image_version_id)
                    )
                )
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert vmss.provisioning_state == "Succeeded"
    everywhere = list(compute.virtual_machine_scale_sets.list_all())
    assert [s.virtual_machine_profile.storage_profile.image_reference.id for s in everywhere] == [
        image_version_id
    ]


def test_storage_account_get_over_arm(fresh: ArmSim, raw: RawArm, azurite: AzuriteInstance) -> None:
    _seed_storage_account(fresh)
    reply = raw.call(
        "GET",
        rg_path("Microsoft.Storage/storageAccounts", "devstoreaccount1"),
        api_version="2024-01-01",
    )
    assert reply.status_code == 200
    assert reply.json()["properties"]["primaryEndpoints"]["blob"] == azurite.blob_endpoint + "/"
