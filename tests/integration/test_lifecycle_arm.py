"""Lifecycle runs on the ARM simulator (real SDK, managed identity) with the audit on Azurite.

The seeded gallery covers the acceptance list of issue 6: past end of life; protected; in use by a
scale set; the last one remaining; blocked before end of life; plus the outcome equal to the plan,
the circuit breaker (a halt, then an acknowledgement) and dry-run. Each test compares the
simulator's state before and after. Latest per region: ``test_lifecycle_regions.py``.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.adapters.blob_audit_store import BlobAuditStore
from shared.adapters.gallery_inventory import arm_lifecycle_adapters
from shared.core.settings import SettingName, Settings
from shared.lifecycle.apply import apply_plan
from shared.lifecycle.facts import DEPRECATED_AT_TAG
from shared.lifecycle.halt import HaltRegistry
from shared.lifecycle.plan import Action, LifecyclePolicy, Rule
from shared.lifecycle.service import DeletePacer, LifecycleService
from tests.conftest import AzuriteInstance
from tests.devstack.armsim.conftest import (
    LOCATION,
    RESOURCE_GROUP,
    SDK_TIMEOUTS,
    SUBSCRIPTION,
    ArmSim,
    make_client,
)

pytestmark = pytest.mark.integration

PROVIDER = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers"
GALLERY = "lifegal"
GALLERY_ID = f"{PROVIDER}/Microsoft.Compute/galleries/{GALLERY}"
SNAPSHOT_ID = f"{PROVIDER}/Microsoft.Compute/snapshots/snap-1"
VMSS_ID = f"{PROVIDER}/Microsoft.Compute/virtualMachineScaleSets/web"
NOW = datetime.now(UTC)


def iso(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat()


def definition(name: str) -> dict[str, Any]:
    return {
        "id": f"{GALLERY_ID}/images/{name}",
        "location": LOCATION,
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V2",
            "identifier": {"publisher": "contoso", "offer": name, "sku": "base"},
        },
    }


def version(
    image: str,
    name: str,
    *,
    eol_days: float | None = None,
    tags: dict[str, str] | None = None,
    excluded: bool = False,
    block: bool = False,
    replicas: int = 1,
    region_excluded: bool = False,
) -> dict[str, Any]:
    """``excluded``: the version's flag; ``region_excluded``: its region's (as builds send it)."""
    region = {"name": LOCATION, "regionalReplicaCount": replicas}
    profile: dict[str, Any] = {
        "targetRegions": [{**region, "excludeFromLatest": region_excluded}],
        "excludeFromLatest": excluded,
        "publishedDate": iso(-90),
    }
    if eol_days is not None:
        profile["endOfLifeDate"] = iso(eol_days)
    props: dict[str, Any] = {
        "publishingProfile": profile,
        "storageProfile": {"osDiskImage": {"source": {"id": SNAPSHOT_ID}}},
    }
    if block:
        props["safetyProfile"] = {"blockDeletionBeforeEndOfLife": True}
    return {
        "id": f"{GALLERY_ID}/images/{image}/versions/{name}",
        "location": LOCATION,
        "properties": props,
        "tags": dict(tags or {}),
    }


def deprecated(image: str, name: str, *, days_ago: float = 30, **kwargs: Any) -> dict[str, Any]:
    """Deprecated as the lifecycle does it: excluded from latest at the version and its region."""
    tags = {"lifecycle": "deprecated", DEPRECATED_AT_TAG: iso(-days_ago), "owner": "team-a"}
    kwargs.setdefault("eol_days", -days_ago)
    return version(image, name, tags=tags, excluded=True, region_excluded=True, **kwargs)


def seed_acceptance_gallery(sim: ArmSim) -> None:
    """One definition per acceptance case, each with its expected plan entry in the comment."""
    sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        *(
            definition(name)
            for name in ("eol", "held", "scaleset", "grace", "last", "lastlatest", "blocked")
        ),
        # past end of life -> deprecate (existing tags kept)
        version("eol", "1.0.0", eol_days=-10, tags={"owner": "team-a"}, replicas=3),
        version("eol", "2.0.0", eol_days=60),
        # protected -> skip (protect-tag)
        version("held", "1.0.0", eol_days=-10, tags={"lifecycle": "hold"}),
        version("held", "2.0.0"),
        # deprecated, grace over, but a scale set uses it -> skip (in-use)
        deprecated("scaleset", "1.0.0"),
        version("scaleset", "2.0.0"),
        # deprecated, grace over -> delete
        deprecated("grace", "1.0.0"),
        version("grace", "2.0.0"),
        # the last one remaining -> skip (min-keep)
        version("last", "1.0.0", eol_days=-10),
        # the only version "latest" can resolve to -> skip (last-latest)
        version("lastlatest", "1.0.0", eol_days=-10),
        version("lastlatest", "2.0.0", eol_days=60, excluded=True, region_excluded=True),
        # deprecated, grace over, blockDeletionBeforeEndOfLife and end of life ahead -> skip
        deprecated("blocked", "1.0.0", eol_days=10, block=True),
        version("blocked", "2.0.0"),
        {
            "id": VMSS_ID,
            "location": LOCATION,
            "properties": {
                "virtualMachineProfile": {
                    "storageProfile": {
                        "imageReference": {"id": f"{GALLERY_ID}/images/scaleset/versions/1.0.0"}
                    }
                }
            },
        },
    )


EXPECTED = {
    "eol/1.0.0": (Action.DEPRECATE, Rule.END_OF_LIFE),
    "held/1.0.0": (Action.SKIP, Rule.PROTECT_TAG),
    "scaleset/1.0.0": (Action.SKIP, Rule.IN_USE),
    "grace/1.0.0": (Action.DELETE, Rule.GRACE_PERIOD_OVER),
    "last/1.0.0": (Action.SKIP, Rule.MIN_KEEP),
    "lastlatest/1.0.0": (Action.SKIP, Rule.LAST_LATEST),
    "blocked/1.0.0": (Action.SKIP, Rule.BLOCK_DELETION_BEFORE_EOL),
}


def short(version_id: str) -> str:
    parts = version_id.split("/")
    return f"{parts[-3]}/{parts[-1]}"


class Harness:
    def __init__(self, sim: ArmSim, azurite: AzuriteInstance) -> None:
        self.sim = sim
        settings = Settings.from_env(
            {SettingName.ARM_ENDPOINT: sim.base_url, SettingName.ARM_CA_BUNDLE: str(sim.cert)}
        )
        credential = ManagedIdentityCredential()
        self.inventory, self.writer, self.counter = arm_lifecycle_adapters(
            settings, lambda: credential, polling_interval=0, **SDK_TIMEOUTS
        )
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        self.container: ContainerClient = service.get_container_client(
            f"audit-{uuid.uuid4().hex[:12]}"
        )
        self.audit = BlobAuditStore(lambda: self.container)
        self.halts = HaltRegistry(self.audit.documents(), clock=lambda: datetime.now(UTC))
        self.compute: ComputeManagementClient = make_client(sim, credential)

    def service(
        self, *, patterns: tuple[str, ...] | None = None, **policy: Any
    ) -> LifecycleService:
        policy.setdefault("min_keep_per_definition", 1)
        return LifecycleService(
            inventory=self.inventory,
            writer=self.writer,
            audit=self.audit,
            policy=LifecyclePolicy(**policy),
            target_patterns=patterns or (f"{SUBSCRIPTION}/{RESOURCE_GROUP}/{GALLERY}",),
            pacer=DeletePacer(50),
            halts=self.halts,
        )

    def state(self) -> dict[str, dict[str, Any]]:
        """Every version's tags, latest flag, replicas and provisioning state (via the SDK)."""
        found: dict[str, dict[str, Any]] = {}
        for image in self.compute.gallery_images.list_by_gallery(RESOURCE_GROUP, GALLERY):
            for item in self.compute.gallery_image_versions.list_by_gallery_image(
                RESOURCE_GROUP, GALLERY, str(image.name)
            ):
                props = item["properties"]
                profile = props["publishingProfile"]
                found[f"{image.name}/{item.name}"] = {
                    "tags": dict(item.get("tags") or {}),
                    "excludeFromLatest": profile["excludeFromLatest"],
                    "replicas": [r["regionalReplicaCount"] for r in profile["targetRegions"]],
                    "state": props["provisioningState"],
                }
        return found

    def writes(self) -> dict[str, int]:
        calls: dict[str, int] = self.sim.admin("GET", "/admin/stats")["armCalls"]
        return {
            group: count
            for group, count in calls.items()
            if group in ("CreateUpdateGalleryImageVersion", "DeleteGalleryImageVersion")
        }

    def audit_documents(self) -> list[dict[str, Any]]:
        names = sorted(b.name for b in self.container.list_blobs(name_starts_with="runs/"))
        return [self.audit.read_run(name) for name in names]


