"""A :class:`shared.vhd.readers.RangeReader` over a blob: properties once, then small ranged GETs.

Why not ``BlobClient.download_blob(offset, length)``: for a *page* blob the SDK's downloader
follows its first ranged GET with an unpaged Get Page Ranges call over the whole blob (to skip
holes in big downloads, azure-sdk-for-python#7555). For a large fragmented VHD that list can be
megabytes and can time out, and preflight only needs 512 bytes. So
:meth:`BlobRangeReader.read_range` issues exactly one ``GET`` with ``x-ms-range`` through the
client's own generated operation (same pipeline, authentication, retries and error mapping),
checks for ``206 Partial Content``, and never keeps more than ``length`` bytes of the body.

:func:`blob_client_from_url` builds the client for a URL: a SAS in the URL is used as it is; a
URL under the configured storage connection string's blob endpoint (Azurite, account key) uses
that connection string (``localhost``, ``127.0.0.1`` and ``[::1]`` are one host); anything else
uses ``DefaultAzureCredential`` (managed identity), which Azure only accepts over HTTPS, so a plain
``http://`` URL without a SAS or a matching connection string is a clear error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient

from shared.core.errors import NotFoundError, PermanentError, PipelineError, TransientError
from shared.core.redaction import redact_secrets, strip_query

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.core.settings import Settings

logger = logging.getLogger(__name__)

#: Client defaults for reading VHDs: small single/chunk GET sizes so that no code path that uses
#: this client can pull a large part of a blob in one request by accident.
READER_CLIENT_DEFAULTS: Final[dict[str, Any]] = {
    "max_single_get_size": 64 * 1024,
    "max_chunk_get_size": 64 * 1024,
    "connection_timeout": 10,
    "read_timeout": 30,
    "retry_total": 3,
}
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_DEVELOPMENT_BLOB_ENDPOINT: Final = "http://127.0.0.1:10000/devstoreaccount1"


def _retry_after(error: HttpResponseError) -> float | None:
    response = error.response
    if response is None:
        return None
    headers: Any = getattr(response, "headers", {})
    raw = headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def translate_storage_error(error: AzureError, url: str, action: str) -> PipelineError:
    """Map an azure-core exception to :mod:`shared.core.errors`; ``url`` is printed without SAS."""
    where = strip_query(url)
    if isinstance(error, ResourceNotFoundError):
        return NotFoundError(f"{action}: blob not found: {where}", reason="BlobNotFound")
    if isinstance(error, ClientAuthenticationError):
        return PermanentError(
            f"{action}: access denied to {where} (an expired SAS, a SAS without read "
            "permission, or an identity without 'Storage Blob Data Reader')",
            reason="BlobAccessDenied",
        )
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return TransientError(
            f"{action}: storage unreachable for {where}: {error.__class__.__name__}",
            reason="StorageUnavailable",
        )
    if isinstance(error, HttpResponseError):
        status = error.status_code
        code = getattr(error, "error_code", None) or (error.reason or "")
        text = f"{action}: storage answered {status} {code} for {where}"
        if status in _TRANSIENT_STATUS:
            return TransientError(
                text, reason="StorageBusy", retry_after_seconds=_retry_after(error)
            )
        return PermanentError(text, reason=f"Storage{status or 'Error'}")
    return TransientError(
        f"{action}: {error.__class__.__name__} for {where}: {redact_secrets(str(error))[:200]}",
        reason="StorageError",
    )


class BlobRangeReader:
    """Reads ranges of one blob; counts ``reads``, ``bytes_read`` and HTTP ``requests``."""

    def __init__(self, blob_client: BlobClient, *, timeout_seconds: int = 30) -> None:
        self._client = blob_client
        self._timeout = timeout_seconds
        self._size: int | None = None
        self._blob_type: str | None = None
        self.bytes_read = 0
        self.reads = 0
        self.requests = 0

    @property
    def url(self) -> str:
        """The blob URL without its SAS query (safe to print and log)."""
        return strip_query(self._client.url)

    def __repr__(self) -> str:
        return f"BlobRangeReader({self.url!r})"

    def _load_properties(self) -> None:
        if self._size is not None:
            return
        self.requests += 1
        try:
            properties = self._client.get_blob_properties(timeout=self._timeout)
        except AzureError as error:
            raise translate_storage_error(
                error, self._client.url, "reading blob properties"
            ) from error
        self._size = int(properties.size)
        blob_type = properties.blob_type
        self._blob_type = str(getattr(blob_type, "value", blob_type)) if blob_type else None

    def size(self) -> int:
        self._load_properties()
        assert self._size is not None
        return self._size

    @property
    def blob_type(self) -> str | None:
        """``PageBlob``, ``BlockBlob`` or ``AppendBlob`` (from the same properties call)."""
        self._load_properties()
        return self._blob_type

    def read_range(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0:
            raise ValueError("offset must not be negative and length must be positive")
        end = offset + length - 1
        self.requests += 1

        def keep_response(pipeline_response: Any, body: Any, _headers: Any) -> tuple[Any, Any]:
            return pipeline_response.http_response, body

        try:
            # The generated "Get Blob" operation: one ranged GET, no Get Page Ranges follow-up.
            http_response, body = self._client._client.blob.download(
                snapshot=self._client.snapshot,
                range=f"bytes={offset}-{end}",
                timeout=self._timeout,
                cls=keep_response,
            )
            chunks: list[bytes] = []
            received = 0
            try:
                for chunk in body:
                    chunks.append(chunk)
                    received += len(chunk)
                    if received >= length:
                        break
            finally:
                http_response.close()
        except AzureError as error:
            raise translate_storage_error(
                error, self._client.url, "reading a blob range"
            ) from error
        if http_response.status_code != 206 and not (offset == 0 and received <= length):
            raise TransientError(
                f"reading a blob range: storage ignored the range request for {self.url} "
                f"(status {http_response.status_code})",
                reason="StorageRangeIgnored",
            )
        data = b"".join(chunks)[:length]
        self.reads += 1
        self.bytes_read += len(data)
        return data


# --------------------------------------------------------------------------------------------
# Building a client from a URL


def _parse_connection_string(connection_string: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def connection_string_blob_endpoint(connection_string: str) -> str | None:
    """The blob endpoint a storage connection string points at (Azurite or Azure)."""
    fields = _parse_connection_string(connection_string)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return _DEVELOPMENT_BLOB_ENDPOINT
    if "blobendpoint" in fields:
        return fields["blobendpoint"].rstrip("/")
    account = fields.get("accountname")
    if not account:
        return None
    protocol = fields.get("defaultendpointsprotocol", "https")
    suffix = fields.get("endpointsuffix", "core.windows.net")
    return f"{protocol}://{account}.blob.{suffix}"


#: Names of this machine: Azurite at ``localhost`` is the one at ``127.0.0.1``.
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_and_port(netloc: str) -> tuple[str, int | None]:
    """The host (loopback names as ``127.0.0.1``) and port of a URL's network location."""
    parts = urlsplit(f"//{netloc}")
    host = (parts.hostname or "").lower()
    return ("127.0.0.1" if host in _LOOPBACK_HOSTS else host), parts.port


