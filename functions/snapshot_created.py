"""Event Grid trigger: ``Microsoft.Resources.ResourceWriteSuccess`` of a snapshot.

Thin: parse the event into a :class:`~shared.intake.events.SnapshotWritten` (other resource
writes are
ignored), hand it to the intake service: a snapshot tagged ``gallery-publish`` is queued once it
is usable; later writes of a snapshot already queued are ignored (docs/intake.md). Transient and
configuration errors propagate, so Event Grid retries the delivery.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition
from shared.core import tracing
from shared.core.errors import PipelineError
from shared.intake.events import parse_snapshot_write

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def snapshot_created(event: func.EventGridEvent) -> None:
    command = parse_snapshot_write(
        event.event_type, event.subject or "", event.get_json(), event_id=event.id
    )
    if command is None:
        logger.debug("not a snapshot write: %s %s", event.event_type, event.subject)
        return
    with tracing.operation("snapshot_created", fields={"event_id": event.id}):
        try:
            result = composition.intake_service().on_snapshot_written(command)
        except PipelineError as error:
            logger.warning(
                "snapshot intake failed; Event Grid will deliver the event again: %s",
                error.message,
                extra={
                    "source": str(command.snapshot_id),
                    "reason": error.reason,
                    "event_id": event.id,
                },
            )
            raise
        logger.info(
            "snapshot intake: %s",
            result.outcome,
            extra={**result.log_fields(), "event_id": event.id},
        )
