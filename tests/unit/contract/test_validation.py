"""Every validation rule, with a passing and a failing case; all problems reported at once."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from shared.contract.parse import parse_build_request
from shared.contract.rules import (
    GIB,
    TIB,
    Rule,
    ValidationContext,
    normalise_region,
    source_subscription_allowed,
    target_gallery_allowed,
)
from shared.core.errors import Problem, ValidationFailed
from shared.core.settings import CrossTenantSettings, SettingName, Settings
from tests.unit.contract.test_request_fixtures import (
    FOREIGN_SUB,
    NOW,
    OTHER_SUB,
    SETTINGS,
    SUB,
    base_document,
    disk_id,
    snapshot_id,
    storage_account_id,
    vhd_document,
    with_changes,
)

VHD_URL = "https://imagesupload01.blob.core.windows.net/vhds/os.vhd"


def image_version_id(subscription: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.Compute"
        "/galleries/g/images/i/versions/1.0.0"
    )


def cross_tenant_settings(source_tenants: dict[str, str]) -> Settings:
    """SETTINGS with a cross-tenant identity and ``source_tenants`` (subscription -> tenant)."""
    return dataclasses.replace(
        SETTINGS,
        cross_tenant=CrossTenantSettings(
            tenant_id=HOME_TENANT,
            source_tenants=source_tenants,
            client_id="aaaaaaaa-1111-4111-8111-0000000000a1",
        ),
    )


HOME_TENANT = "99999999-0000-4000-8000-000000000001"


def problems_of(
    document: Any, settings: Settings = SETTINGS, context: ValidationContext | None = None
) -> list[Problem]:
    try:
        parse_build_request(document, settings, now=NOW, context=context)
    except ValidationFailed as exc:
        return exc.problems
    return []


def rules_of(document: Any, **kwargs: Any) -> set[tuple[str, str]]:
    return {(p.path, p.rule) for p in problems_of(document, **kwargs)}


def assert_valid(document: Any, **kwargs: Any) -> None:
    assert problems_of(document, **kwargs) == []


# -- every problem at once --------------------------------------------------------------------


def test_all_problems_are_reported_together() -> None:
    document = with_changes(
        base_document(),
        **{
            "target.gallery": "bad-gallery",
            "target.version": "1.0",
            "publishing.targetRegions": [{"name": "eastus"}, {"name": "East US"}],
            "publishing.replicaCount": 0,
        },
        dataDisks=[
            {"lun": 1, "source": {"disk": {"id": disk_id("d1")}}},
            {"lun": 1, "source": {"disk": {"id": disk_id("d2")}}},
        ],
        surprise=1,
    )
    assert rules_of(document) == {
        ("surprise", Rule.UNKNOWN_FIELD),
        ("target.gallery", Rule.GALLERY_NAME_CHARACTERS),
        ("target.version", Rule.VERSION_FORMAT),
        ("publishing.targetRegions[1].name", Rule.UNIQUE_REGIONS),
        ("publishing.replicaCount", Rule.REPLICA_COUNT),
        ("dataDisks[1].lun", Rule.UNIQUE_LUNS),
    }


def test_problem_text_reads_like_the_contract_says() -> None:
    document = with_changes(
        base_document(),
        **{
            "publishing.targetRegions": [
                {"name": "westus"},
                {"name": "eastus"},
                {"name": "East US"},
            ]
        },
    )
    (problem,) = problems_of(document)
    assert str(problem).startswith("publishing.targetRegions[2].name: duplicate region 'eastus'")
    assert problem.rule == "unique-regions"
    assert "publishing.targetRegions[1]" in problem.hint


def test_wrong_json_types_are_named() -> None:
    assert rules_of("just text") == {("", Rule.TYPE)}
    assert rules_of(with_changes(base_document(), target=[])) == {("target", Rule.TYPE)}
    assert rules_of(with_changes(base_document(), **{"publishing.excludeFromLatest": "yes"})) == {
        ("publishing.excludeFromLatest", Rule.TYPE)
    }


# -- naming rules -----------------------------------------------------------------------------


# Gallery, definition, resource group and identifier names: test_naming.py.


@pytest.mark.parametrize("version", ["0.0.0", "1.2.3", "2147483647.0.2147483647"])
def test_versions_accepted(version: str) -> None:
    assert_valid(with_changes(base_document(), **{"target.version": version}))


@pytest.mark.parametrize(
    "version", ["1.2", "1.2.3.4", "2147483648.0.0", "1.02.3", "a.b.c", "1.-1.0"]
)
def test_versions_rejected(version: str) -> None:
    assert rules_of(with_changes(base_document(), **{"target.version": version})) == {
        ("target.version", Rule.VERSION_FORMAT)
    }


def test_version_or_policy_exactly_one() -> None:
    both = with_changes(base_document(), **{"target.versionPolicy": "nextPatch"})
    assert rules_of(both) == {("target", Rule.VERSION_OR_POLICY)}
    neither = base_document()
    del neither["target"]["version"]
    assert rules_of(neither) == {("target", Rule.VERSION_OR_POLICY)}
    assert_valid(with_changes(neither, **{"target.versionPolicy": {"latestUnderMajor": 2}}))


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        ("latest", Rule.VERSION_POLICY),
        ({"latestUnderMajor": -1}, Rule.VERSION_POLICY),
        (3, Rule.TYPE),
    ],
)
def test_bad_version_policies(policy: Any, rule: str) -> None:
    document = base_document()
    del document["target"]["version"]
    document["target"]["versionPolicy"] = policy
    assert {r for _, r in rules_of(document)} == {rule}


def test_subscription_and_resource_group_names() -> None:
    assert rules_of(with_changes(base_document(), **{"target.subscriptionId": "sub-1"})) == {
        ("target.subscriptionId", Rule.SUBSCRIPTION_ID)
    }
    assert rules_of(with_changes(base_document(), **{"target.resourceGroup": "rg."})) == {
        ("target.resourceGroup", Rule.RESOURCE_GROUP_NAME_TRAILING_PERIOD)
    }


# -- sources ----------------------------------------------------------------------------------


def test_exactly_one_os_source() -> None:
    two = with_changes(
        base_document(),
        source={"snapshot": {"id": snapshot_id("a")}, "disk": {"id": disk_id("b")}},
    )
    assert rules_of(two) == {("source", Rule.EXACTLY_ONE_SOURCE)}
    assert rules_of(with_changes(base_document(), source={})) == {
        ("source", Rule.EXACTLY_ONE_SOURCE)
    }


@pytest.mark.parametrize(
    ("kind", "resource_type", "names"),
    [
        ("snapshot", "Microsoft.Compute/snapshots", "s1"),
        ("disk", "Microsoft.Compute/disks", "d1"),
        ("managedImage", "Microsoft.Compute/images", "i1"),
        ("virtualMachine", "Microsoft.Compute/virtualMachines", "vm1"),
        ("imageVersion", "Microsoft.Compute/galleries/g/images/i/versions", "1.0.0"),
    ],
)
def test_each_source_kind_takes_its_own_resource_type(
    kind: str, resource_type: str, names: str
) -> None:
    rid = f"/subscriptions/{SUB}/resourceGroups/rg/providers/{resource_type}/{names}"
    assert_valid(with_changes(base_document(), source={kind: {"id": rid}}))
    wrong = "Microsoft.Compute/disks" if kind != "disk" else "Microsoft.Compute/snapshots"
    wrong_id = f"/subscriptions/{SUB}/resourceGroups/rg/providers/{wrong}/x"
    assert rules_of(with_changes(base_document(), source={kind: {"id": wrong_id}})) == {
        (f"source.{kind}.id", Rule.RESOURCE_TYPE)
    }


def test_wrong_type_hint_names_the_right_source_key() -> None:
    (problem,) = problems_of(
        with_changes(base_document(), source={"snapshot": {"id": disk_id("d")}})
    )
    assert problem.rule == Rule.RESOURCE_TYPE
    assert "source.disk" in problem.hint


def test_malformed_resource_ids_are_parsed_and_rejected() -> None:
    assert rules_of(with_changes(base_document(), source={"snapshot": {"id": "snap1"}})) == {
        ("source.snapshot.id", Rule.RESOURCE_ID)
    }


def test_image_version_source_may_name_another_tenant() -> None:
    rid = image_version_id(OTHER_SUB)
    assert_valid(  # the tenant is one the pipeline can get tokens in (test_source_tenants.py)
        with_changes(
            base_document(), source={"imageVersion": {"id": rid, "tenantId": FOREIGN_SUB}}
        ),
        settings=cross_tenant_settings({OTHER_SUB: FOREIGN_SUB}),
    )
    assert rules_of(
        with_changes(base_document(), source={"imageVersion": {"id": rid, "tenantId": "contoso"}})
    ) == {("source.imageVersion.tenantId", Rule.TENANT_ID)}


def test_vhd_source_accepted_with_sas_and_on_the_emulator() -> None:
    assert_valid(vhd_document(VHD_URL + "?sv=1&sig=x"))
    local = vhd_document("http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd", "devstoreaccount1")
    assert_valid(local)


def test_vhd_must_be_under_a_configured_endpoint() -> None:
    assert rules_of(vhd_document("https://imagesupload01.example.com/vhds/os.vhd")) == {
        ("source.vhd.uri", Rule.VHD_URL)
    }


def test_vhd_must_be_https_except_on_loopback() -> None:
    settings = dataclasses.replace(
        SETTINGS, vhd_storage_endpoints=("http://{account}.blob.example",)
    )
    document = vhd_document("http://imagesupload01.blob.example/vhds/os.vhd")
    assert rules_of(document, settings=settings) == {("source.vhd.uri", Rule.HTTPS_REQUIRED)}


def test_vhd_account_must_match_storage_account_id() -> None:
    assert rules_of(vhd_document(VHD_URL, account="otheraccount")) == {
        ("source.vhd.storageAccountId", Rule.STORAGE_ACCOUNT_MATCH)
    }
    document = vhd_document(VHD_URL)
    document["source"]["vhd"]["storageAccountId"] = disk_id("imagesupload01")
    assert rules_of(document) == {("source.vhd.storageAccountId", Rule.RESOURCE_TYPE)}


# -- data disks -------------------------------------------------------------------------------


def data_disk(lun: int, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"lun": lun, "source": source, **extra}


def test_data_disks_unique_luns_and_range() -> None:
    ok = with_changes(
        base_document(),
        dataDisks=[
            data_disk(0, {"disk": {"id": disk_id("d0")}}),
            data_disk(63, {"snapshot": {"id": snapshot_id("d63")}}, hostCaching="None"),
        ],
    )
    assert_valid(ok)
    clash = with_changes(
        base_document(),
        dataDisks=[
            data_disk(2, {"disk": {"id": disk_id("a")}}),
            data_disk(2, {"disk": {"id": disk_id("b")}}),
        ],
    )
    assert rules_of(clash) == {("dataDisks[1].lun", Rule.UNIQUE_LUNS)}
    out_of_range = with_changes(
        base_document(), dataDisks=[data_disk(64, {"disk": {"id": disk_id("a")}})]
    )
    assert rules_of(out_of_range) == {("dataDisks[0].lun", Rule.LUN_RANGE)}


def test_data_disk_sources_are_vhd_snapshot_or_disk() -> None:
    image = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/images/i"
    document = with_changes(
        base_document(), dataDisks=[data_disk(0, {"managedImage": {"id": image}})]
    )
    assert rules_of(document) == {
        ("dataDisks[0].source.managedImage", Rule.UNKNOWN_FIELD),
        ("dataDisks[0].source", Rule.EXACTLY_ONE_SOURCE),
    }


def test_every_disk_needs_its_own_source() -> None:
    document = with_changes(
        base_document(), dataDisks=[data_disk(0, {"snapshot": {"id": snapshot_id("OS1")}})]
    )
    assert rules_of(document) == {("dataDisks[0].source", Rule.UNIQUE_SOURCES)}
    vhd = vhd_document(VHD_URL + "?sig=a")
    vhd["dataDisks"] = [
        data_disk(
            0,
            {
                "vhd": {
                    "uri": VHD_URL + "?sig=b",
                    "storageAccountId": storage_account_id("imagesupload01"),
                }
            },
        )
    ]
    assert rules_of(vhd) == {("dataDisks[0].source", Rule.UNIQUE_SOURCES)}


def test_data_disks_only_with_disk_level_os_sources() -> None:
    vm = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
    document = with_changes(
        base_document(),
        source={"virtualMachine": {"id": vm}},
        dataDisks=[data_disk(0, {"disk": {"id": disk_id("d")}})],
    )
    assert rules_of(document) == {("dataDisks", Rule.DATA_DISKS_NEED_DISK_SOURCE)}


# -- publishing -------------------------------------------------------------------------------


def test_region_names_are_normalised_before_comparing() -> None:
    assert normalise_region(" East  US 2 ") == "eastus2"
    document = with_changes(
        base_document(),
        **{"publishing.targetRegions": [{"name": "West Europe"}, {"name": "westeurope"}]},
    )
    assert rules_of(document) == {("publishing.targetRegions[1].name", Rule.UNIQUE_REGIONS)}
    assert rules_of(
        with_changes(base_document(), **{"publishing.targetRegions": [{"name": "east-us"}]})
    ) == {("publishing.targetRegions[0].name", Rule.REGION_NAME)}


def test_at_least_one_target_region() -> None:
    assert rules_of(with_changes(base_document(), **{"publishing.targetRegions": []})) == {
        ("publishing.targetRegions", Rule.TARGET_REGIONS_REQUIRED)
    }


def test_source_region_must_be_a_target_when_known() -> None:
    document = with_changes(
        base_document(), **{"publishing.targetRegions": [{"name": "East US"}, {"name": "westus"}]}
    )
    assert_valid(document, context=ValidationContext(source_region="eastus"))
    assert_valid(document, context=ValidationContext(source_region=None))
    assert rules_of(document, context=ValidationContext(source_region="North Europe")) == {
        ("publishing.targetRegions", Rule.SOURCE_REGION_IN_TARGETS)
    }


@pytest.mark.parametrize(
    ("count", "ok"), [(1, True), (100, True), (0, False), (101, False), (-3, False)]
)
def test_replica_counts(count: int, ok: bool) -> None:
    top = with_changes(base_document(), **{"publishing.replicaCount": count})
    regional = with_changes(
        base_document(), **{"publishing.targetRegions": [{"name": "eastus", "replicaCount": count}]}
    )
    if ok:
        assert_valid(top)
        assert_valid(regional)
    else:
        assert rules_of(top) == {("publishing.replicaCount", Rule.REPLICA_COUNT)}
        assert rules_of(regional) == {
            ("publishing.targetRegions[0].replicaCount", Rule.REPLICA_COUNT)
        }


@pytest.mark.parametrize(
    "storage", ["Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS"]
)
def test_storage_types_from_the_enum_accepted(storage: str) -> None:
    assert_valid(with_changes(base_document(), **{"publishing.storageAccountType": storage}))


def test_storage_types_outside_the_enum_rejected_with_a_suggestion() -> None:
    (problem,) = problems_of(
        with_changes(base_document(), **{"publishing.storageAccountType": "standard_lrs"})
    )
    assert (problem.path, problem.rule) == (
        "publishing.storageAccountType",
        Rule.STORAGE_ACCOUNT_TYPE,
    )
    assert "did you mean 'Standard_LRS'" in problem.hint
    regional = with_changes(
        base_document(),
        **{"publishing.targetRegions": [{"name": "eastus", "storageAccountType": "Ultra"}]},
    )
    assert rules_of(regional) == {
        ("publishing.targetRegions[0].storageAccountType", Rule.STORAGE_ACCOUNT_TYPE)
    }


def test_end_of_life_must_be_in_the_future() -> None:
    assert_valid(with_changes(base_document(), **{"publishing.endOfLifeDate": "2026-11-17"}))
    for past in ["2026-11-16T12:00:00Z", "2020-01-01", "2026-11-16T13:00:00+02:00"]:
        assert rules_of(with_changes(base_document(), **{"publishing.endOfLifeDate": past})) == {
            ("publishing.endOfLifeDate", Rule.END_OF_LIFE_FUTURE)
        }


@pytest.mark.parametrize(
    "text", ["2027-02-30", "2027-13-01", "tomorrow", "2027-01-01T25:00:00Z", "2027-01-01T10:00:00"]
)
def test_end_of_life_format(text: str) -> None:
    assert rules_of(with_changes(base_document(), **{"publishing.endOfLifeDate": text})) == {
        ("publishing.endOfLifeDate", Rule.END_OF_LIFE_FORMAT)
    }


def test_end_of_life_date_or_days_not_both() -> None:
    document = with_changes(
        base_document(),
        **{"publishing.endOfLifeDate": "2030-01-01", "publishing.endOfLifeAfterDays": 3},
    )
    assert rules_of(document) == {("publishing", Rule.END_OF_LIFE_ONE_OF)}


def test_block_deletion_needs_end_of_life() -> None:
    document = with_changes(base_document(), **{"publishing.blockDeletionBeforeEndOfLife": True})
    assert rules_of(document) == {
        ("publishing.blockDeletionBeforeEndOfLife", Rule.BLOCK_DELETION_NEEDS_END_OF_LIFE)
    }
    assert_valid(with_changes(document, **{"publishing.endOfLifeAfterDays": 30}))


# -- sizes ------------------------------------------------------------------------------------


def test_data_disk_size_limit_is_the_setting() -> None:
    document = with_changes(
        base_document(), dataDisks=[{"lun": 3, "source": {"disk": {"id": disk_id("d")}}}]
    )
    assert_valid(document, context=ValidationContext(data_disk_size_bytes={3: TIB}))
    assert rules_of(document, context=ValidationContext(data_disk_size_bytes={3: TIB + 1})) == {
        ("dataDisks[0]", Rule.DATA_DISK_SIZE)
    }
    small = dataclasses.replace(SETTINGS, max_data_disk_gib=100)
    assert rules_of(
        document, settings=small, context=ValidationContext(data_disk_size_bytes={3: 101 * GIB})
    ) == {("dataDisks[0]", Rule.DATA_DISK_SIZE)}
    huge = dataclasses.replace(SETTINGS, max_data_disk_gib=10_000)
    # the setting cannot lift the service's 2 TiB hard limit (Full replication)
    assert rules_of(
        document, settings=huge, context=ValidationContext(data_disk_size_bytes={3: 3 * TIB})
    ) == {("dataDisks[0]", Rule.DATA_DISK_SIZE)}


def test_image_size_limit_depends_on_replication_mode() -> None:
    full = base_document()
    assert_valid(full, context=ValidationContext(os_disk_size_bytes=2 * TIB))
    assert rules_of(full, context=ValidationContext(os_disk_size_bytes=2 * TIB + 512)) == {
        ("source", Rule.IMAGE_SIZE)
    }
    shallow = with_changes(full, **{"publishing.replicationMode": "Shallow"})
    assert_valid(shallow, context=ValidationContext(os_disk_size_bytes=32 * TIB))
    assert rules_of(shallow, context=ValidationContext(os_disk_size_bytes=33 * TIB)) == {
        ("source", Rule.IMAGE_SIZE)
    }


# -- allow-lists ------------------------------------------------------------------------------


def test_target_gallery_allow_list_matching() -> None:
    allowed = (f"{SUB}/rg-images/gallery1", "*/shared-rg/*")
    assert target_gallery_allowed(allowed, SUB, "RG-Images", "GALLERY1")
    assert target_gallery_allowed(allowed, OTHER_SUB, "shared-rg", "anything")
    assert not target_gallery_allowed(allowed, SUB, "rg-images", "gallery2")
    assert not target_gallery_allowed(allowed, SUB, "rg-images-2", "gallery1")
    assert not target_gallery_allowed(("*/*",), SUB, "rg", "g")  # malformed entry matches nothing
    assert not target_gallery_allowed((), SUB, "rg", "g")


def test_gallery_not_on_the_allow_list_is_rejected() -> None:
    narrow = dataclasses.replace(SETTINGS, allowed_target_galleries=(f"{SUB}/rg-images/other",))
    (problem,) = problems_of(base_document(), settings=narrow)
    assert (problem.path, problem.rule) == ("target.gallery", Rule.TARGET_GALLERY_ALLOWED)
    assert SettingName.ALLOWED_TARGET_GALLERIES in problem.hint


def test_empty_gallery_allow_list_rejects_everything_and_names_the_setting() -> None:
    (problem,) = problems_of(base_document(), settings=Settings())
    assert problem.rule == Rule.TARGET_GALLERY_ALLOWED
    assert f"set {SettingName.ALLOWED_TARGET_GALLERIES}" in problem.hint


def test_source_subscription_allow_list() -> None:
    assert source_subscription_allowed((), SUB, SUB.upper())
    assert source_subscription_allowed((OTHER_SUB,), SUB, OTHER_SUB)
    assert not source_subscription_allowed((OTHER_SUB,), SUB, FOREIGN_SUB)
    assert source_subscription_allowed(("*",), SUB, FOREIGN_SUB)
    assert_valid(
        with_changes(base_document(), source={"snapshot": {"id": snapshot_id("s", OTHER_SUB)}})
    )
    foreign = with_changes(
        base_document(),
        source={"snapshot": {"id": snapshot_id("s", FOREIGN_SUB)}},
        dataDisks=[{"lun": 0, "source": {"disk": {"id": disk_id("d", FOREIGN_SUB)}}}],
    )
    assert rules_of(foreign) == {
        ("source.snapshot.id", Rule.SOURCE_SUBSCRIPTION_ALLOWED),
        ("dataDisks[0].source.disk.id", Rule.SOURCE_SUBSCRIPTION_ALLOWED),
    }


def test_vhd_storage_account_subscription_is_checked() -> None:
    document = vhd_document(VHD_URL)
    document["source"]["vhd"]["storageAccountId"] = storage_account_id(
        "imagesupload01", FOREIGN_SUB
    )
    (problem,) = problems_of(document)
    assert (problem.path, problem.rule) == (
        "source.vhd.storageAccountId",
        Rule.SOURCE_SUBSCRIPTION_ALLOWED,
    )
    (problem,) = problems_of(
        document, settings=dataclasses.replace(SETTINGS, allowed_source_subscriptions=())
    )
    assert f"set {SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS}" in problem.hint


def test_cross_tenant_image_version_is_still_subject_to_the_subscription_allow_list() -> None:
    rid = image_version_id(FOREIGN_SUB)
    document = with_changes(
        base_document(), source={"imageVersion": {"id": rid, "tenantId": OTHER_SUB}}
    )
    settings = cross_tenant_settings({FOREIGN_SUB: OTHER_SUB})
    assert rules_of(document, settings=settings) == {
        ("source.imageVersion.id", Rule.SOURCE_SUBSCRIPTION_ALLOWED)
    }


# -- definition spec, tags, ids ---------------------------------------------------------------


def test_definition_spec_rules() -> None:
    spec = {
        "osType": "Linux",
        "osState": "Generalized",
        "publisher": "contoso",
        "offer": "o",
        "sku": "s",
    }
    request = parse_build_request(
        with_changes(base_document(), definitionSpec=spec), SETTINGS, now=NOW
    )
    assert request.definition_spec is not None
    assert (request.definition_spec.hyper_v_generation, request.definition_spec.architecture) == (
        "V1",
        "x64",
    )
    bad = {
        **spec,
        "osState": "generalized",
        "publisher": "-x",
        "features": [{"name": "SecurityType"}],
    }
    assert rules_of(with_changes(base_document(), definitionSpec=bad)) == {
        ("definitionSpec.osState", Rule.ENUM),
        ("definitionSpec.publisher", Rule.IDENTIFIER_START),
        ("definitionSpec.features[0].value", Rule.REQUIRED),
    }


def test_tags_rules() -> None:
    assert_valid(with_changes(base_document(), tags={"team": "platform", "empty": ""}))
    assert rules_of(with_changes(base_document(), tags={"k": "v" * 257})) == {("tags.k", Rule.TAGS)}
    assert rules_of(with_changes(base_document(), tags={f"t{i}": "v" for i in range(51)})) == {
        ("tags", Rule.TAGS)
    }


def test_request_id_rules() -> None:
    assert_valid(with_changes(base_document(), requestId="build:2026-11-16.1"))
    assert rules_of(with_changes(base_document(), requestId="has space")) == {
        ("requestId", Rule.REQUEST_ID)
    }
    assert rules_of(with_changes(base_document(), requestId="x" * 129)) == {
        ("requestId", Rule.LENGTH)
    }


def test_schema_version() -> None:
    assert_valid(with_changes(base_document(), schemaVersion=1))
    assert rules_of(with_changes(base_document(), schemaVersion=2)) == {
        ("schemaVersion", Rule.SCHEMA_VERSION)
    }
