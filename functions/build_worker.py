"""Service Bus queue trigger on ``image-builds``: one build request per message.

Thin: parse the trigger into an :class:`~shared.core.messaging.IncomingMessage`, hand it to the
build worker (:class:`~shared.builds.worker.BuildWorker`). Invalid or impossible requests are
dead-lettered by the worker with a reason and a description and the message completes; transient
errors are retried later by the worker (a delayed copy, or the tracker); a
:class:`~shared.core.errors.TransientError` that still escapes (Service Bus itself unavailable)
propagates, so the host abandons the message and Service Bus redelivers it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import azure.functions as func

from shared import composition
from shared.core import tracing
from shared.core.errors import TransientError
from shared.core.messaging import ATTEMPT_PROPERTY, IncomingMessage

logger = logging.getLogger(__name__)

bp = func.Blueprint()


def to_incoming(message: func.ServiceBusMessage) -> IncomingMessage:
    properties = message.application_properties or {}
    return IncomingMessage(
        body=message.get_body(),
        message_id=message.message_id,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        subject=message.label,
        delivery_count=message.delivery_count or 1,
        attempt=_attempt(properties),
        application_properties={str(k): str(v) for k, v in properties.items()},
    )


def _attempt(properties: Mapping[str, object]) -> int:
    value = properties.get(ATTEMPT_PROPERTY)
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


@bp.service_bus_queue_trigger(
    arg_name="message", queue_name="%GALLERY_BUILD_QUEUE%", connection="ServiceBusConnection"
)
def build_worker(message: func.ServiceBusMessage) -> None:
    incoming = to_incoming(message)
    with tracing.operation(  # continues the sender's trace (its traceparent)
        "build_worker", parent=incoming.trace_context, fields={"message_id": incoming.message_id}
    ):
        try:
            outcome = composition.build_worker().handle_message(incoming)
        except TransientError as error:
            logger.warning(
                "build request will be retried",
                extra={
                    "message_id": incoming.message_id,
                    "delivery_count": incoming.delivery_count,
                    "reason": error.reason,
                    "retry_after_seconds": error.retry_after_seconds,
                },
            )
            raise
        logger.info(
            "build request handled",
            extra={"message_id": incoming.message_id, "outcome": outcome.value},
        )
