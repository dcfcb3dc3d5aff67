"""Service Bus trigger against the Service Bus emulator with the real azure-servicebus SDK."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from azure.functions.servicebus import ServiceBusMessage as FunctionMessage
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusSubQueue,
)

from devstack.procs import free_port
from devstack.servicebus import connection_string, start_servicebus
from tests.devstack.host import sample_app
from tests.devstack.host.conftest import HostFactory, wait_until

TIMEOUT = 15
MAX_DELIVERY_COUNT = 3


@pytest.fixture(scope="module")
def servicebus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Service Bus emulator with short-lock test queues; yields its connection string."""
    work = tmp_path_factory.mktemp("servicebus")
    queue = {"lockDuration": "PT5S", "maxDeliveryCount": MAX_DELIVERY_COUNT}
    config = {"queues": [{"name": name, **queue} for name in ("q-ok", "q-fail", "q-concurrent")]}
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    process = start_servicebus(
        port, work / "data", work / "servicebus.log", config_path, timeout=30
    )
    try:
        yield connection_string(port)
    finally:
        process.stop()


def _send(connection: str, queue: str, message: ServiceBusMessage) -> None:
    with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_sender(queue, socket_timeout=5) as sender,
    ):
        sender.send_messages(message, timeout=10)


def _peek(connection: str, queue: str, *, dead_letter: bool = False) -> list[object]:
    """Every message still in the queue (or its dead-letter queue), without locking it."""
    with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_receiver(
            queue,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER if dead_letter else None,
            socket_timeout=5,
        ) as receiver,
    ):
        return list(receiver.peek_messages(max_message_count=10, timeout=10))


def test_message_arrives_typed_and_is_completed(
    host_factory: HostFactory, servicebus: str, tmp_path: Path
) -> None:
    host = host_factory(
        enabled=("on_queue_message",),
        settings={"ServiceBusConnection": servicebus, "TEST_QUEUE": "q-ok"},
    )
    message_id = uuid.uuid4().hex
    _send(
        servicebus,
        "q-ok",
        ServiceBusMessage(
            b'{"build": 1}',
            message_id=message_id,
            content_type="application/json",
            correlation_id="corr-1",
            subject="build-request",
            application_properties={"source": "ci", "attempt": 7},
        ),
    )
    (msg,) = sample_app.wait_for("on_queue_message", 1, timeout=TIMEOUT)
    assert isinstance(msg, FunctionMessage)
    assert msg.message_id == message_id
    assert msg.delivery_count == 1
    assert msg.get_body() == b'{"build": 1}'
    assert msg.content_type == "application/json"
    assert msg.correlation_id == "corr-1"
    assert msg.label == "build-request"
    assert msg.application_properties == {"source": "ci", "attempt": 7}
    assert msg.user_properties == {"source": "ci", "attempt": 7}
    assert isinstance(msg.sequence_number, int)
    assert isinstance(msg.enqueued_time_utc, datetime)
    assert msg.enqueued_time_utc.tzinfo is not None
    assert msg.lock_token
    assert msg.metadata is not None
    assert msg.metadata["MessageId"] == message_id
    sample_app.wait_for("on_queue_message_spans", 1, timeout=TIMEOUT)
    assert _peek(servicebus, "q-ok") == []  # completed: gone from the queue
    assert host.invoker.stats.snapshot()["on_queue_message"] == {"Succeeded": 1}


def test_exception_abandons_until_dead_lettered(host_factory: HostFactory, servicebus: str) -> None:
    host = host_factory(
        enabled=("on_queue_message",),
        settings={"ServiceBusConnection": servicebus, "TEST_QUEUE": "q-fail"},
    )
    message_id = uuid.uuid4().hex
    _send(
        servicebus,
        "q-fail",
        ServiceBusMessage("boom", message_id=message_id, application_properties={"fail": True}),
    )
    deliveries = sample_app.wait_for("on_queue_message", MAX_DELIVERY_COUNT, timeout=TIMEOUT)
    assert [m.delivery_count for m in deliveries] == list(range(1, MAX_DELIVERY_COUNT + 1))
    assert {m.message_id for m in deliveries} == {message_id}
    sample_app.wait_for("on_queue_message_spans", MAX_DELIVERY_COUNT, timeout=TIMEOUT)
    # the last abandon (settled just after the function returned) moves it to the DLQ
    wait_until(lambda: bool(_peek(servicebus, "q-fail", dead_letter=True)), TIMEOUT, "DLQ")
    (dead,) = _peek(servicebus, "q-fail", dead_letter=True)
    assert dead.message_id == message_id  # type: ignore[attr-defined]
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"  # type: ignore[attr-defined]
    assert _peek(servicebus, "q-fail") == []
    assert len(sample_app.RECORDS["on_queue_message"]) == MAX_DELIVERY_COUNT
    assert host.invoker.stats.snapshot()["on_queue_message"] == {"Failed": MAX_DELIVERY_COUNT}


def test_concurrency_comes_from_host_json(host_factory: HostFactory, servicebus: str) -> None:
    host_factory(
        enabled=("on_queue_message",),
        settings={"ServiceBusConnection": servicebus, "TEST_QUEUE": "q-concurrent"},
        host_json={"version": "2.0", "extensions": {"serviceBus": {"maxConcurrentCalls": 2}}},
    )
    for _ in range(2):
        _send(
            servicebus,
            "q-concurrent",
            ServiceBusMessage("slow", application_properties={"sleep": 1.0}),
        )
    spans = sample_app.wait_for("on_queue_message_spans", 2, timeout=TIMEOUT)
    (_, end_a), (start_b, _) = sorted(spans)
    assert start_b < end_a  # the second message ran while the first was still running
