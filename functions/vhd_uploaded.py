"""Event Grid trigger: ``Microsoft.Storage.BlobCreated`` for ``<name>.vhd`` and ``<name>.vhd.json``.

Thin: parse the event into a :class:`~shared.intake.events.BlobCreated`, hand it to the intake
service,
which queues a build request once the upload is committed (docs/intake.md). It never binds or
downloads the blob: the service reads properties, the manifest and the 512-byte footer.
A :class:`~shared.core.errors.TransientError` (or a configuration error) propagates, so Event Grid
retries the delivery and, in the end, dead-letters the event: nothing is lost.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition
from shared.core import tracing
from shared.core.errors import PermanentError, PipelineError
from shared.intake.events import parse_blob_created

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def vhd_uploaded(event: func.EventGridEvent) -> None:
    try:
        command = parse_blob_created(event.event_type, event.get_json(), event_id=event.id)
    except PermanentError as error:
        logger.error("not a BlobCreated event: %s", error.message, extra={"event_id": event.id})
        return
    with tracing.operation("vhd_uploaded", fields={"event_id": event.id}):
        try:
            result = composition.intake_service().on_blob_created(command)
        except PipelineError as error:
            logger.warning(
                "upload intake failed; Event Grid will deliver the event again: %s",
                error.message,
                extra={"source": command.vhd_url, "reason": error.reason, "event_id": event.id},
            )
            raise
        logger.info(
            "upload intake: %s", result.outcome, extra={**result.log_fields(), "event_id": event.id}
        )
