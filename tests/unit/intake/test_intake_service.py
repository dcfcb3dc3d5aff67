"""IntakeService with fakes of its ports: readiness, duplicates, rejects, the re-check timer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.vhdgen import dynamic_footer
from shared.contract.parse import parse_build_request
from shared.core.errors import TransientError
from shared.core.messaging import OutgoingMessage
from shared.core.resource_ids import ResourceId, parse_resource_id
from shared.core.settings import Settings
from shared.intake.events import BlobCreated, SnapshotWritten
from shared.intake.ids import snapshot_request_id, vhd_request_id
from shared.intake.outcomes import IntakeOutcome
from shared.intake.ports import BlobState, SmallBlob, SnapshotState
from shared.intake.service import IntakeService
from shared.vhd.footer import MIB, build_fixed_footer
from shared.vhd.preflight import VhdReport, inspect_vhd
from tests.unit.store_fakes import Clock, InMemoryDocumentStore
from tests.vhd_fixtures import TailOnlyReader

SUB = "00000000-0000-0000-0000-000000000000"
ACCOUNT_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-devstack/providers/Microsoft.Storage/"
    "storageAccounts/devstoreaccount1"
)
BASE = "http://127.0.0.1:10000/devstoreaccount1/vhds"
VHD = f"{BASE}/ubuntu/os.vhd"
VIRTUAL_SIZE = 30 * MIB
SNAPSHOT_ID = parse_resource_id(
    f"/subscriptions/{SUB}/resourceGroups/rg-builds/providers/Microsoft.Compute/snapshots/os1"
)
ROUTES: list[dict[str, Any]] = [
    {
        "container": "vhds",
        "prefix": "ubuntu/",
        "storageAccountId": ACCOUNT_ID,
        "target": {
            "subscriptionId": SUB,
            "resourceGroup": "rg-images",
            "gallery": "devgallery",
            "definition": "ubuntu-24.04",
            "versionPolicy": "nextPatch",
        },
        "publishing": {"targetRegions": [{"name": "eastus"}]},
    }
]
SETTLE = 30


@dataclass
class FakeBlob:
    blob_type: str = "PageBlob"
    size: int = VIRTUAL_SIZE + 512
    etag: str = "0x1"
    metadata: dict[str, str] = field(default_factory=dict)
    tail: bytes = bytes(512)
    content: bytes = b""
    copy_status: str | None = None


class FakeBlobs:
    def __init__(self) -> None:
        self.blobs: dict[str, FakeBlob] = {}
        self.footer_reads = 0
        self.fail_with: Exception | None = None

    def state(self, url: str) -> BlobState | None:
        if self.fail_with is not None:
            raise self.fail_with
        found = self.blobs.get(url)
        if found is None:
            return None
        return BlobState(
            url, found.blob_type, found.size, found.etag, dict(found.metadata), found.copy_status
        )

    def read_small(self, url: str, *, max_bytes: int) -> SmallBlob | None:
        found = self.blobs.get(url)
        return None if found is None else SmallBlob(found.content[: max_bytes + 1], found.etag)

    def inspect_vhd(self, url: str) -> VhdReport:
        self.footer_reads += 1
        found = self.blobs[url]
        return inspect_vhd(TailOnlyReader(found.size, found.tail))

    # helpers
    def create_page_blob(self, url: str = VHD, **kwargs: Any) -> FakeBlob:
        self.blobs[url] = FakeBlob(**kwargs)
        return self.blobs[url]

    def finish_upload(self, url: str = VHD, etag: str = "0x2") -> None:
        self.blobs[url] = replace(self.blobs[url], tail=build_fixed_footer(VIRTUAL_SIZE), etag=etag)

    def write_manifest(self, manifest: dict[str, Any], url: str = VHD, etag: str = "0xm") -> None:
        self.blobs[url + ".json"] = FakeBlob(
            blob_type="BlockBlob", content=json.dumps(manifest).encode(), etag=etag
        )


class FakeSnapshots:
    def __init__(self) -> None:
        self.snapshots: dict[str, SnapshotState] = {}

    def get(self, snapshot_id: ResourceId) -> SnapshotState | None:
        return self.snapshots.get(snapshot_id.key)

    def put(self, **kwargs: Any) -> SnapshotState:
        state = SnapshotState(
            **{
                "id": SNAPSHOT_ID,
                "location": "eastus",
                "unique_id": "uid-1",
                "access_state": "Available",
                "completion_percent": 100.0,
                "disk_size_bytes": 10 * 1024**3,
                **kwargs,
            }
        )
        self.snapshots[state.id.key] = state
        return state


class Bus:
    def __init__(self) -> None:
        self.sent: list[tuple[str, OutgoingMessage]] = []
        self.rejected: list[tuple[OutgoingMessage, str, str]] = []

    def send(self, entity: str, message: OutgoingMessage) -> None:
        self.sent.append((entity, message))

    def reject(self, message: OutgoingMessage, *, reason: str, description: str) -> None:
        self.rejected.append((message, reason, description))

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(message.body) for _, message in self.sent]


@dataclass
class World:
    service: IntakeService
    blobs: FakeBlobs
    snapshots: FakeSnapshots
    bus: Bus
    clock: Clock
    pending: InMemoryDocumentStore
    done: InMemoryDocumentStore
    settings: Settings


def make_world(**environ: str) -> World:
    settings = Settings.from_env(
        {
            "GALLERY_ALLOWED_TARGET_GALLERIES": f"{SUB}/rg-images/devgallery",
            "GALLERY_VHD_STORAGE_ENDPOINTS": "http://127.0.0.1:10000/{account}",
            "GALLERY_VHD_ROUTES": json.dumps(ROUTES),
            "GALLERY_UPLOAD_SETTLE_SECONDS": str(SETTLE),
            "GALLERY_INTAKE_ABANDON_SECONDS": "3600",
            **environ,
        }
    )
    blobs, snapshots, bus, clock = (
        FakeBlobs(),
        FakeSnapshots(),
        Bus(),
        Clock(datetime(2026, 11, 16, 12, 0, tzinfo=UTC)),
    )
    pending, done = InMemoryDocumentStore(), InMemoryDocumentStore()
    service = IntakeService(
        settings,
        blobs=blobs,
        snapshots=snapshots,
        pending=pending,
        done=done,
        sender=bus,
        rejects=bus,
        clock=clock,
    )
    return World(service, blobs, snapshots, bus, clock, pending, done, settings)


def created(url: str = VHD, blob_type: str = "PageBlob") -> BlobCreated:
    return BlobCreated(url=url, blob_type=blob_type, api="PutBlob")


@pytest.fixture
def world() -> World:
    return make_world()


# ------------------------------------------------------------------ uploads: readiness


def test_page_blob_is_queued_only_after_its_footer_is_written_and_it_settled(world: World) -> None:
    world.blobs.create_page_blob()
    assert world.service.on_blob_created(created()).outcome == IntakeOutcome.PENDING
    world.clock.advance(SETTLE + 1)
    waiting = world.service.recheck()
    assert [r.outcome for r in waiting] == [IntakeOutcome.PENDING]
    assert "footer" in waiting[0].detail
    world.blobs.finish_upload()  # new ETag: the settle window starts again
    world.clock.advance(SETTLE + 1)
    assert [r.outcome for r in world.service.recheck()] == [IntakeOutcome.PENDING]
    assert world.bus.sent == []
    world.clock.advance(SETTLE)
    (result,) = world.service.recheck()
    assert result.outcome == IntakeOutcome.QUEUED
    (entity, message) = world.bus.sent[0]
    assert entity == "image-builds"
    assert message.message_id == vhd_request_id(VHD, "0x2") == result.request_id
    body = json.loads(message.body)
    assert body["source"] == {"vhd": {"uri": VHD, "storageAccountId": ACCOUNT_ID}}
    assert body["target"]["definition"] == "ubuntu-24.04"
    parse_build_request(body, world.settings, now=world.clock.now)  # what the worker will accept
    assert list(world.pending.list_keys()) == []
    assert world.service.recheck() == []


def test_manifest_queues_at_once_with_its_overrides(world: World) -> None:
    world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest(
        {
            "target": {"definition": "ubuntu-24.04-gen2", "version": "1.0.0"},
            "publishing": {"targetRegions": [{"name": "eastus"}, {"name": "westus"}]},
            "tags": {"build": "42"},
        }
    )
    result = world.service.on_blob_created(created(VHD + ".json", "BlockBlob"))
    assert result.outcome == IntakeOutcome.QUEUED
    (body,) = world.bus.bodies()
    assert body["target"]["definition"] == "ubuntu-24.04-gen2"
    assert body["target"]["version"] == "1.0.0" and "versionPolicy" not in body["target"]
    assert [r["name"] for r in body["publishing"]["targetRegions"]] == ["eastus", "westus"]
    assert body["tags"] == {"build": "42"}


def test_metadata_ready_marker_commits_without_waiting(world: World) -> None:
    blob = world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
    assert world.service.on_blob_created(created()).outcome == IntakeOutcome.PENDING
    blob.metadata.update({"gallery_ready": "true", "gallery_definition": "from-metadata"})
    (result,) = world.service.recheck()
    assert result.outcome == IntakeOutcome.QUEUED
    assert world.bus.bodies()[0]["target"]["definition"] == "from-metadata"


def test_manifest_before_the_footer_falls_back_to_the_settle_rule(world: World) -> None:
    world.blobs.create_page_blob()  # nothing written yet
    world.blobs.write_manifest({"tags": {"early": "true"}})
    assert world.service.on_blob_created(created()).outcome == IntakeOutcome.PENDING
    world.blobs.finish_upload()
    assert world.service.recheck()[0].outcome == IntakeOutcome.PENDING  # just written: settle
    world.clock.advance(SETTLE)
    assert world.service.recheck()[0].outcome == IntakeOutcome.QUEUED
    assert world.bus.bodies()[0]["tags"] == {"early": "true"}


def test_a_running_copy_is_waited_for(world: World) -> None:
    world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE), copy_status="pending")
    world.blobs.write_manifest({})
    assert world.service.on_blob_created(created()).outcome == IntakeOutcome.PENDING
    world.blobs.blobs[VHD].copy_status = "success"
    assert world.service.recheck()[0].outcome == IntakeOutcome.QUEUED


# ------------------------------------------------------------------ uploads: rejects


def test_block_blob_vhd_is_rejected_once_with_its_reason(world: World) -> None:
    world.blobs.create_page_blob(blob_type="BlockBlob", tail=build_fixed_footer(VIRTUAL_SIZE))
    result = world.service.on_blob_created(created(blob_type="BlockBlob"))
    assert result.outcome == IntakeOutcome.REJECTED
    assert result.reason == "VhdNotPageBlob"
    (message, reason, description) = world.bus.rejected[0]
    assert reason == "VhdNotPageBlob"
    assert "page blob" in description and VHD in description
    assert json.loads(message.body)["source"]["vhd"]["uri"] == VHD
    assert world.bus.sent == []
    again = world.service.on_blob_created(created(blob_type="BlockBlob"))
    assert again.outcome == IntakeOutcome.DUPLICATE
    assert len(world.bus.rejected) == 1


def test_dynamic_vhd_is_rejected_with_the_footer_problem(world: World) -> None:
    world.blobs.create_page_blob(tail=dynamic_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({})
    result = world.service.on_blob_created(created())
    assert result.outcome == IntakeOutcome.REJECTED
    assert result.reason == "VhdInvalid"
    assert "dynamic" in world.bus.rejected[0][2]


def test_invalid_manifest_is_rejected_and_a_fixed_one_is_taken(world: World) -> None:
    world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({"publishing": {"replicaCount": 0}}, etag="0xm1")
    first = world.service.on_blob_created(created(VHD + ".json", "BlockBlob"))
    assert first.outcome == IntakeOutcome.REJECTED
    assert first.reason == "ValidationFailed"
    assert "publishing.replicaCount" in world.bus.rejected[0][2]
    world.blobs.write_manifest({"publishing": {"replicaCount": 2}}, etag="0xm2")
    second = world.service.on_blob_created(created(VHD + ".json", "BlockBlob"))
    assert second.outcome == IntakeOutcome.QUEUED
    assert world.bus.bodies()[0]["publishing"]["replicaCount"] == 2


def test_route_problems_are_rejected_naming_the_field() -> None:
    routes = [dict(ROUTES[0], target={**ROUTES[0]["target"], "gallery": "not-allowed"})]
    world = make_world(GALLERY_VHD_ROUTES=json.dumps(routes))
    world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({})
    result = world.service.on_blob_created(created())
    assert result.outcome == IntakeOutcome.REJECTED
    assert "target.gallery" in result.detail


def test_upload_never_completed_is_rejected_after_the_abandon_time(world: World) -> None:
    world.blobs.create_page_blob()
    world.service.on_blob_created(created())
    world.clock.advance(3600)
    (result,) = world.service.recheck()
    assert result.outcome == IntakeOutcome.REJECTED
    assert result.reason == "UploadIncomplete"
    assert list(world.pending.list_keys()) == []


def test_uploads_without_a_route_or_outside_the_endpoints_are_ignored(world: World) -> None:
    world.blobs.create_page_blob(f"{BASE}/windows/os.vhd")
    assert world.service.on_blob_created(created(f"{BASE}/windows/os.vhd")).outcome == (
        IntakeOutcome.IGNORED
    )
    outside = "https://evil.example.com/vhds/ubuntu/os.vhd"
    assert world.service.on_blob_created(created(outside)).outcome == IntakeOutcome.IGNORED
    assert world.bus.sent == []
    assert world.bus.rejected == []


# ------------------------------------------------------------------ uploads: duplicates


def test_duplicate_events_queue_one_request_and_an_overwrite_queues_another(world: World) -> None:
    world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({})
    outcomes = [world.service.on_blob_created(created()).outcome for _ in range(3)]
    outcomes.append(world.service.on_blob_created(created(VHD + ".json", "BlockBlob")).outcome)
    assert outcomes == [IntakeOutcome.QUEUED] + [IntakeOutcome.DUPLICATE] * 3
    assert len(world.bus.sent) == 1
    world.blobs.finish_upload(etag="0x9")  # the same name uploaded again
    assert world.service.on_blob_created(created()).outcome == IntakeOutcome.QUEUED
    ids = [message.message_id for _, message in world.bus.sent]
    assert ids == [vhd_request_id(VHD, "0x1"), vhd_request_id(VHD, "0x9")]


def test_the_same_request_twice_has_the_same_message_id() -> None:
    """Two instances racing (no shared records) still send the same MessageId."""
    ids = []
    for _ in range(2):
        world = make_world()
        world.blobs.create_page_blob(tail=build_fixed_footer(VIRTUAL_SIZE))
        world.blobs.write_manifest({})
        world.service.on_blob_created(created())
        ids.append(world.bus.sent[0][1].message_id)
    assert ids[0] == ids[1]


def test_a_transient_storage_error_propagates_and_nothing_is_recorded(world: World) -> None:
    world.blobs.fail_with = TransientError("storage busy")
    with pytest.raises(TransientError):
        world.service.on_blob_created(created())
    assert list(world.done.list_keys()) == []


# ------------------------------------------------------------------ snapshots


def snapshot_event() -> SnapshotWritten:
    return SnapshotWritten(SNAPSHOT_ID, "e1")


def test_tagged_snapshot_queues_one_request_and_later_writes_nothing(world: World) -> None:
    world.snapshots.put(tags={"gallery-publish": "devgallery/ubuntu-24.04:nextMinor"})
    result = world.service.on_snapshot_written(snapshot_event())
    assert result.outcome == IntakeOutcome.QUEUED
    (body,) = world.bus.bodies()
    assert body["source"] == {"snapshot": {"id": str(SNAPSHOT_ID)}}
    assert body["target"] == {
        "subscriptionId": SUB,
        "resourceGroup": "rg-images",
        "gallery": "devgallery",
        "definition": "ubuntu-24.04",
        "versionPolicy": "nextMinor",
    }
    assert body["publishing"]["targetRegions"] == [{"name": "eastus"}]
    world.snapshots.put(tags={"gallery-publish": "devgallery/other", "team": "x"})
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.DUPLICATE
    assert len(world.bus.sent) == 1
    world.snapshots.put(unique_id="uid-2", tags={"gallery-publish": "devgallery/ubuntu-24.04"})
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.QUEUED


def test_untagged_snapshot_queues_nothing(world: World) -> None:
    world.snapshots.put(tags={"team": "platform"})
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.IGNORED
    assert world.bus.sent == []
    assert world.bus.rejected == []
    assert list(world.done.list_keys()) == []


def test_snapshot_is_queued_when_its_copy_completes(world: World) -> None:
    tags = {"Gallery-Publish": "devgallery/ubuntu-24.04"}  # tag names are case-insensitive
    world.snapshots.put(tags=tags, access_state="Pending", completion_percent=10.0)
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.PENDING
    assert [r.outcome for r in world.service.recheck()] == [IntakeOutcome.PENDING]
    world.snapshots.put(tags=tags)
    assert [r.outcome for r in world.service.recheck()] == [IntakeOutcome.QUEUED]
    assert len(world.bus.sent) == 1


def test_snapshot_still_being_written_waits_for_the_recheck_and_is_queued_once(
    world: World,
) -> None:
    """The write event comes when the PUT is accepted: the snapshot still reads Updating, with
    none of the server's fields yet (no uniqueId, no size). The re-check queues it once."""
    tags = {"gallery-publish": "devgallery/ubuntu-24.04"}
    world.snapshots.put(
        tags=tags,
        provisioning_state="Updating",
        unique_id=None,
        access_state=None,
        completion_percent=None,
        disk_size_bytes=None,
    )
    pending = world.service.on_snapshot_written(snapshot_event())
    assert pending.outcome == IntakeOutcome.PENDING
    assert "provisioningState Updating" in (pending.detail or "")
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.PENDING
    assert [r.outcome for r in world.service.recheck()] == [IntakeOutcome.PENDING]
    assert world.bus.sent == []
    world.snapshots.put(tags=tags, provisioning_state="Succeeded")
    assert [r.outcome for r in world.service.recheck()] == [IntakeOutcome.QUEUED]
    assert [r.outcome for r in world.service.recheck()] == []
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.DUPLICATE
    (body,) = world.bus.bodies()
    assert body["requestId"] == snapshot_request_id(SNAPSHOT_ID, "uid-1")  # the final identity
    assert list(world.pending.list_keys()) == []


