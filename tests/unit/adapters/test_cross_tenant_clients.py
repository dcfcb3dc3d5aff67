"""``ComputeClients`` with a cross-tenant identity: a foreign subscription is read with the app
registration's credential there, and a write whose sources are in other tenants gets the app's
primary credential plus one auxiliary credential per source tenant (at most three)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest
from azure.core.credentials import TokenCredential
from azure.mgmt.compute import ComputeManagementClient

from shared.adapters.compute_gallery import ComputeClients, linked_source_ids
from shared.adapters.identity import CrossTenantIdentity
from shared.core.errors import PermanentError
from shared.core.settings import CrossTenantSettings

HOME = "99999999-0000-4000-8000-000000000001"
SUB_HOME = "00000000-0000-0000-0000-0000000000aa"
SUBS = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(1, 5)]
TENANTS = [f"bbbbbbbb-0000-4000-8000-00000000000{n}" for n in range(1, 5)]


class _Identity(CrossTenantIdentity):
    def credential(self, tenant_id: str) -> TokenCredential:
        return cast(TokenCredential, f"cred:{tenant_id}")


def clients() -> tuple[ComputeClients, list[tuple[str, Any, Sequence[Any]]]]:
    settings = CrossTenantSettings(
        tenant_id=HOME,
        source_tenants=dict(zip(SUBS, TENANTS, strict=True)),
        client_id="aaaaaaaa-1111-4111-8111-0000000000a1",
    )
    built: list[tuple[str, Any, Sequence[Any]]] = []

    def client_with(sub: str, primary: Any, auxiliary: Sequence[Any]) -> ComputeManagementClient:
        built.append((sub, primary, list(auxiliary)))
        return cast(ComputeManagementClient, object())

    def default(sub: str) -> ComputeManagementClient:
        return cast(ComputeManagementClient, f"default:{sub}")

    identity = _Identity(settings, lambda: cast(TokenCredential, None))
    return ComputeClients(default, cross_tenant=identity, client_with=client_with), built


def snapshot(sub: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/snapshots/s"


def test_home_subscriptions_use_the_default_client() -> None:
    compute, built = clients()
    assert cast(object, compute(SUB_HOME)) == f"default:{SUB_HOME}"
    assert (
        cast(object, compute.for_sources(SUB_HOME, [snapshot(SUB_HOME)])) == f"default:{SUB_HOME}"
    )
    assert built == []


def test_a_foreign_subscription_is_read_with_the_app_credential_of_its_tenant() -> None:
    compute, built = clients()
    first = compute(SUBS[0])
    assert compute(SUBS[0].upper()) is first  # one client per subscription and tenant
    assert built == [(SUBS[0], f"cred:{TENANTS[0]}", [])]


def test_a_write_with_foreign_sources_gets_primary_and_auxiliary_credentials() -> None:
    compute, built = clients()
    compute.for_sources(SUB_HOME, [snapshot(SUBS[1]), snapshot(SUBS[0]), snapshot(SUB_HOME)])
    assert built == [(SUB_HOME, f"cred:{HOME}", [f"cred:{TENANTS[0]}", f"cred:{TENANTS[1]}"])]
    with pytest.raises(PermanentError) as raised:
        compute.for_sources(SUB_HOME, [snapshot(s) for s in SUBS])
    assert raised.value.reason == "TooManySourceTenants"


def test_linked_source_ids_reads_every_source_of_a_version_body() -> None:
    body = {
        "properties": {
            "storageProfile": {
                "osDiskImage": {"source": {"id": snapshot(SUBS[0])}},
                "dataDiskImages": [
                    {"lun": 0, "source": {"uri": "https://a/b.vhd", "storageAccountId": "/x"}}
                ],
            }
        }
    }
    assert linked_source_ids(body) == [snapshot(SUBS[0]), "/x"]
