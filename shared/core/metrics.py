"""The pipeline's custom metrics, in one place: names, attributes, and one call per event.

The names are a contract with the alerts in ``infra/`` (docs/observability.md lists them with
their attributes); change them only together. Every recording is one line at the place where
the event happens:

=============================== ========================= ======================================
metric                          kind                      recorded by
=============================== ========================= ======================================
``gallery.builds.started``      counter                   the build journal (record -> started)
``gallery.builds.succeeded``    counter                   the build journal
``gallery.builds.failed``       counter, ``reason``       the build journal
``gallery.replication.duration`` histogram (s), ``region`` the build journal, when a build succeeds
``gallery.requests.rejected``   counter, ``rule``,        the build worker and intake, when they
                                ``stage``                 dead-letter a request
``gallery.sources.pending``     observable gauge,         the tracker's last run (in this
                                ``scope``, ``source``     process, at most 5 minutes old)
``gallery.lifecycle.*``         counters                  lifecycle apply (deprecations,
                                                          deletions) and halts (``kind``)
=============================== ========================= ======================================

Only ``opentelemetry-api`` is used, imported on the first recording. Without a configured SDK
every call is a no-op; a failure to record is logged and never fails the pipeline.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from shared.core.errors import PipelineError, ValidationFailed

if TYPE_CHECKING:
    from opentelemetry.metrics import (
        CallbackOptions,
        Counter,
        Histogram,
        MeterProvider,
        Observation,
    )

logger = logging.getLogger(__name__)

METER_NAME: Final = "gallery_pipeline"

BUILDS_STARTED: Final = "gallery.builds.started"
BUILDS_SUCCEEDED: Final = "gallery.builds.succeeded"
BUILDS_FAILED: Final = "gallery.builds.failed"
REPLICATION_DURATION: Final = "gallery.replication.duration"
REQUESTS_REJECTED: Final = "gallery.requests.rejected"
SOURCES_PENDING: Final = "gallery.sources.pending"
LIFECYCLE_DEPRECATIONS: Final = "gallery.lifecycle.deprecations"
LIFECYCLE_DELETIONS: Final = "gallery.lifecycle.deletions"
LIFECYCLE_HALTS: Final = "gallery.lifecycle.halts"

#: ``gallery.sources.pending`` reports the total and the sources with the most pending requests
#: (bounded cardinality: at most this many ``source`` values per report).
PENDING_TOP_SOURCES: Final = 5
#: A snapshot of pending requests older than this is not reported (another instance may have
#: run the tracker since; in Azure the tracker runs every minute).
PENDING_MAX_AGE_SECONDS: Final = 300.0


@dataclass(frozen=True)
class _Instruments:
    builds_started: Counter
    builds_succeeded: Counter
    builds_failed: Counter
    replication_duration: Histogram
    requests_rejected: Counter
    lifecycle_deprecations: Counter
    lifecycle_deletions: Counter
    lifecycle_halts: Counter


class _PendingSnapshot:
    """The pending requests per source as the tracker last saw them (for the gauge)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._taken: float | None = None

    def update(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            self._counts = {source: count for source, count in counts.items() if count > 0}
            self._taken = self._clock()

    def points(self) -> list[tuple[int, dict[str, str]]]:
        """``(value, attributes)``: the total, then the top sources (none when stale)."""
        with self._lock:
            if self._taken is None or self._clock() - self._taken > PENDING_MAX_AGE_SECONDS:
                return []
            counts = dict(self._counts)
        top = heapq.nlargest(PENDING_TOP_SOURCES, counts.items(), key=lambda item: item[1])
        points = [(sum(counts.values()), {"scope": "total"})]
        points += [(count, {"scope": "source", "source": source}) for source, count in top]
        return points


_pending = _PendingSnapshot()


def _observe_pending(options: CallbackOptions) -> Iterable[Observation]:
    from opentelemetry.metrics import Observation  # noqa: PLC0415

    del options
    return [Observation(value, attributes) for value, attributes in _pending.points()]


def _create(provider: MeterProvider | None) -> _Instruments:
    from opentelemetry import metrics  # noqa: PLC0415  (lazy: not part of the cold start)

    meter = (provider or metrics.get_meter_provider()).get_meter(METER_NAME)
    meter.create_observable_gauge(
        SOURCES_PENDING,
        callbacks=[_observe_pending],
        unit="{request}",
        description="Requests waiting for their source: the total and the top sources",
    )
    return _Instruments(
        builds_started=meter.create_counter(
            BUILDS_STARTED, unit="{build}", description="Builds whose image version PUT began"
        ),
        builds_succeeded=meter.create_counter(
            BUILDS_SUCCEEDED, unit="{build}", description="Builds replicated everywhere"
        ),
        builds_failed=meter.create_counter(
            BUILDS_FAILED, unit="{build}", description="Builds that failed, by reason"
        ),
        replication_duration=meter.create_histogram(
            REPLICATION_DURATION,
            unit="s",
            description="From the start of a build to its replication completed, per region",
        ),
        requests_rejected=meter.create_counter(
            REQUESTS_REJECTED,
            unit="{request}",
            description="Requests dead-lettered, by the first problem's rule",
        ),
        lifecycle_deprecations=meter.create_counter(
            LIFECYCLE_DEPRECATIONS, unit="{version}", description="Versions deprecated"
        ),
        lifecycle_deletions=meter.create_counter(
            LIFECYCLE_DELETIONS, unit="{version}", description="Version deletions started"
        ),
        lifecycle_halts=meter.create_counter(
            LIFECYCLE_HALTS, unit="{run}", description="Lifecycle runs halted"
        ),
    )


class _Registry:
    """The instruments of this process, created once (from the global meter provider: a proxy
    until ``configure_azure_monitor`` sets the real one, which the instruments then follow)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instruments: _Instruments | None = None

    def get(self) -> _Instruments:
        with self._lock:
            if self._instruments is None:
                self._instruments = _create(None)
            return self._instruments

    def use(self, provider: MeterProvider | None) -> None:
        with self._lock:
            self._instruments = _create(provider)


_registry = _Registry()


def use_meter_provider(provider: MeterProvider | None) -> None:
    """Create the instruments from ``provider`` (tests); ``None``: the global provider."""
    _registry.use(provider)


def _record(action: Callable[[_Instruments], Any]) -> None:
    """Run one recording; never let telemetry fail the pipeline."""
    try:
        action(_registry.get())
    except Exception:
        logger.debug("recording a metric failed", exc_info=True)


def rejection_rule(error: PipelineError) -> str:
    """What a rejection counts under: the first problem's rule, else the error's reason."""
    if isinstance(error, ValidationFailed) and error.problems:
        return error.problems[0].rule
    return error.reason


def build_started() -> None:
    _record(lambda i: i.builds_started.add(1))


def build_succeeded(replication_seconds: Mapping[str, float]) -> None:
    """One succeeded build, and its replication time for each target region."""

    def record(i: _Instruments) -> None:
        i.builds_succeeded.add(1)
        for region, seconds in replication_seconds.items():
            i.replication_duration.record(max(seconds, 0.0), {"region": region})

    _record(record)


def build_failed(reason: str) -> None:
    _record(lambda i: i.builds_failed.add(1, {"reason": reason}))


def request_rejected(rule: str, *, stage: str) -> None:
    """A request dead-lettered by ``stage`` (``worker`` or ``intake``)."""
    _record(lambda i: i.requests_rejected.add(1, {"rule": rule, "stage": stage}))


def sources_pending(counts: Mapping[str, int]) -> None:
    """The pending requests per source, as the tracker just read them (the gauge's value)."""
    _pending.update(counts)
    _record(lambda _i: None)  # make sure the gauge exists, even before any other recording


def lifecycle_deprecated() -> None:
    _record(lambda i: i.lifecycle_deprecations.add(1))


def lifecycle_deleted() -> None:
    _record(lambda i: i.lifecycle_deletions.add(1))


def lifecycle_halted(kind: str) -> None:
    """A halted lifecycle run: ``tripped`` (this run halted it) or ``held`` (an earlier halt)."""
    _record(lambda i: i.lifecycle_halts.add(1, {"kind": kind}))
