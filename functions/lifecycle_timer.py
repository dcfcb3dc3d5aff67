"""Timer: one lifecycle run (``GALLERY_LIFECYCLE_SCHEDULE``, daily by default; docs/lifecycle.md).

Plans first, writes the plan to the audit store, applies it unless ``GALLERY_LIFECYCLE_DRY_RUN``
(the default) or the lifecycle is halted, and writes the outcome. A run over the deletion cap
halts: it changes nothing, alerts (``com.gallery-pipeline.lifecycle.halted``), and later
occurrences change nothing until ``galleryctl lifecycle ack RUN_ID``. A transient failure
(throttling, ARM unreachable) is raised so the invocation is marked failed and the next
occurrence runs again; a permanent one (bad settings, no permission) is logged with its reason.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition
from shared.core import tracing
from shared.core.errors import PermanentError

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%GALLERY_LIFECYCLE_SCHEDULE%", use_monitor=True)
def lifecycle_timer(timer: func.TimerRequest) -> None:
    with tracing.operation("lifecycle_timer"):
        if timer.past_due:
            logger.info("lifecycle run is past due; running now")
        try:
            composition.lifecycle_service().run()
        except PermanentError as exc:
            logger.error("lifecycle run rejected: %s", exc.message, extra={"reason": exc.reason})
