"""The build worker and tracker with fakes of their ports: claim, park, adopt, conflict, reject,
track."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.builds.common import MessageOutcome
from shared.builds.gallery import DefinitionRef
from shared.builds.ledger import BuildState, build_id_for
from shared.builds.records import BuildPhase
from shared.builds.sources import SourceLocks
from shared.core.errors import TransientError
from shared.core.messaging import IncomingMessage
from tests.unit.build_fakes import SUB, Harness, make_harness

DEFINITION = DefinitionRef(SUB, "rg-images", "platform_images", "ubuntu-24.04")
SNAPSHOTS = f"/subscriptions/{SUB}/resourceGroups/rg-builds/providers/Microsoft.Compute/snapshots"
ACCOUNT = (
    f"/subscriptions/{SUB}/resourceGroups/rg-images/providers/Microsoft.Storage"
    "/storageAccounts/upload01"
)


def request_doc(
    snapshot: str = "os-1", *, version: str | None = None, policy: str = "nextPatch", **extra: Any
) -> dict[str, Any]:
    target: dict[str, Any] = {
        "subscriptionId": SUB,
        "resourceGroup": "rg-images",
        "gallery": "platform_images",
        "definition": "ubuntu-24.04",
    }
    if version:
        target["version"] = version
    else:
        target["versionPolicy"] = policy
    doc: dict[str, Any] = {
        "target": target,
        "source": {"snapshot": {"id": f"{SNAPSHOTS}/{snapshot}"}},
        "publishing": {
            "targetRegions": [{"name": "westeurope"}, {"name": "eastus", "replicaCount": 2}]
        },
    }
    doc.update(extra)
    return doc


def message(doc: Any, message_id: str = "m-1") -> IncomingMessage:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return IncomingMessage(body=body, message_id=message_id, content_type="application/json")


@pytest.fixture
def h() -> Harness:
    harness = make_harness()
    harness.gallery.add_definition(DEFINITION)
    return harness


def only_build(h: Harness) -> str:
    builds = list(h.records.all())
    assert len(builds) == 1
    return builds[0].build_id


def test_a_valid_request_starts_one_build_without_waiting(h: Harness) -> None:
    outcome = h.worker.handle_message(message(request_doc(requestId="r-1")))

    assert outcome is MessageOutcome.STARTED
    assert len(h.gallery.puts) == 1
    definition, version, body = h.gallery.puts[0]
    assert definition == "platform_images/ubuntu-24.04"
    assert version == "1.0.0"
    assert body["tags"]["gallery-pipeline.build-id"] == build_id_for("r-1")
    assert [r["name"] for r in body["properties"]["publishingProfile"]["targetRegions"]] == [
        "westeurope",
        "eastus",
    ]
    entry = h.ledger.get(f"{SNAPSHOTS}/os-1".lower())
    assert entry is not None and entry.in_flight is not None
    assert entry.in_flight.state is BuildState.STARTED and entry.in_flight.version_id == "1.0.0"
    assert h.sender.event_types() == ["queued", "started"]
    record = h.records.get(build_id_for("r-1"))
    assert record is not None and record.phase is BuildPhase.STARTED and record.version == "1.0.0"


def test_invalid_json_is_dead_lettered_and_builds_nothing(h: Harness) -> None:
    outcome = h.worker.handle_message(message(b"{not json", "bad-1"))

    assert outcome is MessageOutcome.REJECTED
    [(rejected, reason, description)] = h.rejects.rejected
    assert rejected.message_id == "bad-1" and rejected.body == b"{not json"
    assert reason == "InvalidJson" and "not JSON" in description
    assert h.gallery.puts == [] and h.sender.sent == []


@pytest.mark.parametrize(
    ("body", "rule", "text"),
    [
        (b'{"target": "gal\xfflery"}', "encoding", "byte offset 15"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting", "more than 64 deep"),
        (b"[" * 100_000, "nesting", "more than 64 deep"),
        (b'{"requestId": "a", "requestId": "b"}', "duplicate-key", "'requestId'"),
        (b'{"publishing": {"replicaCount": NaN}}', "non-finite-number", "NaN"),
    ],
)
def test_hostile_bodies_are_dead_lettered_once_with_a_reason(
    h: Harness, body: bytes, rule: str, text: str
) -> None:
    outcome = h.worker.handle_message(message(body, "hostile-1"))

    assert outcome is MessageOutcome.REJECTED
    [(rejected, reason, description)] = h.rejects.rejected
    assert rejected.message_id == "hostile-1" and rejected.body == body
    assert reason == "InvalidJson"
    assert f"[{rule}]" in description and text in description
    assert h.gallery.puts == [] and h.sender.sent == [] and list(h.records.all()) == []


def test_an_invalid_request_is_dead_lettered_naming_the_field(h: Harness) -> None:
    doc = request_doc()
    doc["publishing"]["replicaCount"] = 0

    outcome = h.worker.handle_message(message(doc))

    assert outcome is MessageOutcome.REJECTED
    [(_, reason, description)] = h.rejects.rejected
    assert reason == "ValidationFailed"
    assert "publishing.replicaCount" in description
    assert h.gallery.puts == [] and list(h.records.all()) == []


def test_a_redelivered_message_adopts_its_build_and_puts_nothing_again(h: Harness) -> None:
    doc = request_doc(requestId="r-1")
    h.worker.handle_message(message(doc))

    again = h.worker.handle_message(message(doc))

    assert again is MessageOutcome.ADOPTED
    assert len(h.gallery.puts) == 1
    assert h.sender.event_types() == ["queued", "started"]


def test_a_busy_source_parks_requests_and_builds_them_one_after_another(h: Harness) -> None:
    for n in (1, 2, 3):
        h.worker.handle_message(message(request_doc(requestId=f"r-{n}"), f"m-{n}"))
    assert len(h.gallery.puts) == 1
    assert h.sender.event_types(build_id_for("r-2")) == ["queued"]

    for expected_puts, version in ((2, "1.0.0"), (3, "1.0.1")):
        h.tracker.follow_up()  # still replicating: nothing new starts
        assert len(h.gallery.puts) == expected_puts - 1
        h.gallery.complete("ubuntu-24.04", version)
        report = h.tracker.follow_up()
        assert len(h.gallery.puts) == expected_puts
        assert report.started == [h.records.get(build_id_for(f"r-{expected_puts}")).build_id]  # type: ignore[union-attr]

    assert [v for _, v, _ in h.gallery.puts] == ["1.0.0", "1.0.1", "1.0.2"]
    h.gallery.complete("ubuntu-24.04", "1.0.2")
    h.tracker.follow_up()
    phases = {r.request_id: r.phase for r in h.records.all()}
    assert phases == {f"r-{n}": BuildPhase.SUCCEEDED for n in (1, 2, 3)}
    entry = h.ledger.get(f"{SNAPSHOTS}/os-1".lower())
    assert entry is not None and entry.in_flight is None and entry.pending == ()


def test_a_redelivery_of_a_parked_or_finished_request_changes_nothing(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    h.worker.handle_message(message(request_doc(requestId="r-2")))
    assert (
        h.worker.handle_message(message(request_doc(requestId="r-2"))) is MessageOutcome.DUPLICATE
    )
    h.gallery.complete("ubuntu-24.04", "1.0.0")
    h.tracker.follow_up()
    assert (
        h.worker.handle_message(message(request_doc(requestId="r-1"))) is MessageOutcome.DUPLICATE
    )
    assert len(h.gallery.puts) == 2


def test_other_sources_build_in_parallel_with_distinct_versions(h: Harness) -> None:
    h.worker.handle_message(message(request_doc("os-a", requestId="a")))
    h.worker.handle_message(message(request_doc("os-b", requestId="b")))

    assert sorted(v for _, v, _ in h.gallery.puts) == ["1.0.0", "1.0.1"]


def test_a_reserved_version_is_not_given_to_another_build_before_it_exists(h: Harness) -> None:
    h.gallery.fail_next_put = TransientError("throttled")
    first = h.worker.handle_message(message(request_doc("os-a", requestId="a")))
    assert first is MessageOutcome.DEFERRED  # reserved 1.0.0, PUT not accepted
    h.worker.handle_message(message(request_doc("os-b", requestId="b")))
    h.clock.advance(121)
    h.tracker.follow_up()  # the tracker resumes "a" with its reservation

    assert {(v, body["tags"]["gallery-pipeline.request-id"]) for _, v, body in h.gallery.puts} == {
        ("1.0.1", "b"),
        ("1.0.0", "a"),
    }


def test_an_existing_version_from_another_source_is_a_conflict_never_an_overwrite(
    h: Harness,
) -> None:
    h.worker.handle_message(message(request_doc("os-a", version="2.0.0", requestId="a")))
    h.gallery.complete("ubuntu-24.04", "2.0.0")
    h.tracker.follow_up()

    outcome = h.worker.handle_message(message(request_doc("os-b", version="2.0.0", requestId="b")))

    assert outcome is MessageOutcome.FAILED
    assert len(h.gallery.puts) == 1
    [(_, reason, description)] = h.rejects.rejected
    assert reason == "VersionConflict" and "target.version" in description
    record = h.records.get(build_id_for("b"))
    assert record is not None and record.phase is BuildPhase.FAILED
    entry = h.ledger.get(f"{SNAPSHOTS}/os-b".lower())
    assert entry is not None and entry.in_flight is None  # the source is released


def test_an_existing_version_from_the_same_source_is_adopted(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(version="2.0.0", requestId="a")))
    h.gallery.complete("ubuntu-24.04", "2.0.0")
    h.tracker.follow_up()

    outcome = h.worker.handle_message(message(request_doc(version="2.0.0", requestId="a-again")))

    assert outcome is MessageOutcome.ADOPTED  # followed, not published again
    assert len(h.gallery.puts) == 1
    h.tracker.follow_up()
    record = h.records.get(build_id_for("a-again"))
    assert record is not None and record.phase is BuildPhase.SUCCEEDED


def test_a_missing_definition_is_created_from_the_spec_or_rejected(h: Harness) -> None:
    other = request_doc("os-x", requestId="x")
    other["target"]["definition"] = "new-def"
    outcome = h.worker.handle_message(message(other))
    assert outcome is MessageOutcome.FAILED
    assert h.rejects.rejected[0][1] == "DefinitionNotFound"
    assert "definitionSpec" in h.rejects.rejected[0][2]

    with_spec = copy.deepcopy(other)
    with_spec["requestId"] = "x2"
    with_spec["definitionSpec"] = {
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V2",
        "publisher": "contoso",
        "offer": "ubuntu",
        "sku": "24",
    }
    assert h.worker.handle_message(message(with_spec)) is MessageOutcome.STARTED
    assert h.gallery.puts[-1][0] == "platform_images/new-def"


def test_a_bad_vhd_is_rejected_by_the_preflight_before_any_put(h: Harness) -> None:
    url = "http://127.0.0.1:10000/upload01/vhds/os.vhd"
    doc = request_doc(requestId="v-1")
    doc["source"] = {"vhd": {"uri": url, "storageAccountId": ACCOUNT}}
    harness = make_harness(**{"GALLERY_VHD_STORAGE_ENDPOINTS": "http://127.0.0.1:10000/{account}"})
    harness.gallery.add_definition(DEFINITION)
    harness.vhd.bad[url] = "the VHD is dynamic; the gallery needs a fixed VHD"

    outcome = harness.worker.handle_message(message(doc))

    assert outcome is MessageOutcome.FAILED
    [(_, reason, description)] = harness.rejects.rejected
    assert reason == "ValidationFailed"
    assert "source.vhd.footer.diskType" in description and "fixed VHD" in description
    assert harness.gallery.puts == []


def test_replication_progress_is_recorded_and_published_once_per_change(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    build_id = build_id_for("r-1")
    h.gallery.progress("ubuntu-24.04", "1.0.0", 40)
    h.tracker.follow_up()
    h.tracker.follow_up()
    h.gallery.progress("ubuntu-24.04", "1.0.0", 80)
    h.tracker.follow_up()

    assert h.rejects.drains == 3  # each run also dead-letters what a crash left in the relay
    replicating = [e for e in h.sender.events() if e["type"].endswith("replicating")]
    assert [e["data"]["progress"] for e in replicating] == [40, 80]
    assert [e["id"] for e in replicating] == [
        f"{build_id}:replicating:40",
        f"{build_id}:replicating:80",
    ]
    assert replicating[0]["specversion"] == "1.0" and replicating[0]["subject"] == build_id
    record = h.records.get(build_id)
    assert record is not None and {r.progress for r in record.regions} == {80}


def test_a_failed_replication_deletes_the_version_and_starts_the_next_request(h: Harness) -> None:
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    h.worker.handle_message(message(request_doc(requestId="r-2")))
    h.gallery.fail_region("ubuntu-24.04", "1.0.0", "eastus")

    report = h.tracker.follow_up()

    assert report.failed == [build_id_for("r-1")]
    assert h.gallery.deletes == ["platform_images/ubuntu-24.04/1.0.0"]
    record = h.records.get(build_id_for("r-1"))
    assert record is not None and record.phase is BuildPhase.FAILED
    assert record.error_reason == "ReplicationFailed" and "eastus: disk copy failed" in (
        record.error or ""
    )
    assert h.sender.event_types(build_id_for("r-1"))[-1] == "failed"
    assert [v for _, v, _ in h.gallery.puts] == ["1.0.0", "1.0.0"]  # the failed one was deleted


def test_keep_policy_leaves_a_failed_version_in_place() -> None:
    h = make_harness(GALLERY_FAILED_VERSION_POLICY="keep")
    h.gallery.add_definition(DEFINITION)
    h.worker.handle_message(message(request_doc(requestId="r-1")))
    h.gallery.fail_region("ubuntu-24.04", "1.0.0", "eastus")
    h.tracker.follow_up()
    assert h.gallery.deletes == []


def test_a_transient_error_after_the_claim_is_resumed_by_the_tracker(h: Harness) -> None:
    h.gallery.fail_next_put = TransientError("connection reset")
    outcome = h.worker.handle_message(message(request_doc(requestId="r-1")))
    assert outcome is MessageOutcome.DEFERRED  # completed: the ledger holds the request
    h.tracker.follow_up()
    assert h.gallery.puts == []  # too young to recover: the message may still be redelivered

    h.clock.advance(121)
    report = h.tracker.follow_up()

    assert report.recovered == [build_id_for("r-1")]
    assert len(h.gallery.puts) == 1
    entry = h.ledger.get(f"{SNAPSHOTS}/os-1".lower())
    assert entry is not None and entry.in_flight is not None
    assert entry.in_flight.state is BuildState.STARTED


def test_a_crash_after_the_put_is_recovered_by_adopting_the_version(h: Harness) -> None:
    doc = request_doc(requestId="r-1")
    original = h.ledger.mark_started
    h.ledger.mark_started = lambda *a, **k: (_ for _ in ()).throw(SystemExit("crash"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):  # the process dies: the message is redelivered
        h.worker.handle_message(message(doc))
    h.ledger.mark_started = original  # type: ignore[method-assign]

    # The redelivery cannot tell a dead starter from a slow one: its lease still runs.
    assert h.worker.handle_message(message(doc)) is MessageOutcome.DUPLICATE
    h.clock.advance(121)  # the lease runs out: the tracker takes the claim over and adopts
    assert h.tracker.follow_up().recovered == [build_id_for("r-1")]

    assert len(h.gallery.puts) == 1
    entry = h.ledger.get(f"{SNAPSHOTS}/os-1".lower())
    assert (
        entry is not None and entry.in_flight is not None and entry.in_flight.version_id == "1.0.0"
    )


def test_an_event_that_fails_to_publish_is_sent_again_when_the_build_resumes(h: Harness) -> None:
    h.sender.fail_next = True
    assert h.worker.handle_message(message(request_doc(requestId="r-1"))) is (
        MessageOutcome.DEFERRED
    )
    h.clock.advance(121)
    h.tracker.follow_up()
    assert h.sender.event_types() == ["queued", "started"]


class _FlakyLedger:
    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        raise TransientError("storage busy", retry_after_seconds=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def test_a_transient_error_before_the_claim_sends_a_delayed_copy(h: Harness) -> None:
    h.worker._locks = SourceLocks(_FlakyLedger(h.ledger))  # type: ignore[arg-type]
    doc = request_doc(requestId="r-1")

    outcome = h.worker.handle_message(message(doc, "m-1"))

    assert outcome is MessageOutcome.RETRY_SCHEDULED
    [(queue, retry)] = h.sender.sent
    assert queue == "image-builds" and retry.body == message(doc).body
    assert retry.message_id == "m-1~retry1"  # not dropped by duplicate detection
    assert retry.application_properties == {"gallery-pipeline.attempt": 1}
    assert retry.scheduled_at == h.clock.now + timedelta(seconds=30)  # Retry-After wins over 10 s

    again = h.worker.handle_message(replace(message(doc, "m-1~retry1"), attempt=4))
    assert again is MessageOutcome.RETRY_SCHEDULED
    assert h.sender.sent[-1][1].message_id == "m-1~retry5"
    assert h.sender.sent[-1][1].scheduled_at == h.clock.now + timedelta(seconds=160)


def test_retries_before_the_claim_end_in_a_dead_letter(h: Harness) -> None:
    h.worker._locks = SourceLocks(_FlakyLedger(h.ledger))  # type: ignore[arg-type]

    outcome = h.worker.handle_message(replace(message(request_doc(), "m-9"), attempt=12))

    assert outcome is MessageOutcome.REJECTED
    [(_, reason, description)] = h.rejects.rejected
    assert reason == "RetriesExhausted" and "storage busy" in description
    assert h.sender.sent == []


def test_a_build_replicating_past_its_end_of_life_date_still_succeeds(h: Harness) -> None:
    doc = request_doc(requestId="r-1")
    doc["publishing"]["endOfLifeDate"] = "2026-11-22T13:00:00Z"  # one hour after the claim
    h.worker.handle_message(message(doc))
    h.clock.advance(3 * 3600)  # replication took three hours
    h.gallery.complete("ubuntu-24.04", "1.0.0")

    h.tracker.follow_up()

    record = h.records.get(build_id_for("r-1"))
    assert record is not None and record.phase is BuildPhase.SUCCEEDED, record


def test_recent_builds_are_the_most_recently_updated(h: Harness) -> None:
    for number in (1, 2, 3):
        h.worker.handle_message(message(request_doc(f"os-{number}", requestId=f"r-{number}")))
        h.clock.advance(60)

    assert [r.request_id for r in h.records.recent(2)] == ["r-3", "r-2"]
    assert h.records.recent(0) == []
