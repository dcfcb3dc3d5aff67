"""Pure pieces of the lifecycle adapters: list rows to facts, call kinds, replica reduction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.gallery_inventory import reduced_regions, request_kind, version_facts
from shared.lifecycle.plan import DEPRECATED_AT_TAG, VersionFacts, VersionState

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
    assert facts.target_regions == ("East US", "West US")
    assert facts.tags == {"lifecycle": "deprecated", "n": "1"}
    assert facts.state is VersionState.DEPRECATED
    assert facts.end_of_life == datetime(2026, 1, 1, tzinfo=UTC)
    assert facts.published == datetime(2025, 11, 16, 23, 28, 15, 986900, tzinfo=UTC)
    assert facts.block_deletion_before_end_of_life is True
    assert facts.excluded_from_latest is False  # only one region excludes it
    assert facts.provisioning_state == "Succeeded"


def test_every_region_excluded_means_excluded_and_no_state_means_unsettled() -> None:
    regions = [{"name": "East US", "excludeFromLatest": True}]
    row = {"name": "1.0.0", "properties": {"publishingProfile": {"targetRegions": regions}}}
    facts = version_facts(row)
    assert facts.excluded_from_latest is True
    assert facts.end_of_life is None  # never expires by date
    assert facts.provisioning_state == "Unknown"


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


def test_replicas_are_reduced_per_region_and_nothing_is_sent_when_already_low() -> None:
    profile = ROW["properties"]["publishingProfile"]  # type: ignore[index]
    regions = reduced_regions(profile, 1)
    assert regions is not None
    assert [r["regionalReplicaCount"] for r in regions] == [1, 1]
    assert regions[1]["excludeFromLatest"] is True  # the rest of each region is kept
    assert reduced_regions(profile, 3) is None


def test_a_deprecated_at_tag_without_offset_is_read_as_utc() -> None:
    facts = VersionFacts(
        id="v",
        name="1.0.0",
        region="eastus",
        target_regions=(),
        tags={DEPRECATED_AT_TAG: "2026-01-01T00:00:00"},
        end_of_life=None,
        published=None,
        excluded_from_latest=True,
        block_deletion_before_end_of_life=False,
    )
    assert facts.deprecated_at == datetime(2026, 1, 1, tzinfo=UTC)
