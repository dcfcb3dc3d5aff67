"""Sources in other tenants: rejected at validation, with the fix, unless the pipeline can get
tokens there (rules ``source-tenant-not-configured`` and ``source-tenants-limit``)."""

from __future__ import annotations

import dataclasses

import pytest

from shared.contract.rules import Rule, ValidationContext
from shared.contract.tenants import SourceTenants
from shared.core.errors import PermanentError
from shared.core.settings import CrossTenantSettings, SettingName, Settings
from tests.unit.contract.test_request_fixtures import (
    OTHER_SUB,
    SETTINGS,
    base_document,
    snapshot_id,
    with_changes,
)
from tests.unit.contract.test_validation import assert_valid, problems_of, rules_of

HOME = "99999999-0000-4000-8000-000000000001"
TENANT_B = "bbbbbbbb-0000-4000-8000-00000000000b"
APP = "aaaaaaaa-1111-4111-8111-0000000000a1"


def settings(*, client: str | None = APP, **source_tenants: str) -> Settings:
    return dataclasses.replace(
        SETTINGS,
        cross_tenant=CrossTenantSettings(
            tenant_id=HOME, source_tenants={OTHER_SUB: TENANT_B, **source_tenants}, client_id=client
        ),
    )


def foreign_snapshot_document() -> dict[str, object]:
    return with_changes(base_document(), source={"snapshot": {"id": snapshot_id("s", OTHER_SUB)}})


def test_a_source_in_a_mapped_tenant_is_accepted_with_the_cross_tenant_identity() -> None:
    assert_valid(foreign_snapshot_document(), settings=settings())


def test_a_source_in_another_tenant_without_the_identity_is_rejected_with_the_fix() -> None:
    (problem,) = problems_of(foreign_snapshot_document(), settings=settings(client=None))
    assert problem.rule == Rule.SOURCE_TENANT_NOT_CONFIGURED
    assert problem.path == "source.snapshot.id"
    assert TENANT_B in problem.message and "LinkedAuthorizationFailed" in problem.message
    assert SettingName.CROSS_TENANT_CLIENT_ID in problem.hint
    assert "infra/README.md" in problem.hint


def test_a_named_tenant_the_pipeline_does_not_know_is_rejected() -> None:
    rid = (
        f"/subscriptions/{OTHER_SUB}/resourceGroups/rg/providers/Microsoft.Compute"
        "/galleries/g/images/i/versions/1.0.0"
    )
    other = "cccccccc-0000-4000-8000-00000000000c"
    document = with_changes(
        base_document(), source={"imageVersion": {"id": rid, "tenantId": other}}
    )
    no_identity = dataclasses.replace(SETTINGS, cross_tenant=CrossTenantSettings())
    assert rules_of(document, settings=no_identity) == {
        ("source.imageVersion.tenantId", Rule.SOURCE_TENANT_NOT_CONFIGURED)
    }
    (problem,) = problems_of(document, settings=settings())  # mapped to tenant B, not C
    assert problem.rule == Rule.SOURCE_TENANT_NOT_CONFIGURED
    assert TENANT_B in problem.message and other in problem.message


def test_the_validation_context_carries_the_known_tenants() -> None:
    context = ValidationContext(
        source_tenants=SourceTenants(HOME, {OTHER_SUB: TENANT_B}, credentials_configured=False)
    )
    assert rules_of(foreign_snapshot_document(), settings=settings(), context=context) == {
        ("source.snapshot.id", Rule.SOURCE_TENANT_NOT_CONFIGURED)
    }


def test_a_source_in_the_apps_own_tenant_needs_nothing() -> None:
    assert_valid(base_document(), settings=settings(client=None))
    same = dataclasses.replace(
        SETTINGS, cross_tenant=CrossTenantSettings(tenant_id=HOME, source_tenants={OTHER_SUB: HOME})
    )
    assert_valid(foreign_snapshot_document(), settings=same)


def test_settings_read_the_map_and_refuse_nonsense() -> None:
    environ = {
        SettingName.TENANT_ID: HOME,
        SettingName.SOURCE_TENANTS: f"{OTHER_SUB}={TENANT_B}; {HOME.replace('9', '8')}={HOME}",
        SettingName.CROSS_TENANT_CLIENT_ID: APP,
        SettingName.CROSS_TENANT_CLIENT_SECRET: "dev-secret",
    }
    cross = Settings.from_env(environ).cross_tenant
    assert cross.tenant_of(OTHER_SUB.upper()) == TENANT_B
    assert cross.is_foreign(OTHER_SUB) and cross.configured
    assert "dev-secret" not in repr(Settings.from_env(environ))
    for bad in ({SettingName.SOURCE_TENANTS: "nope"}, {SettingName.CROSS_TENANT_CLIENT_ID: APP}):
        with pytest.raises(PermanentError, match="GALLERY_"):
            Settings.from_env(bad)
