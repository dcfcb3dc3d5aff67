"""``galleryctl rejects``: the whole reason and fix, in every format, with a fake Service Bus."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from shared import composition
from shared.cli.__main__ import main
from shared.cli.rejects import render_letters
from shared.core.errors import TransientError
from shared.core.settings import SettingName

FIX = (
    "use one of: Standard_LRS, Standard_ZRS, Premium_LRS, PremiumV2_LRS (the storage account "
    "type of each replica; see docs/build-requests.md#publishing for the rules)"
)
DESCRIPTION = (
    "invalid request: 1 problem: publishing.storageAccountType [enum]: 'Floppy_LRS' is not "
    f"allowed (fix: {FIX})"
)


@dataclass(frozen=True)
class Letter:
    message_id: str
    reason: str
    description: str
    enqueued_at: datetime | None
    body: str


class FakeMessaging:
    def __init__(self, *letters: Letter, error: Exception | None = None) -> None:
        self.letters = list(letters)
        self.error = error
        self.asked: list[tuple[str, int]] = []

    def peek_dead_letters(self, queue: str, limit: int) -> list[Letter]:
        self.asked.append((queue, limit))
        if self.error is not None:
            raise self.error
        return self.letters[:limit]


LETTER = Letter(
    "m-1", "ValidationFailed", DESCRIPTION, datetime(2026, 11, 22, 12, 0, tzinfo=UTC), "{}"
)


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> FakeMessaging:
    monkeypatch.setenv(SettingName.REJECTED_QUEUE, "image-builds-rejected")
    fake = FakeMessaging(LETTER)
    monkeypatch.setattr(composition, "messaging", lambda: fake)
    return fake


def test_the_table_shows_the_whole_fix_wrapped(
    bus: FakeMessaging, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rejects"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "2026-11-22 12:00:00  m-1  ValidationFailed"
    assert all(line.startswith("    ") for line in lines[1:])
    assert DESCRIPTION in " ".join(" ".join(lines[1:]).split())  # nothing cut, only wrapped
    assert "..." not in out
    assert bus.asked == [("image-builds-rejected", 50)]


def test_wrapping_follows_the_width_and_never_breaks_a_word() -> None:
    document = [{"messageId": "m", "reason": "R", "description": DESCRIPTION, "enqueuedAt": None}]
    lines = render_letters(document, "q", width=70).splitlines()
    assert max(len(line) for line in lines[1:]) <= 70
    assert "docs/build-requests.md#publishing" in "\n".join(lines)
    assert render_letters([], "q") == "no dead letters in q"


def test_json_has_the_full_description_and_the_body(
    bus: FakeMessaging, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rejects", "-o", "json", "--queue", "image-builds", "--limit", "3"]) == 0
    [letter] = json.loads(capsys.readouterr().out)
    assert letter == {
        "messageId": "m-1",
        "reason": "ValidationFailed",
        "description": DESCRIPTION,
        "enqueuedAt": "2026-11-22T12:00:00+00:00",
        "body": "{}",
    }
    assert bus.asked == [("image-builds", 3)]


def test_query_and_tsv(bus: FakeMessaging, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rejects", "--query", "[].[messageId, reason]", "-o", "tsv"]) == 0
    assert capsys.readouterr().out == "m-1\tValidationFailed\n"


def test_exit_codes(
    bus: FakeMessaging, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bus.letters = []
    assert main(["rejects"]) == 0
    assert "no dead letters in image-builds-rejected" in capsys.readouterr().out
    bus.error = TransientError("Service Bus is unreachable")
    assert main(["rejects"]) == 3
    assert "Service Bus is unreachable; try again" in capsys.readouterr().err
    monkeypatch.delenv(SettingName.REJECTED_QUEUE)
    assert main(["rejects"]) == 2  # no settings at all
    with pytest.raises(SystemExit) as usage:
        main(["rejects", "--limit", "none"])
    assert usage.value.code == 2
