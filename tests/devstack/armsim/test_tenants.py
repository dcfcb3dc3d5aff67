"""Tenants: subscriptions per tenant, tokens of a tenant, the Entra-shaped token endpoint, and
cross-tenant sources with ``x-ms-authorization-auxiliary`` — raw HTTP and the real SDKs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientAssertionCredential, ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import GalleryImageVersion
from azure.mgmt.core.policies import AuxiliaryAuthenticationPolicy

from devstack.armsim.identity import MSI_OBJECT_ID, decode_claims, v2_issuer
from devstack.armsim.tenants import DEFAULT_TENANT_ID
from tests.devstack.armsim.conftest import (
    GALLERY,
    HTTP_TIMEOUT,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    SDK_TIMEOUTS,
    SUBSCRIPTION,
    ArmSim,
    RawArm,
    make_client,
    seed_gallery,
    snapshot_version_body,
)

TENANT_B = "bbbbbbbb-0000-4000-8000-00000000000b"
SUB_B = "00000000-0000-0000-0000-0000000000bb"
APP_ID = "aaaaaaaa-1111-4111-8111-0000000000a1"
OTHER_APP = "aaaaaaaa-1111-4111-8111-0000000000a2"
SECRET = "s3cret-value"
ARM_SCOPE = "https://management.azure.com/.default"


class StaticToken:
    """A credential that hands out one token (tokens from ``/admin/token``)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del scopes, kwargs
        return AccessToken(self._token, int(time.time()) + 3600)


def declare(sim: ArmSim, *, apps: bool = True) -> None:
    """Subscription B in tenant B; the app registration with a service principal in both."""
    body: dict[str, Any] = {
        "subscriptions": [{"subscriptionId": SUB_B, "tenantId": TENANT_B, "displayName": "B"}]
    }
    if apps:
        body["applications"] = [
            {
                "appId": APP_ID,
                "displayName": "gallery-pipeline-cross-tenant",
                "tenants": [DEFAULT_TENANT_ID, TENANT_B],
                "secrets": [SECRET],
                "federatedCredentials": [
                    {"issuer": v2_issuer(DEFAULT_TENANT_ID), "subject": MSI_OBJECT_ID}
                ],
            },
            {"appId": OTHER_APP, "tenants": [DEFAULT_TENANT_ID, TENANT_B], "secret": "other"},
        ]
    sim.admin("POST", "/admin/seed", body)


def token(sim: ArmSim, tenant: str = DEFAULT_TENANT_ID, client: str | None = None) -> str:
    body: dict[str, Any] = {"tenantId": tenant}
    if client:
        body["clientId"] = client
    found: str = sim.admin("POST", "/admin/token", body)["access_token"]
    return found


def seed_foreign_snapshot(sim: ArmSim, name: str = "snap-b") -> str:
    snapshot_id = (
        f"/subscriptions/{SUB_B}/resourceGroups/rg-b/providers/Microsoft.Compute/snapshots/{name}"
    )
    sim.seed(
        {
            "id": snapshot_id,
            "location": LOCATION,
            "properties": {"diskSizeGB": 4, "osType": "Linux", "hyperVGeneration": "V2"},
        }
    )
    return snapshot_id


@pytest.fixture
def session(fresh: ArmSim) -> Iterator[requests.Session]:
    with requests.Session() as plain:
        plain.trust_env = False
        plain.verify = str(fresh.cert)
        yield plain


def version_url(sim: ArmSim, name: str) -> str:
    return f"{sim.base_url}{IMAGE_ID}/versions/{name}?api-version=2026-03-03"


