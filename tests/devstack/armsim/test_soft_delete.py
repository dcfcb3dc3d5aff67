"""Soft delete, as "Soft delete in Azure Compute Gallery" documents it: the gallery's policy
(retention 7 days, kept by a PUT that leaves it out), a deleted version kept aside and restored
by a PUT with ``restore: true``, gone after the retention. Raw HTTP and the real SDK."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
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
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
)

LRO_TIMEOUT = 20
VERSION_PATH = f"{IMAGE_ID}/versions/1.0.0"
ENABLED = {"isSoftDeleteEnabled": True, "retentionPeriodInDays": 7}


def _wait(raw: RawArm, reply: Any) -> None:
    assert reply.status_code in (200, 201, 202), reply.text
    assert raw.wait_operation(reply.headers["Azure-AsyncOperation"])["status"] == "Succeeded"


def _soft_delete_gallery(raw: RawArm) -> None:
    reply = raw.call(
        "PUT",
        GALLERY_ID,
        {"location": LOCATION, "properties": {"softDeletePolicy": {"isSoftDeleteEnabled": True}}},
    )
    assert reply.json()["properties"]["softDeletePolicy"] == ENABLED
    _wait(raw, reply)


def _version_deleted(sim: ArmSim, raw: RawArm, **query: str) -> str:
    """A built version, then deleted; returns its snapshot's id."""
    snapshot = seed_snapshot(sim, "s")
    _wait(raw, raw.call("PUT", VERSION_PATH, snapshot_version_body(snapshot)))
    _wait(raw, raw.call("DELETE", VERSION_PATH, params=query or None))
    return snapshot


def test_the_policy_survives_a_put_that_leaves_it_out(fresh: ArmSim, raw: RawArm) -> None:
    _soft_delete_gallery(raw)
    reply = raw.call("PUT", GALLERY_ID, {"location": LOCATION, "properties": {"description": "x"}})
    _wait(raw, reply)
    props = raw.call("GET", GALLERY_ID).json()["properties"]
    assert props["softDeletePolicy"] == ENABLED
    assert props["description"] == "x"
    # it can be turned off explicitly; the retention cannot be changed
    off = raw.call(
        "PATCH", GALLERY_ID, {"properties": {"softDeletePolicy": {"isSoftDeleteEnabled": False}}}
    )
    assert off.json()["properties"]["softDeletePolicy"] == {"isSoftDeleteEnabled": False}
    _wait(raw, off)
    longer = raw.call(
        "PUT",
        GALLERY_ID,
        {
            "location": LOCATION,
            "properties": {
                "softDeletePolicy": {"isSoftDeleteEnabled": True, "retentionPeriodInDays": 30}
            },
        },
    )
    assert longer.status_code == 400
    assert longer.json()["error"]["target"] == "properties.softDeletePolicy.retentionPeriodInDays"


