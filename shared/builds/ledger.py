"""The per-source ledger: one build at a time per source, a FIFO of the rest, nothing built twice.

Azure refuses a new image version from a source that is still being built or replicated for
another version ("Too many requests on source ..."). The ledger keeps one small JSON document per
source, updated by compare-and-swap on its ETag, holding:

* the build in flight (at most one), with its state ``claimed`` -> ``started``;
* a FIFO of pending requests that arrived while the source was busy;
* the request ids recently completed, so a redelivered message is recognised.

A build in flight (and a parked request) keeps the W3C trace context of the work that claimed
it (``traceContext``), so whoever follows it later (the tracker) continues the build's trace.

Every operation is a read-modify-write retried on a concurrent change, so any number of function
instances can use it at once (:func:`shared.core.documents.cas_update`). The store behind it is
the document-store port; production uses a blob container (``shared.adapters.blob_document_store``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from shared.core import tracing
from shared.core.documents import KEEP, Change, DocumentStore, StaleWrite, cas_update

logger = logging.getLogger(__name__)

#: How many completed request ids each source remembers for idempotency.
COMPLETED_HISTORY_LIMIT = 200

LEDGER_SCHEMA_VERSION = 1

_Result = TypeVar("_Result")


class BuildState(StrEnum):
    CLAIMED = "claimed"  # the source is ours; the image version PUT has not been confirmed yet
    STARTED = "started"  # the PUT was accepted; the timer follows replication
    #: Held for a build that reads several sources (an OS source and data disks): taken in a
    #: fixed order; the OS source's entry becomes ``claimed`` once every source is held.
    HELD = "held"


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # the caller owns the source now and must start the build
    ADOPTED = "adopted"  # the same request is already in flight: continue it, never rebuild
    PARKED = "parked"  # the source is busy; the request waits in the FIFO
    ALREADY_PARKED = "already-parked"  # a redelivery of a request that already waits
    ALREADY_DONE = "already-done"  # a redelivery of a request that has completed


@dataclass(frozen=True)
class InFlightBuild:
    """The one build that currently owns a source."""

    build_id: str
    request_id: str
    state: BuildState
    claimed_at: str
    request: dict[str, Any]
    version_id: str | None = None
    started_at: str | None = None
    #: Who may start the claimed build, and until when: the starter renews it before each
    #: step that writes (reserving, the PUT); a starter whose lease was taken over stops.
    lease_token: str | None = None
    lease_until: str | None = None
    #: Every source the build reads, in lock order, when it reads more than one.
    sources: tuple[str, ...] = ()
    #: The trace context of the message that claimed it (``traceparent``, ``tracestate``).
    trace_context: Mapping[str, str] = field(default_factory=dict)

    def lease_expired(self, now: datetime, grace_seconds: float) -> bool:
        """Free for another starter: the lease ran out (a claim from before leases existed
        counts from its claim time, ``grace_seconds``)."""
        if self.lease_until is not None:
            return now >= datetime.fromisoformat(self.lease_until)
        return now - datetime.fromisoformat(self.claimed_at) >= timedelta(seconds=grace_seconds)

    def to_document(self) -> dict[str, Any]:
        return {
            "buildId": self.build_id,
            "requestId": self.request_id,
            "state": self.state.value,
            "claimedAt": self.claimed_at,
            "startedAt": self.started_at,
            "versionId": self.version_id,
            "leaseToken": self.lease_token,
            "leaseUntil": self.lease_until,
            "sources": list(self.sources),
            "request": self.request,
            **_trace_document(self.trace_context),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> InFlightBuild:
        return cls(
            build_id=str(doc["buildId"]),
            request_id=str(doc["requestId"]),
            state=BuildState(doc["state"]),
            claimed_at=str(doc["claimedAt"]),
            started_at=doc.get("startedAt"),
            version_id=doc.get("versionId"),
            lease_token=doc.get("leaseToken"),
            lease_until=doc.get("leaseUntil"),
            sources=tuple(str(s) for s in doc.get("sources") or ()),
            request=dict(doc.get("request") or {}),
            trace_context=_trace_of(doc),
        )


def _trace_document(trace_context: Mapping[str, str]) -> dict[str, Any]:
    return {"traceContext": dict(trace_context)} if trace_context else {}


def _trace_of(doc: Mapping[str, Any]) -> dict[str, str]:
    return tracing.carrier_from_properties(doc.get("traceContext"))


@dataclass(frozen=True)
class PendingRequest:
    """A request waiting for its source; kept whole so nothing is lost while it waits."""

    request_id: str
    queued_at: str
    request: dict[str, Any]
    sources: tuple[str, ...] = ()
    trace_context: Mapping[str, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "queuedAt": self.queued_at,
            "sources": list(self.sources),
            "request": self.request,
            **_trace_document(self.trace_context),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> PendingRequest:
        return cls(
            request_id=str(doc["requestId"]),
            queued_at=str(doc["queuedAt"]),
            sources=tuple(str(s) for s in doc.get("sources") or ()),
            request=dict(doc.get("request") or {}),
            trace_context=_trace_of(doc),
        )


@dataclass(frozen=True)
class SourceEntry:
    """The ledger document of one source."""

    source_key: str
    in_flight: InFlightBuild | None = None
    pending: tuple[PendingRequest, ...] = ()
    completed_request_ids: tuple[str, ...] = field(default=())

    @property
    def busy(self) -> bool:
        return self.in_flight is not None

    def knows(self, request_id: str) -> bool:
        return (
            (self.in_flight is not None and self.in_flight.request_id == request_id)
            or any(p.request_id == request_id for p in self.pending)
            or request_id in self.completed_request_ids
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "schemaVersion": LEDGER_SCHEMA_VERSION,
            "sourceKey": self.source_key,
            "inFlight": self.in_flight.to_document() if self.in_flight else None,
            "pending": [p.to_document() for p in self.pending],
            "completedRequestIds": list(self.completed_request_ids),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> SourceEntry:
        in_flight = doc.get("inFlight")
        return cls(
            source_key=str(doc["sourceKey"]),
            in_flight=InFlightBuild.from_document(in_flight) if in_flight else None,
            pending=tuple(PendingRequest.from_document(p) for p in doc.get("pending") or ()),
            completed_request_ids=tuple(str(r) for r in doc.get("completedRequestIds") or ()),
        )


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    entry: SourceEntry

    @property
    def build(self) -> InFlightBuild | None:
        return self.entry.in_flight


@dataclass(frozen=True)
class ReleaseResult:
    """What releasing a source did: ``next_build`` is the pending request now claimed, if any."""

    released: bool
    entry: SourceEntry
    next_build: InFlightBuild | None


def ledger_key(source_key: str) -> str:
    """The store key of a source: a hash, since source keys are URLs or long resource ids."""
    return hashlib.sha256(source_key.encode("utf-8")).hexdigest()


def build_id_for(request_id: str) -> str:
    """The build id of a request: derived, so ``galleryctl submit`` can print it before any
    worker has seen the message, and a redelivery maps to the same build."""
    return "b-" + hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:24]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _same_lease(current: InFlightBuild | None, build: InFlightBuild) -> bool:
    """``current`` is ``build``, still claimed, and still under ``build``'s lease."""
    return (
        current is not None
        and current.build_id == build.build_id
        and current.state is BuildState.CLAIMED
        and current.lease_token == build.lease_token
    )


