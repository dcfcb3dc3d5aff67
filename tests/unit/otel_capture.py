"""OpenTelemetry SDK pieces that keep what the pipeline emits in memory (unit tests only).

The global tracer provider can be set once per process: :func:`span_exporter` installs one SDK
provider with an in-memory exporter the first time it is called, and clears it for each test.
Metrics do not need the global provider: :func:`metric_reader` points ``shared.core.metrics`` at
a fresh provider with an in-memory reader.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.core import metrics

_EXPORTER = InMemorySpanExporter()


def span_exporter() -> InMemorySpanExporter:
    """The in-memory exporter of the process's SDK tracer provider, emptied."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    return _EXPORTER


def finished(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def metric_reader() -> InMemoryMetricReader:
    """A reader of the pipeline's instruments, from now on (a fresh provider per call)."""
    reader = InMemoryMetricReader()
    metrics.use_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    """``(attributes, point)`` of metric ``name`` as the reader collects it now."""
    data = reader.get_metrics_data()
    found: list[tuple[dict[str, Any], Any]] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
    return found


def total(reader: InMemoryMetricReader, name: str, **attributes: Any) -> float:
    """The sum of a counter's points whose attributes include ``attributes``."""
    return float(
        sum(
            point.value
            for found, point in points(reader, name)
            if all(found.get(k) == v for k, v in attributes.items())
        )
    )
