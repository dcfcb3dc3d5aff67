"""An Entra-shaped token service for app registrations: client credentials and OIDC discovery.

azure-identity's ``ClientSecretCredential`` / ``ClientAssertionCredential`` (through MSAL) work
unchanged with ``authority="https://127.0.0.1:PORT"`` and ``disable_instance_discovery=True`` (MSAL
would otherwise ask ``login.microsoftonline.com`` whether the host is a known authority):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the tenant's OIDC metadata (MSAL's
  tenant discovery); an unknown tenant gets Entra's ``AADSTS90002``;
* ``GET /common/discovery/instance``: instance discovery, for clients pointed at it;
* ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``, ``client_id``,
  ``scope=<resource>/.default`` and either ``client_secret`` or ``client_assertion`` +
  ``client_assertion_type`` (a token the managed-identity endpoint issued for
  ``api://AzureADTokenExchange``, matching one of the app's federated credentials). The answer is
  ``{token_type, expires_in, ext_expires_in, access_token}``; errors are Entra's JSON
  (``error``, ``error_description`` with the AADSTS text, ``error_codes``...).

The application must be declared (``POST /admin/seed {"applications": [...]}``) with a service
principal in the tenant asked for.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from devstack.armsim.identity import TOKEN_EXCHANGE_AUDIENCE, IdentityService
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.tenants import Application, Directory, service_principal_id

JsonObject = dict[str, Any]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APP_TOKEN_LIFETIME_SECONDS = 3599
TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$", re.IGNORECASE)
OIDC_PATH = re.compile(
    r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$", re.IGNORECASE
)
INSTANCE_DISCOVERY_PATH = "/common/discovery/instance"


def is_entra_path(path: str) -> bool:
    return bool(
        TOKEN_PATH.match(path) or OIDC_PATH.match(path) or path.lower() == INSTANCE_DISCOVERY_PATH
    )


def entra_error(status: int, error: str, code: int, description: str) -> Reply:
    """Entra's error body: the AADSTS text with a trace id, correlation id and timestamp."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return Reply(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


class EntraService:
    """Serves the token, OIDC and instance-discovery endpoints."""

    def __init__(self, identity: IdentityService, directory: Directory, base_url: str) -> None:
        self._identity = identity
        self._directory = directory
        self._base_url = base_url

    def handle(self, request: Request) -> Reply:
        if request.path.lower() == INSTANCE_DISCOVERY_PATH and request.method == "GET":
            return self._instance_discovery(request)
        match = OIDC_PATH.match(request.path)
        if match and request.method == "GET":
            return self._openid_configuration(match.group("tenant"))
        match = TOKEN_PATH.match(request.path)
        if match and request.method == "POST":
            form = request.body if isinstance(request.body, dict) else {}
            return self._token(match.group("tenant"), {k: str(v) for k, v in form.items()})
        return Reply(405, {"error": "invalid_request", "error_description": "method not allowed"})

    def _tenant_known(self, tenant: str) -> bool:
        return tenant.lower() in self._directory.tenants()

    @staticmethod
    def _unknown_tenant(tenant: str) -> Reply:
        return entra_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud. Check with your subscription administrator, this "
            "may happen if there are no active subscriptions for the tenant.",
        )

    def _instance_discovery(self, request: Request) -> Reply:
        endpoint = request.query.get("authorization_endpoint", "")
        tenant = endpoint.rstrip("/").split("/")[-4] if endpoint.count("/") >= 6 else "common"
        host = self._base_url.split("://", 1)[1]
        return Reply(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{self._base_url}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    def _openid_configuration(self, tenant: str) -> Reply:
        if not self._tenant_known(tenant):
            return self._unknown_tenant(tenant)
        base = f"{self._base_url}/{tenant}"
        return Reply(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            },
        )

    def _token(self, tenant: str, form: dict[str, str]) -> Reply:
        if not self._tenant_known(tenant):
            return self._unknown_tenant(tenant)
        for required in ("grant_type", "client_id", "scope"):
            if not form.get(required):
                return entra_error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{required}'.",
                )
        if form["grant_type"] != "client_credentials":
            return entra_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form['grant_type']}'.",
            )
        scope = form["scope"].split()[0]
        if not scope.endswith("/.default"):
            return entra_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        client_id = form["client_id"]
        app = self._directory.application(client_id)
        if app is None or not app.in_tenant(tenant):
            return entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        refused = self._check_credential(app, form)
        if refused is not None:
            return refused
        token = self._identity.mint(
            scope.removesuffix("/.default"),
            tenant_id=tenant,
            app_id=app.app_id,
            object_id=service_principal_id(app.app_id, tenant),
            lifetime=APP_TOKEN_LIFETIME_SECONDS,
        )
        return Reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": APP_TOKEN_LIFETIME_SECONDS,
                "ext_expires_in": APP_TOKEN_LIFETIME_SECONDS,
                "access_token": token,
            },
        )

    def _check_credential(self, app: Application, form: dict[str, str]) -> Reply | None:
        """``None`` when the secret or the federated assertion proves the client."""
        if form.get("client_secret"):
            if form["client_secret"] in app.secrets:
                return None
            return entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{app.app_id}'.",
            )
        assertion = form.get("client_assertion", "")
        if not assertion:
            return entra_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return entra_error(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed (client_assertion_type).",
            )
        principal = self._identity.verify(assertion)
        if principal is None or self._identity.expires_on(assertion) < time.time():
            return entra_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        claims = principal.claims
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        audience = principal.resource.rstrip("/")
        for credential in app.federated:
            if (
                credential.issuer == issuer
                and credential.subject == subject
                and audience in credential.audiences
                and audience == TOKEN_EXCHANGE_AUDIENCE
            ):
                return None
        return entra_error(
            400,
            "invalid_request",
            700213,
            f"No matching federated identity record found for presented assertion subject "
            f"'{subject}'. Check your federated identity credential Subject, Audience and Issuer "
            "against the presented assertion. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        )
