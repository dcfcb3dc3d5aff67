"""The typed model, normalisation, request ids, SAS handling, and schema/parser agreement."""

from __future__ import annotations

import copy
import json
import time
from datetime import timedelta
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs pinned
import pytest

from shared.contract.model import (
    BuildRequest,
    DiskSource,
    ImageVersionSource,
    ManagedImageSource,
    SnapshotSource,
    VhdSource,
    VirtualMachineSource,
)
from shared.contract.parse import parse_build_request
from shared.contract.versioning import DateVersion, ExplicitVersion, ImageVersion, LatestUnderMajor
from shared.core.errors import ValidationFailed
from tests.unit.contract.test_request_fixtures import (
    NOW,
    SCHEMA_PATH,
    SETTINGS,
    SUB,
    base_document,
    load_examples,
    snapshot_id,
    vhd_document,
    with_changes,
)

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SAS_URL = "https://imagesupload01.blob.core.windows.net/vhds/os.vhd?sv=2024-05-04&sig=S3CRET%2Fsig"


def parse(document: Any) -> BuildRequest:
    return parse_build_request(document, SETTINGS, now=NOW)


# -- examples ---------------------------------------------------------------------------------

EXPECTED_SOURCE_TYPES = {
    "vhd": VhdSource,
    "snapshot": SnapshotSource,
    "disk": DiskSource,
    "managed-image": ManagedImageSource,
    "virtual-machine": VirtualMachineSource,
    "image-version": ImageVersionSource,
}


def test_there_is_one_example_per_source_kind() -> None:
    assert set(load_examples()) == set(EXPECTED_SOURCE_TYPES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SOURCE_TYPES))
def test_example_is_valid_for_schema_and_parser(name: str) -> None:
    document = load_examples()[name]
    VALIDATOR.validate(document)
    request = parse(document)
    assert isinstance(request.source, EXPECTED_SOURCE_TYPES[name])


@pytest.mark.parametrize("name", sorted(EXPECTED_SOURCE_TYPES))
def test_normalised_document_is_valid_and_parses_to_the_same_request(name: str) -> None:
    request = parse(load_examples()[name])
    normalised = request.to_document()
    VALIDATOR.validate(normalised)
    assert parse(normalised) == request
    assert parse(normalised).to_document() == normalised


# -- the model --------------------------------------------------------------------------------


def test_defaults_are_filled() -> None:
    document = parse(base_document()).to_document()
    assert document["schemaVersion"] == 1
    assert document["publishing"] == {
        "targetRegions": [
            {
                "name": "eastus",
                "replicaCount": 1,
                "storageAccountType": "Standard_LRS",
                "excludeFromLatest": False,
            }
        ],
        "replicaCount": 1,
        "storageAccountType": "Standard_LRS",
        "replicationMode": "Full",
        "excludeFromLatest": False,
        "blockDeletionBeforeEndOfLife": False,
    }
    assert document["dataDisks"] == []
    assert document["tags"] == {}
    assert "correlationId" not in document


def test_regions_inherit_top_level_settings_unless_given() -> None:
    document = with_changes(
        base_document(),
        publishing={
            "targetRegions": [{"name": "East US 2"}, {"name": "westeurope", "replicaCount": 5}],
            "replicaCount": 3,
            "storageAccountType": "Standard_ZRS",
            "excludeFromLatest": True,
        },
    )
    regions = parse(document).publishing.target_regions
    assert [(r.name, r.replica_count, r.storage_account_type) for r in regions] == [
        ("eastus2", 3, "Standard_ZRS"),
        ("westeurope", 5, "Standard_ZRS"),
    ]
    assert all(r.exclude_from_latest for r in regions)


def test_end_of_life_after_days_is_resolved_to_a_date() -> None:
    document = with_changes(base_document(), **{"publishing.endOfLifeAfterDays": 30})
    request = parse(document)
    assert request.publishing.end_of_life_date == NOW + timedelta(days=30)
    assert request.to_document()["publishing"]["endOfLifeDate"] == "2026-12-16T12:00:00Z"
    assert "endOfLifeAfterDays" not in request.to_document()["publishing"]


