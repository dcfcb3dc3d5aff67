"""The pipeline's outgoing messages, as a port: build requests, rejects and build events.

Domain code builds an :class:`OutgoingMessage` and hands it to a :class:`MessageSender`; the
adapter over azure-servicebus is ``shared.adapters.service_bus``, which adds the W3C trace
context of the current span (``traceparent``, ``tracestate``) to every message it sends.
Message ids are deterministic (the request id for a build request), so the queue's duplicate
detection drops a second copy of the same request, whoever sent it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from shared.core.tracing import carrier_from_properties

JSON_CONTENT_TYPE: Final = "application/json"
CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
#: Application property counting the delayed retries of a message (see ``BuildWorker``).
ATTEMPT_PROPERTY: Final = "gallery-pipeline.attempt"
#: Subject (label) of build request messages; other systems may set it too, nobody relies on it.
BUILD_REQUEST_SUBJECT: Final = "gallery-pipeline.build-request"


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send. ``scheduled_at`` (aware UTC) delays delivery until then."""

    body: bytes
    message_id: str
    content_type: str = JSON_CONTENT_TYPE
    subject: str | None = None
    correlation_id: str | None = None
    application_properties: Mapping[str, str | int | bool] = field(default_factory=dict)
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """A received message as the handlers see it (parsed from the trigger)."""

    body: bytes
    message_id: str | None = None
    content_type: str | None = None
    correlation_id: str | None = None
    subject: str | None = None
    delivery_count: int = 1
    #: How many delayed retries of this request came before this copy (0 for the original).
    attempt: int = 0
    #: The message's application properties (``traceparent``, the attempt...), as text.
    application_properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def trace_context(self) -> dict[str, str]:
        """The W3C trace context its sender put on it (``{}`` if none): handlers continue it."""
        return carrier_from_properties(self.application_properties)

    def as_outgoing(self) -> OutgoingMessage:
        """The same message, to relay it (e.g. to the dead-letter place) unchanged."""
        return OutgoingMessage(
            body=self.body,
            message_id=self.message_id or "",
            content_type=self.content_type or JSON_CONTENT_TYPE,
            subject=self.subject,
            correlation_id=self.correlation_id,
        )


class MessageSender(Protocol):
    """Sends messages to a queue or topic by name. Errors are ``shared.core.errors`` types."""

    def send(self, entity: str, message: OutgoingMessage) -> None: ...


class RejectedMessageSink(Protocol):
    """Where a message that can never succeed goes: dead-lettered with a reason and description."""

    def reject(self, message: OutgoingMessage, *, reason: str, description: str) -> None: ...


def build_request_message(
    document: Mapping[str, Any],
    *,
    request_id: str,
    correlation_id: str | None = None,
    scheduled_at: datetime | None = None,
) -> OutgoingMessage:
    """A build request as the ``image-builds`` queue expects it (MessageId = request id)."""
    body = dict(document)
    body.setdefault("requestId", request_id)
    return OutgoingMessage(
        body=json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"),
        message_id=request_id,
        subject=BUILD_REQUEST_SUBJECT,
        correlation_id=correlation_id,
        scheduled_at=scheduled_at,
    )
