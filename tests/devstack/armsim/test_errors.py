"""Every validation and state error surfaces through the real SDK as the right azure-core
exception carrying the service's error code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from tests.devstack.armsim.conftest import (
    GALLERY,
    IMAGE,
    LOCATION,
    RESOURCE_GROUP,
    ArmSim,
    resource_id,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
)

LRO_TIMEOUT = 20


def _put(compute: ComputeManagementClient, body: dict[str, Any], name: str = "1.0.0") -> Any:
    return compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, name, m.GalleryImageVersion(body)
    ).result(timeout=LRO_TIMEOUT)


def _with_profile(snapshot: str, **profile: Any) -> dict[str, Any]:
    body = snapshot_version_body(snapshot)
    body["properties"]["publishingProfile"].update(profile)
    return body


def _storage(**storage: Any) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": LOCATION}]},
            "storageProfile": storage,
        },
    }


Case = Callable[[ArmSim, str], dict[str, Any]]
CREATE_CASES: list[tuple[str, Case, str, str]] = [
    (
        "no source",
        lambda sim, snap: _storage(osDiskImage={"hostCaching": "ReadOnly"}),
        "InvalidParameter",
        "One and only one source type",
    ),
    (
        "two sources",
        lambda sim, snap: _storage(
            source={"id": resource_id("Microsoft.Compute/images", "x")},
            osDiskImage={"source": {"id": snap}},
        ),
        "InvalidParameter",
        "One and only one source type",
    ),
    (
        "source not found",
        lambda sim, snap: snapshot_version_body(resource_id("Microsoft.Compute/snapshots", "gone")),
        "InvalidParameter",
        "is not found. Please check source exists",
    ),
    (
        "source of the wrong kind",
        lambda sim, snap: snapshot_version_body(
            sim.seed(
                {
                    "id": resource_id("Microsoft.Compute/images", "img1"),
                    "location": LOCATION,
                    "properties": {},
                }
            )[0]["id"]
        ),
        "InvalidParameter",
        "must be a managed disk or snapshot",
    ),
    (
        "source in another region",
        lambda sim, snap: snapshot_version_body(seed_snapshot(sim, "far", location="westus")),
        "InvalidParameter",
        "same region",
    ),
    (
        "malformed source id",
        lambda sim, snap: snapshot_version_body("snapshots/foo"),
        "LinkedInvalidPropertyId",
        "Expect fully qualified resource Id",
    ),
    (
        "duplicate luns",
        lambda sim, snap: _storage(
            osDiskImage={"source": {"id": snap}},
            dataDiskImages=[
                {"lun": 1, "source": {"id": seed_snapshot(sim, "d1")}},
                {"lun": 1, "source": {"id": seed_snapshot(sim, "d2")}},
            ],
        ),
        "InvalidParameter",
        "Duplicated lun numbers",
    ),
    (
        "duplicate regions",
        lambda sim, snap: _with_profile(
            snap, targetRegions=[{"name": "eastus"}, {"name": "East US"}]
        ),
        "InvalidParameter",
        "Duplicate regions are not allowed",
    ),
    (
        "source region missing from targets",
        lambda sim, snap: _with_profile(snap, targetRegions=[{"name": "westus"}]),
        "InvalidParameter",
        "must contain the location of image version",
    ),
    (
        "replica count out of range",
        lambda sim, snap: _with_profile(
            snap, targetRegions=[{"name": "eastus", "regionalReplicaCount": 0}]
        ),
        "InvalidParameter",
        "is out of range",
    ),
    (
        "end of life in the past",
        lambda sim, snap: _with_profile(snap, endOfLifeDate="2001-01-01T00:00:00Z"),
        "InvalidParameter",
        "EndOfLifeDate must be set to a future date.",
    ),
    (
        "hyper-v generation mismatch",
        lambda sim, snap: snapshot_version_body(seed_snapshot(sim, "gen1", hyperVGeneration="V1")),
        "InvalidParameter",
        "different Hypervisor generation ['V1']",
    ),
    (
        "os type mismatch",
        lambda sim, snap: snapshot_version_body(seed_snapshot(sim, "win", osType="Windows")),
        "InvalidParameter",
        "different OS type ['Windows']",
    ),
    (
        "os state mismatch",
        lambda sim, snap: _storage(
            source={
                "id": sim.seed(
                    {
                        "id": resource_id("Microsoft.Compute/images", "special"),
                        "location": LOCATION,
                        "properties": {
                            "hyperVGeneration": "V2",
                            "storageProfile": {
                                "osDisk": {"osType": "Linux", "osState": "Specialized"}
                            },
                        },
                    }
                )[0]["id"]
            }
        ),
        "InvalidParameter",
        "OS State in the parent gallery image (Generalized) is not Specialized",
    ),
]


@pytest.mark.parametrize(
    ("build", "code", "text"),
    [pytest.param(c[1], c[2], c[3], id=c[0]) for c in CREATE_CASES],
)
def test_create_rejected(
    fresh: ArmSim, compute: ComputeManagementClient, build: Case, code: str, text: str
) -> None:
    seed_gallery(fresh)
    snapshot = seed_snapshot(fresh, "snap")
    with pytest.raises(HttpResponseError) as caught:
        _put(compute, build(fresh, snapshot))
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == code
    assert text in str(caught.value.error.message)


def test_bad_version_name(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    with pytest.raises(HttpResponseError) as caught:
        _put(compute, snapshot_version_body(seed_snapshot(fresh, "s")), name="1.0")
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidParameter"
    assert caught.value.error.target == "galleryImageVersionName"
    assert "Major(int).Minor(int).Patch(int)" in str(caught.value.error.message)


def test_missing_parent_and_missing_resource(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as parent:
        _put(compute, snapshot_version_body(seed_snapshot(fresh, "s")))
    assert parent.value.error is not None
    assert parent.value.error.code == "ParentResourceNotFound"
    seed_gallery(fresh)
    with pytest.raises(ResourceNotFoundError) as missing:
        compute.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "9.9.9")
    assert missing.value.error is not None
    assert missing.value.error.code == "ResourceNotFound"


def test_changing_the_source_of_an_existing_version(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    first = seed_snapshot(fresh, "a")
    _put(compute, snapshot_version_body(first))
    # the same request again is accepted (idempotent update)
    assert _put(compute, snapshot_version_body(first)).provisioning_state == "Succeeded"
    with pytest.raises(ResourceExistsError) as caught:
        _put(compute, snapshot_version_body(seed_snapshot(fresh, "b")))
    assert caught.value.error is not None
    assert caught.value.error.code == "PropertyChangeNotAllowed"
    assert caught.value.error.target == (
        "galleryImageVersion.properties.storageProfile.osDiskImage.source.id"
    )


def test_delete_blocked_before_end_of_life(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    body = _with_profile(seed_snapshot(fresh, "s"), endOfLifeDate="2099-01-01T00:00:00Z")
    body["properties"]["safetyProfile"] = {"blockDeletionBeforeEndOfLife": True}
    _put(compute, body)
    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_image_versions.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    assert caught.value.error is not None
    assert caught.value.error.code == "DeleteGalleryImageVersionBlockedBeforeEndOfLife"


def test_update_of_a_version_marked_for_deletion(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    snapshot = seed_snapshot(fresh, "s")
    _put(compute, snapshot_version_body(snapshot))
    fresh.admin("POST", "/admin/faults", {"slowOperations": 1000})
    compute.gallery_image_versions.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP,
            GALLERY,
            IMAGE,
            "1.0.0",
            m.GalleryImageVersion(_with_profile(snapshot, excludeFromLatest=True)),
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "OperationNotAllowed"
    assert "marked for deletion" in str(caught.value.error.message)


def test_one_build_at_a_time_per_source(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    snapshot = seed_snapshot(fresh, "shared")
    fresh.admin("POST", "/admin/faults", {"slowOperations": 1000})
    compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(snapshot)),
    )
    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP,
            GALLERY,
            IMAGE,
            "1.0.1",
            m.GalleryImageVersion(snapshot_version_body(snapshot)),
        )
    assert caught.value.error is not None
    assert caught.value.error.code == "OperationNotAllowed"
    message = str(caught.value.error.message)
    assert message.startswith(f"Too many requests on source '{snapshot.lower()}'")
    stats = fresh.admin("GET", "/admin/stats")
    assert stats["sourceConflicts"] == 1


def test_source_too_large_fails_asynchronously(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    poller = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(seed_snapshot(fresh, "huge", size_gb=2520))),
    )
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=LRO_TIMEOUT)
    assert caught.value.error is not None
    assert caught.value.error.code == "GallerySourceResourceExceedsMaxSize"
    assert "size 2520 exceeds the max size 2048" in str(caught.value.error.message)


def test_definition_rules(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    taken: dict[str, Any] = {
        "location": LOCATION,
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V2",
            "identifier": {"publisher": "contoso", "offer": IMAGE, "sku": "base"},
        },
    }
    with pytest.raises(ResourceExistsError) as reused:
        compute.gallery_images.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, "other", m.GalleryImage(taken)
        )
    assert reused.value.error is not None
    assert "Choose a different publisher, offer, sku" in str(reused.value.error.message)
    changed = {**taken, "properties": {**taken["properties"], "osType": "Windows"}}
    with pytest.raises(ResourceExistsError) as immutable:
        compute.gallery_images.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, IMAGE, m.GalleryImage(changed)
        )
    assert immutable.value.error is not None
    assert immutable.value.error.code == "PropertyChangeNotAllowed"
    assert immutable.value.error.target == "galleryImage.properties.osType"
    with pytest.raises(ResourceExistsError) as nested:
        compute.galleries.begin_delete(RESOURCE_GROUP, GALLERY)
    assert nested.value.error is not None
    assert "nested resources" in str(nested.value.error.message)


def test_unsupported_api_version(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    with pytest.raises(HttpResponseError) as caught:
        compute.galleries.get(RESOURCE_GROUP, GALLERY, api_version="2022-08-01")
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidParameter"
    assert caught.value.error.target == "api-version"
    for accepted in ("2024-03-03", "2025-03-03", "2026-03-03"):
        assert compute.galleries.get(RESOURCE_GROUP, GALLERY, api_version=accepted).name == GALLERY


@pytest.mark.parametrize("name", ["dev-gallery", "_gallery", "gallery.", "gällery"])
def test_a_gallery_name_azure_refuses_is_refused(raw: Any, name: str) -> None:
    """[tsg]: English letters and digits, underscores and periods in the middle, no dashes
    (definitions may have hyphens; galleries may not)."""
    gallery_id = resource_id("Microsoft.Compute/galleries", name)
    reply = raw.call("PUT", gallery_id, {"location": LOCATION})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "InvalidParameter"
    assert error["target"] == "galleryName"
    assert "including dashes, are disallowed" in error["message"]


def test_a_gallery_name_with_underscores_and_periods_inside_is_accepted(raw: Any) -> None:
    reply = raw.call(
        "PUT", resource_id("Microsoft.Compute/galleries", "dev_gallery.v2"), {"location": LOCATION}
    )
    assert reply.status_code in (200, 201), reply.text
