"""Tokens: the managed-identity endpoint (App Service protocol), minting, and the bearer checks ARM
makes (primary ``Authorization`` and ``x-ms-authorization-auxiliary``).

azure-identity's App Service flow sends ``GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=R``
with ``X-IDENTITY-HEADER: IDENTITY_HEADER``. Tokens are JWTs shaped like Entra's (``aud``,
``iss`` ``https://sts.windows.net/{tid}/``, ``tid``, ``oid``, ``appid``, ``exp``, ``nbf``), signed
HS256 with a key kept in the data directory, and remembered in the store: ARM accepts only tokens
it issued, unexpired, for an ARM audience. A token for ``api://AzureADTokenExchange`` (the
assertion a federated credential trusts) is a v2.0 token: issuer
``https://login.microsoftonline.com/{tid}/v2.0`` and ``sub`` = the identity's object id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.armsim.config import ARM_AUDIENCES
from devstack.armsim.errors import ArmError, authentication_invalid, authentication_missing
from devstack.armsim.store import Store
from devstack.armsim.tenants import DEFAULT_TENANT_ID, MAX_AUXILIARY_TOKENS

MSI_API_VERSION = "2019-08-01"
TOKEN_LIFETIME_SECONDS = 24 * 3600
#: The managed identity's client id and object (principal) id.
CLIENT_ID = "00000000-0000-0000-0000-00000000a5a5"
MSI_OBJECT_ID = "00000000-0000-0000-0000-00000000a5a6"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
_SIGNING_KEY_FILE = "token-signing.key"
_AUX_SPLIT = re.compile(r"\s*[,;]\s*")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def v2_issuer(tenant_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    tenant_id: str
    app_id: str
    object_id: str
    resource: str
    claims: dict[str, Any]


def decode_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (unverified), or ``None`` when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


class IdentityService:
    """Issues and checks tokens."""

    def __init__(self, store: Store, identity_header: str, data_dir: Path | None = None) -> None:
        self._store = store
        self._identity_header = identity_header
        self._key = self._signing_key(data_dir or store.path.parent)

    @staticmethod
    def _signing_key(data_dir: Path) -> bytes:
        """The HS256 key, created once per data directory (survives restarts and resets)."""
        path = data_dir / _SIGNING_KEY_FILE
        if not path.exists():
            path.write_bytes(secrets.token_bytes(32))
            path.chmod(0o600)
        return path.read_bytes()

    # ------------------------------------------------------------------------------- minting
    def mint(
        self,
        resource: str = ARM_AUDIENCES[0],
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        app_id: str = CLIENT_ID,
        object_id: str = MSI_OBJECT_ID,
        lifetime: int = TOKEN_LIFETIME_SECONDS,
    ) -> str:
        """A signed token for ``resource``, remembered so ARM accepts it."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": resource,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": tenant_id,
            "oid": object_id,
            "sub": object_id,
            "idtyp": "app",
            "uti": secrets.token_urlsafe(16),
        }
        if resource.rstrip("/") == TOKEN_EXCHANGE_AUDIENCE:
            claims.update({"iss": v2_issuer(tenant_id), "azp": app_id, "ver": "2.0"})
        else:
            claims.update({"iss": f"https://sts.windows.net/{tenant_id}/", "appid": app_id})
            claims.update({"appidacr": "2", "ver": "1.0"})
        header = {"alg": "HS256", "typ": "JWT", "kid": "armsim"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        self._store.add_token(token, resource, now + lifetime)
        return token

    def issue(self, query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        """Answer a managed-identity token request; raises ArmError (400) like App Service."""
        if headers.get("x-identity-header") != self._identity_header:
            raise ArmError(400, "invalid_request", "X-IDENTITY-HEADER is missing or does not match")
        if query.get("api-version") != MSI_API_VERSION:
            raise ArmError(400, "invalid_request", f"api-version must be {MSI_API_VERSION}")
        resource = query.get("resource", "")
        if not resource:
            raise ArmError(400, "invalid_request", "resource is required")
        token = self.mint(resource)
        return {
            "access_token": token,
            "expires_on": str(int(time.time()) + TOKEN_LIFETIME_SECONDS),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": CLIENT_ID,
        }

    # ------------------------------------------------------------------------------ checking
    def verify(self, token: str) -> Principal | None:
        """The principal of a token this simulator issued (signature and store), else ``None``.

        Expiry and audience are not judged here (see :meth:`authenticate`)."""
        known = self._store.token(token)
        if known is None:
            return None
        resource, _ = known
        claims = decode_claims(token)
        if claims is None:  # an opaque token from an older state directory
            return Principal(DEFAULT_TENANT_ID, CLIENT_ID, MSI_OBJECT_ID, resource, {})
        signing_input, _, signature = token.rpartition(".")
        expected = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(expected), signature):
            return None
        return Principal(
            tenant_id=str(claims.get("tid") or DEFAULT_TENANT_ID),
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            object_id=str(claims.get("oid") or ""),
            resource=resource,
            claims=claims,
        )

    def expires_on(self, token: str) -> float:
        known = self._store.token(token)
        return known[1] if known else 0.0

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of ``Authorization: Bearer <token we issued>``, or the ARM 401."""
        if not authorization:
            raise authentication_missing()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise authentication_invalid("The 'Authorization' header is not a bearer token.")
        return self._arm_principal(token.strip(), where="")

    def _arm_principal(self, token: str, *, where: str) -> Principal:
        principal = self.verify(token)
        if principal is None:
            raise authentication_invalid(f"It was not issued by this endpoint.{where}")
        if self.expires_on(token) < time.time():
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time is earlier than current UTC time.{where}",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        resource = principal.resource
        if resource.rstrip("/") not in {aud.rstrip("/") for aud in ARM_AUDIENCES}:
            raise ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{resource}'."
                f"{where}",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return principal

    def auxiliary(self, header: str | None) -> list[Principal]:
        """The principals of ``x-ms-authorization-auxiliary`` (``Bearer a, Bearer b``; ``;`` is
        accepted too). Every token must be valid and unexpired, or the request gets 401."""
        if not header or not header.strip():
            return []
        entries = [e for e in _AUX_SPLIT.split(header.strip()) if e]
        if len(entries) > MAX_AUXILIARY_TOKENS:
            raise authentication_invalid(
                "The 'x-ms-authorization-auxiliary' header holds more than "
                f"{MAX_AUXILIARY_TOKENS} tokens."
            )
        found: list[Principal] = []
        for entry in entries:
            scheme, _, token = entry.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise authentication_invalid(
                    "The 'x-ms-authorization-auxiliary' header is not a list of bearer tokens."
                )
            where = " (x-ms-authorization-auxiliary)"
            found.append(self._arm_principal(token.strip(), where=where))
        return found
