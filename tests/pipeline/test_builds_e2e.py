"""End to end on the local stack: build requests become replicated image versions."""

from __future__ import annotations

import itertools
from typing import Any

from devstack.stack import GALLERY, RESOURCE_GROUP, STORAGE_ACCOUNT_ID, build_request_document
from shared.builds.ledger import build_id_for
from tests.pipeline.conftest import Stack, wait_for


def request(definition: str, snapshot_id: str, **extra: Any) -> dict[str, Any]:
    document = build_request_document(definition, {"snapshot": {"id": snapshot_id}})
    document.update(extra)
    return document


def test_a_request_from_another_system_becomes_a_succeeded_version(stack: Stack) -> None:
    definition = "e2e-request"
    stack.seed_definition(definition)
    snapshot = stack.seed_snapshot("e2e-request-os")
    document = request(definition, snapshot)

    stack.send_request(document)
    build = stack.wait_for_build(build_id_for(document["requestId"]))

    assert build["state"] == "succeeded", build["error"]
    assert build["target"]["version"] == "1.0.0"
    assert {r["region"] for r in build["regions"]} == {"West Europe", "North Europe"}
    assert all(r["state"] == "Completed" for r in build["regions"])
    history = [h["state"] for h in build["history"]]
    assert history[0] == "queued" and history[-1] == "succeeded" and "started" in history


def test_a_vhd_request_becomes_a_version_with_exactly_the_requested_profile(stack: Stack) -> None:
    definition = "e2e-vhd"
    stack.seed_definition(definition)
    url = stack.upload_vhd("vhds", "e2e/os.vhd", 32 * 1024 * 1024)
    document = request(definition, "")
    document["source"] = {"vhd": {"uri": url, "storageAccountId": STORAGE_ACCOUNT_ID}}
    document["target"]["version"] = "3.1.4"
    del document["target"]["versionPolicy"]

    stack.send_request(document)
    build = stack.wait_for_build(build_id_for(document["requestId"]))

    assert build["state"] == "succeeded", build["error"]
    version = stack.compute().gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, definition, "3.1.4"
    )
    profile = version.publishing_profile
    assert [
        (r.name, r.regional_replica_count, r.storage_account_type) for r in profile.target_regions
    ] == [
        ("West Europe", 2, "Standard_LRS"),
        ("North Europe", 1, "Standard_ZRS"),
    ]
    assert profile.replica_count == 1 and profile.storage_account_type == "Standard_LRS"
    assert profile.exclude_from_latest is False
    assert profile.end_of_life_date.isoformat().startswith("2030-01-01T00:00:00")
    assert version.storage_profile.os_disk_image.source.uri == url
    assert (version.tags or {})["gallery-pipeline.build-id"] == build["buildId"]


def test_three_requests_on_one_source_run_one_after_another_while_others_run_in_parallel(
    stack: Stack,
) -> None:
    definition = "e2e-serial"
    stack.seed_definition(definition)
    busy = stack.seed_snapshot("e2e-serial-a")
    other = stack.seed_snapshot("e2e-serial-b")
    conflicts_before = stack.arm_admin("stats")["sourceConflicts"]
    serial = [request(definition, busy) for _ in range(3)]
    parallel = request(definition, other)

    stack.arm_admin("faults", {"slowRegions": {"westeurope": 6, "northeurope": 6}})
    try:
        for document in [*serial, parallel]:
            stack.send_request(document)
        builds = [stack.wait_for_build(build_id_for(d["requestId"])) for d in [*serial, parallel]]
    finally:
        stack.arm_admin("faults", {})

    assert [b["state"] for b in builds] == ["succeeded"] * 4, [b["error"] for b in builds]
    assert stack.arm_admin("stats")["sourceConflicts"] == conflicts_before
    assert sorted(b["target"]["version"] for b in builds) == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]

    def at(build: dict[str, Any], state: str) -> str:
        return str(next(h["at"] for h in build["history"] if h["state"] == state))

    serial_builds = sorted(builds[:3], key=lambda b: at(b, "started"))
    for earlier, later in itertools.pairwise(serial_builds):
        assert at(later, "started") >= at(earlier, "succeeded")
    first_done = at(serial_builds[0], "succeeded")
    assert at(builds[3], "started") < first_done  # the other source did not wait


def test_duplicate_deliveries_of_one_request_produce_one_version(stack: Stack) -> None:
    definition = "e2e-dupes"
    stack.seed_definition(definition)
    document = request(definition, stack.seed_snapshot("e2e-dupes-os"))

    for copy_number in range(3):  # three different message ids: past duplicate detection
        stack.send_request(document, message_id=f"{document['requestId']}-{copy_number}")
    build = stack.wait_for_build(build_id_for(document["requestId"]))
    stack.send_request(document, message_id="after-completion")

    assert build["state"] == "succeeded"
    wait_for(lambda: stack.queue_is_empty("image-builds"), timeout=30, what="the queue to drain")
    versions = list(
        stack.compute().gallery_image_versions.list_by_gallery_image(
            RESOURCE_GROUP, GALLERY, definition
        )
    )
    assert [v.name for v in versions] == ["1.0.0"]


def test_transitions_are_published_as_cloudevents_and_the_source_is_queryable(
    stack: Stack,
) -> None:
    definition = "e2e-events"
    stack.seed_definition(definition)
    snapshot = stack.seed_snapshot("e2e-events-os")
    document = request(definition, snapshot)
    build_id = build_id_for(document["requestId"])

    stack.send_request(document)
    build = stack.wait_for_build(build_id)
    events = stack.events_for(build_id, until_type="com.gallery-pipeline.build.succeeded")

    types = [e["type"].rsplit(".", 1)[1] for e in events]
    assert types[0] == "queued" and types[1] == "started" and types[-1] == "succeeded"
    assert set(types[2:-1]) <= {"replicating"}
    assert all(e["specversion"] == "1.0" and e["subject"] == build_id for e in events)
    assert events[-1]["data"]["versionId"].endswith(f"/images/{definition}/versions/1.0.0")
    status, source = stack.api(f"sources/{build['sourceKey']}")
    assert status == 200
    assert source["inFlight"] is None and document["requestId"] in source["completedRequestIds"]
    status, _ = stack.api("builds/b-does-not-exist")
    assert status == 404


def test_an_azure_outage_during_the_put_is_retried_not_dead_lettered(stack: Stack) -> None:
    definition = "e2e-outage"
    stack.seed_definition(definition)
    document = request(definition, stack.seed_snapshot("e2e-outage-os"))
    build_id = build_id_for(document["requestId"])
    stack.arm_admin("faults", {"errorRates": {"CreateUpdateGalleryImageVersion": 1.0}})
    try:
        stack.send_request(document)
        wait_for(
            lambda: stack.queue_is_empty("image-builds"), timeout=60, what="the message to complete"
        )
        status, build = stack.api(f"builds/{build_id}")
        assert status == 200 and build["state"] == "queued"  # held by the ledger, not lost
    finally:
        stack.arm_admin("faults", {})

    build = stack.wait_for_build(build_id, timeout=60)  # the tracker resumes it

    assert build["state"] == "succeeded", build["error"]
    assert stack.dead_letters("image-builds", expected=1, timeout=2) == []
