"""Benchmark: the lifecycle scan of a gallery with 1,000 definitions x 10 versions (issue 6).

A private ARM simulator (free port, temporary state) is seeded through ``/admin/seed`` with one
gallery, 1,000 definitions, 10,000 versions (a third of them past end of life), 250 VMs and 50
scale sets that reference versions. The lifecycle service then plans one dry run with the real
SDK, and every HTTP request to ARM is counted (pipeline policy and the simulator's own stats).

The simulator throttles like Azure. ``ListGalleryImageVersion``'s bucket is not published (the
simulator assumes 600 per 3 minutes, as its sibling groups): at that size the 1,000 version lists
alone wait about two minutes for tokens. The scan is therefore measured with that one bucket
raised, and the throttle-bound time is stated separately.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Check, Section
from devstack.armsim.launcher import admin_call, start_armsim
from devstack.procs import free_port
from devstack.stack import StaticToken
from devstack.tls import ensure_certificate
from shared.adapters.gallery_inventory import arm_lifecycle_adapters
from shared.core.settings import SettingName, Settings
from shared.lifecycle.plan import LifecyclePolicy
from shared.lifecycle.service import DeletePacer, LifecycleService

logger = logging.getLogger(__name__)

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000be"
RESOURCE_GROUP = "rg-bench"
GALLERY = "benchgallery"
LOCATION = "eastus"
DEFINITIONS = 1_000
VERSIONS_PER_DEFINITION = 10
VIRTUAL_MACHINES = 250
SCALE_SETS = 50
PAGE_SIZE = 100  # the simulator's default page size for every list
MAX_SCAN_SECONDS = 60.0
#: ListGalleryImageVersion, as the simulator assumes it: 600 per 3 minutes, 3,000 per 30 minutes.
ASSUMED_LIST_LIMIT_3MIN = 600
PROVIDER = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers"
GALLERY_ID = f"{PROVIDER}/Microsoft.Compute/galleries/{GALLERY}"


class _NoAudit:
    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None:
        del run_id, document


def _resources() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    resources: list[dict[str, Any]] = [{"id": GALLERY_ID, "location": LOCATION, "properties": {}}]
    for d in range(DEFINITIONS):
        image = f"app{d:04d}"
        resources.append(
            {
                "id": f"{GALLERY_ID}/images/{image}",
                "location": LOCATION,
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "bench", "offer": image, "sku": "base"},
                },
            }
        )
        for v in range(VERSIONS_PER_DEFINITION):
            eol = now + timedelta(days=(v - 3) * 30)  # 1.0.0-1.0.3 are past end of life
            resources.append(
                {
                    "id": f"{GALLERY_ID}/images/{image}/versions/1.0.{v}",
                    "location": LOCATION,
                    "properties": {
                        "publishingProfile": {
                            "targetRegions": [{"name": LOCATION}],
                            "endOfLifeDate": eol.isoformat(),
                            "publishedDate": (now - timedelta(days=300 - v)).isoformat(),
                        },
                        "storageProfile": {"osDiskImage": {"source": {"id": f"{PROVIDER}/x"}}},
                    },
                }
            )
    for n in range(VIRTUAL_MACHINES):
        resources.append(
            {
                "id": f"{PROVIDER}/Microsoft.Compute/virtualMachines/vm{n:04d}",
                "location": LOCATION,
                "properties": {
                    "storageProfile": {
                        "imageReference": {"id": f"{GALLERY_ID}/images/app{n:04d}/versions/1.0.0"}
                    }
                },
            }
        )
    for n in range(SCALE_SETS):
        resources.append(
            {
                "id": f"{PROVIDER}/Microsoft.Compute/virtualMachineScaleSets/ss{n:03d}",
                "location": LOCATION,
                "properties": {
                    "virtualMachineProfile": {
                        "storageProfile": {
                            "imageReference": {"id": f"{GALLERY_ID}/images/app{n:04d}"}
                        }
                    }
                },
            }
        )
    return resources


def expected_calls(
    definitions: int, versions: int, vms: int, scale_sets: int, page: int = PAGE_SIZE
) -> int:
    """The scan's ARM requests: 1 gallery GET, definition pages, one version list (its pages)
    per definition, then the VM and scale-set pages of the subscription (at least one each)."""
    return (
        1
        + max(1, math.ceil(definitions / page))
        + definitions * max(1, math.ceil(versions / page))
        + max(1, math.ceil(vms / page))
        + max(1, math.ceil(scale_sets / page))
    )


def run(workdir: Path) -> Section:
    """Seed the simulator, scan once, and report calls and time."""
    section = Section(
        title="Lifecycle scan (1,000 definitions x 10 versions)",
        description=(
            "One dry-run lifecycle plan over a gallery of 1,000 definitions with 10 versions each "
            f"(10,000 versions), plus {VIRTUAL_MACHINES} VMs and {SCALE_SETS} scale sets for the "
            "in-use guard, on the ARM simulator through azure-mgmt-compute. ARM calls are the "
            "HTTP requests sent (a pipeline policy), cross-checked with the simulator's count. "
            f"Lists page by {PAGE_SIZE}."
        ),
        columns=["Step", "ARM calls", "Wall time", "Detail"],
    )
    cert, key = ensure_certificate(workdir / "tls")
    port = free_port()
    process = start_armsim(
        port, workdir / "armsim", workdir / "armsim.log", cert=cert, key=key, speed=1000
    )
    try:
        resources = _resources()
        started = time.perf_counter()
        admin_call(port, "POST", "/admin/seed", {"resources": resources}, timeout=300)
        seed_seconds = time.perf_counter() - started
        section.rows.append(
            ["seed via /admin/seed", "0", f"{seed_seconds:.1f} s", f"{len(resources)} resources"]
        )
        # lift the one assumed bucket the scan would exhaust (see the module docstring)
        admin_call(
            port,
            "POST",
            "/admin/faults",
            {"throttle": {"ListGalleryImageVersion": {"limit": 100_000, "windowSeconds": 180}}},
        )
        token = admin_call(port, "POST", "/admin/token", {})["access_token"]
        settings = Settings.from_env(
            {
                SettingName.ARM_ENDPOINT: f"https://127.0.0.1:{port}",
                SettingName.ARM_CA_BUNDLE: str(cert),
            }
        )
        credential = StaticToken(token)
        inventory, writer, counter = arm_lifecycle_adapters(settings, lambda: credential)
        service = LifecycleService(
            inventory=inventory,
            writer=writer,
            audit=_NoAudit(),
            policy=LifecyclePolicy(min_keep_per_definition=3, dry_run=True),
            target_patterns=(f"{SUBSCRIPTION}/{RESOURCE_GROUP}/{GALLERY}",),
            pacer=DeletePacer(50),
        )
        sim_before = int(admin_call(port, "GET", "/admin/stats")["armCallsTotal"])
        started = time.perf_counter()
        snapshot = service.plan()
        scan_seconds = time.perf_counter() - started
        sim_calls = int(admin_call(port, "GET", "/admin/stats")["armCallsTotal"]) - sim_before
        calls = counter.snapshot()
        total = counter.total
        versions = sum(q.versions for q in snapshot.plan.quota)
        plan = snapshot.plan
        formula = expected_calls(DEFINITIONS, VERSIONS_PER_DEFINITION, VIRTUAL_MACHINES, SCALE_SETS)
        for kind, count in calls.items():
            section.rows.append([kind, str(count), "", ""])
        section.rows.append(
            [
                "**whole scan + plan**",
                f"**{total}**",
                f"**{scan_seconds:.1f} s**",
                f"{versions} versions; {len(plan.actions())} actions, "
                f"{len(plan.entries) - len(plan.actions())} held back; "
                f"{len(snapshot.in_use)} versions in use",
            ]
        )
        section.checks += [
            Check(
                f"ARM calls = 1 + ceil(1000/{PAGE_SIZE}) + 1000 x ceil(10/{PAGE_SIZE}) + VM pages "
                f"+ scale-set pages = {formula}",
                f"{total} (simulator counted {sim_calls})",
                total == formula == sim_calls,
            ),
            Check(
                "no GET per version", str(calls.get("GET versions", 0)), "GET versions" not in calls
            ),
            Check(
                f"scan of 10,000 versions < {MAX_SCAN_SECONDS:.0f} s",
                f"{scan_seconds:.1f} s",
                scan_seconds < MAX_SCAN_SECONDS,
            ),
        ]
        bound = (DEFINITIONS - ASSUMED_LIST_LIMIT_3MIN) * 180 / ASSUMED_LIST_LIMIT_3MIN
        section.notes += [
            f"A GET per version instead would add {DEFINITIONS * VERSIONS_PER_DEFINITION:,} "
            "calls (and use the GetGalleryImageVersion bucket of 2,000 per 3 minutes five times).",
            "Per action, applying costs 2 more calls: a GET that re-reads the version (a hold "
            "tag set after planning wins) and the PATCH or DELETE (polling=False).",
            f"Throttle-bound time: with ListGalleryImageVersion at {ASSUMED_LIST_LIMIT_3MIN} per "
            f"3 minutes (assumed), the last {DEFINITIONS - ASSUMED_LIST_LIMIT_3MIN} version "
            f"lists wait about {bound:.0f} s for tokens (the SDK retries 429s after Retry-After).",
            "The simulator adds no network latency: at 100-200 ms per ARM call (not measured "
            f"here) the {total} sequential calls alone take {total * 0.1 / 60:.1f}-"
            f"{total * 0.2 / 60:.1f} min, plus the throttle wait: inside host.json's "
            "10-minute functionTimeout.",
            f"Seeding {len(resources):,} resources through /admin/seed took {seed_seconds:.1f} s.",
        ]
    finally:
        process.stop()
    return section
