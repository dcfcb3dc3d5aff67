"""Timer: re-checks pending uploads and not-yet-ready snapshots.

The schedule is ``GALLERY_INTAKE_RECHECK_SCHEDULE`` (every 20 seconds by default).

A page blob's BlobCreated event comes before its pages are written, and a snapshot copied with
CopyStart is usable only later; neither sends another event. This timer looks at each pending
record again and queues the build request when it is ready (docs/intake.md). Errors stay per
record; a configuration error is logged with its reason.
"""

from __future__ import annotations

import logging
from collections import Counter

import azure.functions as func

from shared import composition
from shared.core import tracing
from shared.core.errors import PermanentError

logger = logging.getLogger(__name__)

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%GALLERY_INTAKE_RECHECK_SCHEDULE%", use_monitor=False)
def upload_readiness(timer: func.TimerRequest) -> None:
    with tracing.operation("upload_readiness"):  # each pending record is a trace of its own
        _recheck(timer)


def _recheck(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logger.info("intake re-check is past due; running now")
    try:
        results = composition.intake_service().recheck()
    except PermanentError as error:
        logger.error("intake re-check failed: %s", error.message, extra={"reason": error.reason})
        return
    if results:
        counts = Counter(str(result.outcome) for result in results)
        logger.info(
            "intake re-check: %s",
            ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())),
            extra={"outcomes": dict(counts)},
        )
