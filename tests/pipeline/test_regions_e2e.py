"""Region names on the whole stack: a typo (``westeurop``) is refused with "did you mean" before
any version PUT reaches ARM, and a request whose regions leave out the gallery's own region fails
for good before Azure would refuse it. The simulator's request counters are the witness."""

from __future__ import annotations

import json
import uuid
from typing import Any

from devstack.stack import GALLERY, RESOURCE_GROUP
from shared.builds.ledger import build_id_for
from tests.pipeline.conftest import Stack
from tests.pipeline.test_builds_e2e import request
from tests.pipeline.test_http_api_e2e import post

VERSION_PUTS = "CreateUpdateGalleryImageVersion"


def _arm_calls(stack: Stack) -> dict[str, int]:
    calls: dict[str, int] = stack.arm_admin("stats")["armCalls"]
    return calls


def _with_regions(document: dict[str, Any], *names: str) -> dict[str, Any]:
    document["publishing"]["targetRegions"] = [{"name": name} for name in names]
    return document


def test_a_region_typo_is_refused_before_any_version_put(stack: Stack) -> None:
    definition = "e2e-region-typo"
    stack.seed_definition(definition)
    snapshot = stack.seed_snapshot("e2e-region-typo-os")
    before = _arm_calls(stack).get(VERSION_PUTS, 0)

    # over the queue: dead-lettered with the rule, the field and the fix
    document = _with_regions(
        request(definition, snapshot, requestId=f"typo-{uuid.uuid4().hex[:8]}"), "westeurop"
    )
    message_id = f"msg-typo-{uuid.uuid4().hex[:6]}"
    stack.send_raw(json.dumps(document).encode(), message_id)
    [dead] = stack.dead_letters(
        "image-builds-rejected", expected=1, timeout=60, message_ids={message_id}
    )
    assert dead.dead_letter_reason == "ValidationFailed"
    description = dead.dead_letter_error_description or ""
    assert "publishing.targetRegions[0].name" in description
    assert "[region-name]" in description
    assert "did you mean 'westeurope'?" in description

    # over the HTTP API: 400 at once, the same problem
    status, _, answer = post(stack, json.dumps(document).encode())
    assert status == 400, answer
    [problem] = answer["problems"]
    assert problem["rule"] == "region-name"
    assert problem["hint"].startswith("did you mean 'westeurope'?")

    calls = _arm_calls(stack)
    assert calls.get(VERSION_PUTS, 0) == before  # no version PUT was sent
    assert calls.get("ListLocations", 0) >= 1  # checked against ARM's list, not only ours
    versions = stack.compute().gallery_image_versions.list_by_gallery_image(
        RESOURCE_GROUP, GALLERY, definition
    )
    assert list(versions) == []


def test_target_regions_without_the_gallerys_region_fail_before_the_put(stack: Stack) -> None:
    definition = "e2e-region-gallery"
    stack.seed_definition(definition)
    snapshot = stack.seed_snapshot("e2e-region-gallery-os")
    before = _arm_calls(stack).get(VERSION_PUTS, 0)
    document = _with_regions(request(definition, snapshot), "northeurope")  # devgallery: westeurope

    stack.send_request(document)
    build = stack.wait_for_build(build_id_for(document["requestId"]))

    assert build["state"] == "failed"
    assert build["error"]["reason"] == "ValidationFailed", build["error"]
    message = build["error"]["message"]
    assert "publishing.targetRegions" in message
    assert "'westeurope'" in message
    assert '{"name": "westeurope"}' in message
    assert _arm_calls(stack).get(VERSION_PUTS, 0) == before
