"""The AMQP 1.0 server: a Qpid Proton reactor handler speaking Service Bus to azure-servicebus.

What the SDK (pyamqp, 7.15) expects and this handler does:

* SASL ANONYMOUS, then a ``$cbs`` sender/receiver link pair; ``put-token`` is answered with
  ``status-code`` 202 and the request's message id as correlation id (tokens are not checked).
* Sender links target an entity (``amqps://host/queue``); each transfer is stored (a batch is
  split into its messages) and only then accepted.
* Receiver links get 16-byte delivery tags, the lock token's ``bytes_le``. Peek-lock links
  attach with rcv-settle-mode *second*: the client's outcome is applied to the store, echoed
  back and settled (a lost lock is echoed as ``rejected`` with ``com.microsoft:message-lock-lost``).
  Receive-and-delete links get pre-settled deliveries, removed from the store before sending.
* ``<entity>/$management`` link pairs carry the request/response operations
  (see :mod:`devstack.servicebus.management`).

Every handler method is guarded: an unexpected error is logged and closes the link or
connection with ``amqp:internal-error`` rather than stopping the reactor or dropping a frame.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from proton import (
    Condition,
    Connection,
    Delivery,
    Endpoint,
    Event,
    Handler,
    Link,
    Message,
    Receiver,
    Sender,
    int32,
    symbol,
)
from proton._reactor import Acceptor
from proton.reactor import Container

from devstack.servicebus import codec
from devstack.servicebus.entities import (
    CBS_NODE,
    MANAGEMENT_SUFFIX,
    EntityError,
    Namespace,
    normalise_address,
)
from devstack.servicebus.management import (
    CONDITION_LOCK_LOST,
    ManagementService,
    render_stored,
)
from devstack.servicebus.store import (
    LockLostError,
    MessageStore,
    NewMessage,
    Settlement,
    StoredMessage,
)

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.1
INCOMING_CREDIT = 100
MAX_MESSAGE_SIZE = 256 * 1024  # Standard tier
SESSION_FILTER = "com.microsoft:session-filter"
DEAD_LETTER_CONDITION = "com.microsoft:dead-letter"

ROLE_CONSUMER = "consumer"
ROLE_PRODUCER = "producer"
ROLE_CBS = "cbs"
ROLE_MANAGEMENT = "management"

_ACTIVE = Endpoint.LOCAL_ACTIVE | Endpoint.REMOTE_ACTIVE

F = TypeVar("F", bound=Callable[..., None])
T = TypeVar("T")


def _need(value: T | None, what: str) -> T:
    """The event's ``what`` (link, delivery, ...); events of the handled types always have it."""
    if value is None:
        raise RuntimeError(f"a Proton event without its {what}")
    return value


