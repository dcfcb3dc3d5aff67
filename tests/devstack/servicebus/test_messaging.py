"""Contract tests: the real azure-servicebus SDK against the emulator (send, receive, settle)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageState,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessageNotFoundError,
    ServiceBusAuthenticationError,
)

from tests.devstack.servicebus.conftest import CLIENT_OPTIONS, Emulator, app_properties, text
from tests.devstack.servicebus.helpers import receive_exactly, receive_none

pytestmark = pytest.mark.timeout(60)


def test_single_and_batch_send_arrive_as_separate_messages(client: ServiceBusClient) -> None:
    before = datetime.now(UTC)
    with client.get_queue_sender("basic") as sender:
        sender.send_messages(
            ServiceBusMessage("one", application_properties={"kind": "vhd"}, message_id="m-1"),
            timeout=10,
        )
        sender.send_messages(
            [
                ServiceBusMessage("two", application_properties={"n": 2}),
                ServiceBusMessage("three", application_properties={"n": 3, "flag": True}),
            ],
            timeout=10,
        )
    with client.get_queue_receiver("basic", max_wait_time=5) as receiver:
        messages = receive_exactly(receiver, 3)
        assert [text(m) for m in messages] == ["one", "two", "three"]
        assert [app_properties(m) for m in messages] == [
            {"kind": "vhd"},
            {"n": 2},
            {"n": 3, "flag": True},
        ]
        assert messages[0].message_id == "m-1"
        sequence_numbers = [m.sequence_number for m in messages]
        assert sequence_numbers == sorted(sequence_numbers)
        assert len(set(sequence_numbers)) == 3
        assert len({m.lock_token for m in messages}) == 3
        for message in messages:
            assert message.delivery_count == 0
            assert isinstance(message.lock_token, uuid.UUID)
            assert message.locked_until_utc > datetime.now(UTC) + timedelta(seconds=20)
            assert before - timedelta(seconds=1) <= message.enqueued_time_utc
            assert message.enqueued_time_utc <= datetime.now(UTC) + timedelta(seconds=1)
            receiver.complete_message(message)
        receive_none(receiver)


def test_abandon_redelivers_with_delivery_count_raised(client: ServiceBusClient) -> None:
    with client.get_queue_sender("settle") as sender:
        sender.send_messages(ServiceBusMessage("retry me"), timeout=10)
    with client.get_queue_receiver("settle", max_wait_time=5) as receiver:
        (first,) = receive_exactly(receiver, 1)
        assert first.delivery_count == 0
        receiver.abandon_message(first)
        (again,) = receive_exactly(receiver, 1)
        assert again.sequence_number == first.sequence_number
        assert again.delivery_count == 1
        assert again.lock_token != first.lock_token
        receiver.complete_message(again)
        receive_none(receiver)


def test_dead_letter_with_reason_and_description(client: ServiceBusClient) -> None:
    with client.get_queue_sender("settle") as sender:
        sender.send_messages(ServiceBusMessage("bad", application_properties={"id": "b1"}))
    with client.get_queue_receiver("settle", max_wait_time=5) as receiver:
        (message,) = receive_exactly(receiver, 1)
        receiver.dead_letter_message(
            message, reason="InvalidVhd", error_description="footer checksum mismatch"
        )
        receive_none(receiver)
    with client.get_queue_receiver(
        "settle", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=5
    ) as dead_letters:
        (dead,) = receive_exactly(dead_letters, 1)
        assert text(dead) == "bad"
        assert dead.dead_letter_reason == "InvalidVhd"
        assert dead.dead_letter_error_description == "footer checksum mismatch"
        assert app_properties(dead)["id"] == "b1"
        assert dead.sequence_number == message.sequence_number
        dead_letters.complete_message(dead)
        receive_none(dead_letters)


def test_defer_then_receive_deferred_and_complete(client: ServiceBusClient) -> None:
    with client.get_queue_sender("defer") as sender:
        sender.send_messages(ServiceBusMessage("later, please"))
    with client.get_queue_receiver("defer", max_wait_time=5) as receiver:
        (message,) = receive_exactly(receiver, 1)
        receiver.defer_message(message)
        receive_none(receiver)
        (peeked,) = receiver.peek_messages(5, sequence_number=message.sequence_number, timeout=10)
        assert peeked.state == ServiceBusMessageState.DEFERRED
        (deferred,) = receiver.receive_deferred_messages([message.sequence_number], timeout=10)
        assert text(deferred) == "later, please"
        assert deferred.sequence_number == message.sequence_number
        assert isinstance(deferred.lock_token, uuid.UUID)
        assert deferred.locked_until_utc is not None
        assert deferred.locked_until_utc > datetime.now(UTC)
        receiver.complete_message(deferred)
        with pytest.raises(MessageNotFoundError):
            receiver.receive_deferred_messages([message.sequence_number], timeout=10)


def test_renew_lock_extends_locked_until(client: ServiceBusClient) -> None:
    with client.get_queue_sender("renew") as sender:
        sender.send_messages(ServiceBusMessage("long job"))
    with client.get_queue_receiver("renew", max_wait_time=5) as receiver:
        (message,) = receive_exactly(receiver, 1)
        first_until = message.locked_until_utc
        time.sleep(1.0)
        renewed = receiver.renew_message_lock(message, timeout=10)
        assert renewed >= first_until + timedelta(seconds=0.9)
        assert message.locked_until_utc == renewed
        time.sleep(1.3)  # past the original 2 s lock, inside the renewed one
        assert datetime.now(UTC) > first_until
        receiver.complete_message(message)
        receive_none(receiver)


def test_expired_lock_is_lost_at_the_service(client: ServiceBusClient) -> None:
    with client.get_queue_sender("lock-lost") as sender:
        sender.send_messages(ServiceBusMessage("slow consumer"))
    with client.get_queue_receiver("lock-lost", max_wait_time=5) as receiver:
        (message,) = receive_exactly(receiver, 1)
        time.sleep(1.5)  # the 1 s lock expires; the emulator unlocks it
        with pytest.raises(MessageLockLostError):
            receiver.renew_message_lock(message, timeout=10)
        # Defeat the SDK's own clock check so the settlement reaches the emulator.
        message._expiry = datetime.now(UTC) + timedelta(minutes=1)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(message)
        (again,) = receive_exactly(receiver, 1)
        assert again.sequence_number == message.sequence_number
        assert again.delivery_count == 1
        receiver.complete_message(again)


def test_scheduled_message_waits_for_its_time_and_can_be_cancelled(
    client: ServiceBusClient,
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=4)
    with client.get_queue_sender("scheduled") as sender:
        (kept,) = sender.schedule_messages(ServiceBusMessage("at four"), due, timeout=10)
        (cancelled,) = sender.schedule_messages(ServiceBusMessage("never"), due, timeout=10)
        assert cancelled > kept
        sender.cancel_scheduled_messages(cancelled, timeout=10)
        with pytest.raises(MessageNotFoundError):
            sender.cancel_scheduled_messages(cancelled, timeout=10)
    with client.get_queue_receiver("scheduled", max_wait_time=5) as receiver:
        (peeked,) = receiver.peek_messages(10, sequence_number=kept, timeout=10)
        assert peeked.state == ServiceBusMessageState.SCHEDULED
        assert peeked.scheduled_enqueue_time_utc is not None
        assert abs(peeked.scheduled_enqueue_time_utc - due) < timedelta(milliseconds=5)
        early = (due - datetime.now(UTC)).total_seconds() - 0.5
        assert early > 0.5, "the test set-up took too long to check the early window"
        receive_none(receiver, wait=early)
        assert datetime.now(UTC) < due
        (message,) = receive_exactly(receiver, 1)
        assert datetime.now(UTC) >= due
        assert text(message) == "at four"
        assert message.sequence_number == kept
        assert message.enqueued_time_utc >= due - timedelta(milliseconds=5)
        receiver.complete_message(message)
        receive_none(receiver)


def test_peek_returns_messages_without_locking(client: ServiceBusClient) -> None:
    with client.get_queue_sender("peek") as sender:
        sender.send_messages([ServiceBusMessage(f"p{i}") for i in range(3)], timeout=10)
    with client.get_queue_receiver("peek", max_wait_time=5) as receiver:
        peeked = receiver.peek_messages(10, sequence_number=1, timeout=10)
        assert [text(m) for m in peeked] == ["p0", "p1", "p2"]
        assert all(m.lock_token is None or m.locked_until_utc is None for m in peeked)
        second = peeked[1].sequence_number
        assert second is not None
        tail = receiver.peek_messages(10, sequence_number=second, timeout=10)
        assert [text(m) for m in tail] == ["p1", "p2"]
        messages = receive_exactly(receiver, 3)
        assert [m.delivery_count for m in messages] == [0, 0, 0]
        assert [m.sequence_number for m in messages] == [m.sequence_number for m in peeked]
        for message in messages:
            receiver.complete_message(message)
        assert receiver.peek_messages(10, sequence_number=1, timeout=10) == []


def test_expired_messages_are_not_delivered(client: ServiceBusClient) -> None:
    with client.get_queue_sender("ttl") as sender:
        sender.send_messages(ServiceBusMessage("short", time_to_live=timedelta(seconds=1)))
        sender.send_messages(ServiceBusMessage("long"))
    with client.get_queue_sender("ttl-drop") as sender:
        sender.send_messages(ServiceBusMessage("default ttl of 1 s"))
    time.sleep(1.5)
    with client.get_queue_receiver("ttl", max_wait_time=5) as receiver:
        (message,) = receive_exactly(receiver, 1)
        assert text(message) == "long"
        receiver.complete_message(message)
        receive_none(receiver)
    with client.get_queue_receiver(
        "ttl", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=5
    ) as dead_letters:
        (dead,) = receive_exactly(dead_letters, 1)
        assert text(dead) == "short"
        assert dead.dead_letter_reason == "TTLExpiredException"
        dead_letters.complete_message(dead)
    with client.get_queue_receiver("ttl-drop", max_wait_time=5) as receiver:
        assert receiver.peek_messages(10, sequence_number=1, timeout=10) == []
    with client.get_queue_receiver(
        "ttl-drop", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=5
    ) as dead_letters:
        receive_none(dead_letters)


def test_duplicate_detection_drops_a_repeated_message_id(client: ServiceBusClient) -> None:
    for queue in ("dedup", "no-dedup"):
        with client.get_queue_sender(queue) as sender:
            sender.send_messages(ServiceBusMessage("first", message_id="build-1"), timeout=10)
            sender.send_messages(ServiceBusMessage("again", message_id="build-1"), timeout=10)
            sender.send_messages(ServiceBusMessage("other", message_id="build-2"), timeout=10)
    with client.get_queue_receiver("dedup", max_wait_time=5) as receiver:
        messages = receive_exactly(receiver, 2)
        assert [(m.message_id, text(m)) for m in messages] == [
            ("build-1", "first"),
            ("build-2", "other"),
        ]
        for message in messages:
            receiver.complete_message(message)
        receive_none(receiver)
    with client.get_queue_receiver("no-dedup", max_wait_time=5) as receiver:
        messages = receive_exactly(receiver, 3)
        assert [text(m) for m in messages] == ["first", "again", "other"]
        for message in messages:
            receiver.complete_message(message)


def test_receive_and_delete_removes_on_delivery(client: ServiceBusClient) -> None:
    with client.get_queue_sender("rad") as sender:
        sender.send_messages([ServiceBusMessage("x"), ServiceBusMessage("y")], timeout=10)
    with client.get_queue_receiver(
        "rad", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE, max_wait_time=5
    ) as receiver:
        messages = receive_exactly(receiver, 2)
        assert [text(m) for m in messages] == ["x", "y"]
        assert all(m.lock_token is None for m in messages)
    with client.get_queue_receiver("rad", max_wait_time=5) as receiver:
        assert receiver.peek_messages(10, sequence_number=1, timeout=10) == []
        receive_none(receiver)


def test_topic_fans_out_to_each_subscription(client: ServiceBusClient) -> None:
    with client.get_topic_sender("events") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("built", application_properties={"type": "BuildSucceeded"}),
                ServiceBusMessage("replicated"),
            ],
            timeout=10,
        )
    with client.get_subscription_receiver("EVENTS", "Tracker", max_wait_time=5) as tracker:
        tracked = receive_exactly(tracker, 2)
        assert [text(m) for m in tracked] == ["built", "replicated"]
        assert app_properties(tracked[0]) == {"type": "BuildSucceeded"}
        for message in tracked:
            tracker.complete_message(message)
        receive_none(tracker)
    with client.get_subscription_receiver("events", "audit", max_wait_time=5) as audit:
        audited = receive_exactly(audit, 2)
        assert [text(m) for m in audited] == ["built", "replicated"]
        assert [m.sequence_number for m in audited] == [m.sequence_number for m in tracked]
        audit.complete_message(audited[0])
        audit.dead_letter_message(audited[1], reason="NotInteresting", error_description="test")
    with client.get_subscription_receiver(
        "events", "audit", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=5
    ) as audit_dead:
        (dead,) = receive_exactly(audit_dead, 1)
        assert (text(dead), dead.dead_letter_reason) == ("replicated", "NotInteresting")
        audit_dead.complete_message(dead)
    with client.get_subscription_receiver(
        "events", "tracker", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=5
    ) as tracker_dead:
        receive_none(tracker_dead)


def test_missing_entity_fails_like_the_service(servicebus: Emulator) -> None:
    # The service refuses the CBS token for a missing entity: 404 "... could not be found".
    client = ServiceBusClient.from_connection_string(
        servicebus.connection_string, **{**CLIENT_OPTIONS, "retry_total": 0}
    )
    with (
        pytest.raises(ServiceBusAuthenticationError) as refused,
        client.get_queue_sender("no-such-queue") as sender,
    ):
        sender.send_messages(ServiceBusMessage("lost"), timeout=10)
    cause = str(refused.value.inner_exception)
    assert "404" in cause
    assert "'sb://127.0.0.1/no-such-queue' could not be found" in cause
    with (
        pytest.raises(ServiceBusAuthenticationError) as refused,
        client.get_subscription_receiver("events", "no-such-sub", max_wait_time=2) as receiver,
    ):
        receiver.receive_messages(max_wait_time=2)
    assert "events/subscriptions/no-such-sub' could not be found" in str(
        refused.value.inner_exception
    )
    client.close()


def test_async_client_send_receive_complete(servicebus: Emulator) -> None:
    async def scenario() -> list[tuple[str, int | None]]:
        async with AsyncServiceBusClient.from_connection_string(
            servicebus.connection_string, **CLIENT_OPTIONS
        ) as async_client:
            async with async_client.get_queue_sender("async") as sender:
                await sender.send_messages(
                    [ServiceBusMessage(f"a{i}") for i in range(3)], timeout=10
                )
            seen: list[tuple[str, int | None]] = []
            async with async_client.get_queue_receiver("async", max_wait_time=5) as receiver:
                while len(seen) < 3:
                    batch = await receiver.receive_messages(max_message_count=3, max_wait_time=5)
                    assert batch, "no message within 5 s"
                    for message in batch:
                        seen.append((text(message), message.delivery_count))
                        await receiver.complete_message(message)
                assert await receiver.receive_messages(max_wait_time=0.5) == []
            return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), timeout=45))
    assert seen == [("a0", 0), ("a1", 0), ("a2", 0)]
