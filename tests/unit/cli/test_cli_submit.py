"""``galleryctl submit``: sending, refusing, resubmitting, --wait, and every exit code, with fakes
of the queue and the build records, and a local status API."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import composition
from shared.builds.ledger import build_id_for
from shared.builds.records import BuildPhase, BuildRecord
from shared.cli import submit
from shared.cli.__main__ import main
from shared.core.errors import TransientError
from shared.core.messaging import OutgoingMessage
from shared.core.settings import SettingName
from tests.unit.cli.conftest import ALLOWED_GALLERIES, FakeStatusApi, build_document
from tests.unit.contract.test_request_fixtures import SUB, base_document

REQUEST_ID = "r-cli-1"
BUILD_ID = build_id_for(REQUEST_ID)


class FakeSender:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[tuple[str, OutgoingMessage]] = []
        self.error = error

    def send(self, entity: str, message: OutgoingMessage) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((entity, message))


class FakeRecords:
    def __init__(self, *records: BuildRecord) -> None:
        self.records = {r.build_id: r for r in records}

    def get(self, build_id: str) -> BuildRecord | None:
        return self.records.get(build_id)


def ended(phase: BuildPhase, version: str | None = "1.0.3") -> BuildRecord:
    return BuildRecord(
        build_id=BUILD_ID,
        request_id=REQUEST_ID,
        source_key="/subscriptions/s/resourcegroups/g/providers/microsoft.compute/snapshots/x",
        phase=phase,
        subscription_id=SUB,
        resource_group="rg-images",
        gallery="platform_images",
        definition="ubuntu-24.04",
        created_at="2026-11-22T12:00:00+00:00",
        updated_at="2026-11-22T12:05:00+00:00",
        version=version,
        error_reason="ReplicationFailed" if phase is BuildPhase.FAILED else None,
        error="eastus failed" if phase is BuildPhase.FAILED else None,
    )


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> FakeSender:
    """Settings in the environment, a fake queue and no build record yet."""
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, ALLOWED_GALLERIES)
    sender = FakeSender()
    monkeypatch.setattr(composition, "messaging", lambda: sender)
    monkeypatch.setattr(composition, "build_records", FakeRecords)
    return sender


def request_file(tmp_path: Path, **changes: Any) -> str:
    document = {**base_document(), "requestId": REQUEST_ID, **changes}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_a_valid_request_is_sent_with_its_request_id_as_message_id(
    queue: FakeSender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", request_file(tmp_path)]) == 0
    [(entity, message)] = queue.sent
    assert entity == "image-builds" and message.message_id == REQUEST_ID
    out = capsys.readouterr().out
    assert f"request {REQUEST_ID} sent to image-builds" in out
    assert f"build id {BUILD_ID}" in out


def test_json_and_query(
    queue: FakeSender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", request_file(tmp_path), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "sent": True,
        "requestId": REQUEST_ID,
        "buildId": BUILD_ID,
    }
    assert main(["submit", request_file(tmp_path), "--query", "buildId", "-o", "tsv"]) == 0
    assert capsys.readouterr().out == f"{BUILD_ID}\n"


def test_an_invalid_request_is_not_sent_exit_1(
    queue: FakeSender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = request_file(
        tmp_path, publishing={"targetRegions": [{"name": "eastus"}], "replicaCount": 0}
    )
    assert main(["submit", path]) == 1
    assert queue.sent == []
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not sent: 1 problem" in captured.err
    assert (
        "publishing.replicaCount [replica-count]: 0 is out of range (fix: use a number"
        in captured.err
    )
    assert main(["submit", path, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["sent"] is False and document["problems"][0]["rule"] == "replica-count"


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
    queue: FakeSender,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
    rule: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert main(["submit", "-"]) == 1
    err = capsys.readouterr().err
    assert "not sent: 1 problem" in err and f"[{rule}]" in err
    assert queue.sent == []


def test_a_request_already_built_says_so_with_its_version(
    queue: FakeSender,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        composition, "build_records", lambda: FakeRecords(ended(BuildPhase.SUCCEEDED))
    )
    assert main(["submit", request_file(tmp_path)]) == 0
    assert queue.sent == []
    assert f"request {REQUEST_ID} already built as 1.0.3" in capsys.readouterr().out
    assert main(["submit", request_file(tmp_path), "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["sent"] is False and document["version"] == "1.0.3"
    assert document["state"] == "succeeded"
    assert main(["submit", request_file(tmp_path), "--wait", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["build"]["target"]["version"] == "1.0.3"


def test_a_request_whose_build_failed_is_not_sent_again_exit_1(
    queue: FakeSender,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(composition, "build_records", lambda: FakeRecords(ended(BuildPhase.FAILED)))
    assert main(["submit", request_file(tmp_path)]) == 1
    assert queue.sent == []
    out = capsys.readouterr().out
    assert "already ended: failed (ReplicationFailed)" in out and "new requestId" in out


def test_an_unavailable_queue_exits_3(
    queue: FakeSender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue.error = TransientError("the queue is busy", reason="ServiceBusUnavailable")
    assert main(["submit", request_file(tmp_path)]) == 3
    assert "the queue is busy; try again" in capsys.readouterr().err


def test_usage_errors_exit_2(
    queue: FakeSender, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["submit"])
    assert usage.value.code == 2


# -- --wait ------------------------------------------------------------------------------------


def wait(api: FakeStatusApi, path: str, *args: str) -> int:
    return main(["submit", path, "--wait", "--api", api.url, "--interval", "0.01", *args])


def test_wait_follows_the_build_from_before_a_worker_has_it_to_the_end(
    queue: FakeSender,
    status_api: FakeStatusApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    route = f"/api/builds/{BUILD_ID}"
    status_api.not_found(route)  # not picked up yet
    status_api.answer(
        route,
        build_document("queued", build_id=BUILD_ID),
        build_document("replicating", 50, build_id=BUILD_ID),
        build_document("succeeded", 100, build_id=BUILD_ID),
    )
    assert wait(status_api, request_file(tmp_path)) == 0
    captured = capsys.readouterr()
    assert f"request {REQUEST_ID} sent to image-builds" in captured.out
    assert f"build    {BUILD_ID}  (succeeded)" in captured.out
    assert [line.split()[1] for line in captured.err.splitlines()] == [
        "queued",
        "replicating",
        "done",
    ]


def test_wait_for_a_build_that_fails_exits_1(
    queue: FakeSender, status_api: FakeStatusApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(f"/api/builds/{BUILD_ID}", build_document("failed", build_id=BUILD_ID))
    assert wait(status_api, request_file(tmp_path), "-o", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["sent"] is True and document["build"]["state"] == "failed"


def test_wait_when_no_worker_picks_it_up_exits_4(
    queue: FakeSender,
    status_api: FakeStatusApi,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(submit, "PICKUP_GRACE_SECONDS", 0.1)
    status_api.not_found(f"/api/builds/{BUILD_ID}")
    assert wait(status_api, request_file(tmp_path)) == 4
    assert "no worker has picked it up within 0.1 s" in capsys.readouterr().err
    assert len(queue.sent) == 1


def test_wait_without_a_status_api_exits_4_and_an_unreachable_one_3(
    queue: FakeSender, status_api: FakeStatusApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wait(status_api, request_file(tmp_path)) == 4
    assert "sent, but the status API was not found at" in capsys.readouterr().err
    path = request_file(tmp_path)
    assert main(["submit", path, "--wait", "--api", "http://127.0.0.1:9"]) == 3
    capsys.readouterr()


def test_wait_with_a_timeout_exits_3(
    queue: FakeSender, status_api: FakeStatusApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(
        f"/api/builds/{BUILD_ID}", build_document("replicating", 1, build_id=BUILD_ID)
    )
    assert wait(status_api, request_file(tmp_path), "--timeout", "0.2") == 3
    assert "did not end within 0.2 s" in capsys.readouterr().err


def test_no_wait_is_the_default(
    queue: FakeSender, status_api: FakeStatusApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", request_file(tmp_path), "--api", status_api.url]) == 0
    assert main(["submit", request_file(tmp_path), "--no-wait", "--api", status_api.url]) == 0
    assert status_api.requests == []
    capsys.readouterr()
