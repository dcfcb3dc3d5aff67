"""One lifecycle run: gather facts -> plan -> write the plan -> apply (unless dry-run or halted).

Domain orchestration over ports only (:class:`~shared.lifecycle.inventory.GalleryInventory`,
``GalleryWriter`` and ``AuditStore`` from :mod:`shared.lifecycle.apply`, the halt document of
:mod:`shared.lifecycle.halt`); the Azure adapters live in ``shared/adapters``. Which galleries and
which consumers are read: :mod:`shared.lifecycle.inventory`. If the in-use scan fails, the run
fails: a deletion is never a guess.

A live run whose plan trips the circuit breaker halts (changes nothing, records why, alerts), and
so does every later run until an operator acknowledges the halting run (``galleryctl lifecycle
ack``). A dry run never halts anything; it reports a halt in force, and a trip it would cause.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.core import metrics
from shared.core.errors import PipelineError
from shared.core.settings import LifecycleSettings
from shared.lifecycle.apply import AuditStore, GalleryWriter, RunOutcome, apply_plan
from shared.lifecycle.events import LifecycleEventSink, halted_event, publish_run
from shared.lifecycle.facts import GalleryFacts
from shared.lifecycle.halt import Halt, HaltRegistry, waiting_for_next_run
from shared.lifecycle.inventory import (
    GalleryInventory,
    GalleryRef,
    GalleryScope,
    ImageReference,
    gallery_scope,
    in_use_versions,
)
from shared.lifecycle.locks import LockIndex, LockReader
from shared.lifecycle.plan import LifecyclePolicy, Plan, build_plan

logger = logging.getLogger(__name__)

#: Azure's DeleteGalleryImageVersion throttling window (150 deletes per 3 minutes).
DELETE_WINDOW_SECONDS = 180.0
#: At most this many consumers are listed per in-use version in the audit document.
CONSUMERS_SHOWN = 20


class DeletePacer:
    """Keeps deletions under a budget per sliding window (Azure throttles deletes per 3 minutes).

    :meth:`wait` is called before every delete; it sleeps until the oldest delete of the window
    leaves it when the budget is spent. The longest wait is one window.
    """

    def __init__(
        self,
        budget: int,
        *,
        window_seconds: float = DELETE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if budget < 1:
            raise ValueError("the delete budget must be at least 1")
        self.budget = budget
        self.window = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._recent: deque[float] = deque()
        self.waited_seconds = 0.0

    def wait(self) -> None:
        now = self._clock()
        while self._recent and now - self._recent[0] >= self.window:
            self._recent.popleft()
        if len(self._recent) >= self.budget:
            delay = self._recent[0] + self.window - now
            if delay > 0:
                logger.info("pacing deletes: waiting %.1f s", delay)
                self._sleep(delay)
                self.waited_seconds += delay
            self._recent.popleft()
            now = self._clock()
        self._recent.append(now)


def policy_from_settings(settings: LifecycleSettings) -> LifecyclePolicy:
    return LifecyclePolicy(
        grace_period_days=settings.grace_days,
        min_keep_per_definition=settings.min_keep,
        max_age_days=settings.max_age_days,
        max_versions_per_definition=settings.max_versions,
        max_deletions_per_run=settings.max_deletions_per_run,
        max_deprecations_per_run=settings.max_deprecations_per_run,
        deprecated_replica_count=settings.deprecated_replicas,
        dry_run=settings.dry_run,
    )


@dataclass
class LifecycleSnapshot:
    """Everything a run knows before it acts: the plan and the context it was made in."""

    run_id: str
    plan: Plan
    scope: GalleryScope
    galleries_read: list[str] = field(default_factory=list)
    galleries_missing: list[str] = field(default_factory=list)
    subscriptions_scanned: list[str] = field(default_factory=list)
    in_use: dict[str, list[str]] = field(default_factory=dict)
    arm_calls: dict[str, int] = field(default_factory=dict)
    #: The latest halt when planning (active or acknowledged), then the one in force for the run.
    halt: Halt | None = None
    #: ``dry-run``, ``applied`` or ``halted`` once the run is over.
    status: str = "planned"
    #: The management locks read (one list per resource group of the galleries).
    locks: LockIndex = field(default_factory=LockIndex)

    @property
    def arm_calls_total(self) -> int:
        return sum(self.arm_calls.values())

    @property
    def halted(self) -> bool:
        return self.halt is not None and self.halt.active

    def context_document(self) -> dict[str, Any]:
        return {
            "galleries": self.galleries_read,
            "galleriesMissing": self.galleries_missing,
            "patternsSkipped": [{"pattern": p, "reason": r} for p, r in self.scope.skipped],
            "inUseSubscriptions": self.subscriptions_scanned,
            "inUse": {
                version: consumers[:CONSUMERS_SHOWN] for version, consumers in self.in_use.items()
            },
            "armCalls": {"total": self.arm_calls_total, "byKind": self.arm_calls},
            "locks": self.locks.to_document(),
        }

    def halt_document(self) -> dict[str, Any] | None:
        """The halt block of the run's document (``None`` unless the lifecycle is halted)."""
        return self.halt.to_document() if self.halted and self.halt is not None else None


