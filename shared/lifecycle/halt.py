"""The lifecycle halt: the circuit breaker stops every change until an operator acknowledges it.

A live run whose plan holds more deletions than ``GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN`` (not
counting deletions acknowledged before) trips the breaker: it changes nothing, records in its
audit document what it would have done and the cap, publishes
``com.gallery-pipeline.lifecycle.halted``, and writes the halt document (``halt.json`` in the
audit store, by compare-and-swap). Every later run plans but applies nothing, and says so, until
``galleryctl lifecycle ack RUN_ID`` acknowledges the halting run; who and when are recorded in the
halt document.

Acknowledging approves what the halting run would have deleted: later runs may delete those
versions (each still checked by every rail) at most the cap per run, oldest first, without
tripping again. Deletions beyond the cap that were not approved trip it again. The approval is
spent once a run finds none of its versions left to delete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from shared.core.documents import KEEP, Change, DocumentStore, cas_update
from shared.core.errors import PermanentError
from shared.lifecycle.plan import Action, Plan, Rule

#: The halt document's key in the audit store (the blob ``halt.json``).
HALT_KEY: Final = "halt"
#: Earlier halts kept in the document, with who acknowledged them and when.
HISTORY_KEPT: Final = 20
REASON: Final = "circuit-breaker"


class NoHaltToAcknowledge(PermanentError):
    """``galleryctl lifecycle ack`` named a run that is not the halt (or no run at all)."""

    reason = "NotTheHalt"


class RunLookup(Protocol):
    """Run documents of the audit store, by run id."""

    def run_document(self, run_id: str) -> Mapping[str, Any] | None: ...


def ack_command(run_id: str) -> str:
    return f"galleryctl lifecycle ack {run_id}"


@dataclass(frozen=True)
class Halt:
    run_id: str
    halted_at: str
    max_deletions_per_run: int
    would_delete: tuple[str, ...]
    would_deprecate: int
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    approval_spent_at: str | None = None

    @property
    def active(self) -> bool:
        return self.acknowledged_at is None

    @property
    def message(self) -> str:
        head = (
            f"run {self.run_id} would delete {len(self.would_delete)} versions, more than the "
            f"{self.max_deletions_per_run} allowed per run "
            "(GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN)"
        )
        if not self.active:
            return f"{head}; acknowledged by {self.acknowledged_by} at {self.acknowledged_at}"
        return (
            f"{head}: the lifecycle is halted and changes nothing. Read the run's plan in the "
            f"audit store, then acknowledge it: {ack_command(self.run_id)}"
        )

    @property
    def approved_deletions(self) -> frozenset[str]:
        """What the acknowledgement lets later runs delete (empty while halted, or once spent)."""
        if self.active or self.approval_spent_at is not None:
            return frozenset()
        return frozenset(i.lower() for i in self.would_delete)

    def to_document(self) -> dict[str, Any]:
        return {
            "state": "halted" if self.active else "acknowledged",
            "reason": REASON,
            "runId": self.run_id,
            "haltedAt": self.halted_at,
            "maxDeletionsPerRun": self.max_deletions_per_run,
            "wouldDelete": list(self.would_delete),
            "wouldDeprecate": self.would_deprecate,
            "acknowledgedBy": self.acknowledged_by,
            "acknowledgedAt": self.acknowledged_at,
            "approvalSpentAt": self.approval_spent_at,
            "message": self.message,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Halt:
        return cls(
            run_id=str(document["runId"]),
            halted_at=str(document.get("haltedAt") or ""),
            max_deletions_per_run=int(document.get("maxDeletionsPerRun") or 0),
            would_delete=tuple(str(i) for i in document.get("wouldDelete") or ()),
            would_deprecate=int(document.get("wouldDeprecate") or 0),
            acknowledged_by=document.get("acknowledgedBy"),
            acknowledged_at=document.get("acknowledgedAt"),
            approval_spent_at=document.get("approvalSpentAt"),
        )

    @classmethod
    def of_plan(cls, run_id: str, plan: Plan) -> Halt:
        """The halt a tripped plan causes: what it would have done, and the cap."""
        return cls(
            run_id=run_id,
            halted_at=plan.created_at.isoformat(),
            max_deletions_per_run=plan.policy.max_deletions_per_run,
            would_delete=tuple(e.version_id for e in plan.entries if e.action is Action.DELETE),
            would_deprecate=plan.count(Action.DEPRECATE),
        )


def _history(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The earlier halts, newest first, the current one included (without its version list)."""
    if not document:
        return []
    earlier = [dict(h) for h in document.get("history") or []]
    return [{**dict(document), "history": [], "wouldDelete": []}, *earlier][:HISTORY_KEPT]


