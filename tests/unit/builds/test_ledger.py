from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.builds.ledger import (
    COMPLETED_HISTORY_LIMIT,
    BuildState,
    ClaimOutcome,
    SourceLedger,
    ledger_key,
)
from shared.core.errors import TransientError
from tests.unit.store_fakes import InMemoryDocumentStore

SOURCE = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/snapshots/snap1"
OTHER_SOURCE = "http://127.0.0.1:10000/devstoreaccount1/vhds/other.vhd"


def make_ledger(
    store: InMemoryDocumentStore | None = None,
) -> tuple[SourceLedger, InMemoryDocumentStore]:
    store = store or InMemoryDocumentStore()
    counter = itertools.count(1)
    ledger = SourceLedger(
        store,
        clock=lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        new_build_id=lambda _request_id: f"build-{next(counter)}",
    )
    return ledger, store


def test_first_claim_owns_the_source() -> None:
    ledger, _ = make_ledger()
    result = ledger.claim(SOURCE, "req-1", {"requestId": "req-1"})
    assert result.outcome is ClaimOutcome.CLAIMED
    assert result.build is not None
    assert result.build.build_id == "build-1"
    assert result.build.state is BuildState.CLAIMED
    assert result.build.request == {"requestId": "req-1"}


def test_second_request_on_a_busy_source_is_parked_in_order() -> None:
    ledger, _ = make_ledger()
    ledger.claim(SOURCE, "req-1", {})
    assert ledger.claim(SOURCE, "req-2", {"n": 2}).outcome is ClaimOutcome.PARKED
    assert ledger.claim(SOURCE, "req-3", {"n": 3}).outcome is ClaimOutcome.PARKED
    entry = ledger.get(SOURCE)
    assert entry is not None
    assert [p.request_id for p in entry.pending] == ["req-2", "req-3"]


def test_other_sources_are_independent() -> None:
    ledger, _ = make_ledger()
    ledger.claim(SOURCE, "req-1", {})
    assert ledger.claim(OTHER_SOURCE, "req-9", {}).outcome is ClaimOutcome.CLAIMED


def test_redelivery_adopts_the_build_in_flight() -> None:
    ledger, store = make_ledger()
    first = ledger.claim(SOURCE, "req-1", {})
    writes = store.writes
    again = ledger.claim(SOURCE, "req-1", {})
    assert again.outcome is ClaimOutcome.ADOPTED
    assert again.build is not None and first.build is not None
    assert again.build.build_id == first.build.build_id
    assert store.writes == writes, "a redelivery must not rewrite the ledger"


def test_redelivery_of_a_parked_request_is_not_queued_twice() -> None:
    ledger, _ = make_ledger()
    ledger.claim(SOURCE, "req-1", {})
    ledger.claim(SOURCE, "req-2", {})
    assert ledger.claim(SOURCE, "req-2", {}).outcome is ClaimOutcome.ALREADY_PARKED
    entry = ledger.get(SOURCE)
    assert entry is not None
    assert [p.request_id for p in entry.pending] == ["req-2"]


def test_release_hands_the_source_to_the_next_pending_request() -> None:
    ledger, _ = make_ledger()
    first = ledger.claim(SOURCE, "req-1", {})
    ledger.claim(SOURCE, "req-2", {"n": 2})
    assert first.build is not None
    ledger.mark_started(SOURCE, first.build, "gal/def/1.0.0")
    released = ledger.release(SOURCE, first.build.build_id)
    assert released.released
    assert released.next_build is not None
    assert released.next_build.request_id == "req-2"
    assert released.next_build.request == {"n": 2}
    assert released.entry.pending == ()
    assert ledger.claim(SOURCE, "req-1", {}).outcome is ClaimOutcome.ALREADY_DONE


def test_release_by_a_stale_build_is_a_no_op() -> None:
    ledger, _ = make_ledger()
    ledger.claim(SOURCE, "req-1", {})
    result = ledger.release(SOURCE, "build-that-never-owned-it")
    assert not result.released
    entry = ledger.get(SOURCE)
    assert entry is not None and entry.in_flight is not None
    assert entry.in_flight.request_id == "req-1"


def test_releasing_the_last_build_frees_the_source() -> None:
    ledger, _ = make_ledger()
    build = ledger.claim(SOURCE, "req-1", {}).build
    assert build is not None
    result = ledger.release(SOURCE, build.build_id)
    assert result.next_build is None
    assert not result.entry.busy
    assert ledger.claim(SOURCE, "req-2", {}).outcome is ClaimOutcome.CLAIMED


def test_mark_started_records_the_version_and_is_idempotent() -> None:
    ledger, store = make_ledger()
    build = ledger.claim(SOURCE, "req-1", {}).build
    assert build is not None
    assert ledger.mark_started(SOURCE, build, "gal/def/1.0.0")
    entry = ledger.get(SOURCE)
    assert entry is not None and entry.in_flight is not None
    assert entry.in_flight.state is BuildState.STARTED
    assert entry.in_flight.version_id == "gal/def/1.0.0"
    writes = store.writes
    assert ledger.mark_started(SOURCE, build, "gal/def/1.0.0")
    assert store.writes == writes