class _ContextAudit:
    """Adds the run's status, halt and context to every document the domain writes."""

    def __init__(
        self,
        inner: AuditStore,
        snapshot: LifecycleSnapshot,
        context: Callable[[], Mapping[str, Any]],
    ) -> None:
        self._inner = inner
        self._snapshot = snapshot
        self._context = context

    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None:
        extra = {"status": self._snapshot.status, "context": dict(self._context())}
        halt = self._snapshot.halt_document()
        self._inner.write_run(run_id, {**document, **extra, **({"halt": halt} if halt else {})})


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class LifecycleService:
    """Plans and applies one lifecycle run over the target galleries.

    ``halts`` keeps the halt between runs (production: ``halt.json`` in the audit store). Without
    it, a run over the deletion cap still halts itself, but later runs are not held back.
    """

    def __init__(
        self,
        *,
        inventory: GalleryInventory,
        writer: GalleryWriter,
        audit: AuditStore,
        policy: LifecyclePolicy,
        target_patterns: Iterable[str],
        in_use_subscriptions: Iterable[str] = (),
        pacer: DeletePacer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        run_ids: Callable[[], str] = new_run_id,
        events: LifecycleEventSink | None = None,
        halts: HaltRegistry | None = None,
        locks: LockReader | None = None,
    ) -> None:
        self.inventory = inventory
        self.writer = writer
        self.audit = audit
        self.policy = policy
        self.scope = gallery_scope(target_patterns)
        self.in_use_subscriptions = tuple(dict.fromkeys(s.lower() for s in in_use_subscriptions))
        self.pacer = pacer or DeletePacer(50)
        self._clock = clock
        self._run_ids = run_ids
        self.events = events
        self.halts = halts
        #: Reads management locks (``None``: locks are not considered, e.g. unit tests).
        self.lock_reader = locks

    # ---------------------------------------------------------------- gathering
    def _gallery_refs(self) -> Iterator[GalleryRef]:
        seen: set[str] = set()
        for search in self.scope.searches:
            for ref in self.inventory.find_galleries(search):
                if ref.id.lower() not in seen:
                    seen.add(ref.id.lower())
                    yield ref
        for ref in self.scope.galleries:
            if ref.id.lower() not in seen:
                seen.add(ref.id.lower())
                yield ref

    def _gather(self, snapshot: LifecycleSnapshot) -> list[GalleryFacts]:
        galleries: list[GalleryFacts] = []
        for ref in self._gallery_refs():
            header = self.inventory.gallery(ref)
            if header is None:
                logger.warning("target gallery not found", extra={"gallery": str(ref)})
                snapshot.galleries_missing.append(ref.id)
                continue
            definitions = tuple(self.inventory.definitions(ref))
            galleries.append(GalleryFacts(header.id, header.name, header.tags, definitions))
            snapshot.galleries_read.append(header.id)
            logger.info(
                "gallery read",
                extra={
                    "gallery": header.name,
                    "definitions": len(definitions),
                    "versions": sum(len(d.versions) for d in definitions),
                },
            )
        return galleries

    def _locks(self, galleries: list[GalleryFacts]) -> LockIndex:
        """The locks of every resource group holding a read gallery (one list call each)."""
        if self.lock_reader is None:
            return LockIndex()
        groups: dict[tuple[str, str], None] = {}
        for gallery in galleries:
            parts = gallery.id.strip("/").split("/")
            if len(parts) > 3 and parts[0].lower() == "subscriptions":
                groups[(parts[1].lower(), parts[3].lower())] = None
        found = [lock for sub, group in groups for lock in self.lock_reader.locks(sub, group)]
        return LockIndex(found)

    def _consumers(self, snapshot: LifecycleSnapshot, galleries: list[GalleryFacts]) -> None:
        references: list[ImageReference] = []
        for subscription in self.in_use_subscriptions or self.scope.subscriptions:
            references.extend(self.inventory.image_references(subscription))
            snapshot.subscriptions_scanned.append(subscription)
        snapshot.in_use = in_use_versions(references, galleries)

    def plan(self, *, dry_run: bool | None = None) -> LifecycleSnapshot:
        """Read the halt, the galleries and the consumers, and compute the plan. Changes nothing."""
        policy = (
            self.policy if dry_run is None else dataclasses.replace(self.policy, dry_run=dry_run)
        )
        now = self._clock()
        snapshot = LifecycleSnapshot(
            run_id=self._run_ids(),
            plan=Plan(created_at=now, policy=policy, entries=()),
            scope=self.scope,
            halt=self.halts.current() if self.halts is not None else None,
        )
        for pattern, reason in self.scope.skipped:
            logger.warning("target pattern skipped: %s (%s)", pattern, reason)
        galleries = self._gather(snapshot)
        snapshot.locks = self._locks(galleries)
        self._consumers(snapshot, galleries)
        snapshot.plan = build_plan(
            galleries,
            policy=policy,
            now=now,
            in_use_version_ids=snapshot.in_use.keys(),
            approved_deletions=snapshot.halt.approved_deletions if snapshot.halt else (),
            locks=snapshot.locks,
        )
        snapshot.arm_calls = dict(self.inventory.arm_calls())
        for usage in snapshot.plan.quota_warnings:
            logger.warning(
                "version quota above 80 %%: %d of 10,000 in subscription %s, region %s",
                usage.versions,
                usage.subscription_id,
                usage.region,
            )
        return snapshot

    # ---------------------------------------------------------------- running
    def _plan_or_record_failure(self, dry_run: bool | None) -> LifecycleSnapshot:
        try:
            return self.plan(dry_run=dry_run)
        except PipelineError as exc:
            run_id = self._run_ids()
            self.audit.write_run(
                run_id,
                {
                    "runId": run_id,
                    "createdAt": self._clock().isoformat(),
                    "status": "failed",
                    "error": exc.message,
                    "reason": exc.reason,
                },
            )
            logger.error("lifecycle run failed before planning", extra={"run_id": run_id})
            raise

    def _decide(self, snapshot: LifecycleSnapshot) -> list[dict[str, Any]]:
        """Set the run's status (and the halt in force); returns the alerts to publish."""
        plan = snapshot.plan
        if not plan.policy.dry_run and self.halts is not None and not snapshot.halted:
            latest = self.halts.current()  # another run may have halted since this one planned
            if latest is not None and latest.active:
                snapshot.halt = latest
        if plan.policy.dry_run:
            snapshot.status = "dry-run"
        elif snapshot.halted:
            snapshot.status = "halted"
        elif plan.circuit_breaker_tripped:
            snapshot.status = "halted"
            halt = Halt.of_plan(snapshot.run_id, plan)
            created = True
            if self.halts is not None:
                halt, created = self.halts.trip(halt)
            snapshot.halt = halt
            if created:
                return [halted_event(halt, time=self._clock())]
        else:
            snapshot.status = "applied"
        return []

    def _spend_approval(self, snapshot: LifecycleSnapshot) -> None:
        halt = snapshot.halt
        if self.halts is None or halt is None or snapshot.status != "applied":
            return
        approved = halt.approved_deletions
        if approved and not approved & waiting_for_next_run(snapshot.plan):
            self.halts.spend_approval(snapshot.run_id)

    def run(self, *, dry_run: bool | None = None) -> tuple[LifecycleSnapshot, RunOutcome]:
        """Plan, write the plan to the audit store, apply it (unless dry-run or halted), write
        the outcome, publish the events."""
        snapshot = self._plan_or_record_failure(dry_run)
        plan = snapshot.plan
        self.audit.write_run(
            snapshot.run_id,
            {
                "runId": snapshot.run_id,
                "plan": plan.to_document(),
                "status": "planned",
                "context": snapshot.context_document(),
            },
        )
        alerts = self._decide(snapshot)
        if snapshot.status == "halted":  # tripped by this run (it alerts), or held by a halt
            metrics.lifecycle_halted("tripped" if alerts else "held")

        def final_context() -> dict[str, Any]:
            snapshot.arm_calls = dict(self.inventory.arm_calls())  # planning + applying
            return snapshot.context_document()

        outcome = apply_plan(
            plan,
            run_id=snapshot.run_id,
            writer=self.writer,
            audit=_ContextAudit(self.audit, snapshot, final_context),
            pace=self.pacer.wait,
            halted=snapshot.status == "halted",
        )
        self._spend_approval(snapshot)
        if self.events is not None:
            publish_run(
                self.events,
                outcome,
                snapshot.status,
                time=self._clock(),
                halt=snapshot.halt,
                alerts=alerts,
            )
        self._log_finish(snapshot, outcome)
        return snapshot, outcome

    def _log_finish(self, snapshot: LifecycleSnapshot, outcome: RunOutcome) -> None:
        fields = {
            "run_id": snapshot.run_id,
            "status": snapshot.status,
            "planned": len(snapshot.plan.actions()),
            "done": len(outcome.done),
            "failed": len(outcome.failed),
            "circuit_breaker": snapshot.plan.circuit_breaker_tripped,
            "arm_calls": snapshot.arm_calls_total,
        }
        if snapshot.status == "halted" and snapshot.halt is not None:
            logger.error("lifecycle halted: %s", snapshot.halt.message, extra=fields)
        else:
            logger.info("lifecycle run finished", extra=fields)
