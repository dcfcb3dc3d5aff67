"""The ``$management`` request/response operations of an entity (and message rendering).

Operation names, request fields and reply fields are those azure-servicebus 7.15 uses
(``azure/servicebus/_common/constants.py`` and ``mgmt_handlers.py``): replies carry
``statusCode``/``statusDescription``/``errorCondition`` application properties and a map body.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from proton import UNDESCRIBED, Array, Data, int32, symbol, timestamp

from devstack.servicebus import codec
from devstack.servicebus.entities import EntityError, Namespace, ReceiveEntity, SendTarget
from devstack.servicebus.store import (
    LockLostError,
    MessageNotFoundError,
    MessageStore,
    NewMessage,
    Settlement,
    StoredMessage,
)

logger = logging.getLogger(__name__)

OP_RENEW_LOCK = "com.microsoft:renew-lock"
OP_PEEK = "com.microsoft:peek-message"
OP_SCHEDULE = "com.microsoft:schedule-message"
OP_CANCEL_SCHEDULED = "com.microsoft:cancel-scheduled-message"
OP_RECEIVE_BY_SEQUENCE = "com.microsoft:receive-by-sequence-number"
OP_UPDATE_DISPOSITION = "com.microsoft:update-disposition"

CONDITION_LOCK_LOST = "com.microsoft:message-lock-lost"
CONDITION_MESSAGE_NOT_FOUND = "com.microsoft:message-not-found"
CONDITION_ARGUMENT_ERROR = "com.microsoft:argument-error"
CONDITION_NOT_IMPLEMENTED = "amqp:not-implemented"
CONDITION_INTERNAL_ERROR = "amqp:internal-error"

# The SDK's names for settlements over the management link (MESSAGE_MGMT_SETTLEMENT_TERM_MAP).
_DISPOSITIONS = {
    "completed": Settlement.COMPLETE,
    "abandoned": Settlement.ABANDON,
    "defered": Settlement.DEFER,
    "deferred": Settlement.DEFER,
    "suspended": Settlement.DEAD_LETTER,
}
# AMQP receiver-settle-mode: first (0) is receive-and-delete, second (1) is peek-lock.
_RECEIVE_AND_DELETE_MODE = 0

DEAD_LETTER_REASON = "DeadLetterReason"
DEAD_LETTER_DESCRIPTION = "DeadLetterErrorDescription"


def render_stored(message: StoredMessage, *, locked: bool) -> bytes:
    """The message as a receiver sees it: broker annotations, header, dead-letter details."""
    annotations: dict[symbol, Any] = {
        symbol("x-opt-sequence-number"): message.seq,
        symbol("x-opt-enqueued-time"): timestamp(message.enqueued_ms),
        symbol("x-opt-message-state"): int32(message.state.code),
    }
    if locked and message.locked_until_ms is not None:
        annotations[symbol("x-opt-locked-until")] = timestamp(message.locked_until_ms)
    if message.state.value == "scheduled":
        annotations[codec.SCHEDULED_ENQUEUE_TIME] = timestamp(message.visible_ms)
    extra: dict[str, Any] | None = None
    if message.dead_letter_reason is not None:
        extra = {
            DEAD_LETTER_REASON: message.dead_letter_reason,
            DEAD_LETTER_DESCRIPTION: message.dead_letter_description or "",
        }
    return codec.render(
        message.payload,
        delivery_count=message.delivery_count,
        annotations=annotations,
        application_properties=extra,
    )


@dataclass(frozen=True)
class ManagementReply:
    """What to send back on the management reply link."""

    status: int
    description: str
    condition: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


class ManagementError(Exception):
    """A request that fails with a status code and an error condition."""

    def __init__(self, status: int, condition: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.condition = condition
        self.description = description


def _elements(value: Any) -> list[Any]:
    if isinstance(value, Array):
        return list(value.elements)
    if isinstance(value, list | tuple):
        return list(value)
    if value is None:
        return []
    return [value]


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict):
        raise ManagementError(400, CONDITION_ARGUMENT_ERROR, "The request body must be a map.")
    for key, value in body.items():
        if str(key) == name:
            return value
    return None


def _required(body: Any, name: str) -> Any:
    value = _field(body, name)
    if value is None:
        raise ManagementError(
            400, CONDITION_ARGUMENT_ERROR, f"The request field '{name}' is missing."
        )
    return value


def _lock_tokens(body: Any) -> list[uuid.UUID]:
    tokens: list[uuid.UUID] = []
    for item in _elements(_required(body, "lock-tokens")):
        try:
            tokens.append(item if isinstance(item, uuid.UUID) else uuid.UUID(str(item)))
        except ValueError as error:
            raise ManagementError(
                400, CONDITION_ARGUMENT_ERROR, f"'{item}' is not a lock token."
            ) from error
    return tokens


def _sequence_numbers(body: Any) -> list[int]:
    return [int(item) for item in _elements(_required(body, "sequence-numbers"))]


def _array(element_type: int, values: Iterable[Any]) -> Array:
    # proton annotates the descriptor as data, but UNDESCRIBED is its documented marker.
    return Array(UNDESCRIBED, element_type, *values)  # type: ignore[arg-type]


class ManagementService:
    """Executes management operations against the store.

    ``on_available`` is told which entity paths may have new deliverable messages, so the
    broker can dispatch them to waiting receivers.
    """

    def __init__(
        self,
        namespace: Namespace,
        store: MessageStore,
        clock_ms: Callable[[], int],
        on_available: Callable[[set[str]], None],
    ) -> None:
        self._namespace = namespace
        self._store = store
        self._clock_ms = clock_ms
        self._on_available = on_available

    def handle(self, node: str, operation: str, body: Any) -> ManagementReply:
        """Run one operation addressed to ``node`` (``<entity>/$management``)."""
        try:
            send, receive = self._namespace.management_node(node)
            return self._dispatch(operation, body, send, receive)
        except EntityError as error:
            return ManagementReply(404, error.description, error.condition)
        except ManagementError as error:
            return ManagementReply(error.status, error.description, error.condition)
        except LockLostError as error:
            return ManagementReply(410, str(error), CONDITION_LOCK_LOST)
        except MessageNotFoundError as error:
            return ManagementReply(404, str(error), CONDITION_MESSAGE_NOT_FOUND)
        except codec.CodecError as error:
            return ManagementReply(
                400, f"A message could not be decoded: {error}", CONDITION_ARGUMENT_ERROR
            )
        except Exception as error:
            logger.exception("management operation %s on %s failed", operation, node)
            return ManagementReply(500, f"Internal error: {error}", CONDITION_INTERNAL_ERROR)

    def _need_receive(self, receive: ReceiveEntity | None, operation: str) -> ReceiveEntity:
        if receive is None:
            raise ManagementError(
                400, CONDITION_ARGUMENT_ERROR, f"{operation} is not supported on a topic."
            )
        return receive

    def _need_send(self, send: SendTarget | None, operation: str) -> SendTarget:
        if send is None:
            raise ManagementError(
                400,
                CONDITION_ARGUMENT_ERROR,
                f"{operation} is not supported on a subscription or dead-letter queue.",
            )
        return send

    def _dispatch(
        self,
        operation: str,
        body: Any,
        send: SendTarget | None,
        receive: ReceiveEntity | None,
    ) -> ManagementReply:
        now = self._clock_ms()
        if operation == OP_RENEW_LOCK:
            self._need_receive(receive, operation)
            expirations = [
                timestamp(self._store.renew_lock(token, self._namespace.policy, now))
                for token in _lock_tokens(body)
            ]
            return ManagementReply(
                200, "OK", body={"expirations": _array(Data.TIMESTAMP, expirations)}
            )
        if operation == OP_PEEK:
            entity = self._need_receive(receive, operation)
            from_seq = int(_field(body, "from-sequence-number") or 1)
            count = int(_field(body, "message-count") or 1)
            peeked = self._store.peek(entity.path, from_seq, count)
            if not peeked:
                return ManagementReply(204, "No messages to peek.")
            return ManagementReply(
                200,
                "OK",
                body={"messages": [{"message": render_stored(m, locked=False)} for m in peeked]},
            )
        if operation == OP_RECEIVE_BY_SEQUENCE:
            entity = self._need_receive(receive, operation)
            mode = _field(body, "receiver-settle-mode")
            delete = mode is not None and int(mode) == _RECEIVE_AND_DELETE_MODE
            found = self._store.receive_deferred(
                entity.policy, _sequence_numbers(body), now, delete=delete
            )
            items: list[dict[str, Any]] = []
            for message in found:
                item: dict[str, Any] = {"message": render_stored(message, locked=not delete)}
                if not delete and message.lock_token is not None:
                    item["lock-token"] = message.lock_token
                items.append(item)
            return ManagementReply(200, "OK", body={"messages": items})
        if operation == OP_UPDATE_DISPOSITION:
            self._need_receive(receive, operation)
            status = str(_required(body, "disposition-status")).lower()
            settlement = _DISPOSITIONS.get(status)
            if settlement is None:
                raise ManagementError(
                    400, CONDITION_ARGUMENT_ERROR, f"Unknown disposition-status '{status}'."
                )
            reason = _field(body, "deadletter-reason")
            description = _field(body, "deadletter-description")
            touched: set[str] = set()
            for token in _lock_tokens(body):
                settled = self._store.settle(
                    token,
                    settlement,
                    self._namespace.policy,
                    now,
                    reason=None if reason is None else str(reason),
                    description=None if description is None else str(description),
                )
                touched.add(settled.entity)
                dead_letter_path = self._namespace.policy(settled.entity).dead_letter_path
                if dead_letter_path:
                    touched.add(dead_letter_path)
            self._on_available(touched)
            return ManagementReply(200, "OK")
        if operation == OP_SCHEDULE:
            target = self._need_send(send, operation)
            new_messages: list[NewMessage] = []
            for item in _elements(_required(body, "messages")):
                payload = _field(item, "message")
                if not isinstance(payload, bytes | bytearray | memoryview):
                    raise ManagementError(
                        400,
                        CONDITION_ARGUMENT_ERROR,
                        "Each scheduled message needs 'message' bytes.",
                    )
                raw = bytes(payload)
                facts = codec.read_facts(raw)
                if facts.scheduled_enqueue_ms is None:
                    raise ManagementError(
                        400,
                        CONDITION_ARGUMENT_ERROR,
                        "A scheduled message needs the x-opt-scheduled-enqueue-time annotation.",
                    )
                new_messages.append(
                    NewMessage(raw, facts.message_id, facts.ttl_ms, facts.scheduled_enqueue_ms)
                )
            seqs = self._store.enqueue(
                target.path,
                target.targets,
                new_messages,
                now_ms=now,
                default_ttl_ms=target.default_ttl_ms,
                duplicate_window_ms=target.duplicate_window_ms,
            )
            self._on_available(set(target.targets))
            # A duplicate scheduled message is dropped; like the service, report 0 for it.
            return ManagementReply(
                200, "OK", body={"sequence-numbers": _array(Data.LONG, (s or 0 for s in seqs))}
            )
        if operation == OP_CANCEL_SCHEDULED:
            target = self._need_send(send, operation)
            self._store.cancel_scheduled(target.path, _sequence_numbers(body))
            return ManagementReply(200, "OK")
        raise ManagementError(
            501,
            CONDITION_NOT_IMPLEMENTED,
            f"The operation '{operation}' is not supported by the emulator.",
        )
