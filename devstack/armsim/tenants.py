"""Tenants: which directory each subscription belongs to, app registrations, and the checks ARM
makes with them.

* A subscription belongs to one tenant. ``POST /admin/seed {"subscriptions": [...]}`` declares
  them; every other subscription belongs to :data:`DEFAULT_TENANT_ID` (the managed identity's).
  ``GET /subscriptions/{id}`` answers as the Subscriptions API does.
* A token used on a subscription of another tenant is refused with Azure's
  ``InvalidAuthenticationTokenTenant`` (:func:`wrong_tenant`).
* A request whose body links a resource in another tenant's subscription (a version's source, a
  disk copied from a snapshot) needs, in ``x-ms-authorization-auxiliary``, a token of that tenant
  for the same application as the primary token; otherwise ARM answers 403
  ``LinkedAuthorizationFailed`` (:func:`linked_authorization_failed`).
* App registrations (``{"applications": [...]}`` in the seed) are what the Entra-shaped token
  endpoint (:mod:`devstack.armsim.entra`) accepts: a client id, its secrets, the tenants it has a
  service principal in, and its federated credentials.

Everything lives in the store's settings, so ``POST /admin/reset`` forgets it like resources.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.armsim import ids
from devstack.armsim.errors import ArmError
from devstack.armsim.store import Store

JsonObject = dict[str, Any]

#: The tenant of every subscription not declared otherwise, and of the managed identity.
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-0000000d3f01"
#: api-versions of the Subscriptions API (Microsoft.Resources) the simulator accepts.
SUBSCRIPTION_API_VERSIONS: tuple[str, ...] = (
    "2016-06-01",
    "2019-06-01",
    "2020-01-01",
    "2021-01-01",
    "2022-12-01",
)
#: At most this many tokens in ``x-ms-authorization-auxiliary`` ("The auxiliary header can hold
#: up to three auxiliary tokens", Authenticate requests across tenants).
MAX_AUXILIARY_TOKENS = 3
_SUBSCRIPTIONS_KEY = "subscriptions"
_APPLICATIONS_KEY = "applications"


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def service_principal_id(app_id: str, tenant_id: str) -> str:
    """The object id of an application's service principal in a tenant (stable per pair)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"armsim:{tenant_id.lower()}:{app_id.lower()}"))


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential: which external tokens the application trusts."""

    issuer: str
    subject: str
    audiences: tuple[str, ...] = ("api://AzureADTokenExchange",)


@dataclass(frozen=True)
class Application:
    """An app registration with a service principal in each of ``tenants``."""

    app_id: str
    display_name: str
    tenants: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    federated: tuple[FederatedCredential, ...] = field(default_factory=tuple)

    def in_tenant(self, tenant_id: str) -> bool:
        return tenant_id.lower() in {t.lower() for t in self.tenants}

    def to_json(self) -> JsonObject:
        return {
            "appId": self.app_id,
            "displayName": self.display_name,
            "tenants": list(self.tenants),
            "secrets": list(self.secrets),
            "federatedCredentials": [
                {"issuer": f.issuer, "subject": f.subject, "audiences": list(f.audiences)}
                for f in self.federated
            ],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Application:
        app_id = str(raw.get("appId") or raw.get("clientId") or "")
        if not is_guid(app_id):
            raise ArmError(400, "InvalidSeed", f"application appId must be a GUID, got {app_id!r}")
        tenants = tuple(str(t) for t in raw.get("tenants") or [DEFAULT_TENANT_ID])
        for tenant in tenants:
            if not is_guid(tenant):
                raise ArmError(400, "InvalidSeed", f"application tenant {tenant!r} is no GUID")
        secret = raw.get("secret")
        secrets = tuple(str(s) for s in raw.get("secrets") or ([secret] if secret else []))
        federated = tuple(
            FederatedCredential(
                issuer=str(f["issuer"]),
                subject=str(f["subject"]),
                audiences=tuple(str(a) for a in f.get("audiences") or DEFAULT_AUDIENCES),
            )
            for f in raw.get("federatedCredentials") or []
        )
        return cls(app_id, str(raw.get("displayName") or app_id), tenants, secrets, federated)


DEFAULT_AUDIENCES = ("api://AzureADTokenExchange",)


class Directory:
    """Subscriptions and applications per tenant, kept in the store's settings."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # subscriptions ---------------------------------------------------------------------------
    def _subscriptions(self) -> dict[str, JsonObject]:
        found: dict[str, JsonObject] = self._store.setting(_SUBSCRIPTIONS_KEY, {})
        return found

    def declare_subscription(self, raw: Mapping[str, Any]) -> JsonObject:
        subscription = str(raw.get("subscriptionId") or "")
        tenant = str(raw.get("tenantId") or "")
        if not is_guid(subscription) or not is_guid(tenant):
            raise ArmError(
                400,
                "InvalidSeed",
                "a subscription needs a GUID subscriptionId and tenantId, got "
                f"{subscription!r} / {tenant!r}",
            )
        entry = {
            "subscriptionId": subscription,
            "tenantId": tenant,
            "displayName": str(raw.get("displayName") or f"armsim {subscription[:8]}"),
        }
        known = self._subscriptions()
        known[subscription.lower()] = entry
        self._store.set_setting(_SUBSCRIPTIONS_KEY, known)
        return self.subscription_body(subscription)

    def tenant_of(self, subscription_id: str) -> str:
        entry = self._subscriptions().get(subscription_id.lower())
        return str(entry["tenantId"]) if entry else DEFAULT_TENANT_ID

    def tenants(self) -> set[str]:
        """Every tenant the simulator knows (declared subscriptions, applications, default)."""
        found = {DEFAULT_TENANT_ID.lower()}
        found |= {str(e["tenantId"]).lower() for e in self._subscriptions().values()}
        for app in self.applications():
            found |= {t.lower() for t in app.tenants}
        return found

    def subscription_body(self, subscription_id: str) -> JsonObject:
        """``GET /subscriptions/{id}`` as the Subscriptions API answers (api-version 2022-12-01)."""
        entry = self._subscriptions().get(subscription_id.lower()) or {}
        return {
            "id": f"/subscriptions/{subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": subscription_id,
            "tenantId": self.tenant_of(subscription_id),
            "displayName": str(entry.get("displayName") or f"armsim {subscription_id[:8]}"),
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }

    def subscriptions_of(self, tenant_id: str) -> list[JsonObject]:
        """The declared subscriptions of a tenant (``GET /subscriptions``)."""
        return [
            self.subscription_body(str(e["subscriptionId"]))
            for e in self._subscriptions().values()
            if str(e["tenantId"]).lower() == tenant_id.lower()
        ]

    # applications ----------------------------------------------------------------------------
    def applications(self) -> list[Application]:
        raw: dict[str, JsonObject] = self._store.setting(_APPLICATIONS_KEY, {})
        return [Application.from_json(a) for a in raw.values()]

    def declare_application(self, raw: Mapping[str, Any]) -> JsonObject:
        app = Application.from_json(raw)
        known: dict[str, JsonObject] = self._store.setting(_APPLICATIONS_KEY, {})
        known[app.app_id.lower()] = app.to_json()
        self._store.set_setting(_APPLICATIONS_KEY, known)
        shown = app.to_json()
        shown["secrets"] = ["***" for _ in app.secrets]  # never echoed back
        return shown

    def application(self, app_id: str) -> Application | None:
        return next((a for a in self.applications() if a.app_id.lower() == app_id.lower()), None)


