from __future__ import annotations

import pytest

from shared.core.resource_ids import (
    GALLERY_IMAGE_VERSION_TYPE,
    SNAPSHOT_TYPE,
    InvalidResourceId,
    parse_resource_id,
    resource_id,
)

SUB = "6e0f4b2c-1d3a-4c5e-9f7a-2b8c4d6e8f01"


def test_parses_a_snapshot_id() -> None:
    parsed = parse_resource_id(
        f"/subscriptions/{SUB}/resourceGroups/rg-builds/providers/Microsoft.Compute/snapshots/os1"
    )
    assert parsed.subscription_id == SUB
    assert parsed.resource_group == "rg-builds"
    assert parsed.namespace == "Microsoft.Compute"
    assert parsed.resource_type == SNAPSHOT_TYPE
    assert parsed.name == "os1"
    assert parsed.is_type("microsoft.compute/SNAPSHOTS")


def test_parses_nested_types_and_names() -> None:
    text = (
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute"
        "/galleries/g1/images/ubuntu/versions/1.2.3"
    )
    parsed = parse_resource_id(text)
    assert parsed.resource_type == GALLERY_IMAGE_VERSION_TYPE
    assert parsed.names == ("g1", "ubuntu", "1.2.3")
    assert str(parsed) == text


def test_keywords_are_case_insensitive_and_str_is_canonical() -> None:
    parsed = parse_resource_id(
        f"/SUBSCRIPTIONS/{SUB}/resourcegroups/RG/PROVIDERS/microsoft.compute/disks/D1/"
    )
    assert (
        str(parsed)
        == f"/subscriptions/{SUB}/resourceGroups/RG/providers/microsoft.compute/disks/D1"
    )
    assert parsed.key == str(parsed).lower()


def test_ids_differing_only_in_case_share_a_key() -> None:
    a = parse_resource_id(
        f"/subscriptions/{SUB}/resourceGroups/RG/providers/Microsoft.Compute/disks/D1"
    )
    b = parse_resource_id(
        f"/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.compute/disks/d1"
    )
    assert a != b
    assert a.key == b.key


def test_builder_round_trips() -> None:
    built = resource_id(SUB, "rg", "Microsoft.Compute/galleries/images", "g", "img")
    assert parse_resource_id(str(built)) == built


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "starting with"),
        ("subscriptions/x", "starting with"),
        (f"/subscriptions/{SUB}/resourceGroups/rg", "expected"),
        ("/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Compute/disks/d", "GUID"),
        (f"/subscriptions/{SUB}/groups/rg/providers/Microsoft.Compute/disks/d", "order"),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg./providers/Microsoft.Compute/disks/d",
            "resource group",
        ),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Compute/disks/d", "namespace"),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/d/extra",
            "without a name",
        ),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute//d", "empty segment"),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/d?x=1",
            "character",
        ),
    ],
)
def test_rejects_malformed_ids(text: str, reason: str) -> None:
    with pytest.raises(InvalidResourceId, match=reason):
        parse_resource_id(text)
