"""Sources in other tenants: which tenant each source's subscription is in, and whether the
pipeline can get tokens there.

ARM accepts a source in another tenant's subscription only when the request carries a token of
that tenant in ``x-ms-authorization-auxiliary`` (otherwise 403 ``LinkedAuthorizationFailed``),
and at most three such tokens. The pipeline gets them from a multi-tenant app registration
(``GALLERY_CROSS_TENANT_CLIENT_ID``) for the tenants ``GALLERY_SOURCE_TENANTS`` names. A request
that cannot be built that way is rejected here, with the fix, instead of failing in Azure:

* ``source-tenant-not-configured``: a source's subscription is in another tenant (mapped, or the
  ``imageVersion`` source names its ``tenantId``) and no cross-tenant identity is configured, or
  the named tenant is not the one the subscription is mapped to;
* ``source-tenants-limit``: the sources are in more than three other tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from shared.contract.known_tenants import SourceTenants
from shared.contract.model import ImageVersionSource, OsSource, VhdSource
from shared.contract.reader import DocumentReader
from shared.contract.rules import Rule
from shared.core.resource_ids import ResourceId
from shared.core.settings import SettingName

#: "The auxiliary header can hold up to three auxiliary tokens" (Authenticate requests across
#: tenants).
MAX_SOURCE_TENANTS: Final = 3
SETUP_DOC: Final = "infra/README.md, 'Cross-tenant sources'"

__all__ = ["MAX_SOURCE_TENANTS", "SourceTenants", "check_source_tenants"]


def _source_ids(source: OsSource) -> list[tuple[str, ResourceId]]:
    if isinstance(source, VhdSource):
        return [("storageAccountId", source.storage_account_id)]
    return [("id", source.id)]


def _not_configured_hint(subscription: str, tenant: str) -> str:
    return (
        f"set {SettingName.CROSS_TENANT_CLIENT_ID} (a multi-tenant app registration with a "
        f"service principal in tenant {tenant}, trusted by the app's managed identity) and "
        f"{SettingName.TENANT_ID}, and map '{subscription}={tenant}' in "
        f"{SettingName.SOURCE_TENANTS}; see {SETUP_DOC}"
    )


def check_source_tenants(
    reader: DocumentReader, tenants: SourceTenants, sources: Sequence[tuple[str, OsSource]]
) -> None:
    """Add a problem for every source the pipeline could not authorize in its tenant."""
    foreign: dict[str, str] = {}  # tenant -> first path that needs it
    for path, source in sources:
        named = source.tenant_id if isinstance(source, ImageVersionSource) else None
        for field_name, rid in _source_ids(source):
            where = f"{path}.{source.kind}.{field_name}"
            mapped = tenants.mapped(rid.subscription_id)
            if named is not None and mapped is not None and mapped != named.lower():
                reader.add(
                    f"{path}.{source.kind}.tenantId",
                    Rule.SOURCE_TENANT_NOT_CONFIGURED,
                    f"the source names tenant '{named}', but subscription "
                    f"'{rid.subscription_id}' is mapped to tenant '{mapped}'",
                    f"correct tenantId, or the entry for '{rid.subscription_id}' in "
                    f"{SettingName.SOURCE_TENANTS}",
                )
                continue
            tenant = mapped or (named.lower() if named is not None else None)
            if tenant is None or tenants.is_home(tenant):
                continue
            if not tenants.credentials_configured or mapped is None:
                reader.add(
                    where
                    if mapped is not None or named is None
                    else f"{path}.{source.kind}.tenantId",
                    Rule.SOURCE_TENANT_NOT_CONFIGURED,
                    f"source subscription '{rid.subscription_id}' is in tenant '{tenant}', and "
                    "the pipeline has no identity there (Azure would refuse the build with "
                    "LinkedAuthorizationFailed)",
                    _not_configured_hint(rid.subscription_id, tenant),
                )
                continue
            foreign.setdefault(tenant, where)
    if len(foreign) > MAX_SOURCE_TENANTS:
        reader.add(
            "source",
            Rule.SOURCE_TENANTS_LIMIT,
            f"the sources are in {len(foreign)} other tenants; Azure accepts tokens of at most "
            f"{MAX_SOURCE_TENANTS} other tenants in one request",
            f"use sources from at most {MAX_SOURCE_TENANTS} other tenants",
        )
