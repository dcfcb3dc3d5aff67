"""Fixtures for the Service Bus emulator contract tests: the emulator as a subprocess.

Every SDK client made here has short retry, auth and operation timeouts, so a misbehaving
emulator fails a test instead of hanging it; pytest-timeout bounds each test as a last resort.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceiver, ServiceBusSender

from devstack.procs import ManagedProcess, free_port
from devstack.servicebus import connection_string, start_servicebus

REPO_ROOT_FOR_CHILD = str(Path(__file__).resolve().parents[3])

# Short, bounded SDK behaviour for tests: one retry, 10 s per attempt.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 1,
    "retry_backoff_factor": 0.1,
    "auth_timeout": 10,
    "try_timeout": 10,
    "timeout": 10,
}

TEST_CONFIG: dict[str, Any] = {
    "queues": [
        {"name": "basic", "lockDuration": "PT30S"},
        {"name": "settle", "lockDuration": "PT30S", "maxDeliveryCount": 10},
        {"name": "defer", "lockDuration": "PT30S"},
        {"name": "renew", "lockDuration": "PT2S"},
        {"name": "short-lock", "lockDuration": "PT1S", "maxDeliveryCount": 10},
        {"name": "max-delivery", "lockDuration": "PT30S", "maxDeliveryCount": 3},
        {"name": "scheduled", "lockDuration": "PT30S"},
        {"name": "peek", "lockDuration": "PT30S"},
        {
            "name": "ttl",
            "defaultMessageTimeToLive": "PT1H",
            "deadLetteringOnMessageExpiration": True,
        },
        {"name": "ttl-drop", "defaultMessageTimeToLive": "PT1S"},
        {
            "name": "dedup",
            "requiresDuplicateDetection": True,
            "duplicateDetectionHistoryTimeWindow": "PT1M",
        },
        {"name": "no-dedup"},
        {"name": "rad"},
        {"name": "crash", "lockDuration": "PT2S", "maxDeliveryCount": 5},
        {"name": "durable", "lockDuration": "PT30S"},
        {"name": "async", "lockDuration": "PT30S"},
        {"name": "lock-lost", "lockDuration": "PT1S"},
    ],
    "topics": [
        {
            "name": "events",
            "subscriptions": [
                {"name": "tracker", "lockDuration": "PT30S"},
                {"name": "audit", "lockDuration": "PT30S", "maxDeliveryCount": 2},
            ],
        }
    ],
}


class FastCloseClient(ServiceBusClient):
    """The SDK client, but its senders and receivers run no keep-alive thread.

    Closing a sender or receiver joins that thread, which sleeps in 1 s steps: half a second
    per close on average, which adds up over a test folder. Emulator behaviour is unchanged.
    """

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> ServiceBusSender:
        return super().get_queue_sender(queue_name, **{"keep_alive": None, **kwargs})

    def get_topic_sender(self, topic_name: str, **kwargs: Any) -> ServiceBusSender:
        return super().get_topic_sender(topic_name, **{"keep_alive": None, **kwargs})

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> ServiceBusReceiver:
        return super().get_queue_receiver(queue_name, **{"keep_alive": None, **kwargs})

    def get_subscription_receiver(
        self, topic_name: str, subscription_name: str, **kwargs: Any
    ) -> ServiceBusReceiver:
        return super().get_subscription_receiver(
            topic_name, subscription_name, **{"keep_alive": None, **kwargs}
        )


@dataclass
class Emulator:
    """A running emulator subprocess and how to reach it."""

    port: int
    data_dir: Path
    log_path: Path
    config_path: Path
    process: ManagedProcess

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def client(self) -> ServiceBusClient:
        return FastCloseClient.from_connection_string(self.connection_string, **CLIENT_OPTIONS)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``kill``) and start again on the same port and data."""
        if kill:
            self.process.kill()
        else:
            self.process.stop(timeout=10)
        self.process = start_servicebus(
            self.port, self.data_dir, self.log_path, config=self.config_path, timeout=30
        )


def _start(work: Path) -> Emulator:
    config_path = work / "config.json"
    config_path.write_text(json.dumps(TEST_CONFIG), encoding="utf-8")
    port = free_port()
    data_dir = work / "data"
    log_path = work / "servicebus.log"
    process = start_servicebus(port, data_dir, log_path, config=config_path, timeout=30)
    return Emulator(port, data_dir, log_path, config_path, process)


@pytest.fixture(scope="session")
def servicebus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator for the folder (tests use separate entities), always stopped."""
    emulator = _start(tmp_path_factory.mktemp("servicebus"))
    try:
        yield emulator
    finally:
        emulator.process.stop(timeout=10)


@pytest.fixture
def private_servicebus(tmp_path: Path) -> Iterator[Emulator]:
    """An emulator of the test's own (for restarts), always stopped."""
    emulator = _start(tmp_path)
    try:
        yield emulator
    finally:
        emulator.process.stop(timeout=10)


@pytest.fixture
def client(servicebus: Emulator) -> Iterator[ServiceBusClient]:
    """A sync SDK client of the shared emulator, closed after the test."""
    with servicebus.client() as sb_client:
        yield sb_client


def text(message: Any) -> str:
    """The body of a received message as text (data sections joined)."""
    return b"".join(message.body).decode("utf-8")


def app_properties(message: Any) -> dict[str, Any]:
    """Application properties with str keys/values (pyamqp hands back bytes)."""
    result: dict[str, Any] = {}
    for key, value in (message.application_properties or {}).items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        result[name] = value.decode() if isinstance(value, bytes) else value
    return result


Predicate = Callable[[], bool]