def test_end_of_life_dates_with_offsets_are_normalised_to_utc() -> None:
    document = with_changes(
        base_document(), **{"publishing.endOfLifeDate": "2027-06-01T02:00:00.1234567+02:00"}
    )
    assert parse(document).to_document()["publishing"]["endOfLifeDate"] == (
        "2027-06-01T00:00:00.123456Z"
    )
    plain = with_changes(base_document(), **{"publishing.endOfLifeDate": "2027-06-01"})
    assert parse(plain).to_document()["publishing"]["endOfLifeDate"] == "2027-06-01T00:00:00Z"


def test_version_and_policies_are_typed() -> None:
    assert parse(base_document()).target.version_policy == ExplicitVersion(ImageVersion(1, 0, 0))
    target = dict(base_document()["target"])
    del target["version"]
    for policy, expected in [
        ("date", DateVersion()),
        ({"latestUnderMajor": 4}, LatestUnderMajor(4)),
    ]:
        request = parse(with_changes(base_document(), target={**target, "versionPolicy": policy}))
        assert request.target.version_policy == expected
        assert request.target.version is None
        assert request.to_document()["target"]["versionPolicy"] == policy


def test_source_key_is_the_lower_cased_id() -> None:
    document = with_changes(
        base_document(),
        source={
            "snapshot": {
                "id": snapshot_id("OS-Disk").upper().replace("SUBSCRIPTIONS", "subscriptions")
            }
        },
    )
    request = parse(document)
    assert request.source_key == snapshot_id("os-disk").lower()


def test_vhd_source_key_drops_the_sas() -> None:
    request = parse(vhd_document(SAS_URL))
    assert request.source_key == "https://imagesupload01.blob.core.windows.net/vhds/os.vhd"


# -- request ids ------------------------------------------------------------------------------


def test_given_request_id_is_kept() -> None:
    document = with_changes(base_document(), requestId="build-42")
    assert parse(document).request_id == "build-42"


def test_derived_request_id_is_stable_and_content_based() -> None:
    first = parse(base_document()).request_id
    assert first.startswith("auto-")
    assert parse(base_document()).request_id == first
    changed = with_changes(base_document(), **{"target.version": "1.0.1"})
    assert parse(changed).request_id != first


def test_derived_request_id_ignores_bookkeeping_fields_and_key_order() -> None:
    first = parse(base_document()).request_id
    annotated = with_changes(base_document(), correlationId="run-1", requestedBy="someone")
    reordered = dict(reversed(list(copy.deepcopy(base_document()).items())))
    assert parse(annotated).request_id == first
    assert parse(reordered).request_id == first


def test_derived_request_id_ignores_the_sas_and_case_of_ids() -> None:
    with_sas = parse(vhd_document(SAS_URL)).request_id
    other_sas = parse(vhd_document(SAS_URL.replace("S3CRET", "another"))).request_id
    no_sas = parse(vhd_document(SAS_URL.split("?", maxsplit=1)[0])).request_id
    assert with_sas == other_sas == no_sas
    lower = with_changes(base_document(), source={"snapshot": {"id": snapshot_id("os1").lower()}})
    assert parse(lower).request_id == parse(base_document()).request_id


def test_derived_request_id_is_the_same_on_a_later_redelivery() -> None:
    document = with_changes(base_document(), **{"publishing.endOfLifeAfterDays": 90})
    today = parse_build_request(document, SETTINGS, now=NOW)
    tomorrow = parse_build_request(document, SETTINGS, now=NOW + timedelta(days=1))
    assert today.request_id == tomorrow.request_id
    assert today.publishing.end_of_life_date != tomorrow.publishing.end_of_life_date


# -- secrets ----------------------------------------------------------------------------------


def test_sas_is_kept_for_use_but_not_printed() -> None:
    request = parse(vhd_document(SAS_URL))
    assert isinstance(request.source, VhdSource)
    assert request.source.uri == SAS_URL
    assert "S3CRET" not in json.dumps(request.to_document())
    assert "S3CRET" not in repr(request)
    assert "S3CRET" not in str(request.log_fields())
    assert request.to_document(include_secrets=True)["source"]["vhd"]["uri"] == SAS_URL


def test_sas_never_appears_in_problems() -> None:
    bad = vhd_document(SAS_URL.replace("imagesupload01.blob", "imagesupload01.evil"), "other")
    bad["publishing"]["targetRegions"] = []
    with pytest.raises(ValidationFailed) as caught:
        parse(bad)
    assert "S3CRET" not in str(caught.value)
    assert all("S3CRET" not in p.message + p.hint for p in caught.value.problems)


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_build_request(base_document(), SETTINGS, now=NOW.replace(tzinfo=None))


