"""Never two versions from one request, never a stuck source: one regression test per way the
pipeline was found to duplicate a version, lose a source or delete the wrong thing."""

from __future__ import annotations

from typing import Any

import pytest

from shared.builds.common import MessageOutcome
from shared.builds.gallery import DefinitionRef
from shared.builds.ledger import BuildState, build_id_for, ledger_key
from shared.builds.records import BuildPhase
from shared.builds.version_body import TAG_BUILD_ID
from shared.core.errors import NotFoundError
from shared.core.settings import SettingName
from tests.unit.build_fakes import SUB, Harness, StoredVersion, key, make_harness
from tests.unit.builds.test_builds import SNAPSHOTS, message, request_doc

DEFINITION = DefinitionRef(SUB, "rg-images", "platform_images", "ubuntu-24.04")
OTHER_DEFINITION = DefinitionRef(SUB, "rg-images", "platform_images", "debian-12")
LEASE = 120


@pytest.fixture
def h() -> Harness:
    harness = make_harness()
    harness.gallery.add_definition(DEFINITION)
    harness.gallery.add_definition(OTHER_DEFINITION)
    return harness


def source_key(snapshot: str) -> str:
    return f"{SNAPSHOTS}/{snapshot}".lower()


def stored_key(snapshot: str) -> str:
    return ledger_key(source_key(snapshot))


def in_flight(h: Harness, snapshot: str) -> Any:
    entry = h.ledger.get(source_key(snapshot))
    return None if entry is None else entry.in_flight


def finish(h: Harness, version: str, definition: str = "ubuntu-24.04") -> None:
    h.gallery.complete(definition, version)
    h.tracker.follow_up()


# 1. A late start must not publish again ------------------------------------------------------


def test_a_starter_stalled_past_a_whole_build_does_not_publish_again(h: Harness) -> None:
    """The worker stalls in the version list (the SDK sleeping out 429s) while its lease runs
    out; the tracker takes the claim over, builds, and releases the source. The stalled
    worker then resumes: it must not reserve a new version nor send a second PUT."""
    build_id = build_id_for("r-1")

    def meanwhile_the_tracker_builds_it() -> None:
        h.clock.advance(LEASE + 1)
        assert h.tracker.follow_up().recovered == [build_id]
        finish(h, "1.0.0")
        assert in_flight(h, "os-1") is None  # built, released

    h.gallery.during_list = meanwhile_the_tracker_builds_it
    outcome = h.worker.handle_message(message(request_doc(requestId="r-1")))

    assert outcome is MessageOutcome.DUPLICATE  # ends quietly: no LookupError, no reject
    assert [version for _, version, _ in h.gallery.puts] == ["1.0.0"]
    assert h.reservations.reserved(DEFINITION) == {}
    assert h.rejects.rejected == []


def test_a_slow_starter_keeps_its_claim_while_its_lease_runs(h: Harness) -> None:
    def the_tracker_runs_before_the_lease_ends() -> None:
        h.clock.advance(LEASE - 1)
        assert h.tracker.follow_up().recovered == []

    h.gallery.during_list = the_tracker_runs_before_the_lease_ends
    assert h.worker.handle_message(message(request_doc(requestId="r-1"))) is (
        MessageOutcome.STARTED
    )
    assert len(h.gallery.puts) == 1


def test_a_version_tagged_with_the_build_is_adopted_not_republished(h: Harness) -> None:
    doc = request_doc(requestId="r-1")
    h.worker.handle_message(message(doc))
    entry = h.ledger.get(source_key("os-1"))
    assert entry is not None and entry.in_flight is not None
    # A crash lost the ledger's "started" (and the reservation): the claim is back to square one.
    h.ledger_store.write(
        stored_key("os-1"),
        {**entry.to_document(), "inFlight": {**entry.in_flight.to_document(), "state": "claimed"}},
        etag=h.ledger_store.read(stored_key("os-1"))[1],  # type: ignore[index]
    )
    h.reservations.release(DEFINITION, build_id_for("r-1"))
    h.clock.advance(LEASE + 1)

    assert h.tracker.follow_up().recovered == [build_id_for("r-1")]
    assert len(h.gallery.puts) == 1  # the version tagged with the build was adopted
    assert in_flight(h, "os-1").state is BuildState.STARTED


