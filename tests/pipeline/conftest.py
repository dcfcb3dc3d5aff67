"""The whole local stack for end-to-end tests: Azurite, Service Bus emulator, ARM simulator and
the mini Functions host running ``function_app.py``, on free ports with files in a tmp dir.

Started once per session through ``devstack up`` (the same code as ``make demo``). Every client
here has timeouts; every wait is bounded.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue

from devstack.stack import (
    FAST_PIPELINE_SETTINGS,
    LocalStack,
    definition_resource,
    gallery_resource,
    snapshot_resource,
    start_local_stack,
    storage_account_resource,
)


class Stack(LocalStack):
    """The local stack with the tests' seeding, messaging and waiting helpers."""

    def seed_definition(self, name: str) -> str:
        resource = definition_resource(name, publisher="contoso", offer="test")
        self.seed(resource)
        return str(resource["id"])

    def seed_snapshot(self, name: str) -> str:
        resource = snapshot_resource(name)
        self.seed(resource)
        return str(resource["id"])

    def queue_is_empty(self, queue: str) -> bool:
        with self.bus() as client, client.get_queue_receiver(queue) as receiver:
            return not receiver.peek_messages(max_message_count=1, timeout=5)

    def dead_letters(
        self,
        queue: str,
        expected: int,
        timeout: float = 30,
        message_ids: set[str] | None = None,
    ) -> list[Any]:
        """Receive ``expected`` dead-lettered messages of ``queue`` (complete them). With
        ``message_ids``, only those count; other tests' dead letters are left alone."""
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        with (
            self.bus() as client,
            client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver,
        ):
            while len(found) < expected and time.monotonic() < deadline:
                for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                    if message_ids is not None and str(message.message_id) not in message_ids:
                        receiver.abandon_message(message)
                        continue
                    found.append(message)
                    receiver.complete_message(message)
        return found

    def events_for(self, build_id: str, *, until_type: str, timeout: float = 30) -> list[Any]:
        """CloudEvents of one build from the topic's ``audit`` subscription, in order."""
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        with (
            self.bus() as client,
            client.get_subscription_receiver("image-build-events", "audit") as receiver,
        ):
            while time.monotonic() < deadline:
                for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                    receiver.complete_message(message)
                    event = json.loads(b"".join(message.body))
                    if event["subject"] == build_id:
                        found.append(event)
                if found and found[-1]["type"] == until_type:
                    return found
        raise AssertionError(f"no {until_type} event for {build_id} in {timeout}s: {found}")

    def send_raw(self, body: bytes, message_id: str) -> None:
        with self.bus() as client, client.get_queue_sender("image-builds") as sender:
            sender.send_messages(ServiceBusMessage(body, message_id=message_id), timeout=10)

    def send_request(self, document: dict[str, Any], message_id: str | None = None) -> None:
        with self.bus() as client, client.get_queue_sender("image-builds") as sender:
            sender.send_messages(
                ServiceBusMessage(
                    json.dumps(document),
                    message_id=message_id or document.get("requestId") or uuid.uuid4().hex,
                    content_type="application/json",
                ),
                timeout=10,
            )

    def wait_for_build(
        self,
        build_id: str,
        *,
        states: tuple[str, ...] = ("succeeded", "failed"),
        timeout: float = 60,
    ) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(
            lambda: _state_in(self.api(f"builds/{build_id}"), states),
            timeout=timeout,
            what=f"build {build_id} to reach {states}",
        )
        return found


def _state_in(answer: tuple[int, Any], states: tuple[str, ...]) -> dict[str, Any] | None:
    status, body = answer
    if status == 200 and body["state"] in states:
        result: dict[str, Any] = body
        return result
    return None


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def start_stack(tmp: Path, settings: dict[str, str] | None = None) -> Stack:
    """The stack with the fast pipeline settings (and ``settings``), the gallery and the
    storage account seeded; stop it with ``stop()`` or ``with``."""
    local = start_local_stack(
        tmp,
        settings={**FAST_PIPELINE_SETTINGS, **(settings or {})},
        arm_speed=100.0,
        timeout=30.0,
        seed=(gallery_resource(), storage_account_resource()),
    )
    return Stack(local.layout, local.processes)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
