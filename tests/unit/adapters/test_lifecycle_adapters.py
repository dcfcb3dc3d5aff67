"""Pure pieces of the lifecycle adapters: list rows to facts, call kinds, replica reduction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.gallery_inventory import deprecated_publishing, request_kind, version_facts
from shared.lifecycle.facts import DEPRECATED_AT_TAG, RegionFacts, VersionFacts, VersionState

ROW = {
    "name": "1.2.3",
    "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d"
    "/versions/1.2.3",
    "location": "eastus",
    "tags": {"lifecycle": "deprecated", "n": 1},
    "properties": {
        "publishingProfile": {
            "targetRegions": [
                {"name": "East US", "regionalReplicaCount": 3, "excludeFromLatest": False},
                {"name": "West US", "regionalReplicaCount": 1, "excludeFromLatest": True},
            ],
            "replicaCount": 2,
            "excludeFromLatest": False,
            "publishedDate": "2025-11-16T23:28:15.9869002+00:00",
            "endOfLifeDate": "2026-01-01T00:00:00Z",
        },
        "safetyProfile": {"blockDeletionBeforeEndOfLife": True},
        "provisioningState": "Succeeded",
    },
}


def test_a_list_row_becomes_facts() -> None:
    facts = version_facts(ROW)
    assert facts.name == "1.2.3"
    assert facts.regions == (RegionFacts("East US", False), RegionFacts("West US", True))
    assert facts.tags == {"lifecycle": "deprecated", "n": "1"}
    assert facts.state is VersionState.DEPRECATED
    assert facts.end_of_life == datetime(2026, 1, 1, tzinfo=UTC)
    assert facts.published == datetime(2025, 11, 16, 23, 28, 15, 986900, tzinfo=UTC)
    assert facts.block_deletion_before_end_of_life is True
    assert facts.excluded_from_latest is False  # the version's own flag
    assert facts.provisioning_state == "Succeeded"
    # latest per region: West US excludes it, East US serves it
    assert facts.surely_serves_latest("eastus") and not facts.may_serve_latest("westus")
    assert not facts.may_serve_latest("northeurope")  # not replicated there


def test_a_region_without_its_flag_and_a_row_without_a_state() -> None:
    regions = [{"name": "East US"}]
    row = {
        "name": "1.0.0",
        "properties": {"publishingProfile": {"targetRegions": regions, "excludeFromLatest": True}},
    }
    facts = version_facts(row)
    assert facts.regions == (RegionFacts("East US", None),)
    assert facts.excluded_from_latest is True
    assert facts.regions_not_hidden == ()  # the version's flag applies where none is stated
    assert facts.end_of_life is None  # never expires by date
    assert facts.provisioning_state == "Unknown"
    assert not facts.may_serve_latest("eastus")  # not settled: never a latest candidate


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        (
            "GET",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g",
            "GET galleries",
        ),
        (
            "GET",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images",
            "LIST images",
        ),
        (
            "GET",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images"
            "/d/versions?api-version=2026-03-03&$skiptoken=7",
            "LIST versions",
        ),
        (
            "PATCH",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g"
            "/images/d/versions/1.0.0",
            "PATCH versions",
        ),
        (
            "GET",
            "/subscriptions/s/providers/Microsoft.Compute/virtualMachineScaleSets",
            "LIST virtualMachineScaleSets",
        ),
        (
            "GET",
            "/subscriptions/s/providers/Microsoft.Compute/locations/eastus/capsOperations/x",
            "GET capsOperations",
        ),
    ],
)
def test_request_kinds(method: str, path: str, kind: str) -> None:
    assert request_kind(method, f"https://127.0.0.1:8443{path}") == kind


def test_a_deprecation_hides_the_version_in_every_region_and_keeps_the_rest() -> None:
    profile = {
        **ROW["properties"]["publishingProfile"],  # type: ignore[index]
        "targetRegions": [
            {
                "name": "East US",
                "regionalReplicaCount": 3,
                "storageAccountType": "Standard_ZRS",
                "excludeFromLatest": False,
                "encryption": {"osDiskImage": {"diskEncryptionSetId": "/des/1"}},
            },
            {"name": "West US", "excludeFromLatest": False},
        ],
    }
    publishing = deprecated_publishing(profile, None)
    assert publishing == {
        "excludeFromLatest": True,
        "targetRegions": [
            {**profile["targetRegions"][0], "excludeFromLatest": True},
            {"name": "West US", "excludeFromLatest": True},
        ],
    }
    assert profile["targetRegions"][0]["excludeFromLatest"] is False  # the input is not changed


def test_a_deprecation_can_reduce_the_replicas_per_region() -> None:
    profile = ROW["properties"]["publishingProfile"]  # type: ignore[index]
    publishing = deprecated_publishing(profile, 1)
    assert [r["regionalReplicaCount"] for r in publishing["targetRegions"]] == [1, 1]
    assert publishing["replicaCount"] == 1
    assert [r["excludeFromLatest"] for r in publishing["targetRegions"]] == [True, True]
    unchanged = deprecated_publishing(profile, 3)
    assert [r["regionalReplicaCount"] for r in unchanged["targetRegions"]] == [3, 1]
    assert "replicaCount" not in unchanged


def test_a_deprecated_at_tag_without_offset_is_read_as_utc() -> None:
    facts = VersionFacts(
        id="v",
        name="1.0.0",
        region="eastus",
        regions=(),
        tags={DEPRECATED_AT_TAG: "2026-01-01T00:00:00"},
        end_of_life=None,
        published=None,
        excluded_from_latest=True,
        block_deletion_before_end_of_life=False,
    )
    assert facts.deprecated_at == datetime(2026, 1, 1, tzinfo=UTC)
