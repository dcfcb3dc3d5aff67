"""Azurite from the npm registry answers the real azure-storage-blob SDK (range reads included)."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient

from tests.conftest import AzuriteInstance


def test_page_blob_tail_range_read(azurite: AzuriteInstance) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("smoke")
    if not container.exists():
        container.create_container()
    blob = container.get_blob_client("disk.vhd")
    blob.create_page_blob(size=4 * 1024 * 1024)
    blob.upload_page(b"\x01" * 512, offset=4 * 1024 * 1024 - 512, length=512)
    tail = blob.download_blob(offset=4 * 1024 * 1024 - 512, length=512).readall()
    assert tail == b"\x01" * 512
    assert blob.url.startswith(azurite.blob_endpoint)
