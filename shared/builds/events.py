"""Build transitions as CloudEvents 1.0 (JSON structured mode) for the ``image-build-events`` topic.

Every transition is one event: ``queued``, ``started``, ``replicating`` (with progress),
``succeeded``, ``failed``. Event ids are deterministic (build id, state and, for progress, the
percentage), so a transition published twice by a retried handler has the same id and
consumers can drop the copy; the Service Bus MessageId is the event id too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from shared.builds.records import BuildPhase, BuildRecord
from shared.core.cloudevents import EVENT_TYPE_ROOT, cloud_event

EVENT_TYPE_PREFIX: Final = EVENT_TYPE_ROOT + "build."


def overall_progress(record: BuildRecord) -> int:
    """Mean replication progress over the target regions (0 when none are known yet)."""
    if not record.regions:
        return 100 if record.phase is BuildPhase.SUCCEEDED else 0
    return round(sum(r.progress for r in record.regions) / len(record.regions))


def build_event(record: BuildRecord, *, time: datetime) -> dict[str, Any]:
    """The CloudEvent for the record's current state."""
    progress = overall_progress(record)
    event_id = f"{record.build_id}:{record.phase.value}"
    if record.phase is BuildPhase.REPLICATING:
        event_id += f":{progress}"
    definition_id = (
        f"/subscriptions/{record.subscription_id}/resourceGroups/{record.resource_group}"
        f"/providers/Microsoft.Compute/galleries/{record.gallery}/images/{record.definition}"
    )
    data: dict[str, Any] = {
        "buildId": record.build_id,
        "requestId": record.request_id,
        "state": record.phase.value,
        "source": record.source_key,
        "gallery": record.gallery,
        "definition": record.definition,
        "version": record.version,
        "versionId": record.version_id,
        "progress": progress,
        "regions": [r.to_document() for r in record.regions],
    }
    if record.error_reason:
        data["error"] = {"reason": record.error_reason, "message": record.error}
    return cloud_event(
        event_id=event_id,
        event_type="build." + record.phase.value,
        source=definition_id,
        subject=record.build_id,
        time=time,
        data=data,
    )