def test_mark_started_refuses_a_build_that_does_not_own_the_source() -> None:
    ledger, _ = make_ledger()
    build = ledger.claim(SOURCE, "req-1", {}).build
    assert build is not None
    stranger = replace(build, build_id="build-x")
    assert not ledger.mark_started(SOURCE, stranger, "gal/def/1.0.0")  # quietly: no exception
    assert ledger.release(SOURCE, build.build_id).released
    assert not ledger.mark_started(SOURCE, build, "gal/def/1.0.0")  # it ended meanwhile


def test_concurrent_writer_is_retried_and_both_requests_survive() -> None:
    ledger, store = make_ledger()
    other_instance, _ = make_ledger(store)

    def other_instance_claims_first(_key: str) -> None:
        other_instance.claim(SOURCE, "req-A", {})

    store.before_write = other_instance_claims_first
    result = ledger.claim(SOURCE, "req-B", {})
    assert result.outcome is ClaimOutcome.PARKED
    entry = ledger.get(SOURCE)
    assert entry is not None and entry.in_flight is not None
    assert entry.in_flight.request_id == "req-A"
    assert [p.request_id for p in entry.pending] == ["req-B"]


def test_endless_contention_becomes_a_transient_error() -> None:
    ledger, store = make_ledger()
    ledger.claim(SOURCE, "req-0", {})
    original_write = store.write

    def always_stale(key, document, *, etag):
        # another instance rewrites the same content first, so the etag always moves on
        current, current_etag = store.read(key)  # type: ignore[misc]
        original_write(key, current, etag=current_etag)
        return original_write(key, document, etag=etag)

    store.write = always_stale  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="kept changing"):
        ledger.claim(SOURCE, "req-1", {})


def test_completed_history_is_bounded() -> None:
    ledger, _ = make_ledger()
    for n in range(COMPLETED_HISTORY_LIMIT + 5):
        build = ledger.claim(SOURCE, f"req-{n}", {}).build
        assert build is not None
        ledger.release(SOURCE, build.build_id)
    entry = ledger.get(SOURCE)
    assert entry is not None
    assert len(entry.completed_request_ids) == COMPLETED_HISTORY_LIMIT
    assert entry.completed_request_ids[-1] == f"req-{COMPLETED_HISTORY_LIMIT + 4}"


def test_entries_walks_every_source() -> None:
    ledger, _ = make_ledger()
    ledger.claim(SOURCE, "req-1", {})
    ledger.claim(OTHER_SOURCE, "req-2", {})
    assert {e.source_key for e in ledger.entries()} == {SOURCE, OTHER_SOURCE}


def test_ledger_key_is_stable_and_store_safe() -> None:
    key = ledger_key(OTHER_SOURCE)
    assert key == ledger_key(OTHER_SOURCE)
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)


class _DeleteHookStore(InMemoryDocumentStore):
    """An active index whose next delete first lets another instance act."""

    def __init__(self) -> None:
        super().__init__()
        self.before_delete: Callable[[], None] | None = None

    def delete(self, key: str, *, etag: str | None) -> None:
        if self.before_delete is not None:
            hook, self.before_delete = self.before_delete, None
            hook()
        super().delete(key, etag=etag)


def indexed_ledger() -> tuple[SourceLedger, _DeleteHookStore]:
    active = _DeleteHookStore()
    ledger = SourceLedger(
        InMemoryDocumentStore(),
        clock=lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        new_build_id=lambda request_id: f"b-{request_id}",
        active=active,
    )
    return ledger, active


def test_the_active_index_holds_exactly_the_busy_sources() -> None:
    ledger, active = indexed_ledger()
    ledger.claim(SOURCE, "r1", {})
    ledger.claim(SOURCE, "r2", {})
    ledger.claim(OTHER_SOURCE, "r3", {})
    assert sorted(active.list_keys()) == sorted([ledger_key(SOURCE), ledger_key(OTHER_SOURCE)])

    ledger.release(OTHER_SOURCE, "b-r3")
    ledger.release(SOURCE, "b-r1")  # r2 starts: still busy

    assert list(active.list_keys()) == [ledger_key(SOURCE)]
    assert [e.source_key for e in ledger.active_entries()] == [SOURCE]
    ledger.release(SOURCE, "b-r2")
    assert list(active.list_keys()) == [] and list(ledger.active_entries()) == []


def test_a_stale_marker_is_dropped_by_the_walk() -> None:
    ledger, active = indexed_ledger()
    ledger.claim(SOURCE, "r1", {})
    active.before_delete = lambda: None
    ledger.release(SOURCE, "b-r1")
    active.write(ledger_key(SOURCE), {"sourceKey": SOURCE}, etag=None)  # a crash left it

    assert list(ledger.active_entries()) == []
    assert list(active.list_keys()) == []


def test_a_claim_racing_a_release_keeps_its_marker() -> None:
    ledger, active = indexed_ledger()
    ledger.claim(SOURCE, "r1", {})

    # Between the release's check ("idle") and its delete, another instance claims the source.
    def other_instance_claims() -> None:
        ledger.claim(SOURCE, "r2", {})

    active.before_delete = other_instance_claims

    ledger.release(SOURCE, "b-r1")

    assert list(active.list_keys()) == [ledger_key(SOURCE)]
    assert [e.in_flight.build_id for e in ledger.active_entries() if e.in_flight] == ["b-r2"]
