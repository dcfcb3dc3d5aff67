"""Durable message state of the emulator in SQLite, with Service Bus semantics.

Every state change (enqueue, lock, settle, delivery-count increment, schedule, defer,
dead-letter, expiry) is one committed transaction, made before the broker acknowledges
anything to a client. The database runs in WAL mode with ``synchronous=NORMAL``: a committed
change survives the emulator being killed (it does not claim to survive a power cut).

Entities are addressed by their canonical lower-case path: ``image-builds``,
``image-builds/$deadletterqueue``, ``topic/subscriptions/sub`` and a topic's own path (which
holds only its scheduled messages until they fan out).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEAD_LETTER_SUFFIX = "/$deadletterqueue"

REASON_MAX_DELIVERY = "MaxDeliveryCountExceeded"
REASON_TTL_EXPIRED = "TTLExpiredException"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (
    entity TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    entity TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    payload BLOB NOT NULL,
    message_id TEXT,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    enqueued_ms INTEGER NOT NULL,
    visible_ms INTEGER NOT NULL,
    ttl_ms INTEGER,
    expires_ms INTEGER,
    lock_token TEXT UNIQUE,
    locked_until_ms INTEGER,
    dead_letter_reason TEXT,
    dead_letter_description TEXT,
    PRIMARY KEY (entity, seq)
);
CREATE INDEX IF NOT EXISTS messages_available ON messages (entity, state, lock_token, seq);
CREATE INDEX IF NOT EXISTS messages_locked ON messages (locked_until_ms)
    WHERE lock_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_scheduled ON messages (visible_ms) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS messages_expiring ON messages (expires_ms)
    WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS duplicates (
    entity TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (entity, message_id)
);
"""


class MessageState(StrEnum):
    """Lifecycle state of a stored message (as in ``ServiceBusMessageState``)."""

    ACTIVE = "active"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"

    @property
    def code(self) -> int:
        """The value of the ``x-opt-message-state`` annotation."""
        return {"active": 0, "deferred": 1, "scheduled": 2}[self.value]


class Settlement(StrEnum):
    """What a receiver did with a locked message."""

    COMPLETE = "complete"
    ABANDON = "abandon"
    RELEASE = "release"
    DEFER = "defer"
    DEAD_LETTER = "dead-letter"


class LockLostError(Exception):
    """The lock token is unknown or its lock expired (``com.microsoft:message-lock-lost``)."""


class MessageNotFoundError(Exception):
    """No message with that sequence number (``com.microsoft:message-not-found``)."""


@dataclass(frozen=True)
class ReceivePolicy:
    """Settings of a receivable entity the store needs for its transitions."""

    path: str
    lock_duration_ms: int
    max_delivery_count: int | None
    dead_letter_path: str | None
    dead_letter_on_expiration: bool


@dataclass(frozen=True)
class NewMessage:
    """A message accepted from a client, ready to be stored."""

    payload: bytes
    message_id: str | None
    ttl_ms: int | None
    scheduled_enqueue_ms: int | None


@dataclass(frozen=True)
class StoredMessage:
    """One row of the ``messages`` table."""

    entity: str
    seq: int
    state: MessageState
    payload: bytes
    message_id: str | None
    delivery_count: int
    enqueued_ms: int
    visible_ms: int
    ttl_ms: int | None
    expires_ms: int | None
    lock_token: uuid.UUID | None
    locked_until_ms: int | None
    dead_letter_reason: str | None
    dead_letter_description: str | None


_COLUMNS = (
    "entity, seq, state, payload, message_id, delivery_count, enqueued_ms, visible_ms, ttl_ms, "
    "expires_ms, lock_token, locked_until_ms, dead_letter_reason, dead_letter_description"
)