def test_a_soft_deleted_version_is_hidden_and_restored_by_a_put(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    _soft_delete_gallery(raw)
    snapshot = _version_deleted(fresh, raw)
    assert raw.call("GET", VERSION_PATH).status_code == 404
    assert raw.call("GET", f"{IMAGE_ID}/versions").json()["value"] == []
    # the definition cannot go while it holds a soft-deleted version (a documented limitation)
    blocked = raw.call("DELETE", IMAGE_ID)
    assert blocked.status_code == 409
    assert blocked.json()["error"]["code"] == "CannotDeleteResource"
    # the name is taken until the version is restored or purged
    again = raw.call("PUT", VERSION_PATH, snapshot_version_body(seed_snapshot(fresh, "t")))
    assert again.status_code == 409
    assert "soft-deleted" in again.json()["error"]["message"]
    reply = raw.call("PUT", VERSION_PATH, {"properties": {"restore": True, "storageProfile": {}}})
    assert reply.status_code == 200, reply.text
    props = reply.json()["properties"]
    assert props["provisioningState"] == "Updating"
    assert "restore" not in props
    _wait(raw, reply)
    restored = raw.call("GET", VERSION_PATH).json()["properties"]
    assert restored["provisioningState"] == "Succeeded"
    assert restored["storageProfile"]["osDiskImage"]["source"] == {"id": snapshot}


def test_restore_rules(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    _soft_delete_gallery(raw)
    nothing = raw.call("PUT", VERSION_PATH, {"properties": {"restore": True}})
    assert nothing.status_code == 404
    _version_deleted(fresh, raw)
    elsewhere = raw.call(
        "PUT", VERSION_PATH, {"location": "westus", "properties": {"restore": True}}
    )
    assert elsewhere.status_code == 400
    assert "original location" in elsewhere.json()["error"]["message"]
    # a PATCH restores too (the REST spec's Update_RestoreSoftDeleted example)
    _wait(raw, raw.call("PATCH", VERSION_PATH, {"properties": {"restore": True}}))
    assert raw.call("GET", VERSION_PATH).status_code == 200


def test_retention_ends_in_a_hard_delete(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    _soft_delete_gallery(raw)
    _version_deleted(fresh, raw)
    fresh.admin("POST", "/admin/clock", {"advanceSeconds": 7 * 86400 + 1})
    assert raw.call("PUT", VERSION_PATH, {"properties": {"restore": True}}).status_code == 404
    _wait(raw, raw.call("DELETE", IMAGE_ID))  # nothing left under it


@pytest.mark.parametrize(
    ("api_version", "query"),
    [("2023-07-03", {}), ("2026-03-03", {"bypassSoftDelete": "true"})],
    ids=["before-2024-03-03", "bypassSoftDelete"],
)
def test_deletes_that_do_not_soft_delete(
    fresh: ArmSim, raw: RawArm, api_version: str, query: dict[str, str]
) -> None:
    seed_gallery(fresh)
    _soft_delete_gallery(raw)
    _wait(raw, raw.call("PUT", VERSION_PATH, snapshot_version_body(seed_snapshot(fresh, "s"))))
    _wait(raw, raw.call("DELETE", VERSION_PATH, api_version=api_version, params=query or None))
    assert raw.call("PUT", VERSION_PATH, {"properties": {"restore": True}}).status_code == 404


def test_soft_delete_through_the_sdk(
    fresh: ArmSim, compute: ComputeManagementClient, raw: RawArm
) -> None:
    seed_gallery(fresh)
    gallery = compute.galleries.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        m.Gallery(
            location=LOCATION,
            properties=m.GalleryProperties(
                soft_delete_policy=m.SoftDeletePolicy(is_soft_delete_enabled=True)
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert gallery.soft_delete_policy.retention_period_in_days == 7
    versions = compute.gallery_image_versions
    versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(snapshot_version_body(seed_snapshot(fresh, "s"))),
    ).result(timeout=LRO_TIMEOUT)
    versions.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0").result(timeout=LRO_TIMEOUT)
    with pytest.raises(ResourceNotFoundError):
        versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    with pytest.raises(ResourceExistsError):
        compute.gallery_images.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE)
    restored = versions.begin_create_or_update(
        RESOURCE_GROUP,
        GALLERY,
        IMAGE,
        "1.0.0",
        m.GalleryImageVersion(
            {"location": LOCATION, "properties": {"restore": True, "storageProfile": {}}}
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert restored.provisioning_state == "Succeeded"
    # a plain gallery PUT through the SDK keeps the policy
    compute.galleries.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, m.Gallery(location=LOCATION)
    ).result(timeout=LRO_TIMEOUT)
    kept = compute.galleries.get(RESOURCE_GROUP, GALLERY)
    assert kept.soft_delete_policy.is_soft_delete_enabled is True


def test_a_failed_version_cannot_be_soft_deleted(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    _soft_delete_gallery(raw)
    huge = snapshot_version_body(seed_snapshot(fresh, "huge", size_gb=3000))
    reply = raw.call("PUT", VERSION_PATH, huge)
    assert raw.wait_operation(reply.headers["Azure-AsyncOperation"])["status"] == "Failed"
    refused = raw.call("DELETE", VERSION_PATH)
    assert refused.status_code == 409
    assert "failed provisioning state" in refused.json()["error"]["message"]
    # without soft delete (or bypassing it) the failed version goes
    bypass = raw.call("DELETE", VERSION_PATH, params={"bypassSoftDelete": "true"})
    _wait(raw, bypass)
    assert raw.call("GET", VERSION_PATH).status_code == 404
