"""The ledger on Azurite through the real azure-storage-blob SDK: CAS holds across instances."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from azure.storage.blob import BlobServiceClient

from shared.adapters.blob_ledger_store import BlobLedgerStore
from shared.ledger import ClaimOutcome, SourceLedger, StaleWrite
from tests.conftest import AzuriteInstance


@pytest.fixture
def store(azurite: AzuriteInstance) -> BlobLedgerStore:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return BlobLedgerStore(service.get_container_client(f"ledger-{uuid.uuid4().hex[:12]}"))


def test_create_only_write_refuses_an_existing_key(store: BlobLedgerStore) -> None:
    store.write("k", {"a": 1}, etag=None)
    with pytest.raises(StaleWrite):
        store.write("k", {"a": 2}, etag=None)


def test_stale_etag_is_refused(store: BlobLedgerStore) -> None:
    etag = store.write("k", {"a": 1}, etag=None)
    store.write("k", {"a": 2}, etag=etag)
    with pytest.raises(StaleWrite):
        store.write("k", {"a": 3}, etag=etag)
    found = store.read("k")
    assert found is not None and found[0] == {"a": 2}


def test_missing_key_reads_none_and_keys_lists_written_ones(store: BlobLedgerStore) -> None:
    assert store.read("absent") is None
    assert list(store.list_keys()) == []
    store.write("one", {}, etag=None)
    store.write("two", {}, etag=None)
    assert sorted(store.list_keys()) == ["one", "two"]


def test_two_ledger_instances_serialise_one_source(store: BlobLedgerStore) -> None:
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