# ------------------------------------------------------------------------------- subscriptions
def test_a_subscription_shows_its_tenant_as_the_subscriptions_api_does(
    fresh: ArmSim, raw: RawArm
) -> None:
    declare(fresh, apps=False)
    default = raw.call("GET", f"/subscriptions/{SUBSCRIPTION}", api_version="2022-12-01")
    assert default.status_code == 200
    body = default.json()
    assert body["tenantId"] == DEFAULT_TENANT_ID
    assert body["state"] == "Enabled"
    assert body["id"] == f"/subscriptions/{SUBSCRIPTION}"
    assert set(body) >= {"subscriptionId", "displayName", "authorizationSource"}

    foreign_token = token(fresh, TENANT_B)
    answer = requests.get(
        f"{fresh.base_url}/subscriptions/{SUB_B}",
        params={"api-version": "2022-12-01"},
        headers={"Authorization": f"Bearer {foreign_token}"},
        verify=str(fresh.cert),
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 200
    assert answer.json()["tenantId"] == TENANT_B
    assert answer.json()["displayName"] == "B"
    listed = requests.get(
        f"{fresh.base_url}/subscriptions",
        params={"api-version": "2022-12-01"},
        headers={"Authorization": f"Bearer {foreign_token}"},
        verify=str(fresh.cert),
        timeout=HTTP_TIMEOUT,
    )
    assert [s["subscriptionId"] for s in listed.json()["value"]] == [SUB_B]
    wrong_version = raw.call("GET", f"/subscriptions/{SUBSCRIPTION}", api_version="2026-03-03")
    assert wrong_version.status_code == 400


def test_tokens_are_entra_shaped_jwts_of_their_tenant(fresh: ArmSim) -> None:
    declare(fresh)
    claims = decode_claims(token(fresh, TENANT_B, APP_ID))
    assert claims is not None
    assert claims["tid"] == TENANT_B
    assert claims["iss"] == f"https://sts.windows.net/{TENANT_B}/"
    assert claims["appid"] == APP_ID
    assert claims["aud"] == "https://management.azure.com"
    assert claims["nbf"] <= time.time() < claims["exp"]
    assert claims["oid"]


def test_a_token_of_another_tenant_is_refused_with_azures_wrong_issuer_error(
    fresh: ArmSim, session: requests.Session
) -> None:
    declare(fresh, apps=False)
    seed_gallery(fresh)
    answer = session.get(
        f"{fresh.base_url}{IMAGE_ID}?api-version=2026-03-03",
        headers={"Authorization": f"Bearer {token(fresh, TENANT_B)}"},
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "InvalidAuthenticationTokenTenant"
    assert error["message"].startswith(
        f"The access token is from the wrong issuer 'https://sts.windows.net/{TENANT_B}/'. It "
        f"must match the tenant 'https://sts.windows.net/{DEFAULT_TENANT_ID}/' associated with "
        "this subscription."
    )
    assert f"https://login.windows.net/{DEFAULT_TENANT_ID}" in answer.headers["WWW-Authenticate"]

    client = make_client(fresh, StaticToken(token(fresh, TENANT_B)), retry_total=0)
    with pytest.raises(ClientAuthenticationError) as raised:
        client.gallery_images.get(RESOURCE_GROUP, GALLERY, IMAGE)
    assert "wrong issuer" in str(raised.value)


# ------------------------------------------------------------------------------ Entra endpoint
def test_client_secret_credential_gets_tokens_from_the_simulator_as_authority(
    fresh: ArmSim,
) -> None:
    declare(fresh)
    seed_foreign_snapshot(fresh)
    credential = ClientSecretCredential(
        TENANT_B,
        APP_ID,
        SECRET,
        authority=fresh.base_url,
        disable_instance_discovery=True,  # MSAL asks login.microsoftonline.com otherwise
        connection_verify=str(fresh.cert),
    )
    access = credential.get_token(ARM_SCOPE)
    claims = decode_claims(access.token)
    assert claims is not None and claims["tid"] == TENANT_B and claims["appid"] == APP_ID
    compute = ComputeManagementClient(
        credential,
        SUB_B,
        base_url=fresh.base_url,
        connection_verify=str(fresh.cert),
        **SDK_TIMEOUTS,
    )
    assert compute.snapshots.get("rg-b", "snap-b").disk_size_gb == 4

    wrong = ClientSecretCredential(
        TENANT_B,
        APP_ID,
        "not-the-secret",
        authority=fresh.base_url,
        disable_instance_discovery=True,
        connection_verify=str(fresh.cert),
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        wrong.get_token(ARM_SCOPE)
    stranger = ClientSecretCredential(
        TENANT_B,
        "cccccccc-0000-4000-8000-000000000000",
        SECRET,
        authority=fresh.base_url,
        disable_instance_discovery=True,
        connection_verify=str(fresh.cert),
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        stranger.get_token(ARM_SCOPE)


def test_client_assertion_credential_exchanges_the_managed_identity_token(
    fresh: ArmSim,
) -> None:
    declare(fresh)
    assertion = fresh.admin("POST", "/admin/token", {"resource": "api://AzureADTokenExchange"})[
        "access_token"
    ]
    claims = decode_claims(assertion)
    assert claims is not None
    assert claims["iss"] == v2_issuer(DEFAULT_TENANT_ID) and claims["sub"] == MSI_OBJECT_ID
    credential = ClientAssertionCredential(
        TENANT_B,
        APP_ID,
        lambda: assertion,
        authority=fresh.base_url,
        disable_instance_discovery=True,
        connection_verify=str(fresh.cert),
    )
    exchanged = decode_claims(credential.get_token(ARM_SCOPE).token)
    assert exchanged is not None and exchanged["tid"] == TENANT_B
    untrusted = ClientAssertionCredential(
        TENANT_B,
        OTHER_APP,  # no federated credential for the managed identity
        lambda: assertion,
        authority=fresh.base_url,
        disable_instance_discovery=True,
        connection_verify=str(fresh.cert),
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS700213"):
        untrusted.get_token(ARM_SCOPE)


def test_oidc_discovery_and_token_endpoint_answer_like_entra(
    fresh: ArmSim, session: requests.Session
) -> None:
    declare(fresh)
    config = session.get(
        f"{fresh.base_url}/{TENANT_B}/v2.0/.well-known/openid-configuration", timeout=HTTP_TIMEOUT
    )
    assert config.status_code == 200
    assert config.json()["token_endpoint"] == f"{fresh.base_url}/{TENANT_B}/oauth2/v2.0/token"
    assert config.json()["issuer"] == f"{fresh.base_url}/{TENANT_B}/v2.0"
    unknown = session.get(
        f"{fresh.base_url}/dddddddd-0000-4000-8000-000000000000/v2.0/.well-known/"
        "openid-configuration",
        timeout=HTTP_TIMEOUT,
    )
    assert unknown.status_code == 400 and "AADSTS90002" in unknown.json()["error_description"]
    form = {
        "grant_type": "client_credentials",
        "client_id": APP_ID,
        "client_secret": SECRET,
        "scope": ARM_SCOPE,
    }
    answer = session.post(
        f"{fresh.base_url}/{TENANT_B}/oauth2/v2.0/token", data=form, timeout=HTTP_TIMEOUT
    )
    assert answer.status_code == 200
    assert set(answer.json()) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    bad = session.post(
        f"{fresh.base_url}/{TENANT_B}/oauth2/v2.0/token",
        data={**form, "client_secret": "nope"},
        timeout=HTTP_TIMEOUT,
    )
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client" and bad.json()["error_codes"] == [7000215]
    no_scope = session.post(
        f"{fresh.base_url}/{TENANT_B}/oauth2/v2.0/token",
        data={**form, "scope": "https://management.azure.com"},
        timeout=HTTP_TIMEOUT,
    )
    assert no_scope.status_code == 400 and no_scope.json()["error"] == "invalid_scope"


# -------------------------------------------------------------------------- linked resources
def test_a_source_in_another_tenant_needs_an_auxiliary_token_of_that_tenant(
    fresh: ArmSim, session: requests.Session
) -> None:
    declare(fresh)
    seed_gallery(fresh)
    source = seed_foreign_snapshot(fresh)
    primary = token(fresh, DEFAULT_TENANT_ID, APP_ID)
    body = snapshot_version_body(source)

    def put(name: str, auxiliary: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {primary}"}
        if auxiliary is not None:
            headers["x-ms-authorization-auxiliary"] = auxiliary
        return session.put(
            version_url(fresh, name), json=body, headers=headers, timeout=HTTP_TIMEOUT
        )

    missing = put("1.0.0", None)
    assert missing.status_code == 403
    error = missing.json()["error"]
    assert error["code"] == "LinkedAuthorizationFailed"
    assert error["message"] == (
        "The client has permission to perform action 'Microsoft.Compute/snapshots/read' on "
        f"scope '{IMAGE_ID}/versions/1.0.0', however the current tenant '{DEFAULT_TENANT_ID}' "
        f"is not authorized to access linked subscription '{SUB_B}'."
    )
    other_app = put("1.0.0", f"Bearer {token(fresh, TENANT_B, OTHER_APP)}")
    assert other_app.status_code == 403  # every token must be the same application's
    wrong_tenant = put("1.0.0", f"Bearer {token(fresh, DEFAULT_TENANT_ID, APP_ID)}")
    assert wrong_tenant.status_code == 403
    forged = put("1.0.0", "Bearer not-a-token")
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    good = put("1.0.0", f"Bearer {token(fresh, TENANT_B, APP_ID)}")
    assert good.status_code == 201, good.text
    body = snapshot_version_body(seed_foreign_snapshot(fresh, "snap-b2"))
    several = (
        f"Bearer {token(fresh, DEFAULT_TENANT_ID, APP_ID)}; Bearer {token(fresh, TENANT_B, APP_ID)}"
    )
    assert put("1.0.1", several).status_code == 201  # azure-cli's ';' separator works too
    four = ", ".join([f"Bearer {token(fresh, TENANT_B, APP_ID)}"] * 4)
    assert put("1.0.2", four).status_code == 401  # at most three auxiliary tokens


def test_the_sdk_sends_auxiliary_tokens_through_the_auxiliary_policy(fresh: ArmSim) -> None:
    declare(fresh)
    seed_gallery(fresh)
    source = seed_foreign_snapshot(fresh)
    primary = StaticToken(token(fresh, DEFAULT_TENANT_ID, APP_ID))
    without = make_client(fresh, primary, retry_total=0)
    with pytest.raises(HttpResponseError) as refused:
        without.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP,
            GALLERY,
            IMAGE,
            "1.0.0",
            GalleryImageVersion(snapshot_version_body(source)),
        )
    assert refused.value.status_code == 403
    assert (
        refused.value.error is not None and refused.value.error.code == "LinkedAuthorizationFailed"
    )

    auxiliary = StaticToken(token(fresh, TENANT_B, APP_ID))
    policy = AuxiliaryAuthenticationPolicy([auxiliary], ARM_SCOPE)
    with_aux = make_client(fresh, primary, per_retry_policies=[policy])
    poller = with_aux.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", GalleryImageVersion(snapshot_version_body(source))
    )
    assert poller.result(timeout=20).provisioning_state == "Succeeded"
