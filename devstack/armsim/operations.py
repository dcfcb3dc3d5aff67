"""Long-running operations: stored start marks, simulated durations, state derived on read.

An operation is a JSON object persisted in the store::

    {"id", "kind": "create"|"update"|"delete", "resourceKey", "resourceId", "location",
     "apiVersion", "family": "gallery"|"disk"|"compute", "partition"?,
     "mark": {"real", "offset"}, "startTime",
     "buildSeconds": float,                 # simulated seconds before replication starts
     "regions": [{"name", "key", "seconds", "existing", "failAfter"?, "failMessage"?}],
     "failure": {"atSeconds", "code", "message"} | None,   # whole-operation failure
     "sourceKeys": [...], "finalized": bool, "status"?, "error"?}

The status is never stored while running: :func:`evaluate` computes it from the clock, so a
restart in the middle of an operation continues exactly where it was.

The *family* says which service answers for the operation, and so where its status is polled
and which monitor headers the accepted request gets (:func:`monitor_headers`): gallery resources
``.../capsOperations/{id}`` (CAPS), disks and snapshots ``.../DiskOperations/{id}?p=...`` (DiskRP,
``Azure-AsyncOperation`` *and* ``Location`` on every write), managed images
``.../operations/{id}?p=...`` (CRP, ``azure-asyncnotification: Enabled``), as the recorded
sessions show (docs/devstack.md, "Disks, snapshots and managed images").
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.armsim.clock import ClockMark, SimClock, azure_timestamp, parse_timestamp
from devstack.armsim.regions import display_name, region_key

JsonObject = dict[str, Any]

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

#: Simulated durations (seconds). A version build: fixed overhead plus a per-GiB cost; each
#: region then replicates in parallel, costing per GiB per replica. Calibrated on the real
#: recordings: 200 GiB, 1 region, 2 replicas -> about 8 minutes; 50 GiB, 1 replica -> 5 minutes.
BUILD_BASE_SECONDS = 240.0
BUILD_SECONDS_PER_GIB = 0.3
REGION_BASE_SECONDS = 30.0
REGION_SECONDS_PER_GIB_REPLICA = 0.4
VERSION_UPDATE_SECONDS = 150.0
VERSION_DELETE_SECONDS = 90.0
QUICK_OPERATION_SECONDS = 1.0
#: Disks and snapshots (recorded: 0.1 s for an empty disk, 2 s for a 4 GiB copy, 0.2 s for a
#: delete) and managed images (recorded: 5 s to create, update or delete).
DISK_WRITE_SECONDS = 2.0
DISK_DELETE_SECONDS = 1.0
IMAGE_OPERATION_SECONDS = 5.0

#: The path segment under ``/providers/Microsoft.Compute/locations/{loc}/`` where each family's
#: operation status is polled.
STATUS_SEGMENTS: dict[str, str] = {
    "gallery": "capsOperations",
    "disk": "DiskOperations",
    "compute": "operations",
}


@dataclass(frozen=True)
class RegionState:
    """Replication state of one target region."""

    region: str
    state: str  # Replicating | Completed | Failed
    progress: int
    details: str


@dataclass(frozen=True)
class OperationState:
    """What an operation looks like right now."""

    status: str
    error: JsonObject | None
    regions: tuple[RegionState, ...]
    end_work: float

    @property
    def terminal(self) -> bool:
        return self.status != IN_PROGRESS


def build_seconds(size_gib: float) -> float:
    return BUILD_BASE_SECONDS + BUILD_SECONDS_PER_GIB * size_gib


def region_seconds(size_gib: float, replicas: int) -> float:
    return REGION_BASE_SECONDS + REGION_SECONDS_PER_GIB_REPLICA * size_gib * max(1, replicas)


def new_operation(
    *,
    kind: str,
    resource_key: str,
    resource_id: str,
    location: str,
    api_version: str,
    clock: SimClock,
    build: float,
    regions: list[JsonObject] | None = None,
    failure: JsonObject | None = None,
    source_keys: list[str] | None = None,
    family: str = "gallery",
) -> JsonObject:
    """A fresh operation starting now (``family``: see :data:`STATUS_SEGMENTS`)."""
    if family not in STATUS_SEGMENTS:
        raise ValueError(f"unknown operation family {family!r}")
    mark = clock.mark()
    operation: JsonObject = {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "resourceKey": resource_key,
        "resourceId": resource_id,
        "location": region_key(location),
        "apiVersion": api_version,
        "family": family,
        "mark": {"real": mark.real, "offset": mark.offset},
        "startTime": azure_timestamp(clock.now()),
        "buildSeconds": build,
        "regions": regions or [],
        "failure": failure,
        "sourceKeys": source_keys or [],
        "finalized": False,
    }
    if family != "gallery":
        # DiskRP and CRP status URLs carry an opaque ``p`` (a GUID) before the api-version.
        operation["partition"] = str(uuid.uuid4())
    return operation


def monitor_headers(
    base_url: str, operation: JsonObject, *, delete: bool, retry_after: int
) -> dict[str, str]:
    """The monitor headers of an accepted long-running request, as each family sends them.

    ``Azure-AsyncOperation`` always; ``Location`` (``monitor=true``) on deletes and on every
    disk or snapshot write; ``Retry-After`` when configured, else ``azure-asyncnotification:
    Enabled`` (CAPS and CRP send it; DiskRP sends neither).
    """
    family = str(operation.get("family", "gallery"))
    subscription = str(operation["resourceId"]).split("/")[2]
    base = (
        f"{base_url}/subscriptions/{subscription}/providers/Microsoft.Compute/locations/"
        f"{operation['location']}/{STATUS_SEGMENTS[family]}/{operation['id']}"
    )
    partition = f"p={operation['partition']}&" if operation.get("partition") else ""
    api = operation["apiVersion"]
    headers = {"Azure-AsyncOperation": f"{base}?{partition}api-version={api}"}
    if delete or family == "disk":
        headers["Location"] = f"{base}?{partition}monitor=true&api-version={api}"
    if retry_after > 0:
        headers["Retry-After"] = str(retry_after)
    elif family != "disk":
        headers["azure-asyncnotification"] = "Enabled"
    return headers


def region_plan(
    name: str,
    seconds: float,
    *,
    existing: bool = False,
    fail_message: str | None = None,
) -> JsonObject:
    plan: JsonObject = {
        "name": display_name(name),
        "key": region_key(name),
        "seconds": seconds,
        "existing": existing,
    }
    if fail_message is not None and not existing:
        plan["failAfter"] = seconds / 2
        plan["failMessage"] = fail_message
    return plan


def work_done(operation: JsonObject, clock: SimClock) -> float:
    mark = operation["mark"]
    return clock.work_since(ClockMark(real=float(mark["real"]), offset=float(mark["offset"])))


def evaluate(operation: JsonObject, clock: SimClock) -> OperationState:
    """The state of ``operation`` now (stable once terminal)."""
    return evaluate_at(operation, work_done(operation, clock))


def evaluate_at(operation: JsonObject, work: float) -> OperationState:
    build = float(operation["buildSeconds"])
    regions: list[JsonObject] = operation["regions"]
    success_at = build + max((float(r["seconds"]) for r in regions if not r["existing"]), default=0)
    fail_at: float | None = None
    error: JsonObject | None = None
    failure = operation.get("failure")
    if failure is not None:
        fail_at = float(failure["atSeconds"])
        error = {"code": failure["code"], "message": failure["message"]}
    for region in regions:
        if "failAfter" in region:
            point = build + float(region["failAfter"])
            if fail_at is None or point < fail_at:
                fail_at = point
                error = {
                    "code": "ReplicationFailed",
                    "message": f"Replication failed in this region due to "
                    f"'{region['failMessage']}'. Region: {region['name']}.",
                }
    if fail_at is not None and fail_at <= success_at:
        end = fail_at
        status = FAILED if work >= fail_at else IN_PROGRESS
    else:
        end = success_at
        status = SUCCEEDED if work >= success_at else IN_PROGRESS
        error = None
    effective = min(work, end)
    states: list[RegionState] = []
    for region in regions:
        states.append(_region_state(region, build, effective, status, failure))
    return OperationState(
        status=status,
        error=error if status == FAILED else None,
        regions=tuple(states),
        end_work=end,
    )


def _region_state(
    region: JsonObject, build: float, work: float, status: str, failure: JsonObject | None
) -> RegionState:
    name = str(region["name"])
    if region["existing"]:
        return RegionState(name, "Completed", 100, "")
    seconds = max(float(region["seconds"]), 1e-9)
    done = work - build
    if "failAfter" in region and done >= float(region["failAfter"]):
        progress = int(100 * float(region["failAfter"]) / seconds)
        return RegionState(name, "Failed", progress, str(region["failMessage"]))
    fraction = min(1.0, max(0.0, done / seconds))
    # A succeeded operation has every region completed (no float rounding leaves one at 99 %).
    if fraction >= 1.0 or status == SUCCEEDED:
        return RegionState(name, "Completed", 100, "")
    progress = int(100 * fraction)
    if status == FAILED:
        details = str(failure["message"]) if failure else "Replication stopped."
        return RegionState(name, "Failed", progress, details)
    return RegionState(name, "Replicating", progress, "")


def status_body(
    operation: JsonObject, state: OperationState, output: JsonObject | None = None
) -> JsonObject:
    """The operation poll body, as the real services return it.

    ``output`` (DiskRP writes only) is the resource as it reads once the write succeeded: the
    status body then carries it as ``properties.output``, between ``status`` and ``name``.
    """
    body: JsonObject = {"startTime": operation["startTime"]}
    if state.terminal:
        start = parse_timestamp(operation["startTime"]) or dt.datetime.now(dt.UTC)
        body["endTime"] = azure_timestamp(start + dt.timedelta(seconds=state.end_work))
    body["status"] = state.status
    if output is not None and state.status == SUCCEEDED:
        body["properties"] = {"output": output}
    body["name"] = operation["id"]
    if state.error is not None:
        body["error"] = state.error
    return body


def replication_status(state: OperationState | None, regions: list[str]) -> JsonObject:
    """``properties.replicationStatus`` for ``$expand=ReplicationStatus``."""
    if state is None:
        summary = [
            {"region": display_name(r), "state": "Completed", "details": "", "progress": 100}
            for r in regions
        ]
        return {"aggregatedState": "Completed", "summary": summary}
    summary = [
        {"region": r.region, "state": r.state, "details": r.details, "progress": r.progress}
        for r in state.regions
    ]
    if any(r.state == "Failed" for r in state.regions) or state.status == FAILED:
        aggregated = "Failed"
    elif all(r.state == "Completed" for r in state.regions) and state.status == SUCCEEDED:
        aggregated = "Completed"
    else:
        aggregated = "InProgress"
    return {"aggregatedState": aggregated, "summary": summary}
