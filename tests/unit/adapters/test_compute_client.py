"""The compute client talks to the configured ARM endpoint with the configured token audience."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline import PipelineRequest

from shared.adapters.compute_gallery import build_compute_client
from shared.core.settings import Settings


class _Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("token", 2**31)


class _Sent(Exception):
    def __init__(self, url: str, authorization: str | None) -> None:
        super().__init__(url)
        self.url = url
        self.authorization = authorization


def _stop_before_sending(request: PipelineRequest[Any]) -> None:
    """The request hook runs after authentication: record the request and stop (no network)."""
    http = request.http_request
    raise _Sent(http.url, http.headers.get("Authorization"))


def _get_gallery(environ: dict[str, str]) -> tuple[_Credential, _Sent]:
    credential = _Credential()
    client = build_compute_client(
        Settings.from_env(environ),
        "sub",
        credential,
        raw_request_hook=_stop_before_sending,
        retry_total=0,
    )
    with pytest.raises(_Sent) as sent:
        client.galleries.get("rg", "g")
    return credential, sent.value


def test_a_sovereign_cloud_gets_its_endpoint_and_scope() -> None:
    credential, sent = _get_gallery(
        {
            "GALLERY_ARM_ENDPOINT": "https://management.usgovcloudapi.net",
            "GALLERY_ARM_AUDIENCE": "https://management.usgovcloudapi.net",
        }
    )
    assert sent.url.startswith(
        "https://management.usgovcloudapi.net/subscriptions/sub/resourceGroups/rg/"
    )
    assert sent.authorization == "Bearer token"
    assert credential.scopes == ["https://management.usgovcloudapi.net/.default"]


def test_the_public_cloud_is_the_default() -> None:
    credential, sent = _get_gallery({})
    assert sent.url.startswith("https://management.azure.com/subscriptions/sub/")
    assert credential.scopes == ["https://management.azure.com/.default"]