class HaltRegistry:
    """The halt document in the audit store; every change is a compare-and-swap."""

    def __init__(self, store: DocumentStore, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def current(self) -> Halt | None:
        """The latest halt (active or acknowledged), or ``None`` when there never was one."""
        found = self._store.read(HALT_KEY)
        return Halt.from_document(found[0]) if found is not None else None

    def trip(self, halt: Halt) -> tuple[Halt, bool]:
        """Record ``halt`` unless one is active already; returns the halt in force and whether it
        is the new one."""

        def mutate(document: dict[str, Any] | None) -> tuple[Change, tuple[Halt, bool]]:
            if document is not None and Halt.from_document(document).active:
                return KEEP, (Halt.from_document(document), False)
            return {**halt.to_document(), "history": _history(document)}, (halt, True)

        return cas_update(self._store, HALT_KEY, mutate, what="the lifecycle halt")

    def acknowledge(self, run_id: str, *, by: str, runs: RunLookup) -> Halt:
        """Acknowledge the halt of ``run_id`` (idempotent: a second call changes nothing).

        Raises :class:`NoHaltToAcknowledge` when ``run_id`` is no run, or not the halting one."""
        moment = self._clock().isoformat()

        def mutate(document: dict[str, Any] | None) -> tuple[Change, Halt | None]:
            if document is None:
                return KEEP, None
            for entry in [document, *(document.get("history") or [])]:
                if entry.get("runId") == run_id:
                    halt = Halt.from_document(entry)
                    if entry is not document or not halt.active:
                        return KEEP, halt
                    done = dataclasses.replace(halt, acknowledged_by=by, acknowledged_at=moment)
                    return {**document, **done.to_document()}, done
            return KEEP, None

        found = cas_update(self._store, HALT_KEY, mutate, what="the lifecycle halt")
        if found is None:
            raise self._refusal(run_id, runs)
        return found

    def spend_approval(self, run_id: str) -> None:
        """The acknowledged deletions are all done (or held by other rails): forget them."""
        moment = self._clock().isoformat()

        def mutate(document: dict[str, Any] | None) -> tuple[Change, None]:
            if document is None or not Halt.from_document(document).approved_deletions:
                return KEEP, None
            return {**document, "approvalSpentAt": moment, "approvalSpentBy": run_id}, None

        cas_update(self._store, HALT_KEY, mutate, what="the lifecycle halt")

    def _refusal(self, run_id: str, runs: RunLookup) -> NoHaltToAcknowledge:
        document = runs.run_document(run_id)
        if document is None:
            return NoHaltToAcknowledge(
                f"no lifecycle run {run_id!r} in the audit store: nothing to acknowledge",
                reason="UnknownRun",
            )
        held_by = (document.get("halt") or {}).get("runId")
        if held_by and held_by != run_id:
            return NoHaltToAcknowledge(
                f"run {run_id} did not trip the circuit breaker: it was held by the halt of run "
                f"{held_by}; acknowledge {held_by} instead ({ack_command(held_by)})"
            )
        current = self.current()
        now = (
            f"the lifecycle is halted by run {current.run_id}"
            if current is not None and current.active
            else "the lifecycle is not halted"
        )
        return NoHaltToAcknowledge(
            f"run {run_id} is not the halt to acknowledge (status {document.get('status')}); {now}"
        )


def waiting_for_next_run(plan: Plan) -> set[str]:
    """Version ids the plan would delete now or in a later run (cut by the cap)."""
    return {
        e.version_id.lower()
        for e in plan.entries
        if e.action is Action.DELETE or e.rule is Rule.CIRCUIT_BREAKER
    }
