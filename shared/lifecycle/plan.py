"""Lifecycle: enforce end of life with a plan first, retention, and safety rails.

Azure treats ``endOfLifeDate`` as informational. This module turns it into a state machine:

``ACTIVE`` -> (end of life, or a retention rule) -> ``DEPRECATED`` (excluded from latest in every
region, tagged ``lifecycle=deprecated`` with the time) -> (grace period) -> ``DELETED``.

Every run first computes a :class:`Plan` from listings alone (never a GET per version): each entry
names the action, the version, the rule and the reason. ``shared.lifecycle.apply`` then touches
nothing outside the plan. Safety rails, each reported in the plan when it holds a version back:

* ``protect-tag``: ``lifecycle=hold`` on the gallery, the definition or the version;
* ``locked``: a management lock covers the version (``ReadOnly``: no deprecation and no
  deletion; ``CanNotDelete``: no deletion), see :mod:`shared.lifecycle.locks`;
* ``min-keep``: the newest N versions of each definition are kept;
* ``last-latest``: in every region where a definition has versions, "latest" keeps a version to
  resolve to (:mod:`shared.lifecycle.latest`);
* ``block-deletion-before-eol``: Azure's own ``blockDeletionBeforeEndOfLife`` is respected;
* ``in-use``: a version referenced by a VM or scale set is not deleted;
* ``circuit-breaker``: more deletions than the cap trips the breaker, and the run halts
  (:mod:`shared.lifecycle.halt`); deletions an operator acknowledged go at most N per run.

Entries are ordered oldest first (published date, then version order), so whatever a budget cuts
off is always newer than what it lets through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.lifecycle.facts import (
    GRACE_DAYS_TAG,
    HOLD,
    LIFECYCLE_TAG,
    DefinitionFacts,
    GalleryFacts,
    VersionFacts,
    VersionState,
    region_key,
    version_order,
)
from shared.lifecycle.latest import LatestServers
from shared.lifecycle.locks import LockIndex

#: Azure's limit of image versions per subscription and region.
VERSION_QUOTA_PER_REGION = 10_000
QUOTA_WARNING_RATIO = 0.8
_UNKNOWN_DATE = datetime.min.replace(tzinfo=UTC)

AgeKey = tuple[datetime, tuple[int, int, int], str]


class Action(StrEnum):
    DEPRECATE = "deprecate"
    DELETE = "delete"
    SKIP = "skip"  # a rule held the version back; reported so nothing happens silently


class Rule(StrEnum):
    END_OF_LIFE = "end-of-life"
    MAX_AGE = "max-age"
    MAX_COUNT = "max-count"
    GRACE_PERIOD_OVER = "grace-period-over"
    #: deprecated, but "latest" may still resolve to it in a region: hide it there too
    LATEST_NOT_HIDDEN = "latest-not-hidden"
    PROTECT_TAG = "protect-tag"
    LOCKED = "locked"
    MIN_KEEP = "min-keep"
    LAST_LATEST = "last-latest"
    BLOCK_DELETION_BEFORE_EOL = "block-deletion-before-eol"
    IN_USE = "in-use"
    CIRCUIT_BREAKER = "circuit-breaker"
    DEPRECATION_BUDGET = "deprecation-budget"


@dataclass(frozen=True)
class LifecyclePolicy:
    """Run-wide settings; the grace period can be overridden per gallery or definition by tag."""

    grace_period_days: int = 14
    min_keep_per_definition: int = 1
    max_age_days: int | None = None
    max_versions_per_definition: int | None = None
    #: The circuit breaker: more deletions than this halts the run (0: never delete).
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
    #: More deletions than the cap (not counting acknowledged ones): a live run halts.
    circuit_breaker_tripped: bool = False

    def actions(self) -> tuple[PlanEntry, ...]:
        """The entries that change something (deprecate or delete), in plan order."""
        return tuple(e for e in self.entries if e.action is not Action.SKIP)

    def count(self, action: Action) -> int:
        return sum(1 for e in self.entries if e.action is action)

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


def _age(version: VersionFacts) -> AgeKey:
    """Oldest first: published date (unknown counts as oldest), then version order, then id."""
    return (version.published or _UNKNOWN_DATE, version_order(version.name), version.id.lower())


def _grace_days(policy: LifecyclePolicy, gallery: GalleryFacts, definition: DefinitionFacts) -> int:
    for tags in (definition.tags, gallery.tags):
        raw = tags.get(GRACE_DAYS_TAG)
        if raw is not None and raw.strip().isdigit():
            return int(raw)
    return policy.grace_period_days


def _subscription_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[1].lower() if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def _protected_by(gallery: GalleryFacts, definition: DefinitionFacts) -> str:
    if gallery.tags.get(LIFECYCLE_TAG, "").lower() == HOLD:
        return f"gallery {gallery.name}"
    if definition.tags.get(LIFECYCLE_TAG, "").lower() == HOLD:
        return f"definition {definition.name}"
    return ""


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


def _transition(
    version: VersionFacts, rank: int, policy: LifecyclePolicy, now: datetime, grace: timedelta
) -> tuple[Action, Rule, str] | None:
    """The move a rule asks of ``version`` now (before any hold), if any."""
    if version.state is VersionState.ACTIVE:
        expiry = _expiry(version, rank, policy, now)
        return None if expiry is None else (Action.DEPRECATE, *expiry)
    deprecated_at = version.deprecated_at or version.end_of_life or now
    if now >= deprecated_at + grace:
        reason = f"deprecated {deprecated_at.isoformat()}, grace of {grace.days} days is over"
        return Action.DELETE, Rule.GRACE_PERIOD_OVER, reason
    visible = version.regions_not_hidden
    if visible:
        reason = (
            f"deprecated, but 'latest' may still resolve to it in {', '.join(visible)}: the "
            "regional excludeFromLatest takes precedence over the version's"
        )
        return Action.DEPRECATE, Rule.LATEST_NOT_HIDDEN, reason
    return None


def _plan_definition(
    gallery: GalleryFacts,
    definition: DefinitionFacts,
    policy: LifecyclePolicy,
    now: datetime,
    in_use: frozenset[str],
    *,
    locks: LockIndex,
) -> list[tuple[AgeKey, PlanEntry]]:
    held_by = _protected_by(gallery, definition)
    grace = timedelta(days=_grace_days(policy, gallery, definition))
    live = [v for v in definition.versions if v.settled]
    newest_first = sorted(live, key=lambda v: version_order(v.name), reverse=True)
    rank = {v.id: n for n, v in enumerate(newest_first)}
    servers = LatestServers(live)
    found: list[tuple[AgeKey, PlanEntry]] = []
    # oldest first: when only one of several expired versions can go, the newest one stays
    for version in sorted(live, key=_age):
        move = _transition(version, rank[version.id], policy, now, grace)
        if move is None:
            continue
        action, rule, reason = move
        hold = _hold(
            version,
            held_by=held_by,
            rank=rank[version.id],
            policy=policy,
            servers=servers,
            action=action,
            in_use=in_use,
            now=now,
            locks=locks,
        )
        if hold is not None:
            entry = PlanEntry(Action.SKIP, version.id, hold[0], f"{hold[1]}; {reason}")
        else:
            servers.remove(version)
            entry = PlanEntry(action, version.id, rule, reason)
        found.append((_age(version), entry))
    return found


def _hold(
    version: VersionFacts,
    *,
    held_by: str,
    rank: int,
    policy: LifecyclePolicy,
    servers: LatestServers,
    action: Action,
    in_use: frozenset[str],
    now: datetime,
    locks: LockIndex,
) -> tuple[Rule, str] | None:
    """The safety rail that holds ``version`` back from ``action``, if any (first one wins)."""
    if held_by or version.held:
        return Rule.PROTECT_TAG, f"protected by {LIFECYCLE_TAG}={HOLD} on {held_by or 'version'}"
    lock = locks.blocking(version.id, delete=action is Action.DELETE)
    if lock is not None:
        verb = "deletion" if action is Action.DELETE else "deprecation (an update)"
        return Rule.LOCKED, f"{lock.describe()} refuses its {verb}"
    if rank < policy.min_keep_per_definition:
        return Rule.MIN_KEEP, f"one of the {policy.min_keep_per_definition} newest versions"
    stranded = servers.stranded_by(version)
    if stranded:
        where = ", ".join(stranded)
        return Rule.LAST_LATEST, f"the only version 'latest' can resolve to in {where}"
    if action is Action.DELETE:
        if version.block_deletion_before_end_of_life and (
            version.end_of_life is None or version.end_of_life > now
        ):
            return Rule.BLOCK_DELETION_BEFORE_EOL, "blockDeletionBeforeEndOfLife is set"
        if version.id.lower() in in_use:
            return Rule.IN_USE, "referenced by a VM or scale set"
    return None


def _waiting(entry: PlanEntry, rule: Rule, why: str) -> PlanEntry:
    return PlanEntry(Action.SKIP, entry.version_id, rule, f"{why}; {entry.reason}")


def _limit(
    ordered: list[PlanEntry], policy: LifecyclePolicy, approved: frozenset[str]
) -> tuple[tuple[PlanEntry, ...], bool]:
    """Apply the per-run caps in plan order (oldest first); returns the entries and whether the
    circuit breaker trips (more unacknowledged deletions than the cap: nothing is cut then, the
    plan shows everything the run would have deleted, and the run halts)."""
    cap = policy.max_deletions_per_run
    deletions = [e for e in ordered if e.action is Action.DELETE]
    unapproved = sum(1 for e in deletions if e.version_id.lower() not in approved)
    tripped = 0 < cap < unapproved
    if cap == 0:
        cut_reason = "deletions are off (at most 0 per run)"
    else:
        cut_reason = f"more than {cap} deletions in one run; the next run continues"
    budget = policy.max_deprecations_per_run
    budget_reason = f"more than {budget} deprecations in one run; the next run continues"
    limited: list[PlanEntry] = []
    deleting = deprecating = 0
    for entry in ordered:
        if entry.action is Action.DELETE and not tripped and deleting >= cap:
            limited.append(_waiting(entry, Rule.CIRCUIT_BREAKER, cut_reason))
            continue
        if entry.action is Action.DEPRECATE and deprecating >= budget:
            limited.append(_waiting(entry, Rule.DEPRECATION_BUDGET, budget_reason))
            continue
        deleting += entry.action is Action.DELETE
        deprecating += entry.action is Action.DEPRECATE
        limited.append(entry)
    return tuple(limited), tripped


def _quota(galleries: Iterable[GalleryFacts]) -> tuple[QuotaUsage, ...]:
    counted: Counter[tuple[str, str]] = Counter()
    for gallery in galleries:
        for definition in gallery.definitions:
            for version in definition.versions:
                for target in version.target_regions:
                    counted[(_subscription_of(version.id), region_key(target.name))] += 1
    return tuple(
        QuotaUsage(subscription_id=sub, region=region, versions=count)
        for (sub, region), count in sorted(counted.items())
    )


def build_plan(
    galleries: Iterable[GalleryFacts],
    *,
    policy: LifecyclePolicy,
    now: datetime,
    in_use_version_ids: Iterable[str],
    approved_deletions: Iterable[str] = (),
    locks: LockIndex | None = None,
) -> Plan:
    """Compute the lifecycle plan. Pure: reads the facts given, changes nothing.

    ``approved_deletions``: version ids an operator acknowledged in a halt; they do not trip the
    circuit breaker again, but still go at most ``max_deletions_per_run`` per run. ``locks``:
    the management locks read for the galleries' resource groups (rule ``locked``)."""
    galleries = tuple(galleries)
    in_use = frozenset(i.lower() for i in in_use_version_ids)
    found = [
        item
        for gallery in galleries
        for definition in gallery.definitions
        for item in _plan_definition(
            gallery, definition, policy, now, in_use, locks=locks or LockIndex()
        )
    ]
    ordered = [entry for _, entry in sorted(found, key=lambda item: item[0])]
    approved = frozenset(i.lower() for i in approved_deletions)
    entries, tripped = _limit(ordered, policy, approved)
    return Plan(
        created_at=now,
        policy=policy,
        entries=entries,
        quota=_quota(galleries),
        circuit_breaker_tripped=tripped,
    )
