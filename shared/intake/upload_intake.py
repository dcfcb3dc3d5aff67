"""One look at a VHD upload: look up its route, decide readiness, then queue, wait or reject.

For a page blob the BlobCreated event comes when the blob is *created*, before any page is
written, so the upload counts as complete only when (a) its manifest exists (written last, by
convention), or (b) blob metadata ``gallery_ready=true`` is set, or (c) its footer is a valid
fixed-VHD footer and its ETag and length have not changed for ``GALLERY_UPLOAD_SETTLE_SECONDS``.
A block blob VHD is rejected: the gallery needs a page blob.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.contract.rules import ValidationContext
from shared.core.blob_urls import InvalidBlobUrl, parse_blob_url
from shared.core.errors import ValidationFailed
from shared.core.jsontypes import JsonObject
from shared.core.redaction import strip_query
from shared.core.settings import SettingName, Settings
from shared.core.timestamps import format_timestamp, parse_timestamp
from shared.intake.dispatch import RequestDispatch
from shared.intake.ids import upload_record_key, vhd_request_id
from shared.intake.outcomes import IntakeOutcome, IntakeResult, Rejection
from shared.intake.ports import BlobState, SmallBlob, UploadBlobs
from shared.intake.records import REJECTING, IntakeRecords, PendingRecord, abandoned_after
from shared.intake.uploads import (
    MAX_MANIFEST_BYTES,
    PAGE_BLOB,
    READY_MARKER,
    UploadRoute,
    find_route,
    metadata_overrides,
    parse_manifest,
    parse_routes,
    vhd_request_document,
)
from shared.vhd.preflight import DetectedFormat, VhdReport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Upload:
    """One look at an upload: what the decision is based on."""

    key: str
    source: str
    route: UploadRoute
    state: BlobState
    manifest_blob: SmallBlob | None
    request_id: str
    #: The VHD's ETag and its manifest's ETag: a rejected upload is looked at again when it moves.
    fingerprint: str
    pending: PendingRecord | None
    now: datetime
    #: What a rejection carries: the route's defaults and the source.
    base_document: Mapping[str, Any]
    #: The manifest or marker came before the footer: only the settle rule counts.
    out_of_order: bool = False


@dataclass(frozen=True)
class _Overrides:
    """What blob metadata and the manifest add to the route's defaults."""

    metadata_partial: JsonObject
    manifest: JsonObject | None
    #: Metadata ``gallery_ready=true``.
    marker: bool


@dataclass(frozen=True)
class _Ready:
    """A complete upload: its footer report, and what said it is complete."""

    report: VhdReport
    committed_by: str


