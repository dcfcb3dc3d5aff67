"""The lifecycle audit store on Azure Blob Storage: one JSON document per run.

A run's blob is ``runs/<UTC timestamp>-<run id>.json`` (the time of the run's first write, so
names sort by time). The plan is written first; the same blob is overwritten with plan + outcome
when the run ends, so a run that dies half-way still leaves its plan behind.
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
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient, ContentSettings

from shared.core.errors import TransientError

_JSON = ContentSettings(content_type="application/json")
RUNS_PREFIX = "runs/"


class BlobAuditStore:
    """:class:`shared.lifecycle.plan.AuditStore` over one container (created on first write)."""

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

    def _ready_container(self) -> ContainerClient:
        if self._container is not None:
            return self._container
        container = self._container_factory()
        try:
            container.create_container(timeout=self._timeout)
        except ResourceExistsError:
            pass
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
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
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            raise TransientError(f"audit write failed: {exc.__class__.__name__}") from exc

    def read_run(self, blob_name: str) -> dict[str, Any]:
        """One run's document (tests and ``galleryctl``)."""
        container = self._ready_container()
        try:
            payload = container.download_blob(blob_name, timeout=self._timeout).readall()
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            raise TransientError(f"audit read failed: {exc.__class__.__name__}") from exc
        document: dict[str, Any] = json.loads(payload)
        return document
