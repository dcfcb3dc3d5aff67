"""What the build worker and the build tracker share: ports, results and the build journal.

* the ports both sides are wired with (:class:`RejectsRelay`, :class:`VhdInspector`);
* the results of their entry points (:class:`MessageOutcome`, :class:`TrackerReport`);
* the delayed-retry schedule of a message (:func:`retry_delay`);
* :func:`definition_of` a request, and :class:`BuildJournal`: a build record's transitions,
  each published as a CloudEvent before it is written, and counted in the build metrics
  (``shared.core.metrics``) once it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from shared.builds.events import build_event
from shared.builds.gallery import DefinitionRef
from shared.builds.records import BuildPhase, BuildRecord, BuildRecords
from shared.contract.model import BuildRequest, VhdSource
from shared.contract.rules import normalise_region
from shared.core import metrics
from shared.core.cloudevents import event_message
from shared.core.messaging import MessageSender, RejectedMessageSink
from shared.vhd.preflight import VhdReport


class RejectsRelay(RejectedMessageSink, Protocol):
    """The rejects sink, plus dead-lettering whatever a crash left in the relay queue."""

    def drain_rejects(self) -> int: ...


class VhdInspector(Protocol):
    """The VHD preflight as a port: footer checks through a range read (never a download)."""

    def inspect(self, source: VhdSource) -> VhdReport: ...


#: Delayed retries of a message that met a transient error before its source was claimed.
MAX_RETRY_ATTEMPTS = 12
RETRY_BASE_SECONDS = 10.0
RETRY_MAX_SECONDS = 600.0


def retry_delay(attempt: int, retry_after_seconds: float | None) -> float:
    """Exponential backoff (10 s, 20 s, ... capped at 10 min), never sooner than Retry-After."""
    backoff = min(RETRY_BASE_SECONDS * 2.0 ** (attempt - 1), RETRY_MAX_SECONDS)
    return max(backoff, retry_after_seconds or 0.0)


class MessageOutcome(StrEnum):
    STARTED = "started"  # the PUT was sent for this request
    ADOPTED = "adopted"  # a redelivery of a build already started: nothing sent again
    PARKED = "parked"  # the source is busy; the request waits in the ledger's FIFO
    DUPLICATE = "duplicate"  # already parked or already done
    REJECTED = "rejected"  # invalid or impossible: dead-lettered with a reason
    FAILED = "failed"  # a valid request that failed permanently (e.g. conflict): rejected too
    RETRY_SCHEDULED = "retry-scheduled"  # transient before the claim: a delayed copy was sent
    DEFERRED = "deferred"  # transient after the claim: the ledger holds it, the tracker resumes


@dataclass
class TrackerReport:
    """What one tracker run did (logged, and returned for tests and the CLI)."""

    checked: int = 0
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Rejected requests a crash had left in the relay queue, dead-lettered by this run.
    rejects_drained: int = 0

    def merge(self, other: TrackerReport) -> None:
        self.checked += other.checked
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.started += other.started
        self.recovered += other.recovered
        self.errors += other.errors


def definition_of(request: BuildRequest) -> DefinitionRef:
    target = request.target
    return DefinitionRef(
        target.subscription_id, target.resource_group, target.gallery, target.definition
    )


class BuildJournal:
    """Build records and their events: every change is published before it is written."""

    def __init__(
        self,
        *,
        records: BuildRecords,
        sender: MessageSender,
        events_topic: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._records = records
        self._sender = sender
        self._events_topic = events_topic
        self._clock = clock

    def get(self, build_id: str) -> BuildRecord | None:
        return self._records.get(build_id)

    def transition(
        self, build_id: str, request: BuildRequest, phase: BuildPhase, **changes: Any
    ) -> BuildRecord:
        """Move the build's record to ``phase`` (created from ``request`` when missing)."""

        def initial(now: str) -> BuildRecord:
            target = request.target
            return BuildRecord(
                build_id=build_id,
                request_id=request.request_id,
                source_key=request.source_key,
                phase=phase,
                subscription_id=target.subscription_id,
                resource_group=target.resource_group,
                gallery=target.gallery,
                definition=target.definition,
                created_at=now,
                updated_at=now,
            )

        def change(current: BuildRecord) -> BuildRecord:
            if phase is BuildPhase.QUEUED and current.phase is not BuildPhase.QUEUED:
                return current  # a redelivery never moves a build back to "queued"
            return replace(current, phase=phase, **changes)

        return self.upsert(initial, build_id, change)

    def upsert(
        self,
        initial: Callable[[str], BuildRecord],
        build_id: str,
        change: Callable[[BuildRecord], BuildRecord],
    ) -> BuildRecord:
        """:meth:`BuildRecords.upsert`, publishing the new record's event before the write.

        The write that moved the record to a new phase is counted (``record_transition``):
        once, by the writer whose compare-and-swap won; a retried attempt or a redelivery that
        changes nothing counts nothing.
        """
        seen: dict[str, Any] = {}

        def tracked_initial(now: str) -> BuildRecord:
            seen["created"] = record = initial(now)
            return record

        def tracked_change(current: BuildRecord) -> BuildRecord:
            seen["before"] = None if current is seen.get("created") else current.phase
            return change(current)

        def publish(record: BuildRecord) -> None:
            seen["written"] = (seen.get("before"), record)
            self.publish(record)

        result = self._records.upsert(
            tracked_initial, build_id, tracked_change, before_write=publish
        )
        written = seen.get("written")
        if written is not None and written[1] is result:
            record_transition(written[0], result)
        return result

    def publish(self, record: BuildRecord) -> None:
        event = build_event(record, time=self._clock())
        self._sender.send(self._events_topic, event_message(event))


#: Phases a build reaches once its image version PUT was accepted.
_STARTED_PHASES = (BuildPhase.STARTED, BuildPhase.REPLICATING, BuildPhase.SUCCEEDED)


def record_transition(before: BuildPhase | None, record: BuildRecord) -> None:
    """Count a written transition ``before`` -> ``record.phase`` (``None``: a new record).

    ``gallery.builds.started`` when a build first reaches a started phase (also when its record
    missed "started" after a crash); ``succeeded`` with the replication time of each region
    (from the start in the record's history to now); ``failed`` with the record's reason.
    """
    if before is record.phase:
        return
    if record.phase in _STARTED_PHASES and before in (None, BuildPhase.QUEUED):
        metrics.build_started()
    if record.phase is BuildPhase.SUCCEEDED:
        metrics.build_succeeded(replication_seconds(record))
    elif record.phase is BuildPhase.FAILED:
        metrics.build_failed(record.error_reason or "Unknown")


def replication_seconds(record: BuildRecord) -> dict[str, float]:
    """Seconds from the build's start (the history's ``started``, else its creation) to its
    last update, for each target region (regions by their normalised name)."""
    started = next(
        (h["at"] for h in record.history if h.get("state") == BuildPhase.STARTED.value),
        record.created_at,
    )
    try:
        seconds = (
            datetime.fromisoformat(record.updated_at) - datetime.fromisoformat(started)
        ).total_seconds()
    except ValueError:
        return {}
    return {normalise_region(region.region): seconds for region in record.regions}