def _container_and_blob(url: str, endpoint: str) -> tuple[str, str] | None:
    """Split ``url`` into (container, blob name) when it lies under ``endpoint``."""
    target, base = urlsplit(url), urlsplit(endpoint)
    if target.scheme.lower() != base.scheme.lower():
        return None
    if _host_and_port(target.netloc) != _host_and_port(base.netloc):
        return None
    base_path = base.path.rstrip("/") + "/"
    if not target.path.startswith(base_path):
        return None
    container, _, blob = target.path[len(base_path) :].partition("/")
    if not container or not blob:
        return None
    return unquote(container), unquote(blob)


def has_sas(url: str) -> bool:
    return "sig" in parse_qs(urlsplit(url).query)


def connection_string_covers(connection_string: str | None, url: str) -> bool:
    """Whether ``url`` lies under the blob endpoint of ``connection_string``."""
    if not connection_string:
        return False
    endpoint = connection_string_blob_endpoint(connection_string)
    return endpoint is not None and _container_and_blob(url, endpoint) is not None


def blob_client_from_url(
    url: str,
    settings: Settings | None = None,
    *,
    credential: TokenCredential | None = None,
    **client_options: Any,
) -> BlobClient:
    """A :class:`BlobClient` for ``url`` (see the module docstring for how it authenticates).

    ``client_options`` override :data:`READER_CLIENT_DEFAULTS` (e.g. ``retry_total=0``).
    """
    options = {**READER_CLIENT_DEFAULTS, **client_options}
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise PermanentError(f"not a blob URL: {strip_query(url)}", reason="InvalidBlobUrl")
    if has_sas(url):
        return BlobClient.from_blob_url(url, **options)
    connection_string = settings.storage_connection_string if settings else None
    if connection_string:
        endpoint = connection_string_blob_endpoint(connection_string)
        parts = _container_and_blob(url, endpoint) if endpoint else None
        if parts is not None:
            container, blob = parts
            logger.debug("using the storage connection string for %s", strip_query(url))
            return BlobClient.from_connection_string(
                connection_string, container_name=container, blob_name=blob, **options
            )
    if scheme == "http":
        endpoint = connection_string_blob_endpoint(connection_string) if connection_string else None
        configured = f"AzureWebJobsStorage points at {endpoint}" if endpoint else "none is set"
        raise PermanentError(
            f"an http:// blob URL needs a SAS in the URL or the storage connection string of its "
            f"endpoint ({configured}); for the local stack pass --settings local.settings.json: "
            f"{strip_query(url)}",
            reason="InvalidBlobUrl",
        )
    if credential is None:
        # azure.identity takes ~0.3 s to import: only when a credential is really needed.
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415

        credential = DefaultAzureCredential()
    try:
        return BlobClient.from_blob_url(url, credential=credential, **options)
    except ValueError as error:
        raise PermanentError(
            f"not a blob URL ({error}): {strip_query(url)}", reason="InvalidBlobUrl"
        ) from error


def open_blob_reader(
    url: str,
    settings: Settings | None = None,
    *,
    credential: TokenCredential | None = None,
    timeout_seconds: int = 30,
    **client_options: Any,
) -> BlobRangeReader:
    """A :class:`BlobRangeReader` for ``url``; nothing is sent until the first read."""
    client = blob_client_from_url(url, settings, credential=credential, **client_options)
    return BlobRangeReader(client, timeout_seconds=timeout_seconds)
