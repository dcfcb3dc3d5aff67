"""The one compare-and-swap loop (``cas_update``) over the document-store port."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.documents import DELETE, KEEP, MAX_CAS_ATTEMPTS, Change, cas_update
from shared.core.errors import TransientError
from tests.unit.store_fakes import InMemoryDocumentStore


def add_one(document: dict[str, Any] | None) -> tuple[Change, int]:
    count = (document or {}).get("count", 0) + 1
    return {"count": count}, count


def test_creates_an_absent_document_create_only() -> None:
    store = InMemoryDocumentStore()
    assert cas_update(store, "k", add_one, what="counter") == 1
    assert store.read("k") is not None
    assert store.read("k")[0] == {"count": 1}  # type: ignore[index]


def test_a_concurrent_write_is_seen_and_the_change_computed_again() -> None:
    store = InMemoryDocumentStore()
    store.write("k", {"count": 1}, etag=None)
    seen: list[Any] = []

    def mutate(document: dict[str, Any] | None) -> tuple[Change, int]:
        seen.append(document)
        return add_one(document)

    def another_writer(key: str) -> None:  # changes the document between our read and write
        found = store.read(key)
        assert found is not None
        store.write(key, {"count": 10}, etag=found[1])

    store.before_write = another_writer
    assert cas_update(store, "k", mutate, what="counter") == 11
    assert seen == [{"count": 1}, {"count": 10}]
    assert store.read("k")[0] == {"count": 11}  # type: ignore[index]


def test_a_concurrent_create_is_not_overwritten() -> None:
    store = InMemoryDocumentStore()

    def another_creator(key: str) -> None:
        store.write(key, {"count": 5}, etag=None)

    store.before_write = another_creator
    assert cas_update(store, "k", add_one, what="counter") == 6


def test_keep_writes_nothing() -> None:
    store = InMemoryDocumentStore()
    store.write("k", {"count": 1}, etag=None)
    writes = store.writes
    assert cas_update(store, "k", lambda doc: (KEEP, "kept"), what="x") == "kept"
    assert cas_update(store, "absent", lambda doc: (KEEP, doc), what="x") is None
    assert store.writes == writes
    assert store.read("absent") is None


def test_delete_removes_only_the_document_it_saw() -> None:
    store = InMemoryDocumentStore()
    store.write("k", {"count": 1}, etag=None)
    calls: list[Any] = []

    def drop_when_one(document: dict[str, Any] | None) -> tuple[Change, None]:
        calls.append(document)
        if document is not None and document["count"] == 1:
            # a concurrent writer bumps it after our read: our delete must not win
            if len(calls) == 1:
                store.write("k", {"count": 2}, etag=store.read("k")[1])  # type: ignore[index]
            return DELETE, None
        return KEEP, None

    cas_update(store, "k", drop_when_one, what="x")
    assert store.read("k")[0] == {"count": 2}  # type: ignore[index]
    assert cas_update(store, "absent", lambda doc: (DELETE, "gone"), what="x") == "gone"


def test_gives_up_after_the_attempts_with_a_transient_error() -> None:
    store = InMemoryDocumentStore()
    store.write("k", {"count": 0}, etag=None)
    attempts = 0

    def always_raced(document: dict[str, Any] | None) -> tuple[Change, None]:
        nonlocal attempts
        attempts += 1
        found = store.read("k")
        assert found is not None
        store.write("k", {"count": attempts}, etag=found[1])  # someone always writes first
        return {"count": -1}, None

    with pytest.raises(TransientError) as raised:
        cas_update(store, "k", always_raced, what="the counter", reason="CounterContention")
    assert attempts == MAX_CAS_ATTEMPTS
    assert raised.value.reason == "CounterContention"
    assert "the counter kept changing" in raised.value.message
    assert store.read("k")[0] == {"count": MAX_CAS_ATTEMPTS}  # type: ignore[index]


def test_the_mutate_function_gets_a_copy_it_may_change() -> None:
    store = InMemoryDocumentStore()
    store.write("k", {"count": 1}, etag=None)

    def scribble(document: dict[str, Any] | None) -> tuple[Change, None]:
        assert document is not None
        document["scribbled"] = True
        return KEEP, None

    cas_update(store, "k", scribble, what="x")
    assert store.read("k")[0] == {"count": 1}  # type: ignore[index]
