"""VHD preflight on page blobs in Azurite, through the real azure-storage-blob SDK."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)

from devstack.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from devstack.procs import free_port
from devstack.vhdgen import (
    bad_checksum_footer,
    dynamic_vhd_bytes,
    upload_block_blob,
    upload_fixed_vhd,
    upload_page_blob,
)
from shared.adapters.blob_range_reader import (
    BlobRangeReader,
    blob_client_from_url,
    connection_string_blob_endpoint,
    open_blob_reader,
)
from shared.cli.__main__ import main
from shared.core.errors import NotFoundError, PermanentError, TransientError
from shared.core.settings import Settings
from shared.vhd.footer import FOOTER_SIZE, GIB, MIB, build_fixed_footer
from shared.vhd.preflight import DetectedFormat, inspect_vhd
from tests.conftest import AzuriteInstance

SDK_TIMEOUT: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 0}


@dataclass
class RequestLog:
    """Every HTTP request the SDK sends (method, URL, range header)."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __call__(self, request: Any) -> None:
        http = request.http_request
        self.requests.append((http.method, http.url, http.headers.get("x-ms-range")))


@pytest.fixture(scope="module")
def container(azurite: AzuriteInstance) -> Iterator[ContainerClient]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string, **SDK_TIMEOUT)
    client = service.get_container_client(f"vhds-{uuid.uuid4().hex[:8]}")
    client.create_container(timeout=10)
    yield client
    client.delete_container(timeout=10)


def new_blob(container: ContainerClient, name: str) -> BlobClient:
    return container.get_blob_client(f"{name}-{uuid.uuid4().hex[:6]}.vhd")


def reader_for(azurite: AzuriteInstance, blob: BlobClient, log: RequestLog) -> BlobRangeReader:
    settings = Settings(storage_connection_string=azurite.connection_string)
    return open_blob_reader(blob.url, settings, raw_request_hook=log, **SDK_TIMEOUT)


def test_64_gib_page_blob_is_checked_with_two_small_requests(
    azurite: AzuriteInstance, container: ContainerClient
) -> None:
    blob = new_blob(container, "big")
    size = upload_fixed_vhd(blob, 64 * GIB, content=b"MBR!" * 128, timeout=10)
    log = RequestLog()
    reader = reader_for(azurite, blob, log)
    report = inspect_vhd(reader)
    assert report.ok, report.problems
    assert report.blob_type == "PageBlob"
    assert report.file_size == size == 64 * GIB + FOOTER_SIZE
    assert report.virtual_size == 64 * GIB
    assert (reader.reads, reader.bytes_read, reader.requests) == (1, 512, 2)
    methods = [(method, byte_range) for method, _, byte_range in log.requests]
    assert methods == [("HEAD", None), ("GET", f"bytes={64 * GIB}-{64 * GIB + 511}")]
    assert not any("comp=pagelist" in url for _, url, _ in log.requests)


def test_block_blob_is_rejected_as_the_wrong_blob_type(
    azurite: AzuriteInstance, container: ContainerClient
) -> None:
    blob = new_blob(container, "block")
    upload_block_blob(blob, bytes(MIB) + build_fixed_footer(MIB), timeout=10)
    report = inspect_vhd(reader_for(azurite, blob, RequestLog()))
    assert report.blob_type == "BlockBlob"
    rules = [problem.rule for problem in report.problems]
    assert rules[0] == "page-blob-required"
    assert "the gallery needs a page blob" in report.problems[0].message
    assert "virtual-size-range" in rules  # the footer is still checked


def test_unfinished_upload_has_no_footer_yet(
    azurite: AzuriteInstance, container: ContainerClient
) -> None:
    blob = new_blob(container, "unfinished")
    blob.create_page_blob(size=30 * MIB + FOOTER_SIZE, timeout=10)
    blob.upload_page(b"\x33" * 512, offset=0, length=512, timeout=10)
    log = RequestLog()
    reader = reader_for(azurite, blob, log)
    report = inspect_vhd(reader)
    assert report.detected_format is DetectedFormat.RAW_OR_UNFINISHED
    assert "upload is unfinished" in report.problems[0].message
    assert (reader.reads, reader.bytes_read) == (2, 1024)
    ranges = [byte_range for _, _, byte_range in log.requests]
    assert ranges == [None, f"bytes={30 * MIB}-{30 * MIB + 511}", "bytes=0-511"]