# 2. Crash order: the version is on every transition -----------------------------------------


def test_a_kill_between_the_ledger_and_the_record_still_reports_the_version(h: Harness) -> None:
    original = h.journal.transition

    def die_when_recording_started(build_id: str, request: Any, phase: Any, **changes: Any) -> Any:
        if phase is BuildPhase.STARTED:
            raise SystemExit("killed")
        return original(build_id, request, phase, **changes)

    h.journal.transition = die_when_recording_started  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        h.worker.handle_message(message(request_doc(requestId="r-1")))
    h.journal.transition = original  # type: ignore[method-assign]

    finish(h, "1.0.0")

    record = h.records.get(build_id_for("r-1"))
    assert record is not None and record.phase is BuildPhase.SUCCEEDED
    assert record.version == "1.0.0"
    succeeded = [e for e in h.sender.events() if e["type"].endswith(".succeeded")]
    assert [e["data"]["version"] for e in succeeded] == ["1.0.0"]


# 3. A poisoned entry must not stop a source (nor the run) ------------------------------------


def test_a_permanent_error_fails_that_build_and_the_rest_of_the_run_goes_on(h: Harness) -> None:
    poisoned = request_doc("os-p", requestId="p-1")
    poisoned["target"]["definition"] = "debian-12"
    parked = request_doc("os-p", requestId="p-2", version="7.0.0")  # into a healthy definition
    h.worker.handle_message(message(poisoned))
    h.worker.handle_message(message(parked))  # waits behind the poisoned build
    h.worker.handle_message(message(request_doc("os-ok", requestId="ok-1")))
    h.gallery.broken_definitions[key(OTHER_DEFINITION)] = NotFoundError(
        "definition debian-12 was deleted", reason="ParentResourceNotFound"
    )
    h.gallery.complete("ubuntu-24.04", "1.0.0")

    report = h.tracker.follow_up()  # must not raise

    assert build_id_for("p-1") in report.failed
    assert build_id_for("ok-1") in report.succeeded
    failed = h.records.get(build_id_for("p-1"))
    assert failed is not None and failed.error_reason == "ParentResourceNotFound"
    assert in_flight(h, "os-p").build_id == build_id_for("p-2")  # the source moved on
    assert ("platform_images/ubuntu-24.04", "7.0.0") in [(d, v) for d, v, _ in h.gallery.puts]
    assert h.rejects.drains == 1  # rejects are still drained


# 4. Reservations never leak; a started build is judged as of its claim ----------------------


