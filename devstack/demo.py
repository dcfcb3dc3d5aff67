"""``make demo``: the whole pipeline end to end on the local stack, then the final status.

1. Start the local stack (Azurite, Service Bus emulator, ARM simulator, Functions host running
   ``function_app.py``) on free ports, with its files in ``.devstack/demo/`` (fresh each run).
2. Seed a gallery and a definition in the ARM simulator.
3. Upload a generated fixed VHD as a page blob into the ``vhds`` container, then its manifest.
   Event Grid -> ``vhd_uploaded`` -> build request -> ``build_worker`` -> PUT; ``build_tracker``
   follows replication. Show progress until the version succeeded in every target region.
4. Take a snapshot (a real SDK PUT on the simulator) tagged ``gallery-publish=...``:
   ResourceWriteSuccess -> ``snapshot_created`` -> the same path. Show progress again.
5. Print the final status and stop the stack (``--keep`` leaves it running). Exit 0, or 1 with
   the reason (and the host log's tail) when something did not work.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from azure.storage.blob import ContentSettings

from devstack.control import DevstackError
from devstack.stack import (
    DEV_DEFINITION,
    DEV_LOCATION,
    GALLERY,
    SNAPSHOT_RESOURCE_GROUP,
    LocalStack,
    dev_resources,
    snapshot_body,
    start_local_stack,
)
from shared.cli.status import ApiUnavailable, fetch, render_build, render_list, wait_for_build

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
DEFINITION: Final = DEV_DEFINITION
LOCATION: Final = DEV_LOCATION
VHD_SIZE: Final = 64 * 1024 * 1024
#: Faster than the defaults so the demo takes seconds: the tracker and the intake re-check run
#: every second, and replication in the simulator runs at 50x.
DEMO_SETTINGS: Final = {
    "GALLERY_TRACKER_SCHEDULE": "*/1 * * * * *",
    "GALLERY_INTAKE_RECHECK_SCHEDULE": "*/1 * * * * *",
    "GALLERY_UPLOAD_SETTLE_SECONDS": "2",
}
ARM_SPEED: Final = 50.0
#: Seconds each component of the stack may take to start.
START_TIMEOUT: Final = 60.0


class DemoFailed(Exception):
    pass


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


class Demo:
    def __init__(self, stack: LocalStack, timeout: float) -> None:
        self.stack = stack
        self.timeout = timeout
        self.api = stack.host_url

    def seed(self) -> None:
        say(f"seeding gallery {GALLERY} and definition {DEFINITION} in the ARM simulator")
        self.stack.seed(*dev_resources())

    def upload_vhd(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = f"ubuntu/demo-{stamp}.vhd"
        say(f"uploading a {VHD_SIZE // 2**20} MiB fixed VHD as a page blob: vhds/{name}")
        url = self.stack.upload_vhd("vhds", name, VHD_SIZE)
        manifest = {
            "publishing": {
                "targetRegions": [
                    {"name": "eastus", "replicaCount": 1},
                    {"name": "westeurope", "replicaCount": 2, "storageAccountType": "Standard_ZRS"},
                ],
                "endOfLifeAfterDays": 180,
            },
            "tags": {"demo": "vhd"},
        }
        say(f"writing its manifest last: vhds/{name}.json")
        self.stack.blob_service().get_blob_client("vhds", f"{name}.json").upload_blob(
            json.dumps(manifest, indent=2),
            overwrite=True,
            content_settings=ContentSettings(content_type="application/json"),
            timeout=10,
        )
        return url

    def take_snapshot(self) -> str:
        name = f"demo-snapshot-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        say(f"taking snapshot {name} tagged gallery-publish={GALLERY}/{DEFINITION}")
        body = snapshot_body(
            size_gib=8, location=LOCATION, tags={"gallery-publish": f"{GALLERY}/{DEFINITION}"}
        )
        poller = self.stack.compute(retry_total=2).snapshots.begin_create_or_update(
            SNAPSHOT_RESOURCE_GROUP, name, io.BytesIO(json.dumps(body).encode()), polling_interval=0
        )
        snapshot = poller.result(timeout=60)
        return str(snapshot.id)

    def find_build(self, source_matches: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiUnavailable):
                for build in fetch(self.api, "builds?limit=200")["builds"]:
                    if source_matches(build["source"]):
                        return str(build["buildId"])
            time.sleep(0.3)
        raise DemoFailed("no build request arrived for the upload in time")

    def follow(self, build_id: str) -> dict[str, Any]:
        print(f"    build {build_id}")

        def show(build: dict[str, Any]) -> None:
            regions = ", ".join(f"{r['region']} {r['progress']}%" for r in build["regions"])
            version = build["target"].get("version") or "-"
            print(f"    {build['state']:<11} version {version:<8} {regions}", flush=True)

        build = wait_for_build(
            lambda: fetch(self.api, f"builds/{build_id}"),
            timeout=self.timeout,
            interval=0.3,
            on_change=show,
        )
        if build is None:
            raise DemoFailed(f"build {build_id} did not finish within {self.timeout:.0f}s")
        if build["state"] != "succeeded":
            raise DemoFailed(f"build {build_id} failed: {build.get('error')}")
        return build


def run(root: Path, *, keep: bool, timeout: float) -> int:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    say("starting the local stack")
    stack = start_local_stack(
        root, settings=DEMO_SETTINGS, arm_speed=ARM_SPEED, timeout=START_TIMEOUT
    )
    demo = Demo(stack, timeout)
    began = time.monotonic()
    try:
        demo.seed()
        url = demo.upload_vhd()
        say("waiting for the pipeline: intake -> build worker -> replication")
        vhd_build = demo.follow(demo.find_build(lambda source: source == url.lower()))
        snapshot_id = demo.take_snapshot()
        say("waiting for the pipeline: snapshot intake -> build worker -> replication")
        snapshot_build = demo.follow(demo.find_build(lambda source: source == snapshot_id.lower()))
        say(f"done in {time.monotonic() - began:.1f}s; final status")
        print(render_list([vhd_build, snapshot_build]))
        for build in (vhd_build, snapshot_build):
            print()
            print(render_build(build))
    except (DemoFailed, ApiUnavailable, OSError) as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        host = stack.processes.get("host")
        if host is not None:
            print(host.log_tail(40), file=sys.stderr)
        keep = False
        return 1
    finally:
        if keep:
            print(f"\nthe stack keeps running (logs in {stack.layout.run_dir}); API {demo.api}")
            for name, process in stack.processes.items():
                print(f"  {name:<11} pid {process.pid}")
        else:
            stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per wait")
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".devstack" / "demo")
    args = parser.parse_args(argv)
    try:
        return run(args.dir.resolve(), keep=args.keep, timeout=args.timeout)
    except DevstackError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