def _tag(raw: bytes) -> str:
    # Proton 0.40 accepts bytes tags (``py2bytes``) although it is annotated ``str``; a str tag
    # would be UTF-8 encoded and could not carry the 16 raw bytes of a lock token.
    return cast(str, raw)


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch (the unit of AMQP timestamps)."""
    return int(time.time() * 1000)


def _guarded(method: F) -> F:
    """Log any exception of an event handler and fail only the endpoint involved."""

    @functools.wraps(method)
    def wrapper(self: Broker, event: Event) -> None:
        try:
            method(self, event)
        except Exception as error:
            logger.exception("%s failed", method.__name__)
            self._fail_endpoint(event, error)

    return wrapper  # type: ignore[return-value]


def _is_active(link: Link) -> bool:
    return bool((link.state & _ACTIVE) == _ACTIVE)


def _links(connection: Connection) -> Iterator[Link]:
    link = connection.link_head(0)
    while link is not None:
        yield link
        link = link.next(0)


def _info_text(info: Any, key: str) -> str | None:
    if not isinstance(info, dict):
        return None
    for name, value in info.items():
        if str(name) == key and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class Broker(Handler):
    """The Proton handler of the emulator: connections, links, deliveries and timers."""

    def __init__(self, namespace: Namespace, store: MessageStore, host: str, port: int) -> None:
        super().__init__()
        self.namespace = namespace
        self.store = store
        self.host = host
        self.port = port
        self.management = ManagementService(namespace, store, now_ms, self._dispatch_paths)
        self._consumers: dict[str, list[Sender]] = {}
        self._connections: list[Connection] = []
        self._container: Container | None = None
        self._acceptor: Acceptor | None = None
        self._stop_requested = False
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the reactor to stop at its next tick (safe to call from a signal handler)."""
        self._stop_requested = True

    def on_reactor_init(self, event: Event) -> None:
        self._container = event.container
        released = self.store.release_all_locks(self.namespace.policy)
        if released:
            logger.info("restart: %d locked message(s) became available again", released)
        self._acceptor = event.container.listen(f"{self.host}:{self.port}")
        logger.info("Service Bus emulator listening on %s:%d", self.host, self.port)
        event.container.schedule(TICK_SECONDS, self)

    def on_timer_task(self, event: Event) -> None:
        container = event.container
        if self._stopping:
            container.stop()
            return
        if self._stop_requested:
            self._begin_shutdown()
            container.schedule(0.2, self)
            return
        try:
            now = now_ms()
            touched = self.store.expire_locks(self.namespace.policy, now)
            touched |= self.store.activate_scheduled(self.namespace.fan_out, now)
            touched |= self.store.expire_messages(self.namespace.policy, now)
            self._dispatch_paths(touched)
        except Exception:
            logger.exception("timer tick failed")
        container.schedule(TICK_SECONDS, self)

    def _begin_shutdown(self) -> None:
        logger.info("stopping: closing the listener and %d connection(s)", len(self._connections))
        self._stopping = True
        if self._acceptor is not None:
            self._acceptor.close()
        for connection in list(self._connections):
            if connection.state & Endpoint.LOCAL_ACTIVE:
                connection.close()

    # -- connections and sessions -----------------------------------------------------------

    def on_connection_bound(self, event: Event) -> None:
        # Server-side SASL: the SDK always negotiates SASL ANONYMOUS first.
        sasl = _need(event.transport, "transport").sasl()
        sasl.allowed_mechs("ANONYMOUS")

    @_guarded
    def on_connection_remote_open(self, event: Event) -> None:
        connection = _need(event.connection, "connection")
        if connection.state & Endpoint.LOCAL_UNINIT:
            connection.container = "servicebus-emulator"
            connection.open()
            self._connections.append(connection)
            logger.info("connection opened by %s", connection.remote_container)

    @_guarded
    def on_connection_remote_close(self, event: Event) -> None:
        connection = _need(event.connection, "connection")
        if connection.state & Endpoint.LOCAL_ACTIVE:
            connection.close()
        self._forget_connection(connection)

    def on_transport_closed(self, event: Event) -> None:
        self._forget_connection(event.connection)

    def on_transport_error(self, event: Event) -> None:
        condition = _need(event.transport, "transport").condition
        if condition is not None:
            level = (
                logging.DEBUG
                if "No protocol header" in str(condition.description)
                else logging.INFO
            )
            logger.log(level, "transport error: %s %s", condition.name, condition.description)

    def _forget_connection(self, connection: Connection | None) -> None:
        if connection is None:
            return
        self._connections = [c for c in self._connections if c != connection]
        for path, links in list(self._consumers.items()):
            kept = [link for link in links if link.connection != connection]
            if len(kept) != len(links):
                logger.info(
                    "%s: %d receiver link(s) gone with their connection",
                    path,
                    len(links) - len(kept),
                )
            self._consumers[path] = kept

    @_guarded
    def on_session_remote_open(self, event: Event) -> None:
        session = _need(event.session, "session")
        if session.state & Endpoint.LOCAL_UNINIT:
            session.open()

    @_guarded
    def on_session_remote_close(self, event: Event) -> None:
        session = _need(event.session, "session")
        if session.state & Endpoint.LOCAL_ACTIVE:
            session.close()

    # -- links ----------------------------------------------------------------------------

    @_guarded
    def on_link_remote_open(self, event: Event) -> None:
        link = _need(event.link, "link")
        if not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        try:
            if isinstance(link, Sender):
                self._attach_outgoing(link)
            elif isinstance(link, Receiver):
                self._attach_incoming(link)
        except EntityError as error:
            logger.info("refusing link %r: %s %s", link.name, error.condition, error.description)
            link.open()
            link.condition = Condition(error.condition, error.description)
            link.close()
            return
        link.open()
        if isinstance(link, Receiver):
            link.flow(INCOMING_CREDIT)

    def _attach_node(self, link: Link, address: str | None) -> bool:
        """Mark a link to ``$cbs`` or ``<entity>/$management``; False for an entity address."""
        path = normalise_address(address)
        if path == CBS_NODE:
            link.sb_role = ROLE_CBS
        elif path.endswith(MANAGEMENT_SUFFIX):
            self.namespace.management_node(path)
            link.sb_role = ROLE_MANAGEMENT
        else:
            return False
        link.sb_node = path
        return True

    def _attach_outgoing(self, link: Sender) -> None:
        """The client receives: from an entity, or replies of ``$cbs`` / ``$management``."""
        address = link.remote_source.address
        if self._attach_node(link, address):
            return
        entity = self.namespace.receive_entity(address)
        filters = link.remote_source.filter.get_object() if link.remote_source.filter else None
        if isinstance(filters, dict) and any(str(key) == SESSION_FILTER for key in filters):
            raise EntityError(
                "amqp:not-implemented", "Sessions are not supported by the Service Bus emulator."
            )
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        link.sb_role = ROLE_CONSUMER
        link.sb_entity = entity.path
        link.sb_receive_and_delete = link.remote_snd_settle_mode == Link.SND_SETTLED
        self._consumers.setdefault(entity.path, []).append(link)
        logger.info(
            "receiver attached to %s (%s)",
            entity.name,
            "receive-and-delete" if link.sb_receive_and_delete else "peek-lock",
        )

    def _attach_incoming(self, link: Receiver) -> None:
        """The client sends: to an entity, or requests to ``$cbs`` / ``$management``."""
        address = link.remote_target.address
        if self._attach_node(link, address):
            return
        target = self.namespace.send_target(address)
        link.max_message_size = MAX_MESSAGE_SIZE
        link.sb_role = ROLE_PRODUCER
        link.sb_target = target
        logger.info("sender attached to %s", target.name)

    @_guarded
    def on_link_remote_close(self, event: Event) -> None:
        link = _need(event.link, "link")
        if link.state & Endpoint.LOCAL_ACTIVE:
            link.close()
        self._forget_link(link)

    @_guarded
    def on_link_remote_detach(self, event: Event) -> None:
        link = _need(event.link, "link")
        if link.state & Endpoint.LOCAL_ACTIVE:
            link.detach()
        self._forget_link(link)

    def _forget_link(self, link: Link) -> None:
        path = _attr(link, "sb_entity")
        if path is not None and path in self._consumers:
            self._consumers[path] = [other for other in self._consumers[path] if other != link]

    @_guarded
    def on_link_flow(self, event: Event) -> None:
        link = _need(event.link, "link")
        if isinstance(link, Sender) and _attr(link, "sb_role") == ROLE_CONSUMER:
            self._dispatch(_attr(link, "sb_entity"))

    # -- deliveries -------------------------------------------------------------------------

    @_guarded
    def on_delivery(self, event: Event) -> None:
        delivery = _need(event.delivery, "delivery")
        link = delivery.link
        if isinstance(link, Receiver):
            self._incoming_delivery(link, delivery)
        elif isinstance(link, Sender) and delivery.updated:
            self._outcome(link, delivery)

    def _incoming_delivery(self, link: Receiver, delivery: Delivery) -> None:
        if delivery.aborted:
            delivery.settle()
            return
        if delivery.partial or not delivery.readable:
            return
        payload = link.recv(delivery.pending) or b""
        link.advance()
        role = _attr(link, "sb_role")
        try:
            if role == ROLE_PRODUCER:
                self._store_sent(link, delivery, bytes(payload))
            elif role in (ROLE_CBS, ROLE_MANAGEMENT):
                self._request(link, delivery, bytes(payload))
            else:
                raise RuntimeError(f"delivery on a link with unknown role {role!r}")
        finally:
            if link.credit < INCOMING_CREDIT // 2 and _is_active(link):
                link.flow(INCOMING_CREDIT - link.credit)

    def _reject(self, delivery: Delivery, condition: str, description: str) -> None:
        delivery.local.condition = Condition(condition, description)
        delivery.update(Delivery.REJECTED)
        delivery.settle()

    def _store_sent(self, link: Receiver, delivery: Delivery, payload: bytes) -> None:
        target = _attr(link, "sb_target")
        try:
            messages: list[NewMessage] = []
            for encoded in codec.unpack_transfer(payload):
                facts = codec.read_facts(encoded)
                messages.append(
                    NewMessage(encoded, facts.message_id, facts.ttl_ms, facts.scheduled_enqueue_ms)
                )
        except codec.CodecError as error:
            logger.warning("rejecting an undecodable message sent to %s: %s", target.name, error)
            self._reject(delivery, "amqp:decode-error", str(error))
            return
        try:
            seqs = self.store.enqueue(
                target.path,
                target.targets,
                messages,
                now_ms=now_ms(),
                default_ttl_ms=target.default_ttl_ms,
                duplicate_window_ms=target.duplicate_window_ms,
            )
        except Exception as error:
            logger.exception("storing a message for %s failed", target.name)
            self._reject(delivery, "amqp:internal-error", f"The message was not stored: {error}")
            return
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        logger.debug("stored %s on %s", seqs, target.name)
        self._dispatch_paths(set(target.targets))

    def _outcome(self, link: Sender, delivery: Delivery) -> None:
        """Apply a receiver's disposition, echo the outcome and settle (rcv-settle-mode second)."""
        if delivery.settled and not delivery.remote_state:
            return
        state = delivery.remote_state
        token: uuid.UUID | None = _attr(delivery, "sb_lock_token")
        reason: str | None = None
        description: str | None = None
        if state == Delivery.ACCEPTED:
            settlement = Settlement.COMPLETE
        elif state == Delivery.REJECTED:
            settlement = Settlement.DEAD_LETTER
            condition = delivery.remote.condition
            if condition is not None:
                reason = _info_text(condition.info, "DeadLetterReason")
                description = _info_text(condition.info, "DeadLetterErrorDescription")
                if description is None and condition.description:
                    description = str(condition.description)
        elif state == Delivery.RELEASED:
            settlement = Settlement.RELEASE
        elif state == Delivery.MODIFIED:
            if delivery.remote.undeliverable:
                settlement = Settlement.DEFER
            elif delivery.remote.failed:
                settlement = Settlement.ABANDON
            else:
                settlement = Settlement.RELEASE
        else:
            return  # not a terminal outcome (e.g. received): nothing to apply yet
        if token is None:
            delivery.settle()
            return
        entity = _attr(link, "sb_entity")
        try:
            self.store.settle(
                token,
                settlement,
                self.namespace.policy,
                now_ms(),
                reason=reason,
                description=description,
            )
        except LockLostError as error:
            logger.info("%s on %s: lock %s lost", settlement.value, entity, token)
            delivery.sb_lock_token = None
            self._reject(delivery, CONDITION_LOCK_LOST, str(error))
            return
        delivery.sb_lock_token = None
        delivery.update(state)
        delivery.settle()
        logger.debug("%s %s on %s", settlement.value, token, entity)
        if settlement in (Settlement.ABANDON, Settlement.RELEASE, Settlement.DEAD_LETTER):
            policy = self.namespace.policy(entity)
            paths = {entity}
            if policy.dead_letter_path:
                paths.add(policy.dead_letter_path)
            self._dispatch_paths(paths)

    # -- request/response nodes --------------------------------------------------------------

    def _request(self, link: Receiver, delivery: Delivery, payload: bytes) -> None:
        request = Message()
        try:
            request.decode(payload)
        except Exception as error:
            self._reject(delivery, "amqp:decode-error", f"Undecodable request: {error}")
            return
        node = _attr(link, "sb_node")
        reply_link = self._reply_link(link.connection, node)
        if reply_link is None:
            self._reject(
                delivery,
                "amqp:precondition-failed",
                f"Attach a receiver link on '{node}' before sending requests to it.",
            )
            return
        request_properties: dict[Any, Any] = dict(request.properties or {})
        operation = str(request_properties.get("operation", ""))
        body: dict[str, Any] | None = None
        condition: str | None = None
        if node == CBS_NODE:
            status, text = self._put_token(operation, request_properties.get("name"))
            properties: dict[str, Any] = {"status-code": int32(status), "status-description": text}
        else:
            reply = self.management.handle(node, operation, request.body)
            status, text, condition, body = (
                reply.status,
                reply.description,
                reply.condition,
                reply.body,
            )
            properties = {"statusCode": int32(status), "statusDescription": text}
            logger.info("%s %s -> %d", node, operation, status)
        if condition is not None:
            properties["errorCondition"] = symbol(condition)
        response = Message(
            body=body if body else None, correlation_id=request.id, properties=properties
        )
        reply_delivery = reply_link.delivery(_tag(uuid.uuid4().bytes))
        reply_link.stream(bytes(response.encode()))
        reply_link.advance()
        reply_delivery.settle()
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()

    def _put_token(self, operation: str, audience: Any) -> tuple[int, str]:
        """Answer ``$cbs``: any token is accepted, but its audience must name an entity.

        Like the real service, a token for a missing entity fails with 404, which the SDK
        raises as an authentication error naming the entity.
        """
        if operation != "put-token":
            return 400, f"Unsupported $cbs operation '{operation}'."
        path = normalise_address(str(audience or ""))
        if not path or self.namespace.knows(path):
            return 202, "Accepted"
        logger.info("put-token for unknown entity %r refused", path)
        return (
            404,
            f"The messaging entity 'sb://127.0.0.1/{path}' could not be found. "
            "To know more visit https://aka.ms/sbResourceMgrExceptions.",
        )

    def _reply_link(self, connection: Connection, node: str) -> Sender | None:
        for link in _links(connection):
            if isinstance(link, Sender) and _is_active(link) and _attr(link, "sb_node") == node:
                return link
        return None

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch_paths(self, paths: set[str]) -> None:
        for path in sorted(paths):
            self._dispatch(path)

    def _dispatch(self, path: str) -> None:
        """Hand available messages of ``path`` to its receivers while they have credit."""
        links = [link for link in self._consumers.get(path, []) if _is_active(link)]
        if not links:
            return
        policy = self.namespace.policy(path)
        exhausted = False
        while not exhausted:
            sent = False
            for link in links:
                if link.credit <= 0:
                    continue
                now = now_ms()
                if _attr(link, "sb_receive_and_delete"):
                    message = self.store.take_next(policy, now)
                else:
                    message = self.store.lock_next(policy, now)
                if message is None:
                    exhausted = True
                    break
                self._send(link, message)
                sent = True
            if not sent:
                break
        for link in links:
            if exhausted and link.drain_mode and link.credit > 0:
                link.drained()
        # Rotate so the next dispatch starts with another receiver.
        registered = self._consumers.get(path, [])
        if len(registered) > 1:
            registered.append(registered.pop(0))

    def _send(self, link: Sender, message: StoredMessage) -> None:
        receive_and_delete = bool(_attr(link, "sb_receive_and_delete"))
        payload = render_stored(message, locked=not receive_and_delete)
        if receive_and_delete or message.lock_token is None:
            tag = uuid.uuid4().bytes_le
        else:
            tag = message.lock_token.bytes_le
        delivery = link.delivery(_tag(tag))
        delivery.sb_lock_token = None if receive_and_delete else message.lock_token
        link.stream(payload)
        link.advance()
        if receive_and_delete:
            delivery.settle()

    # -- failures -------------------------------------------------------------------------

    def _fail_endpoint(self, event: Event, error: Exception) -> None:
        condition = Condition("amqp:internal-error", f"Service Bus emulator error: {error}")
        try:
            delivery = event.delivery
            if delivery is not None and not delivery.settled:
                delivery.local.condition = condition
                delivery.update(Delivery.REJECTED)
                delivery.settle()
                return
            link = event.link
            if link is not None and link.state & Endpoint.LOCAL_ACTIVE:
                link.condition = condition
                link.close()
                self._forget_link(link)
                return
            connection = event.connection
            if connection is not None and connection.state & Endpoint.LOCAL_ACTIVE:
                connection.condition = condition
                connection.close()
        except Exception:
            logger.exception("could not report the failure to the client")


def _attr(obj: Any, name: str) -> Any:
    """An attribute stored on a Proton object (``None`` when never set)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        return None
