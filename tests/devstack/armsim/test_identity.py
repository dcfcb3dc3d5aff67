"""Managed identity (App Service protocol) and ARM authentication, with the real azure-identity."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential

from devstack.armsim.identity import decode_claims
from devstack.armsim.tenants import DEFAULT_TENANT_ID
from tests.devstack.armsim.conftest import (
    GALLERY,
    HTTP_TIMEOUT,
    IDENTITY_SECRET,
    RESOURCE_GROUP,
    ArmSim,
    RawArm,
    make_client,
    rg_path,
    seed_gallery,
)


def test_default_azure_credential_gets_a_token_and_arm_accepts_it(
    fresh: ArmSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", fresh.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_SECRET)
    seed_gallery(fresh)
    credential = DefaultAzureCredential()
    token = credential.get_token("https://management.azure.com/.default")
    claims = decode_claims(token.token)  # a JWT shaped like Entra's, for the default tenant
    assert claims is not None and claims["tid"] == DEFAULT_TENANT_ID
    assert claims["iss"] == f"https://sts.windows.net/{DEFAULT_TENANT_ID}/"
    client = make_client(fresh, credential)
    gallery = client.galleries.get(RESOURCE_GROUP, GALLERY)
    assert gallery.name == GALLERY
    assert gallery.identifier is not None
    assert gallery.identifier.unique_name.endswith("-GAL")


def test_token_endpoint_requires_the_identity_header(armsim: ArmSim) -> None:
    url = armsim.identity_endpoint
    params = {"api-version": "2019-08-01", "resource": "https://management.azure.com"}
    wrong = requests.get(
        url, params=params, headers={"X-IDENTITY-HEADER": "nope"}, timeout=HTTP_TIMEOUT
    )
    assert wrong.status_code == 400
    right = requests.get(
        url, params=params, headers={"X-IDENTITY-HEADER": IDENTITY_SECRET}, timeout=HTTP_TIMEOUT
    )
    assert right.status_code == 200
    body = right.json()
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://management.azure.com"
    assert int(body["expires_on"]) > 0


class _ForeignToken:
    """A credential whose tokens the simulator never issued."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        del scopes, kwargs
        return AccessToken("not-from-armsim", 4_102_444_800)


def test_unknown_bearer_token_gets_401_without_a_retry_loop(fresh: ArmSim) -> None:
    client = make_client(fresh, _ForeignToken())
    before = fresh.admin("GET", "/admin/stats")["armCallsTotal"]
    with pytest.raises(ClientAuthenticationError) as caught:
        client.galleries.get(RESOURCE_GROUP, GALLERY)
    assert caught.value.status_code == 401
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidAuthenticationToken"
    response: Any = caught.value.response
    assert response is not None
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    # rejected before the throttling/operation-group stage: nothing counted, no loop
    assert fresh.admin("GET", "/admin/stats")["armCallsTotal"] == before


def test_missing_authorization_header_gets_authentication_failed(armsim: ArmSim) -> None:
    reply = requests.get(
        armsim.base_url + rg_path("Microsoft.Compute/galleries", GALLERY),
        params={"api-version": "2026-03-03"},
        verify=str(armsim.cert),
        timeout=HTTP_TIMEOUT,
    )
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "AuthenticationFailed"
    assert reply.headers["WWW-Authenticate"].startswith("Bearer ")


def test_token_for_another_audience_is_rejected(armsim: ArmSim, raw: RawArm) -> None:
    token = armsim.admin("POST", "/admin/token", {"resource": "https://vault.azure.net"})
    reply = raw.session.get(
        armsim.base_url + rg_path("Microsoft.Compute/galleries"),
        params={"api-version": "2026-03-03"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=HTTP_TIMEOUT,
    )
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_arm_over_plain_http_is_refused_but_admin_is_served(armsim: ArmSim) -> None:
    plain = f"http://127.0.0.1:{armsim.port}"
    reply = requests.get(
        plain + rg_path("Microsoft.Compute/galleries"),
        params={"api-version": "2026-03-03"},
        timeout=HTTP_TIMEOUT,
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "HttpsRequired"
    assert requests.get(plain + "/admin/health", timeout=HTTP_TIMEOUT).status_code == 200
    tls = requests.get(
        armsim.base_url + "/admin/health", verify=str(armsim.cert), timeout=HTTP_TIMEOUT
    )
    assert tls.status_code == 200