def test_dynamic_and_corrupted_blobs_are_rejected(
    azurite: AzuriteInstance, container: ContainerClient
) -> None:
    dynamic = new_blob(container, "dynamic")
    upload_page_blob(dynamic, dynamic_vhd_bytes(40 * MIB), timeout=10)
    report = inspect_vhd(reader_for(azurite, dynamic, RequestLog()))
    assert [p.rule for p in report.problems] == ["fixed-disk-type"]

    corrupted = new_blob(container, "corrupted")
    upload_fixed_vhd(corrupted, 40 * MIB, footer=bad_checksum_footer(40 * MIB), timeout=10)
    report = inspect_vhd(reader_for(azurite, corrupted, RequestLog()))
    assert [p.rule for p in report.problems] == ["footer-checksum"]


def sas_url(blob: BlobClient) -> str:
    token = generate_blob_sas(
        account_name=ACCOUNT_NAME,
        container_name=blob.container_name,
        blob_name=blob.blob_name,
        account_key=ACCOUNT_KEY,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{blob.url}?{token}"


def test_sas_url_is_used_and_never_printed(
    container: ContainerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = new_blob(container, "sas")
    upload_fixed_vhd(blob, 21 * MIB, timeout=10)
    url = sas_url(blob)
    client = blob_client_from_url(url, Settings(), **SDK_TIMEOUT)
    # The SAS from the URL authenticates the requests; no DefaultAzureCredential is involved.
    assert client.credential is None
    assert "sig=" in client.url
    assert inspect_vhd(BlobRangeReader(client, timeout_seconds=10)).ok
    anonymous = BlobClient.from_blob_url(blob.url, **SDK_TIMEOUT)
    with pytest.raises(PermanentError):  # without the SAS the private blob is not readable
        inspect_vhd(BlobRangeReader(anonymous, timeout_seconds=10))
    assert main(["validate-vhd", "--json", url]) == 0
    out = capsys.readouterr().out
    assert "sig=" not in out
    payload = json.loads(out)
    assert payload["source"] == blob.url
    assert payload["valid"] is True
    assert payload["blobType"] == "PageBlob"


def test_missing_blob_is_not_found_without_the_sas(
    container: ContainerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = new_blob(container, "missing")
    url = sas_url(blob)
    reader = open_blob_reader(url, Settings(), **SDK_TIMEOUT)
    with pytest.raises(NotFoundError) as caught:
        inspect_vhd(reader)
    assert blob.url in caught.value.message
    assert "sig=" not in caught.value.message
    assert main(["validate-vhd", url]) == 4  # not found
    err = capsys.readouterr().err
    assert "blob not found" in err
    assert "sig=" not in err


def test_cli_uses_the_connection_string_for_azurite_urls(
    azurite: AzuriteInstance,
    container: ContainerClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blob = new_blob(container, "cli")
    upload_fixed_vhd(blob, 21 * MIB + 512, timeout=10)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    assert main(["validate-vhd", blob.url]) == 1
    out = capsys.readouterr().out
    assert "[mib-aligned-size]" in out
    assert "512 bytes over 21 MiB" in out
    assert "blob type     PageBlob" in out


def test_unreachable_storage_is_transient() -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}/vhds/disk.vhd"
    settings = Settings(
        storage_connection_string=(
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
        )
    )
    reader = open_blob_reader(url, settings, **SDK_TIMEOUT)
    with pytest.raises(TransientError) as caught:
        inspect_vhd(reader)
    assert caught.value.reason == "StorageUnavailable"


def test_wrong_key_is_a_permanent_access_error(
    azurite: AzuriteInstance, container: ContainerClient
) -> None:
    blob = new_blob(container, "denied")
    upload_fixed_vhd(blob, 21 * MIB, timeout=10)
    wrong_key = azurite.connection_string.replace(ACCOUNT_KEY, "A" * 86 + "==")
    reader = open_blob_reader(
        blob.url, Settings(storage_connection_string=wrong_key), **SDK_TIMEOUT
    )
    with pytest.raises(PermanentError) as caught:
        inspect_vhd(reader)
    assert not isinstance(caught.value, TransientError)
    assert "AccountKey" not in caught.value.message


def test_connection_string_endpoints() -> None:
    assert (
        connection_string_blob_endpoint(
            "AccountName=acct;AccountKey=x;EndpointSuffix=core.windows.net"
        )
        == "https://acct.blob.core.windows.net"
    )
    assert connection_string_blob_endpoint("UseDevelopmentStorage=true") == (
        "http://127.0.0.1:10000/devstoreaccount1"
    )
    assert connection_string_blob_endpoint("AccountKey=x") is None