def _row(row: Any) -> StoredMessage:
    (
        entity,
        seq,
        state,
        payload,
        message_id,
        delivery_count,
        enqueued_ms,
        visible_ms,
        ttl_ms,
        expires_ms,
        lock_token,
        locked_until_ms,
        reason,
        description,
    ) = tuple(row)
    return StoredMessage(
        entity=str(entity),
        seq=int(seq),
        state=MessageState(str(state)),
        payload=bytes(payload),
        message_id=None if message_id is None else str(message_id),
        delivery_count=int(delivery_count),
        enqueued_ms=int(enqueued_ms),
        visible_ms=int(visible_ms),
        ttl_ms=None if ttl_ms is None else int(ttl_ms),
        expires_ms=None if expires_ms is None else int(expires_ms),
        lock_token=None if lock_token is None else uuid.UUID(str(lock_token)),
        locked_until_ms=None if locked_until_ms is None else int(locked_until_ms),
        dead_letter_reason=None if reason is None else str(reason),
        dead_letter_description=None if description is None else str(description),
    )


PolicyLookup = Callable[[str], ReceivePolicy]


class MessageStore:
    """All message state of the emulator; one instance per process, used from one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Checkpoint the WAL and close the database."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- enqueue --------------------------------------------------------------------------

    def _next_seq(self, db: sqlite3.Connection, entity: str) -> int:
        row = db.execute(
            "INSERT INTO sequences (entity, last) VALUES (?, 1) "
            "ON CONFLICT (entity) DO UPDATE SET last = last + 1 RETURNING last",
            (entity,),
        ).fetchone()
        return int(row[0])

    def _is_duplicate(
        self, db: sqlite3.Connection, source: str, message_id: str, now_ms: int, window_ms: int
    ) -> bool:
        row = db.execute(
            "SELECT seen_ms FROM duplicates WHERE entity = ? AND message_id = ?",
            (source, message_id),
        ).fetchone()
        if row is not None and int(row[0]) > now_ms - window_ms:
            return True
        db.execute(
            "INSERT INTO duplicates (entity, message_id, seen_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (entity, message_id) DO UPDATE SET seen_ms = excluded.seen_ms",
            (source, message_id, now_ms),
        )
        return False

    def _insert(
        self,
        db: sqlite3.Connection,
        entity: str,
        seq: int,
        state: MessageState,
        message: NewMessage,
        *,
        enqueued_ms: int,
        visible_ms: int,
        ttl_ms: int | None,
    ) -> None:
        expires = None if ttl_ms is None or state is MessageState.SCHEDULED else visible_ms + ttl_ms
        db.execute(
            "INSERT INTO messages (entity, seq, state, payload, message_id, enqueued_ms, "
            "visible_ms, ttl_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entity,
                seq,
                state.value,
                message.payload,
                message.message_id,
                enqueued_ms,
                visible_ms,
                ttl_ms,
                expires,
            ),
        )

    def enqueue(
        self,
        source: str,
        targets: Sequence[str],
        messages: Sequence[NewMessage],
        *,
        now_ms: int,
        default_ttl_ms: int | None,
        duplicate_window_ms: int | None,
    ) -> list[int | None]:
        """Store messages sent to ``source`` (a queue, or a topic fanning out to ``targets``).

        Returns each message's sequence number, or ``None`` for a dropped duplicate. A message
        whose scheduled enqueue time is in the future is stored as scheduled: in the queue
        itself, or for a topic in the topic's own path until it fans out.
        """
        results: list[int | None] = []
        with self._transaction() as db:
            for message in messages:
                if (
                    duplicate_window_ms is not None
                    and message.message_id is not None
                    and self._is_duplicate(
                        db, source, message.message_id, now_ms, duplicate_window_ms
                    )
                ):
                    logger.info("duplicate message id %r on %s dropped", message.message_id, source)
                    results.append(None)
                    continue
                ttl = message.ttl_ms
                if default_ttl_ms is not None:
                    ttl = default_ttl_ms if ttl is None else min(ttl, default_ttl_ms)
                seq = self._next_seq(db, source)
                scheduled = message.scheduled_enqueue_ms
                if scheduled is not None and scheduled > now_ms:
                    self._insert(
                        db,
                        source,
                        seq,
                        MessageState.SCHEDULED,
                        message,
                        enqueued_ms=scheduled,
                        visible_ms=scheduled,
                        ttl_ms=ttl,
                    )
                else:
                    for target in targets:
                        self._insert(
                            db,
                            target,
                            seq,
                            MessageState.ACTIVE,
                            message,
                            enqueued_ms=now_ms,
                            visible_ms=now_ms,
                            ttl_ms=ttl,
                        )
                results.append(seq)
            db.execute(
                "DELETE FROM duplicates WHERE seen_ms < ?",
                (now_ms - (duplicate_window_ms or 0) - 86_400_000,),
            )
        return results

    # -- receive --------------------------------------------------------------------------

    def lock_next(self, policy: ReceivePolicy, now_ms: int) -> StoredMessage | None:
        """Lock the first available message of the entity (peek-lock) and return it."""
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE entity = ? AND state = 'active' "
                "AND lock_token IS NULL AND (expires_ms IS NULL OR expires_ms > ?) "
                "ORDER BY seq LIMIT 1",
                (policy.path, now_ms),
            ).fetchone()
            if row is None:
                return None
            token = uuid.uuid4()
            until = now_ms + policy.lock_duration_ms
            db.execute(
                "UPDATE messages SET lock_token = ?, locked_until_ms = ? "
                "WHERE entity = ? AND seq = ?",
                (str(token), until, policy.path, row[1]),
            )
        message = _row(row)
        return _replace_lock(message, token, until)

    def take_next(self, policy: ReceivePolicy, now_ms: int) -> StoredMessage | None:
        """Remove and return the first available message (receive-and-delete)."""
        with self._transaction() as db:
            row = db.execute(
                f"DELETE FROM messages WHERE rowid = (SELECT rowid FROM messages WHERE entity = ? "
                "AND state = 'active' AND lock_token IS NULL "
                "AND (expires_ms IS NULL OR expires_ms > ?) ORDER BY seq LIMIT 1) "
                f"RETURNING {_COLUMNS}",
                (policy.path, now_ms),
            ).fetchone()
        return None if row is None else _row(row)

    def peek(self, entity: str, from_seq: int, count: int) -> list[StoredMessage]:
        """Messages of the entity from ``from_seq`` on, without locking them."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE entity = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (entity, from_seq, max(count, 0)),
        ).fetchall()
        return [_row(row) for row in rows]

    def receive_deferred(
        self, policy: ReceivePolicy, seqs: Sequence[int], now_ms: int, *, delete: bool
    ) -> list[StoredMessage]:
        """Lock (or with ``delete`` remove) deferred messages by sequence number."""
        results: list[StoredMessage] = []
        with self._transaction() as db:
            for seq in seqs:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE entity = ? AND seq = ? "
                    "AND state = 'deferred'",
                    (policy.path, seq),
                ).fetchone()
                if row is None:
                    raise MessageNotFoundError(
                        f"Failed to lock one or more specified messages. "
                        f"The message with sequence number {seq} was not found or is not deferred."
                    )
                message = _row(row)
                if message.lock_token is not None and (message.locked_until_ms or 0) > now_ms:
                    raise MessageNotFoundError(
                        f"The deferred message with sequence number {seq} "
                        "is locked by another receiver."
                    )
                if delete:
                    db.execute(
                        "DELETE FROM messages WHERE entity = ? AND seq = ?", (policy.path, seq)
                    )
                    results.append(message)
                    continue
                token = uuid.uuid4()
                until = now_ms + policy.lock_duration_ms
                db.execute(
                    "UPDATE messages SET lock_token = ?, locked_until_ms = ? "
                    "WHERE entity = ? AND seq = ?",
                    (str(token), until, policy.path, seq),
                )
                results.append(_replace_lock(message, token, until))
        return results

    # -- settle ---------------------------------------------------------------------------

    def _locked(self, db: sqlite3.Connection, token: uuid.UUID, now_ms: int) -> StoredMessage:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE lock_token = ?", (str(token),)
        ).fetchone()
        if row is None or row[11] is None or int(row[11]) <= now_ms:
            raise LockLostError(
                "The lock supplied is invalid. Either the lock expired, or the message has already "
                "been removed from the queue, or was received by a different receiver instance."
            )
        return _row(row)

    def _move_to_dead_letter(
        self,
        db: sqlite3.Connection,
        message: StoredMessage,
        dead_letter_path: str,
        reason: str,
        description: str,
        *,
        delivery_count: int,
    ) -> None:
        db.execute(
            "UPDATE messages SET entity = ?, state = 'active', lock_token = NULL, "
            "locked_until_ms = NULL, expires_ms = NULL, delivery_count = ?, "
            "dead_letter_reason = ?, dead_letter_description = ? WHERE entity = ? AND seq = ?",
            (
                dead_letter_path,
                delivery_count,
                reason,
                description,
                message.entity,
                message.seq,
            ),
        )

    def _unlock(
        self,
        db: sqlite3.Connection,
        message: StoredMessage,
        policy: ReceivePolicy,
        *,
        increment: bool,
    ) -> None:
        count = message.delivery_count + (1 if increment else 0)
        if (
            increment
            and policy.max_delivery_count is not None
            and policy.dead_letter_path is not None
            and count >= policy.max_delivery_count
        ):
            logger.info(
                "%s seq %d dead-lettered after %d delivery attempts",
                message.entity,
                message.seq,
                count,
            )
            self._move_to_dead_letter(
                db,
                message,
                policy.dead_letter_path,
                REASON_MAX_DELIVERY,
                (
                    f"Message could not be consumed after {policy.max_delivery_count} "
                    "delivery attempts."
                ),
                delivery_count=count,
            )
            return
        db.execute(
            "UPDATE messages SET lock_token = NULL, locked_until_ms = NULL, delivery_count = ? "
            "WHERE entity = ? AND seq = ?",
            (count, message.entity, message.seq),
        )

    def settle(
        self,
        token: uuid.UUID,
        settlement: Settlement,
        policies: PolicyLookup,
        now_ms: int,
        *,
        reason: str | None = None,
        description: str | None = None,
    ) -> StoredMessage:
        """Apply a receiver's settlement to the message locked by ``token``.

        Raises :class:`LockLostError` when the lock is unknown or expired.
        """
        with self._transaction() as db:
            message = self._locked(db, token, now_ms)
            policy = policies(message.entity)
            if settlement is Settlement.COMPLETE:
                db.execute(
                    "DELETE FROM messages WHERE entity = ? AND seq = ?",
                    (message.entity, message.seq),
                )
            elif settlement is Settlement.ABANDON:
                self._unlock(db, message, policy, increment=True)
            elif settlement is Settlement.RELEASE:
                self._unlock(db, message, policy, increment=False)
            elif settlement is Settlement.DEFER:
                db.execute(
                    "UPDATE messages SET state = 'deferred', lock_token = NULL, "
                    "locked_until_ms = NULL WHERE entity = ? AND seq = ?",
                    (message.entity, message.seq),
                )
            elif settlement is Settlement.DEAD_LETTER:
                if policy.dead_letter_path is None:
                    # Dead-lettering from a dead-letter queue: real Service Bus refuses it.
                    raise LockLostError(
                        "Dead-lettering a message from a dead-letter queue is not allowed."
                    )
                self._move_to_dead_letter(
                    db,
                    message,
                    policy.dead_letter_path,
                    reason or "",
                    description or "",
                    delivery_count=message.delivery_count,
                )
        return message

    def renew_lock(self, token: uuid.UUID, policies: PolicyLookup, now_ms: int) -> int:
        """Extend the lock by the entity's lock duration; return the new locked-until (ms)."""
        with self._transaction() as db:
            message = self._locked(db, token, now_ms)
            until = now_ms + policies(message.entity).lock_duration_ms
            db.execute(
                "UPDATE messages SET locked_until_ms = ? WHERE entity = ? AND seq = ?",
                (until, message.entity, message.seq),
            )
        return until

    def cancel_scheduled(self, entity: str, seqs: Sequence[int]) -> None:
        """Remove scheduled messages; :class:`MessageNotFoundError` if one is not scheduled."""
        with self._transaction() as db:
            for seq in seqs:
                deleted = db.execute(
                    "DELETE FROM messages WHERE entity = ? AND seq = ? AND state = 'scheduled'",
                    (entity, seq),
                ).rowcount
                if deleted == 0:
                    raise MessageNotFoundError(
                        f"The scheduled message with sequence number {seq} was not found; "
                        "it may already have been enqueued or cancelled."
                    )

    # -- timers ---------------------------------------------------------------------------

    def expire_locks(self, policies: PolicyLookup, now_ms: int) -> set[str]:
        """Release expired locks (delivery count + 1, dead-letter past the maximum).

        Returns the entities whose messages became available.
        """
        touched: set[str] = set()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE lock_token IS NOT NULL "
                "AND locked_until_ms <= ?",
                (now_ms,),
            ).fetchall()
            for row in rows:
                message = _row(row)
                policy = policies(message.entity)
                logger.info(
                    "lock expired on %s seq %d (delivery count %d)",
                    message.entity,
                    message.seq,
                    message.delivery_count + 1,
                )
                self._unlock(db, message, policy, increment=True)
                touched.add(message.entity)
                if policy.dead_letter_path:
                    touched.add(policy.dead_letter_path)
        return touched

    def release_all_locks(self, policies: PolicyLookup) -> int:
        """After a restart: every lock is lost, so each locked message counts one delivery."""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE lock_token IS NOT NULL"
            ).fetchall()
            for row in rows:
                message = _row(row)
                self._unlock(db, message, policies(message.entity), increment=True)
        return len(rows)

    def activate_scheduled(self, fan_out: Callable[[str], Sequence[str]], now_ms: int) -> set[str]:
        """Scheduled messages whose time has come become active (topics fan out now)."""
        touched: set[str] = set()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE state = 'scheduled' AND visible_ms <= ?",
                (now_ms,),
            ).fetchall()
            for row in rows:
                message = _row(row)
                targets = list(fan_out(message.entity))
                db.execute(
                    "DELETE FROM messages WHERE entity = ? AND seq = ?",
                    (message.entity, message.seq),
                )
                for target in targets:
                    expires = None if message.ttl_ms is None else now_ms + message.ttl_ms
                    db.execute(
                        "INSERT INTO messages (entity, seq, state, payload, message_id, "
                        "enqueued_ms, visible_ms, ttl_ms, expires_ms) "
                        "VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?)",
                        (
                            target,
                            message.seq,
                            message.payload,
                            message.message_id,
                            now_ms,
                            now_ms,
                            message.ttl_ms,
                            expires,
                        ),
                    )
                    touched.add(target)
        return touched

    def expire_messages(self, policies: PolicyLookup, now_ms: int) -> set[str]:
        """Active, unlocked messages past their TTL are dead-lettered or dropped."""
        touched: set[str] = set()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE expires_ms IS NOT NULL "
                "AND expires_ms <= ? AND lock_token IS NULL AND state != 'scheduled'",
                (now_ms,),
            ).fetchall()
            for row in rows:
                message = _row(row)
                policy = policies(message.entity)
                if policy.dead_letter_on_expiration and policy.dead_letter_path is not None:
                    self._move_to_dead_letter(
                        db,
                        message,
                        policy.dead_letter_path,
                        REASON_TTL_EXPIRED,
                        "The message expired and was dead lettered.",
                        delivery_count=message.delivery_count,
                    )
                    touched.add(policy.dead_letter_path)
                else:
                    db.execute(
                        "DELETE FROM messages WHERE entity = ? AND seq = ?",
                        (message.entity, message.seq),
                    )
                logger.info("%s seq %d expired (TTL)", message.entity, message.seq)
        return touched

    def count(self, entity: str) -> int:
        """How many messages the entity holds (any state)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE entity = ?", (entity,)
        ).fetchone()
        return int(row[0])


def _replace_lock(message: StoredMessage, token: uuid.UUID, until: int) -> StoredMessage:
    return dataclasses.replace(message, lock_token=token, locked_until_ms=until)