@pytest.fixture
def harness(fresh: ArmSim, identity_env: None, azurite: AzuriteInstance) -> Harness:
    del identity_env
    return Harness(fresh, azurite)


def test_plan_covers_every_acceptance_case_from_listings_alone(harness: Harness) -> None:
    seed_acceptance_gallery(harness.sim)
    snapshot = harness.service(dry_run=True).plan()
    assert {short(e.version_id): (e.action, e.rule) for e in snapshot.plan.entries} == EXPECTED
    assert snapshot.in_use == {
        f"{GALLERY_ID}/images/scaleset/versions/1.0.0".lower(): [VMSS_ID],
    }
    calls = harness.counter.snapshot()
    # 1 gallery GET, 1 definition page, 1 version list per definition, 1 VM + 1 scale-set page
    assert calls == {
        "GET galleries": 1,
        "LIST images": 1,
        "LIST versions": 7,
        "LIST virtualMachines": 1,
        "LIST virtualMachineScaleSets": 1,
    }
    assert "GET versions" not in calls


def test_dry_run_changes_nothing_and_writes_the_plan(harness: Harness) -> None:
    seed_acceptance_gallery(harness.sim)
    before = harness.state()
    snapshot, outcome = harness.service(dry_run=True).run()
    assert harness.state() == before
    assert harness.writes() == {}
    assert outcome.done == [] and outcome.failed == []
    [document] = harness.audit_documents()
    assert document["status"] == "dry-run"
    assert document["runId"] == snapshot.run_id
    assert document["plan"]["dryRun"] is True
    assert document["plan"]["entries"] == [e.to_document() for e in snapshot.plan.entries]
    assert document["outcome"] == {"done": [], "failed": []}


