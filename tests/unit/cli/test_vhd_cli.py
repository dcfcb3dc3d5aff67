"""`galleryctl validate-vhd` on local files: exit codes, text and JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.vhdgen import bad_checksum_footer, write_fixed_vhd
from shared.cli.__main__ import main
from shared.vhd.footer import GIB, MIB
from tests.vhd_fixtures import make_raw, qemu_fixed_vhd

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_valid_vhd_exits_0_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vhd = write_fixed_vhd(tmp_path / "disk.vhd", 64 * GIB)
    assert main(["validate-vhd", str(vhd)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{vhd}: valid fixed VHD")
    assert "64 GiB (68719476736 bytes)" in out
    assert "read          512 bytes in 1 read" in out


def test_invalid_vhd_exits_1_with_every_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 21 * MIB + 4096
    vhd = write_fixed_vhd(tmp_path / "bad.vhd", size, footer=bad_checksum_footer(size))
    assert main(["validate-vhd", str(vhd)]) == 1
    out = capsys.readouterr().out
    assert "NOT a valid VHD for Azure (2 problems)" in out
    assert "[footer-checksum] vhd.footer.checksum" in out
    assert "[mib-aligned-size] vhd.fileSize" in out
    assert "4096 bytes over 21 MiB" in out
    assert "fix: " in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vhd = qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=False)
    assert main(["validate-vhd", "--json", str(vhd)]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is False
    assert payload["fileSize"] == vhd.stat().st_size
    assert payload["virtualSize"] == vhd.stat().st_size - 512
    assert payload["footer"]["diskType"] == "fixed"
    assert payload["footer"]["creatorApplication"] == "qemu"
    assert [p["rule"] for p in payload["problems"]] == ["mib-aligned-size"]
    assert payload["problems"][0]["path"] == "vhd.fileSize"
    assert payload["read"] == {"reads": 1, "bytes": 512}


def test_json_for_a_raw_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_raw(tmp_path / "disk.raw", 20 * MIB)
    assert main(["validate-vhd", "--json", str(raw)]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["footer"] is None
    assert payload["virtualSize"] is None
    assert payload["format"] == "raw-or-unfinished"


def test_a_missing_file_is_not_found_and_a_directory_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate-vhd", str(tmp_path / "nope.vhd")]) == 4
    assert "no such file" in capsys.readouterr().err
    assert main(["validate-vhd", str(tmp_path)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_an_error_is_still_a_json_document_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate-vhd", "-o", "json", str(tmp_path / "nope.vhd")]) == 4
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "valid": None,
        "source": str(tmp_path / "nope.vhd"),
        "error": {"reason": "NotFound", "message": f"no such file: {tmp_path / 'nope.vhd'}"},
    }
    assert "no such file" in captured.err


def test_yaml_tsv_and_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    size = 21 * MIB + 4096
    vhd = write_fixed_vhd(tmp_path / "bad.vhd", size, footer=bad_checksum_footer(size))
    assert main(["validate-vhd", str(vhd), "-o", "yaml"]) == 1
    out = capsys.readouterr().out
    assert "valid: false" in out.splitlines() and "    rule: footer-checksum" in out
    assert main(["validate-vhd", str(vhd), "--query", "problems[].rule", "-o", "tsv"]) == 1
    assert capsys.readouterr().out == "footer-checksum\nmib-aligned-size\n"
    assert main(["validate-vhd", str(vhd), "-o", "none"]) == 1
    assert capsys.readouterr().out == ""


def test_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate-vhd"])
    assert caught.value.code == 2
    assert "PATH_OR_BLOB_URL" in capsys.readouterr().err


def test_python_dash_m_shared_cli(tmp_path: Path) -> None:
    good = write_fixed_vhd(tmp_path / "good.vhd", 20 * MIB)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "validate-vhd", "--json", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["valid"] is True
    assert payload["virtualSize"] == 20 * MIB
    assert payload["problems"] == []
