"""Where the pipeline records its metrics and carries trace context: the journal's transitions
(each counted once), rejections, the pending gauge, the ledger keeping a build's trace, the
tracker and hand-overs continuing it, and every Service Bus message carrying it."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.service_bus import _sdk_message
from shared.builds.ledger import build_id_for
from shared.core import metrics, tracing
from shared.core.messaging import IncomingMessage, OutgoingMessage
from shared.intake.outcomes import IntakeOutcome
from shared.vhd.footer import build_fixed_footer
from tests.unit.build_fakes import Harness, make_harness
from tests.unit.builds.test_builds import DEFINITION, message, request_doc
from tests.unit.intake.test_intake_service import VHD, VIRTUAL_SIZE, created, make_world
from tests.unit.lifecycle.test_lifecycle_halt import BACKLOG, Bench
from tests.unit.otel_capture import finished, metric_reader, points, span_exporter, total

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def harness() -> Harness:
    h = make_harness()
    h.gallery.add_definition(DEFINITION)
    return h


def traced(
    doc: dict[str, object], trace_id: str = TRACE_ID, message_id: str = "m-1"
) -> IncomingMessage:
    incoming = message(doc, message_id)
    return IncomingMessage(
        body=incoming.body,
        message_id=message_id,
        application_properties={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )


def handle(h: Harness, incoming: IncomingMessage) -> None:
    """What functions/build_worker.py does: the worker inside the message's operation."""
    with tracing.operation("build_worker", parent=incoming.trace_context):
        h.worker.handle_message(incoming)


def test_a_build_counts_as_started_then_succeeded_once_with_its_replication_time() -> None:
    reader, h = metric_reader(), harness()
    handle(h, traced(request_doc(requestId="r-1")))
    h.clock.advance(1800)
    h.gallery.complete("ubuntu-24.04", "1.0.0")

    h.tracker.follow_up()
    h.tracker.follow_up()  # a repeated run changes nothing, counts nothing
    handle(h, traced(request_doc(requestId="r-1")))  # a redelivery neither

    assert total(reader, metrics.BUILDS_STARTED) == 1
    assert total(reader, metrics.BUILDS_SUCCEEDED) == 1
    durations = {
        a["region"]: (p.count, p.sum) for a, p in points(reader, metrics.REPLICATION_DURATION)
    }
    assert durations == {"westeurope": (1, 1800.0), "eastus": (1, 1800.0)}


def test_a_failed_build_counts_with_its_reason() -> None:
    reader, h = metric_reader(), harness()
    handle(h, traced(request_doc(requestId="r-2")))
    h.gallery.fail_region("ubuntu-24.04", "1.0.0", "eastus")

    h.tracker.follow_up()

    assert total(reader, metrics.BUILDS_FAILED, reason="ReplicationFailed") == 1
    assert total(reader, metrics.BUILDS_SUCCEEDED) == 0


def test_an_invalid_request_counts_as_rejected_under_its_first_rule() -> None:
    reader, h = metric_reader(), harness()
    doc = request_doc(requestId="r-3")
    doc["publishing"] = {"targetRegions": [{"name": "westeurope", "replicaCount": 0}]}

    h.worker.handle_message(message(doc))

    (_, reason, description) = h.rejects.rejected[0]
    (found,) = [a for a, _ in points(reader, metrics.REQUESTS_REJECTED)]
    assert reason == "ValidationFailed" and found["stage"] == "worker"
    assert f"[{found['rule']}]" in description.split(";")[0]  # the first problem's rule


def test_the_tracker_reports_the_requests_waiting_per_source() -> None:
    reader, h = metric_reader(), harness()
    for n in range(3):  # one builds, two wait behind it
        handle(h, traced(request_doc(requestId=f"r-{n}"), message_id=f"m-{n}"))

    h.tracker.follow_up()

    reported = {a["scope"]: p.value for a, p in points(reader, metrics.SOURCES_PENDING)}
    assert reported == {"total": 2, "source": 2}


def test_a_claimed_build_keeps_its_trace_and_the_tracker_follows_it_there() -> None:
    spans, h = span_exporter(), harness()
    handle(h, traced(request_doc(requestId="r-4")))
    entry = next(h.ledger.active_entries())
    assert entry.in_flight is not None
    assert entry.in_flight.trace_context["traceparent"].split("-")[1] == TRACE_ID

    with tracing.operation("build_tracker"):
        run = tracing.current_carrier()
        h.tracker.follow_up()

    (follow,) = finished(spans, "build_tracker follow")
    assert format(follow.context.trace_id, "032x") == TRACE_ID
    assert follow.attributes is not None and follow.attributes["build_id"] == build_id_for("r-4")
    assert [format(link.context.trace_id, "032x") for link in follow.links] == [
        run["traceparent"].split("-")[1]
    ]


