"""The emulated namespace: which addresses exist and how each one behaves.

Addresses are matched case-insensitively, with or without the ``amqps://host/`` prefix the SDK
puts on link addresses:

* ``queue`` — send and receive;
* ``topic`` — send only; a message fans out to every subscription (no filters or rules);
* ``topic/Subscriptions/sub`` — receive;
* ``<queue or subscription>/$DeadLetterQueue`` — receive only;
* ``<entity>/$management`` — the request/response node of an entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from devstack.servicebus.config import NEVER_EXPIRES_S, NamespaceConfig, ReceiveSettings
from devstack.servicebus.store import DEAD_LETTER_SUFFIX, ReceivePolicy

MANAGEMENT_SUFFIX = "/$management"
CBS_NODE = "$cbs"

CONDITION_NOT_FOUND = "amqp:not-found"
CONDITION_NOT_ALLOWED = "amqp:not-allowed"


class EntityError(Exception):
    """An address that cannot be attached, with the AMQP error condition to report."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


@dataclass(frozen=True)
class SendTarget:
    """An entity that accepts messages: a queue, or a topic that fans out."""

    path: str
    name: str
    targets: tuple[str, ...]
    default_ttl_ms: int | None
    duplicate_window_ms: int | None

    @property
    def is_topic(self) -> bool:
        return self.targets != (self.path,)


@dataclass(frozen=True)
class ReceiveEntity:
    """An entity messages are received from: queue, subscription or a dead-letter queue."""

    name: str
    policy: ReceivePolicy

    @property
    def path(self) -> str:
        return self.policy.path


def _ms(seconds: float) -> int | None:
    return None if seconds >= NEVER_EXPIRES_S else int(seconds * 1000)


def normalise_address(address: str | None) -> str:
    """``amqps://ns/Queue/`` -> ``queue``: no scheme or host, no edge slashes, lower case."""
    text = (address or "").strip()
    if "://" in text:
        text = urlsplit(text).path
    return text.strip("/").lower()


class Namespace:
    """Every entity of the emulator, built from a :class:`NamespaceConfig`."""

    def __init__(self, config: NamespaceConfig) -> None:
        self._send: dict[str, SendTarget] = {}
        self._receive: dict[str, ReceiveEntity] = {}
        self._topics: set[str] = set()
        for queue in config.queues:
            path = queue.name.lower()
            self._send[path] = SendTarget(
                path=path,
                name=queue.name,
                targets=(path,),
                default_ttl_ms=_ms(min(queue.send.default_ttl_s, queue.receive.default_ttl_s)),
                duplicate_window_ms=(
                    int(queue.send.duplicate_window_s * 1000)
                    if queue.send.requires_duplicate_detection
                    else None
                ),
            )
            self._add_receivable(path, queue.name, queue.receive)
        for topic in config.topics:
            path = topic.name.lower()
            self._topics.add(path)
            subscription_paths: list[str] = []
            for subscription in topic.subscriptions:
                sub_path = f"{path}/subscriptions/{subscription.name.lower()}"
                subscription_paths.append(sub_path)
                self._add_receivable(
                    sub_path,
                    f"{topic.name}/Subscriptions/{subscription.name}",
                    subscription.receive,
                )
            self._send[path] = SendTarget(
                path=path,
                name=topic.name,
                targets=tuple(subscription_paths),
                default_ttl_ms=_ms(topic.send.default_ttl_s),
                duplicate_window_ms=(
                    int(topic.send.duplicate_window_s * 1000)
                    if topic.send.requires_duplicate_detection
                    else None
                ),
            )

    def _add_receivable(self, path: str, name: str, settings: ReceiveSettings) -> None:
        lock_ms = int(settings.lock_duration_s * 1000)
        dead_letter_path = path + DEAD_LETTER_SUFFIX
        self._receive[path] = ReceiveEntity(
            name=name,
            policy=ReceivePolicy(
                path=path,
                lock_duration_ms=lock_ms,
                max_delivery_count=settings.max_delivery_count,
                dead_letter_path=dead_letter_path,
                dead_letter_on_expiration=settings.dead_lettering_on_expiration,
            ),
        )
        self._receive[dead_letter_path] = ReceiveEntity(
            name=name + "/$DeadLetterQueue",
            policy=ReceivePolicy(
                path=dead_letter_path,
                lock_duration_ms=lock_ms,
                max_delivery_count=None,
                dead_letter_path=None,
                dead_letter_on_expiration=False,
            ),
        )

    @staticmethod
    def _not_found(address: str) -> EntityError:
        return EntityError(
            CONDITION_NOT_FOUND,
            f"The messaging entity 'sb://127.0.0.1/{address}' could not be found. "
            "To know more visit https://aka.ms/sbResourceMgrExceptions.",
        )

    def send_target(self, address: str | None) -> SendTarget:
        """The entity a sender link (or a schedule request) addresses."""
        path = normalise_address(address)
        target = self._send.get(path)
        if target is not None:
            return target
        if path in self._receive:
            raise EntityError(
                CONDITION_NOT_ALLOWED,
                f"Cannot send to '{path}': it is a subscription or a dead-letter queue.",
            )
        raise self._not_found(path)

    def receive_entity(self, address: str | None) -> ReceiveEntity:
        """The entity a receiver link addresses."""
        path = normalise_address(address)
        entity = self._receive.get(path)
        if entity is not None:
            return entity
        if path in self._topics:
            raise EntityError(
                CONDITION_NOT_ALLOWED,
                f"Cannot receive from topic '{path}': receive from one of its subscriptions.",
            )
        raise self._not_found(path)

    def management_node(
        self, address: str | None
    ) -> tuple[SendTarget | None, ReceiveEntity | None]:
        """The entity behind ``<entity>/$management``: its send side, receive side, or both."""
        path = normalise_address(address)
        if not path.endswith(MANAGEMENT_SUFFIX):
            raise self._not_found(path)
        entity_path = path[: -len(MANAGEMENT_SUFFIX)]
        send = self._send.get(entity_path)
        receive = self._receive.get(entity_path)
        if send is None and receive is None:
            raise self._not_found(entity_path)
        return send, receive

    def knows(self, address: str | None) -> bool:
        """Whether the address names an entity (or an entity's ``$management`` node)."""
        path = normalise_address(address)
        if path.endswith(MANAGEMENT_SUFFIX):
            path = path[: -len(MANAGEMENT_SUFFIX)]
        return path in self._send or path in self._receive

    def policy(self, path: str) -> ReceivePolicy:
        """The receive policy of a stored entity path (used by the store's transitions)."""
        entity = self._receive.get(path)
        if entity is not None:
            return entity.policy
        # A topic's own path only holds scheduled messages; they never get locked.
        return ReceivePolicy(
            path=path,
            lock_duration_ms=60_000,
            max_delivery_count=None,
            dead_letter_path=None,
            dead_letter_on_expiration=False,
        )

    def fan_out(self, path: str) -> tuple[str, ...]:
        """Where a scheduled message stored under ``path`` goes once it is due."""
        target = self._send.get(path)
        return target.targets if target is not None else (path,)

    def receivable_paths(self) -> list[str]:
        return sorted(self._receive)