def test_validation_is_fast() -> None:
    document = load_examples()["vhd"]
    started = time.perf_counter()
    for _ in range(200):
        parse(document)
    per_request = (time.perf_counter() - started) / 200
    assert per_request < 0.005  # generous: measured well below a millisecond


# -- schema and parser agree on invalid documents ---------------------------------------------


def _without(document: dict[str, Any], dotted: str) -> dict[str, Any]:
    result = copy.deepcopy(document)
    node = result
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    del node[last]
    return result


def _spec(**fields: str) -> dict[str, Any]:
    base = {"osType": "Linux", "osState": "Generalized", "publisher": "p", "offer": "o", "sku": "s"}
    return {**base, **fields}


INVALID_DOCUMENTS: dict[str, Any] = {
    "not an object": [],
    "unknown top-level field": with_changes(base_document(), extra=True),
    "unknown target field": with_changes(base_document(), **{"target.location": "eastus"}),
    "missing target": _without(base_document(), "target"),
    "missing source": _without(base_document(), "source"),
    "missing publishing": _without(base_document(), "publishing"),
    "missing gallery": _without(base_document(), "target.gallery"),
    "both version and policy": with_changes(base_document(), **{"target.versionPolicy": "date"}),
    "neither version nor policy": _without(base_document(), "target.version"),
    "bad policy": with_changes(
        _without(base_document(), "target.version"), **{"target.versionPolicy": "latest"}
    ),
    "bad version": with_changes(base_document(), **{"target.version": "1.0"}),
    "version above int32": with_changes(base_document(), **{"target.version": "2147483648.0.0"}),
    "gallery with dash": with_changes(base_document(), **{"target.gallery": "my-gallery"}),
    "definition ending in dot": with_changes(base_document(), **{"target.definition": "img."}),
    "bad subscription": with_changes(base_document(), **{"target.subscriptionId": "abc"}),
    "two sources": with_changes(
        base_document(), source={"snapshot": {"id": snapshot_id("a")}, "disk": {"id": "x"}}
    ),
    "no source": with_changes(base_document(), source={}),
    "unknown source kind": with_changes(base_document(), source={"blob": {"id": "x"}}),
    "snapshot id for disk": with_changes(
        base_document(), source={"disk": {"id": snapshot_id("a")}}
    ),
    "extra source field": with_changes(
        base_document(), source={"snapshot": {"id": snapshot_id("a"), "uri": "x"}}
    ),
    "tenant on snapshot": with_changes(
        base_document(), source={"snapshot": {"id": snapshot_id("a"), "tenantId": SUB}}
    ),
    "vhd without account": with_changes(
        base_document(), source={"vhd": {"uri": "https://a1b2c.blob.core.windows.net/c1c/a.vhd"}}
    ),
    "managed image as data disk": with_changes(
        base_document(),
        dataDisks=[
            {
                "lun": 0,
                "source": {
                    "managedImage": {
                        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
                        "Microsoft.Compute/images/i"
                    }
                },
            }
        ],
    ),
    "lun out of range": with_changes(
        base_document(), dataDisks=[{"lun": 64, "source": {"disk": {"id": snapshot_id("x")}}}]
    ),
    "bad host caching": with_changes(
        base_document(),
        dataDisks=[
            {"lun": 0, "source": {"snapshot": {"id": snapshot_id("d")}}, "hostCaching": "readonly"}
        ],
    ),
    "no target regions": with_changes(base_document(), **{"publishing.targetRegions": []}),
    "region not a string": with_changes(
        base_document(), **{"publishing.targetRegions": [{"name": 5}]}
    ),
    "replica count 0": with_changes(base_document(), **{"publishing.replicaCount": 0}),
    "replica count 101": with_changes(
        base_document(), **{"publishing.targetRegions": [{"name": "eastus", "replicaCount": 101}]}
    ),
    "replica count not integer": with_changes(base_document(), **{"publishing.replicaCount": 1.5}),
    "bool as replica count": with_changes(base_document(), **{"publishing.replicaCount": True}),
    "bad storage type": with_changes(
        base_document(), **{"publishing.storageAccountType": "StandardSSD_LRS"}
    ),
    "bad replication mode": with_changes(base_document(), **{"publishing.replicationMode": "Deep"}),
    "eol date and days": with_changes(
        base_document(),
        **{"publishing.endOfLifeDate": "2030-01-01", "publishing.endOfLifeAfterDays": 5},
    ),
    "eol bad format": with_changes(base_document(), **{"publishing.endOfLifeDate": "01/01/2030"}),
    "eol days 0": with_changes(base_document(), **{"publishing.endOfLifeAfterDays": 0}),
    "block deletion without eol": with_changes(
        base_document(), **{"publishing.blockDeletionBeforeEndOfLife": True}
    ),
    "spec missing sku": with_changes(
        base_document(),
        definitionSpec={
            "osType": "Linux",
            "osState": "Generalized",
            "publisher": "p",
            "offer": "o",
        },
    ),
    "spec bad os type": with_changes(
        base_document(),
        definitionSpec={
            "osType": "linux",
            "osState": "Generalized",
            "publisher": "p",
            "offer": "o",
            "sku": "s",
        },
    ),
    "tag value not string": with_changes(base_document(), tags={"a": 1}),
    "tag name with slash": with_changes(base_document(), tags={"a/b": "x"}),
    "too many tags": with_changes(base_document(), tags={f"t{i}": "v" for i in range(51)}),
    "empty correlation id": with_changes(base_document(), correlationId=""),
    "bad request id": with_changes(base_document(), requestId="-starts-with-dash"),
    "schema version 2": with_changes(base_document(), schemaVersion=2),
    # Azure's naming rules (docs/build-requests.md#naming-rules)
    "definition ending in underscore": with_changes(base_document(), **{"target.definition": "i_"}),
    "gallery starting with period": with_changes(base_document(), **{"target.gallery": ".g"}),
    "gallery with zero-width space": with_changes(
        base_document(), **{"target.gallery": "g\u200bg"}
    ),
    "resource group with space": with_changes(base_document(), **{"target.resourceGroup": "r g"}),
    "resource group of 91": with_changes(base_document(), **{"target.resourceGroup": "r" * 91}),
    "offer of 65": with_changes(base_document(), definitionSpec=_spec(offer="o" * 65)),
    "sku of 65": with_changes(base_document(), definitionSpec=_spec(sku="s" * 65)),
    "publisher of 129": with_changes(base_document(), definitionSpec=_spec(publisher="p" * 129)),
    "publisher ending in period": with_changes(
        base_document(), definitionSpec=_spec(publisher="p.")
    ),
    "sku ending in period": with_changes(base_document(), definitionSpec=_spec(sku="s.")),
}