def test_a_parked_request_keeps_its_own_trace_and_starts_in_it_when_handed_over() -> None:
    spans, h = span_exporter(), harness()
    handle(h, traced(request_doc(requestId="r-5"), message_id="m-5"))
    handle(h, traced(request_doc(requestId="r-6"), OTHER_TRACE, message_id="m-6"))  # parked
    entry = next(h.ledger.active_entries())
    assert entry.pending[0].trace_context["traceparent"].split("-")[1] == OTHER_TRACE

    h.gallery.complete("ubuntu-24.04", "1.0.0")
    h.tracker.follow_up()

    (start,) = finished(spans, "start pending build")
    assert format(start.context.trace_id, "032x") == OTHER_TRACE
    handed = next(h.ledger.active_entries()).in_flight
    assert handed is not None and handed.request_id == "r-6"
    assert handed.trace_context["traceparent"].split("-")[1] == OTHER_TRACE


def test_the_version_and_build_id_reach_the_log_fields_of_the_workers_operation() -> None:
    span_exporter()
    h = harness()
    seen: list[dict[str, object]] = []
    original = h.gallery.start_version

    def spy(version: Any, body: Any) -> Any:
        seen.append(dict(tracing.log_fields()))
        return original(version, body)

    h.gallery.start_version = spy  # type: ignore[method-assign]
    handle(h, traced(request_doc(requestId="r-7")))

    assert seen[0]["build_id"] == build_id_for("r-7")
    assert seen[0]["version"] == "1.0.0" and seen[0]["gallery"] == "platform_images"


def test_every_service_bus_message_carries_the_current_trace_for_the_next_handler() -> None:
    span_exporter()
    plain = OutgoingMessage(body=b"{}", message_id="m", application_properties={"a": "1"})
    assert set(_sdk_message(plain).application_properties or {}) == {"a"}

    with tracing.operation("work", parent={"traceparent": PARENT}):
        sdk = _sdk_message(plain)

    properties = {
        (k.decode() if isinstance(k, bytes) else k): str(v)
        for k, v in (sdk.application_properties or {}).items()
    }
    assert properties["traceparent"].split("-")[1] == TRACE_ID
    assert properties["Diagnostic-Id"] == properties["traceparent"]
    assert properties["a"] == "1"
    incoming = IncomingMessage(body=b"{}", application_properties=properties)
    assert incoming.trace_context["traceparent"] == properties["traceparent"]


def test_intake_counts_a_rejected_upload_once() -> None:
    reader, world = metric_reader(), make_world()
    world.blobs.create_page_blob(blob_type="BlockBlob", tail=build_fixed_footer(VIRTUAL_SIZE))

    first = world.service.on_blob_created(created(VHD, "BlockBlob"))
    world.service.on_blob_created(created(VHD, "BlockBlob"))  # a duplicate event

    assert first.outcome == IntakeOutcome.REJECTED
    assert total(reader, metrics.REQUESTS_REJECTED, rule="VhdNotPageBlob", stage="intake") == 1


def test_intake_counts_an_invalid_manifest_under_its_rule() -> None:
    reader, world = metric_reader(), make_world()
    world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({"publishing": {"replicaCount": 0}}, etag="0xm1")

    world.service.on_blob_created(created(VHD + ".json", "BlockBlob"))

    (found,) = [a for a, _ in points(reader, metrics.REQUESTS_REJECTED)]
    assert found["stage"] == "intake" and found["rule"] != "ValidationFailed"
    assert found["rule"] in world.bus.rejected[0][2]


def test_lifecycle_runs_count_their_changes_and_halts() -> None:
    reader, bench = metric_reader(), Bench()

    bench.run(BACKLOG, max_deletions_per_run=2)  # trips the circuit breaker
    bench.run(BACKLOG, max_deletions_per_run=2)  # held by it

    assert total(reader, metrics.LIFECYCLE_HALTS, kind="tripped") == 1
    assert total(reader, metrics.LIFECYCLE_HALTS, kind="held") == 1
    assert total(reader, metrics.LIFECYCLE_DELETIONS) == 0

    applied = Bench().run(BACKLOG, max_deletions_per_run=10)
    assert applied["status"] == "applied"
    assert total(reader, metrics.LIFECYCLE_DELETIONS) == len(applied["outcome"]["done"])
    assert json.dumps(applied)  # the run document is unchanged by the counting
