"""The ledger's store on Azure Blob Storage: one JSON block blob per key, ETag compare-and-swap."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient, ContentSettings

from shared.core.documents import StaleWrite
from shared.core.errors import TransientError

_JSON = ContentSettings(content_type="application/json")
#: Default blob name prefix: the per-source ledger. Other CAS documents use their own prefix.
SOURCES_PREFIX = "sources/"


class BlobDocumentStore:
    """:class:`shared.core.documents.DocumentStore` over one blob container (created on first use).

    Documents are blobs ``<prefix><key>.json``; the same store serves any keyed JSON document
    that needs compare-and-swap (build records, version reservations, pending uploads).
    """

    def __init__(
        self, container: ContainerClient, *, prefix: str = SOURCES_PREFIX, timeout_seconds: int = 30
    ) -> None:
        self._container = container
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._container_ready = False

    def _blob_name(self, key: str) -> str:
        return f"{self._prefix}{key}.json"

    def _ensure_container(self) -> None:
        if self._container_ready:
            return
        try:
            self._container.create_container(timeout=self._timeout)
        except ResourceExistsError:
            pass
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            raise TransientError(f"ledger container unavailable: {exc.__class__.__name__}") from exc
        self._container_ready = True

    def read(self, key: str) -> tuple[dict[str, Any], str] | None:
        blob = self._container.get_blob_client(self._blob_name(key))
        try:
            downloader = blob.download_blob(timeout=self._timeout)
            payload = downloader.readall()
        except ResourceNotFoundError:
            return None
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            raise TransientError(f"ledger read failed: {exc.__class__.__name__}") from exc
        etag = downloader.properties.etag
        document: dict[str, Any] = json.loads(payload)
        return document, etag

    def write(self, key: str, document: Mapping[str, Any], *, etag: str | None) -> str:
        self._ensure_container()
        blob = self._container.get_blob_client(self._blob_name(key))
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
        try:
            if etag is None:
                result = blob.upload_blob(
                    body, overwrite=False, content_settings=_JSON, timeout=self._timeout
                )
            else:
                result = blob.upload_blob(
                    body,
                    overwrite=True,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=_JSON,
                    timeout=self._timeout,
                )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise StaleWrite(key) from exc
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise StaleWrite(key) from exc
            raise TransientError(f"ledger write failed: HTTP {exc.status_code}") from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"ledger write failed: {exc.__class__.__name__}") from exc
        return str(result["etag"])

    def delete(self, key: str, *, etag: str | None) -> None:
        """Delete the document (only if unchanged, when ``etag`` is given); absent is fine."""
        blob = self._container.get_blob_client(self._blob_name(key))
        conditions: dict[str, Any] = (
            {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        )
        try:
            blob.delete_blob(timeout=self._timeout, **conditions)
        except ResourceNotFoundError:
            return
        except ResourceModifiedError as exc:
            raise StaleWrite(key) from exc
        except HttpResponseError as exc:
            if exc.status_code == 412:
                raise StaleWrite(key) from exc
            raise TransientError(f"document delete failed: HTTP {exc.status_code}") from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"document delete failed: {exc.__class__.__name__}") from exc

    def recent_keys(self, limit: int) -> list[str]:
        """Keys of the ``limit`` most recently written documents (and any written in the same
        second as the last of them), from the listing alone: 5,000 names per page, each with its
        Last-Modified; no document is read."""
        try:
            items = [
                (item.last_modified, item.name)
                for item in self._container.list_blobs(
                    name_starts_with=self._prefix, timeout=self._timeout
                )
            ]
        except ResourceNotFoundError:
            return []
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            raise TransientError(f"document list failed: {exc.__class__.__name__}") from exc
        if limit <= 0 or not items:
            return []
        items.sort(reverse=True)
        # Last-Modified has one-second resolution: keep every key tied with the last one taken,
        # so the caller's exact ordering (by the documents' own timestamps) misses nothing.
        cutoff = items[min(limit, len(items)) - 1][0]
        return [
            name[len(self._prefix) : -len(".json")] for moment, name in items if moment >= cutoff
        ]

    def list_keys(self) -> Iterator[str]:
        try:
            for item in self._container.list_blobs(
                name_starts_with=self._prefix, timeout=self._timeout
            ):
                name: str = item.name
                yield name[len(self._prefix) : -len(".json")]
        except ResourceNotFoundError:
            return
        except (ServiceRequestError, ServiceResponseError, HttpResponseError) as exc:
            raise TransientError(f"ledger list failed: {exc.__class__.__name__}") from exc