def test_apply_does_exactly_the_plan_and_the_outcome_equals_it(harness: Harness) -> None:
    seed_acceptance_gallery(harness.sim)
    before = harness.state()
    snapshot, outcome = harness.service(dry_run=False, deprecated_replica_count=1).run()
    planned = snapshot.plan.actions()
    assert {short(e.version_id) for e in planned} == {"eol/1.0.0", "grace/1.0.0"}
    assert outcome.done == list(planned)
    assert outcome.failed == []

    after = harness.state()
    deprecated_now = after.pop("eol/1.0.0")
    assert deprecated_now["excludeFromLatest"] is True
    assert deprecated_now["tags"]["lifecycle"] == "deprecated"
    assert deprecated_now["tags"]["owner"] == "team-a"  # existing tags kept
    assert DEPRECATED_AT_TAG in deprecated_now["tags"]
    assert deprecated_now["replicas"] == [1]  # reduced from 3
    assert after.pop("grace/1.0.0", {"state": "Deleting"})["state"] == "Deleting"
    del before["eol/1.0.0"], before["grace/1.0.0"]
    assert after == before  # nothing outside the plan was touched
    assert harness.writes() == {
        "CreateUpdateGalleryImageVersion": 1,
        "DeleteGalleryImageVersion": 1,
    }

    documents = harness.audit_documents()
    assert len(documents) == 1  # one document per run: the plan, then plan + outcome
    [document] = documents
    assert document["status"] == "applied"
    assert document["outcome"]["done"] == [e.to_document() for e in planned]
    assert document["context"]["armCalls"]["total"] == harness.counter.total


def test_circuit_breaker_halts_the_run_until_acknowledged(harness: Harness) -> None:
    harness.sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        definition("bulk"),
        *(deprecated("bulk", f"1.{n}.0") for n in range(5)),
        version("bulk", "2.0.0", eol_days=-1),
        version("bulk", "3.0.0"),
    )
    before = harness.state()
    snapshot, outcome = harness.service(dry_run=False, max_deletions_per_run=2).run()
    assert snapshot.plan.circuit_breaker_tripped
    assert snapshot.status == "halted"
    assert outcome.done == [] and harness.writes() == {}  # no deletion, no deprecation
    assert harness.state() == before
    [document] = harness.audit_documents()
    assert document["status"] == "halted"
    assert document["halt"]["runId"] == snapshot.run_id
    assert len(document["halt"]["wouldDelete"]) == 5
    assert document["halt"]["wouldDeprecate"] == 1
    assert document["halt"]["maxDeletionsPerRun"] == 2
    halt = json.loads(harness.container.download_blob("halt.json").readall())
    assert (halt["state"], halt["runId"]) == ("halted", snapshot.run_id)

    again, _ = harness.service(dry_run=False, max_deletions_per_run=2).run()
    assert again.status == "halted" and again.halt is not None
    assert again.halt.run_id == snapshot.run_id and harness.writes() == {}

    harness.halts.acknowledge(snapshot.run_id, by="ops", runs=harness.audit)
    after_ack, outcome = harness.service(dry_run=False, max_deletions_per_run=2).run()
    assert after_ack.status == "applied"
    assert [(short(e.version_id), e.action) for e in outcome.done] == [
        ("bulk/1.0.0", Action.DELETE),  # oldest first: published together, then version order
        ("bulk/1.1.0", Action.DELETE),
        ("bulk/2.0.0", Action.DEPRECATE),
    ]
    waiting = [e for e in after_ack.plan.entries if e.rule is Rule.CIRCUIT_BREAKER]
    assert [short(e.version_id) for e in waiting] == ["bulk/1.2.0", "bulk/1.3.0", "bulk/1.4.0"]
    assert harness.writes() == {
        "DeleteGalleryImageVersion": 2,
        "CreateUpdateGalleryImageVersion": 1,
    }


