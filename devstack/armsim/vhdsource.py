"""Read a VHD source's footer from the blob service (Azurite) with range reads.

The blob URL in the version request is resolved against the storage account's blob endpoint;
the simulator reads with its configured connection string (Azurite's well-known key), at most
two 512-byte ranges, and checks the footer with :func:`shared.vhd.preflight.inspect_vhd`.
"""

from __future__ import annotations

from urllib.parse import unquote

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient

from devstack.armsim.store import StoredResource
from shared.vhd.preflight import inspect_vhd

BLOB_TIMEOUT_SECONDS = 10


class BlobRangeReader:
    """A ``shared.vhd.readers.RangeReader`` over one blob; knows its blob type."""

    def __init__(self, blob: BlobClient) -> None:
        self._blob = blob
        self.bytes_read = 0
        self.reads = 0
        properties = blob.get_blob_properties(timeout=BLOB_TIMEOUT_SECONDS)
        self._size = int(properties.size)
        self._blob_type = str(properties.blob_type.value if properties.blob_type else "") or None

    @property
    def blob_type(self) -> str | None:
        return self._blob_type

    def size(self) -> int:
        return self._size

    def read_range(self, offset: int, length: int) -> bytes:
        data = self._blob.download_blob(
            offset=offset, length=length, timeout=BLOB_TIMEOUT_SECONDS
        ).readall()
        self.reads += 1
        self.bytes_read += len(data)
        return data


class BlobVhdInspector:
    """Callable ``(blob_url, storage_account) -> (virtual_size, problems)``."""

    def __init__(self, connection_string: str) -> None:
        self._service = BlobServiceClient.from_connection_string(
            connection_string, retry_total=1, connection_timeout=5, read_timeout=10
        )

    def __call__(self, blob_url: str, account: StoredResource) -> tuple[int, list[str]]:
        endpoint = str(account.body["properties"]["primaryEndpoints"]["blob"]).rstrip("/")
        relative = unquote(blob_url[len(endpoint) + 1 :])
        container, _, blob_name = relative.partition("/")
        if not container or not blob_name:
            raise LookupError(blob_url)
        blob = self._service.get_blob_client(container, blob_name)
        try:
            reader = BlobRangeReader(blob)
            report = inspect_vhd(reader)
        except ResourceNotFoundError:
            raise LookupError(blob_url) from None
        problems = [problem.message for problem in report.problems]
        return int(report.virtual_size or 0), problems
