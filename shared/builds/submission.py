"""Submitting a build request from outside the queue: validate now, then enqueue it.

``galleryctl submit`` and ``POST /api/builds`` both use this, so a caller learns at once what is
wrong with its request (every field, rule and fix) instead of reading a dead-letter queue later,
and gets the build id to follow. The message id is the request id: submitting the same request
twice is deduplicated by the queue, then by the ledger. A request whose build has already ended
is not sent again: the caller gets that build (``already built as <version>``, or how it failed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.builds.ledger import build_id_for
from shared.builds.records import BuildPhase, BuildRecord, BuildRecords
from shared.contract.decode import decode_document
from shared.contract.parse import parse_build_request
from shared.contract.regions import RegionCatalog, with_known_regions
from shared.contract.rules import ValidationContext
from shared.core.errors import PipelineError, ValidationFailed
from shared.core.messaging import MessageSender, build_request_message
from shared.core.settings import Settings


@dataclass(frozen=True)
class Submitted:
    request_id: str
    build_id: str
    queue: str
    #: The build of this request when it has already ended (nothing was sent), else ``None``.
    existing: BuildRecord | None = None

    @property
    def summary(self) -> str:
        """One line for people: what happened to the submission."""
        if self.existing is None:
            return f"request {self.request_id} sent to {self.queue}"
        if self.existing.phase is BuildPhase.SUCCEEDED:
            return f"request {self.request_id} already built as {self.existing.version}"
        return (
            f"request {self.request_id} already ended: {self.existing.phase.value} "
            f"({self.existing.error_reason or 'no reason recorded'}); to try again, submit it "
            "with a new requestId"
        )


def problems_document(error: ValidationFailed) -> list[dict[str, str]]:
    return [
        {"path": p.path, "rule": p.rule, "message": p.message, "hint": p.hint}
        for p in error.problems
    ]


def _ended_build(records: Callable[[], BuildRecords] | None, build_id: str) -> BuildRecord | None:
    """The build's record if it has ended; ``None`` when unknown, still running, or when the
    records cannot be read (the request is sent then: the queue and the ledger deduplicate)."""
    if records is None:
        return None
    try:
        record = records().get(build_id)
    except PipelineError:
        return None
    return record if record is not None and record.phase.final else None


def submit_request(
    document: Mapping[str, Any] | Any,
    *,
    settings: Settings,
    sender: MessageSender,
    now: datetime,
    records: Callable[[], BuildRecords] | None = None,
    regions: RegionCatalog | None = None,
) -> Submitted:
    """Validate ``document`` (raises :class:`ValidationFailed`) and send it to the build queue
    (raises :class:`~shared.core.errors.TransientError` when the queue is unavailable), unless
    ``records`` shows that its build has already ended. Raw ``bytes``/``str`` (an HTTP body, a
    file) are decoded first: bytes that are no JSON document are a ``ValidationFailed`` too."""
    if isinstance(document, bytes | bytearray | str):
        document = decode_document(document)
    context = with_known_regions(ValidationContext(), document, regions)
    request = parse_build_request(document, settings, now=now, context=context)
    build_id = build_id_for(request.request_id)
    existing = _ended_build(records, build_id)
    if existing is not None:
        return Submitted(request.request_id, build_id, settings.build_queue, existing=existing)
    body = dict(document)
    body["requestId"] = request.request_id
    message = build_request_message(
        body, request_id=request.request_id, correlation_id=request.correlation_id
    )
    sender.send(settings.build_queue, message)
    return Submitted(
        request_id=request.request_id,
        build_id=build_id_for(request.request_id),
        queue=settings.build_queue,
    )
