"""One look at a snapshot: read its publish tag, then queue it once it is usable.

A snapshot opts in with the tag ``gallery-publish`` (setting ``GALLERY_SNAPSHOT_TAG``). Later
writes (tag updates) of a snapshot already queued are ignored.

A tag that looks like ours but is not (a misspelt name such as ``gallery_publish``, or the right
name with a malformed value) is never silence: the snapshot is rejected (dead-lettered with the
reason and the fix) and a warning CloudEvent ``com.gallery-pipeline.intake.warning`` goes to the
events topic (:func:`intake_warning_event`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.contract.rules import ValidationContext
from shared.core.cloudevents import cloud_event
from shared.core.errors import ValidationFailed
from shared.core.jsontypes import JsonObject
from shared.core.resource_ids import ResourceId
from shared.core.settings import Settings
from shared.core.timestamps import format_timestamp
from shared.intake.dispatch import RequestDispatch
from shared.intake.ids import snapshot_record_key, snapshot_request_id
from shared.intake.outcomes import IntakeOutcome, IntakeResult, Rejection
from shared.intake.ports import SnapshotReader, SnapshotState
from shared.intake.records import REJECTING, IntakeRecords, abandoned_after
from shared.intake.snapshots import (
    PublishTag,
    misspelt_tag_problem,
    near_miss_tag,
    parse_publish_tag,
    parse_snapshot_defaults,
    resolve_target_scope,
    snapshot_is_ready,
    snapshot_request_document,
)

logger = logging.getLogger(__name__)

#: The event type (under ``com.gallery-pipeline.``) of a snapshot tag that looks like ours.
INTAKE_WARNING_TYPE: Final = "intake.warning"


def intake_warning_event(
    *, source: str, request_id: str, tag: str, rejection: Rejection, time: datetime
) -> dict[str, Any]:
    """The warning CloudEvent of a snapshot rejected for its tag (id stable per tag, so a
    redelivered event publishes the same warning)."""
    digest = hashlib.sha256(tag.encode("utf-8")).hexdigest()[:16]
    return cloud_event(
        event_id=f"{request_id}:warning:{digest}",
        event_type=INTAKE_WARNING_TYPE,
        source=source,
        subject=source,
        time=time,
        data={
            "source": source,
            "requestId": request_id,
            "tag": tag,
            "reason": rejection.reason,
            "rule": rejection.rule,
            "description": rejection.description,
        },
    )


@dataclass(frozen=True)
class _Snapshot:
    """One look at a tagged snapshot: what the decision is based on."""

    key: str
    source: str
    snapshot: SnapshotState
    tag_name: str
    tag_value: str
    request_id: str
    #: The tag is not the publish tag but looks like it (``gallery_publish``).
    misspelt: bool = False

    @property
    def recorded_tag(self) -> str:
        """What the done record keeps of the tag: the value; ``name=value`` when misspelt, so
        renaming the tag to the right name is a new decision."""
        return f"{self.tag_name}={self.tag_value}" if self.misspelt else self.tag_value

    @property
    def done_record(self) -> JsonObject:
        return {
            "kind": "snapshot",
            "id": self.source,
            "identity": self.snapshot.identity,
            "tag": self.recorded_tag,
        }

    @property
    def base_document(self) -> JsonObject:
        """What a rejection carries: the source and the request id."""
        return {"source": {"snapshot": {"id": self.source}}, "requestId": self.request_id}


class SnapshotIntake:
    """The snapshot half of :class:`shared.intake.service.IntakeService`."""

    def __init__(
        self,
        settings: Settings,
        *,
        snapshots: SnapshotReader,
        records: IntakeRecords,
        dispatch: RequestDispatch,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._snapshots = snapshots
        self._records = records
        self._dispatch = dispatch
        self._clock = clock

    def evaluate(self, snapshot_id: ResourceId, *, by_event: bool) -> IntakeResult:
        """Look, then: a duplicate, a rejection (bad tag), a wait, or a queued build request."""
        looked = self._look(snapshot_id)
        if isinstance(looked, IntakeResult):
            return looked
        duplicate = self._duplicate(looked)
        if duplicate is not None:
            return duplicate
        now = self._clock()
        if looked.misspelt:
            problem = misspelt_tag_problem(
                looked.tag_name, looked.tag_value, self._settings.intake.snapshot_tag
            )
            failed = ValidationFailed([problem], subject="snapshot tag")
            return self._warn_and_reject(looked, Rejection.of_error(failed), now)
        try:
            tag = parse_publish_tag(looked.tag_value, tag_name=looked.tag_name)
        except ValidationFailed as failed:
            return self._warn_and_reject(looked, Rejection.of_error(failed), now)
        try:
            scope = resolve_target_scope(tag, snapshot_id, self._settings.allowed_target_galleries)
        except ValidationFailed as failed:
            return self._reject(looked, Rejection.of_error(failed))
        if not snapshot_is_ready(looked.snapshot):
            return self._wait(looked, now)
        return self._queue(looked, tag, scope, now=now, by_event=by_event)

    def _look(self, snapshot_id: ResourceId) -> _Snapshot | IntakeResult:
        """The snapshot and its tag (or a misspelling of it); GONE when it does not exist,
        IGNORED without either."""
        source = str(snapshot_id)
        key = snapshot_record_key(snapshot_id)
        snapshot = self._snapshots.get(snapshot_id)
        if snapshot is None:
            self._records.drop_pending(key)
            return IntakeResult(IntakeOutcome.GONE, source, detail="the snapshot does not exist")
        tag_name = self._settings.intake.snapshot_tag
        tag_value = snapshot.tag(tag_name)
        misspelt = False
        if tag_value is None:
            near_miss = near_miss_tag(snapshot.tags, tag_name)
            if near_miss is None:
                self._records.drop_pending(key)
                logger.debug("intake: snapshot %s has no %s tag", source, tag_name)
                return IntakeResult(IntakeOutcome.IGNORED, source, detail=f"no {tag_name} tag")
            (tag_name, tag_value), misspelt = near_miss, True
        request_id = snapshot_request_id(snapshot_id, snapshot.identity)
        return _Snapshot(key, source, snapshot, tag_name, tag_value, request_id, misspelt)

    def _duplicate(self, looked: _Snapshot) -> IntakeResult | None:
        """DUPLICATE when this snapshot was queued, or rejected with the same tag."""
        record = self._records.read_done(looked.key)
        if record is None or record.get("identity") != looked.snapshot.identity:
            return None
        if record.get("state") == REJECTING:
            return None  # the rejection decides who dead-letters (claim_rejection)
        if record.get("state") != "queued" and record.get("tag") != looked.recorded_tag:
            return None
        self._records.drop_pending(looked.key)
        return IntakeResult(
            IntakeOutcome.DUPLICATE,
            looked.source,
            str(record.get("requestId") or looked.request_id),
            detail=f"already {record.get('state')}; later writes are ignored",
        )

    def _wait(self, looked: _Snapshot, now: datetime) -> IntakeResult:
        """Keep (or update) the pending record; REJECTED once the snapshot is abandoned."""
        snapshot, source = looked.snapshot, looked.source
        pending = self._records.read_pending(looked.key)
        record = (
            dict(pending[0])
            if pending
            else {"kind": "snapshot", "id": source, "firstSeen": format_timestamp(now)}
        )
        why = (
            f"provisioningState {snapshot.provisioning_state}, "
            f"snapshotAccessState {snapshot.access_state}, "
            f"completionPercent {snapshot.completion_percent}"
        )
        record["lastCheck"] = format_timestamp(now)
        record["waitingFor"] = why
        abandoned = abandoned_after(record, now, self._settings.intake.abandon_seconds)
        if abandoned is not None:
            return self._reject(
                looked,
                Rejection("SnapshotNotReady", f"{source} was not usable after {abandoned}: {why}"),
            )
        self._records.save_pending(looked.key, record, pending)
        logger.info("intake: snapshot %s pending: %s", source, why, extra={"source": source})
        return IntakeResult(IntakeOutcome.PENDING, source, looked.request_id, detail=why)

    def _queue(
        self,
        looked: _Snapshot,
        tag: PublishTag,
        scope: tuple[str, str],
        *,
        now: datetime,
        by_event: bool,
    ) -> IntakeResult:
        """Build the request document (defaults, then the tag) and queue it if it is valid."""
        snapshot = looked.snapshot
        defaults = parse_snapshot_defaults(self._settings.intake.snapshot_defaults)
        document = snapshot_request_document(
            snapshot, tag, scope, defaults=defaults, request_id=looked.request_id
        )
        context = ValidationContext(
            source_region=snapshot.location or None, os_disk_size_bytes=snapshot.disk_size_bytes
        )
        return self._dispatch.queue(
            looked.key,
            looked.source,
            document,
            context,
            derived_id=looked.request_id,
            done_record=looked.done_record,
            now=now,
            by_event=by_event,
        )

    def _warn_and_reject(
        self, looked: _Snapshot, rejection: Rejection, now: datetime
    ) -> IntakeResult:
        """A tag that looks like ours but is wrong: a warning event, then the rejection. The
        warning goes first so that a failed send retries both (its event id is stable)."""
        event = intake_warning_event(
            source=looked.source,
            request_id=looked.request_id,
            tag=f"{looked.tag_name}={looked.tag_value}",
            rejection=rejection,
            time=now,
        )
        self._dispatch.publish_event(event)
        logger.warning(
            "intake: snapshot %s tag %s=%s: %s",
            looked.source,
            looked.tag_name,
            looked.tag_value,
            rejection.description,
            extra={"source": looked.source, "request_id": looked.request_id},
        )
        return self._reject(looked, rejection)

    def _reject(self, looked: _Snapshot, rejection: Rejection) -> IntakeResult:
        return self._dispatch.reject(
            key=looked.key,
            source=looked.source,
            request_id=looked.request_id,
            document=looked.base_document,
            done_record=looked.done_record,
            rejection=rejection,
        )
