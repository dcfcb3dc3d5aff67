"""How an intake ends: the request is validated and queued, or it is dead-lettered.

Every request is validated with :func:`shared.contract.parse.parse_build_request` before it is
sent; an invalid one is rejected (dead-lettered) with every problem and the field it concerns.
Either way the decision is kept as a *done* record and the *pending* record is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.contract.parse import parse_build_request
from shared.contract.regions import RegionCatalog, with_known_regions
from shared.contract.rules import REQUEST_ID_PATTERN, ValidationContext
from shared.core import metrics
from shared.core.cloudevents import event_message
from shared.core.errors import ValidationFailed
from shared.core.jsontypes import JsonObject
from shared.core.messaging import MessageSender, RejectedMessageSink, build_request_message
from shared.core.settings import Settings
from shared.core.timestamps import format_timestamp
from shared.intake.outcomes import IntakeOutcome, IntakeResult, Rejection
from shared.intake.records import IntakeRecords

logger = logging.getLogger(__name__)

#: A rejection claimed this long ago and not finished was left by a dead instance: redo it.
REJECTION_RETRY_SECONDS = 120.0


class RequestDispatch:
    """Queues valid build requests and dead-letters the rest, keeping the records."""

    def __init__(
        self,
        settings: Settings,
        *,
        records: IntakeRecords,
        sender: MessageSender,
        rejects: RejectedMessageSink,
        clock: Callable[[], datetime],
        regions: RegionCatalog | None = None,
    ) -> None:
        self._settings = settings
        self._regions = regions
        self._records = records
        self._sender = sender
        self._rejects = rejects
        self._clock = clock

    def queue(
        self,
        key: str,
        source: str,
        document: JsonObject,
        context: ValidationContext,
        *,
        derived_id: str,
        done_record: Mapping[str, Any],
        now: datetime,
        by_event: bool,
    ) -> IntakeResult:
        """Validate ``document`` and send it to the build queue (or reject it)."""
        given = document.get("requestId")
        valid_given = isinstance(given, str) and REQUEST_ID_PATTERN.fullmatch(given)
        request_id = str(given) if valid_given else derived_id
        context = with_known_regions(context, document, self._regions)
        try:
            request = parse_build_request(document, self._settings, now=now, context=context)
        except ValidationFailed as failed:
            return self.reject(
                key=key,
                source=source,
                request_id=request_id,
                document=document,
                done_record=done_record,
                rejection=Rejection.of_error(failed),
            )
        message = build_request_message(
            document, request_id=request.request_id, correlation_id=request.correlation_id
        )
        self._sender.send(self._settings.build_queue, message)
        self._records.record_done(
            key,
            {
                **done_record,
                "state": "queued",
                "requestId": request.request_id,
                "at": format_timestamp(now),
            },
        )
        self._records.drop_pending(key)
        logger.info(
            "intake: build request %s queued for %s",
            request.request_id,
            source,
            extra={**request.log_fields(), "trigger": "event" if by_event else "recheck"},
        )
        return IntakeResult(IntakeOutcome.QUEUED, source, request.request_id)

    def publish_event(self, event: Mapping[str, Any]) -> None:
        """Publish a CloudEvent (e.g. an intake warning) on the events topic."""
        self._sender.send(self._settings.events_topic, event_message(event))

    def reject(
        self,
        *,
        key: str,
        source: str,
        request_id: str,
        document: Mapping[str, Any],
        done_record: Mapping[str, Any],
        rejection: Rejection,
    ) -> IntakeResult:
        """Dead-letter the request once, remember the decision, forget the pending record."""
        if not self._records.claim_rejection(
            key, done_record, now=self._clock(), retry_seconds=REJECTION_RETRY_SECONDS
        ):
            return IntakeResult(
                IntakeOutcome.DUPLICATE, source, request_id, detail="already being rejected"
            )
        self._dead_letter(document, request_id, source, rejection)
        metrics.request_rejected(rejection.rule or rejection.reason, stage="intake")
        self._records.record_done(
            key,
            {
                **done_record,
                "state": "rejected",
                "requestId": request_id,
                "reason": rejection.reason,
                "at": format_timestamp(self._clock()),
            },
        )
        self._records.drop_pending(key)
        return IntakeResult(
            IntakeOutcome.REJECTED, source, request_id, rejection.reason, rejection.description
        )

    def _dead_letter(
        self, document: Mapping[str, Any], request_id: str, source: str, rejection: Rejection
    ) -> None:
        message = build_request_message(document, request_id=request_id)
        message = replace(
            message,
            application_properties={**message.application_properties, "intake-source": source},
        )
        self._rejects.reject(message, reason=rejection.reason, description=rejection.description)
        logger.warning(
            "intake: %s rejected: %s: %s",
            source,
            rejection.reason,
            rejection.description,
            extra={"source": source, "request_id": request_id, "reason": rejection.reason},
        )
