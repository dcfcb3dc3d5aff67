"""Management locks: the REST API (raw HTTP and azure-mgmt-resource-locks) and what a lock blocks
(409 ScopeLocked through raw HTTP and azure-mgmt-compute)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

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
    make_client,
    seed_gallery,
)

LOCKS = "providers/Microsoft.Authorization/locks"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
LOCK_API = "2020-05-01"


def seed_version(sim: ArmSim, name: str = "1.0.0") -> str:
    version_id = f"{IMAGE_ID}/versions/{name}"
    sim.seed(
        {
            "id": version_id,
            "location": LOCATION,
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": LOCATION}]},
                "storageProfile": {"osDiskImage": {"sizeInGB": 4}},
            },
        }
    )
    return version_id


def put_lock(raw: RawArm, scope: str, name: str, level: str, api: str = LOCK_API) -> int:
    answer = raw.call(
        "PUT", f"{scope}/{LOCKS}/{name}", {"properties": {"level": level}}, api_version=api
    )
    return answer.status_code


def test_lock_crud_at_resource_group_and_resource_scope(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    created = raw.call(
        "PUT",
        f"{RG_ID}/{LOCKS}/keep",
        {"properties": {"level": "CanNotDelete", "notes": "images"}},
        api_version="2016-09-01",
    )
    assert created.status_code == 201
    assert created.json() == {
        "properties": {"level": "CanNotDelete", "notes": "images"},
        "id": f"{RG_ID}/{LOCKS}/keep",
        "type": "Microsoft.Authorization/locks",
        "name": "keep",
    }
    assert put_lock(raw, RG_ID, "keep", "CanNotDelete") == 200  # an update
    assert put_lock(raw, GALLERY_ID, "frozen", "ReadOnly") == 201
    got = raw.call("GET", f"{GALLERY_ID}/{LOCKS}/frozen", api_version=LOCK_API)
    assert got.json()["id"] == f"{GALLERY_ID}/{LOCKS}/frozen"

    # at the resource group: its own locks and those below it; atScope(): at or above only
    listed = raw.call("GET", f"{RG_ID}/{LOCKS}", api_version=LOCK_API).json()["value"]
    assert {lock["name"] for lock in listed} == {"keep", "frozen"}
    at_scope = raw.call(
        "GET", f"{RG_ID}/{LOCKS}", api_version=LOCK_API, params={"$filter": "atScope()"}
    ).json()["value"]
    assert [lock["name"] for lock in at_scope] == ["keep"]
    # at a version: the locks it inherits from its gallery and resource group
    seed_version(fresh)
    inherited = raw.call(
        "GET",
        f"{IMAGE_ID}/versions/1.0.0/{LOCKS}",
        api_version=LOCK_API,
        params={"$filter": "atScope()"},
    ).json()["value"]
    assert {lock["name"] for lock in inherited} == {"keep", "frozen"}

    assert (
        raw.call("DELETE", f"{GALLERY_ID}/{LOCKS}/frozen", api_version=LOCK_API).status_code == 200
    )
    assert (
        raw.call("DELETE", f"{GALLERY_ID}/{LOCKS}/frozen", api_version=LOCK_API).status_code == 204
    )
    gone = raw.call("GET", f"{GALLERY_ID}/{LOCKS}/frozen", api_version=LOCK_API)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "LockNotFound"


def test_lock_requests_are_validated(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    assert put_lock(raw, RG_ID, "x", "Forever") == 400
    assert put_lock(raw, RG_ID, "a:b", "ReadOnly") == 400
    old = raw.call(
        "PUT", f"{RG_ID}/{LOCKS}/x", {"properties": {"level": "ReadOnly"}}, api_version="2026-03-03"
    )
    assert old.status_code == 400
    assert old.json()["error"]["code"] == "NoRegisteredProviderFound"
    missing = put_lock(raw, f"{GALLERY_ID}/images/nope", "x", "ReadOnly")
    assert missing == 404  # a lock on a resource needs the resource


def test_can_not_delete_blocks_deletes_of_children_but_not_updates(
    fresh: ArmSim, raw: RawArm
) -> None:
    seed_gallery(fresh)
    version_id = seed_version(fresh)
    assert put_lock(raw, GALLERY_ID, "no-delete", "CanNotDelete") == 201
    blocked = raw.call("DELETE", version_id)
    assert blocked.status_code == 409
    error = blocked.json()["error"]
    assert error["code"] == "ScopeLocked"
    assert error["message"] == (
        f"The scope '{version_id}' cannot perform delete operation because following scope(s) "
        f"are locked: '{GALLERY_ID}'. Please remove the lock and try again."
    )
    patched = raw.call(
        "PATCH", version_id, {"properties": {"publishingProfile": {"excludeFromLatest": True}}}
    )
    assert patched.status_code == 200  # CanNotDelete still allows writes
    assert raw.call("GET", version_id).status_code == 200


def test_read_only_on_the_resource_group_blocks_every_write_inside(
    fresh: ArmSim, raw: RawArm
) -> None:
    seed_gallery(fresh)
    version_id = seed_version(fresh)
    assert put_lock(raw, RG_ID, "frozen", "ReadOnly") == 201
    patch = raw.call(
        "PATCH", version_id, {"properties": {"publishingProfile": {"excludeFromLatest": True}}}
    )
    assert patch.status_code == 409
    assert patch.json()["error"]["message"] == (
        f"The scope '{version_id}' cannot perform write operation because following scope(s) "
        f"are locked: '{RG_ID}'. Please remove the lock and try again."
    )
    new_definition = raw.call(
        "PUT",
        f"{GALLERY_ID}/images/other",
        {
            "location": LOCATION,
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
            },
        },
    )
    assert new_definition.status_code == 409
    assert raw.call("DELETE", version_id).status_code == 409
    assert raw.call("GET", version_id).status_code == 200  # reads are never blocked
    assert raw.call("DELETE", f"{RG_ID}/{LOCKS}/frozen", api_version=LOCK_API).status_code == 200
    assert raw.call("DELETE", version_id).status_code == 202


def test_the_real_lock_sdk_and_compute_sdk_see_locks(fresh: ArmSim, identity_env: None) -> None:
    del identity_env
    seed_gallery(fresh)
    seed_version(fresh)
    credential = ManagedIdentityCredential()
    locks = ManagementLockClient(
        credential,
        SUBSCRIPTION,
        base_url=fresh.base_url,
        connection_verify=str(fresh.cert),
        **SDK_TIMEOUTS,
    )
    locks.management_locks.create_or_update_at_resource_group_level(
        RESOURCE_GROUP, "rg-keep", ManagementLockObject(level="CanNotDelete", notes="n")
    )
    locks.management_locks.create_or_update_by_scope(
        f"{IMAGE_ID}/versions/1.0.0", "v-frozen", ManagementLockObject(level="ReadOnly")
    )
    listed = list(locks.management_locks.list_at_resource_group_level(RESOURCE_GROUP))
    assert {(lock.name, lock.level) for lock in listed} == {
        ("rg-keep", "CanNotDelete"),
        ("v-frozen", "ReadOnly"),
    }
    frozen = locks.management_locks.get_by_scope(f"{IMAGE_ID}/versions/1.0.0", "v-frozen")
    assert frozen.id == f"{IMAGE_ID}/versions/1.0.0/{LOCKS}/v-frozen"

    compute = make_client(fresh, credential, retry_total=0)
    with pytest.raises(ResourceExistsError) as raised:
        compute.gallery_image_versions.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
    assert raised.value.error is not None and raised.value.error.code == "ScopeLocked"
    locks.management_locks.delete_by_scope(f"{IMAGE_ID}/versions/1.0.0", "v-frozen")
    locks.management_locks.delete_at_resource_group_level(RESOURCE_GROUP, "rg-keep")
    assert list(locks.management_locks.list_at_resource_group_level(RESOURCE_GROUP)) == []
    compute.gallery_image_versions.begin_delete(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0").result(
        timeout=20
    )