@pytest.mark.parametrize("case", sorted(INVALID_DOCUMENTS))
def test_schema_and_parser_both_reject(case: str) -> None:
    document = INVALID_DOCUMENTS[case]
    assert list(VALIDATOR.iter_errors(document)), f"schema accepted {case!r}"
    with pytest.raises(ValidationFailed):
        parse(document)


def test_base_document_is_valid_for_both() -> None:
    VALIDATOR.validate(base_document())
    parse(base_document())


VALID_DOCUMENTS: dict[str, Any] = {
    "names at Azure's limits": with_changes(
        base_document(),
        **{"target.gallery": "g" * 80, "target.definition": "d" * 80},
        definitionSpec=_spec(publisher="p" * 128, offer="o" * 64, sku="s" * 64),
    ),
    "identifier parts with inner periods and trailing _ or -": with_changes(
        base_document(), definitionSpec=_spec(publisher="a.b_", offer="o-", sku="1.0-x")
    ),
}


@pytest.mark.parametrize("case", sorted(VALID_DOCUMENTS))
def test_schema_and_parser_both_accept(case: str) -> None:
    VALIDATOR.validate(VALID_DOCUMENTS[case])
    parse(VALID_DOCUMENTS[case])


@pytest.mark.parametrize("name", ["rg-日本", "Ресурсы", "(rg)_1.x-"])
def test_schema_and_parser_accept_unicode_resource_groups(name: str) -> None:
    document = with_changes(base_document(), **{"target.resourceGroup": name})
    VALIDATOR.validate(document)
    with pytest.raises(ValidationFailed) as caught:  # the test allow-list names rg-images only
        parse(document)
    assert {p.rule for p in caught.value.problems} == {"target-gallery-allowed"}
