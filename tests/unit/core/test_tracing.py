"""Trace context across the pipeline's work: spans per operation, W3C context in and out."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace

from shared.core import tracing
from tests.unit.otel_capture import finished, span_exporter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"traceparent": PARENT, "tracestate": "az=1"},
            {"traceparent": PARENT, "tracestate": "az=1"},
        ),
        ({b"traceparent": PARENT.encode()}, {"traceparent": PARENT}),
        ({"Diagnostic-Id": PARENT}, {"traceparent": PARENT}),  # what the .NET SDK writes
        ({"TraceParent": PARENT.upper()}, {"traceparent": PARENT}),
        ({"traceparent": "not-a-traceparent"}, {}),
        ({"traceparent": PARENT[:-1]}, {}),
        ({}, {}),
        (None, {}),
    ],
)
def test_the_trace_context_of_a_message_is_read_or_ignored(
    properties: dict[object, object] | None, expected: dict[str, str]
) -> None:
    assert tracing.carrier_from_properties(properties) == expected


def test_an_operation_continues_the_trace_of_the_message_that_caused_it() -> None:
    spans = span_exporter()

    with tracing.operation("work", parent={"traceparent": PARENT}, fields={"build_id": "b-1"}):
        carrier = tracing.current_carrier()

    (span,) = finished(spans, "work")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes == {"build_id": "b-1"}
    assert carrier["traceparent"].split("-")[1] == TRACE_ID  # what messages sent here carry
    assert carrier["traceparent"].split("-")[2] == format(span.context.span_id, "016x")


def test_an_operation_nests_under_the_invocation_span_when_it_is_already_in_that_trace() -> None:
    spans = span_exporter()
    with tracing.operation("host invocation", parent={"traceparent": PARENT}):
        host = trace.get_current_span().get_span_context()
        with tracing.operation("work", parent={"traceparent": PARENT}):
            pass

    (span,) = finished(spans, "work")
    assert span.parent is not None and span.parent.span_id == host.span_id
    assert not span.links


def test_an_operation_in_another_trace_continues_the_message_and_links_the_current_span() -> None:
    spans = span_exporter()
    with tracing.operation("host invocation"):
        host = trace.get_current_span().get_span_context()
        with tracing.operation("work", parent={"traceparent": PARENT}):
            pass

    (span,) = finished(spans, "work")
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert [link.context.span_id for link in span.links] == [host.span_id]


def test_a_new_trace_is_linked_to_the_current_span() -> None:
    spans = span_exporter()
    with tracing.operation("timer run"):
        run = trace.get_current_span().get_span_context()
        with tracing.operation("one item", new_trace=True):
            pass

    (item,) = finished(spans, "one item")
    assert item.parent is None and item.context.trace_id != run.trace_id
    assert [link.context.span_id for link in item.links] == [run.span_id]


def test_fields_reach_the_log_fields_of_the_operation_only() -> None:
    span_exporter()
    assert tracing.log_fields() == {}
    with tracing.operation("outer", fields={"source": "s", "nothing": None}):
        assert tracing.log_fields() == {"source": "s"}
        with tracing.operation("inner", fields={"build_id": "b-1"}):
            tracing.annotate(version="1.0.3")
            assert tracing.log_fields() == {"source": "s", "build_id": "b-1", "version": "1.0.3"}
        assert tracing.log_fields() == {"source": "s"}
    assert tracing.log_fields() == {}
    tracing.annotate(version="9.9.9")  # outside an operation: nothing is bound (no leak)
    assert tracing.log_fields() == {}


def test_annotations_become_span_attributes() -> None:
    spans = span_exporter()
    with tracing.operation("work"):
        tracing.annotate(build_id="b-2", attempt=2)

    (span,) = finished(spans, "work")
    assert span.attributes == {"build_id": "b-2", "attempt": 2}


def test_an_exception_is_recorded_on_the_span_and_raised() -> None:
    spans = span_exporter()
    with pytest.raises(RuntimeError), tracing.operation("work"):
        raise RuntimeError("boom")

    (span,) = finished(spans, "work")
    assert span.status.status_code is trace.StatusCode.ERROR


def test_the_set_up_hook_runs_once_before_the_first_span_even_when_it_fails() -> None:
    span_exporter()
    calls: list[str] = []

    def hook() -> None:
        calls.append(threading.current_thread().name)
        raise RuntimeError("bad settings")

    tracing.before_first_operation(hook)
    with tracing.operation("first"):
        pass
    with tracing.operation("second"):
        pass

    assert len(calls) == 1
