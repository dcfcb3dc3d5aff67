"""The managed-identity token endpoint (App Service protocol) and bearer-token checks for ARM.

azure-identity's App Service flow sends ``GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=R``
with ``X-IDENTITY-HEADER: IDENTITY_HEADER``. Tokens are opaque random strings, remembered in the
store; ARM requests must carry one of them for an ARM audience, or they get 401 like Azure.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from devstack.armsim.config import ARM_AUDIENCES
from devstack.armsim.errors import ArmError, authentication_invalid, authentication_missing
from devstack.armsim.store import Store

MSI_API_VERSION = "2019-08-01"
TOKEN_LIFETIME_SECONDS = 24 * 3600
CLIENT_ID = "00000000-0000-0000-0000-00000000a5a5"


class IdentityService:
    """Issues and checks tokens."""

    def __init__(self, store: Store, identity_header: str) -> None:
        self._store = store
        self._identity_header = identity_header

    def issue(self, query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        """Answer a token request; raises ArmError (400) like the App Service endpoint."""
        if headers.get("x-identity-header") != self._identity_header:
            raise ArmError(400, "invalid_request", "X-IDENTITY-HEADER is missing or does not match")
        if query.get("api-version") != MSI_API_VERSION:
            raise ArmError(400, "invalid_request", f"api-version must be {MSI_API_VERSION}")
        resource = query.get("resource", "")
        if not resource:
            raise ArmError(400, "invalid_request", "resource is required")
        token = "armsim." + secrets.token_urlsafe(32)
        expires_on = int(time.time()) + TOKEN_LIFETIME_SECONDS
        self._store.add_token(token, resource, expires_on)
        return {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": CLIENT_ID,
        }

    def mint(self, resource: str = ARM_AUDIENCES[0]) -> str:
        """A token for admin/test use without the MSI handshake."""
        token = "armsim." + secrets.token_urlsafe(32)
        self._store.add_token(token, resource, int(time.time()) + TOKEN_LIFETIME_SECONDS)
        return token

    def authenticate(self, authorization: str | None) -> None:
        """Raise the ARM 401 unless ``authorization`` is ``Bearer <token we issued>``."""
        if not authorization:
            raise authentication_missing()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise authentication_invalid("The 'Authorization' header is not a bearer token.")
        known = self._store.token(token.strip())
        if known is None:
            raise authentication_invalid("It was not issued by this endpoint.")
        resource, expires_on = known
        if expires_on < time.time():
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if resource.rstrip("/") not in {aud.rstrip("/") for aud in ARM_AUDIENCES}:
            raise ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{resource}'.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
