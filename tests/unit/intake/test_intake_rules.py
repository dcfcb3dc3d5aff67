"""Intake rules: event parsing, routes, overrides and their merge, snapshot tags, readiness, ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.contract.parse import parse_build_request
from shared.contract.rules import REQUEST_ID_PATTERN
from shared.core.blob_urls import parse_blob_url
from shared.core.errors import PermanentError, ValidationFailed
from shared.core.resource_ids import parse_resource_id
from shared.core.settings import Settings
from shared.intake.events import BlobCreated, parse_blob_created, parse_snapshot_write
from shared.intake.ids import snapshot_request_id, vhd_request_id
from shared.intake.partial import merge_partial
from shared.intake.ports import SnapshotState
from shared.intake.snapshots import (
    PublishTag,
    parse_publish_tag,
    parse_snapshot_defaults,
    resolve_target_scope,
    snapshot_is_ready,
    snapshot_request_document,
)
from shared.intake.uploads import (
    find_route,
    metadata_overrides,
    parse_manifest,
    parse_routes,
    vhd_request_document,
)
from tests.conftest import REPO_ROOT

SUB = "00000000-0000-0000-0000-000000000000"
OTHER_SUB = "11111111-1111-1111-1111-111111111111"
ACCOUNT_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-devstack/providers/Microsoft.Storage/"
    "storageAccounts/devstoreaccount1"
)
ENDPOINTS = ("https://{account}.blob.core.windows.net", "http://127.0.0.1:10000/{account}")
SNAPSHOT_ID = parse_resource_id(
    f"/subscriptions/{SUB}/resourceGroups/rg-builds/providers/Microsoft.Compute/snapshots/os1"
)


def route(container: str = "vhds", prefix: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "container": container,
        "prefix": prefix,
        "storageAccountId": ACCOUNT_ID,
        "target": {
            "subscriptionId": SUB,
            "resourceGroup": "rg-images",
            "gallery": "devgallery",
            "definition": f"def-{prefix.strip('/') or 'root'}",
            "versionPolicy": "nextPatch",
        },
        "publishing": {"targetRegions": [{"name": "eastus"}]},
        **extra,
    }


def blob(url: str) -> Any:
    return parse_blob_url(url, ENDPOINTS)


# ------------------------------------------------------------------ events


def test_blob_created_event_is_read_and_manifest_points_at_its_vhd() -> None:
    data = {
        "api": "PutBlob",
        "blobType": "BlockBlob",
        "eTag": '"0x8D4BCC2E4835CD0"',
        "contentLength": 120,
        "url": "http://127.0.0.1:10000/devstoreaccount1/vhds/ubuntu/os.vhd.json",
    }
    event = parse_blob_created("Microsoft.Storage.BlobCreated", data, event_id="e1")
    assert event.is_manifest
    assert event.vhd_url == "http://127.0.0.1:10000/devstoreaccount1/vhds/ubuntu/os.vhd"
    assert event.etag == "0x8D4BCC2E4835CD0"
    assert event.content_length == 120
    plain = BlobCreated(url="https://a1.blob.core.windows.net/vhds/os.vhd?sig=x", blob_type="")
    assert not plain.is_manifest
    assert plain.vhd_url == "https://a1.blob.core.windows.net/vhds/os.vhd"


@pytest.mark.parametrize(
    ("event_type", "data"),
    [("Microsoft.Storage.BlobDeleted", {"url": "x"}), ("Microsoft.Storage.BlobCreated", {})],
)
def test_not_a_blob_created_event_is_a_permanent_error(event_type: str, data: object) -> None:
    with pytest.raises(PermanentError):
        parse_blob_created(event_type, data)


def test_only_successful_snapshot_writes_are_for_intake() -> None:
    subject = str(SNAPSHOT_ID)
    data = {
        "operationName": "Microsoft.Compute/snapshots/write",
        "status": "Succeeded",
        "resourceUri": subject,
    }
    written = parse_snapshot_write("Microsoft.Resources.ResourceWriteSuccess", subject, data)
    assert written is not None and written.snapshot_id == SNAPSHOT_ID
    disk = {**data, "operationName": "Microsoft.Compute/disks/write"}
    assert parse_snapshot_write("Microsoft.Resources.ResourceWriteSuccess", subject, disk) is None
    failed = {**data, "status": "Failed"}
    assert parse_snapshot_write("Microsoft.Resources.ResourceWriteSuccess", subject, failed) is None
    assert parse_snapshot_write("Microsoft.Resources.ResourceDeleteSuccess", subject, data) is None


# ------------------------------------------------------------------ routes


def test_longest_matching_prefix_wins_and_account_and_container_must_match() -> None:
    routes = parse_routes(json.dumps([route(), route(prefix="ubuntu/"), route(prefix="ubuntu/24")]))
    base = "http://127.0.0.1:10000/devstoreaccount1"
    assert find_route(routes, blob(f"{base}/vhds/ubuntu/24.04/os.vhd")) is routes[2]
    assert find_route(routes, blob(f"{base}/vhds/ubuntu/22.04/os.vhd")) is routes[1]
    assert find_route(routes, blob(f"{base}/vhds/windows/os.vhd")) is routes[0]
    assert find_route(routes, blob(f"{base}/other/ubuntu/os.vhd")) is None
    other_account = "http://127.0.0.1:10000/otheraccount/vhds/ubuntu/os.vhd"
    assert find_route(routes, blob(other_account)) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[" * 100_000, "nested more than 64 deep"),
        ('{"container": "vhds"}', "expected a JSON list"),
        (json.dumps([route(container="Bad_Name")]), "[0].container"),
        (json.dumps([{**route(), "storageAccountId": "/nope"}]), "[0].storageAccountId"),
        (
            json.dumps([route(), {**route(), "storageAccountId": str(SNAPSHOT_ID)}]),
            "[1].storageAccountId: not a Microsoft.Storage/storageAccounts id",
        ),
        (json.dumps([{**route(), "source": {}}]), "[0].source: unknown field"),
    ],
)
def test_bad_routes_name_the_setting_and_the_entry(text: str, fragment: str) -> None:
    with pytest.raises(PermanentError) as caught:
        parse_routes(text)
    assert "GALLERY_VHD_ROUTES" in caught.value.message
    assert fragment in caught.value.message


# ------------------------------------------------------------------ overrides


def test_merge_is_deep_and_an_override_drops_its_exclusive_partner() -> None:
    base: dict[str, Any] = {
        "target": {"gallery": "g", "definition": "d", "versionPolicy": "nextPatch"},
        "publishing": {"targetRegions": [{"name": "eastus"}], "endOfLifeAfterDays": 90},
        "tags": {"team": "platform"},
    }
    merged = merge_partial(
        base,
        {
            "target": {"version": "1.2.3"},
            "publishing": {"endOfLifeDate": "2030-01-01", "targetRegions": [{"name": "westus"}]},
            "tags": {"os": "ubuntu"},
        },
    )
    assert merged["target"] == {"gallery": "g", "definition": "d", "version": "1.2.3"}
    assert merged["publishing"] == {
        "targetRegions": [{"name": "westus"}],
        "endOfLifeDate": "2030-01-01",
    }
    assert merged["tags"] == {"team": "platform", "os": "ubuntu"}
    assert base["target"]["versionPolicy"] == "nextPatch"  # the base is not changed


def test_request_document_layers_route_then_metadata_then_manifest() -> None:
    (only,) = parse_routes(json.dumps([route(prefix="ubuntu/", tags={"from": "route"})]))
    url = "http://127.0.0.1:10000/devstoreaccount1/vhds/ubuntu/os.vhd"
    metadata, ready = metadata_overrides(
        {"Gallery_Definition": "from-metadata", "gallery_version": "2.0.0", "other": "x"}
    )
    assert not ready
    manifest = parse_manifest(b'{"target": {"definition": "from-manifest"}, "tags": {"m": "1"}}')
    document = vhd_request_document(
        only, url, metadata_partial=metadata, manifest=manifest, request_id="vhd-1"
    )
    assert document["target"]["definition"] == "from-manifest"
    assert document["target"]["version"] == "2.0.0"
    assert "versionPolicy" not in document["target"]
    assert document["tags"] == {"from": "route", "m": "1"}
    assert document["source"] == {"vhd": {"uri": url, "storageAccountId": ACCOUNT_ID}}
    assert document["requestId"] == "vhd-1"


def test_metadata_ready_marker_regions_and_policies() -> None:
    partial, ready = metadata_overrides(
        {
            "gallery_ready": "true",
            "gallery_target_regions": "eastus, westeurope",
            "gallery_version": "latestUnderMajor=3",
            "gallery_exclude_from_latest": "yes",
        }
    )
    assert ready
    assert partial["publishing"]["targetRegions"] == [{"name": "eastus"}, {"name": "westeurope"}]
    assert partial["publishing"]["excludeFromLatest"] is True
    assert partial["target"]["versionPolicy"] == {"latestUnderMajor": 3}


def test_unknown_or_bad_gallery_metadata_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        metadata_overrides({"gallery_defintion": "typo", "gallery_version": "next"})
    paths = [problem.path for problem in caught.value.problems]
    assert paths == ["metadata.gallery_defintion", "metadata.gallery_version"]


@pytest.mark.parametrize(
    ("content", "path", "rule"),
    [
        (b"{not json", "manifest", "json-syntax"),
        (b'{"tags": {"team": "caf\xe9"}}', "manifest", "encoding"),
        (b"[" * 100_000, "manifest", "nesting"),
        (b'{"target": {}, "target": {}}', "manifest.target", "duplicate-key"),
        (b"[1, 2]", "manifest", "type"),
        (b'{"source": {"vhd": {}}}', "manifest.source", "unknown-field"),
        (b'{"targets": {}}', "manifest.targets", "unknown-field"),
        (b" " * (256 * 1024 + 1), "manifest", "length"),
    ],
)
def test_bad_manifests_are_named(content: bytes, path: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_manifest(content)
    assert [(p.path, p.rule) for p in caught.value.problems] == [(path, rule)]


# ------------------------------------------------------------------ snapshot tags


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("devgallery/ubuntu-24.04", PublishTag("devgallery", "ubuntu-24.04")),
        (
            "devgallery/ubuntu-24.04:nextMinor",
            PublishTag("devgallery", "ubuntu-24.04", version_choice=("versionPolicy", "nextMinor")),
        ),
        (
            "devgallery/ubuntu:1.2.3",
            PublishTag("devgallery", "ubuntu", version_choice=("version", "1.2.3")),
        ),
        (
            "rg-images/devgallery/ubuntu:latestUnderMajor=2",
            PublishTag(
                "devgallery",
                "ubuntu",
                resource_group="rg-images",
                version_choice=("versionPolicy", {"latestUnderMajor": 2}),
            ),
        ),
        (
            f"{OTHER_SUB}/rg-images/devgallery/ubuntu:date",
            PublishTag("devgallery", "ubuntu", OTHER_SUB, "rg-images", ("versionPolicy", "date")),
        ),
    ],
)
def test_publish_tag_forms(value: str, expected: PublishTag) -> None:
    assert parse_publish_tag(value) == expected


@pytest.mark.parametrize("value", ["devgallery", "a/b/c/d/e", "gal//def", "gal/def:soon"])
def test_bad_publish_tags_are_rejected_with_the_tag_named(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_publish_tag(value)
    assert caught.value.problems[0].path == "tags.gallery-publish"


def test_gallery_resolves_through_the_allow_list_or_the_snapshots_own_scope() -> None:
    tag = parse_publish_tag("devgallery/ubuntu")
    allowed = (f"{OTHER_SUB}/rg-images/devgallery", f"{SUB}/rg-images/other", f"{SUB}/*/*")
    assert resolve_target_scope(tag, SNAPSHOT_ID, allowed) == (OTHER_SUB, "rg-images")
    assert resolve_target_scope(tag, SNAPSHOT_ID, (f"{SUB}/*/*",)) == (SUB, "rg-builds")
    grouped = parse_publish_tag("rg-x/devgallery/ubuntu")
    assert resolve_target_scope(grouped, SNAPSHOT_ID, allowed) == (SUB, "rg-x")
    ambiguous = (f"{OTHER_SUB}/rg-images/devgallery", f"{SUB}/rg-images/DevGallery")
    with pytest.raises(ValidationFailed) as caught:
        resolve_target_scope(tag, SNAPSHOT_ID, ambiguous)
    assert "ambiguous" in caught.value.message


def test_snapshot_document_adds_the_snapshots_region_and_default_policy() -> None:
    snapshot = SnapshotState(id=SNAPSHOT_ID, location="westeurope", unique_id="u1")
    defaults = parse_snapshot_defaults(
        '{"publishing": {"targetRegions": [{"name": "eastus"}], "replicaCount": 2}}'
    )
    document = snapshot_request_document(
        snapshot,
        parse_publish_tag("devgallery/ubuntu"),
        (SUB, "rg-images"),
        defaults=defaults,
        request_id="snap-1",
    )
    assert document["target"] == {
        "subscriptionId": SUB,
        "resourceGroup": "rg-images",
        "gallery": "devgallery",
        "definition": "ubuntu",
        "versionPolicy": "nextPatch",
    }
    assert document["publishing"]["targetRegions"] == [{"name": "westeurope"}, {"name": "eastus"}]
    assert document["publishing"]["replicaCount"] == 2
    assert document["source"] == {"snapshot": {"id": str(SNAPSHOT_ID)}}


def test_snapshot_defaults_must_not_carry_a_source_or_request_id() -> None:
    with pytest.raises(PermanentError, match="GALLERY_SNAPSHOT_DEFAULTS"):
        parse_snapshot_defaults('{"source": {}}')
    with pytest.raises(PermanentError, match="requestId"):
        parse_snapshot_defaults('{"requestId": "x"}')


@pytest.mark.parametrize("text", ['{"a": ' * 100_000, '{"tags": {}, "tags": {}}', '{"x": NaN}'])
def test_hostile_snapshot_defaults_are_a_setting_error(text: str) -> None:
    with pytest.raises(PermanentError, match="GALLERY_SNAPSHOT_DEFAULTS: not valid JSON"):
        parse_snapshot_defaults(text)


@pytest.mark.parametrize(
    ("access_state", "percent", "ready"),
    [
        ("Available", 100.0, True),
        ("AvailableWithInstantAccess", None, True),
        ("Pending", 100.0, False),
        ("InstantAccess", 100.0, False),
        ("Pending", 42.0, False),
        (None, 100.0, True),
        (None, 12.5, False),
        (None, None, True),
        ("Unknown", 99.9, False),
    ],
)
def test_snapshot_readiness(access_state: str | None, percent: float | None, ready: bool) -> None:
    snapshot = SnapshotState(
        id=SNAPSHOT_ID, location="eastus", access_state=access_state, completion_percent=percent
    )
    assert snapshot_is_ready(snapshot) is ready


@pytest.mark.parametrize(
    ("provisioning_state", "access_state", "ready"),
    [
        ("Succeeded", "Available", True),
        ("succeeded", None, True),
        ("Updating", "Available", False),  # the write is still running: not usable yet
        ("Creating", None, False),
        ("Updating", None, False),
        ("Failed", "Available", False),
        (None, "Available", True),  # a reader that does not say: the access state decides
    ],
)
def test_a_snapshot_is_ready_only_once_its_write_succeeded(
    provisioning_state: str | None, access_state: str | None, ready: bool
) -> None:
    snapshot = SnapshotState(
        id=SNAPSHOT_ID,
        location="eastus",
        access_state=access_state,
        provisioning_state=provisioning_state,
    )
    assert snapshot_is_ready(snapshot) is ready


# ------------------------------------------------------------------ request ids


def test_vhd_request_ids_follow_the_blob_and_its_etag_only() -> None:
    url = "https://acct1.blob.core.windows.net/vhds/os.vhd"
    first = vhd_request_id(url, '"0x1"')
    assert first == vhd_request_id("HTTPS://ACCT1.blob.core.windows.net/vhds/os.vhd?sig=s", "0x1")
    assert first != vhd_request_id(url, "0x2")
    assert first != vhd_request_id("https://acct1.blob.core.windows.net/vhds/OS.vhd", "0x1")
    assert REQUEST_ID_PATTERN.fullmatch(first)
    assert first.startswith("vhd-")


def test_snapshot_request_ids_follow_the_snapshot_and_its_unique_id() -> None:
    first = snapshot_request_id(SNAPSHOT_ID, "uid-1")
    upper = parse_resource_id(str(SNAPSHOT_ID).upper().replace("SUBSCRIPTIONS", "subscriptions"))
    assert first == snapshot_request_id(upper, "uid-1")
    assert first != snapshot_request_id(SNAPSHOT_ID, "uid-2")  # deleted and created again
    assert REQUEST_ID_PATTERN.fullmatch(first)


# ------------------------------------------------------------------ settings


def test_intake_settings_defaults_and_bad_json_names_the_setting() -> None:
    settings = Settings.from_env({})
    assert settings.intake.upload_settle_seconds == 60
    assert settings.intake.snapshot_tag == "gallery-publish"
    assert settings.intake.recheck_schedule == "*/20 * * * * *"
    assert parse_routes(settings.intake.vhd_routes) == ()
    with pytest.raises(PermanentError, match="GALLERY_VHD_ROUTES"):
        Settings.from_env({"GALLERY_VHD_ROUTES": "[{"})
    with pytest.raises(PermanentError, match="GALLERY_UPLOAD_SETTLE_SECONDS"):
        Settings.from_env({"GALLERY_UPLOAD_SETTLE_SECONDS": "-1"})


def test_the_sample_settings_route_ubuntu_uploads_into_the_dev_gallery() -> None:
    sample = json.loads((REPO_ROOT / "local.settings.sample.json").read_text())["Values"]
    settings = Settings.from_env(sample)
    routes = parse_routes(settings.intake.vhd_routes)
    found = find_route(routes, blob("http://127.0.0.1:10000/devstoreaccount1/vhds/ubuntu/os.vhd"))
    assert found is not None
    assert found.defaults["target"]["gallery"] == "devgallery"
    assert found.defaults["target"]["definition"] == "ubuntu-24.04"
    url = "http://127.0.0.1:10000/devstoreaccount1/vhds/ubuntu/os.vhd"
    document = vhd_request_document(
        found, url, metadata_partial={}, manifest=None, request_id=vhd_request_id(url, "0x1")
    )
    now = datetime(2026, 11, 16, tzinfo=UTC)
    request = parse_build_request(document, settings, now=now)  # the sample is a valid request
    assert request.source_key == url
