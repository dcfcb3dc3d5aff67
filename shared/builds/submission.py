"""Submitting a build request from outside the queue: validate now, then enqueue it.

``galleryctl submit`` and ``POST /api/builds`` both use this, so a caller learns at once what is
wrong with its request (every field, rule and fix) instead of reading a dead-letter queue later,
and gets the build id to follow. The message id is the request id: submitting the same request
twice is deduplicated by the queue, then by the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.builds.ledger import build_id_for
from shared.contract.parse import parse_build_request
from shared.core.errors import ValidationFailed
from shared.core.messaging import MessageSender, build_request_message
from shared.core.settings import Settings


@dataclass(frozen=True)
class Submitted:
    request_id: str
    build_id: str
    queue: str


def problems_document(error: ValidationFailed) -> list[dict[str, str]]:
    return [
        {"path": p.path, "rule": p.rule, "message": p.message, "hint": p.hint}
        for p in error.problems
    ]


def submit_request(
    document: Mapping[str, Any] | Any,
    *,
    settings: Settings,
    sender: MessageSender,
    now: datetime,
) -> Submitted:
    """Validate ``document`` (raises :class:`ValidationFailed`) and send it to the build queue
    (raises :class:`~shared.core.errors.TransientError` when the queue is unavailable)."""
    request = parse_build_request(document, settings, now=now)
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
