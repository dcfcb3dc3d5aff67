"""Contract tests: locks that expire, receivers that die, and emulator restarts lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageState,
    ServiceBusSubQueue,
)

from tests.devstack.servicebus.conftest import REPO_ROOT_FOR_CHILD, Emulator, text
from tests.devstack.servicebus.helpers import receive_exactly, receive_none

pytestmark = pytest.mark.timeout(90)

CHILD = Path(__file__).with_name("receiver_child.py")


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, or AssertionError after ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline() if process.stdout else ""),
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        raise AssertionError(f"the receiver process printed nothing within {timeout}s")
    return lines[0]


def test_lock_expiry_redelivers_with_delivery_count_raised(client: ServiceBusClient) -> None:
    with client.get_queue_sender("short-lock") as sender:
        sender.send_messages(ServiceBusMessage("held too long"), timeout=10)
    with client.get_queue_receiver("short-lock", max_wait_time=5) as receiver:
        (first,) = receive_exactly(receiver, 1)
        assert first.delivery_count == 0
        (again,) = receive_exactly(receiver, 1, timeout=10)  # after the 1 s lock expired
        assert datetime.now(UTC) >= first.locked_until_utc
        assert again.sequence_number == first.sequence_number
        assert again.delivery_count == 1
        receiver.complete_message(again)


def test_max_delivery_count_moves_the_message_to_the_dead_letter_queue(
    client: ServiceBusClient,
) -> None:
    with client.get_queue_sender("max-delivery") as sender:
        sender.send_messages(ServiceBusMessage("poison"), timeout=10)
    with client.get_queue_receiver("max-delivery", max_wait_time=5) as receiver:
        counts = []
        for _ in range(3):  # maxDeliveryCount 3
            (message,) = receive_exactly(receiver, 1)
            counts.append(message.delivery_count)
            receiver.abandon_message(message)
        assert counts == [0, 1, 2]
        receive_none(receiver)
    with client.get_queue_receiver(
        "max-delivery", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=5
    ) as dead_letters:
        (dead,) = receive_exactly(dead_letters, 1)
        assert text(dead) == "poison"
        assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
        assert dead.dead_letter_error_description == (
            "Message could not be consumed after 3 delivery attempts."
        )
        assert dead.sequence_number == message.sequence_number
        dead_letters.complete_message(dead)


def test_receiver_killed_mid_lock_loses_nothing(servicebus: Emulator) -> None:
    with servicebus.client() as client, client.get_queue_sender("crash") as sender:
        sender.send_messages(ServiceBusMessage("survive the crash"), timeout=10)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT_FOR_CHILD)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), servicebus.connection_string, "crash"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        report = json.loads(_read_line(child, timeout=30))
    finally:
        child.kill()  # SIGKILL: no close, no release, the lock is simply abandoned
        child.wait(timeout=10)
    assert report["delivery_count"] == 0
    with servicebus.client() as client, client.get_queue_receiver("crash") as receiver:
        (message,) = receive_exactly(receiver, 1, timeout=15)
        redelivered_at = datetime.now(UTC)
        assert text(message) == "survive the crash"
        assert message.sequence_number == report["sequence_number"]
        assert message.delivery_count == 1
        assert str(message.lock_token) != report["lock_token"]
        # Not before the dead receiver's lock ran out (2 s), as in Service Bus.
        assert redelivered_at.timestamp() >= report["locked_until"] - 0.05
        receiver.complete_message(message)
        receive_none(receiver)


def test_restart_loses_no_message(private_servicebus: Emulator) -> None:
    emulator = private_servicebus
    due = datetime.now(UTC) + timedelta(minutes=10)
    with emulator.client() as client:
        with client.get_queue_sender("durable") as sender:
            sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(4)], timeout=10)
            (scheduled_seq,) = sender.schedule_messages(ServiceBusMessage("later"), due, timeout=10)
        with client.get_queue_receiver("durable", max_wait_time=5) as receiver:
            completed, locked, deferred = receive_exactly(receiver, 3)
            receiver.complete_message(completed)
            receiver.defer_message(deferred)
            # ``locked`` stays locked and unsettled across the crash.

    emulator.restart(kill=True)  # SIGKILL: nothing is flushed on the way out

    with emulator.client() as client:
        with client.get_queue_receiver("durable", max_wait_time=5) as receiver:
            peeked = receiver.peek_messages(10, sequence_number=1, timeout=10)
            states = {m.sequence_number: m.state for m in peeked}
            assert completed.sequence_number not in states
            assert states[deferred.sequence_number] == ServiceBusMessageState.DEFERRED
            assert states[scheduled_seq] == ServiceBusMessageState.SCHEDULED
            messages = receive_exactly(receiver, 2)
            assert [text(m) for m in messages] == ["m1", "m3"]
            by_seq = {m.sequence_number: m for m in messages}
            assert by_seq[locked.sequence_number].delivery_count == 1  # its lock was lost
            for message in messages:
                receiver.complete_message(message)
        with client.get_queue_sender("durable") as sender:
            sender.send_messages(ServiceBusMessage("after the crash"), timeout=10)

    emulator.restart()  # SIGTERM: a clean stop keeps everything too

    with (
        emulator.client() as client,
        client.get_queue_receiver("durable", max_wait_time=5) as receiver,
    ):
        (fresh,) = receive_exactly(receiver, 1)
        assert text(fresh) == "after the crash"
        assert fresh.sequence_number > scheduled_seq  # sequence numbers keep increasing
        receiver.complete_message(fresh)
        (still_deferred,) = receiver.receive_deferred_messages(
            [deferred.sequence_number], timeout=10
        )
        assert text(still_deferred) == "m2"
        receiver.complete_message(still_deferred)
        remaining = receiver.peek_messages(10, sequence_number=1, timeout=10)
        assert [m.sequence_number for m in remaining] == [scheduled_seq]
