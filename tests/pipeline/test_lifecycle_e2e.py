"""The lifecycle timer through the whole app: a run plans over the gallery and publishes its
summary as a CloudEvent on the events topic (dry run: the sample's default)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from devstack.stack import GALLERY, LOCATION, RESOURCE_GROUP
from tests.pipeline.conftest import Stack


def version_resource(definition_id: str, name: str, end_of_life: str) -> dict[str, Any]:
    return {
        "id": f"{definition_id}/versions/{name}",
        "location": LOCATION,
        "properties": {
            "publishingProfile": {
                "targetRegions": [{"name": LOCATION, "regionalReplicaCount": 1}],
                "endOfLifeDate": end_of_life,
            },
            "storageProfile": {"osDiskImage": {"sizeInGB": 4}},
        },
    }


def run_function(stack: Stack, name: str) -> None:
    request = urllib.request.Request(
        f"{stack.host_url}/admin/functions/{name}",
        data=json.dumps({"input": ""}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def lifecycle_summaries(stack: Stack, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    with (
        stack.bus() as client,
        client.get_subscription_receiver("image-build-events", "tracker") as receiver,
    ):
        while time.monotonic() < deadline:
            found = []
            for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                receiver.complete_message(message)
                event = json.loads(b"".join(message.body))
                if event["type"] == "com.gallery-pipeline.lifecycle.run":
                    found.append(event)
            if found:
                return found
    raise AssertionError(f"no lifecycle run event within {timeout}s")


def test_a_lifecycle_run_plans_and_publishes_its_summary(stack: Stack) -> None:
    definition_id = stack.seed_definition("e2e-lifecycle")
    stack.seed(  # the newest three are kept whatever their end of life (min-keep, default 3)
        version_resource(definition_id, "1.0.0", "2020-01-01T00:00:00Z"),
        version_resource(definition_id, "1.1.0", "2021-01-01T00:00:00Z"),
        version_resource(definition_id, "1.2.0", "2021-01-01T00:00:00Z"),
        version_resource(definition_id, "1.3.0", "2031-01-01T00:00:00Z"),
        version_resource(definition_id, "2.0.0", "2031-01-01T00:00:00Z"),
    )

    run_function(stack, "lifecycle_timer")
    [summary] = lifecycle_summaries(stack, timeout=60)

    assert summary["data"]["status"] == "dry-run"
    assert summary["data"]["planned"]["deprecate"] >= 2  # 1.0.0 and 1.1.0: past end of life
    assert summary["data"]["heldByRule"].get("min-keep", 0) >= 1  # 1.2.0 is kept
    assert summary["source"] == "/gallery-pipeline/lifecycle"
    untouched = stack.compute().gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, "e2e-lifecycle", "1.0.0"
    )  # a dry run changes nothing
    assert not (untouched.publishing_profile and untouched.publishing_profile.exclude_from_latest)
