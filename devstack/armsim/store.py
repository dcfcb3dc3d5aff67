"""SQLite persistence: resources, long-running operations, tokens, webhooks, settings.

One file (``DIR/armsim.sqlite3``) holds the whole state, so a restart with the same ``--data``
continues where the last process stopped. Operation state is derived from stored start marks
on every read (see :mod:`devstack.armsim.clock`), so nothing in flight is lost either.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    key TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    parent TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_by_parent ON resources(type, parent, seq);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    finalized INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_pending ON operations(finalized);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    expires_on REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass
class StoredResource:
    """A resource as stored: its wire body (without derived fields) and simulator metadata."""

    key: str
    type: str
    parent: str
    body: JsonObject
    meta: JsonObject = field(default_factory=dict)
    seq: int = 0


class Store:
    """Thread-safe access to the SQLite state file."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "armsim.sqlite3"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # resources -------------------------------------------------------------------------------
    def get(self, key: str) -> StoredResource | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, type, parent, seq, body, meta FROM resources WHERE key = ?", (key,)
            ).fetchone()
        return _resource(row) if row else None

    def put(self, resource: StoredResource) -> None:
        with self._lock:
            if resource.seq == 0:
                existing = self._db.execute(
                    "SELECT seq FROM resources WHERE key = ?", (resource.key,)
                ).fetchone()
                if existing:
                    resource.seq = int(existing[0])
                else:
                    top = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM resources").fetchone()
                    resource.seq = int(top[0]) + 1
            self._db.execute(
                "INSERT OR REPLACE INTO resources (key, type, parent, seq, body, meta) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    resource.key,
                    resource.type.lower(),
                    resource.parent,
                    resource.seq,
                    json.dumps(resource.body),
                    json.dumps(resource.meta),
                ),
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM resources WHERE key = ?", (key,))

    def children(self, resource_type: str, parent: str) -> list[StoredResource]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, type, parent, seq, body, meta FROM resources "
                "WHERE type = ? AND parent = ? ORDER BY seq",
                (resource_type.lower(), parent),
            ).fetchall()
        return [_resource(row) for row in rows]

    def of_type(self, resource_type: str) -> list[StoredResource]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, type, parent, seq, body, meta FROM resources WHERE type = ? "
                "ORDER BY seq",
                (resource_type.lower(),),
            ).fetchall()
        return [_resource(row) for row in rows]

    def count_children(self, parent: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM resources WHERE parent = ?", (parent,)
            ).fetchone()
        return int(row[0])

    # operations ------------------------------------------------------------------------------
    def save_operation(self, operation: JsonObject) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO operations (id, finalized, body) VALUES (?, ?, ?)",
                (operation["id"], 1 if operation.get("finalized") else 0, json.dumps(operation)),
            )

    def get_operation(self, operation_id: str) -> JsonObject | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM operations WHERE id = ?", (operation_id.lower(),)
            ).fetchone()
        return _json(row[0]) if row else None

    def pending_operations(self) -> list[JsonObject]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM operations WHERE finalized = 0 ORDER BY rowid"
            ).fetchall()
        return [_json(row[0]) for row in rows]

    # tokens ----------------------------------------------------------------------------------
    def add_token(self, token: str, resource: str, expires_on: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tokens (token, resource, expires_on) VALUES (?, ?, ?)",
                (token, resource, expires_on),
            )

    def token(self, token: str) -> tuple[str, float] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT resource, expires_on FROM tokens WHERE token = ?", (token,)
            ).fetchone()
        return (str(row[0]), float(row[1])) if row else None

    # webhooks --------------------------------------------------------------------------------
    def add_webhook(self, webhook_id: str, body: JsonObject) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO webhooks (id, body) VALUES (?, ?)",
                (webhook_id, json.dumps(body)),
            )

    def webhooks(self) -> list[JsonObject]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM webhooks ORDER BY rowid").fetchall()
        return [_json(row[0]) for row in rows]

    def delete_webhook(self, webhook_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
            return cursor.rowcount > 0

    # settings --------------------------------------------------------------------------------
    def setting(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                (key, json.dumps(value)),
            )

    # maintenance -----------------------------------------------------------------------------
    def reset(self, *, keep_tokens: bool = True) -> None:
        """Delete every resource, operation, webhook and setting (tokens kept by default)."""
        with self._lock:
            for table in ("resources", "operations", "webhooks", "settings"):
                self._db.execute(f"DELETE FROM {table}")
            if not keep_tokens:
                self._db.execute("DELETE FROM tokens")

    def iter_resources(self) -> Iterator[StoredResource]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, type, parent, seq, body, meta FROM resources ORDER BY seq"
            ).fetchall()
        for row in rows:
            yield _resource(row)


def _json(text: str) -> JsonObject:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("stored JSON is not an object")
    return value


def _resource(row: tuple[Any, ...]) -> StoredResource:
    return StoredResource(
        key=str(row[0]),
        type=str(row[1]),
        parent=str(row[2]),
        seq=int(row[3]),
        body=_json(row[4]),
        meta=_json(row[5]),
    )