def test_snapshot_deleted_while_pending_is_forgotten(world: World) -> None:
    world.snapshots.put(tags={"gallery-publish": "devgallery/u"}, access_state="Pending")
    world.service.on_snapshot_written(snapshot_event())
    world.snapshots.snapshots.clear()
    assert [r.outcome for r in world.service.recheck()] == [IntakeOutcome.GONE]
    assert list(world.pending.list_keys()) == []


def test_bad_tag_is_rejected_and_a_corrected_tag_is_taken(world: World) -> None:
    world.snapshots.put(tags={"gallery-publish": "devgallery"})
    result = world.service.on_snapshot_written(snapshot_event())
    assert result.outcome == IntakeOutcome.REJECTED
    assert "tags.gallery-publish" in world.bus.rejected[0][2]
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.DUPLICATE
    world.snapshots.put(tags={"gallery-publish": "devgallery/ubuntu"})
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.QUEUED


def test_snapshot_gallery_outside_the_allow_list_is_rejected(world: World) -> None:
    world.snapshots.put(tags={"gallery-publish": "rg-other/somegallery/ubuntu"})
    result = world.service.on_snapshot_written(snapshot_event())
    assert result.outcome == IntakeOutcome.REJECTED
    assert "target-gallery-allowed" in result.detail


