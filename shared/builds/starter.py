"""Starting a build, and ending one: the steps the worker and the tracker both run.

:meth:`BuildStarter.start` ensures the definition, reserves the version, runs the VHD preflight
and sends the image version PUT *without waiting* (or adopts a version the build already made).
:meth:`BuildStarter.end` releases the version reservation and the source, and starts the request
that waited for it. The worker starts the build it claimed and ends it when it fails; the tracker
ends the builds that finished and starts the ones it recovered or that were handed over, so both
need both halves (which call each other: a hand-over starts a build, a failed start ends it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.builds.common import BuildJournal, VhdInspector, definition_of
from shared.builds.gallery import DefinitionRef, GalleryPort, VersionRef, VersionStatus
from shared.builds.ledger import BuildState, ClaimOutcome, InFlightBuild, SourceLedger
from shared.builds.records import BuildPhase, BuildRecord
from shared.builds.reservations import VersionReservations
from shared.builds.sources import SourceLocks
from shared.builds.version_body import (
    TAG_BUILD_ID,
    TAG_REQUEST_ID,
    image_version_body,
    same_source,
)
from shared.contract.model import BuildRequest, VhdSource
from shared.contract.parse import parse_build_request
from shared.contract.rules import STORED_REQUEST, Rule, normalise_region
from shared.contract.versioning import (
    ExplicitVersion,
    ImageVersion,
    InvalidVersion,
    allocate_version,
)
from shared.core import tracing
from shared.core.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PipelineError,
    Problem,
    TransientError,
    ValidationFailed,
)
from shared.core.settings import Settings

logger = logging.getLogger(__name__)


class StartOutcome(StrEnum):
    STARTED = "started"  # the PUT was sent and recorded
    ADOPTED = "adopted"  # a version this build made (or the same source made) is followed
    SUPERSEDED = "superseded"  # another starter owns the build now: this one stopped quietly


def _made_by(listed: Iterable[VersionStatus], build: InFlightBuild) -> VersionStatus | None:
    """The version the build (or its request, from an earlier life of the ledger) made.

    The version's own tags are the durable answer to "was this request built already?": the
    ledger remembers only recent request ids, a version keeps its tags as long as it exists.
    """
    for version in listed:
        tags = version.tags
        if tags.get(TAG_BUILD_ID) == build.build_id or tags.get(TAG_REQUEST_ID) == build.request_id:
            return version
    return None


def _check_gallery_region(request: BuildRequest, location: str) -> None:
    """Azure refuses a version whose target regions leave out its gallery's region (it is the
    version's own region): a permanent error with the fix, before anything is written."""
    region = normalise_region(location)
    if region in {target.name for target in request.publishing.target_regions}:
        return
    gallery = request.target.gallery
    raise ValidationFailed(
        [
            Problem(
                path="publishing.targetRegions",
                rule=Rule.GALLERY_REGION_IN_TARGETS,
                message=f"gallery '{gallery}' is in '{region}', which is not a target region",
                hint=f'add {{"name": "{region}"}} to publishing.targetRegions: a version is '
                "published in its gallery's region first",
            )
        ]
    )


