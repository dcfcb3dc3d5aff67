"""One lifecycle run: gather facts -> plan -> write the plan -> apply (unless dry-run) -> outcome.

Domain orchestration over ports only (:class:`GalleryInventory`, and ``GalleryWriter`` and
``AuditStore`` from :mod:`shared.lifecycle.plan`); the Azure adapters live in ``shared/adapters``.

Which galleries: the ``GALLERY_ALLOWED_TARGET_GALLERIES`` patterns (``sub/rg/gallery``, ``*`` for
one whole part). ``sub/rg/gallery`` is read directly; ``sub/rg/*`` lists the resource group's
galleries and ``sub/*/...`` the subscription's. A pattern whose subscription is ``*`` cannot be
enumerated without reading every subscription the identity can see: it is skipped, and the skip
is reported in the plan output and the audit document (give the subscription explicitly).

The in-use guard reads every VM and scale-set model in the configured subscriptions (default: the
target galleries' subscriptions). A reference to an exact version holds that version; a reference
to the definition or to ``.../versions/latest`` holds the version "latest" resolves to now (and
the VM's ``exactVersion``, when ARM reports it). If that scan fails, the run fails: a deletion is
never a guess.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.contract.versioning import ImageVersion, InvalidVersion
from shared.core.errors import PipelineError
from shared.core.settings import LifecycleSettings
from shared.lifecycle.events import LifecycleEventSink, publish_run
from shared.lifecycle.plan import (
    AuditStore,
    DefinitionFacts,
    GalleryFacts,
    GalleryWriter,
    LifecyclePolicy,
    Plan,
    RunOutcome,
    apply_plan,
    build_plan,
)

logger = logging.getLogger(__name__)

#: Azure's DeleteGalleryImageVersion throttling window (150 deletes per 3 minutes).
DELETE_WINDOW_SECONDS = 180.0
#: At most this many consumers are listed per in-use version in the audit document.
CONSUMERS_SHOWN = 20


@dataclass(frozen=True)
class GalleryRef:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/galleries/{self.name}"
        )

    def __str__(self) -> str:
        return f"{self.subscription_id}/{self.resource_group}/{self.name}"


@dataclass(frozen=True)
class GallerySearch:
    """Galleries to enumerate: a whole subscription, or one resource group, optionally by name."""

    subscription_id: str
    resource_group: str | None
    name: str | None
    pattern: str


@dataclass(frozen=True)
class GalleryScope:
    """What the target-gallery patterns mean for a lifecycle run."""

    galleries: tuple[GalleryRef, ...] = ()
    searches: tuple[GallerySearch, ...] = ()
    #: pattern -> why it cannot be enumerated
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        found = [g.subscription_id for g in self.galleries]
        found += [s.subscription_id for s in self.searches]
        return tuple(dict.fromkeys(s.lower() for s in found))


def gallery_scope(patterns: Iterable[str]) -> GalleryScope:
    """Classify ``sub/rg/gallery`` patterns (``*`` = any one part) into reads and listings."""
    galleries: list[GalleryRef] = []
    searches: list[GallerySearch] = []
    skipped: list[tuple[str, str]] = []
    for pattern in patterns:
        parts = [p.strip() for p in pattern.strip().strip("/").split("/")]
        if len(parts) != 3 or not all(parts):
            skipped.append((pattern, "expected <subscriptionId>/<resourceGroup>/<gallery>"))
            continue
        sub, group, name = parts
        if "*" in sub:
            skipped.append(
                (pattern, "a '*' subscription cannot be enumerated; name the subscription")
            )
        elif "*" in group:
            searches.append(GallerySearch(sub, None, None if name == "*" else name, pattern))
        elif "*" in name:
            searches.append(GallerySearch(sub, group, None, pattern))
        else:
            galleries.append(GalleryRef(sub, group, name))
    return GalleryScope(tuple(galleries), tuple(searches), tuple(skipped))


@dataclass(frozen=True)
class GalleryHeader:
    id: str
    name: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ImageReference:
    """A VM or scale-set model that names a gallery image (by version, by definition, or latest)."""

    consumer_id: str
    image_id: str
    exact_version: str | None = None


class GalleryInventory(Protocol):
    """The reading side of a lifecycle run (an adapter over ARM list calls)."""

    def find_galleries(self, search: GallerySearch) -> Iterator[GalleryRef]:
        """Galleries in the subscription (or resource group) that ``search`` names."""
        ...

    def gallery(self, ref: GalleryRef) -> GalleryHeader | None:
        """The gallery's tags, or ``None`` when it does not exist."""
        ...

    def definitions(self, ref: GalleryRef) -> Iterator[DefinitionFacts]:
        """Every definition with its versions, page by page (one version list per definition)."""
        ...

    def image_references(self, subscription_id: str) -> Iterator[ImageReference]:
        """Gallery image references of every VM and scale-set model in the subscription."""
        ...

    def arm_calls(self) -> Mapping[str, int]:
        """ARM requests sent so far, by kind (``"LIST versions"``...)."""
        ...


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