class SourceLedger:
    """Serialises builds per source. All methods are idempotent under redelivery."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        clock: Callable[[], datetime],
        new_build_id: Callable[[str], str],
        active: DocumentStore | None = None,
        lease_seconds: float = 120.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._new_build_id = new_build_id
        #: How long a starter owns a claimed build without renewing (``claim_recovery_seconds``).
        self._lease_seconds = lease_seconds
        #: Markers of the sources that may be busy, so the tracker never reads idle ones.
        #: A marker is written *before* a source becomes busy and removed *after* it went idle:
        #: a crash leaves at most a stale marker (cleaned up), never a busy source without one.
        self._active = active

    def get(self, source_key: str) -> SourceEntry | None:
        found = self._store.read(ledger_key(source_key))
        return SourceEntry.from_document(found[0]) if found else None

    def get_by_key(self, key: str) -> SourceEntry | None:
        """The entry stored under a :func:`ledger_key` (as shown in build records)."""
        found = self._store.read(key)
        return SourceEntry.from_document(found[0]) if found else None

    def active_entries(self) -> Iterator[SourceEntry]:
        """The sources with a build in flight or requests waiting (what the tracker walks).

        Without an active index this is every entry; with one, idle sources are never read
        (thousands of finished uploads cost nothing per tracker run).
        """
        if self._active is None:
            yield from (entry for entry in self.entries() if entry.busy or entry.pending)
            return
        for key in list(self._active.list_keys()):
            entry = self.get_by_key(key)
            if entry is not None and (entry.busy or entry.pending):
                yield entry
            elif entry is not None:
                self._unmark_if_idle(entry.source_key)

    def _mark_active(self, source_key: str) -> None:
        """Write (or rewrite: a new ETag) the source's marker in the active index."""
        if self._active is None:
            return
        marker = {"sourceKey": source_key}
        cas_update(
            self._active,
            ledger_key(source_key),
            lambda _current: (marker, None),
            what=f"active index of {source_key!r}",
        )

    def _unmark_if_idle(self, source_key: str) -> None:
        """Remove the marker of an idle source, unless a claim rewrote it meanwhile.

        The order makes it safe against a concurrent claim: read the marker's ETag, then the
        entry; delete only that ETag. A claim rewrites the marker after making the source busy,
        so either the delete fails on the ETag, or the claim's rewrite comes after it.
        """
        if self._active is None:
            return
        key = ledger_key(source_key)
        marker = self._active.read(key)
        if marker is None:
            return
        entry = self.get(source_key)
        if entry is not None and (entry.busy or entry.pending):
            return
        try:
            self._active.delete(key, etag=marker[1])
        except StaleWrite:
            return

    def entries(self) -> Iterator[SourceEntry]:
        """Every source entry (the tracker walks these to find builds in flight)."""
        for key in self._store.list_keys():
            found = self._store.read(key)
            if found is not None:
                yield SourceEntry.from_document(found[0])

    def claim(
        self,
        source_key: str,
        request_id: str,
        request: Mapping[str, Any],
        *,
        sources: Sequence[str] = (),
    ) -> ClaimResult:
        """Claim ``source_key`` for ``request_id``, or park the request behind the build in flight.

        A build of several ``sources`` *holds* each (state ``held``, no lease) until
        :meth:`promote` makes its OS source's entry ``claimed``. Redeliveries are recognised by
        request id and change nothing. The build (or parked request) keeps the trace context
        of the caller's current span.
        """
        several = tuple(sources) if len(sources) > 1 else ()
        trace = tracing.current_carrier()

        def change(entry: SourceEntry) -> tuple[SourceEntry, ClaimOutcome]:
            if entry.in_flight is not None and entry.in_flight.request_id == request_id:
                return entry, ClaimOutcome.ADOPTED
            if any(p.request_id == request_id for p in entry.pending):
                return entry, ClaimOutcome.ALREADY_PARKED
            if request_id in entry.completed_request_ids:
                return entry, ClaimOutcome.ALREADY_DONE
            now = _iso(self._clock())
            if entry.in_flight is None:
                build = self._new_build(request_id, dict(request), several, trace)
                return replace(entry, in_flight=build), ClaimOutcome.CLAIMED
            parked = PendingRequest(
                request_id=request_id,
                queued_at=now,
                request=dict(request),
                sources=several,
                trace_context=trace,
            )
            return replace(entry, pending=(*entry.pending, parked)), ClaimOutcome.PARKED

        self._mark_active(source_key)
        entry, outcome = self._update(source_key, change)
        self._mark_active(source_key)
        logger.info(
            "ledger claim",
            extra={"source": source_key, "request_id": request_id, "outcome": outcome.value},
        )
        return ClaimResult(outcome=outcome, entry=entry)

    def _new_build(
        self,
        request_id: str,
        request: dict[str, Any],
        sources: tuple[str, ...],
        trace_context: Mapping[str, str],
    ) -> InFlightBuild:
        """The build that now owns a source: claimed with a lease, or held (several sources)."""
        build = InFlightBuild(
            build_id=self._new_build_id(request_id),
            request_id=request_id,
            state=BuildState.HELD if sources else BuildState.CLAIMED,
            claimed_at=_iso(self._clock()),
            request=request,
            sources=sources,
            trace_context=dict(trace_context),
        )
        return build if sources else self._leased(build)

    def promote(self, source_key: str, build_id: str) -> InFlightBuild | None:
        """Every source of a build is held: make its OS source's entry ``claimed`` with a lease
        for the caller, who starts it. ``None`` when another caller promoted it already."""

        def change(entry: SourceEntry) -> tuple[SourceEntry, InFlightBuild | None]:
            build = entry.in_flight
            if build is None or build.build_id != build_id or build.state is not BuildState.HELD:
                return entry, None
            claimed = self._leased(replace(build, state=BuildState.CLAIMED))
            return replace(entry, in_flight=claimed), claimed

        _, promoted = self._update(source_key, change)
        return promoted

    def _leased(self, build: InFlightBuild) -> InFlightBuild:
        """``build`` with a fresh lease: a new token, valid for ``lease_seconds``."""
        until = self._clock() + timedelta(seconds=self._lease_seconds)
        return replace(build, lease_token=uuid.uuid4().hex, lease_until=_iso(until))

    def take_over(self, source_key: str, build_id: str) -> InFlightBuild | None:
        """Take the start of a claimed build whose lease ran out (its starter crashed or stalls):
        the build with a new lease, or ``None`` when it is not claimed or its lease still runs."""

        def change(entry: SourceEntry) -> tuple[SourceEntry, InFlightBuild | None]:
            build = entry.in_flight
            if build is None or build.build_id != build_id or build.state is not BuildState.CLAIMED:
                return entry, None
            if not build.lease_expired(self._clock(), self._lease_seconds):
                return entry, None
            taken = self._leased(build)
            return replace(entry, in_flight=taken), taken

        _, taken = self._update(source_key, change)
        return taken

    def renew(self, source_key: str, build: InFlightBuild) -> bool:
        """Renew the lease of ``build``'s starter before a step that writes: ``False`` when the
        build no longer owns the source, is no longer claimed, or another starter took it."""

        def change(entry: SourceEntry) -> tuple[SourceEntry, bool]:
            current = entry.in_flight
            if not _same_lease(current, build):
                return entry, False
            return replace(entry, in_flight=self._leased_again(current)), True

        _, renewed = self._update(source_key, change)
        return renewed

    def _leased_again(self, build: InFlightBuild | None) -> InFlightBuild:
        if build is None:
            raise AssertionError("renewing the lease of no build")
        until = self._clock() + timedelta(seconds=self._lease_seconds)
        return replace(build, lease_until=_iso(until))

    def mark_started(self, source_key: str, build: InFlightBuild, version_id: str) -> bool:
        """Record that the image version PUT for ``build`` was accepted (or its version adopted).

        ``False`` when the build no longer owns the source or another starter holds it: that
        starter (or the tracker) carries the build on, and this caller ends quietly.
        """

        def change(entry: SourceEntry) -> tuple[SourceEntry, bool]:
            current = entry.in_flight
            if current is None or current.build_id != build.build_id:
                return entry, False
            if current.state is BuildState.STARTED:
                return entry, current.version_id == version_id
            if not _same_lease(current, build):
                return entry, False
            started = replace(
                current,
                state=BuildState.STARTED,
                version_id=version_id,
                started_at=_iso(self._clock()),
            )
            return replace(entry, in_flight=started), True

        _, marked = self._update(source_key, change)
        return marked

    def owns(self, source_key: str, build_id: str) -> bool:
        """Whether ``build_id`` is still the build in flight on the source (claimed or started)."""
        entry = self.get(source_key)
        return (
            entry is not None
            and entry.in_flight is not None
            and (entry.in_flight.build_id == build_id)
        )

    def release(self, source_key: str, build_id: str) -> ReleaseResult:
        """Free the source after ``build_id`` ended, and claim the next pending request (FIFO).

        Releasing a build that no longer owns the source is a no-op (a repeated timer run).
        """

        def change(entry: SourceEntry) -> tuple[SourceEntry, ReleaseResult]:
            build = entry.in_flight
            if build is None or build.build_id != build_id:
                return entry, ReleaseResult(released=False, entry=entry, next_build=None)
            completed = (*entry.completed_request_ids, build.request_id)[-COMPLETED_HISTORY_LIMIT:]
            next_build: InFlightBuild | None = None
            pending = entry.pending
            if pending:
                head, pending = pending[0], pending[1:]
                next_build = self._new_build(
                    head.request_id, head.request, head.sources, head.trace_context
                )
            new_entry = replace(
                entry, in_flight=next_build, pending=pending, completed_request_ids=completed
            )
            return new_entry, ReleaseResult(released=True, entry=new_entry, next_build=next_build)

        _, result = self._update(source_key, change)
        self._unmark_if_idle(source_key)
        logger.info(
            "ledger release",
            extra={
                "source": source_key,
                "build_id": build_id,
                "released": result.released,
                "next_build_id": result.next_build.build_id if result.next_build else None,
            },
        )
        return result

    def _update(
        self, source_key: str, change: Callable[[SourceEntry], tuple[SourceEntry, _Result]]
    ) -> tuple[SourceEntry, _Result]:
        def mutate(document: dict[str, Any] | None) -> tuple[Change, tuple[SourceEntry, _Result]]:
            current = SourceEntry.from_document(document) if document else SourceEntry(source_key)
            updated, result = change(current)
            if document is not None and updated == current:
                return KEEP, (current, result)
            return updated.to_document(), (updated, result)

        return cas_update(
            self._store,
            ledger_key(source_key),
            mutate,
            what=f"ledger for source {source_key!r}",
            reason="LedgerContention",
        )
