"""The lifecycle run over fakes of its ports: scope, in-use resolution, audit order, pacing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.errors import PermanentError, TransientError
from shared.core.settings import LifecycleSettings
from shared.lifecycle.facts import (
    DEPRECATED_AT_TAG,
    DefinitionFacts,
    GalleryFacts,
    RegionFacts,
    VersionFacts,
)
from shared.lifecycle.inventory import (
    GalleryHeader,
    GalleryRef,
    GallerySearch,
    ImageReference,
    gallery_scope,
    in_use_versions,
)
from shared.lifecycle.plan import Action, LifecyclePolicy, Rule
from shared.lifecycle.service import DeletePacer, LifecycleService, policy_from_settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000001"
GALLERY = GalleryRef(SUB, "rg", "gal")
DEF_ID = f"{GALLERY.id}/images/app"


def version(
    name: str,
    *,
    eol_days: float | None = None,
    excluded: bool = False,
    regions: tuple[RegionFacts, ...] = (RegionFacts("East US"),),
    **tags: str,
) -> VersionFacts:
    return VersionFacts(
        id=f"{DEF_ID}/versions/{name}",
        name=name,
        region="eastus",
        regions=regions,
        tags=dict(tags),
        end_of_life=NOW + timedelta(days=eol_days) if eol_days is not None else None,
        published=NOW - timedelta(days=100),
        excluded_from_latest=excluded,
        block_deletion_before_end_of_life=False,
    )


def gone(name: str) -> VersionFacts:
    """Deprecated 30 days ago: the grace period is over."""
    stamp = (NOW - timedelta(days=30)).isoformat()
    facts = version(name, eol_days=-30, excluded=True)
    return VersionFacts(
        **{
            **facts.__dict__,
            "tags": {"lifecycle": "deprecated", DEPRECATED_AT_TAG: stamp},
        }
    )


class FakeInventory:
    def __init__(
        self,
        versions: tuple[VersionFacts, ...],
        *,
        references: tuple[ImageReference, ...] = (),
        scan_error: Exception | None = None,
        missing: tuple[str, ...] = (),
    ) -> None:
        self.versions = versions
        self.references = references
        self.scan_error = scan_error
        self.missing = missing
        self.calls: list[str] = []

    def find_galleries(self, search: GallerySearch) -> Iterator[GalleryRef]:
        self.calls.append(f"find {search.pattern}")
        yield GALLERY

    def gallery(self, ref: GalleryRef) -> GalleryHeader | None:
        self.calls.append(f"gallery {ref.name}")
        if ref.name in self.missing:
            return None
        return GalleryHeader(ref.id, ref.name, {})

    def definitions(self, ref: GalleryRef) -> Iterator[DefinitionFacts]:
        self.calls.append(f"definitions {ref.name}")
        yield DefinitionFacts(DEF_ID, "app", {}, self.versions)

    def image_references(self, subscription_id: str) -> Iterator[ImageReference]:
        self.calls.append(f"references {subscription_id}")
        if self.scan_error is not None:
            raise self.scan_error
        yield from self.references

    def arm_calls(self) -> Mapping[str, int]:
        return {"LIST versions": len(self.calls)}


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def deprecate(self, version_id: str, *, tags: Mapping[str, str], replicas: int | None) -> None:
        self.calls.append(("deprecate", version_id.rsplit("/", 1)[1]))

    def delete(self, version_id: str) -> None:
        self.calls.append(("delete", version_id.rsplit("/", 1)[1]))


class MemoryAudit:
    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None:
        self.writes.append((run_id, dict(document)))

    def run_document(self, run_id: str) -> Mapping[str, Any] | None:
        found = [document for written, document in self.writes if written == run_id]
        return found[-1] if found else None


def service(
    inventory: FakeInventory,
    *,
    patterns: tuple[str, ...] = (f"{SUB}/rg/gal",),
    in_use_subscriptions: tuple[str, ...] = (),
    **policy: Any,
) -> tuple[LifecycleService, RecordingWriter, MemoryAudit]:
    writer, audit = RecordingWriter(), MemoryAudit()
    policy.setdefault("min_keep_per_definition", 1)
    return (
        LifecycleService(
            inventory=inventory,
            writer=writer,
            audit=audit,
            policy=LifecyclePolicy(**policy),
            target_patterns=patterns,
            in_use_subscriptions=in_use_subscriptions,
            clock=lambda: NOW,
            run_ids=lambda: "run1",
        ),
        writer,
        audit,
    )


def test_patterns_are_read_listed_or_skipped() -> None:
    scope = gallery_scope(
        [f"{SUB}/rg/gal", f"{SUB}/rg/*", f"{SUB}/*/gal", f"{SUB}/*/*", "*/rg/gal", "bad"]
    )
    assert scope.galleries == (GalleryRef(SUB, "rg", "gal"),)
    assert [(s.resource_group, s.name) for s in scope.searches] == [
        ("rg", None),
        (None, "gal"),
        (None, None),
    ]
    assert [p for p, _ in scope.skipped] == ["*/rg/gal", "bad"]
    assert scope.subscriptions == (SUB,)


def test_run_writes_the_plan_first_then_plan_and_outcome_under_one_run_id() -> None:
    inventory = FakeInventory((gone("1.0.0"), version("1.1.0", eol_days=-1), version("2.0.0")))
    svc, writer, audit = service(inventory, dry_run=False)
    snapshot, outcome = svc.run()
    assert writer.calls == [("delete", "1.0.0"), ("deprecate", "1.1.0")]  # oldest first
    assert [(run_id, doc["status"]) for run_id, doc in audit.writes] == [
        ("run1", "planned"),
        ("run1", "applied"),
    ]
    first, last = audit.writes[0][1], audit.writes[1][1]
    assert first["plan"] == last["plan"] == snapshot.plan.to_document()
    assert "outcome" not in first
    assert last["outcome"]["done"] == [e.to_document() for e in snapshot.plan.actions()]
    assert last["context"]["galleries"] == [GALLERY.id]
    assert outcome.failed == []


def test_dry_run_override_changes_nothing() -> None:
    inventory = FakeInventory((gone("1.0.0"), version("2.0.0")))
    svc, writer, audit = service(inventory, dry_run=False)
    snapshot, _ = svc.run(dry_run=True)
    assert writer.calls == []
    assert [e.action for e in snapshot.plan.actions()] == [Action.DELETE]
    assert audit.writes[-1][1]["status"] == "dry-run"


def test_a_failed_in_use_scan_fails_the_run_before_any_change() -> None:
    inventory = FakeInventory(
        (gone("1.0.0"), version("2.0.0")), scan_error=PermanentError("403", reason="Forbidden")
    )
    svc, writer, audit = service(inventory, dry_run=False)
    with pytest.raises(PermanentError):
        svc.run()
    assert writer.calls == []
    [(_, document)] = audit.writes
    assert document["status"] == "failed"
    assert document["reason"] == "Forbidden"


def test_transient_listing_errors_propagate() -> None:
    inventory = FakeInventory((), scan_error=TransientError("throttled"))
    svc, _, _ = service(inventory)
    with pytest.raises(TransientError):
        svc.plan()


def test_in_use_subscriptions_default_to_the_targets_and_can_be_set() -> None:
    inventory = FakeInventory((version("1.0.0"),))
    service(inventory)[0].plan()
    assert f"references {SUB}" in inventory.calls
    other = FakeInventory((version("1.0.0"),))
    service(other, in_use_subscriptions=("AAA", "bbb"))[0].plan()
    assert [c for c in other.calls if c.startswith("references")] == [
        "references aaa",
        "references bbb",
    ]


def test_a_version_used_by_a_scale_set_is_held_and_reported() -> None:
    ref = ImageReference("/vmss/web", f"{DEF_ID}/versions/1.0.0".upper())
    inventory = FakeInventory((gone("1.0.0"), version("2.0.0")), references=(ref,))
    snapshot = service(inventory)[0].plan()
    assert [(e.action, e.rule) for e in snapshot.plan.entries] == [(Action.SKIP, Rule.IN_USE)]
    assert snapshot.context_document()["inUse"] == {
        f"{DEF_ID}/versions/1.0.0".lower(): ["/vmss/web"]
    }


def test_missing_gallery_is_reported_and_listed_galleries_are_read_once() -> None:
    inventory = FakeInventory((version("1.0.0"),), missing=("absent",))
    snapshot = service(inventory, patterns=(f"{SUB}/rg/*", f"{SUB}/rg/gal", f"{SUB}/rg/absent"))[
        0
    ].plan()
    assert snapshot.galleries_read == [GALLERY.id]
    assert snapshot.galleries_missing == [GalleryRef(SUB, "rg", "absent").id]
    assert inventory.calls.count("definitions gal") == 1


def test_latest_references_hold_the_version_latest_resolves_to() -> None:
    facts = GalleryFacts(
        GALLERY.id,
        "gal",
        {},
        (
            DefinitionFacts(
                DEF_ID,
                "app",
                {},
                (version("1.2.0"), version("1.10.0"), version("2.0.0", excluded=True)),
            ),
        ),
    )
    held = in_use_versions(
        [
            ImageReference("/vm/a", DEF_ID),
            ImageReference("/vm/b", f"{DEF_ID}/versions/latest", exact_version="1.2.0"),
            ImageReference("/vm/c", f"{GALLERY.id}/images/other/versions/latest"),
            ImageReference("/vm/d", f"{GALLERY.id}/images/other/versions/3.0.0"),
        ],
        [facts],
    )
    assert held == {
        f"{DEF_ID}/versions/1.10.0".lower(): ["/vm/a", "/vm/b"],  # by version order, not text
        f"{DEF_ID}/versions/1.2.0".lower(): ["/vm/b"],
        f"{GALLERY.id}/images/other/versions/3.0.0".lower(): ["/vm/d"],
    }


def test_pacer_waits_only_when_the_window_budget_is_spent() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = DeletePacer(2, window_seconds=10, clock=lambda: now[0], sleep=sleep)
    pacer.wait()
    now[0] = 1.0
    pacer.wait()
    assert slept == []
    now[0] = 4.0
    pacer.wait()  # third delete inside the window: wait until the first leaves it
    assert slept == [6.0]
    now[0] = 30.0
    pacer.wait()
    assert slept == [6.0]
    assert pacer.waited_seconds == 6.0
    with pytest.raises(ValueError, match="at least 1"):
        DeletePacer(0)


def test_policy_comes_from_the_settings() -> None:
    policy = policy_from_settings(
        LifecycleSettings(grace_days=3, min_keep=2, max_deletions_per_run=0, dry_run=False)
    )
    assert (policy.grace_period_days, policy.min_keep_per_definition) == (3, 2)
    assert policy.max_deletions_per_run == 0
    assert policy.dry_run is False


def test_a_run_over_the_deletion_cap_halts_and_changes_nothing() -> None:
    expired = (
        *(gone(f"1.{n}.0") for n in range(5)),
        version("1.9.0", eol_days=-1),
        version("2.0.0"),
    )
    svc, writer, audit = service(FakeInventory(expired), dry_run=False, max_deletions_per_run=2)
    svc.run()
    assert writer.calls == []  # no deletion and no deprecation
    assert audit.writes[-1][1]["status"] == "halted"


def test_latest_references_hold_what_latest_may_resolve_to_in_every_region() -> None:
    east, west = RegionFacts("East US", False), RegionFacts("West US", False)
    definition = DefinitionFacts(
        DEF_ID,
        "app",
        {},
        (
            version("1.0.0", regions=(east, west)),
            version("1.1.0", regions=(east,)),  # latest in East US
            # excluded at the version, but West US says false, and the regional flag wins
            version("2.0.0", excluded=True, regions=(west,)),
            version("3.0.0", excluded=True, regions=(RegionFacts("West US", True),)),
        ),
    )
    held = in_use_versions(
        [ImageReference("/vm/a", DEF_ID)], [GalleryFacts(GALLERY.id, "gal", {}, (definition,))]
    )
    assert held == {
        f"{DEF_ID}/versions/{name}".lower(): ["/vm/a"]
        for name in ("1.0.0", "1.1.0", "2.0.0")  # 1.0.0: latest in West US if 2.0.0 is not
    }
