"""Intake: VHD uploads and tagged snapshots become build requests on the build queue.

Two kinds of event start an intake, and a timer finishes what they could not:

* ``Microsoft.Storage.BlobCreated`` for ``<name>.vhd`` or its manifest ``<name>.vhd.json``. A
  route (setting ``GALLERY_VHD_ROUTES``) maps the blob's account, container and name prefix to a
  target and publishing defaults; blob metadata (``gallery_*``) and the manifest override them.
  For a page blob the event comes when the blob is *created*, before any page is written, so the
  upload counts as complete only when (a) its manifest exists (written last, by convention), or
  (b) blob metadata ``gallery_ready=true`` is set, or (c) its footer is a valid fixed-VHD footer
  and its ETag and length have not changed for ``GALLERY_UPLOAD_SETTLE_SECONDS``. A block blob
  VHD is rejected: the gallery needs a page blob.
* ``Microsoft.Resources.ResourceWriteSuccess`` for ``Microsoft.Compute/snapshots/write``. A
  snapshot opts in with the tag ``gallery-publish=<gallery>/<definition>[:<versionPolicy>]`` and
  is queued once it is usable (``snapshotAccessState`` Available, or ``completionPercent`` 100).
  Later writes (tag updates) of a snapshot already queued are ignored.

What is not ready yet is kept as a *pending* record; :meth:`IntakeService.recheck` (the timer)
looks at every pending record again. What was queued or rejected is kept as a *done* record, so a
duplicate event is recognised. Request ids are deterministic (the blob URL and its ETag, or the
snapshot id and its ``uniqueId``), and the request id is the Service Bus MessageId, so even a
duplicate that slips past the records is dropped by the queue's duplicate detection.

Every request is validated with :func:`shared.contract.parse.parse_build_request` before it is
sent; an invalid one is rejected (dead-lettered) with every problem and the field it concerns.

The package, bottom up: :mod:`~shared.intake.events` (typed commands), :mod:`~shared.intake.ports`,
:mod:`~shared.intake.ids`, :mod:`~shared.intake.partial`, :mod:`~shared.intake.outcomes` and
:mod:`~shared.intake.records`; the rules of :mod:`~shared.intake.uploads` and
:mod:`~shared.intake.snapshots`; :mod:`~shared.intake.dispatch` (queue or dead-letter); the two
paths :mod:`~shared.intake.upload_intake` and :mod:`~shared.intake.snapshot_intake`; this module.

Domain code only: storage, ARM and Service Bus are ports (adapters in ``shared.adapters``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.contract.regions import RegionCatalog
from shared.core import tracing
from shared.core.documents import DocumentStore
from shared.core.errors import PermanentError
from shared.core.messaging import MessageSender, RejectedMessageSink
from shared.core.redaction import strip_query
from shared.core.resource_ids import parse_resource_id
from shared.core.settings import Settings
from shared.intake.dispatch import RequestDispatch
from shared.intake.events import VHD_SUFFIX, BlobCreated, SnapshotWritten
from shared.intake.outcomes import IntakeOutcome, IntakeResult
from shared.intake.ports import SnapshotReader, UploadBlobs
from shared.intake.records import IntakeRecords
from shared.intake.snapshot_intake import SnapshotIntake
from shared.intake.upload_intake import UploadIntake

logger = logging.getLogger(__name__)


class IntakeService:
    """Turns upload and snapshot events into build requests (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        blobs: UploadBlobs,
        snapshots: SnapshotReader,
        pending: DocumentStore,
        done: DocumentStore,
        sender: MessageSender,
        rejects: RejectedMessageSink,
        clock: Callable[[], datetime],
        regions: RegionCatalog | None = None,
    ) -> None:
        self._records = IntakeRecords(pending=pending, done=done)
        dispatch = RequestDispatch(
            settings,
            records=self._records,
            sender=sender,
            rejects=rejects,
            clock=clock,
            regions=regions,
        )
        self._uploads = UploadIntake(
            settings, blobs=blobs, records=self._records, dispatch=dispatch, clock=clock
        )
        self._snapshots = SnapshotIntake(
            settings, snapshots=snapshots, records=self._records, dispatch=dispatch, clock=clock
        )

    def on_blob_created(self, event: BlobCreated) -> IntakeResult:
        """A VHD or its manifest was created."""
        url = strip_query(event.url)
        if not (url.lower().endswith(VHD_SUFFIX) or event.is_manifest):
            return IntakeResult(IntakeOutcome.IGNORED, url, detail="neither a .vhd nor a manifest")
        return self._uploads.evaluate(event.vhd_url, by_event=True)

    def on_snapshot_written(self, event: SnapshotWritten) -> IntakeResult:
        """A snapshot was created or updated."""
        return self._snapshots.evaluate(event.snapshot_id, by_event=True)

    def recheck(self, *, limit: int = 500) -> list[IntakeResult]:
        """Look again at every pending upload and snapshot (the timer). Errors stay per item;
        each item is its own trace (a build it queues is traced from there), linked to the run."""
        results: list[IntakeResult] = []
        for key in self._records.pending_keys(limit):
            with tracing.operation(
                "intake recheck", new_trace=True, fields={"pending_record": key}
            ):
                result = self._recheck(key)
            if result is not None:
                results.append(result)
        return results

    def _recheck(self, key: str) -> IntakeResult | None:
        """One pending record looked at again; ``None`` when it is gone or failed (logged)."""
        found = self._records.read_pending(key)
        if found is None:
            return None
        record, _ = found
        try:
            if record.get("kind") == "vhd":
                return self._uploads.evaluate(str(record["url"]), by_event=False)
            if record.get("kind") == "snapshot":
                return self._snapshots.evaluate(
                    parse_resource_id(str(record["id"])), by_event=False
                )
            logger.warning("intake: unknown pending record %s dropped", key)
            self._records.drop_pending(key)
        except PermanentError as error:
            logger.error(
                "intake: re-check of %s failed: %s",
                key,
                error,
                extra={"source": key, "reason": error.reason},
            )
        except Exception:
            logger.exception("intake: re-check of %s failed; next run tries again", key)
        return None
