"""Trace context of the pipeline's work: one span per unit of work, W3C trace context across
Service Bus, and the structured log fields of the operation a log line belongs to.

* :func:`operation` wraps one unit of work (a message, a timer run, one build followed by the
  tracker) in a span. Given the ``traceparent`` of the message that caused it, the span
  continues that trace, so intake, the build worker and the tracker share one operation per
  build (docs/observability.md). ``fields`` (build id, source...) become span attributes and
  are added to every log record of the operation (``shared.adapters.telemetry`` exports them
  as custom dimensions).
* :func:`current_carrier` is the W3C trace context (``traceparent``, ``tracestate``) of the
  current span: what the Service Bus adapter puts on every outgoing message, and what the
  ledger keeps with a build in flight so the tracker's follow-ups join the build's trace.

Only ``opentelemetry-api`` is used, and imported on first use (not at cold start). Without a
configured SDK (no ``APPLICATIONINSIGHTS_CONNECTION_STRING``) the spans are no-ops that still
carry an incoming trace context on to the messages sent.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from enum import Enum
from typing import Any, ClassVar, Final

#: W3C trace context keys (message application properties, HTTP headers).
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
#: What the .NET Service Bus SDK (and so the Functions host) reads and writes: the traceparent.
DIAGNOSTIC_ID: Final = "Diagnostic-Id"
#: The instrumentation scope of the pipeline's own spans.
TRACER_NAME: Final = "gallery_pipeline"

#: ``version-traceid-parentid-flags`` (https://www.w3.org/TR/trace-context/#traceparent-header).
_TRACEPARENT_FORMAT: Final = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

#: A trace context as text: ``{"traceparent": ..., "tracestate": ...}`` (either may be absent).
TraceCarrier = Mapping[str, str]

_log_fields: ContextVar[dict[str, Any] | None] = ContextVar("gallery_log_fields", default=None)

logger = logging.getLogger(__name__)


class _SetUp:
    """What runs before the first span of the process (the composition root's telemetry)."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    hooks: ClassVar[list[Callable[[], object]]] = []
    #: Set once the hooks ran: until then every operation waits for them (no span may start
    #: on the no-op tracer while another thread is still configuring the SDK).
    ready: ClassVar[threading.Event] = threading.Event()


_SetUp.ready.set()


def before_first_operation(hook: Callable[[], object]) -> None:
    """Run ``hook`` once, before the first :func:`operation` starts its span (so the first span
    of a process is recorded by the SDK the hook configures). A failing hook is logged."""
    with _SetUp.lock:
        _SetUp.hooks.append(hook)
        _SetUp.ready.clear()


def _run_set_up() -> None:
    with _SetUp.lock:  # a second thread waits here until the first has run the hooks
        hooks, _SetUp.hooks = _SetUp.hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception:
                logger.warning("setting up telemetry before the first span failed", exc_info=True)
        _SetUp.ready.set()


def log_fields() -> Mapping[str, Any]:
    """The structured fields of the current operation (empty outside one)."""
    return _log_fields.get() or {}


def _text(value: Any) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def carrier_from_properties(properties: Mapping[Any, Any] | None) -> dict[str, str]:
    """The W3C trace context in a message's application properties: ``traceparent`` (or
    ``Diagnostic-Id``, which the .NET SDK sets) and ``tracestate``; ``{}`` when absent or
    malformed (a bad header starts a new trace, it never fails the message)."""
    found = {_text(key).lower(): _text(value) for key, value in (properties or {}).items()}
    parent = found.get(TRACEPARENT.lower()) or found.get(DIAGNOSTIC_ID.lower()) or ""
    if not _TRACEPARENT_FORMAT.match(parent.strip().lower()):
        return {}
    carrier = {TRACEPARENT: parent.strip().lower()}
    state = found.get(TRACESTATE)
    if state:
        carrier[TRACESTATE] = state
    return carrier


def current_carrier() -> dict[str, str]:
    """The trace context of the current span (``{}`` when there is none)."""
    from opentelemetry import propagate  # noqa: PLC0415  (lazy: not part of the cold start)

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {key: value for key, value in carrier.items() if key in (TRACEPARENT, TRACESTATE)}


def attribute_value(value: Any) -> str | bool | int | float | None:
    """A field as an attribute value: enums by value, anything else but primitives as text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Enum):
        return attribute_value(value.value)
    return str(value)


def _clean(fields: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    cleaned = {key: attribute_value(value) for key, value in fields.items()}
    return {key: value for key, value in cleaned.items() if value is not None}


def annotate(**fields: Any) -> None:
    """Add fields to the current operation: span attributes, and on its later log records."""
    from opentelemetry import trace  # noqa: PLC0415

    cleaned = _clean(fields)
    trace.get_current_span().set_attributes(cleaned)
    bound = _log_fields.get()
    if bound is not None:  # outside an operation nothing is bound (no leak between invocations)
        bound.update(cleaned)


@contextlib.contextmanager
def operation(
    name: str,
    *,
    parent: TraceCarrier | None = None,
    new_trace: bool = False,
    links: Iterable[TraceCarrier] = (),
    fields: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Run the block in a span named ``name`` (kind INTERNAL: in Azure the Functions host
    reports the invocation itself as the request).

    ``parent`` is the trace context of what caused the work (a message's ``traceparent``, the
    one kept with a build). When the current span (the host's invocation) is already in that
    trace, the span nests under it; otherwise it continues ``parent`` and links the current
    span. ``new_trace`` starts a trace of its own, linked to the current span (one item of a
    batch). ``links`` adds span links; ``fields`` become span attributes and log fields.
    """
    if not _SetUp.ready.is_set():
        _run_set_up()
    from opentelemetry import context as otel_context  # noqa: PLC0415
    from opentelemetry import propagate, trace  # noqa: PLC0415

    current = trace.get_current_span().get_span_context()
    span_links: list[trace.Link] = []
    start_context: otel_context.Context | None = None  # None: the current context
    remote = propagate.extract(dict(parent)) if parent else None
    remote_span = trace.get_current_span(remote).get_span_context() if remote else None
    if new_trace:
        start_context = otel_context.Context()
        if current.is_valid:
            span_links.append(trace.Link(current))
    elif (
        remote is not None
        and remote_span is not None
        and remote_span.is_valid
        and not (current.is_valid and current.trace_id == remote_span.trace_id)
    ):
        start_context = remote  # continue the message's trace; link the host's invocation
        if current.is_valid:
            span_links.append(trace.Link(current))
    for carrier in links:
        linked = trace.get_current_span(propagate.extract(dict(carrier))).get_span_context()
        if linked.is_valid:
            span_links.append(trace.Link(linked))
    cleaned = _clean(fields or {})
    token = _log_fields.set({**log_fields(), **cleaned})
    try:
        with trace.get_tracer(TRACER_NAME).start_as_current_span(
            name,
            context=start_context,
            kind=trace.SpanKind.INTERNAL,
            links=span_links,
            attributes=cleaned,
        ):
            yield
    finally:
        _log_fields.reset(token)
