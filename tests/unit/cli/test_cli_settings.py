"""Settings the same way for every command: --settings FILE, GALLERY_SETTINGS, the environment;
without any, a command says so; and the hints for typos in a request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli.__main__ import main
from shared.cli.local_settings import NO_SETTINGS, SETTINGS_FILE_VARIABLE
from shared.core.settings import SettingName
from tests.unit.cli.conftest import ALLOWED_GALLERIES, settings_file
from tests.unit.contract.test_request_fixtures import SUB, base_document, with_changes


def request_file(tmp_path: Path, document: dict[str, object] | None = None) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document or base_document()))
    return str(path)


@pytest.mark.parametrize(
    "command",
    [
        ["check-request", "REQUEST"],
        ["submit", "REQUEST"],
        ["rejects"],
        ["lifecycle", "plan"],
        ["lifecycle", "apply", "--yes"],
        ["lifecycle", "ack", "run-1"],
    ],
)
def test_without_settings_a_command_says_so(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [request_file(tmp_path) if part == "REQUEST" else part for part in command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert NO_SETTINGS in captured.err
    assert "allow-list" not in captured.err + captured.out
    assert "GALLERY_ALLOWED_TARGET_GALLERIES" not in captured.err + captured.out


def test_no_settings_names_the_three_ways() -> None:
    assert NO_SETTINGS == (
        "no settings: pass --settings FILE, set GALLERY_SETTINGS, or export the GALLERY_* settings"
    )


def test_settings_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = settings_file(tmp_path, {SettingName.ALLOWED_TARGET_GALLERIES: ALLOWED_GALLERIES})
    assert main(["check-request", request_file(tmp_path), "--settings", str(path)]) == 0
    assert capsys.readouterr().out.startswith("valid request")


def test_settings_from_the_file_gallery_settings_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, {SettingName.ALLOWED_TARGET_GALLERIES: ALLOWED_GALLERIES})
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(path))
    assert main(["check-request", request_file(tmp_path)]) == 0


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, ALLOWED_GALLERIES)
    assert main(["check-request", request_file(tmp_path)]) == 0


def test_the_option_wins_over_gallery_settings_and_the_environment_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    allowing = settings_file(tmp_path, {SettingName.ALLOWED_TARGET_GALLERIES: ALLOWED_GALLERIES})
    refusing = settings_file(
        tmp_path, {SettingName.ALLOWED_TARGET_GALLERIES: "x/y/z"}, name="other.json"
    )
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(refusing))
    assert main(["check-request", request_file(tmp_path), "--settings", str(allowing)]) == 0
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, "x/y/z")
    assert main(["check-request", request_file(tmp_path), "--settings", str(allowing)]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("content", ["{not json", '["Values"]', "[" * 5000])
def test_a_bad_settings_file_is_a_usage_error(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["check-request", request_file(tmp_path), "--settings", str(path)]) == 2
    assert f"settings file {path}" in capsys.readouterr().err


def test_gallery_settings_naming_a_missing_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(tmp_path / "nope.json"))
    assert main(["check-request", request_file(tmp_path)]) == 2
    assert "nope.json" in capsys.readouterr().err


# -- hints for mistakes in a request -----------------------------------------------------------


def problems(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    result: list[dict[str, str]] = json.loads(capsys.readouterr().out)["problems"]
    return result


def test_an_unknown_field_close_to_an_allowed_one_gets_a_did_you_mean(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = base_document()
    del document["target"]["version"]
    document["target"]["versionPolcy"] = "nextPatch"
    document["publishing"]["ReplicaCount"] = 2
    document["surprise"] = 1
    assert main(["check-request", "-o", "json", request_file(tmp_path, document)]) == 1
    hints = {p["path"]: p["hint"] for p in problems(capsys) if p["rule"] == "unknown-field"}
    assert hints["target.versionPolcy"].startswith("did you mean 'versionPolicy'? remove it;")
    assert hints["publishing.ReplicaCount"].startswith("did you mean 'replicaCount'?")
    assert hints["surprise"].startswith("remove it; allowed here: ")


def test_a_gallery_close_to_an_allowed_one_is_a_typo_not_something_to_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, f"{SUB}/rg-images/devgallery")
    typo = with_changes(base_document(), **{"target.gallery": "devgalery"})
    assert main(["check-request", "-o", "json", request_file(tmp_path, typo)]) == 1
    (problem,) = problems(capsys)
    assert problem["rule"] == "target-gallery-allowed"
    assert problem["hint"] == "did you mean gallery 'devgallery'?"
    assert "ask the operator" not in problem["hint"]


def test_a_resource_group_typo_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, f"{SUB}/rg-images/devgallery")
    typo = with_changes(
        base_document(), **{"target.gallery": "devgallery", "target.resourceGroup": "rg-imagse"}
    )
    assert main(["check-request", "-o", "json", request_file(tmp_path, typo)]) == 1
    (problem,) = problems(capsys)
    assert problem["hint"] == "did you mean resource group 'rg-images'?"


def test_a_gallery_unlike_any_allowed_one_may_be_allow_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, f"{SUB}/rg-images/devgallery")
    other = with_changes(base_document(), **{"target.gallery": "prodgallery"})
    assert main(["check-request", "-o", "json", request_file(tmp_path, other)]) == 1
    (problem,) = problems(capsys)
    assert "did you mean" not in problem["hint"]
    assert f"ask the operator to add '{SUB}/rg-images/prodgallery'" in problem["hint"]