def test_an_unparsable_started_build_releases_its_reservation(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    assert h.reservations.reserved(DEFINITION) == {build_id_for("r-1"): "1.0.0"}
    entry = h.ledger.get(source_key("os-1"))
    assert entry is not None and entry.in_flight is not None
    broken = {**entry.in_flight.request, "publishing": {"targetRegions": "everywhere"}}
    document = entry.to_document()
    document["inFlight"]["request"] = broken
    found = h.ledger_store.read(stored_key("os-1"))
    assert found is not None
    h.ledger_store.write(stored_key("os-1"), document, etag=found[1])

    assert h.tracker.follow_up().failed == [build_id_for("r-1")]
    assert h.reservations.reserved(DEFINITION) == {}
    assert in_flight(h, "os-1") is None


def test_an_allow_list_change_does_not_fail_a_started_build(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    h.gallery.complete("ubuntu-24.04", "1.0.0")
    # The operator narrows the allow-lists while the build replicates.
    narrowed = h.tracker_with(
        **{SettingName.ALLOWED_TARGET_GALLERIES: f"{SUB}/rg-other/other_gallery"}
    )

    assert narrowed.follow_up().succeeded == [build_id_for("r-1")]


# 5. Explicit versions are reserved too --------------------------------------------------------


def test_two_builds_never_send_a_put_for_the_same_explicit_version(h: Harness) -> None:
    def another_source_asks_for_the_same_version() -> None:
        outcome = h.worker.handle_message(
            message(request_doc("os-2", requestId="r-2", version="3.0.0"), message_id="m-2")
        )
        assert outcome is MessageOutcome.DEFERRED  # waits: the version is reserved

    h.gallery.during_get = another_source_asks_for_the_same_version
    assert h.worker.handle_message(message(request_doc(requestId="r-1", version="3.0.0"))) is (
        MessageOutcome.STARTED
    )
    assert [(v, b["tags"][TAG_BUILD_ID]) for _, v, b in h.gallery.puts] == [
        ("3.0.0", build_id_for("r-1"))
    ]


# 6. Never delete what we did not create -------------------------------------------------------


def test_a_failed_version_made_outside_the_pipeline_is_never_deleted(h: Harness) -> None:
    doc = request_doc(requestId="r-1", version="4.0.0")
    snapshot_id = doc["source"]["snapshot"]["id"]
    h.gallery.versions[key(DEFINITION)]["4.0.0"] = StoredVersion(
        {"properties": {"storageProfile": {"osDiskImage": {"source": {"id": snapshot_id}}}}},
        regions={"westeurope": ("Replicating", 10), "eastus": ("Replicating", 10)},
    )
    assert h.worker.handle_message(message(doc)) is MessageOutcome.ADOPTED
    h.gallery.fail_region("ubuntu-24.04", "4.0.0", "eastus")

    assert h.tracker.follow_up().failed == [build_id_for("r-1")]
    assert h.gallery.deletes == []
    record = h.records.get(build_id_for("r-1"))
    assert record is not None and "not created by this build" in (record.error or "")


def test_a_failed_version_the_build_made_is_deleted_by_default(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    h.gallery.fail_region("ubuntu-24.04", "1.0.0", "eastus")
    h.tracker.follow_up()
    assert h.gallery.deletes == ["platform_images/ubuntu-24.04/1.0.0"]


# 7. "Completed" means every requested region, each Completed ---------------------------------


@pytest.mark.parametrize(
    "regions",
    [{}, {"westeurope": ("Completed", 100)}, {"West Europe": ("Completed", 100)}],
    ids=["empty summary", "a region missing", "a region missing (display names)"],
)
def test_a_summary_without_every_requested_region_is_not_completion(
    h: Harness, regions: dict[str, tuple[str, int]]
) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    stored = h.gallery.versions[key(DEFINITION)]["1.0.0"]
    stored.provisioning_state = "Succeeded"
    stored.regions = dict(regions)

    report = h.tracker.follow_up()

    assert report.succeeded == []
    assert in_flight(h, "os-1") is not None  # still followed


def test_display_names_of_every_requested_region_complete_the_build(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    stored = h.gallery.versions[key(DEFINITION)]["1.0.0"]
    stored.provisioning_state = "Succeeded"
    stored.regions = {"West Europe": ("Completed", 100), "East US": ("Completed", 100)}
    assert h.tracker.follow_up().succeeded == [build_id_for("r-1")]


# 8. Idempotency without a 200-entry window ----------------------------------------------------


def test_a_redelivery_older_than_the_ledgers_memory_builds_nothing(h: Harness) -> None:
    doc = request_doc(requestId="r-old")
    h.worker.handle_message(message(doc))
    finish(h, "1.0.0")
    # Many builds later the ledger no longer remembers r-old (its window is bounded).
    found = h.ledger_store.read(stored_key("os-1"))
    assert found is not None
    h.ledger_store.write(stored_key("os-1"), {**found[0], "completedRequestIds": []}, etag=found[1])

    h.worker.handle_message(message(doc, message_id="m-late"))
    h.tracker.follow_up()

    assert len(h.gallery.puts) == 1  # the version's own tags answered "already built"
    assert in_flight(h, "os-1") is None
    record = h.records.get(build_id_for("r-old"))
    assert record is not None and record.phase is BuildPhase.SUCCEEDED


# 9. Data-disk sources count as sources --------------------------------------------------------


def with_data_disk(doc: dict[str, Any], snapshot: str) -> dict[str, Any]:
    doc["dataDisks"] = [{"lun": 0, "source": {"snapshot": {"id": f"{SNAPSHOTS}/{snapshot}"}}}]
    return doc


def sources_in_use(h: Harness) -> list[str]:
    """Every snapshot some build in flight is reading (started builds' PUT bodies)."""
    used = []
    for entry in h.ledger.entries():
        build = entry.in_flight
        if build is not None and build.state is BuildState.STARTED:
            used.append(build.request["source"]["snapshot"]["id"].rsplit("/", 1)[1])
            used += [
                d["source"]["snapshot"]["id"].rsplit("/", 1)[1]
                for d in build.request.get("dataDisks", [])
            ]
    return used


def test_a_data_disk_source_is_busy_like_an_os_source(h: Harness) -> None:
    assert (
        h.worker.handle_message(
            message(with_data_disk(request_doc("os-a", requestId="x"), "disk-b"))
        )
        is MessageOutcome.STARTED
    )
    # Another request builds from disk-b as its OS source: it must wait, not start.
    assert h.worker.handle_message(message(request_doc("disk-b", requestId="y"), "m-2")) is (
        MessageOutcome.PARKED
    )
    assert len(h.gallery.puts) == 1

    finish(h, "1.0.0")  # x ends: both sources are given back, y starts

    assert len(h.gallery.puts) == 2
    assert in_flight(h, "disk-b").build_id == build_id_for("y")
    assert in_flight(h, "os-a") is None


def test_two_builds_crossing_their_sources_never_deadlock(h: Harness) -> None:
    x = with_data_disk(request_doc("snap-a", requestId="x"), "snap-b")
    y = with_data_disk(request_doc("snap-b", requestId="y", version="9.0.0"), "snap-a")
    assert h.worker.handle_message(message(x)) is MessageOutcome.STARTED
    assert h.worker.handle_message(message(y, "m-2")) is MessageOutcome.PARKED
    assert sorted(sources_in_use(h)) == ["snap-a", "snap-b"]  # x alone reads both

    finish(h, "1.0.0")
    assert sorted(sources_in_use(h)) == ["snap-a", "snap-b"]  # now y alone reads both
    finish(h, "9.0.0")

    for request_id in ("x", "y"):
        record = h.records.get(build_id_for(request_id))
        assert record is not None and record.phase is BuildPhase.SUCCEEDED
    assert [e.in_flight for e in h.ledger.entries()] == [None, None]


def test_a_crash_half_way_through_taking_the_sources_is_recovered(h: Harness) -> None:
    doc = with_data_disk(request_doc("snap-a", requestId="x"), "snap-b")
    original = h.ledger.promote
    h.ledger.promote = lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        h.worker.handle_message(message(doc))
    h.ledger.promote = original  # type: ignore[method-assign]
    assert h.gallery.puts == []

    h.clock.advance(LEASE + 1)
    h.tracker.follow_up()

    assert len(h.gallery.puts) == 1
    assert in_flight(h, "snap-a").state is BuildState.STARTED


def test_a_source_left_held_by_an_ended_build_is_freed(h: Harness) -> None:
    doc = with_data_disk(request_doc("snap-b", requestId="x"), "snap-a")
    h.worker.handle_message(message(doc))
    h.worker.handle_message(message(request_doc("snap-a", requestId="y", version="5.0.0"), "m-2"))
    # x ends, but the process dies after giving back its OS source (snap-b) only: the data
    # disk's source (snap-a) stays held by a build that no longer exists.
    h.gallery.complete("ubuntu-24.04", "1.0.0")
    original = h.ledger.release

    def die_before_snap_a(key: str, build_id: str) -> Any:
        if key == source_key("snap-a"):
            raise SystemExit("killed")
        return original(key, build_id)

    h.ledger.release = die_before_snap_a  # type: ignore[method-assign,assignment]
    with pytest.raises(SystemExit):
        h.tracker.follow_up()
    h.ledger.release = original  # type: ignore[method-assign]
    assert in_flight(h, "snap-b") is None
    assert in_flight(h, "snap-a").state is BuildState.HELD

    h.clock.advance(LEASE + 1)
    h.tracker.follow_up()

    assert in_flight(h, "snap-a").build_id == build_id_for("y")
    assert ("platform_images/ubuntu-24.04", "5.0.0") in [(d, v) for d, v, _ in h.gallery.puts]
