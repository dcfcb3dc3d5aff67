"""galleryctl submit: input that is no JSON document is refused (exit 1) before anything is sent."""

from __future__ import annotations

import io
import sys

import pytest

from shared.cli.__main__ import main
from shared.core.settings import SettingName
from tests.unit.contract.test_request_fixtures import SUB


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b'{"target": "\xff"}', "encoding"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting"),
        (b'{"a": 1, "a": 2}', "duplicate-key"),
        (b"{nope", "json-syntax"),
    ],
)
def test_hostile_stdin_is_not_sent_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: bytes, rule: str
) -> None:
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, f"{SUB}/rg-images/*")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert main(["submit", "-"]) == 1
    err = capsys.readouterr().err
    assert "not sent: 1 problem(s)" in err and f"[{rule}]" in err
