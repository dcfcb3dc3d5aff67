"""The CloudEvents 1.0 envelope (JSON structured mode) every event of the pipeline uses.

Builds and lifecycle publish on the same topic; their event types share one root
(``com.gallery-pipeline.``). Event ids are deterministic per transition so consumers can drop a
copy published twice, and the Service Bus MessageId is the event id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from shared.core.messaging import CLOUDEVENTS_CONTENT_TYPE, OutgoingMessage
from shared.core.timestamps import format_timestamp

SPEC_VERSION: Final = "1.0"
#: The root of every event type the pipeline publishes.
EVENT_TYPE_ROOT: Final = "com.gallery-pipeline."


def cloud_event(
    *, event_id: str, event_type: str, source: str, subject: str, time: datetime, data: Any
) -> dict[str, Any]:
    """A CloudEvent as a JSON object; ``event_type`` is relative to :data:`EVENT_TYPE_ROOT`."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "type": EVENT_TYPE_ROOT + event_type,
        "source": source,
        "subject": subject,
        "time": format_timestamp(time),
        "datacontenttype": "application/json",
        "data": data,
    }


def event_message(event: Mapping[str, Any]) -> OutgoingMessage:
    """The Service Bus message of an event: MessageId is the event id, the subject its type."""
    return OutgoingMessage(
        body=json.dumps(event, separators=(",", ":")).encode("utf-8"),
        message_id=str(event["id"]),
        content_type=CLOUDEVENTS_CONTENT_TYPE,
        subject=str(event["type"]),
        correlation_id=str(event["subject"]),
        application_properties={"cloudEvents:type": str(event["type"])},
    )
