"""The build service: from a build request message to a replicated image version.

Two entry points, each called by one thin handler:

* :meth:`BuildService.handle_message` (the ``image-builds`` queue trigger): validate, claim the
  source in the ledger (or park the request behind the build in flight), ensure the definition,
  reserve the version, run the VHD preflight and send the image version PUT *without waiting*.
* :meth:`BuildService.follow_up` (the tracker timer): GET each build in flight with its
  replication status; finish it when every region completed or when it failed, release the
  source and start the next pending request; recover claims left behind by a crash.

Every step is idempotent: a redelivered message adopts its build, a repeated tracker run changes
nothing, and a version that exists with another source is a conflict, never an overwrite.
Permanent errors reject the message (dead-letter with reason and description); transient ones
propagate so the trigger retries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.builds.events import build_event
from shared.builds.gallery import DefinitionRef, GalleryPort, VersionRef, VersionStatus
from shared.builds.ledger import (
    BuildState,
    ClaimOutcome,
    InFlightBuild,
    SourceEntry,
    SourceLedger,
    build_id_for,
)
from shared.builds.records import BuildPhase, BuildRecord, BuildRecords, RegionProgress
from shared.builds.reservations import VersionReservations
from shared.builds.version_body import TAG_BUILD_ID, image_version_body, same_source
from shared.contract.request import BuildRequest, VhdSource, parse_build_request
from shared.contract.versioning import (
    ExplicitVersion,
    ImageVersion,
    InvalidVersion,
    allocate_version,
)
from shared.core.cloudevents import event_message
from shared.core.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PipelineError,
    Problem,
    TransientError,
    ValidationFailed,
    describe,
)
from shared.core.messaging import (
    ATTEMPT_PROPERTY,
    IncomingMessage,
    MessageSender,
    RejectedMessageSink,
)
from shared.core.settings import Settings
from shared.vhd.preflight import VhdReport

logger = logging.getLogger(__name__)


class RejectsRelay(RejectedMessageSink, Protocol):
    """The rejects sink, plus dead-lettering whatever a crash left in the relay queue."""

    def drain_rejects(self) -> int: ...


class VhdInspector(Protocol):
    """The VHD preflight as a port: footer checks through a range read (never a download)."""

    def inspect(self, source: VhdSource) -> VhdReport: ...


#: Builds the tracker follows at once (threads; every call is I/O).
TRACKER_PARALLELISM = 8
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


def _regions(status: VersionStatus) -> tuple[RegionProgress, ...]:
    return tuple(
        RegionProgress(region=r.region, state=r.state, progress=r.progress, details=r.details)
        for r in status.regions
    )


class BuildService:
    def __init__(
        self,
        *,
        settings: Settings,
        gallery: GalleryPort,
        ledger: SourceLedger,
        records: BuildRecords,
        reservations: VersionReservations,
        sender: MessageSender,
        rejects: RejectsRelay,
        vhd_inspector: VhdInspector,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._gallery = gallery
        self._ledger = ledger
        self._records = records
        self._reservations = reservations
        self._sender = sender
        self._rejects = rejects
        self._vhd = vhd_inspector
        self._clock = clock

    # ------------------------------------------------------------------ the queue trigger

    def handle_message(self, message: IncomingMessage) -> MessageOutcome:
        """Handle one build request message.

        Transient errors never burn the queue's delivery count: before the claim a delayed copy
        is sent; after it, the ledger holds the request and the tracker resumes the build. Only
        a failure to send that copy raises :class:`TransientError` (Service Bus redelivers).
        """
        try:
            document = json.loads(message.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            self._reject(message, "InvalidJson", f"the message body is not JSON: {error}")
            return MessageOutcome.REJECTED
        try:
            request = parse_build_request(document, self._settings, now=self._clock())
        except ValidationFailed as error:
            self._reject(message, error.reason, describe(error))
            return MessageOutcome.REJECTED
        stored = dict(document)
        stored["requestId"] = request.request_id
        try:
            claim = self._ledger.claim(request.source_key, request.request_id, stored)
        except TransientError as error:
            return self._retry_later(message, error)
        fields = {**request.log_fields(), "outcome": claim.outcome.value}
        logger.info("build request received", extra=fields)
        if claim.outcome in (ClaimOutcome.ALREADY_PARKED, ClaimOutcome.ALREADY_DONE):
            return MessageOutcome.DUPLICATE
        if claim.outcome is ClaimOutcome.PARKED:
            build_id = build_id_for(request.request_id)
            try:
                self._transition(build_id, request, BuildPhase.QUEUED)
            except TransientError as error:
                return self._deferred(build_id, request, error)
            return MessageOutcome.PARKED
        build = claim.build
        if build is None:  # CLAIMED and ADOPTED always carry the build
            raise AssertionError("claim without a build in flight")
        if claim.outcome is ClaimOutcome.ADOPTED and build.state is BuildState.STARTED:
            return MessageOutcome.ADOPTED
        try:
            self._transition(build.build_id, request, BuildPhase.QUEUED)
            self._start(build, request)
        except PermanentError as error:
            self._fail(build, request, error)
            self._reject(message, error.reason, describe(error))
            return MessageOutcome.FAILED
        except TransientError as error:
            return self._deferred(build.build_id, request, error)
        return MessageOutcome.STARTED

    def _deferred(
        self, build_id: str, request: BuildRequest, error: TransientError
    ) -> MessageOutcome:
        """The request is safe in the ledger: complete the message and let the tracker resume
        the build (it recovers claims older than ``claim_recovery_seconds``), instead of
        burning the queue's max delivery count on a throttled or busy Azure."""
        logger.warning(
            "build deferred to the tracker after a transient error",
            extra={**request.log_fields(), "build_id": build_id, "reason": error.reason},
        )
        return MessageOutcome.DEFERRED

    def _retry_later(self, message: IncomingMessage, error: TransientError) -> MessageOutcome:
        """Before the claim nothing holds the request but the message: send a delayed copy
        (exponential backoff, at least Retry-After) and complete this one."""
        attempt = message.attempt + 1
        if attempt > MAX_RETRY_ATTEMPTS:
            self._reject(
                message,
                "RetriesExhausted",
                f"still failing after {MAX_RETRY_ATTEMPTS} delayed retries: {error.message}",
            )
            return MessageOutcome.REJECTED
        delay = retry_delay(attempt, error.retry_after_seconds)
        original_id = (message.message_id or "").split("~retry", 1)[0]
        retry = replace(
            message.as_outgoing(),
            message_id=f"{original_id}~retry{attempt}",
            application_properties={ATTEMPT_PROPERTY: attempt},
            scheduled_at=self._clock() + timedelta(seconds=delay),
        )
        self._sender.send(self._settings.build_queue, retry)  # a failure here: redelivery
        logger.warning(
            "build request will be retried later",
            extra={
                "message_id": message.message_id,
                "attempt": attempt,
                "delay_seconds": delay,
                "reason": error.reason,
            },
        )
        return MessageOutcome.RETRY_SCHEDULED

    def _reject(self, message: IncomingMessage, reason: str, description: str) -> None:
        logger.warning(
            "build request rejected",
            extra={"message_id": message.message_id, "reason": reason, "description": description},
        )
        self._rejects.reject(message.as_outgoing(), reason=reason, description=description)

    # ------------------------------------------------------------------ starting a build

    def _start(self, build: InFlightBuild, request: BuildRequest) -> None:
        """Ensure the definition, reserve the version, preflight, PUT; record it as started."""
        definition = definition_of(request)
        location = self._gallery.gallery_location(definition)
        self._ensure_definition(definition, request, location)
        version = self._reserve_version(definition, build, request)
        ref = definition.version(version)
        existing = self._gallery.get_version(ref)
        if existing is not None:
            self._adopt_or_conflict(build, request, ref, existing)
            return
        self._preflight(request)
        body = image_version_body(request, location=location, build_id=build.build_id)
        self._gallery.start_version(ref, body)
        self._mark_started(build, request, version)
        logger.info(
            "image version PUT accepted",
            extra={**request.log_fields(), "build_id": build.build_id, "version": version},
        )

    def _ensure_definition(
        self, definition: DefinitionRef, request: BuildRequest, location: str
    ) -> None:
        if self._gallery.definition_exists(definition):
            return
        if request.definition_spec is None:
            raise NotFoundError(
                f"target.definition: image definition {definition} does not exist and the "
                "request has no definitionSpec to create it (add definitionSpec, or create the "
                "definition first)",
                reason="DefinitionNotFound",
            )
        self._gallery.create_definition(definition, request.definition_spec, location=location)
        logger.info("image definition created", extra={"definition": str(definition)})

    def _reserve_version(
        self, definition: DefinitionRef, build: InFlightBuild, request: BuildRequest
    ) -> str:
        policy = request.target.version_policy
        if isinstance(policy, ExplicitVersion):
            return str(policy.version)
        listed = [v.name for v in self._gallery.list_versions(definition)]
        existing: list[ImageVersion] = []
        for name in listed:
            try:
                existing.append(ImageVersion.parse(name))
            except InvalidVersion:
                continue  # a name the policies do not order (cannot collide with ours)
        now = self._clock()

        def allocate(reserved_by_others: Iterable[ImageVersion]) -> ImageVersion:
            return allocate_version(policy, [*existing, *reserved_by_others], now)

        return self._reservations.reserve(definition, build.build_id, allocate)

    def _adopt_or_conflict(
        self, build: InFlightBuild, request: BuildRequest, ref: VersionRef, existing: VersionStatus
    ) -> None:
        ours = existing.tags.get(TAG_BUILD_ID) == build.build_id
        if ours or same_source(existing.storage_profile, request):
            logger.info(
                "adopting the existing image version",
                extra={**request.log_fields(), "build_id": build.build_id, "version": ref.name},
            )
            self._mark_started(build, request, ref.name)
            return
        if not isinstance(request.target.version_policy, ExplicitVersion):
            # Another writer (outside the pipeline) took the version we reserved: choose again.
            self._reservations.release(ref.definition, build.build_id)
            raise TransientError(
                f"image version {ref} appeared from another source; choosing a new version",
                reason="VersionTaken",
            )
        raise ConflictError(
            f"target.version: image version {ref} already exists with a different source; "
            "the pipeline never overwrites a version (choose another version, or a policy)",
            reason="VersionConflict",
        )

    def _preflight(self, request: BuildRequest) -> None:
        sources: list[tuple[str, VhdSource]] = []
        if isinstance(request.source, VhdSource):
            sources.append(("source", request.source))
        for index, disk in enumerate(request.data_disks):
            if isinstance(disk.source, VhdSource):
                sources.append((f"dataDisks[{index}].source", disk.source))
        problems: list[Problem] = []
        for path, source in sources:
            report = self._vhd.inspect(source)
            problems.extend(
                replace(p, path=f"{path}.{p.path}" if p.path else path) for p in report.problems
            )
        if problems:
            raise ValidationFailed(problems, subject="VHD")

    def _mark_started(self, build: InFlightBuild, request: BuildRequest, version: str) -> None:
        self._ledger.mark_started(request.source_key, build.build_id, version)
        self._transition(build.build_id, request, BuildPhase.STARTED, version=version)

    # ------------------------------------------------------------------ ending a build

    def _fail(self, build: InFlightBuild, request: BuildRequest, error: PipelineError) -> None:
        logger.error(
            "build failed",
            extra={**request.log_fields(), "build_id": build.build_id, "reason": error.reason},
        )
        self._transition(
            build.build_id,
            request,
            BuildPhase.FAILED,
            error_reason=error.reason,
            error=error.message,
        )
        self._end(build, request)

    def _end(self, build: InFlightBuild, request: BuildRequest) -> str | None:
        """Release the version reservation and the source; start what waited for it (its id)."""
        self._reservations.release(definition_of(request), build.build_id)
        released = self._ledger.release(request.source_key, build.build_id)
        if released.next_build is None:
            return None
        self._start_pending(request.source_key, released.next_build)
        return released.next_build.build_id

    def _start_pending(self, source_key: str, build: InFlightBuild) -> None:
        """Start a build the ledger handed over (a parked request, or a recovered claim)."""
        try:
            request = parse_build_request(build.request, self._settings, now=self._clock())
        except ValidationFailed as error:
            self._fail_unparsable(source_key, build, error)
            return
        try:
            self._transition(build.build_id, request, BuildPhase.QUEUED)  # no-op if later
            self._start(build, request)
        except PermanentError as error:
            self._fail(build, request, error)
        except TransientError as error:
            # The claim stays; the tracker recovers it after claim_recovery_seconds.
            logger.warning(
                "starting a pending build failed; will retry",
                extra={"build_id": build.build_id, "source": source_key, "reason": error.reason},
            )

    def _fail_unparsable(self, source_key: str, build: InFlightBuild, error: PipelineError) -> None:
        """A parked request that is no longer valid (e.g. its end-of-life date has passed)."""
        target: Mapping[str, Any] = build.request.get("target") or {}
        record = BuildRecord(
            build_id=build.build_id,
            request_id=build.request_id,
            source_key=source_key,
            phase=BuildPhase.FAILED,
            subscription_id=str(target.get("subscriptionId", "")),
            resource_group=str(target.get("resourceGroup", "")),
            gallery=str(target.get("gallery", "")),
            definition=str(target.get("definition", "")),
            created_at=self._clock().isoformat(),
            updated_at=self._clock().isoformat(),
            error_reason=error.reason,
            error=error.message,
        )
        self._records.upsert(
            lambda _now: record,
            build.build_id,
            lambda current: replace(
                current, phase=BuildPhase.FAILED, error_reason=error.reason, error=error.message
            ),
            before_write=self._publish,
        )
        released = self._ledger.release(source_key, build.build_id)
        if released.next_build is not None:
            self._start_pending(source_key, released.next_build)

    # ------------------------------------------------------------------ records and events

    def _transition(
        self, build_id: str, request: BuildRequest, phase: BuildPhase, **changes: Any
    ) -> BuildRecord:
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

        return self._records.upsert(initial, build_id, change, before_write=self._publish)

    def _publish(self, record: BuildRecord) -> None:
        event = build_event(record, time=self._clock())
        self._sender.send(self._settings.events_topic, event_message(event))

    # ------------------------------------------------------------------ the tracker timer

    def follow_up(self) -> TrackerReport:
        """One tracker run over every source with a build in flight.

        Sources are independent (each has its own ledger entry, and version reservations are
        compare-and-swap), so up to :data:`TRACKER_PARALLELISM` builds are followed at once:
        a run over hundreds of builds takes a few round trips, not hundreds.
        """
        report = TrackerReport()
        with ThreadPoolExecutor(
            max_workers=TRACKER_PARALLELISM, thread_name_prefix="tracker"
        ) as pool:
            parts = list(pool.map(self._follow_entry, self._ledger.active_entries()))
        for part in parts:
            report.merge(part)
        try:
            report.rejects_drained = self._rejects.drain_rejects()
        except TransientError as error:
            report.errors.append(f"draining the rejects relay: {error.message}")
        logger.info(
            "tracker run",
            extra={
                "checked": report.checked,
                "succeeded": len(report.succeeded),
                "failed": len(report.failed),
                "recovered": len(report.recovered),
                "errors": len(report.errors),
            },
        )
        return report

    def _follow_entry(self, entry: SourceEntry) -> TrackerReport:
        report = TrackerReport()
        build = entry.in_flight
        if build is None:
            return report
        report.checked = 1
        try:
            self._follow(entry.source_key, build, report)
        except TransientError as error:
            report.errors.append(f"{build.build_id}: {error.message}")
            logger.warning(
                "tracker could not follow a build; next run retries",
                extra={"build_id": build.build_id, "source": entry.source_key},
            )
        return report

    def _follow(self, source_key: str, build: InFlightBuild, report: TrackerReport) -> None:
        if build.state is BuildState.CLAIMED:
            claimed_at = datetime.fromisoformat(build.claimed_at)
            age = self._clock() - claimed_at
            if age >= timedelta(seconds=self._settings.claim_recovery_seconds):
                logger.warning(
                    "recovering a claim that was never started",
                    extra={"build_id": build.build_id, "source": source_key},
                )
                report.recovered.append(build.build_id)
                self._start_pending(source_key, build)
            return
        try:
            # Judged as of the claim, when it was valid: a build replicating past its request's
            # end-of-life date (or past any other time-bound rule) is not failed for that.
            request = parse_build_request(
                build.request, self._settings, now=datetime.fromisoformat(build.claimed_at)
            )
        except ValidationFailed as error:
            self._fail_unparsable(source_key, build, error)
            report.failed.append(build.build_id)
            return
        if build.version_id is None:
            raise AssertionError("a started build always has its version")
        ref = definition_of(request).version(build.version_id)
        status = self._gallery.get_version(ref)
        if status is None:
            self._fail(
                build,
                request,
                PermanentError(
                    f"image version {ref} no longer exists (deleted while it was replicating)",
                    reason="VersionDisappeared",
                ),
            )
            report.failed.append(build.build_id)
            return
        regions = _regions(status)
        if status.completed:
            self._transition(build.build_id, request, BuildPhase.SUCCEEDED, regions=regions)
            report.succeeded.append(build.build_id)
            logger.info(
                "build succeeded",
                extra={**request.log_fields(), "build_id": build.build_id, "version": ref.name},
            )
            self._end_and_report(build, request, report)
            return
        if status.failed:
            self._replication_failed(build, request, ref, status)
            report.failed.append(build.build_id)
            self._end_and_report(build, request, report)
            return
        record = self._records.get(build.build_id)
        if record is None or record.regions != regions:
            self._transition(build.build_id, request, BuildPhase.REPLICATING, regions=regions)

    def _end_and_report(
        self, build: InFlightBuild, request: BuildRequest, report: TrackerReport
    ) -> None:
        next_build_id = self._end(build, request)
        if next_build_id is not None:
            report.started.append(next_build_id)

    def _replication_failed(
        self, build: InFlightBuild, request: BuildRequest, ref: VersionRef, status: VersionStatus
    ) -> None:
        failed_regions = [r for r in status.regions if r.state == "Failed"]
        details = "; ".join(f"{r.region}: {r.details or 'failed'}" for r in failed_regions)
        message = (
            f"image version {ref} failed ({status.provisioning_state})"
            + (f": {details}" if details else "")
            + (f": {status.error}" if status.error else "")
        )
        if self._settings.failed_version_policy == "delete":
            try:
                self._gallery.start_delete_version(ref)
                message += "; the failed version is being deleted"
            except PermanentError as error:
                message += f"; deleting the failed version was refused: {error.message}"
        self._transition(
            build.build_id,
            request,
            BuildPhase.FAILED,
            regions=_regions(status),
            error_reason="ReplicationFailed",
            error=message,
        )
