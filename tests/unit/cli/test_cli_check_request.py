from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.cli.__main__ import main
from shared.core.settings import SettingName
from tests.unit.contract.test_request_fixtures import (
    EXAMPLES_DIR,
    REPO_ROOT,
    SUB,
    base_document,
    vhd_document,
)

ALLOW = {SettingName.ALLOWED_TARGET_GALLERIES: f"{SUB}/rg-images/*"}
SAS_URL = "https://imagesupload01.blob.core.windows.net/vhds/os.vhd?sv=1&sig=CLISECRET"


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_valid_request_prints_the_normalised_request(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-request", write(tmp_path, base_document())]) == 0
    out = capsys.readouterr().out
    first, rest = out.split("\n", 1)
    assert first.startswith("valid request auto-")
    assert json.loads(rest)["publishing"]["replicationMode"] == "Full"


def test_json_output_for_a_valid_request(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-request", "--json", write(tmp_path, vhd_document(SAS_URL))]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload["valid"] is True
    assert payload["request"]["source"]["vhd"]["uri"] == SAS_URL.split("?", maxsplit=1)[0]
    assert "CLISECRET" not in out


def test_invalid_request_lists_every_problem(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = base_document()
    document["target"]["gallery"] = "bad-name"
    document["publishing"]["targetRegions"] = [{"name": "eastus"}, {"name": "East US"}]
    assert main(["check-request", write(tmp_path, document)]) == 1
    out = capsys.readouterr().out
    assert "invalid request: 2 problems" in out
    assert "publishing.targetRegions[1].name: duplicate region 'eastus' [unique-regions]" in out
    assert "target.gallery:" in out
    assert "fix:" in out


def test_json_output_for_an_invalid_request(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = base_document()
    document["publishing"]["replicaCount"] = 0
    assert main(["check-request", "--json", write(tmp_path, document)]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload == {
        "valid": False,
        "problems": [
            {
                "path": "publishing.replicaCount",
                "rule": "replica-count",
                "message": "0 is out of range",
                "hint": "use a number from 1 to 100",
            }
        ],
    }


def test_an_empty_allow_list_in_given_settings_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SettingName.MAX_DATA_DISK_GIB, "1024")  # settings, but no allow-list
    assert main(["check-request", "--json", write(tmp_path, base_document())]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["rule"] == "target-gallery-allowed"
    assert SettingName.ALLOWED_TARGET_GALLERIES in problem["hint"]


def stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """Replace stdin by a text stream over ``data``, as a terminal or a pipe gives it."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_reads_stdin(
    allowed_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin_bytes(monkeypatch, json.dumps(base_document()).encode())
    assert main(["check-request", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


@pytest.mark.parametrize(
    "case",
    [
        (b'{"target": "gal\xfflery"}', "encoding", "byte offset 15"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting", "more than 64 deep"),
        (b'{"a": NaN}', "non-finite-number", "NaN"),
        (b'{"target": {}, "target": {}}', "duplicate-key", "'target'"),
        (b'{"a": "\\ud800"}', "lone-surrogate", "U+D800"),
        (b"[]", "document-type", "not an object"),
    ],
)
def test_hostile_bytes_on_stdin_are_invalid_input_with_a_reason(
    allowed_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[bytes, str, str],
) -> None:
    data, rule, text = case
    stdin_bytes(monkeypatch, data)
    assert main(["check-request", "-"]) == 1
    out = capsys.readouterr().out
    assert f"[{rule}]" in out and text in out


def test_hostile_bytes_in_a_file_are_invalid_input(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"target": "Göteborg"}'.encode("latin-1"))
    assert main(["check-request", "--json", str(path)]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["rule"] == "encoding" and "0xF6" in problem["message"]


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe{\x00}\x00", b"[" * 100_000, b'{"a": "\\udfff"}'],
)
def test_no_traceback_from_stdin_in_a_subprocess(data: bytes) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALLERY_")}
    env.update(ALLOW)
    completed = subprocess.run(
        [sys.executable, "-m", "shared.cli", "check-request", "-"],
        cwd=REPO_ROOT,
        env=env,
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert b"Traceback" not in completed.stderr + completed.stdout
    assert b"invalid request: 1 problem" in completed.stdout


def test_invalid_json_is_invalid_input(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"target": ')
    assert main(["check-request", "--json", str(path)]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["rule"] == "json-syntax"
    assert "line 1, column 12" in problem["message"]


def test_source_region_and_now_options(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = base_document()
    document["publishing"]["endOfLifeDate"] = "2030-01-01"
    path = write(tmp_path, document)
    assert (
        main(["check-request", "--source-region", "East US", "--now", "2029-01-01T00:00:00Z", path])
        == 0
    )
    assert main(["check-request", "--json", "--source-region", "westus", path]) == 1
    assert main(["check-request", "--json", "--now", "2031-01-01T00:00:00Z", path]) == 1
    outputs = capsys.readouterr().out
    assert "source-region-in-targets" in outputs
    assert "end-of-life-future" in outputs


def test_usage_errors_exit_2(
    allowed_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-request", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["check-request", "--json", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().out == ""  # an error is no result: nothing on stdout
    with pytest.raises(SystemExit) as no_file:
        main(["check-request"])
    assert no_file.value.code == 2
    with pytest.raises(SystemExit) as bad_now:
        main(["check-request", "--now", "yesterday", "x.json"])
    assert bad_now.value.code == 2


def test_bad_settings_are_a_usage_error(
    allowed_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SettingName.MAX_DATA_DISK_GIB, "lots")
    assert main(["check-request", write(tmp_path, base_document())]) == 2
    err = capsys.readouterr().err
    assert SettingName.MAX_DATA_DISK_GIB in err and "bad settings" in err


def test_python_dash_m_in_a_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GALLERY_")}
    env.update(ALLOW)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "check-request",
            "--json",
            str(EXAMPLES_DIR / "snapshot.json"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload["valid"] is True
    assert payload["request"]["requestId"] == "build-2026-11-16-0001"