def _order(name: str) -> tuple[int, int, int]:
    try:
        return ImageVersion.parse(name).as_tuple
    except InvalidVersion:
        return (-1, -1, -1)


def _latest(definition: DefinitionFacts) -> str | None:
    """The version id "latest" resolves to now: the highest version not excluded from latest."""
    candidates = [
        v
        for v in definition.versions
        if v.provisioning_state == "Succeeded" and not v.excluded_from_latest
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda v: _order(v.name)).id


def in_use_versions(
    references: Iterable[ImageReference], galleries: Sequence[GalleryFacts]
) -> dict[str, list[str]]:
    """Version id (lower-cased) -> the VMs and scale sets that hold it."""
    definitions = {d.id.lower(): d for g in galleries for d in g.definitions}
    held: dict[str, list[str]] = defaultdict(list)
    for reference in references:
        image = reference.image_id.strip().rstrip("/").lower()
        head, marker, version = image.rpartition("/versions/")
        definition_id = head if marker else image
        targets: list[str] = []
        if marker and version != "latest":
            targets.append(image)
        else:
            facts = definitions.get(definition_id)
            latest = _latest(facts) if facts is not None else None
            if latest is not None:
                targets.append(latest.lower())
        if reference.exact_version:
            targets.append(f"{definition_id}/versions/{reference.exact_version.lower()}")
        for target in dict.fromkeys(targets):
            held[target].append(reference.consumer_id)
    return dict(held)


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

    @property
    def arm_calls_total(self) -> int:
        return sum(self.arm_calls.values())

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
        }


class _ContextAudit:
    """Adds the run's status and context to every document the domain writes."""

    def __init__(
        self, inner: AuditStore, status: str, context: Callable[[], Mapping[str, Any]]
    ) -> None:
        self._inner = inner
        self.status = status
        self._context = context

    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None:
        self._inner.write_run(
            run_id, {**document, "status": self.status, "context": dict(self._context())}
        )


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class LifecycleService:
    """Plans and applies one lifecycle run over the target galleries."""

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
            galleries.append(
                GalleryFacts(
                    id=header.id, name=header.name, tags=header.tags, definitions=definitions
                )
            )
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

    def plan(self, *, dry_run: bool | None = None) -> LifecycleSnapshot:
        """Read the galleries and the consumers, and compute the plan. Changes nothing."""
        policy = (
            self.policy if dry_run is None else dataclasses.replace(self.policy, dry_run=dry_run)
        )
        now = self._clock()
        snapshot = LifecycleSnapshot(
            run_id=self._run_ids(),
            plan=Plan(created_at=now, policy=policy, entries=()),
            scope=self.scope,
        )
        for pattern, reason in self.scope.skipped:
            logger.warning("target pattern skipped: %s (%s)", pattern, reason)
        galleries = self._gather(snapshot)
        subscriptions = self.in_use_subscriptions or self.scope.subscriptions
        references: list[ImageReference] = []
        for subscription in subscriptions:
            references.extend(self.inventory.image_references(subscription))
            snapshot.subscriptions_scanned.append(subscription)
        snapshot.in_use = in_use_versions(references, galleries)
        snapshot.plan = build_plan(
            galleries, policy=policy, now=now, in_use_version_ids=snapshot.in_use.keys()
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
    def run(self, *, dry_run: bool | None = None) -> tuple[LifecycleSnapshot, RunOutcome]:
        """Plan, write the plan to the audit store, apply it (unless dry-run), write the outcome."""
        try:
            snapshot = self.plan(dry_run=dry_run)
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
        plan = snapshot.plan
        context = snapshot.context_document()
        self.audit.write_run(
            snapshot.run_id,
            {
                "runId": snapshot.run_id,
                "plan": plan.to_document(),
                "status": "planned",
                "context": context,
            },
        )
        final_status = "dry-run" if plan.policy.dry_run else "applied"

        def final_context() -> dict[str, Any]:
            snapshot.arm_calls = dict(self.inventory.arm_calls())  # planning + applying
            return snapshot.context_document()

        outcome = apply_plan(
            plan,
            run_id=snapshot.run_id,
            writer=self.writer,
            audit=_ContextAudit(self.audit, final_status, final_context),
            pace=self.pacer.wait,
        )
        if self.events is not None:
            publish_run(self.events, outcome, status=final_status, time=self._clock())
        logger.info(
            "lifecycle run finished",
            extra={
                "run_id": snapshot.run_id,
                "status": final_status,
                "planned": len(plan.actions()),
                "done": len(outcome.done),
                "failed": len(outcome.failed),
                "circuit_breaker": plan.circuit_breaker_tripped,
                "arm_calls": snapshot.arm_calls_total,
            },
        )
        return snapshot, outcome
