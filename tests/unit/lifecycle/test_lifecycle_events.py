"""Lifecycle runs publish CloudEvents: one per action done, and a run summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.errors import PermanentError, TransientError
from shared.lifecycle.events import RUN_EVENT_TYPE, VERSION_EVENT_PREFIX
from tests.unit.lifecycle.test_lifecycle_service import FakeInventory, gone, service, version


class RecordingSink:
    def __init__(self, fail_first: Exception | None = None) -> None:
        self.events: list[Mapping[str, Any]] = []
        self._fail = fail_first

    def publish(self, event: Mapping[str, Any]) -> None:
        if self._fail is not None:
            error, self._fail = self._fail, None
            raise error
        self.events.append(event)


def test_an_applied_run_publishes_each_action_and_a_summary() -> None:
    inventory = FakeInventory((gone("1.0.0"), version("1.1.0", eol_days=-1), version("2.0.0")))
    svc, _, _ = service(inventory, dry_run=False)
    sink = svc.events = RecordingSink()

    svc.run()

    types = [e["type"] for e in sink.events]
    assert types == [
        VERSION_EVENT_PREFIX + "deleted",  # plan order: oldest first
        VERSION_EVENT_PREFIX + "deprecated",
        RUN_EVENT_TYPE,
    ]
    deleted, deprecated, summary = sink.events
    assert deprecated["subject"].endswith("/versions/1.1.0")
    assert deprecated["data"]["rule"] == "end-of-life" and deprecated["specversion"] == "1.0"
    assert deleted["subject"].endswith("/versions/1.0.0")
    assert deleted["source"].endswith("/images/app")
    assert summary["data"]["status"] == "applied"
    assert summary["data"]["planned"] == {"deprecate": 1, "delete": 1}
    assert summary["data"]["done"] == 2 and summary["id"] == "run1:run"


def test_a_dry_run_publishes_only_its_summary() -> None:
    inventory = FakeInventory((gone("1.0.0"), version("2.0.0")))
    svc, writer, _ = service(inventory, dry_run=True)
    sink = svc.events = RecordingSink()

    svc.run()

    assert writer.calls == []
    [summary] = sink.events
    assert summary["type"] == RUN_EVENT_TYPE and summary["data"]["status"] == "dry-run"
    assert summary["data"]["planned"] == {"deprecate": 0, "delete": 1}


def test_a_failed_publish_neither_fails_the_run_nor_stops_the_other_events() -> None:
    for error in (TransientError("bus down"), PermanentError("no Service Bus configured")):
        inventory = FakeInventory((gone("1.0.0"), version("2.0.0")))
        svc, writer, audit = service(inventory, dry_run=False)
        sink = svc.events = RecordingSink(fail_first=error)

        svc.run()

        assert writer.calls == [("delete", "1.0.0")]
        assert [e["type"] for e in sink.events] == [RUN_EVENT_TYPE]
        assert audit.writes[-1][1]["status"] == "applied"
