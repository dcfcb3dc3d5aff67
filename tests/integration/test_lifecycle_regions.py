"""Lifecycle and "latest" per region, on the ARM simulator: the last version that serves latest in a
region is kept, and a deprecation hides the version from latest in every region.

Azure's rule (learn.microsoft.com/azure/virtual-machines/azure-compute-gallery, best practices):
a region's ``targetRegions[].excludeFromLatest`` takes precedence over the version's
``publishingProfile.excludeFromLatest``. Builds send ``false`` per region, so a deprecation must set
the flag in every region as well (docs/lifecycle.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.lifecycle.facts import DEPRECATED_AT_TAG
from shared.lifecycle.plan import Action, Rule
from tests.devstack.armsim.conftest import LOCATION, RESOURCE_GROUP
from tests.integration.test_lifecycle_arm import (
    GALLERY,
    GALLERY_ID,
    Harness,
    definition,
    harness,  # noqa: F401  (fixture)
    iso,
    short,
    version,
)

pytestmark = pytest.mark.integration

EAST, WEST = LOCATION, "westus"


def regional(image: str, name: str, regions: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """A version replicated to ``regions`` (each a target-region body, as builds send them)."""
    body = version(image, name, **kwargs)
    body["properties"]["publishingProfile"]["targetRegions"] = regions
    return body


def region(
    name: str, *, excluded: bool = False, replicas: int = 1, storage: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "regionalReplicaCount": replicas,
        "excludeFromLatest": excluded,
    }
    if storage is not None:
        body["storageAccountType"] = storage
    return body


def test_the_last_version_serving_latest_in_a_region_is_kept(harness: Harness) -> None:  # noqa: F811
    harness.sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        definition("replicated"),
        definition("split"),
        # 1.0.0 is in East US and West US, 2.0.0 only in East US: 1.0.0 alone serves West US
        regional("replicated", "1.0.0", [region(EAST), region(WEST)], eol_days=-10),
        regional("replicated", "2.0.0", [region(EAST)]),
        # 1.0.0 serves West US only (excluded in East US), 2.0.0 serves East US only
        regional("split", "1.0.0", [region(EAST, excluded=True), region(WEST)], eol_days=-10),
        regional("split", "2.0.0", [region(EAST), region(WEST, excluded=True)]),
    )
    snapshot = harness.service(dry_run=True).plan()
    entries = {short(e.version_id): e for e in snapshot.plan.entries}
    assert {name: (e.action, e.rule) for name, e in entries.items()} == {
        "replicated/1.0.0": (Action.SKIP, Rule.LAST_LATEST),
        "split/1.0.0": (Action.SKIP, Rule.LAST_LATEST),
    }
    assert "West US" in entries["split/1.0.0"].reason


def test_deprecation_hides_the_version_from_latest_in_every_region(harness: Harness) -> None:  # noqa: F811
    harness.sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        definition("app"),
        regional(
            "app",
            "1.0.0",
            [region(EAST, replicas=2, storage="Standard_ZRS"), region(WEST)],
            eol_days=-10,
        ),
        regional("app", "2.0.0", [region(EAST), region(WEST)]),
    )
    before = harness.state()
    _, outcome = harness.service(dry_run=False).run()
    assert [(short(e.version_id), e.action) for e in outcome.done] == [
        ("app/1.0.0", Action.DEPRECATE)
    ]
    [listed] = [
        v
        for v in harness.compute.gallery_image_versions.list_by_gallery_image(
            RESOURCE_GROUP, GALLERY, "app"
        )
        if v.name == "1.0.0"
    ]
    profile = listed["properties"]["publishingProfile"]
    assert profile["excludeFromLatest"] is True
    assert [
        (r["name"], r["excludeFromLatest"], r["regionalReplicaCount"], r["storageAccountType"])
        for r in profile["targetRegions"]
    ] == [("East US", True, 2, "Standard_ZRS"), ("West US", True, 1, "Standard_LRS")]
    assert listed["tags"]["lifecycle"] == "deprecated"
    assert harness.state()["app/2.0.0"] == before["app/2.0.0"]
    assert harness.writes() == {"CreateUpdateGalleryImageVersion": 1}


def test_a_deprecated_version_still_latest_in_a_region_is_hidden_again(
    harness: Harness,  # noqa: F811
) -> None:
    # deprecated by an older run that set only the version's flag: Azure still serves it as
    # latest where the region says excludeFromLatest=false
    stamp = iso(-3)
    legacy = regional("app", "1.0.0", [region(EAST), region(WEST)], excluded=True, eol_days=-3)
    legacy["tags"] = {"lifecycle": "deprecated", DEPRECATED_AT_TAG: stamp}
    harness.sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        definition("app"),
        legacy,
        regional("app", "2.0.0", [region(EAST), region(WEST)]),
    )
    snapshot, outcome = harness.service(dry_run=False).run()
    [entry] = snapshot.plan.entries
    assert (entry.action, entry.rule) == (Action.DEPRECATE, Rule.LATEST_NOT_HIDDEN)
    assert outcome.done == [entry]
    [listed] = [
        v
        for v in harness.compute.gallery_image_versions.list_by_gallery_image(
            RESOURCE_GROUP, GALLERY, "app"
        )
        if v.name == "1.0.0"
    ]
    profile = listed["properties"]["publishingProfile"]
    assert [r["excludeFromLatest"] for r in profile["targetRegions"]] == [True, True]
    assert listed["tags"][DEPRECATED_AT_TAG] == stamp  # the grace period is not restarted
