"""Targeted fault rules (``POST /admin/faults`` ``rules``): scoped to an operation group, with a
count or a probability, answering 429 with Retry-After, 5xx, or a delay, before the handler."""

from __future__ import annotations

import json
import urllib.error

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from tests.devstack.armsim.conftest import (
    GALLERY,
    GALLERY_ID,
    IMAGE,
    IMAGE_ID,
    RESOURCE_GROUP,
    ArmSim,
    RawArm,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
    timed,
)

VERSIONS = f"{IMAGE_ID}/versions"


def test_a_counted_429_rule_hits_only_its_group_then_runs_out(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    fresh.admin(
        "POST",
        "/admin/faults",
        {
            "rules": [
                {"group": "ListGalleryImageVersion", "status": 429, "retryAfter": 7, "count": 1}
            ]
        },
    )
    assert raw.call("GET", IMAGE_ID).status_code == 200  # another group: untouched
    throttled = raw.call("GET", VERSIONS)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    error = throttled.json()["error"]
    assert error["code"] == "OperationNotAllowed"
    assert error["details"][0]["code"] == "TooManyRequests"
    assert error["details"][0]["target"] == "ListGalleryImageVersion3Min"
    assert raw.call("GET", VERSIONS).status_code == 200  # the count ran out
    rules = fresh.admin("GET", "/admin/faults")["rules"]
    assert rules == [
        {
            "group": "ListGalleryImageVersion",
            "probability": 1.0,
            "status": 429,
            "retryAfter": 7,
            "count": 0,
            "hits": 1,
        }
    ]


def test_the_sdk_sleeps_the_rules_retry_after_then_succeeds(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    fresh.admin(
        "POST",
        "/admin/faults",
        {"rules": [{"group": "GetGallery", "status": 429, "retryAfter": 2, "count": 1}]},
    )
    gallery, seconds = timed(lambda: compute.galleries.get(RESOURCE_GROUP, GALLERY))
    assert gallery.name == GALLERY
    assert 1.8 <= seconds < 6


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "InternalExecutionError"), (503, "ServiceUnavailable"), (504, "GatewayTimeout")],
)
def test_5xx_rules_answer_arms_error_bodies(
    fresh: ArmSim, raw: RawArm, status: int, code: str
) -> None:
    seed_gallery(fresh)
    rule = {"group": "GetGallery", "status": status, "retryAfter": 3, "count": 1}
    fresh.admin("POST", "/admin/faults", {"rules": [rule]})
    answer = raw.call("GET", GALLERY_ID)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert answer.headers["Retry-After"] == "3"


def test_a_rejected_put_changes_nothing(
    fresh: ArmSim, compute: ComputeManagementClient, raw: RawArm
) -> None:
    seed_gallery(fresh)
    body = snapshot_version_body(seed_snapshot(fresh, "s"))
    fresh.admin(
        "POST",
        "/admin/faults",
        {"rules": [{"group": "CreateUpdateGalleryImageVersion", "status": 503}]},
    )
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body), retry_total=0
        )
    assert caught.value.status_code == 503
    assert raw.call("GET", f"{VERSIONS}/1.0.0").status_code == 404
    assert fresh.admin("GET", "/admin/stats")["sourceConflicts"] == 0


def test_a_delay_rule_slows_the_answer_and_lets_it_through(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    fresh.admin(
        "POST",
        "/admin/faults",
        {"rules": [{"group": "ListGalleryImageVersion", "delayMs": 600, "count": 1}]},
    )
    slow, slow_seconds = timed(lambda: raw.call("GET", VERSIONS))
    fast, fast_seconds = timed(lambda: raw.call("GET", VERSIONS))
    assert slow.status_code == fast.status_code == 200
    assert slow_seconds >= 0.6
    assert fast_seconds < 0.5


def test_probabilities_draw_from_the_rule_seed(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)

    def outcomes() -> list[int]:
        fresh.admin(
            "POST",
            "/admin/faults",
            {
                "ruleSeed": 7,
                "rules": [{"group": "GetGalleryImage", "status": 500, "probability": 0.5}],
            },
        )
        return [raw.call("GET", IMAGE_ID).status_code for _ in range(12)]

    first = outcomes()
    assert set(first) == {200, 500}
    assert outcomes() == first
    assert fresh.admin("GET", "/admin/faults")["rules"][0]["hits"] == first.count(500)


@pytest.mark.parametrize(
    "rule",
    [{"group": "GetGallery"}, {"status": 404}, {"status": 429, "probability": 2}],
)
def test_invalid_rules_are_refused(fresh: ArmSim, rule: dict[str, object]) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        fresh.admin("POST", "/admin/faults", {"rules": [rule]})
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"]["code"] == "InvalidFaults"
