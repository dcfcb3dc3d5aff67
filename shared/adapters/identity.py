"""The app's credentials.

* :func:`default_credential`: ``DefaultAzureCredential`` (managed identity in Azure, the
  simulator's managed-identity endpoint locally).
* :class:`CrossTenantIdentity`: tokens of a multi-tenant app registration in other tenants, for
  sources that live in their subscriptions. In Azure the app registration trusts the app's managed
  identity through a federated credential: ``ClientAssertionCredential`` presents the managed
  identity's token for ``api://AzureADTokenExchange`` as its assertion, so no secret exists. For
  local use a client secret from settings (``GALLERY_CROSS_TENANT_CLIENT_SECRET``) replaces it.
  ARM wants every token of a cross-tenant request from the same application ("All the tokens
  must be from the same user or application", Authenticate requests across tenants), so the app
  registration signs the primary token (the app's own tenant) as well as the auxiliary ones.

``azure.identity`` takes about 0.3 s to import, so it is imported only when a credential is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential

from shared.core.settings import CrossTenantSettings

__all__ = ["CrossTenantIdentity", "TokenCredential", "default_credential"]

#: The audience of the managed identity's token a federated credential trusts.
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"
#: Entra hosts MSAL knows; any other authority needs ``disable_instance_discovery``.
_KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


def default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415  (lazy: cold start)

    return DefaultAzureCredential()


class CrossTenantIdentity:
    """Credentials of the cross-tenant app registration, one per tenant (thread-safe).

    ``managed_identity`` gives the app's own credential; its token for
    ``api://AzureADTokenExchange`` is the federated assertion when no client secret is set.
    ``connection_verify`` is the CA bundle for a local authority (the simulator's certificate).
    """

    def __init__(
        self,
        settings: CrossTenantSettings,
        managed_identity: Callable[[], TokenCredential],
        *,
        connection_verify: str | None = None,
    ) -> None:
        if not settings.configured or settings.tenant_id is None or settings.client_id is None:
            raise ValueError("the cross-tenant identity needs a client id and the app's tenant")
        self.settings = settings
        self.home_tenant: str = settings.tenant_id
        self._client_id: str = settings.client_id
        self._managed_identity = managed_identity
        self._verify = connection_verify
        self._credentials: dict[str, TokenCredential] = {}
        self._lock = threading.Lock()

    def tenant_of(self, subscription_id: str) -> str:
        """The tenant a subscription belongs to (mapped, else the app's own)."""
        return self.settings.tenant_of(subscription_id) or self.home_tenant

    def is_foreign(self, subscription_id: str) -> bool:
        return self.tenant_of(subscription_id) != self.home_tenant

    def _assertion(self) -> str:
        """The managed identity's token for the token exchange (the federated assertion)."""
        return self._managed_identity().get_token(TOKEN_EXCHANGE_SCOPE).token

    def _options(self) -> dict[str, Any]:
        authority = self.settings.authority_host
        options: dict[str, Any] = {"authority": authority}
        if (urlsplit(authority).hostname or "") not in _KNOWN_AUTHORITY_HOSTS:
            # MSAL asks login.microsoftonline.com whether an unknown host is an authority
            options["disable_instance_discovery"] = True
        if self._verify:
            options["connection_verify"] = self._verify
        return options

    def credential(self, tenant_id: str) -> TokenCredential:
        """The app registration's credential in ``tenant_id`` (made once per tenant)."""
        key = tenant_id.lower()
        with self._lock:
            found = self._credentials.get(key)
            if found is None:
                found = self._credentials[key] = self._make(key)
            return found

    def _make(self, tenant_id: str) -> TokenCredential:
        from azure.identity import (  # noqa: PLC0415  (lazy: cold start)
            ClientAssertionCredential,
            ClientSecretCredential,
        )

        secret = self.settings.client_secret
        if secret:
            return ClientSecretCredential(tenant_id, self._client_id, secret, **self._options())
        return ClientAssertionCredential(
            tenant_id, self._client_id, self._assertion, **self._options()
        )
