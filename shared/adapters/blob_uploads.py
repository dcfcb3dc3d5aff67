"""Upload blobs for intake over azure-storage-blob: properties, manifests, the VHD footer.

:class:`BlobUploads` implements :class:`shared.intake.ports.UploadBlobs`. It never downloads a
VHD:
``state`` is one HEAD (Get Blob Properties), ``inspect_vhd`` one HEAD and one 512-byte ranged GET
(:mod:`shared.adapters.blob_range_reader`), and ``read_small`` reads at most ``max_bytes + 1``
bytes of a manifest. One ``BlobServiceClient`` is kept per storage endpoint: from the app's
storage connection string when it points at that endpoint (Azurite, or the app's own account),
otherwise with the managed identity (``Storage Blob Data Reader`` on the upload account).

The intake's pending and done records live in a
:class:`~shared.adapters.blob_document_store.BlobDocumentStore` of their own container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobServiceClient

from shared.adapters.blob_range_reader import (
    READER_CLIENT_DEFAULTS,
    BlobRangeReader,
    connection_string_blob_endpoint,
    translate_storage_error,
)
from shared.core.blob_urls import InvalidBlobUrl, parse_blob_url
from shared.core.errors import PermanentError
from shared.core.redaction import strip_query
from shared.core.settings import Settings
from shared.intake.ports import BlobState, SmallBlob
from shared.vhd.preflight import VhdReport, inspect_vhd

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

#: Seconds per storage call (the SDK's own retries are bounded by READER_CLIENT_DEFAULTS).
TIMEOUT_SECONDS = 30


class BlobUploads:
    """:class:`shared.intake.ports.UploadBlobs` over azure-storage-blob (see the module
    docstring)."""

    def __init__(self, settings: Settings, credential: Callable[[], TokenCredential]) -> None:
        self._settings = settings
        self._credential = credential
        self._services: dict[str, BlobServiceClient] = {}
        self._lock = threading.Lock()

    def _service(self, endpoint: str) -> BlobServiceClient:
        with self._lock:
            service = self._services.get(endpoint)
            if service is not None:
                return service
            connection = self._settings.storage_connection_string
            own = connection_string_blob_endpoint(connection) if connection else None
            if connection and own and own.rstrip("/").lower() == endpoint.rstrip("/").lower():
                service = BlobServiceClient.from_connection_string(
                    connection, **READER_CLIENT_DEFAULTS
                )
            else:
                service = BlobServiceClient(
                    endpoint, credential=self._credential(), **READER_CLIENT_DEFAULTS
                )
            self._services[endpoint] = service
            return service

    def _client(self, url: str) -> BlobClient:
        try:
            blob = parse_blob_url(url, self._settings.vhd_storage_endpoints)
        except InvalidBlobUrl as exc:
            raise PermanentError(str(exc), reason="InvalidBlobUrl") from None
        return self._service(blob.endpoint).get_blob_client(blob.container, blob.blob_name)

    def state(self, url: str) -> BlobState | None:
        client = self._client(url)
        try:
            properties = client.get_blob_properties(timeout=TIMEOUT_SECONDS)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise translate_storage_error(error, url, "reading blob properties") from error
        blob_type = properties.blob_type
        copy_status = properties.copy.status if properties.copy is not None else None
        return BlobState(
            url=strip_query(url),
            blob_type=str(getattr(blob_type, "value", blob_type) or ""),
            size=int(properties.size),
            etag=str(properties.etag).strip('"'),
            metadata={str(k).lower(): str(v) for k, v in (properties.metadata or {}).items()},
            copy_status=str(getattr(copy_status, "value", copy_status)) if copy_status else None,
        )

    def read_small(self, url: str, *, max_bytes: int) -> SmallBlob | None:
        client = self._client(url)
        try:
            downloader = client.download_blob(
                offset=0, length=max_bytes + 1, max_concurrency=1, timeout=TIMEOUT_SECONDS
            )
            content = downloader.readall()
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:
            if error.status_code == 416:  # an empty blob has no byte 0
                return SmallBlob(b"", "")
            raise translate_storage_error(error, url, "reading a manifest") from error
        except AzureError as error:
            raise translate_storage_error(error, url, "reading a manifest") from error
        return SmallBlob(bytes(content), str(downloader.properties.etag).strip('"'))

    def inspect_vhd(self, url: str) -> VhdReport:
        reader = BlobRangeReader(self._client(url), timeout_seconds=TIMEOUT_SECONDS)
        report = inspect_vhd(reader)
        logger.debug(
            "VHD footer of %s: %s (%d bytes read)",
            strip_query(url),
            report.detected_format,
            reader.bytes_read,
        )
        return report
