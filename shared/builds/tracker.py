"""The build tracker: follows every build in flight until its image version is replicated.

:meth:`BuildTracker.follow_up` (the tracker timer): GET each build in flight with its
replication status; finish it when every region completed or when it failed, release the source
and start the next pending request (:meth:`~shared.builds.starter.BuildStarter.end`); recover
claims left behind by a crash; dead-letter what a crash left in the rejects relay.

A repeated run changes nothing: a record only moves forward, and an unchanged replication status
is not written (nor published) again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime

from shared.builds.common import BuildJournal, RejectsRelay, TrackerReport, definition_of
from shared.builds.gallery import GalleryPort, VersionRef, VersionStatus
from shared.builds.ledger import (
    BuildState,
    ClaimOutcome,
    InFlightBuild,
    SourceEntry,
    SourceLedger,
)
from shared.builds.records import BuildPhase, RegionProgress
from shared.builds.sources import SourceLocks
from shared.builds.starter import BuildStarter
from shared.builds.version_body import TAG_BUILD_ID
from shared.contract.model import BuildRequest
from shared.contract.parse import parse_build_request
from shared.contract.rules import STORED_REQUEST, normalise_region
from shared.core import metrics, tracing
from shared.core.errors import PermanentError, TransientError, ValidationFailed
from shared.core.settings import Settings

logger = logging.getLogger(__name__)

#: Builds the tracker follows at once (threads; every call is I/O).
TRACKER_PARALLELISM = 8


def _regions(status: VersionStatus) -> tuple[RegionProgress, ...]:
    return tuple(
        RegionProgress(region=r.region, state=r.state, progress=r.progress, details=r.details)
        for r in status.regions
    )


def _completed(status: VersionStatus, request: BuildRequest) -> bool:
    """Usable where it was asked for: Succeeded, and the regions reported are exactly the
    requested regions, each Completed (an empty or partial summary is not completion)."""
    if status.provisioning_state != "Succeeded":
        return False
    reported = {normalise_region(r.region): r.state for r in status.regions}
    requested = {region.name for region in request.publishing.target_regions}
    return set(reported) == requested and all(s == "Completed" for s in reported.values())


class BuildTracker:
    def __init__(
        self,
        *,
        settings: Settings,
        gallery: GalleryPort,
        ledger: SourceLedger,
        journal: BuildJournal,
        starter: BuildStarter,
        rejects: RejectsRelay,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._gallery = gallery
        self._ledger = ledger
        self._journal = journal
        self._starter = starter
        self._rejects = rejects
        self._clock = clock
        self._locks = SourceLocks(ledger)
        self._started_settings = replace(
            settings, allowed_target_galleries=("*/*/*",), allowed_source_subscriptions=("*",)
        )

    def follow_up(self) -> TrackerReport:
        """One tracker run over every source with a build in flight.

        Sources are independent (each has its own ledger entry, and version reservations are
        compare-and-swap), so up to :data:`TRACKER_PARALLELISM` builds are followed at once:
        a run over hundreds of builds takes a few round trips, not hundreds.
        """
        report = TrackerReport()
        entries = list(self._ledger.active_entries())
        run = tracing.current_carrier()  # each follow-up joins its build's trace, linked to this
        with ThreadPoolExecutor(
            max_workers=TRACKER_PARALLELISM, thread_name_prefix="tracker"
        ) as pool:
            parts = list(pool.map(lambda entry: self._follow_entry(entry, run), entries))
        metrics.sources_pending({entry.source_key: len(entry.pending) for entry in entries})
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

    def _follow_entry(self, entry: SourceEntry, run: tracing.TraceCarrier) -> TrackerReport:
        report = TrackerReport()
        build = entry.in_flight
        if build is None:
            return report
        report.checked = 1
        fields = {
            "build_id": build.build_id,
            "request_id": build.request_id,
            "source": entry.source_key,
            "version": build.version_id,
        }
        try:
            with tracing.operation(  # in the build's own trace (kept since its claim)
                "build_tracker follow",
                parent=build.trace_context or run,
                links=(run,) if build.trace_context else (),
                fields=fields,
            ):
                self._follow(entry.source_key, build, report)
        except TransientError as error:
            report.errors.append(f"{build.build_id}: {error.message}")
            logger.warning(
                "tracker could not follow a build; next run retries",
                extra={"build_id": build.build_id, "source": entry.source_key},
            )
        except Exception as error:  # a bug or a surprise: this build only, never the whole run
            report.errors.append(f"{build.build_id}: {error!r}")
            logger.exception(
                "tracker failed on a build; the other builds go on",
                extra={"build_id": build.build_id, "source": entry.source_key},
            )
        return report

    def _follow(self, source_key: str, build: InFlightBuild, report: TrackerReport) -> None:
        if build.state is BuildState.CLAIMED:
            self._recover_if_stale(source_key, build, report)
            return
        if build.state is BuildState.HELD:
            self._recover_held(source_key, build, report)
            return
        request = self._request_as_claimed(source_key, build, report)
        if request is None:
            return
        try:
            self._follow_started(build, request, report)
        except PermanentError as error:
            # The definition was deleted, the permission lost...: this build fails with the
            # reason, its source moves on to the next request, and the run goes on.
            self._starter.fail(build, request, error)
            report.failed.append(build.build_id)

    def _follow_started(
        self, build: InFlightBuild, request: BuildRequest, report: TrackerReport
    ) -> None:
        if build.version_id is None:
            raise AssertionError("a started build always has its version")
        ref = definition_of(request).version(build.version_id)
        status = self._gallery.get_version(ref)
        if status is None:
            self._starter.fail(
                build,
                request,
                PermanentError(
                    f"image version {ref} no longer exists (deleted while it was replicating)",
                    reason="VersionDisappeared",
                ),
            )
            report.failed.append(build.build_id)
            return
        self._apply_status(build, request, ref, status, report)

    def _recover_if_stale(
        self, source_key: str, build: InFlightBuild, report: TrackerReport
    ) -> None:
        """A claim never started (a crash, a transient error, a stalled starter): take it over
        once its starter's lease (``claim_recovery_seconds``, renewed at every step) ran out."""
        taken = self._ledger.take_over(source_key, build.build_id)
        if taken is None:
            return  # its starter's lease still runs: it may be slow, not gone
        logger.warning(
            "recovering a claim whose starter's lease ran out",
            extra={"build_id": build.build_id, "source": source_key},
        )
        report.recovered.append(build.build_id)
        self._starter.start_pending(source_key, taken)

    def _recover_held(self, source_key: str, build: InFlightBuild, report: TrackerReport) -> None:
        """A source held by a build of several sources for longer than a lease: take its sources
        again (a starter may have died half-way); free it if that build has already ended."""
        if not build.lease_expired(self._clock(), self._settings.claim_recovery_seconds):
            return
        request = self._request_as_claimed(source_key, build, report)
        if request is None:
            return
        taken = self._locks.acquire(
            request.source_key, request.source_keys, build.request_id, build.request
        )
        if taken.outcome is ClaimOutcome.ALREADY_DONE:  # a crash while it gave its sources back
            for key, next_build in self._locks.release(source_key, (), build.build_id):
                self._starter.start_pending(key, next_build)
            return
        if taken.outcome is ClaimOutcome.CLAIMED and taken.build is not None:
            report.recovered.append(build.build_id)
            self._starter.start_pending(request.source_key, taken.build)

    def _request_as_claimed(
        self, source_key: str, build: InFlightBuild, report: TrackerReport
    ) -> BuildRequest | None:
        """The started build's request; ``None`` (and the build failed) if it no longer parses."""
        try:
            # Judged as of the claim, when it was valid: a build replicating past its request's
            # end-of-life date (or past any other time-bound rule) is not failed for that, nor
            # for an allow-list changed since (it was allowed when it started).
            return parse_build_request(
                build.request,
                self._started_settings,
                now=datetime.fromisoformat(build.claimed_at),
                context=STORED_REQUEST,  # its regions were checked against Azure's list
            )
        except ValidationFailed as error:
            self._starter.fail_unparsable(source_key, build, error)
            report.failed.append(build.build_id)
            return None

    def _apply_status(
        self,
        build: InFlightBuild,
        request: BuildRequest,
        ref: VersionRef,
        status: VersionStatus,
        report: TrackerReport,
    ) -> None:
        """Succeed, fail or record the progress of a build from its version's status."""
        regions = _regions(status)
        version = ref.name  # carried on every transition: a record heals from the ledger
        if _completed(status, request):
            self._journal.transition(
                build.build_id, request, BuildPhase.SUCCEEDED, regions=regions, version=version
            )
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
        record = self._journal.get(build.build_id)
        if record is None or record.regions != regions or record.version != version:
            self._journal.transition(
                build.build_id, request, BuildPhase.REPLICATING, regions=regions, version=version
            )

    def _end_and_report(
        self, build: InFlightBuild, request: BuildRequest, report: TrackerReport
    ) -> None:
        report.started.extend(self._starter.end(build, request))

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
        ours = status.tags.get(TAG_BUILD_ID) == build.build_id
        if self._settings.failed_version_policy == "delete" and not ours:
            message += "; the failed version was not created by this build, so it is kept"
        elif self._settings.failed_version_policy == "delete":
            try:
                self._gallery.start_delete_version(ref)
                message += "; the failed version is being deleted"
            except PermanentError as error:
                message += f"; deleting the failed version was refused: {error.message}"
        self._journal.transition(
            build.build_id,
            request,
            BuildPhase.FAILED,
            regions=_regions(status),
            version=ref.name,
            error_reason="ReplicationFailed",
            error=message,
        )
