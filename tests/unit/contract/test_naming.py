"""Azure's naming rules, each problem naming the rule that failed (sources in
docs/build-requests.md#naming-rules); invisible and look-alike characters shown as code points."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contract.display import describe_character, visible
from tests.unit.contract.test_request_fixtures import base_document, vhd_document, with_changes
from tests.unit.contract.test_validation import assert_valid, problems_of, rules_of

SPEC = {"osType": "Linux", "osState": "Generalized", "publisher": "p", "offer": "o", "sku": "s"}


def target(**fields: Any) -> dict[str, Any]:
    return with_changes(base_document(), **{f"target.{k}": v for k, v in fields.items()})


def spec(**fields: Any) -> dict[str, Any]:
    return with_changes(base_document(), definitionSpec={**SPEC, **fields})


# -- the display helper -------------------------------------------------------------------------


def test_invisible_and_non_ascii_characters_are_shown_as_code_points() -> None:
    assert visible("my\u200bgallery") == "my<U+200B>gallery"
    assert visible("g\u0430llery") == "g<U+0430>llery"  # Cyrillic a
    assert visible("a\u00a0b\tc") == "a<U+00A0>b<U+0009>c"
    assert visible("plain-ascii_1.0 (x)") == "plain-ascii_1.0 (x)"
    assert describe_character("\u200b") == "U+200B ZERO WIDTH SPACE"
    assert describe_character("-") == "'-'"


# -- gallery names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["g", "gallery1", "my_gallery.prod", "A" * 80, "a.b_c9", "9"])
def test_gallery_names_accepted(name: str) -> None:
    assert_valid(target(gallery=name))


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("my-gallery", "gallery-name-characters"),
        ("gäl", "gallery-name-characters"),
        ("my gallery", "gallery-name-characters"),
        ("gal\u200blery", "gallery-name-characters"),
        ("_gallery", "gallery-name-start"),
        (".gallery", "gallery-name-start"),
        ("gallery.", "gallery-name-end"),
        ("gallery_", "gallery-name-end"),
        ("A" * 81, "gallery-name-length"),
        ("A" * 1001, "gallery-name-length"),
    ],
)
def test_gallery_names_rejected_by_the_rule_that_failed(name: str, rule: str) -> None:
    assert rules_of(target(gallery=name)) == {("target.gallery", rule)}


def test_gallery_hyphens_are_named_and_english_letters_said() -> None:
    (problem,) = problems_of(target(gallery="my-gallery"))
    assert "'-'" in problem.message
    assert "English letters" in problem.message
    assert "hyphen" in problem.hint


def test_gallery_invisible_characters_are_shown_as_code_points() -> None:
    (problem,) = problems_of(target(gallery="gal\u200blery"))
    assert "gal<U+200B>lery" in problem.message
    assert "U+200B ZERO WIDTH SPACE" in problem.message
    assert "\u200b" not in str(problem)


def test_a_look_alike_letter_is_shown_as_a_code_point() -> None:
    (problem,) = problems_of(target(gallery="g\u0430llery"))  # Cyrillic a
    assert "U+0430 CYRILLIC SMALL LETTER A" in problem.message


def test_every_failed_gallery_rule_is_reported() -> None:
    assert {rule for _, rule in rules_of(target(gallery="_my-gallery."))} == {
        "gallery-name-characters",
        "gallery-name-start",
        "gallery-name-end",
    }


# -- image definition names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["d", "ubuntu-24.04", "win_2025-gen2", "x" * 80, "a_b-c.d9"])
def test_definition_names_accepted(name: str) -> None:
    assert_valid(target(definition=name))


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("-img", "definition-name-start"),
        ("_img", "definition-name-start"),
        ("img-", "definition-name-end"),
        ("img.", "definition-name-end"),
        ("img_", "definition-name-end"),
        ("x" * 81, "definition-name-length"),
        ("img/1", "definition-name-characters"),
        ("img name", "definition-name-characters"),
        ("imäge", "definition-name-characters"),
    ],
)
def test_definition_names_rejected_by_the_rule_that_failed(name: str, rule: str) -> None:
    assert rules_of(target(definition=name)) == {("target.definition", rule)}


# -- resource group names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["rg", "rg-images", "(rg)_1.a", "-rg", "r" * 90, "rg-日本", "Ресурсы", "rg_"]
)
def test_resource_group_names_accepted(name: str) -> None:
    # the test settings allow galleries in rg-images only: other names fail the allow-list alone
    assert rules_of(target(resourceGroup=name)) <= {("target.gallery", "target-gallery-allowed")}


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("rg.", "resource-group-name-trailing-period"),
        ("r" * 91, "resource-group-name-length"),
        ("rg images", "resource-group-name-characters"),
        ("rg/images", "resource-group-name-characters"),
        ("rg\u200bimages", "resource-group-name-characters"),
        ("rg\u0301", "resource-group-name-characters"),  # a combining mark is not a letter
    ],
)
def test_resource_group_names_rejected_by_the_rule_that_failed(name: str, rule: str) -> None:
    found = rules_of(target(resourceGroup=name))
    assert ("target.resourceGroup", rule) in found
    assert {p for p, _ in found} <= {"target.resourceGroup", "target.gallery"}


# -- the definition identifier: publisher 128, offer and sku 64 ---------------------------------


def test_identifier_lengths_are_azures() -> None:
    assert_valid(spec(publisher="p" * 128, offer="o" * 64, sku="s" * 64))
    assert rules_of(spec(offer="o" * 65)) == {("definitionSpec.offer", "identifier-length")}
    assert rules_of(spec(sku="s" * 65)) == {("definitionSpec.sku", "identifier-length")}
    assert rules_of(spec(publisher="p" * 129)) == {
        ("definitionSpec.publisher", "identifier-length")
    }


@pytest.mark.parametrize("key", ["publisher", "offer", "sku"])
def test_identifier_parts_cannot_end_with_a_period(key: str) -> None:
    assert rules_of(spec(**{key: "contoso."})) == {
        (f"definitionSpec.{key}", "identifier-trailing-period")
    }
    assert_valid(spec(**{key: "con.toso_-"}))


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("-x", "identifier-start"),
        ("con toso", "identifier-characters"),
        ("contoso\u200b", "identifier-characters"),
        ("cöntoso", "identifier-characters"),
    ],
)
def test_identifier_characters(value: str, rule: str) -> None:
    assert rules_of(spec(publisher=value)) == {("definitionSpec.publisher", rule)}


# -- other messages quote values visibly --------------------------------------------------------


def test_unknown_fields_show_invisible_characters() -> None:
    document = base_document()
    document["target"]["gallery\u200b"] = "x"
    (problem,) = problems_of(document)
    assert problem.rule == "unknown-field"
    assert "<U+200B>" in problem.message and "\u200b" not in problem.message


def test_bad_region_names_show_invisible_characters() -> None:
    regions = [{"name": "east\u200bus"}]
    document = with_changes(base_document(), **{"publishing.targetRegions": regions})
    (problem,) = problems_of(document)
    assert problem.rule == "region-name" and "east<U+200B>us" in problem.message


def test_an_invisible_character_in_an_enum_is_shown() -> None:
    storage = "Standard_LRS\u200b"
    document = with_changes(base_document(), **{"publishing.storageAccountType": storage})
    (problem,) = problems_of(document)
    assert "Standard_LRS<U+200B>" in problem.message


# -- VHD blob URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://imagesupload01.blob.core.windows.net/vhds/",
        "https://imagesupload01.blob.core.windows.net/vhds",
        "https://imagesupload01.blob.core.windows.net/vhds/?sv=1&sig=SECRET",
        "https://imagesupload01.blob.core.windows.net/vhds/images/",
    ],
)
def test_a_blob_url_without_a_blob_name_says_so(uri: str) -> None:
    (problem,) = problems_of(vhd_document(uri))
    assert (problem.path, problem.rule) == ("source.vhd.uri", "vhd-blob-name")
    assert "vhds" in problem.message and "SECRET" not in str(problem)


# -- version names: digits and periods, Major.Minor.Patch (a trailing period is no version) ------


@pytest.mark.parametrize("version", ["1.0.0.", "1.0.", ".1.0.0", "1.0.0\u200b"])
def test_versions_with_a_stray_character_are_refused(version: str) -> None:
    (problem,) = problems_of(target(version=version))
    assert (problem.path, problem.rule) == ("target.version", "version-format")
    assert "\u200b" not in problem.message
