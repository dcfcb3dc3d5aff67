"""End to end: a source in another tenant builds with auxiliary tokens and is rejected without
the cross-tenant setup; management locks hold the lifecycle back and fail a build clearly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject

from devstack.armsim.identity import MSI_OBJECT_ID, v2_issuer
from devstack.armsim.tenants import DEFAULT_TENANT_ID
from devstack.stack import (
    GALLERY,
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    StaticToken,
    build_request_document,
    definition_resource,
    snapshot_body,
)
from shared.builds.ledger import build_id_for
from tests.pipeline.conftest import Stack, start_stack
from tests.pipeline.test_lifecycle_e2e import lifecycle_summaries, run_function, version_resource

TENANT_B = "bbbbbbbb-0000-4000-8000-00000000000b"
SUB_B = "00000000-0000-0000-0000-0000000000bb"
APP_ID = "aaaaaaaa-1111-4111-8111-0000000000a1"


def lock_client(stack: Stack) -> ManagementLockClient:
    token = stack.arm_admin("token", {})["access_token"]
    return ManagementLockClient(
        StaticToken(token),
        SUBSCRIPTION,
        base_url=stack.arm_url,
        connection_verify=str(stack.ca_bundle),
        connection_timeout=10,
        read_timeout=30,
        retry_total=1,
    )


@pytest.fixture(scope="module")
def cross_tenant_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose app knows subscription B is in tenant B and has the cross-tenant app
    registration, trusted by its managed identity through a federated credential (no secret)."""
    settings = {
        "GALLERY_TENANT_ID": DEFAULT_TENANT_ID,
        "GALLERY_SOURCE_TENANTS": f"{SUB_B}={TENANT_B}",
        "GALLERY_CROSS_TENANT_CLIENT_ID": APP_ID,
        "GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS": f"{SUBSCRIPTION},{SUB_B}",
    }
    with start_stack(Path(tmp_path_factory.mktemp("tenants")), settings) as running:
        yield running


def declare_tenants(stack: Stack, *, federated: bool = True) -> None:
    credentials = [{"issuer": v2_issuer(DEFAULT_TENANT_ID), "subject": MSI_OBJECT_ID}]
    stack.arm_admin(
        "seed",
        {
            "subscriptions": [{"subscriptionId": SUB_B, "tenantId": TENANT_B}],
            "applications": [
                {
                    "appId": APP_ID,
                    "tenants": [DEFAULT_TENANT_ID, TENANT_B],
                    "federatedCredentials": credentials if federated else [],
                }
            ],
        },
    )


def foreign_snapshot(stack: Stack, name: str) -> str:
    snapshot_id = (
        f"/subscriptions/{SUB_B}/resourceGroups/rg-vendor/providers/Microsoft.Compute/"
        f"snapshots/{name}"
    )
    stack.seed({"id": snapshot_id, **snapshot_body(size_gib=4, location=LOCATION)})
    return snapshot_id


def test_a_source_in_another_tenant_builds_with_the_auxiliary_token(
    cross_tenant_stack: Stack,
) -> None:
    stack = cross_tenant_stack
    declare_tenants(stack)
    stack.seed(definition_resource("xt-def", publisher="contoso", offer="xt"))
    source = foreign_snapshot(stack, "vendor-os")
    document = build_request_document("xt-def", {"snapshot": {"id": source}})

    stack.send_request(document)
    build = stack.wait_for_build(build_id_for(document["requestId"]), timeout=90)

    assert build["state"] == "succeeded", build["error"]
    version = stack.compute().gallery_image_versions.get(RESOURCE_GROUP, GALLERY, "xt-def", "1.0.0")
    assert version.storage_profile.os_disk_image.source.id.lower() == source.lower()


def test_without_the_cross_tenant_setup_the_request_is_rejected_at_validation(
    stack: Stack,
) -> None:
    stack.seed_definition("xt-unset")
    source_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-vendor/providers/Microsoft.Compute/"
        "galleries/vendor/images/base/versions/1.0.0"
    )
    document = build_request_document(
        "xt-unset", {"imageVersion": {"id": source_id, "tenantId": TENANT_B}}
    )
    message_id = f"xt-{uuid.uuid4().hex[:8]}"
    stack.send_raw(json.dumps(document).encode(), message_id)

    [dead] = stack.dead_letters(
        "image-builds-rejected", expected=1, timeout=30, message_ids={message_id}
    )
    description = dead.dead_letter_error_description or ""
    assert dead.dead_letter_reason == "ValidationFailed"
    assert "source-tenant-not-configured" in description
    assert "GALLERY_CROSS_TENANT_CLIENT_ID" in description  # the fix
    versions = stack.compute().gallery_image_versions.list_by_gallery_image(
        RESOURCE_GROUP, GALLERY, "xt-unset"
    )
    assert list(versions) == []  # never sent to fail in Azure


def test_a_locked_version_is_held_back_by_the_lifecycle(stack: Stack) -> None:
    definition_id = stack.seed_definition("e2e-locked")
    stack.seed(
        version_resource(definition_id, "1.0.0", "2020-01-01T00:00:00Z"),
        version_resource(definition_id, "1.1.0", "2031-01-01T00:00:00Z"),
        version_resource(definition_id, "1.2.0", "2031-01-01T00:00:00Z"),
        version_resource(definition_id, "2.0.0", "2031-01-01T00:00:00Z"),
    )
    locks = lock_client(stack)
    locks.management_locks.create_or_update_by_scope(
        f"{definition_id}/versions/1.0.0", "frozen", ManagementLockObject(level="ReadOnly")
    )
    try:
        run_function(stack, "lifecycle_timer")
        summaries = lifecycle_summaries(stack, timeout=60)
        held = summaries[-1]["data"]["heldByRule"]
        assert held.get("locked", 0) >= 1, summaries[-1]["data"]
    finally:
        locks.management_locks.delete_by_scope(f"{definition_id}/versions/1.0.0", "frozen")


def test_a_build_into_a_locked_definition_fails_with_scope_locked(stack: Stack) -> None:
    definition_id = stack.seed_definition("e2e-lockedbuild")
    snapshot = stack.seed_snapshot("e2e-lockedbuild-os")
    locks = lock_client(stack)
    locks.management_locks.create_or_update_by_scope(
        definition_id, "frozen", ManagementLockObject(level="ReadOnly")
    )
    try:
        document = build_request_document("e2e-lockedbuild", {"snapshot": {"id": snapshot}})
        stack.send_request(document)
        build: dict[str, Any] = stack.wait_for_build(
            build_id_for(document["requestId"]), states=("failed", "succeeded"), timeout=60
        )
    finally:
        locks.management_locks.delete_by_scope(definition_id, "frozen")
    assert build["state"] == "failed"
    assert "ScopeLocked" in json.dumps(build["error"])
    assert definition_id.lower() in json.dumps(build["error"]).lower()
