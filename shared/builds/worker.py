"""The build worker: from one build request message to an image version PUT.

:meth:`BuildWorker.handle_message` (the ``image-builds`` queue trigger): validate, claim the
source in the ledger (or park the request behind the build in flight), then start the build
(:class:`~shared.builds.starter.BuildStarter`: ensure the definition, reserve the version, run
the VHD preflight and send the image version PUT *without waiting*).

Every step is idempotent: a redelivered message adopts its build, and a version that exists with
another source is a conflict, never an overwrite. Permanent errors reject the message
(dead-letter with reason and description); transient ones are retried later (a delayed copy of
the message before the claim, the tracker after it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.builds.common import (
    MAX_RETRY_ATTEMPTS,
    BuildJournal,
    MessageOutcome,
    RejectsRelay,
    retry_delay,
)
from shared.builds.ledger import BuildState, ClaimOutcome, InFlightBuild, SourceLedger, build_id_for
from shared.builds.records import BuildPhase
from shared.builds.sources import SourceLocks
from shared.builds.starter import BuildStarter, StartOutcome
from shared.contract.decode import decode_document
from shared.contract.model import BuildRequest
from shared.contract.parse import parse_build_request
from shared.contract.regions import RegionCatalog, with_known_regions
from shared.contract.rules import ValidationContext
from shared.core import metrics, tracing
from shared.core.errors import PermanentError, TransientError, ValidationFailed, describe
from shared.core.messaging import ATTEMPT_PROPERTY, IncomingMessage, MessageSender
from shared.core.settings import Settings

logger = logging.getLogger(__name__)

_MESSAGE_OUTCOMES = {
    StartOutcome.STARTED: MessageOutcome.STARTED,
    StartOutcome.ADOPTED: MessageOutcome.ADOPTED,
    StartOutcome.SUPERSEDED: MessageOutcome.DUPLICATE,
}


class BuildWorker:
    def __init__(
        self,
        *,
        settings: Settings,
        ledger: SourceLedger,
        journal: BuildJournal,
        starter: BuildStarter,
        sender: MessageSender,
        rejects: RejectsRelay,
        clock: Callable[[], datetime],
        regions: RegionCatalog | None = None,
    ) -> None:
        self._settings = settings
        #: Where region names are checked (ARM's list in Azure; the built-in one by default).
        self._regions = regions
        self._ledger = ledger
        self._journal = journal
        self._starter = starter
        self._sender = sender
        self._rejects = rejects
        self._clock = clock
        self._locks = SourceLocks(ledger)

    def handle_message(self, message: IncomingMessage) -> MessageOutcome:
        """Handle one build request message.

        Transient errors never burn the queue's delivery count: before the claim a delayed copy
        is sent; after it, the ledger holds the request and the tracker resumes the build. Only
        a failure to send that copy raises :class:`TransientError` (Service Bus redelivers).
        """
        parsed = self._parse(message)
        if parsed is None:
            return MessageOutcome.REJECTED
        request, stored = parsed
        tracing.annotate(build_id=build_id_for(request.request_id), **request.log_fields())
        try:
            claim = self._locks.acquire(
                request.source_key, request.source_keys, request.request_id, stored
            )
        except TransientError as error:
            return self._retry_later(message, error)
        fields = {**request.log_fields(), "outcome": claim.outcome.value}
        logger.info("build request received", extra=fields)
        if claim.outcome in (ClaimOutcome.ALREADY_PARKED, ClaimOutcome.ALREADY_DONE):
            return MessageOutcome.DUPLICATE
        if claim.outcome is ClaimOutcome.PARKED:
            return self._park(request)
        build = claim.build
        if build is None:  # CLAIMED and ADOPTED always carry the build
            raise AssertionError("claim without a build in flight")
        if claim.outcome is ClaimOutcome.ADOPTED:
            if build.state is BuildState.STARTED:
                return MessageOutcome.ADOPTED
            # A redelivery of a claimed build: start it only if its starter's lease ran out
            # (that starter crashed or stalls); otherwise the starter carries it on.
            taken = self._take_over(request, build)
            if taken is None:
                return MessageOutcome.DUPLICATE
            build = taken
        return self._start(message, build, request)

    def _take_over(self, request: BuildRequest, build: InFlightBuild) -> InFlightBuild | None:
        try:
            return self._ledger.take_over(request.source_key, build.build_id)
        except TransientError:
            return None  # the ledger is busy: the tracker recovers the claim if it is stale

    def _parse(self, message: IncomingMessage) -> tuple[BuildRequest, dict[str, Any]] | None:
        """The request and the document the ledger stores for it; ``None`` once rejected."""
        try:  # any bytes: a document, or a reason (InvalidJson: not UTF-8, not JSON, too deep...)
            document = decode_document(message.body)
            context = with_known_regions(ValidationContext(), document, self._regions)
            request = parse_build_request(
                document, self._settings, now=self._clock(), context=context
            )
        except ValidationFailed as error:
            self._reject(message, error.reason, describe(error), rule=metrics.rejection_rule(error))
            return None
        stored = dict(document)
        stored["requestId"] = request.request_id
        return request, stored

    def _park(self, request: BuildRequest) -> MessageOutcome:
        """The source is busy: the request waits in the ledger; record it as queued."""
        build_id = build_id_for(request.request_id)
        try:
            self._journal.transition(build_id, request, BuildPhase.QUEUED)
        except TransientError as error:
            return self._deferred(build_id, request, error)
        return MessageOutcome.PARKED

    def _start(
        self, message: IncomingMessage, build: InFlightBuild, request: BuildRequest
    ) -> MessageOutcome:
        """Start the claimed build; a permanent failure ends it and rejects the message."""
        try:
            self._journal.transition(build.build_id, request, BuildPhase.QUEUED)
            outcome = self._starter.start(build, request)
        except PermanentError as error:
            self._starter.fail(build, request, error)
            self._reject(message, error.reason, describe(error), rule=metrics.rejection_rule(error))
            return MessageOutcome.FAILED
        except TransientError as error:
            return self._deferred(build.build_id, request, error)
        return _MESSAGE_OUTCOMES[outcome]

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

    def _reject(
        self, message: IncomingMessage, reason: str, description: str, *, rule: str | None = None
    ) -> None:
        logger.warning(
            "build request rejected",
            extra={"message_id": message.message_id, "reason": reason, "description": description},
        )
        self._rejects.reject(message.as_outgoing(), reason=reason, description=description)
        metrics.request_rejected(rule or reason, stage="worker")
