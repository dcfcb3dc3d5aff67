"""Bounded helpers for talking to the emulator with the real SDK."""

from __future__ import annotations

import time
from typing import Any


def receive_exactly(receiver: Any, count: int, *, timeout: float = 10.0) -> list[Any]:
    """Receive until ``count`` messages arrived; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    received: list[Any] = []
    while len(received) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"received {len(received)} of {count} messages in {timeout}s")
        received += receiver.receive_messages(
            max_message_count=count - len(received), max_wait_time=max(0.5, min(remaining, 5.0))
        )
    return received


def receive_none(receiver: Any, *, wait: float = 0.3) -> None:
    """Assert that nothing is delivered within ``wait`` seconds.

    The emulator dispatches an available message within milliseconds, so a short wait is
    enough to tell "nothing available" from "available".
    """
    got = receiver.receive_messages(max_message_count=5, max_wait_time=wait)
    assert got == [], f"expected no message, got {[str(m) for m in got]}"
