"""The ARM body built from a request: sources in the right place, publishing profile exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.builds.version_body import (
    TAG_BUILD_ID,
    TAG_REQUEST_ID,
    TAG_SOURCE_HASH,
    image_version_body,
    same_source,
    source_hash,
)
from shared.contract.model import BuildRequest
from shared.contract.parse import parse_build_request
from shared.core.settings import SettingName, Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def example(name: str, **changes: Any) -> BuildRequest:
    document = json.loads((EXAMPLES / f"{name}.json").read_text())
    document.update(changes)
    settings = Settings.from_env(
        {
            SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*",
            SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS: ",".join(
                {document["target"]["subscriptionId"], *_subscriptions(document)}
            ),
            **_cross_tenant(document),
        }
    )
    return parse_build_request(document, settings, now=NOW)


def _cross_tenant(document: dict[str, Any]) -> dict[str, str]:
    """The cross-tenant setup an ``imageVersion`` source naming another tenant needs."""
    source = document["source"].get("imageVersion") or {}
    if "tenantId" not in source:
        return {}
    subscription = source["id"].split("/")[2]
    return {
        SettingName.TENANT_ID: "99999999-0000-4000-8000-000000000001",
        SettingName.CROSS_TENANT_CLIENT_ID: "aaaaaaaa-1111-4111-8111-0000000000a1",
        SettingName.SOURCE_TENANTS: f"{subscription}={source['tenantId']}",
    }


def _subscriptions(document: Any) -> set[str]:
    found: set[str] = set()
    text = json.dumps(document)
    for part in text.split("/subscriptions/")[1:]:
        found.add(part.split("/", 1)[0])
    return found


def body_for(name: str) -> dict[str, Any]:
    return image_version_body(example(name), location="eastus", build_id="b-1")


def test_vhd_source_goes_under_os_disk_image_without_sas() -> None:
    request = example("vhd")
    body = image_version_body(request, location="eastus", build_id="b-1")
    source = body["properties"]["storageProfile"]["osDiskImage"]["source"]
    assert set(source) == {"uri", "storageAccountId"}
    assert "?" not in source["uri"]
    assert source["storageAccountId"] == str(request.source.storage_account_id)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "where", "field"),
    [
        ("snapshot", "osDiskImage", "id"),
        ("disk", "osDiskImage", "id"),
        ("managed-image", "source", "id"),
        ("image-version", "source", "id"),
        ("virtual-machine", "source", "virtualMachineId"),
    ],
)
def test_each_source_kind_goes_where_the_service_expects_it(
    name: str, where: str, field: str
) -> None:
    profile = body_for(name)["properties"]["storageProfile"]
    node = profile[where]["source"] if where == "osDiskImage" else profile["source"]
    assert list(node) == [field]
    assert node[field].startswith("/subscriptions/")


def test_publishing_profile_carries_every_setting() -> None:
    request = example("snapshot")
    body = image_version_body(request, location="westeurope", build_id="b-9")
    profile = body["properties"]["publishingProfile"]
    publishing = request.publishing
    assert body["location"] == "westeurope"
    assert [r["name"] for r in profile["targetRegions"]] == [
        r.name for r in publishing.target_regions
    ]
    assert [r["regionalReplicaCount"] for r in profile["targetRegions"]] == [
        r.replica_count for r in publishing.target_regions
    ]
    assert profile["replicaCount"] == publishing.replica_count
    assert profile["storageAccountType"] == publishing.storage_account_type
    assert profile["replicationMode"] == publishing.replication_mode
    assert profile["excludeFromLatest"] == publishing.exclude_from_latest


def test_tags_identify_the_request_build_and_source() -> None:
    request = example("snapshot")
    tags = image_version_body(request, location="eastus", build_id="b-7")["tags"]
    assert tags[TAG_REQUEST_ID] == request.request_id
    assert tags[TAG_BUILD_ID] == "b-7"
    assert tags[TAG_SOURCE_HASH] == source_hash(request.source_key)
    assert all(len(v) <= 256 for v in tags.values())


def test_body_is_deterministic() -> None:
    assert body_for("vhd") == body_for("vhd")


def test_same_source_ignores_case_and_server_defaults() -> None:
    request = example("snapshot")
    body = image_version_body(request, location="eastus", build_id="b")
    profile = body["properties"]["storageProfile"]
    server_view = {
        "osDiskImage": {
            "hostCaching": "ReadWrite",
            "sizeInGB": 30,
            "source": {"id": profile["osDiskImage"]["source"]["id"].upper()},
        },
        "dataDiskImages": [
            {**disk, "sizeInGB": 10, "source": {"id": disk["source"]["id"].upper()}}
            for disk in reversed(profile["dataDiskImages"])
        ],
    }
    assert same_source(server_view, request)


def test_a_different_source_is_not_the_same() -> None:
    request = example("snapshot")
    other = {"osDiskImage": {"source": {"id": "/subscriptions/x/snapshots/other"}}}
    assert not same_source(other, request)
