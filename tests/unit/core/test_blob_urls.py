from __future__ import annotations

import pytest

from shared.core.blob_urls import InvalidBlobUrl, is_loopback_endpoint, parse_blob_url

HOST_STYLE = "https://{account}.blob.core.windows.net"
PATH_STYLE = "http://127.0.0.1:10000/{account}"
ENDPOINTS = (HOST_STYLE, PATH_STYLE)


def test_host_style_url() -> None:
    blob = parse_blob_url("https://acct01.blob.core.windows.net/vhds/os/disk.vhd", ENDPOINTS)
    assert (blob.account, blob.container, blob.blob_name) == ("acct01", "vhds", "os/disk.vhd")
    assert blob.endpoint == "https://acct01.blob.core.windows.net"
    assert blob.is_https
    assert not blob.is_loopback


def test_path_style_url_on_azurite() -> None:
    blob = parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd", ENDPOINTS)
    assert (blob.account, blob.container, blob.blob_name) == ("devstoreaccount1", "vhds", "a.vhd")
    assert blob.endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert blob.is_loopback


def test_sas_is_kept_in_url_but_not_in_url_without_query_or_repr() -> None:
    url = "https://acct01.blob.core.windows.net/vhds/a.vhd?sv=2024-01-01&sig=SECRETSIG"
    blob = parse_blob_url(url, ENDPOINTS)
    assert blob.url == url
    assert blob.has_query
    assert blob.url_without_query == "https://acct01.blob.core.windows.net/vhds/a.vhd"
    assert "SECRETSIG" not in repr(blob)


def test_percent_encoded_blob_names_are_decoded() -> None:
    blob = parse_blob_url("https://acct01.blob.core.windows.net/vhds/my%20disk.vhd", ENDPOINTS)
    assert blob.blob_name == "my disk.vhd"


def test_host_matching_is_case_insensitive() -> None:
    blob = parse_blob_url("https://ACCT01.Blob.Core.Windows.Net/vhds/a.vhd", ENDPOINTS)
    assert blob.account == "acct01"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://acct01.blob.core.windows.net/vhds", "not under a configured"),
        ("https://acct01.blob.core.windows.net/vhds/", "blob name"),
        ("https://acct01.evil.example/vhds/a.vhd", "not under a configured"),
        ("https://a.b.blob.core.windows.net/vhds/a.vhd", "not under a configured"),
        ("http://acct01.blob.core.windows.net/vhds/a.vhd", "not under a configured"),
        ("http://127.0.0.1:10001/devstoreaccount1/vhds/a.vhd", "not under a configured"),
        ("ftp://acct01.blob.core.windows.net/vhds/a.vhd", "not an http"),
        ("https://AB.blob.core.windows.net/vhds/a.vhd", "storage account name"),
        ("https://acct01.blob.core.windows.net/Vhds/a.vhd", "container name"),
        ("https://acct01.blob.core.windows.net/v--x/a.vhd", "container name"),
        ("https://user:pw@acct01.blob.core.windows.net/vhds/a.vhd", "credentials"),
        ("https://acct01.blob.core.windows.net:99999/vhds/a.vhd", "not a valid URL"),
    ],
)
def test_rejects_urls_outside_the_endpoints(url: str, reason: str) -> None:
    with pytest.raises(InvalidBlobUrl, match=reason):
        parse_blob_url(url, ENDPOINTS)


def test_error_messages_never_contain_the_sas() -> None:
    url = "https://acct01.evil.example/vhds/a.vhd?sig=TOPSECRET"
    with pytest.raises(InvalidBlobUrl) as caught:
        parse_blob_url(url, ENDPOINTS)
    assert "TOPSECRET" not in str(caught.value)
    assert "acct01.evil.example" in str(caught.value)


def test_loopback_endpoint_detection() -> None:
    assert is_loopback_endpoint(PATH_STYLE)
    assert not is_loopback_endpoint(HOST_STYLE)


@pytest.mark.parametrize(
    "template", ["https://blob.example", "ftp://{account}.x", "https://{account}.x/{account}"]
)
def test_bad_templates_are_rejected(template: str) -> None:
    with pytest.raises(ValueError, match="template"):
        parse_blob_url("https://acct01.x/c1c/a.vhd", (template,))
