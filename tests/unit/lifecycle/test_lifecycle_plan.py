"""The lifecycle plan: expiry, grace, retention and every safety rail, on plain facts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.errors import TransientError
from shared.lifecycle.apply import apply_plan
from shared.lifecycle.facts import (
    DEPRECATED_AT_TAG,
    GRACE_DAYS_TAG,
    DefinitionFacts,
    GalleryFacts,
    RegionFacts,
    VersionFacts,
)
from shared.lifecycle.plan import Action, LifecyclePolicy, Plan, Rule, build_plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DEF_ID = "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d"


def version(
    name: str,
    *,
    eol_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    excluded: bool = False,
    block: bool = False,
    published_days_ago: float = 30,
    regions: tuple[str | RegionFacts, ...] = ("East US",),
) -> VersionFacts:
    """``regions``: names (no regional flag stated) or :class:`RegionFacts`."""
    return VersionFacts(
        id=f"{DEF_ID}/versions/{name}",
        name=name,
        region="eastus",
        regions=tuple(r if isinstance(r, RegionFacts) else RegionFacts(r) for r in regions),
        tags=dict(tags or {}),
        end_of_life=NOW + timedelta(days=eol_days) if eol_days is not None else None,
        published=NOW - timedelta(days=published_days_ago),
        excluded_from_latest=excluded,
        block_deletion_before_end_of_life=block,
    )


def deprecated(name: str, *, days_ago: float, **kwargs: Any) -> VersionFacts:
    tags = {
        "lifecycle": "deprecated",
        DEPRECATED_AT_TAG: (NOW - timedelta(days=days_ago)).isoformat(),
    }
    tags.update(kwargs.pop("tags", {}))
    return version(name, tags=tags, excluded=True, **kwargs)


def gallery(
    *versions: VersionFacts,
    gallery_tags: Mapping[str, str] | None = None,
    definition_tags: Mapping[str, str] | None = None,
) -> GalleryFacts:
    definition = DefinitionFacts(
        id=DEF_ID, name="d", tags=dict(definition_tags or {}), versions=versions
    )
    return GalleryFacts(
        id=DEF_ID.rsplit("/images", 1)[0],
        name="g",
        tags=dict(gallery_tags or {}),
        definitions=(definition,),
    )


def plan_for(*galleries: GalleryFacts, in_use: tuple[str, ...] = (), **policy: Any) -> Plan:
    return build_plan(
        galleries, policy=LifecyclePolicy(**policy), now=NOW, in_use_version_ids=in_use
    )


def by_version(plan: Plan) -> dict[str, tuple[Action, Rule]]:
    return {e.version_id.rsplit("/", 1)[1]: (e.action, e.rule) for e in plan.entries}


def test_past_end_of_life_is_deprecated_but_the_newest_is_kept() -> None:
    plan = plan_for(gallery(version("1.0.0", eol_days=-1), version("1.1.0", eol_days=30)))
    assert by_version(plan) == {"1.0.0": (Action.DEPRECATE, Rule.END_OF_LIFE)}


def test_missing_end_of_life_never_expires_by_date() -> None:
    plan = plan_for(gallery(version("1.0.0"), version("1.1.0")))
    assert plan.entries == ()


def test_deprecated_version_is_deleted_after_the_grace_period() -> None:
    plan = plan_for(
        gallery(
            deprecated("1.0.0", days_ago=15, eol_days=-15),
            deprecated("1.1.0", days_ago=3, eol_days=-3),
            version("2.0.0"),
        )
    )
    assert by_version(plan) == {"1.0.0": (Action.DELETE, Rule.GRACE_PERIOD_OVER)}


def test_grace_period_can_be_set_per_definition_and_gallery() -> None:
    facts = (deprecated("1.0.0", days_ago=3, eol_days=-3), version("2.0.0"))
    assert plan_for(gallery(*facts, definition_tags={GRACE_DAYS_TAG: "2"})).actions()
    assert plan_for(gallery(*facts, gallery_tags={GRACE_DAYS_TAG: "1"})).actions()
    assert not plan_for(gallery(*facts, gallery_tags={GRACE_DAYS_TAG: "30"})).actions()


@pytest.mark.parametrize("where", ["gallery", "definition", "version"])
def test_protect_tag_holds_at_every_level(where: str) -> None:
    hold = {"lifecycle": "hold"}
    old = version("1.0.0", eol_days=-1, tags=hold if where == "version" else None)
    facts = gallery(
        old,
        version("2.0.0"),
        gallery_tags=hold if where == "gallery" else None,
        definition_tags=hold if where == "definition" else None,
    )
    assert by_version(plan_for(facts)) == {"1.0.0": (Action.SKIP, Rule.PROTECT_TAG)}


def test_in_use_version_is_not_deleted_and_is_reported() -> None:
    old = deprecated("1.0.0", days_ago=20, eol_days=-20)
    plan = plan_for(gallery(old, version("2.0.0")), in_use=(old.id.upper(),))
    assert by_version(plan) == {"1.0.0": (Action.SKIP, Rule.IN_USE)}


def test_the_last_version_latest_can_resolve_to_is_kept() -> None:
    # 2.0.0 is excluded from latest, so 1.0.0 is the only one "latest" can pick
    plan = plan_for(
        gallery(version("1.0.0", eol_days=-1), version("2.0.0", excluded=True)),
        min_keep_per_definition=1,
    )
    assert by_version(plan) == {"1.0.0": (Action.SKIP, Rule.LAST_LATEST)}


def test_min_keep_protects_the_newest_by_version_order_not_by_text() -> None:
    plan = plan_for(
        gallery(
            version("1.9.0", eol_days=-1),
            version("1.10.0", eol_days=-1),
            version("1.2.0", eol_days=-1),
        ),
        min_keep_per_definition=2,
    )
    assert by_version(plan) == {
        "1.10.0": (Action.SKIP, Rule.MIN_KEEP),
        "1.9.0": (Action.SKIP, Rule.MIN_KEEP),
        "1.2.0": (Action.DEPRECATE, Rule.END_OF_LIFE),
    }


def test_block_deletion_before_end_of_life_is_respected() -> None:
    blocked = deprecated("1.0.0", days_ago=20, eol_days=5, block=True)
    plan = plan_for(gallery(blocked, version("2.0.0")))
    assert by_version(plan) == {"1.0.0": (Action.SKIP, Rule.BLOCK_DELETION_BEFORE_EOL)}


def test_max_age_and_max_count_retention() -> None:
    facts = gallery(
        version("1.0.0", published_days_ago=400),
        version("1.1.0", published_days_ago=10),
        version("1.2.0", published_days_ago=5),
        version("1.3.0", published_days_ago=1),
    )
    assert by_version(plan_for(facts, max_age_days=365)) == {
        "1.0.0": (Action.DEPRECATE, Rule.MAX_AGE)
    }
    assert by_version(plan_for(facts, max_versions_per_definition=2)) == {
        "1.1.0": (Action.DEPRECATE, Rule.MAX_COUNT),
        "1.0.0": (Action.DEPRECATE, Rule.MAX_COUNT),
    }


def test_more_deletions_than_the_cap_trip_the_breaker_and_show_all_of_them() -> None:
    old = [deprecated(f"1.{n}.0", days_ago=30, eol_days=-30) for n in range(5)]
    plan = plan_for(gallery(*old, version("2.0.0")), max_deletions_per_run=2)
    assert plan.circuit_breaker_tripped
    assert plan.count(Action.DELETE) == 5  # what the run would have done (a live run halts)
    at_the_cap = plan_for(gallery(*old[:2], version("2.0.0")), max_deletions_per_run=2)
    assert not at_the_cap.circuit_breaker_tripped
    assert at_the_cap.count(Action.DELETE) == 2


def test_acknowledged_deletions_go_at_most_the_cap_per_run_oldest_first() -> None:
    old = [
        deprecated(f"1.{n}.0", days_ago=30, eol_days=-30, published_days_ago=100 - n)
        for n in range(5)
    ]
    approved = [v.id for v in old]
    plan = build_plan(
        [gallery(*old, version("2.0.0"))],
        policy=LifecyclePolicy(max_deletions_per_run=2),
        now=NOW,
        in_use_version_ids=(),
        approved_deletions=approved,
    )
    assert not plan.circuit_breaker_tripped
    assert [(e.version_id.rsplit("/", 1)[1], e.action, e.rule) for e in plan.entries] == [
        ("1.0.0", Action.DELETE, Rule.GRACE_PERIOD_OVER),
        ("1.1.0", Action.DELETE, Rule.GRACE_PERIOD_OVER),
        ("1.2.0", Action.SKIP, Rule.CIRCUIT_BREAKER),
        ("1.3.0", Action.SKIP, Rule.CIRCUIT_BREAKER),
        ("1.4.0", Action.SKIP, Rule.CIRCUIT_BREAKER),
    ]


def test_a_cap_of_zero_never_deletes_and_never_trips() -> None:
    plan = plan_for(
        gallery(deprecated("1.0.0", days_ago=30, eol_days=-30), version("2.0.0")),
        max_deletions_per_run=0,
    )
    assert by_version(plan) == {"1.0.0": (Action.SKIP, Rule.CIRCUIT_BREAKER)}
    assert not plan.circuit_breaker_tripped


def test_deprecations_beyond_the_per_run_budget_wait_for_the_next_run() -> None:
    expired = [version(f"1.{n}.0", eol_days=-1) for n in range(6)]
    plan = plan_for(gallery(*expired, version("2.0.0")), max_deprecations_per_run=4)
    deprecations = [e for e in plan.entries if e.action is Action.DEPRECATE]
    waiting = [e for e in plan.entries if e.rule is Rule.DEPRECATION_BUDGET]
    assert len(deprecations) == 4 and len(waiting) == 2
    assert all(e.action is Action.SKIP and "next run" in e.reason for e in waiting)
    assert plan.to_document()["policy"]["maxDeprecationsPerRun"] == 4


def test_quota_counts_versions_per_subscription_and_region_and_warns_at_80_percent() -> None:
    versions = [version(f"1.0.{n}", regions=("East US", "westus")) for n in range(3)]
    plan = plan_for(gallery(*versions))
    assert {(q.region, q.versions) for q in plan.quota} == {("eastus", 3), ("westus", 3)}
    assert plan.quota_warnings == ()


def test_policy_refuses_to_keep_nothing() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LifecyclePolicy(min_keep_per_definition=0)


class RecordingWriter:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.tags: list[dict[str, str]] = []
        self.fail_on = fail_on

    def deprecate(self, version_id: str, *, tags: Mapping[str, str], replicas: int | None) -> None:
        self.calls.append(("deprecate", version_id))
        self.tags.append(dict(tags))

    def delete(self, version_id: str) -> None:
        if self.fail_on and version_id.endswith(self.fail_on):
            raise TransientError("throttled")
        self.calls.append(("delete", version_id))


class MemoryAudit:
    def __init__(self) -> None:
        self.runs: dict[str, Mapping[str, Any]] = {}

    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None:
        self.runs[run_id] = document


def _mixed_plan(dry_run: bool) -> Plan:
    return plan_for(
        gallery(
            deprecated("1.0.0", days_ago=30, eol_days=-30),
            version("1.1.0", eol_days=-1),
            version("2.0.0"),
        ),
        dry_run=dry_run,
    )


def test_dry_run_changes_nothing_but_writes_the_plan() -> None:
    writer, audit = RecordingWriter(), MemoryAudit()
    outcome = apply_plan(_mixed_plan(dry_run=True), run_id="r1", writer=writer, audit=audit)
    assert writer.calls == []
    assert outcome.done == []
    assert len(audit.runs["r1"]["plan"]["entries"]) == 2


def test_apply_does_exactly_the_plan() -> None:
    plan = _mixed_plan(dry_run=False)
    writer, audit = RecordingWriter(), MemoryAudit()
    paced: list[int] = []
    outcome = apply_plan(
        plan, run_id="r2", writer=writer, audit=audit, pace=lambda: paced.append(1)
    )
    assert [(a, v.rsplit("/", 1)[1]) for a, v in writer.calls] == [
        ("delete", "1.0.0"),  # plan order: oldest first
        ("deprecate", "1.1.0"),
    ]
    assert [e.version_id for e in outcome.done] == [e.version_id for e in plan.actions()]
    assert paced == [1]
    assert audit.runs["r2"]["outcome"]["done"] == [e.to_document() for e in plan.actions()]


def test_a_failed_action_is_recorded_and_the_run_goes_on() -> None:
    writer, audit = RecordingWriter(fail_on="1.0.0"), MemoryAudit()
    outcome = apply_plan(_mixed_plan(dry_run=False), run_id="r3", writer=writer, audit=audit)
    assert [e.version_id.rsplit("/", 1)[1] for e, _ in outcome.failed] == ["1.0.0"]
    assert [e.version_id.rsplit("/", 1)[1] for e in outcome.done] == ["1.1.0"]
    assert audit.runs["r3"]["outcome"]["failed"][0]["error"] == "throttled"


# ---------------------------------------------------------------- item 13: regression tests


def test_last_latest_holds_per_region_when_each_version_serves_one_region() -> None:
    # 1.0.0 is the only version in West Europe; 2.0.0 serves East US only
    a = version("1.0.0", eol_days=-1, regions=("West Europe",))
    b = version("2.0.0", regions=("East US",))
    plan = plan_for(gallery(a, b))
    assert by_version(plan) == {"1.0.0": (Action.SKIP, Rule.LAST_LATEST)}
    assert "West Europe" in plan.entries[0].reason


def test_deletions_go_oldest_first_by_published_date_then_version() -> None:
    old = [
        deprecated("1.3.0", days_ago=30, eol_days=-30, published_days_ago=300),
        deprecated("1.1.0", days_ago=30, eol_days=-30, published_days_ago=100),
        deprecated("1.2.0", days_ago=30, eol_days=-30, published_days_ago=100),
        deprecated("1.0.0", days_ago=30, eol_days=-30, published_days_ago=50),
    ]
    plan = plan_for(gallery(*old, version("2.0.0")), max_deletions_per_run=10)
    assert [e.version_id.rsplit("/", 1)[1] for e in plan.actions()] == [
        "1.3.0",
        "1.1.0",
        "1.2.0",
        "1.0.0",
    ]


EAST, WEST = "East US", "West US"


def test_last_latest_holds_in_a_region_where_the_other_version_is_excluded() -> None:
    # both are replicated to both regions, but 2.0.0 is excluded from latest in West US
    a = version("1.0.0", eol_days=-1, regions=(RegionFacts(EAST, False), RegionFacts(WEST, False)))
    b = version("2.0.0", regions=(RegionFacts(EAST, False), RegionFacts(WEST, True)))
    plan = plan_for(gallery(a, b))
    assert by_version(plan) == {"1.0.0": (Action.SKIP, Rule.LAST_LATEST)}
    assert plan.entries[0].reason.startswith("the only version 'latest' can resolve to in West US")


def test_a_version_serving_a_region_another_serves_too_can_go() -> None:
    a = version("1.0.0", eol_days=-1, regions=(RegionFacts(EAST, False), RegionFacts(WEST, False)))
    b = version("2.0.0", regions=(RegionFacts(EAST, False), RegionFacts(WEST, False)))
    assert by_version(plan_for(gallery(a, b))) == {"1.0.0": (Action.DEPRECATE, Rule.END_OF_LIFE)}


def test_a_regional_false_with_a_version_level_true_is_not_a_sure_server() -> None:
    # 2.0.0 is excluded at the version but says excludeFromLatest=false in West US: whichever
    # flag Azure applies, 1.0.0 must stay for West US
    a = version("1.0.0", eol_days=-1, regions=(RegionFacts(WEST, False),))
    b = version("2.0.0", excluded=True, regions=(RegionFacts(WEST, False),))
    assert by_version(plan_for(gallery(a, b))) == {"1.0.0": (Action.SKIP, Rule.LAST_LATEST)}


def test_of_two_expired_versions_serving_a_region_the_newest_is_kept() -> None:
    older = version("1.0.0", eol_days=-1, regions=(WEST,), published_days_ago=60)
    newer = version("1.5.0", eol_days=-1, regions=(WEST,), published_days_ago=40)
    plan = plan_for(gallery(older, newer, version("2.0.0", regions=(EAST,))))
    assert by_version(plan) == {
        "1.0.0": (Action.DEPRECATE, Rule.END_OF_LIFE),
        "1.5.0": (Action.SKIP, Rule.LAST_LATEST),  # latest in West US does not go backwards
    }


def test_a_deprecated_version_still_latest_in_a_region_is_hidden_there_too() -> None:
    legacy = deprecated("1.0.0", days_ago=3, regions=(RegionFacts(EAST, False),))
    hidden = deprecated("1.1.0", days_ago=3, regions=(RegionFacts(EAST, True),))
    plan = plan_for(gallery(legacy, hidden, version("2.0.0")))
    assert by_version(plan) == {"1.0.0": (Action.DEPRECATE, Rule.LATEST_NOT_HIDDEN)}
    assert "East US" in plan.entries[0].reason


def test_hiding_again_keeps_the_deprecation_time_so_the_grace_is_not_restarted() -> None:
    legacy = deprecated("1.0.0", days_ago=3, regions=(RegionFacts(EAST, False),))
    plan = plan_for(gallery(legacy, version("2.0.0")), dry_run=False)
    writer = RecordingWriter()
    apply_plan(plan, run_id="r", writer=writer, audit=MemoryAudit())
    assert writer.tags == [{"lifecycle": "deprecated"}]
