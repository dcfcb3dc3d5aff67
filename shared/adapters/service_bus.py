"""``MessageSender`` and ``RejectedMessageSink`` over azure-servicebus 7.x.

One ``ServiceBusClient`` per process, built from ``ServiceBusConnection`` (a connection string,
e.g. the local emulator) or ``ServiceBusConnection__fullyQualifiedNamespace`` with a token
credential (managed identity). Senders are cached per entity and dropped after a failure. Every
operation has a timeout; failures become :class:`~shared.core.errors.TransientError`.

Dead-lettering a rejected request: the Functions Python Service Bus binding completes or
abandons the trigger message but cannot dead-letter it with a reason (``autoCompleteMessages``
only; docs/pipeline.md explains why). So :meth:`ServiceBusMessaging.reject`
relays the message to the rejects queue (``GALLERY_REJECTED_QUEUE``) with its reason and
description as application properties, then receives from that queue and dead-letters what it
finds with exactly those values. The result is a real dead-letter (``<rejects>/$deadletterqueue``,
``DeadLetterReason`` and ``DeadLetterErrorDescription`` set); a message the drain misses (crash
in between) is dead-lettered by the next reject or the tracker's next run (:meth:`drain_rejects`),
and the relay queue dead-letters on expiry, so nothing is dropped silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from azure.core.exceptions import AzureError
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceiver,
    ServiceBusSender,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import ServiceBusError

from shared.core import tracing
from shared.core.errors import PermanentError, TransientError
from shared.core.messaging import OutgoingMessage
from shared.core.redaction import redact_secrets
from shared.core.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

#: Seconds per send/receive/settle attempt; retries are bounded too.
OPERATION_TIMEOUT: Final = 15.0
CLIENT_OPTIONS: Final[dict[str, Any]] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 5,
}
#: Application properties that carry a rejection through the rejects queue.
REJECT_REASON_PROPERTY: Final = "gallery-pipeline.reject-reason"
REJECT_DESCRIPTION_PROPERTY: Final = "gallery-pipeline.reject-description"
#: Service Bus limits: reason and description are strings; keep them readable and bounded.
MAX_REASON_LENGTH: Final = 128
MAX_DESCRIPTION_LENGTH: Final = 4000
_DRAIN_BATCH: Final = 20
_DRAIN_WAIT_SECONDS: Final = 1.0


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str
    description: str
    enqueued_at: datetime | None
    body: str


def _trace_properties() -> dict[str | bytes, Any]:
    """The current span's W3C trace context as application properties: ``traceparent``,
    ``tracestate`` and ``Diagnostic-Id`` (what the .NET SDK in the Functions host reads). Keys
    are bytes, as azure-servicebus writes them, so its own tracing keeps ours (``setdefault``)
    instead of adding a second key with the same name."""
    carrier = tracing.current_carrier()
    properties: dict[str | bytes, Any] = {k.encode(): v for k, v in carrier.items()}
    if tracing.TRACEPARENT in carrier:
        properties[tracing.DIAGNOSTIC_ID.encode()] = carrier[tracing.TRACEPARENT]
    return properties


def _sdk_message(message: OutgoingMessage) -> ServiceBusMessage:
    properties: dict[str | bytes, Any] = {
        **_trace_properties(),
        **dict(message.application_properties.items()),
    }
    sdk = ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        content_type=message.content_type,
        subject=message.subject,
        correlation_id=message.correlation_id,
        application_properties=properties or None,
    )
    if message.scheduled_at is not None:
        sdk.scheduled_enqueue_time_utc = message.scheduled_at
    return sdk


class ServiceBusMessaging:
    """Sends to queues and topics; dead-letters rejected requests (see the module docstring)."""

    def __init__(self, client: ServiceBusClient, *, rejected_queue: str) -> None:
        self._client = client
        self._rejected_queue = rejected_queue
        self._senders: dict[str, ServiceBusSender] = {}
        self._lock = threading.Lock()
        self._receiver: ServiceBusReceiver | None = None
        self._receiver_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: Callable[[], TokenCredential]
    ) -> ServiceBusMessaging:
        if settings.service_bus_connection_string:
            client = ServiceBusClient.from_connection_string(
                settings.service_bus_connection_string, **CLIENT_OPTIONS
            )
        elif settings.service_bus_namespace:
            client = ServiceBusClient(
                settings.service_bus_namespace, credential(), **CLIENT_OPTIONS
            )
        else:
            raise PermanentError(
                "no Service Bus connection: set ServiceBusConnection or "
                "ServiceBusConnection__fullyQualifiedNamespace",
                reason="ServiceBusNotConfigured",
            )
        return cls(client, rejected_queue=settings.rejected_queue)

    def _sender(self, entity: str) -> ServiceBusSender:
        with self._lock:
            sender = self._senders.get(entity)
            if sender is None:
                sender = self._client.get_queue_sender(entity)
                self._senders[entity] = sender
            return sender

    def _drop_sender(self, entity: str) -> None:
        with self._lock:
            sender = self._senders.pop(entity, None)
        if sender is not None:
            try:
                sender.close()
            except (AzureError, ServiceBusError, OSError):
                logger.debug("closing a failed sender for %s failed too", entity)

    def send(self, entity: str, message: OutgoingMessage) -> None:
        """Send one message (topics and queues share one address space in Service Bus)."""
        sdk = _sdk_message(message)
        try:
            sender = self._sender(entity)
            with self._lock:  # a sender is one AMQP link: one send at a time
                sender.send_messages(sdk, timeout=OPERATION_TIMEOUT)
        except (ServiceBusError, AzureError, OSError) as error:
            self._drop_sender(entity)
            raise TransientError(
                f"sending message {message.message_id} to {entity} failed: "
                f"{error.__class__.__name__}",
                reason="ServiceBusUnavailable",
            ) from error
        logger.debug("sent message", extra={"entity": entity, "message_id": message.message_id})

    def reject(self, message: OutgoingMessage, *, reason: str, description: str) -> None:
        properties = {
            **message.application_properties,
            REJECT_REASON_PROPERTY: reason[:MAX_REASON_LENGTH],
            REJECT_DESCRIPTION_PROPERTY: description[:MAX_DESCRIPTION_LENGTH],
        }
        relay = OutgoingMessage(
            body=message.body,
            message_id=message.message_id,
            content_type=message.content_type,
            subject=message.subject,
            correlation_id=message.correlation_id,
            application_properties=properties,
        )
        self.send(self._rejected_queue, relay)
        logger.warning(
            "request rejected",
            extra={"message_id": message.message_id, "reason": reason, "description": description},
        )
        self.drain_rejects()

    def _rejects_receiver(self) -> ServiceBusReceiver:
        """One long-lived receiver on the relay queue: opening and closing a link costs about
        2 s, which every rejected message would otherwise spend holding a worker slot."""
        if self._receiver is None:
            self._receiver = self._client.get_queue_receiver(
                self._rejected_queue, max_wait_time=_DRAIN_WAIT_SECONDS
            )
        return self._receiver

    def _drop_receiver(self) -> None:
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            try:
                receiver.close()
            except (AzureError, ServiceBusError, OSError):
                logger.debug("closing a failed rejects receiver failed too")

    def drain_rejects(self) -> int:
        """Dead-letter every message waiting in the rejects queue; return how many."""
        drained = 0
        with self._receiver_lock:
            try:
                receiver = self._rejects_receiver()
                if not receiver.peek_messages(max_message_count=1, timeout=OPERATION_TIMEOUT):
                    return 0  # the usual case: answered at once, no receive wait
                while True:
                    batch = receiver.receive_messages(
                        max_message_count=_DRAIN_BATCH, max_wait_time=_DRAIN_WAIT_SECONDS
                    )
                    for received in batch:
                        props = {
                            (k.decode() if isinstance(k, bytes) else str(k)): (
                                v.decode() if isinstance(v, bytes) else str(v)
                            )
                            for k, v in (received.application_properties or {}).items()
                        }
                        receiver.dead_letter_message(
                            received,
                            reason=props.get(REJECT_REASON_PROPERTY, "Rejected"),
                            error_description=props.get(REJECT_DESCRIPTION_PROPERTY, ""),
                        )
                        drained += 1
                    if len(batch) < _DRAIN_BATCH:
                        # A short batch: the queue is (nearly) empty. Whatever arrives after
                        # this is drained by its own reject or the tracker's next run, so no
                        # handler waits out an empty receive.
                        return drained
            except (ServiceBusError, AzureError, OSError) as error:
                self._drop_receiver()
                raise TransientError(
                    f"dead-lettering rejected requests failed: {error.__class__.__name__}",
                    reason="ServiceBusUnavailable",
                ) from error

    def peek_dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead-lettered messages of ``queue``, oldest first, without removing
        them (``galleryctl rejects``). Bodies are shown with secrets masked."""
        try:
            with self._client.get_queue_receiver(
                queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=_DRAIN_WAIT_SECONDS
            ) as receiver:
                peeked = receiver.peek_messages(
                    max_message_count=max(limit, 0), timeout=OPERATION_TIMEOUT
                )
        except (ServiceBusError, AzureError, OSError) as error:
            raise TransientError(
                f"reading the dead letters of {queue} failed: {error.__class__.__name__}",
                reason="ServiceBusUnavailable",
            ) from error
        return [
            DeadLetter(
                message_id=str(message.message_id or ""),
                reason=str(message.dead_letter_reason or ""),
                description=str(message.dead_letter_error_description or ""),
                enqueued_at=message.enqueued_time_utc,
                body=redact_secrets(b"".join(message.body).decode("utf-8", "replace")),
            )
            for message in peeked
        ]

    def close(self) -> None:
        with self._lock:
            senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            try:
                sender.close()
            except (AzureError, ServiceBusError, OSError):
                logger.debug("closing a sender failed")
        with self._receiver_lock:
            self._drop_receiver()
        self._client.close()
