"""``POST /api/builds``: validated at once (400 with every problem) or accepted (202, build id)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tests.pipeline.conftest import Stack
from tests.pipeline.test_builds_e2e import request


def post(stack: Stack, body: bytes) -> tuple[int, dict[str, str], Any]:
    http = urllib.request.Request(
        f"{stack.host_url}/api/builds",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(http, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_a_valid_request_is_accepted_with_its_build_id_and_gets_built(stack: Stack) -> None:
    definition = "e2e-http"
    stack.seed_definition(definition)
    document = request(definition, stack.seed_snapshot("e2e-http-os"))

    status, headers, answer = post(stack, json.dumps(document).encode())

    assert status == 202, answer
    assert answer["requestId"] == document["requestId"]
    assert headers["Location"] == answer["status"] == f"/api/builds/{answer['buildId']}"
    build = stack.wait_for_build(answer["buildId"])
    assert build["state"] == "succeeded", build["error"]

    # The same request again: not queued a second time, answered with the build it made.
    status, _, again = post(stack, json.dumps(document).encode())
    assert status == 200, again
    assert (
        again["message"]
        == f"request {document['requestId']} already built as {build['target']['version']}"
    )
    assert again["build"]["buildId"] == answer["buildId"]


def test_a_source_is_found_by_its_id_as_arm_writes_it(stack: Stack) -> None:
    definition = "e2e-http-case"
    stack.seed_definition(definition)
    snapshot = stack.seed_snapshot("e2e-http-Case-OS")
    answer = post(stack, json.dumps(request(definition, snapshot)).encode())[2]
    stack.wait_for_build(answer["buildId"])
    mixed_case = snapshot.replace("resourceGroups", "resourcegroups").replace("Case", "CASE")

    url = f"{stack.host_url}/api/sources{urllib.parse.quote(mixed_case)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        entry = json.loads(response.read())
    assert entry["sourceKey"] == snapshot.lower()


def test_an_invalid_request_is_refused_at_once_with_every_problem(stack: Stack) -> None:
    document = request("e2e-http", "/subscriptions/x/not-a-snapshot")
    document["publishing"]["replicaCount"] = 0

    status, _, answer = post(stack, json.dumps(document).encode())

    assert status == 400
    assert answer["error"]["code"] == "ValidationFailed"
    found = {(p["path"], p["rule"]) for p in answer["problems"]}
    assert ("publishing.replicaCount", "replica-count") in found
    assert any(path.startswith("source.snapshot.id") for path, _ in found)
    assert all(p["hint"] or p["message"] for p in answer["problems"])


def test_a_body_that_is_not_json_is_refused(stack: Stack) -> None:
    status, _, answer = post(stack, b"{nope")
    assert status == 400 and answer["error"]["code"] == "InvalidJson"
