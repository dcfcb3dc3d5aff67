"""Service Bus trigger and output binding over the real azure-servicebus SDK.

Each listener has one peek-lock receiver (no prefetch) that takes up to ``maxConcurrentCalls``
(host.json ``extensions.serviceBus``) messages at a time and runs them on a thread pool of that
size; settlement happens on the receiver's thread. A message becomes a
``azure.functions.servicebus.ServiceBusMessage`` through the real
``ServiceBusMessageInConverter.decode`` with the trigger metadata the real host sends (Service Bus
extension 5.x ``ServiceBusTriggerBindingStrategy``): ``DeliveryCount`` (1 on first delivery, as
in .NET), ``LockToken``, ``MessageId``, ``SequenceNumber``, ``EnqueuedTimeUtc``,
``ExpiresAtUtc``, ``ContentType``, ``CorrelationId``, ``Subject``/``Label``,
``ApplicationProperties``/``UserProperties`` and the rest. Success completes the message
(``autoCompleteMessages``), an exception abandons it, so the broker redelivers it and, after the
entity's max delivery count, dead-letters it. Locks are renewed while the function runs, up to
``maxAutoLockRenewalDuration``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError
from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessage, ServiceBusMessageInConverter
from azure.identity import DefaultAzureCredential
from azure.servicebus import (
    AutoLockRenewer,
    ServiceBusClient,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusReceiver,
)
from azure.servicebus import ServiceBusMessage as OutgoingMessage
from azure.servicebus.amqp import AmqpMessageBodyType

from devstack.host.loader import AppSettings, FunctionIndexingError, FunctionSpec
from devstack.host.quiet import quietly

logger = logging.getLogger(__name__)

_RECEIVE_WAIT_SECONDS = 0.5
_RECONNECT_MAX_SECONDS = 5.0
_STOP_DRAIN_SECONDS = 3.0


def _dotnet_utc(moment: datetime) -> str:
    """A UTC time as the host serialises it: 7 fractional digits and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _dotnet_offset(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, datetime):
        return _dotnet_utc(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def application_properties_of(message: ServiceBusReceivedMessage) -> dict[str, Any]:
    """Application properties with ``str`` keys and JSON-friendly values."""
    raw = message.application_properties or {}
    return {str(_plain(key)): _plain(value) for key, value in raw.items()}


def message_body_bytes(message: ServiceBusReceivedMessage) -> bytes:
    if message.body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    body = message.body
    if isinstance(body, bytes):
        return body
    return json.dumps(body, default=str).encode("utf-8")


def build_trigger_metadata(
    message: ServiceBusReceivedMessage, *, function_name: str
) -> dict[str, meta.Datum]:
    """The binding data the real host sends with a Service Bus trigger (single message)."""
    properties = json.dumps(application_properties_of(message))
    delivery_count = (message.delivery_count or 0) + 1
    values: dict[str, meta.Datum | None] = {
        "DeliveryCount": meta.Datum(delivery_count, "int"),
        "DeadLetterSource": _string(message.dead_letter_source),
        "LockToken": _string(str(message.lock_token) if message.lock_token else None),
        "ExpiresAtUtc": _time(message.expires_at_utc, _dotnet_utc),
        "ExpiresAt": _time(message.expires_at_utc, _dotnet_offset),
        "EnqueuedTimeUtc": _time(message.enqueued_time_utc, _dotnet_utc),
        "EnqueuedTime": _time(message.enqueued_time_utc, _dotnet_offset),
        "MessageId": _string(message.message_id),
        "ContentType": _string(message.content_type),
        "ReplyTo": _string(message.reply_to),
        "SequenceNumber": (
            meta.Datum(int(message.sequence_number), "int")
            if message.sequence_number is not None
            else None
        ),
        "To": _string(message.to),
        "Subject": _string(message.subject),
        "Label": _string(message.subject),
        "CorrelationId": _string(message.correlation_id),
        "ApplicationProperties": meta.Datum(properties, "json"),
        "UserProperties": meta.Datum(properties, "json"),
        "SessionId": _string(message.session_id),
        "ReplyToSessionId": _string(message.reply_to_session_id),
        "PartitionKey": _string(message.partition_key),
        "TransactionPartitionKey": _string(message.partition_key),
        "sys": meta.Datum(
            json.dumps(
                {
                    "MethodName": function_name,
                    "UtcNow": _dotnet_utc(datetime.now(UTC)),
                    "RandGuid": str(uuid.uuid4()),
                }
            ),
            "json",
        ),
    }
    return {key: datum for key, datum in values.items() if datum is not None}


def _string(value: str | None) -> meta.Datum | None:
    return meta.Datum(value, "string") if value is not None else None


def _time(value: datetime | None, formatter: Callable[[datetime], str]) -> meta.Datum | None:
    return meta.Datum(formatter(value), "string") if value is not None else None


def decode_message(message: ServiceBusReceivedMessage, *, function_name: str) -> ServiceBusMessage:
    """Convert a received message exactly as the worker does (real converter)."""
    metadata = build_trigger_metadata(message, function_name=function_name)
    decoded = ServiceBusMessageInConverter.decode(
        meta.Datum(message_body_bytes(message), "bytes"), trigger_metadata=metadata
    )
    assert isinstance(decoded, ServiceBusMessage)
    return decoded


def service_bus_client(settings: AppSettings, connection: str) -> ServiceBusClient:
    """A client for the ``connection`` setting (connection string or identity-based)."""
    value = settings.get(connection)
    if value and "endpoint=" in value.lower():
        return ServiceBusClient.from_connection_string(value, retry_total=2, retry_backoff_max=5)
    namespace = settings.get(f"{connection}__fullyQualifiedNamespace")
    if namespace:
        return ServiceBusClient(namespace, DefaultAzureCredential(), retry_total=2)
    raise FunctionIndexingError(
        f"Service Bus connection setting '{connection}' "
        f"(or '{connection}__fullyQualifiedNamespace') is not set"
    )


#: ``(spec, trigger_value, reason, details) -> result``; raises when the function failed.
Invoke = Callable[[FunctionSpec, Any, str, str], Any]


class ServiceBusTriggerListener:
    """Receives from one queue (or topic subscription) and invokes one function per message."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoke: Invoke,
        settings: AppSettings,
        *,
        max_concurrent_calls: int,
        auto_complete: bool = True,
        max_lock_renewal: timedelta = timedelta(minutes=5),
    ) -> None:
        trigger = spec.trigger
        if trigger.get("isSessionsEnabled"):
            raise FunctionIndexingError(
                f"function '{spec.name}': session-enabled Service Bus triggers are not supported "
                "by the devstack host"
            )
        if str(trigger.get("cardinality", "ONE")).upper() != "ONE":
            raise FunctionIndexingError(
                f"function '{spec.name}': only cardinality 'one' is supported by the devstack host"
            )
        self.spec = spec
        self._invoke = invoke
        self._settings = settings
        self._connection = str(trigger["connection"])
        self.queue_name: str | None = trigger.get("queueName")
        self.topic_name: str | None = trigger.get("topicName")
        self.subscription_name: str | None = trigger.get("subscriptionName")
        if not self.queue_name and not (self.topic_name and self.subscription_name):
            raise FunctionIndexingError(
                f"function '{spec.name}': needs queueName, or topicName and subscriptionName"
            )
        auto_complete_binding = trigger.get("autoCompleteMessages")
        self._auto_complete = (
            auto_complete if auto_complete_binding is None else bool(auto_complete_binding)
        )
        self._max_lock_renewal = max_lock_renewal.total_seconds()
        self._concurrency = max(1, max_concurrent_calls)
        self._stop = threading.Event()
        self._renewer = (
            AutoLockRenewer(max_lock_renewal_duration=self._max_lock_renewal, max_workers=2)
            if self._max_lock_renewal > 0
            else None
        )
        self._thread = threading.Thread(  # receiving and settling are the host's work: untraced
            target=quietly(self._work), name=f"servicebus-{spec.name}", daemon=True
        )
        self._pool = ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix=f"servicebus-{spec.name}"
        )
        self._settlements: queue.SimpleQueue[tuple[ServiceBusReceivedMessage, bool]] = (
            queue.SimpleQueue()
        )
        self._in_flight = 0
        self._entity = (
            self.queue_name or f"{self.topic_name}/Subscriptions/{self.subscription_name}"
        )

    def start(self) -> None:
        service_bus_client(self._settings, self._connection)  # fail fast on a missing setting
        self._thread.start()
        logger.info(
            "service bus trigger %s: listening on '%s' (maxConcurrentCalls=%d, autoComplete=%s)",
            self.spec.name,
            self._entity,
            self._concurrency,
            self._auto_complete,
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving; running invocations finish and are settled within ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._renewer is not None:
            self._renewer.close(wait=False)

    def _receiver(self, client: ServiceBusClient) -> ServiceBusReceiver:
        if self.queue_name:
            return client.get_queue_receiver(
                self.queue_name,
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
                prefetch_count=0,
            )
        return client.get_subscription_receiver(
            str(self.topic_name),
            str(self.subscription_name),
            receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
            prefetch_count=0,
        )

    def _work(self) -> None:
        """One receiver; the pool runs functions; settlement happens on this thread only."""
        backoff = 0.5
        while not self._stop.is_set():
            try:
                client = service_bus_client(self._settings, self._connection)
                with client, self._receiver(client) as receiver:
                    backoff = 0.5
                    self._receive_loop(receiver)
                    self._drain(receiver, wait_seconds=_STOP_DRAIN_SECONDS)
                return
            except (AzureError, OSError) as exc:
                logger.warning(
                    "service bus trigger %s: receiver error on '%s': %s (reconnecting in %.1fs)",
                    self.spec.name,
                    self._entity,
                    exc,
                    backoff,
                )
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, _RECONNECT_MAX_SECONDS)

    def _receive_loop(self, receiver: ServiceBusReceiver) -> None:
        while not self._stop.is_set():
            self._settle_finished(receiver)
            free = self._concurrency - self._in_flight
            if free <= 0:
                self._settle_finished(receiver, block_seconds=_RECEIVE_WAIT_SECONDS)
                continue
            messages = receiver.receive_messages(
                max_message_count=free, max_wait_time=_RECEIVE_WAIT_SECONDS
            )
            for message in messages:
                if self._renewer is not None:
                    self._renewer.register(receiver, message)
                self._in_flight += 1
                self._pool.submit(self._run_function, message)

    def _drain(self, receiver: ServiceBusReceiver, *, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while self._in_flight > 0 and time.monotonic() < deadline:
            self._settle_finished(receiver, block_seconds=0.1)

    def _settle_finished(self, receiver: ServiceBusReceiver, block_seconds: float = 0.0) -> None:
        try:
            if block_seconds > 0:
                message, succeeded = self._settlements.get(timeout=block_seconds)
            else:
                message, succeeded = self._settlements.get_nowait()
        except queue.Empty:
            return
        while True:
            self._in_flight -= 1
            self._settle(receiver, message, succeeded)
            try:
                message, succeeded = self._settlements.get_nowait()
            except queue.Empty:
                return

    def _settle(
        self, receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage, succeeded: bool
    ) -> None:
        try:
            if not succeeded:
                receiver.abandon_message(message)
            elif self._auto_complete:
                receiver.complete_message(message)
        except AzureError as exc:
            action = "complete" if succeeded else "abandon"
            logger.warning("service bus trigger %s: %s failed: %s", self.spec.name, action, exc)

    def _run_function(self, message: ServiceBusReceivedMessage) -> None:
        succeeded = False
        try:
            decoded = decode_message(message, function_name=self.spec.name)
            details = (
                f"MessageId={decoded.message_id}, SequenceNumber={decoded.sequence_number}, "
                f"DeliveryCount={decoded.delivery_count}, LockToken={decoded.lock_token}"
            )
            self._invoke(
                self.spec,
                decoded,
                f"New ServiceBus message detected on '{self._entity}'.",
                details,
            )
            succeeded = True
        except Exception:
            logger.debug("service bus trigger %s: invocation failed", self.spec.name)
        finally:
            self._settlements.put((message, succeeded))


class ServiceBusOutputSender:
    """Forwards ``serviceBus`` output binding values (``str``/``bytes`` or a list of them)."""

    def __init__(self, settings: AppSettings) -> None:
        self._settings = settings

    def __call__(self, binding: Mapping[str, Any], value: Any) -> None:
        items = value if isinstance(value, list) else [value]
        messages = [
            OutgoingMessage(item if isinstance(item, str | bytes) else json.dumps(item))
            for item in items
        ]
        queue, topic = binding.get("queueName"), binding.get("topicName")
        if not queue and not topic:
            raise FunctionIndexingError("serviceBus output binding needs queueName or topicName")
        client = service_bus_client(self._settings, str(binding["connection"]))
        with client:
            sender = (
                client.get_queue_sender(str(queue))
                if queue
                else client.get_topic_sender(str(topic))
            )
            with sender:
                sender.send_messages(messages, timeout=30)
