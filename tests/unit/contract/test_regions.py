"""The ``region-name`` rule: Azure's region names (built-in or live), with "did you mean"."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.cli.__main__ import main
from shared.contract.parse import parse_build_request
from shared.contract.regions import (
    BUILTIN_REGIONS,
    PUBLIC_REGIONS,
    closest_region,
    target_subscription,
    with_known_regions,
)
from shared.contract.rules import STORED_REQUEST, Rule, ValidationContext
from shared.core.errors import ValidationFailed
from shared.core.settings import SettingName, Settings

SUB = "11111111-2222-3333-4444-555555555555"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
SETTINGS = Settings.from_env({SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*"})
REQUEST: dict[str, Any] = {
    "target": {
        "subscriptionId": SUB,
        "resourceGroup": "rg-images",
        "gallery": "gal",
        "definition": "ubuntu",
        "versionPolicy": "nextPatch",
    },
    "source": {
        "snapshot": {
            "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/snapshots/s"
        }
    },
    "publishing": {"targetRegions": [{"name": "westeurope"}]},
}


def _regions(*names: str) -> dict[str, Any]:
    doc = copy.deepcopy(REQUEST)
    doc["publishing"]["targetRegions"] = [{"name": n} for n in names]
    return doc


def _problems(doc: dict[str, Any], context: ValidationContext | None = None) -> list[Any]:
    with pytest.raises(ValidationFailed) as caught:
        parse_build_request(doc, SETTINGS, now=NOW, context=context)
    return caught.value.problems


def test_a_typo_is_refused_with_did_you_mean() -> None:
    [problem] = _problems(_regions("westeurope", "westeurop"))
    assert problem.path == "publishing.targetRegions[1].name"
    assert problem.rule == Rule.REGION_NAME
    assert problem.message == "'westeurop' is not an Azure region"
    assert problem.hint.startswith("did you mean 'westeurope'?")


@pytest.mark.parametrize("name", ["West Europe", "westeurope", "EastUS2", "newzealandnorth"])
def test_real_regions_in_either_spelling_pass(name: str) -> None:
    request = parse_build_request(_regions(name), SETTINGS, now=NOW)
    assert [r.name for r in request.publishing.target_regions] == [name.replace(" ", "").lower()]


def test_a_name_far_from_any_region_gets_no_guess() -> None:
    [problem] = _problems(_regions("westeurope", "mars"))
    assert "did you mean" not in problem.hint
    assert "az account list-locations" in problem.hint


def test_logical_regions_are_no_target() -> None:
    [problem] = _problems(_regions("westeurope", "europe"))
    assert problem.rule == Rule.REGION_NAME


def test_the_live_list_wins_over_the_built_in_one() -> None:
    sovereign = frozenset({"usgovvirginia", "usgovarizona"})
    live = ValidationContext(known_regions=sovereign)
    request = parse_build_request(_regions("usgovvirginia"), SETTINGS, now=NOW, context=live)
    assert [r.name for r in request.publishing.target_regions] == ["usgovvirginia"]
    [problem] = _problems(_regions("usgovvirgina"), live)
    assert problem.hint.startswith("did you mean 'usgovvirginia'?")
    [problem] = _problems(_regions("westeurope"), live)  # not in this cloud
    assert problem.rule == Rule.REGION_NAME


def test_a_stored_request_is_not_checked_against_a_list() -> None:
    request = parse_build_request(
        _regions("brandnewregion"), SETTINGS, now=NOW, context=STORED_REQUEST
    )
    assert [r.name for r in request.publishing.target_regions] == ["brandnewregion"]


def test_the_catalog_goes_into_the_context_for_the_requests_subscription() -> None:
    asked: list[str | None] = []

    class Catalog:
        def known_regions(self, subscription_id: str | None) -> frozenset[str]:
            asked.append(subscription_id)
            return frozenset({"westeurope"})

    context = with_known_regions(ValidationContext(source_region="westeurope"), REQUEST, Catalog())
    assert context.known_regions == frozenset({"westeurope"})
    assert context.source_region == "westeurope"
    assert asked == [SUB]
    assert with_known_regions(ValidationContext(), b"not a document", None).known_regions == (
        PUBLIC_REGIONS
    )
    assert target_subscription({"target": {"subscriptionId": 7}}) is None
    assert BUILTIN_REGIONS.known_regions(SUB) == PUBLIC_REGIONS


def test_closest_region() -> None:
    assert closest_region("westeurop", PUBLIC_REGIONS) == "westeurope"
    assert closest_region("eastus3", PUBLIC_REGIONS) in {"eastus", "eastus2", "westus3"}
    assert closest_region("antarctica", PUBLIC_REGIONS) is None


def test_check_request_offline_suggests_the_region(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``galleryctl check-request`` needs no Azure: the built-in list, with "did you mean"."""
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, "*/*/*")
    path = tmp_path / "request.json"
    path.write_text(json.dumps(_regions("westeurop")))
    assert main(["check-request", "--json", str(path)]) == 1
    [problem] = json.loads(capsys.readouterr().out)["problems"]
    assert problem["rule"] == "region-name"
    assert problem["hint"].startswith("did you mean 'westeurope'?")
