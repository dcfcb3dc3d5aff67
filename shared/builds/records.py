"""What the pipeline knows about each build, for status queries: one JSON document per build.

The ledger holds only what is in flight per source; a build record outlives it and answers
``GET /api/builds/{id}`` and ``galleryctl status``: state, target, version, per-region replication
progress, the error of a failed build, and the history of its transitions. Records live in the
same compare-and-swap document store as the ledger (``shared.core.documents``), under their
own prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from shared.core.documents import KEEP, Change, DocumentStore, cas_update

#: Transitions kept per record (replication progress can add many).
HISTORY_LIMIT = 50


class BuildPhase(StrEnum):
    QUEUED = "queued"  # accepted; waiting for its source (or about to start)
    STARTED = "started"  # the image version PUT was accepted
    REPLICATING = "replicating"  # the tracker has seen replication progress
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (BuildPhase.SUCCEEDED, BuildPhase.FAILED)


@dataclass(frozen=True)
class RegionProgress:
    region: str
    state: str
    progress: int
    details: str = ""

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "region": self.region,
            "state": self.state,
            "progress": self.progress,
        }
        if self.details:
            doc["details"] = self.details
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RegionProgress:
        return cls(
            region=str(doc["region"]),
            state=str(doc["state"]),
            progress=int(doc.get("progress") or 0),
            details=str(doc.get("details") or ""),
        )


@dataclass(frozen=True)
class BuildRecord:
    build_id: str
    request_id: str
    source_key: str
    phase: BuildPhase
    subscription_id: str
    resource_group: str
    gallery: str
    definition: str
    created_at: str
    updated_at: str
    version: str | None = None
    regions: tuple[RegionProgress, ...] = ()
    error_reason: str | None = None
    error: str | None = None
    history: tuple[Mapping[str, str], ...] = field(default=())

    @property
    def version_id(self) -> str | None:
        if self.version is None:
            return None
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/galleries/{self.gallery}/images/{self.definition}"
            f"/versions/{self.version}"
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "buildId": self.build_id,
            "requestId": self.request_id,
            "source": self.source_key,
            "state": self.phase.value,
            "target": {
                "subscriptionId": self.subscription_id,
                "resourceGroup": self.resource_group,
                "gallery": self.gallery,
                "definition": self.definition,
                "version": self.version,
            },
            "versionId": self.version_id,
            "regions": [r.to_document() for r in self.regions],
            "error": (
                {"reason": self.error_reason, "message": self.error} if self.error_reason else None
            ),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> BuildRecord:
        target = doc["target"]
        error = doc.get("error") or {}
        return cls(
            build_id=str(doc["buildId"]),
            request_id=str(doc["requestId"]),
            source_key=str(doc["source"]),
            phase=BuildPhase(doc["state"]),
            subscription_id=str(target["subscriptionId"]),
            resource_group=str(target["resourceGroup"]),
            gallery=str(target["gallery"]),
            definition=str(target["definition"]),
            version=target.get("version"),
            regions=tuple(RegionProgress.from_document(r) for r in doc.get("regions") or ()),
            error_reason=error.get("reason"),
            error=error.get("message"),
            created_at=str(doc["createdAt"]),
            updated_at=str(doc["updatedAt"]),
            history=tuple(dict(h) for h in doc.get("history") or ()),
        )


@runtime_checkable
class RecencyListing(Protocol):
    """A store that can list its keys, most recently written first, from its listing alone."""

    def recent_keys(self, limit: int) -> list[str]: ...


class BuildRecords:
    """Reads and updates build records with compare-and-swap (safe for concurrent writers)."""

    def __init__(self, store: DocumentStore, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def get(self, build_id: str) -> BuildRecord | None:
        found = self._store.read(build_id)
        return BuildRecord.from_document(found[0]) if found else None

    def recent(self, limit: int) -> list[BuildRecord]:
        """The ``limit`` most recently updated records. With a store that lists by recency (blob
        listings carry Last-Modified) only those are read, not every record ever kept."""
        if isinstance(self._store, RecencyListing):
            found = (self.get(key) for key in self._store.recent_keys(limit))
            records = [r for r in found if r is not None]
        else:
            records = list(self.all())
        records.sort(key=lambda r: r.updated_at, reverse=True)
        return records[: max(limit, 0)]

    def all(self) -> Iterator[BuildRecord]:
        for key in self._store.list_keys():
            record = self.get(key)
            if record is not None:
                yield record

    def upsert(
        self,
        initial: Callable[[str], BuildRecord],
        build_id: str,
        change: Callable[[BuildRecord], BuildRecord],
        *,
        before_write: Callable[[BuildRecord], None] | None = None,
    ) -> BuildRecord:
        """Apply ``change`` to the record (created with ``initial(now)`` when missing).

        A record in a final state never changes again: a late tracker run or a redelivered
        message cannot turn a succeeded build back into "replicating". ``before_write`` sees the
        new record before it is stored (events are published there: a failed write is retried
        and publishes the same, deterministic event id again, so no transition is lost).
        """

        def mutate(document: dict[str, Any] | None) -> tuple[Change, BuildRecord]:
            now = self._clock().isoformat()
            current = BuildRecord.from_document(document) if document else initial(now)
            if document is not None and current.phase.final:
                return KEEP, current
            updated = change(current)
            if updated.phase != current.phase or document is None:
                entry = {"state": updated.phase.value, "at": now}
                updated = replace(updated, history=(*current.history, entry)[-HISTORY_LIMIT:])
            if document is not None and updated == current:
                return KEEP, current
            updated = replace(updated, updated_at=now)
            if before_write is not None:
                before_write(updated)
            return updated.to_document(), updated

        return cas_update(
            self._store,
            build_id,
            mutate,
            what=f"build record {build_id}",
            reason="RecordContention",
        )
