"""The records intake keeps, each a :class:`~shared.core.documents.DocumentStore`.

What is not ready yet is a *pending* record (the re-check timer looks at each again); what was
queued or rejected is a *done* record, so a duplicate event is recognised. A concurrent change
to a record is not an error: another instance is looking at the same upload or snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.core.documents import KEEP, Change, Document, DocumentStore, StaleWrite, cas_update
from shared.core.errors import TransientError
from shared.core.settings import SettingName
from shared.core.timestamps import format_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

#: A pending record and its ETag, as read.
PendingRecord = tuple[Document, str]
#: The done record's state while its rejection is being dead-lettered (not yet "rejected").
REJECTING = "rejecting"


class IntakeRecords:
    """The pending and the done records."""

    def __init__(self, *, pending: DocumentStore, done: DocumentStore) -> None:
        self._pending = pending
        self._done = done

    def pending_keys(self, limit: int) -> list[str]:
        """At most ``limit`` keys of pending records."""
        return _take(self._pending.list_keys(), limit)

    def read_pending(self, key: str) -> PendingRecord | None:
        return self._pending.read(key)

    def read_done(self, key: str) -> Document | None:
        found = self._done.read(key)
        return None if found is None else found[0]

    def save_pending(
        self, key: str, record: Mapping[str, Any], pending: PendingRecord | None
    ) -> None:
        """Create the record, or replace ``pending`` (the record as read) if it is unchanged."""
        try:
            self._pending.write(key, record, etag=pending[1] if pending else None)
        except StaleWrite:
            logger.debug("intake: pending record %s changed concurrently", key)

    def drop_pending(self, key: str) -> None:
        found = self._pending.read(key)
        if found is None:
            return
        try:
            self._pending.delete(key, etag=found[1])
        except StaleWrite:
            logger.debug("intake: pending record %s changed concurrently; kept", key)

    def claim_rejection(
        self, key: str, decision: Mapping[str, Any], *, now: datetime, retry_seconds: float
    ) -> bool:
        """Be the one instance that dead-letters this upload or snapshot as it is now.

        The VHD's event and its manifest's event can be looked at by two instances at once, and
        both decide to reject: the first to write a ``rejecting`` done record for the same
        content (``decision``: its etag, fingerprint, identity, tag...) dead-letters; the other
        stops. A ``rejecting`` record older than ``retry_seconds`` is the trace of an instance
        that died before dead-lettering: the next look takes it over, so nothing is lost.
        """

        def mutate(current: Document | None) -> tuple[Change, bool]:
            if current is not None and all(current.get(k) == v for k, v in decision.items()):
                if current.get("state") == "rejected":
                    return KEEP, False
                claimed_at = parse_timestamp(current.get("claimedAt"))
                fresh = claimed_at is not None and now - claimed_at < timedelta(
                    seconds=retry_seconds
                )
                if current.get("state") == REJECTING and fresh:
                    return KEEP, False
            return {**decision, "state": REJECTING, "claimedAt": format_timestamp(now)}, True

        return cas_update(self._done, key, mutate, what=f"done record {key}")

    def record_done(self, key: str, record: Mapping[str, Any]) -> None:
        try:
            cas_update(
                self._done,
                key,
                lambda _current: (record, None),
                what=f"done record {key}",
                attempts=5,
            )
        except TransientError:
            logger.warning("intake: done record %s kept changing; not updated", key)


def abandoned_after(record: Mapping[str, Any], now: datetime, abandon_seconds: int) -> str | None:
    """How long a pending record waited, when that is ``abandon_seconds`` or more; else ``None``."""
    first_seen = parse_timestamp(record.get("firstSeen"))
    limit = timedelta(seconds=abandon_seconds)
    if first_seen is not None and now - first_seen >= limit:
        return f"{int(limit.total_seconds())} s ({SettingName.INTAKE_ABANDON_SECONDS})"
    return None


def _take(keys: Iterator[str], limit: int) -> list[str]:
    taken: list[str] = []
    for key in keys:
        if len(taken) >= limit:
            break
        taken.append(key)
    return taken
