"""The host is killed (SIGKILL) in the middle of builds; after a restart everything converges."""

from __future__ import annotations

import os
import signal

from devstack import control as devstack_cli
from devstack.stack import GALLERY, RESOURCE_GROUP
from shared.builds.ledger import build_id_for
from tests.pipeline.conftest import Stack, wait_for
from tests.pipeline.test_builds_e2e import request


def test_a_killed_host_converges_after_restart_without_duplicates_or_losses(stack: Stack) -> None:
    definition = "e2e-crash"
    stack.seed_definition(definition)
    source_a = stack.seed_snapshot("e2e-crash-a")
    source_b = stack.seed_snapshot("e2e-crash-b")
    on_a = [request(definition, source_a) for _ in range(3)]
    late = request(definition, source_b)
    conflicts_before = stack.arm_admin("stats")["sourceConflicts"]
    stack.arm_admin("faults", {"slowRegions": {"westeurope": 20, "northeurope": 20}})
    try:
        for document in on_a:
            stack.send_request(document)
        first = build_id_for(on_a[0]["requestId"])
        stack.wait_for_build(first, states=("started", "replicating"), timeout=30)
        for document in on_a[1:]:
            stack.wait_for_build(build_id_for(document["requestId"]), states=("queued",))
        wait_for(lambda: stack.queue_is_empty("image-builds"), timeout=30, what="an empty queue")

        host = stack.processes["host"]
        os.killpg(host.pid, signal.SIGKILL)  # mid-replication, with two requests parked
        host.popen.wait(timeout=10)
        stack.send_request(late)  # arrives while no host runs
        stack.processes["host"] = devstack_cli._start("host", stack.layout)
    finally:
        stack.arm_admin("faults", {})

    builds = [stack.wait_for_build(build_id_for(d["requestId"]), timeout=90) for d in [*on_a, late]]

    assert [b["state"] for b in builds] == ["succeeded"] * 4, [b["error"] for b in builds]
    versions = list(
        stack.compute().gallery_image_versions.list_by_gallery_image(
            RESOURCE_GROUP, GALLERY, definition
        )
    )
    request_ids = sorted((v.tags or {})["gallery-pipeline.request-id"] for v in versions)
    assert request_ids == sorted(d["requestId"] for d in [*on_a, late])
    assert stack.arm_admin("stats")["sourceConflicts"] == conflicts_before
