"""Shared builders for the build-request tests (no tests here)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.core.settings import CrossTenantSettings, Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES_DIR = REPO_ROOT / "docs" / "examples"
SCHEMA_PATH = REPO_ROOT / "schemas" / "build-request.v1.json"

SUB = "6e0f4b2c-1d3a-4c5e-9f7a-2b8c4d6e8f01"
OTHER_SUB = "3a7d9c1e-5b2f-4e8a-a6c4-0d9e8f7a6b52"
FOREIGN_SUB = "11111111-2222-4333-8444-555555555555"
NOW = datetime(2026, 11, 16, 12, 0, 0, tzinfo=UTC)

#: The tenant of OTHER_SUB (docs/examples/image-version.json names it).
VENDOR_TENANT = "9b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e"
SETTINGS = Settings(
    allowed_target_galleries=(f"{SUB}/rg-images/*",),
    allowed_source_subscriptions=(OTHER_SUB,),
    vhd_storage_endpoints=(
        "https://{account}.blob.core.windows.net",
        "http://127.0.0.1:10000/{account}",
    ),
    cross_tenant=CrossTenantSettings(  # sources in OTHER_SUB are in another tenant
        tenant_id="99999999-0000-4000-8000-000000000001",
        source_tenants={OTHER_SUB: VENDOR_TENANT},
        client_id="aaaaaaaa-1111-4111-8111-0000000000a1",
    ),
)


def snapshot_id(name: str, subscription: str = SUB) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/rg-builds"
        f"/providers/Microsoft.Compute/snapshots/{name}"
    )


def disk_id(name: str, subscription: str = SUB) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/rg-builds"
        f"/providers/Microsoft.Compute/disks/{name}"
    )


def storage_account_id(name: str, subscription: str = SUB) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/rg-images"
        f"/providers/Microsoft.Storage/storageAccounts/{name}"
    )


def base_document() -> dict[str, Any]:
    """A small valid request (snapshot source, one region)."""
    return {
        "target": {
            "subscriptionId": SUB,
            "resourceGroup": "rg-images",
            "gallery": "platform_images",
            "definition": "ubuntu-24.04",
            "version": "1.0.0",
        },
        "source": {"snapshot": {"id": snapshot_id("os1")}},
        "publishing": {"targetRegions": [{"name": "eastus"}]},
    }


def vhd_document(uri: str, account: str = "imagesupload01") -> dict[str, Any]:
    document = base_document()
    document["source"] = {"vhd": {"uri": uri, "storageAccountId": storage_account_id(account)}}
    return document


def with_changes(document: dict[str, Any], **paths: Any) -> dict[str, Any]:
    """Copy ``document`` and set dotted paths: ``with_changes(d, **{"target.gallery": "x"})``."""
    result = copy.deepcopy(document)
    for dotted, value in paths.items():
        node: Any = result
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return result


def load_examples() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(EXAMPLES_DIR.glob("*.json"))}