class UploadIntake:
    """The upload half of :class:`shared.intake.service.IntakeService`."""

    def __init__(
        self,
        settings: Settings,
        *,
        blobs: UploadBlobs,
        records: IntakeRecords,
        dispatch: RequestDispatch,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._blobs = blobs
        self._records = records
        self._dispatch = dispatch
        self._clock = clock

    def evaluate(self, vhd_url: str, *, by_event: bool) -> IntakeResult:
        """Route, look, then: a duplicate, a rejection, a wait, or a queued build request."""
        routed = self._route(vhd_url)
        if isinstance(routed, IntakeResult):
            return routed
        upload = self._look(*routed)
        if isinstance(upload, IntakeResult):
            return upload
        duplicate = self._duplicate(upload)
        if duplicate is not None:
            return duplicate
        if upload.state.blob_type != PAGE_BLOB:
            return self._reject(upload, _not_page_blob(upload))
        overrides = self._read_overrides(upload)
        if isinstance(overrides, IntakeResult):
            return overrides
        ready = self._decide_readiness(upload, overrides)
        if isinstance(ready, IntakeResult):
            return ready
        if not ready.report.ok:
            problems = "; ".join(str(problem) for problem in ready.report.problems)
            return self._reject(upload, Rejection("VhdInvalid", f"{upload.source}: {problems}"))
        return self._queue(upload, overrides, ready, by_event=by_event)

    # ---------------------------------------------------------------- decision steps

    def _route(self, vhd_url: str) -> tuple[str, UploadRoute] | IntakeResult:
        """The VHD's URL without query and its route, or IGNORED (not an upload blob, no route)."""
        settings = self._settings
        try:
            blob = parse_blob_url(vhd_url, settings.vhd_storage_endpoints)
        except InvalidBlobUrl as exc:
            logger.warning("intake: %s; ignored", exc, extra={"source": strip_query(vhd_url)})
            return IntakeResult(IntakeOutcome.IGNORED, strip_query(vhd_url), detail=str(exc))
        source = blob.url_without_query
        route = find_route(parse_routes(settings.intake.vhd_routes), blob)
        if route is None:
            logger.warning(
                "intake: no route in %s for %s; ignored",
                SettingName.VHD_ROUTES,
                source,
                extra={"source": source},
            )
            return IntakeResult(IntakeOutcome.IGNORED, source, detail="no route")
        return source, route

    def _look(self, source: str, route: UploadRoute) -> _Upload | IntakeResult:
        """The blob, its manifest and its pending record now; GONE when there is no blob."""
        key = upload_record_key(source)
        state = self._blobs.state(source)
        if state is None:
            self._records.drop_pending(key)
            return IntakeResult(IntakeOutcome.GONE, source, detail="the VHD does not exist")
        manifest_blob = self._blobs.read_small(source + ".json", max_bytes=MAX_MANIFEST_BYTES)
        request_id = vhd_request_id(source, state.etag)
        return _Upload(
            key=key,
            source=source,
            route=route,
            state=state,
            manifest_blob=manifest_blob,
            request_id=request_id,
            fingerprint=f"{state.etag}|{manifest_blob.etag if manifest_blob else ''}",
            pending=self._records.read_pending(key),
            now=self._clock(),
            base_document=vhd_request_document(
                route, source, metadata_partial={}, manifest=None, request_id=request_id
            ),
        )

    def _duplicate(self, upload: _Upload) -> IntakeResult | None:
        """DUPLICATE when this content was queued, or rejected as it is now."""
        record = self._records.read_done(upload.key)
        if record is None or record.get("etag") != upload.state.etag:
            return None
        if record.get("state") == REJECTING:
            return None  # the rejection decides who dead-letters (claim_rejection)
        if record.get("state") != "queued" and record.get("fingerprint") != upload.fingerprint:
            return None
        self._records.drop_pending(upload.key)
        return IntakeResult(
            IntakeOutcome.DUPLICATE,
            upload.source,
            str(record.get("requestId") or upload.request_id),
            detail=f"already {record.get('state')}",
        )

    def _read_overrides(self, upload: _Upload) -> _Overrides | IntakeResult:
        """Blob metadata and the manifest; REJECTED when either is invalid."""
        try:
            metadata_partial, marker = metadata_overrides(upload.state.metadata)
            manifest_blob = upload.manifest_blob
            manifest = parse_manifest(manifest_blob.content) if manifest_blob else None
        except ValidationFailed as failed:
            return self._reject(upload, Rejection.of_error(failed))
        return _Overrides(metadata_partial, manifest, marker)

    def _decide_readiness(self, upload: _Upload, overrides: _Overrides) -> _Ready | IntakeResult:
        """Complete when committed (manifest or marker) over a footer, or settled with one."""
        copy_status = upload.state.copy_status
        if copy_status and copy_status.lower() == "pending":
            return self._wait(upload, "a copy into it is running")
        committed_by = (
            "manifest" if overrides.manifest is not None else "marker" if overrides.marker else None
        )
        report: VhdReport | None = None
        if committed_by is not None and upload.pending and upload.pending[0].get("outOfOrder"):
            committed_by = None  # committed before the footer was written: settle rule
        elif committed_by is not None:
            report = self._blobs.inspect_vhd(upload.source)
            if report.detected_format == DetectedFormat.RAW_OR_UNFINISHED:
                committed_by = None  # written out of order: fall back to the settle rule
                upload = replace(upload, out_of_order=True)
        if committed_by is None:
            if not self._settled(upload):
                return self._wait(upload, "waiting for the upload to settle")
            report = report or self._blobs.inspect_vhd(upload.source)
            if report.detected_format == DetectedFormat.RAW_OR_UNFINISHED:
                return self._wait(upload, "the footer is not written yet")
        if report is None:  # pragma: no cover - both branches above set it
            raise AssertionError("no VHD report")
        return _Ready(report, committed_by or "settled")

    def _settled(self, upload: _Upload) -> bool:
        """ETag and length unchanged since they were first observed, for the settle time."""
        if upload.pending is None:
            return False
        observed = upload.pending[0].get("observed") or {}
        if observed.get("etag") != upload.state.etag or observed.get("size") != upload.state.size:
            return False
        since = parse_timestamp(observed.get("since"))
        settle = timedelta(seconds=self._settings.intake.upload_settle_seconds)
        return since is not None and upload.now - since >= settle

    # ---------------------------------------------------------------- outcomes

    def _queue(
        self, upload: _Upload, overrides: _Overrides, ready: _Ready, *, by_event: bool
    ) -> IntakeResult:
        """Build the request document (route, metadata, manifest) and queue it if it is valid."""
        document = vhd_request_document(
            upload.route,
            upload.source,
            metadata_partial=overrides.metadata_partial,
            manifest=overrides.manifest,
            request_id=upload.request_id,
        )
        return self._dispatch.queue(
            upload.key,
            upload.source,
            document,
            ValidationContext(os_disk_size_bytes=ready.report.virtual_size),
            derived_id=upload.request_id,
            done_record={
                "kind": "vhd",
                "url": upload.source,
                "etag": upload.state.etag,
                "fingerprint": upload.fingerprint,
                "committedBy": ready.committed_by,
            },
            now=upload.now,
            by_event=by_event,
        )

    def _wait(self, upload: _Upload, why: str) -> IntakeResult:
        """Keep (or update) the pending record; REJECTED once the upload is abandoned."""
        state, now, source = upload.state, upload.now, upload.source
        record: JsonObject = (
            dict(upload.pending[0])
            if upload.pending
            else {"kind": "vhd", "url": source, "firstSeen": format_timestamp(now)}
        )
        observed = record.get("observed") or {}
        if observed.get("etag") != state.etag or observed.get("size") != state.size:
            record["observed"] = {
                "etag": state.etag,
                "size": state.size,
                "since": format_timestamp(now),
            }
        record["lastCheck"] = format_timestamp(now)
        record["waitingFor"] = why
        if upload.out_of_order:
            record["outOfOrder"] = True
        abandoned = abandoned_after(record, now, self._settings.intake.abandon_seconds)
        if abandoned is not None:
            return self._reject(
                replace(upload, fingerprint=f"{state.etag}|abandoned"),
                _incomplete(upload, abandoned, why),
            )
        self._records.save_pending(upload.key, record, upload.pending)
        logger.info(
            "intake: %s pending: %s", source, why, extra={"source": source, "outcome": "pending"}
        )
        return IntakeResult(IntakeOutcome.PENDING, source, upload.request_id, detail=why)

    def _reject(self, upload: _Upload, rejection: Rejection) -> IntakeResult:
        return self._dispatch.reject(
            key=upload.key,
            source=upload.source,
            request_id=upload.request_id,
            document=upload.base_document,
            done_record={
                "kind": "vhd",
                "url": upload.source,
                "etag": upload.state.etag,
                "fingerprint": upload.fingerprint,
            },
            rejection=rejection,
        )


def _not_page_blob(upload: _Upload) -> Rejection:
    return Rejection(
        "VhdNotPageBlob",
        f"{upload.source} is a {upload.state.blob_type or 'blob of unknown type'}; Azure Compute "
        "Gallery needs the VHD as a page blob. Upload it again as a page blob "
        "(azcopy copy ... --blob-type PageBlob, or az storage blob upload "
        "--type page).",
    )


def _incomplete(upload: _Upload, abandoned: str, why: str) -> Rejection:
    name = upload.source.rsplit("/", 1)[-1]
    return Rejection(
        "UploadIncomplete",
        f"{upload.source} was not ready after {abandoned}: {why}. Finish the upload, then "
        f"write its manifest ({name}.json) or set metadata {READY_MARKER}=true.",
    )
