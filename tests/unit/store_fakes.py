"""An in-memory :class:`shared.core.documents.DocumentStore` with real compare-and-swap."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.documents import StaleWrite


class InMemoryDocumentStore:
    """Thread-safe (the tracker follows builds on several threads)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._docs: dict[str, tuple[str, str]] = {}
        self._etags = itertools.count(1)
        self.writes = 0
        #: Called just before a write is checked, to simulate another instance writing first.
        self.before_write: Callable[[str], None] | None = None

    def read(self, key: str) -> tuple[dict[str, Any], str] | None:
        with self._lock:
            found = self._docs.get(key)
        if found is None:
            return None
        body, etag = found
        return json.loads(body), etag

    def write(self, key: str, document: Mapping[str, Any], *, etag: str | None) -> str:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook(key)
        with self._lock:
            return self._write(key, document, etag=etag)

    def _write(self, key: str, document: Mapping[str, Any], *, etag: str | None) -> str:
        current = self._docs.get(key)
        if etag is None and current is not None:
            raise StaleWrite(key)
        if etag is not None and (current is None or current[1] != etag):
            raise StaleWrite(key)
        new_etag = f'"{next(self._etags)}"'
        self._docs[key] = (json.dumps(copy.deepcopy(dict(document))), new_etag)
        self.writes += 1
        return new_etag

    def list_keys(self) -> Iterator[str]:
        yield from list(self._docs)

    def delete(self, key: str, *, etag: str | None) -> None:
        with self._lock:
            self._delete(key, etag=etag)

    def _delete(self, key: str, *, etag: str | None) -> None:
        current = self._docs.get(key)
        if current is None:
            return
        if etag is not None and current[1] != etag:
            raise StaleWrite(key)
        del self._docs[key]


class Clock:
    """A settable clock for the services under test (``clock=...``)."""

    def __init__(self, start: datetime = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
