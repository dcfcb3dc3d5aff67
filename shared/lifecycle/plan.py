"""Lifecycle: enforce end of life with a plan first, retention, and safety rails.

Azure treats ``endOfLifeDate`` as informational. This module turns it into a state machine:

``ACTIVE`` -> (end of life, or a retention rule) -> ``DEPRECATED`` (excluded from latest, tagged
``lifecycle=deprecated`` with the time) -> (grace period) -> ``DELETED``.

Every run first computes a :class:`Plan` from listings alone (never a GET per version): each entry
names the action, the version, the rule and the reason. :func:`apply_plan` then touches nothing
outside the plan. Safety rails, each reported in the plan when it holds a version back:

* ``protect-tag``: ``lifecycle=hold`` on the gallery, the definition or the version;
* ``min-keep``: the newest N versions of each definition are kept;
* ``last-latest``: a definition always keeps a version that "latest" can resolve to;
* ``block-deletion-before-eol``: Azure's own ``blockDeletionBeforeEndOfLife`` is respected;
* ``in-use``: a version referenced by a VM or scale set is not deleted;
* ``circuit-breaker``: at most N deletions per run; the rest wait for a human.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from shared.contract.versioning import ImageVersion, InvalidVersion
from shared.core.errors import PipelineError

logger = logging.getLogger(__name__)

LIFECYCLE_TAG = "lifecycle"
DEPRECATED_AT_TAG = "lifecycle-deprecated-at"
GRACE_DAYS_TAG = "lifecycle-grace-days"
HOLD = "hold"
DEPRECATED = "deprecated"
#: Azure's limit of image versions per subscription and region.
VERSION_QUOTA_PER_REGION = 10_000
QUOTA_WARNING_RATIO = 0.8


class VersionState(StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"


class Action(StrEnum):
    DEPRECATE = "deprecate"
    DELETE = "delete"
    SKIP = "skip"  # a rule held the version back; reported so nothing happens silently


class Rule(StrEnum):
    END_OF_LIFE = "end-of-life"
    MAX_AGE = "max-age"
    MAX_COUNT = "max-count"
    GRACE_PERIOD_OVER = "grace-period-over"
    PROTECT_TAG = "protect-tag"
    MIN_KEEP = "min-keep"
    LAST_LATEST = "last-latest"
    BLOCK_DELETION_BEFORE_EOL = "block-deletion-before-eol"
    IN_USE = "in-use"
    CIRCUIT_BREAKER = "circuit-breaker"
    DEPRECATION_BUDGET = "deprecation-budget"


@dataclass(frozen=True)
class VersionFacts:
    """What one listing row says about an image version (no per-version GET)."""

    id: str
    name: str
    region: str
    target_regions: tuple[str, ...]
    tags: Mapping[str, str]
    end_of_life: datetime | None
    published: datetime | None
    excluded_from_latest: bool
    block_deletion_before_end_of_life: bool
    provisioning_state: str = "Succeeded"

    @property
    def state(self) -> VersionState:
        if self.tags.get(LIFECYCLE_TAG, "").lower() == DEPRECATED:
            return VersionState.DEPRECATED
        return VersionState.ACTIVE

    @property
    def held(self) -> bool:
        return self.tags.get(LIFECYCLE_TAG, "").lower() == HOLD

    @property
    def deprecated_at(self) -> datetime | None:
        raw = self.tags.get(DEPRECATED_AT_TAG)
        if not raw:
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
        # a hand-written tag without an offset is read as UTC (never compare naive with aware)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DefinitionFacts:
    id: str
    name: str
    tags: Mapping[str, str]
    versions: tuple[VersionFacts, ...]


@dataclass(frozen=True)
class GalleryFacts:
    id: str
    name: str
    tags: Mapping[str, str]
    definitions: tuple[DefinitionFacts, ...]


@dataclass(frozen=True)
class LifecyclePolicy:
    """Run-wide settings; the grace period can be overridden per gallery or definition by tag."""

    grace_period_days: int = 14
    min_keep_per_definition: int = 1
    max_age_days: int | None = None
    max_versions_per_definition: int | None = None
    max_deletions_per_run: int = 10
    #: Deprecations (ARM updates, throttled like publishing) beyond this wait for the next run,
    #: so the first run over an old gallery does not start thousands of updates at once.
    max_deprecations_per_run: int = 200
    deprecated_replica_count: int | None = None
    dry_run: bool = True

    def __post_init__(self) -> None:
        if self.min_keep_per_definition < 1:
            raise ValueError("min_keep_per_definition must be at least 1: a definition keeps one")
        if min(self.max_deletions_per_run, self.max_deprecations_per_run) < 0:
            raise ValueError("the per-run limits cannot be negative")
        if self.grace_period_days < 0:
            raise ValueError("grace_period_days cannot be negative")


@dataclass(frozen=True)
class PlanEntry:
    action: Action
    version_id: str
    rule: Rule
    reason: str

    def to_document(self) -> dict[str, str]:
        return {
            "action": self.action.value,
            "versionId": self.version_id,
            "rule": self.rule.value,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class QuotaUsage:
    subscription_id: str
    region: str
    versions: int

    @property
    def ratio(self) -> float:
        return self.versions / VERSION_QUOTA_PER_REGION


@dataclass(frozen=True)
class Plan:
    created_at: datetime
    policy: LifecyclePolicy
    entries: tuple[PlanEntry, ...]
    quota: tuple[QuotaUsage, ...] = ()
    circuit_breaker_tripped: bool = False

    def actions(self) -> tuple[PlanEntry, ...]:
        """The entries that change something (deprecate or delete), in plan order."""
        return tuple(e for e in self.entries if e.action is not Action.SKIP)

    @property
    def quota_warnings(self) -> tuple[QuotaUsage, ...]:
        return tuple(q for q in self.quota if q.ratio >= QUOTA_WARNING_RATIO)

    def to_document(self) -> dict[str, Any]:
        return {
            "createdAt": self.created_at.isoformat(),
            "dryRun": self.policy.dry_run,
            "policy": {
                "gracePeriodDays": self.policy.grace_period_days,
                "minKeepPerDefinition": self.policy.min_keep_per_definition,
                "maxAgeDays": self.policy.max_age_days,
                "maxVersionsPerDefinition": self.policy.max_versions_per_definition,
                "maxDeletionsPerRun": self.policy.max_deletions_per_run,
                "maxDeprecationsPerRun": self.policy.max_deprecations_per_run,
            },
            "circuitBreakerTripped": self.circuit_breaker_tripped,
            "entries": [e.to_document() for e in self.entries],
            "quota": [
                {
                    "subscriptionId": q.subscription_id,
                    "region": q.region,
                    "versions": q.versions,
                    "limit": VERSION_QUOTA_PER_REGION,
                    "warning": q.ratio >= QUOTA_WARNING_RATIO,
                }
                for q in self.quota
            ],
        }


def _version_order(version: VersionFacts) -> tuple[int, int, int]:
    try:
        return ImageVersion.parse(version.name).as_tuple
    except InvalidVersion:
        return (-1, -1, -1)  # unparsable names sort oldest, and min-keep never protects them


def _grace_days(policy: LifecyclePolicy, gallery: GalleryFacts, definition: DefinitionFacts) -> int:
    for tags in (definition.tags, gallery.tags):
        raw = tags.get(GRACE_DAYS_TAG)
        if raw is not None and raw.strip().isdigit():
            return int(raw)
    return policy.grace_period_days


def _subscription_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[1].lower() if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def _expiry(
    version: VersionFacts, rank_from_newest: int, policy: LifecyclePolicy, now: datetime
) -> tuple[Rule, str] | None:
    """Why an ACTIVE version should leave service now, if it should."""
    if version.end_of_life is not None and version.end_of_life <= now:
        return Rule.END_OF_LIFE, f"end of life {version.end_of_life.isoformat()} has passed"
    if policy.max_age_days is not None and version.published is not None:
        age = now - version.published
        if age > timedelta(days=policy.max_age_days):
            return Rule.MAX_AGE, f"published {age.days} days ago (max {policy.max_age_days})"
    limit = policy.max_versions_per_definition
    if limit is not None and rank_from_newest >= limit:
        return Rule.MAX_COUNT, f"version {rank_from_newest + 1} from newest (max {limit})"
    return None


def _plan_definition(
    gallery: GalleryFacts,
    definition: DefinitionFacts,
    policy: LifecyclePolicy,
    now: datetime,
    in_use: frozenset[str],
) -> list[PlanEntry]:
    entries: list[PlanEntry] = []
    if gallery.tags.get(LIFECYCLE_TAG, "").lower() == HOLD:
        held_by = f"gallery {gallery.name}"
    elif definition.tags.get(LIFECYCLE_TAG, "").lower() == HOLD:
        held_by = f"definition {definition.name}"
    else:
        held_by = ""
    grace = timedelta(days=_grace_days(policy, gallery, definition))
    live = [v for v in definition.versions if v.provisioning_state == "Succeeded"]
    newest_first = sorted(live, key=_version_order, reverse=True)
    # versions "latest" may resolve to after this plan; shrinks as we deprecate/delete
    latest_candidates = {v.id for v in newest_first if not v.excluded_from_latest}

    for rank, version in enumerate(newest_first):
        if version.state is VersionState.ACTIVE:
            expiry = _expiry(version, rank, policy, now)
            if expiry is None:
                continue
            action, (rule, reason) = Action.DEPRECATE, expiry
        else:
            deprecated_at = version.deprecated_at or version.end_of_life or now
            if now < deprecated_at + grace:
                continue
            action, rule = Action.DELETE, Rule.GRACE_PERIOD_OVER
            reason = f"deprecated {deprecated_at.isoformat()}, grace of {grace.days} days is over"

        hold = _hold(
            version,
            held_by=held_by,
            rank=rank,
            policy=policy,
            latest_candidates=latest_candidates,
            action=action,
            in_use=in_use,
            now=now,
        )
        if hold is not None:
            entries.append(PlanEntry(Action.SKIP, version.id, hold[0], f"{hold[1]}; {reason}"))
            continue
        latest_candidates.discard(version.id)
        entries.append(PlanEntry(action, version.id, rule, reason))
    return entries


def _hold(
    version: VersionFacts,
    *,
    held_by: str,
    rank: int,
    policy: LifecyclePolicy,
    latest_candidates: set[str],
    action: Action,
    in_use: frozenset[str],
    now: datetime,
) -> tuple[Rule, str] | None:
    """The safety rail that holds ``version`` back from ``action``, if any (first one wins)."""
    if held_by or version.held:
        return Rule.PROTECT_TAG, f"protected by {LIFECYCLE_TAG}={HOLD} on {held_by or 'version'}"
    if rank < policy.min_keep_per_definition:
        return Rule.MIN_KEEP, f"one of the {policy.min_keep_per_definition} newest versions"
    if latest_candidates == {version.id}:
        return Rule.LAST_LATEST, "the only version 'latest' can resolve to"
    if action is Action.DELETE:
        if version.block_deletion_before_end_of_life and (
            version.end_of_life is None or version.end_of_life > now
        ):
            return Rule.BLOCK_DELETION_BEFORE_EOL, "blockDeletionBeforeEndOfLife is set"
        if version.id.lower() in in_use:
            return Rule.IN_USE, "referenced by a VM or scale set"
    return None


def build_plan(
    galleries: Iterable[GalleryFacts],
    *,
    policy: LifecyclePolicy,
    now: datetime,
    in_use_version_ids: Iterable[str],
) -> Plan:
    """Compute the lifecycle plan. Pure: reads the facts given, changes nothing."""
    in_use = frozenset(i.lower() for i in in_use_version_ids)
    entries: list[PlanEntry] = []
    quota: Counter[tuple[str, str]] = Counter()
    for gallery in galleries:
        for definition in gallery.definitions:
            entries.extend(_plan_definition(gallery, definition, policy, now, in_use))
            for version in definition.versions:
                for region in version.target_regions or (version.region,):
                    key = (_subscription_of(version.id), region.replace(" ", "").lower())
                    quota[key] += 1

    limited: list[PlanEntry] = []
    deletions = 0
    deprecations = 0
    tripped = False
    for entry in entries:
        if entry.action is Action.DELETE and deletions >= policy.max_deletions_per_run:
            tripped = True
            limit = policy.max_deletions_per_run
            limited.append(
                PlanEntry(
                    Action.SKIP,
                    entry.version_id,
                    Rule.CIRCUIT_BREAKER,
                    f"more than {limit} deletions in one run; {entry.reason}",
                )
            )
            continue
        if entry.action is Action.DEPRECATE and deprecations >= policy.max_deprecations_per_run:
            limited.append(
                PlanEntry(
                    Action.SKIP,
                    entry.version_id,
                    Rule.DEPRECATION_BUDGET,
                    f"more than {policy.max_deprecations_per_run} deprecations in one run; "
                    f"the next run continues; {entry.reason}",
                )
            )
            continue
        if entry.action is Action.DELETE:
            deletions += 1
        if entry.action is Action.DEPRECATE:
            deprecations += 1
        limited.append(entry)

    usage = tuple(
        QuotaUsage(subscription_id=sub, region=region, versions=count)
        for (sub, region), count in sorted(quota.items())
    )
    return Plan(
        created_at=now,
        policy=policy,
        entries=tuple(limited),
        quota=usage,
        circuit_breaker_tripped=tripped,
    )


class GalleryWriter(Protocol):
    """The two changes a lifecycle run makes (an adapter over azure-mgmt-compute)."""

    def deprecate(self, version_id: str, *, tags: Mapping[str, str], replicas: int | None) -> None:
        """Exclude the version from latest everywhere and merge ``tags`` into its tags."""
        ...

    def delete(self, version_id: str) -> None:
        """Start the deletion of the version (do not wait for it to finish)."""
        ...


class AuditStore(Protocol):
    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None: ...


@dataclass
class RunOutcome:
    run_id: str
    plan: Plan
    done: list[PlanEntry] = field(default_factory=list)
    failed: list[tuple[PlanEntry, str]] = field(default_factory=list)

    def to_document(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "plan": self.plan.to_document(),
            "outcome": {
                "done": [e.to_document() for e in self.done],
                "failed": [{**e.to_document(), "error": error} for e, error in self.failed],
            },
        }


def apply_plan(
    plan: Plan,
    *,
    run_id: str,
    writer: GalleryWriter,
    audit: AuditStore,
    pace: Callable[[], None] = lambda: None,
) -> RunOutcome:
    """Carry out exactly the plan's actions (none in dry-run) and write plan + outcome to audit.

    ``pace`` is called before every delete, to stay under the delete throttling bucket.
    A failed action is recorded and the run goes on; nothing outside the plan is touched.
    """
    outcome = RunOutcome(run_id=run_id, plan=plan)
    if not plan.policy.dry_run:
        stamp = plan.created_at.isoformat()
        for entry in plan.actions():
            try:
                if entry.action is Action.DEPRECATE:
                    writer.deprecate(
                        entry.version_id,
                        tags={LIFECYCLE_TAG: DEPRECATED, DEPRECATED_AT_TAG: stamp},
                        replicas=plan.policy.deprecated_replica_count,
                    )
                else:
                    pace()
                    writer.delete(entry.version_id)
            except PipelineError as exc:
                outcome.failed.append((entry, exc.message))
                logger.warning(
                    "lifecycle action failed",
                    extra={"run_id": run_id, "version": entry.version_id, "error": exc.reason},
                )
                continue
            outcome.done.append(entry)
            logger.info(
                "lifecycle action done",
                extra={"run_id": run_id, "version": entry.version_id, "action": entry.action},
            )
    audit.write_run(run_id, outcome.to_document())
    return outcome
