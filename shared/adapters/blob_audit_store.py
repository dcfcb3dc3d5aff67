"""The lifecycle audit store on Azure Blob Storage: one JSON document per run, and the halt.

A run's blob is ``runs/<UTC timestamp>-<run id>.json`` (the time of the run's first write, so
names sort by time). The plan is written first; the same blob is overwritten with plan + outcome
when the run ends, so a run that dies half-way still leaves its plan behind.

The lifecycle halt (``shared.lifecycle.halt``) is the blob ``halt.json`` in the same container,
changed only by compare-and-swap on its ETag (:meth:`BlobAuditStore.documents`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient, ContentSettings

from shared.adapters.blob_document_store import BlobDocumentStore
from shared.core.errors import TransientError

_JSON = ContentSettings(content_type="application/json")
RUNS_PREFIX = "runs/"
_STORAGE_ERRORS = (ServiceRequestError, ServiceResponseError, HttpResponseError)


class BlobAuditStore:
    """:class:`shared.lifecycle.apply.AuditStore` over one container (created on first write)."""

    def __init__(
        self,
        container: Callable[[], ContainerClient],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout_seconds: int = 30,
    ) -> None:
        self._container_factory = container
        self._container: ContainerClient | None = None
        self._clock = clock
        self._timeout = timeout_seconds
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()
        self._documents: BlobDocumentStore | None = None

    def _ready_container(self) -> ContainerClient:
        if self._container is not None:
            return self._container
        container = self._container_factory()
        try:
            container.create_container(timeout=self._timeout)
        except ResourceExistsError:
            pass
        except _STORAGE_ERRORS as exc:
            raise TransientError(f"audit container unavailable: {exc.__class__.__name__}") from exc
        self._container = container
        return container

    def blob_name(self, run_id: str) -> str:
        """The run's blob name (fixed by its first write, or now if it has none yet)."""
        with self._lock:
            name = self._names.get(run_id)
            if name is None:
                stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
                name = self._names[run_id] = f"{RUNS_PREFIX}{stamp}-{run_id}.json"
            return name

    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None:
        container = self._ready_container()
        body = json.dumps(document, indent=1, sort_keys=True, default=str).encode("utf-8")
        try:
            container.upload_blob(
                self.blob_name(run_id),
                body,
                overwrite=True,
                content_settings=_JSON,
                timeout=self._timeout,
            )
        except _STORAGE_ERRORS as exc:
            raise TransientError(f"audit write failed: {exc.__class__.__name__}") from exc

    def read_run(self, blob_name: str) -> dict[str, Any]:
        """One run's document (tests and ``galleryctl``)."""
        container = self._ready_container()
        try:
            payload = container.download_blob(blob_name, timeout=self._timeout).readall()
        except _STORAGE_ERRORS as exc:
            raise TransientError(f"audit read failed: {exc.__class__.__name__}") from exc
        document: dict[str, Any] = json.loads(payload)
        return document

    def find_run(self, run_id: str) -> str | None:
        """The blob name of run ``run_id`` (one listing of ``runs/``), or ``None``."""
        suffix = f"-{run_id}.json"
        container = self._container or self._container_factory()  # reading creates nothing
        try:
            for item in container.list_blobs(name_starts_with=RUNS_PREFIX, timeout=self._timeout):
                if str(item.name).endswith(suffix):
                    return str(item.name)
        except ResourceNotFoundError:
            return None  # no container yet: no run
        except _STORAGE_ERRORS as exc:
            raise TransientError(f"audit list failed: {exc.__class__.__name__}") from exc
        return None

    def latest_run(self) -> dict[str, Any] | None:
        """The newest run's document (blob names sort by time; one listing of ``runs/``), or
        ``None`` when no run was recorded yet (the status page's lifecycle summary)."""
        container = self._container or self._container_factory()  # reading creates nothing
        try:
            names = [
                str(item.name)
                for item in container.list_blobs(
                    name_starts_with=RUNS_PREFIX, timeout=self._timeout
                )
            ]
        except ResourceNotFoundError:
            return None  # no container yet: no run
        except _STORAGE_ERRORS as exc:
            raise TransientError(f"audit list failed: {exc.__class__.__name__}") from exc
        return self.read_run(max(names)) if names else None

    def run_document(self, run_id: str) -> dict[str, Any] | None:
        """Run ``run_id``'s document (``shared.lifecycle.halt.RunLookup``), or ``None``."""
        name = self.find_run(run_id)
        return self.read_run(name) if name is not None else None

    def documents(self) -> BlobDocumentStore:
        """Small state documents next to the runs (``halt.json``), with compare-and-swap."""
        if self._documents is None:
            container = self._container or self._container_factory()  # created on first write
            self._documents = BlobDocumentStore(container, prefix="")
        return self._documents
