"""The app's own blob service client, from ``AzureWebJobsStorage`` or its identity-based form."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.core.errors import PermanentError
from shared.core.settings import SettingName, Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["CLIENT_OPTIONS", "BlobServiceClient", "ContainerClient", "blob_service_client"]

#: Bounded SDK behaviour: a broken endpoint fails a call instead of hanging a function.
CLIENT_OPTIONS: Final[dict[str, Any]] = {
    "retry_total": 3,
    "connection_timeout": 10,
    "read_timeout": 30,
}


def blob_service_client(
    settings: Settings, credential: Callable[[], TokenCredential]
) -> BlobServiceClient:
    if settings.storage_connection_string:
        return BlobServiceClient.from_connection_string(
            settings.storage_connection_string, **CLIENT_OPTIONS
        )
    if settings.storage_blob_service_uri:
        return BlobServiceClient(
            settings.storage_blob_service_uri, credential=credential(), **CLIENT_OPTIONS
        )
    raise PermanentError(
        f"no storage connection: set {SettingName.STORAGE_CONNECTION} or "
        f"{SettingName.STORAGE_BLOB_SERVICE_URI}",
        reason="StorageNotConfigured",
    )