def test_a_hold_tag_set_after_planning_wins(harness: Harness) -> None:
    harness.sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        definition("grace"),
        deprecated("grace", "1.0.0"),
        version("grace", "2.0.0"),
    )
    service = harness.service(dry_run=False)
    snapshot = service.plan()
    assert [e.action for e in snapshot.plan.actions()] == [Action.DELETE]
    # someone puts the version on hold between the plan and the apply
    harness.sim.seed({**deprecated("grace", "1.0.0"), "tags": {"lifecycle": "hold"}})
    outcome = apply_plan(
        snapshot.plan, run_id=snapshot.run_id, writer=harness.writer, audit=harness.audit
    )
    assert outcome.done == []
    assert "lifecycle=hold" in outcome.failed[0][1]
    assert harness.writes() == {}


def test_in_use_guard_resolves_latest_references(harness: Harness) -> None:
    harness.sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        definition("app"),
        version("app", "1.0.0"),
        version("app", "1.1.0"),
        version("app", "2.0.0", excluded=True, region_excluded=True),
        {
            "id": f"{PROVIDER}/Microsoft.Compute/virtualMachines/vm1",
            "location": LOCATION,
            "properties": {
                "storageProfile": {
                    "imageReference": {
                        "id": f"{GALLERY_ID}/images/app/versions/latest",
                        "exactVersion": "1.0.0",
                    }
                }
            },
        },
    )
    snapshot = harness.service(dry_run=True).plan()
    vm = f"{PROVIDER}/Microsoft.Compute/virtualMachines/vm1"
    assert snapshot.in_use == {
        f"{GALLERY_ID}/images/app/versions/1.1.0".lower(): [vm],  # what latest resolves to
        f"{GALLERY_ID}/images/app/versions/1.0.0".lower(): [vm],  # what the VM was built from
    }


def test_wildcard_patterns_list_galleries_and_a_wildcard_subscription_is_reported(
    harness: Harness,
) -> None:
    seed_acceptance_gallery(harness.sim)
    snapshot = harness.service(
        dry_run=True,
        patterns=(
            f"{SUBSCRIPTION}/{RESOURCE_GROUP}/*",
            f"{SUBSCRIPTION}/*/{GALLERY}",
            f"*/{RESOURCE_GROUP}/{GALLERY}",
            f"{SUBSCRIPTION}/{RESOURCE_GROUP}/absent",
        ),
    ).plan()
    assert snapshot.galleries_read == [GALLERY_ID]
    assert snapshot.galleries_missing == [f"{PROVIDER}/Microsoft.Compute/galleries/absent"]
    assert [p for p, _ in snapshot.scope.skipped] == [f"*/{RESOURCE_GROUP}/{GALLERY}"]
    assert {short(e.version_id): (e.action, e.rule) for e in snapshot.plan.entries} == EXPECTED


@pytest.mark.parametrize(("definitions", "versions", "page_size"), [(30, 10, 7)])
def test_arm_calls_follow_the_formula(
    harness: Harness, definitions: int, versions: int, page_size: int
) -> None:
    resources: list[dict[str, Any]] = [{"id": GALLERY_ID, "location": LOCATION, "properties": {}}]
    for d in range(definitions):
        resources.append(definition(f"def{d:03d}"))
        resources += [version(f"def{d:03d}", f"1.0.{v}") for v in range(versions)]
    harness.sim.seed(*resources)
    harness.sim.admin("POST", "/admin/config", {"pageSize": page_size})
    stats_before = harness.sim.admin("GET", "/admin/stats")["armCallsTotal"]
    snapshot = harness.service(dry_run=True).plan()
    expected = (
        1  # gallery GET
        + math.ceil(definitions / page_size)  # definition pages
        + definitions * math.ceil(versions / page_size)  # version pages, per definition
        + 1  # VM pages (none seeded: one empty page)
        + 1  # scale-set pages
    )
    assert snapshot.arm_calls_total == expected == 68
    assert harness.sim.admin("GET", "/admin/stats")["armCallsTotal"] - stats_before == expected
    assert [(q.region, q.versions) for q in snapshot.plan.quota] == [("eastus", 300)]
