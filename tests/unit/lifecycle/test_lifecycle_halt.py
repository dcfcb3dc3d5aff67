"""The circuit breaker halts: a run over the deletion cap changes nothing, records why, alerts, and
every later run stays halted until an operator acknowledges the halting run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from shared.lifecycle.facts import VersionFacts
from shared.lifecycle.halt import HALT_KEY, Halt, HaltRegistry, NoHaltToAcknowledge
from shared.lifecycle.plan import Action, LifecyclePolicy, Rule
from shared.lifecycle.service import LifecycleService
from tests.unit.lifecycle.test_lifecycle_service import (
    NOW,
    SUB,
    FakeInventory,
    MemoryAudit,
    RecordingWriter,
    gone,
    version,
)
from tests.unit.store_fakes import InMemoryDocumentStore

HALTED_EVENT = "com.gallery-pipeline.lifecycle.halted"


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []

    def publish(self, event: Mapping[str, Any]) -> None:
        self.events.append(event)


class Bench:
    """One gallery, its audit store and halt state, and a run id per run."""

    def __init__(self) -> None:
        self.store = InMemoryDocumentStore()
        self.halts = HaltRegistry(self.store, clock=lambda: NOW)
        self.audit = MemoryAudit()
        self.writer = RecordingWriter()
        self.events = RecordingSink()
        self.runs = 0

    def run(self, versions: tuple[VersionFacts, ...], **policy: Any) -> dict[str, Any]:
        self.runs += 1
        self.writer.calls.clear()
        policy.setdefault("min_keep_per_definition", 1)
        policy.setdefault("dry_run", False)
        service = LifecycleService(
            inventory=FakeInventory(versions),
            writer=self.writer,
            audit=self.audit,
            policy=LifecyclePolicy(**policy),
            target_patterns=(f"{SUB}/rg/gal",),
            clock=lambda: NOW,
            run_ids=lambda: f"run{self.runs}",
            events=self.events,
            halts=self.halts,
        )
        service.run()
        return self.audit.writes[-1][1]


BACKLOG = (*(gone(f"1.{n}.0") for n in range(5)), version("2.0.0"))


def test_the_halting_run_records_why_and_publishes_an_alert() -> None:
    bench = Bench()
    document = bench.run(BACKLOG, max_deletions_per_run=2)
    assert bench.writer.calls == []
    assert document["status"] == "halted"
    halt = document["halt"]
    assert halt["runId"] == "run1"
    assert halt["maxDeletionsPerRun"] == 2
    assert len(halt["wouldDelete"]) == 5
    assert "galleryctl lifecycle ack run1" in halt["message"]
    [alert] = [e for e in bench.events.events if e["type"] == HALTED_EVENT]
    assert alert["subject"] == "run1"
    assert alert["data"]["wouldDelete"] == 5 and alert["data"]["maxDeletionsPerRun"] == 2
    stored = bench.store.read(HALT_KEY)
    assert stored is not None and stored[0]["runId"] == "run1"


def test_every_later_run_stays_halted_until_the_halt_is_acknowledged() -> None:
    bench = Bench()
    bench.run(BACKLOG, max_deletions_per_run=2)
    # a later run under the cap still applies nothing and says why
    document = bench.run((gone("1.0.0"), version("1.5.0", eol_days=-1), version("2.0.0")))
    assert bench.writer.calls == []
    assert document["status"] == "halted"
    assert document["halt"]["runId"] == "run1"

    halt = bench.halts.acknowledge("run1", by="alice", runs=bench.audit)
    assert (halt.acknowledged_by, halt.acknowledged_at) == ("alice", NOW.isoformat())
    stored = bench.store.read(HALT_KEY)
    assert stored is not None and stored[0]["acknowledgedBy"] == "alice"

    # the acknowledged backlog proceeds, oldest first, at most the cap per run
    document = bench.run(BACKLOG, max_deletions_per_run=2)
    assert document["status"] == "applied"
    assert bench.writer.calls == [("delete", "1.0.0"), ("delete", "1.1.0")]
    waiting = [e for e in document["plan"]["entries"] if e["rule"] == Rule.CIRCUIT_BREAKER]
    assert len(waiting) == 3 and all(e["action"] == Action.SKIP for e in waiting)


def test_new_deletions_beyond_the_cap_halt_again_after_an_acknowledgement() -> None:
    bench = Bench()
    bench.run(BACKLOG, max_deletions_per_run=2)
    bench.halts.acknowledge("run1", by="alice", runs=bench.audit)
    more = (*(gone(f"0.{n}.0") for n in range(3)), *BACKLOG)
    document = bench.run(more, max_deletions_per_run=2)
    assert document["status"] == "halted"
    assert document["halt"]["runId"] == "run2"
    assert bench.writer.calls == []


def test_acknowledging_is_idempotent_and_refuses_unknown_or_held_runs() -> None:
    bench = Bench()
    bench.run(BACKLOG, max_deletions_per_run=2)
    bench.run(BACKLOG, max_deletions_per_run=2)  # run2: held by run1's halt
    with pytest.raises(NoHaltToAcknowledge, match="no lifecycle run 'nope'") as unknown:
        bench.halts.acknowledge("nope", by="alice", runs=bench.audit)
    assert unknown.value.reason == "UnknownRun"
    with pytest.raises(NoHaltToAcknowledge, match="acknowledge run1") as held:
        bench.halts.acknowledge("run2", by="alice", runs=bench.audit)
    assert held.value.reason == "NotTheHalt"
    first = bench.halts.acknowledge("run1", by="alice", runs=bench.audit)
    again = bench.halts.acknowledge("run1", by="bob", runs=bench.audit)
    assert again.acknowledged_by == first.acknowledged_by == "alice"


def test_a_dry_run_over_the_cap_reports_it_but_does_not_halt_later_runs() -> None:
    bench = Bench()
    document = bench.run(BACKLOG, max_deletions_per_run=2, dry_run=True)
    assert document["status"] == "dry-run"
    assert document["plan"]["circuitBreakerTripped"] is True
    assert bench.store.read(HALT_KEY) is None
    assert bench.run((gone("1.0.0"), version("2.0.0")))["status"] == "applied"
    assert bench.writer.calls == [("delete", "1.0.0")]


def test_no_deletions_allowed_means_deletions_wait_without_halting() -> None:
    bench = Bench()
    document = bench.run(BACKLOG, max_deletions_per_run=0)
    assert document["status"] == "applied"
    assert {e["rule"] for e in document["plan"]["entries"]} == {Rule.CIRCUIT_BREAKER}
    assert bench.store.read(HALT_KEY) is None


def test_the_approval_is_spent_once_its_deletions_are_done() -> None:
    bench = Bench()
    bench.run(BACKLOG, max_deletions_per_run=2)
    bench.halts.acknowledge("run1", by="alice", runs=bench.audit)
    bench.run(BACKLOG, max_deletions_per_run=2)  # deletes 1.0.0 and 1.1.0
    current = bench.halts.current()
    assert current is not None and len(current.approved_deletions) == 5
    bench.run((version("2.0.0"),), max_deletions_per_run=2)  # none of them left
    current = bench.halts.current()
    assert current is not None and current.approved_deletions == frozenset()
    # the same version names published and expired again are new deletions: over the cap, a halt
    assert bench.run(BACKLOG, max_deletions_per_run=2)["status"] == "halted"


def test_a_halt_written_while_a_run_plans_stops_that_run_too() -> None:
    bench = Bench()

    class HaltedMeanwhile(FakeInventory):
        def arm_calls(self) -> Mapping[str, int]:  # read as planning ends: another run trips
            if bench.halts.current() is None:
                bench.halts.trip(Halt("other", NOW.isoformat(), 2, ("a", "b", "c"), 0))
            return super().arm_calls()

    service = LifecycleService(
        inventory=HaltedMeanwhile((gone("1.0.0"), version("2.0.0"))),
        writer=bench.writer,
        audit=bench.audit,
        policy=LifecyclePolicy(min_keep_per_definition=1, dry_run=False),
        target_patterns=(f"{SUB}/rg/gal",),
        clock=lambda: NOW,
        run_ids=lambda: "late",
        halts=bench.halts,
    )
    snapshot, _ = service.run()
    assert snapshot.status == "halted" and bench.writer.calls == []
    assert bench.audit.writes[-1][1]["halt"]["runId"] == "other"