def test_recheck_keeps_going_past_a_failing_record(world: World) -> None:
    world.blobs.create_page_blob()
    world.service.on_blob_created(created())
    world.snapshots.put(tags={"gallery-publish": "devgallery/u"}, access_state="Pending")
    world.service.on_snapshot_written(snapshot_event())
    world.blobs.fail_with = TransientError("storage busy")
    world.snapshots.put(tags={"gallery-publish": "devgallery/u"})
    outcomes = [r.outcome for r in world.service.recheck()]
    assert outcomes == [IntakeOutcome.QUEUED]
    assert len(list(world.pending.list_keys())) == 1  # the upload waits for the next run


def test_the_vhd_and_its_manifest_event_racing_dead_letter_a_bad_upload_once(
    world: World,
) -> None:
    world.blobs.create_page_blob(tail=dynamic_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({})
    original = world.bus.reject
    racing: list[Any] = []

    def the_manifest_event_arrives_meanwhile(message: OutgoingMessage, **kwargs: str) -> None:
        if not racing:  # another instance looks at the same upload while we dead-letter
            racing.append(world.service.on_blob_created(created(VHD + ".json", "BlockBlob")))
        original(message, **kwargs)

    world.bus.reject = the_manifest_event_arrives_meanwhile  # type: ignore[method-assign]
    first = world.service.on_blob_created(created())

    assert first.outcome == IntakeOutcome.REJECTED
    assert racing[0].outcome == IntakeOutcome.DUPLICATE
    assert len(world.bus.rejected) == 1


def test_a_rejection_left_half_done_by_a_dead_instance_is_finished_later(world: World) -> None:
    world.blobs.create_page_blob(tail=dynamic_footer(VIRTUAL_SIZE))
    world.blobs.write_manifest({})

    def die(message: OutgoingMessage, **kwargs: str) -> None:
        raise SystemExit("killed before the dead-letter was sent")

    original = world.bus.reject
    world.bus.reject = die  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        world.service.on_blob_created(created())
    world.bus.reject = original  # type: ignore[method-assign]

    soon = world.service.on_blob_created(created())  # the claim is fresh: maybe still running
    assert soon.outcome == IntakeOutcome.DUPLICATE and world.bus.rejected == []
    world.clock.advance(121)
    later = world.service.on_blob_created(created())
    assert later.outcome == IntakeOutcome.REJECTED
    assert len(world.bus.rejected) == 1
    assert world.service.on_blob_created(created()).outcome == IntakeOutcome.DUPLICATE
