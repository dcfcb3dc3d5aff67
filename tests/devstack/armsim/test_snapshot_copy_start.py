"""A CopyStart snapshot is Pending, with a rising completionPercent, until its copy ends."""

from __future__ import annotations

from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from devstack.armsim.disk_bodies import copy_start_seconds
from tests.devstack.armsim.conftest import LOCATION, RESOURCE_GROUP, ArmSim, seed_snapshot

LRO_TIMEOUT = 20
#: Big enough that the copy cannot finish on its own during the test (at speed 1000: minutes).
SIZE_GB = 16384


def _put(
    compute: ComputeManagementClient,
    name: str,
    source_id: str,
    *,
    create_option: str = "CopyStart",
    tags: dict[str, str] | None = None,
) -> m.Snapshot:
    return compute.snapshots.begin_create_or_update(
        RESOURCE_GROUP,
        name,
        m.Snapshot(
            location=LOCATION,
            tags=tags,
            properties=m.SnapshotProperties(
                incremental=create_option == "CopyStart" or None,
                creation_data=m.CreationData(
                    create_option=create_option, source_resource_id=source_id
                ),
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)


def _progress(snapshot: m.Snapshot) -> tuple[str | None, float]:
    properties = snapshot.properties
    assert properties is not None
    state = properties.snapshot_access_state
    text = str(getattr(state, "value", state)) if state is not None else None
    return text, float(properties.completion_percent or 0)


def test_copy_start_snapshot_is_pending_until_the_copy_completes(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    source = seed_snapshot(fresh, "source", size_gb=SIZE_GB, incremental=True)
    state, percent = _progress(_put(compute, "copy", source))
    assert state == "Pending"
    assert percent < 100

    fresh.admin("POST", "/admin/clock", {"advanceSeconds": copy_start_seconds(SIZE_GB) / 2})
    state, percent = _progress(compute.snapshots.get(RESOURCE_GROUP, "copy"))
    assert state == "Pending"
    assert 50 <= percent < 60

    _put(compute, "copy", source, tags={"team": "platform"})  # an update does not restart it
    assert _progress(compute.snapshots.get(RESOURCE_GROUP, "copy"))[1] >= 50

    fresh.admin("POST", "/admin/clock", {"advanceSeconds": copy_start_seconds(SIZE_GB)})
    assert _progress(compute.snapshots.get(RESOURCE_GROUP, "copy")) == ("Available", 100.0)
    listed = {s.name: s for s in compute.snapshots.list_by_resource_group(RESOURCE_GROUP)}
    assert _progress(listed["copy"]) == ("Available", 100.0)


def test_other_snapshots_are_available_at_once_without_a_completion_percent(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    source = seed_snapshot(fresh, "plain-source", size_gb=8)
    copied = _put(compute, "plain-copy", source, create_option="Copy")
    assert copied.properties is not None
    assert copied.properties.snapshot_access_state == "Available"
    assert copied.properties.completion_percent is None  # only CopyStart copies report one
