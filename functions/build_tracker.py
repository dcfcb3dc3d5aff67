"""Timer: follows every build in flight (``GALLERY_TRACKER_SCHEDULE``, every minute by default).

One GET per build with ``$expand=ReplicationStatus``; completed or failed builds release their
source and the next pending request starts. Nothing here waits for replication.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition
from shared.core import tracing

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%GALLERY_TRACKER_SCHEDULE%", use_monitor=False)
def build_tracker(timer: func.TimerRequest) -> None:
    with tracing.operation("build_tracker"):  # each build followed joins its own trace
        if timer.past_due:
            logger.info("build tracker is past due; running now")
        composition.build_tracker().follow_up()
