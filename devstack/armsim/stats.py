"""Counters served by ``GET /admin/stats``."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """ARM calls and throttles by operation group, source-conflict violations, event deliveries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arm_calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.injected_errors: Counter[str] = Counter()
        self.source_conflicts = 0
        self.source_conflict_ids: list[str] = []
        self.events_delivered = 0
        self.events_failed = 0

    def count_call(self, group: str) -> None:
        with self._lock:
            self.arm_calls[group] += 1

    def count_throttle(self, group: str) -> None:
        with self._lock:
            self.throttled[group] += 1

    def count_injected(self, group: str) -> None:
        with self._lock:
            self.injected_errors[group] += 1

    def count_source_conflict(self, source: str) -> None:
        with self._lock:
            self.source_conflicts += 1
            self.source_conflict_ids.append(source)

    def count_event(self, *, delivered: bool) -> None:
        with self._lock:
            if delivered:
                self.events_delivered += 1
            else:
                self.events_failed += 1

    def reset(self) -> None:
        with self._lock:
            self.arm_calls.clear()
            self.throttled.clear()
            self.injected_errors.clear()
            self.source_conflicts = 0
            self.source_conflict_ids.clear()
            self.events_delivered = 0
            self.events_failed = 0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "armCalls": dict(self.arm_calls),
                "armCallsTotal": sum(self.arm_calls.values()),
                "throttled": dict(self.throttled),
                "injectedErrors": dict(self.injected_errors),
                "sourceConflicts": self.source_conflicts,
                "sourceConflictIds": list(self.source_conflict_ids),
                "eventsDelivered": self.events_delivered,
                "eventsFailed": self.events_failed,
            }