class BuildStarter:
    def __init__(
        self,
        *,
        settings: Settings,
        gallery: GalleryPort,
        ledger: SourceLedger,
        reservations: VersionReservations,
        journal: BuildJournal,
        vhd_inspector: VhdInspector,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._gallery = gallery
        self._ledger = ledger
        self._reservations = reservations
        self._journal = journal
        self._vhd = vhd_inspector
        self._clock = clock
        self._locks = SourceLocks(ledger)

    # ------------------------------------------------------------------ starting a build

    def start(self, build: InFlightBuild, request: BuildRequest) -> StartOutcome:
        """Ensure the definition, reserve the version, preflight, PUT; record it as started.

        A version this build (or this request) already made is adopted, never published again.
        The starter re-checks its lease in the ledger before reserving and before the PUT: a
        starter that stalled while another took the build over stops there, quietly.
        """
        definition = definition_of(request)
        location = self._gallery.gallery_location(definition)
        _check_gallery_region(request, location)
        self._ensure_definition(definition, request, location)
        listed = list(self._gallery.list_versions(definition))
        made = _made_by(listed, build)
        if made is not None:
            return self._adopt(build, request, made.name, why="it is tagged with this build")
        if not self._ledger.renew(request.source_key, build):
            return self._superseded(build, request, "before reserving a version")
        version = self._reserve_version(definition, build, request, listed)
        tracing.annotate(version=version)  # the build's version on the rest of its log lines
        ref = definition.version(version)
        existing = self._gallery.get_version(ref)
        if existing is not None:
            return self._adopt_or_conflict(build, request, ref, existing)
        self._preflight(request)
        body = image_version_body(request, location=location, build_id=build.build_id)
        if not self._ledger.renew(request.source_key, build):
            return self._superseded(build, request, "before the PUT")
        self._gallery.start_version(ref, body)
        outcome = self._mark_started(build, request, version)
        if outcome is StartOutcome.STARTED:
            logger.info(
                "image version PUT accepted",
                extra={**request.log_fields(), "build_id": build.build_id, "version": version},
            )
        return outcome

    def _superseded(self, build: InFlightBuild, request: BuildRequest, when: str) -> StartOutcome:
        """Another starter owns the build now (or it ended): stop without writing anything.

        If the build has ended meanwhile, a reservation this starter wrote late is released.
        """
        logger.info(
            "build start superseded %s; another starter carries it",
            when,
            extra={**request.log_fields(), "build_id": build.build_id},
        )
        if not self._ledger.owns(request.source_key, build.build_id):
            self._reservations.release(definition_of(request), build.build_id)
        return StartOutcome.SUPERSEDED

    def _adopt(
        self, build: InFlightBuild, request: BuildRequest, version: str, *, why: str
    ) -> StartOutcome:
        logger.info(
            "adopting the existing image version: %s",
            why,
            extra={**request.log_fields(), "build_id": build.build_id, "version": version},
        )
        outcome = self._mark_started(build, request, version)
        return StartOutcome.ADOPTED if outcome is StartOutcome.STARTED else outcome

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
        self,
        definition: DefinitionRef,
        build: InFlightBuild,
        request: BuildRequest,
        listed: Iterable[VersionStatus],
    ) -> str:
        """The build's version, reserved against every other build in flight on the definition.

        Explicit versions are reserved too, so two builds never send a PUT for one version (the
        gallery API has no ``If-None-Match`` on image versions, so the reservation is the lock).
        """
        policy = request.target.version_policy
        if isinstance(policy, ExplicitVersion):
            wanted = policy.version

            def explicit(reserved_by_others: Iterable[ImageVersion]) -> ImageVersion:
                if wanted in set(reserved_by_others):
                    raise TransientError(
                        f"image version {definition}/{wanted} is reserved by another build in "
                        "flight; this build waits for it to end",
                        reason="VersionReserved",
                    )
                return wanted

            return self._reservations.reserve(definition, build.build_id, explicit)
        existing: list[ImageVersion] = []
        for listed_version in listed:
            try:
                existing.append(ImageVersion.parse(listed_version.name))
            except InvalidVersion:
                continue  # a name the policies do not order (cannot collide with ours)
        now = self._clock()

        def allocate(reserved_by_others: Iterable[ImageVersion]) -> ImageVersion:
            return allocate_version(policy, [*existing, *reserved_by_others], now)

        return self._reservations.reserve(definition, build.build_id, allocate)

    def _adopt_or_conflict(
        self, build: InFlightBuild, request: BuildRequest, ref: VersionRef, existing: VersionStatus
    ) -> StartOutcome:
        if existing.tags.get(TAG_BUILD_ID) == build.build_id:
            return self._adopt(build, request, ref.name, why="it is tagged with this build")
        if same_source(existing.storage_profile, request):
            # Made outside the pipeline from the same source: followed for status, but never
            # deleted by the failed-version policy (it is not tagged with this build).
            return self._adopt(build, request, ref.name, why="it has the same source")
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

    def _mark_started(
        self, build: InFlightBuild, request: BuildRequest, version: str
    ) -> StartOutcome:
        if not self._ledger.mark_started(request.source_key, build, version):
            return self._superseded(build, request, "after the PUT")
        self._journal.transition(build.build_id, request, BuildPhase.STARTED, version=version)
        return StartOutcome.STARTED

    # ------------------------------------------------------------------ ending a build

    def fail(self, build: InFlightBuild, request: BuildRequest, error: PipelineError) -> None:
        """Record the build as failed, then :meth:`end` it."""
        logger.error(
            "build failed",
            extra={**request.log_fields(), "build_id": build.build_id, "reason": error.reason},
        )
        known = {"version": build.version_id} if build.version_id else {}
        self._journal.transition(
            build.build_id,
            request,
            BuildPhase.FAILED,
            error_reason=error.reason,
            error=error.message,
            **known,
        )
        self.end(build, request)

    def end(self, build: InFlightBuild, request: BuildRequest) -> list[str]:
        """Release the version reservation and every source; start what waited for them (ids)."""
        self._reservations.release(definition_of(request), build.build_id)
        handed_over = self._locks.release(request.source_key, request.source_keys, build.build_id)
        for source_key, next_build in handed_over:
            self.start_pending(source_key, next_build)
        return [next_build.build_id for _, next_build in handed_over]

    def start_pending(self, source_key: str, build: InFlightBuild) -> None:
        """Start a build the ledger handed over (a parked request, or a recovered claim).

        A build of several sources that was handed one of them takes the others first; it
        starts only once it holds them all (else it waits in the next busy source's FIFO).
        It runs in the build's own trace (kept since its claim), linked to the caller's.
        """
        with tracing.operation(
            "start pending build",
            parent=build.trace_context,
            fields={
                "build_id": build.build_id,
                "request_id": build.request_id,
                "source": source_key,
            },
        ):
            self._start_pending(source_key, build)

    def _start_pending(self, source_key: str, build: InFlightBuild) -> None:
        try:
            request = parse_build_request(
                build.request, self._settings, now=self._clock(), context=STORED_REQUEST
            )  # a parked request: its regions were checked against Azure's list when it came
        except ValidationFailed as error:
            self.fail_unparsable(source_key, build, error)
            return
        if build.state is BuildState.HELD:
            taken = self.take_sources(request, build)
            if taken is None:
                return
            build = taken
        try:
            self._journal.transition(build.build_id, request, BuildPhase.QUEUED)  # no-op if later
            self.start(build, request)
        except PermanentError as error:
            self.fail(build, request, error)
        except TransientError as error:
            # The claim stays; the tracker recovers it after claim_recovery_seconds.
            logger.warning(
                "starting a pending build failed; will retry",
                extra={"build_id": build.build_id, "source": source_key, "reason": error.reason},
            )

    def take_sources(self, request: BuildRequest, build: InFlightBuild) -> InFlightBuild | None:
        """Take every source of a held build: the build, claimed for this caller, once it holds
        them all; ``None`` while one is busy or when another caller starts it."""
        try:
            taken = self._locks.acquire(
                request.source_key, request.source_keys, build.request_id, build.request
            )
        except TransientError as error:
            logger.warning(
                "taking the sources of a build failed; the tracker retries",
                extra={"build_id": build.build_id, "reason": error.reason},
            )
            return None
        return taken.build if taken.outcome is ClaimOutcome.CLAIMED else None

    def fail_unparsable(self, source_key: str, build: InFlightBuild, error: PipelineError) -> None:
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
        self._journal.upsert(
            lambda _now: record,
            build.build_id,
            lambda current: replace(
                current, phase=BuildPhase.FAILED, error_reason=error.reason, error=error.message
            ),
        )
        self._reservations.release(
            DefinitionRef(
                record.subscription_id, record.resource_group, record.gallery, record.definition
            ),
            build.build_id,
        )
        for key, next_build in self._locks.release(source_key, build.sources, build.build_id):
            self.start_pending(key, next_build)
