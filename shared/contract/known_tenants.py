"""What the contract knows of tenants (:class:`SourceTenants`); the rules using it are in
:mod:`shared.contract.tenants`. Kept apart so that :mod:`shared.contract.rules` can name it in
:class:`~shared.contract.rules.ValidationContext` without an import cycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.core.settings import CrossTenantSettings


@dataclass(frozen=True)
class SourceTenants:
    """The pipeline's own tenant, each mapped source subscription's tenant, and whether it can
    get tokens in other tenants (a cross-tenant identity is configured)."""

    home_tenant: str | None = None
    by_subscription: Mapping[str, str] = field(default_factory=dict)
    credentials_configured: bool = False

    @classmethod
    def from_settings(cls, settings: CrossTenantSettings) -> SourceTenants:
        return cls(
            home_tenant=settings.tenant_id,
            by_subscription=dict(settings.source_tenants),
            credentials_configured=settings.configured,
        )

    def mapped(self, subscription_id: str) -> str | None:
        return self.by_subscription.get(subscription_id.lower())

    def is_home(self, tenant_id: str) -> bool:
        return self.home_tenant is not None and tenant_id.lower() == self.home_tenant.lower()
