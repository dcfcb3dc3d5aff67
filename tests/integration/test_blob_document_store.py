"""The ledger on Azurite through the real azure-storage-blob SDK: CAS holds across instances."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from shared.adapters.blob_document_store import BlobDocumentStore
from shared.builds.ledger import ClaimOutcome, SourceLedger
from shared.core.documents import StaleWrite
from tests.conftest import AzuriteInstance


@pytest.fixture
def store(azurite: AzuriteInstance) -> BlobDocumentStore:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return BlobDocumentStore(service.get_container_client(f"ledger-{uuid.uuid4().hex[:12]}"))


def test_create_only_write_refuses_an_existing_key(store: BlobDocumentStore) -> None:
    store.write("k", {"a": 1}, etag=None)
    with pytest.raises(StaleWrite):
        store.write("k", {"a": 2}, etag=None)


def test_stale_etag_is_refused(store: BlobDocumentStore) -> None:
    etag = store.write("k", {"a": 1}, etag=None)
    store.write("k", {"a": 2}, etag=etag)
    with pytest.raises(StaleWrite):
        store.write("k", {"a": 3}, etag=etag)
    found = store.read("k")
    assert found is not None and found[0] == {"a": 2}


def test_missing_key_reads_none_and_keys_lists_written_ones(store: BlobDocumentStore) -> None:
    assert store.read("absent") is None
    assert list(store.list_keys()) == []
    store.write("one", {}, etag=None)
    store.write("two", {}, etag=None)
    assert sorted(store.list_keys()) == ["one", "two"]


def test_two_ledger_instances_serialise_one_source(store: BlobDocumentStore) -> None:
    ids = itertools.count(1)

    def ledger() -> SourceLedger:
        return SourceLedger(
            store, clock=lambda: datetime.now(UTC), new_build_id=lambda _request_id: f"b{next(ids)}"
        )

    first, second = ledger(), ledger()
    source = "http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd"
    assert first.claim(source, "r1", {}).outcome is ClaimOutcome.CLAIMED
    assert second.claim(source, "r2", {}).outcome is ClaimOutcome.PARKED
    assert second.claim(source, "r1", {}).outcome is ClaimOutcome.ADOPTED
    entry = first.get(source)
    assert entry is not None and entry.in_flight is not None
    released = second.release(source, entry.in_flight.build_id)
    assert released.next_build is not None and released.next_build.request_id == "r2"


def test_recent_keys_come_from_the_listing_newest_first_with_ties_kept(
    store: BlobDocumentStore,
) -> None:
    store.write("old", {"n": 1}, etag=None)
    time.sleep(1.1)  # Last-Modified has one-second resolution
    store.write("middle", {"n": 2}, etag=None)
    time.sleep(1.1)
    store.write("new-a", {"n": 3}, etag=None)
    store.write("new-b", {"n": 4}, etag=None)

    newest = store.recent_keys(1)
    assert set(newest) <= {"new-a", "new-b"} and len(newest) >= 1
    assert set(store.recent_keys(2)) == {"new-a", "new-b"}
    assert store.recent_keys(3)[-1] == "middle"
    assert set(store.recent_keys(10)) == {"old", "middle", "new-a", "new-b"}
    assert store.recent_keys(0) == []


def test_recent_builds_read_only_the_newest_records(store: BlobDocumentStore) -> None:
    from shared.builds.records import BuildPhase, BuildRecord, BuildRecords

    clock = iter(datetime(2026, 11, 22, 12, m, tzinfo=UTC) for m in range(50))
    records = BuildRecords(store, clock=lambda: next(clock))
    for number in range(3):

        def initial(now: str, number: int = number) -> BuildRecord:
            return BuildRecord(
                build_id=f"b-{number}",
                request_id=f"r-{number}",
                source_key=f"s-{number}",
                phase=BuildPhase.QUEUED,
                subscription_id="sub",
                resource_group="rg",
                gallery="g",
                definition="d",
                created_at=now,
                updated_at=now,
            )

        records.upsert(initial, f"b-{number}", lambda record: record)
        time.sleep(1.1)
    read = store.read
    reads: list[str] = []

    def counting_read(key: str) -> Any:
        reads.append(key)
        return read(key)

    store.read = counting_read  # type: ignore[method-assign]

    newest = records.recent(1)

    assert [r.build_id for r in newest] == ["b-2"]
    assert reads == ["b-2"]  # one record read, not all three
