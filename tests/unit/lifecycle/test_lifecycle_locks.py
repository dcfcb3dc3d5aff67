"""The lifecycle's lock rule: a version under a management lock is held back (rule ``locked``);
``ReadOnly`` holds deprecations and deletions, ``CanNotDelete`` only deletions."""

from __future__ import annotations

from shared.lifecycle.locks import LockFacts, LockIndex
from shared.lifecycle.plan import Action, LifecyclePolicy, Rule, build_plan
from tests.unit.lifecycle.test_lifecycle_plan import (
    DEF_ID,
    NOW,
    by_version,
    deprecated,
    gallery,
    version,
)

RG = "/subscriptions/sub1/resourceGroups/rg"
GALLERY_ID = DEF_ID.rsplit("/images", 1)[0]


def lock(scope: str, level: str, name: str = "l") -> LockFacts:
    return LockFacts(id=f"{scope}/providers/Microsoft.Authorization/locks/{name}", level=level)


def plan_with(*locks: LockFacts) -> dict[str, tuple[Action, Rule]]:
    facts = gallery(
        version("1.0.0", eol_days=-5),  # expired: to deprecate
        deprecated("0.9.0", days_ago=30),  # grace over: to delete
        version("2.0.0", eol_days=100),
        version("3.0.0", eol_days=100),
    )
    plan = build_plan(
        [facts],
        policy=LifecyclePolicy(min_keep_per_definition=1),
        now=NOW,
        in_use_version_ids=(),
        locks=LockIndex(locks),
    )
    return by_version(plan)


def test_without_locks_the_plan_deprecates_and_deletes() -> None:
    assert plan_with() == {
        "0.9.0": (Action.DELETE, Rule.GRACE_PERIOD_OVER),
        "1.0.0": (Action.DEPRECATE, Rule.END_OF_LIFE),
    }


def test_can_not_delete_on_the_resource_group_holds_only_deletions() -> None:
    assert plan_with(lock(RG, "CanNotDelete")) == {
        "0.9.0": (Action.SKIP, Rule.LOCKED),
        "1.0.0": (Action.DEPRECATE, Rule.END_OF_LIFE),
    }


def test_read_only_on_the_gallery_holds_deprecations_too() -> None:
    assert plan_with(lock(GALLERY_ID, "ReadOnly")) == {
        "0.9.0": (Action.SKIP, Rule.LOCKED),
        "1.0.0": (Action.SKIP, Rule.LOCKED),
    }


def test_a_lock_on_one_version_holds_that_version_only_and_names_the_lock() -> None:
    target = f"{DEF_ID}/versions/0.9.0"
    facts = gallery(deprecated("0.9.0", days_ago=30), version("2.0.0"), version("3.0.0"))
    plan = build_plan(
        [facts],
        policy=LifecyclePolicy(),
        now=NOW,
        in_use_version_ids=(),
        locks=LockIndex(
            [lock(target, "CanNotDelete", "keep-me"), lock(f"{DEF_ID}-other", "ReadOnly")]
        ),
    )
    (entry,) = plan.entries
    assert (entry.action, entry.rule) == (Action.SKIP, Rule.LOCKED)
    assert f"CanNotDelete lock 'keep-me' on {target} refuses its deletion" in entry.reason


def test_lock_scope_is_read_from_its_id() -> None:
    found = lock(f"{RG}/providers/Microsoft.Compute/galleries/g", "ReadOnly", "frozen")
    assert found.scope == f"{RG}/providers/Microsoft.Compute/galleries/g"
    assert found.covers(f"{RG}/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.0")
    assert not found.covers(f"{RG}/providers/Microsoft.Compute/galleries/g2")