# ---------------------------------------------------------------------------------- ARM errors
def wrong_tenant(token_tenant: str, subscription_tenant: str) -> ArmError:
    """401 for a token of one tenant on another tenant's subscription (Azure's text)."""
    return ArmError(
        401,
        "InvalidAuthenticationTokenTenant",
        f"The access token is from the wrong issuer 'https://sts.windows.net/{token_tenant}/'. "
        f"It must match the tenant 'https://sts.windows.net/{subscription_tenant}/' associated "
        "with this subscription. Please use the authority (URL) "
        f"'https://login.windows.net/{subscription_tenant}' to get the token. Note, if the "
        "subscription is transferred to another tenant there is no impact to the services, but "
        "information about new tenant could take time to propagate (up to an hour). If you just "
        "transferred your subscription and see this error message, please try back later.",
        headers={
            "WWW-Authenticate": (
                f'Bearer authorization_uri="https://login.windows.net/{subscription_tenant}", '
                'error="invalid_token", error_description="The access token is from the wrong '
                'issuer."'
            )
        },
    )


def linked_authorization_failed(
    action: str, scope: str, tenant_id: str, linked_subscription: str
) -> ArmError:
    """403 for a linked resource in a tenant the request has no auxiliary token of."""
    return ArmError(
        403,
        "LinkedAuthorizationFailed",
        f"The client has permission to perform action '{action}' on scope '{scope}', however "
        f"the current tenant '{tenant_id}' is not authorized to access linked subscription "
        f"'{linked_subscription}'.",
    )


# ---------------------------------------------------------------------------- linked resources
def _ids_in(value: Any, keys: tuple[str, ...]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys and isinstance(item, str) and item.lower().startswith("/subscriptions/"):
                yield item
            else:
                yield from _ids_in(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _ids_in(item, keys)


def linked_resource_ids(resource_type: str, body: Any) -> list[str]:
    """The resource ids a write links to: a version's sources (``storageProfile``: ``id``,
    ``virtualMachineId``, ``storageAccountId``), a disk's or snapshot's ``creationData``
    (``sourceResourceId``, ``storageAccountId``)."""
    if not isinstance(body, dict):
        return []
    props = body.get("properties") or {}
    if resource_type == ids.VERSION:
        part = props.get("storageProfile") or {}
        keys: tuple[str, ...] = ("id", "virtualMachineId", "storageAccountId")
    elif resource_type in (ids.SNAPSHOT, ids.DISK):
        part = props.get("creationData") or {}
        keys = ("sourceResourceId", "storageAccountId", "imageReference")
    else:
        return []
    return list(dict.fromkeys(_ids_in(part, keys)))


def read_action(resource_id: str) -> str:
    """``Microsoft.Compute/snapshots/read`` for a snapshot id (the linked action ARM checks)."""
    ref = ids.parse_resource_id(resource_id)
    if ref is not None:
        return f"{ref.type}/read"
    parts = [p for p in resource_id.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" in lowered:
        at = lowered.index("providers")
        return "/".join([parts[at + 1], *parts[at + 2 :: 2]]) + "/read"
    return "Microsoft.Resources/subscriptions/resourceGroups/read"


def subscription_of(resource_id: str) -> str | None:
    parts = [p for p in resource_id.split("/") if p]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1]
    return None
