"""``galleryctl status``: rendering, the wait loop, and the exit codes against a local API."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from shared.cli import views
from shared.cli.__main__ import main
from shared.cli.api import api_base
from shared.cli.follow import ProgressDisplay, wait_for_build
from shared.cli.status import bar, fetch, render_build, render_list
from tests.unit.cli.conftest import FakeStatusApi, build_document

PATH = "/api/builds/b-1"


def test_a_build_is_shown_with_one_line_per_region() -> None:
    text = render_build(build_document("replicating", 40, 100))
    assert "build    b-1  (replicating)" in text
    assert "target   g/d/1.0.0" in text
    west = next(line for line in text.splitlines() if line.startswith("West Europe"))
    assert "Replicating" in west and " 40%" in west and bar(40) in west
    assert bar(40) == "########............"


def test_a_failed_build_shows_its_reason() -> None:
    failed = build_document("failed", 40, error={"reason": "ReplicationFailed", "message": "x"})
    assert "error    ReplicationFailed: x" in render_build(failed)


def test_the_list_is_a_table_with_a_row_per_build() -> None:
    lines = render_list([build_document("succeeded", 100, 100)]).splitlines()
    assert lines[0].split() == ["Build", "State", "Target", "Progress", "Updated"]
    assert lines[2].split() == ["b-1", "succeeded", "g/d/1.0.0", "100%", "2026-11-22T12:00:00"]
    assert render_list([]) == "no builds yet"


def test_waiting_reports_each_change_once_and_stops_at_the_end() -> None:
    answers = iter(
        [None, build_document("started"), build_document("replicating", 10, 0),
         build_document("replicating", 10, 0), build_document("succeeded", 100, 100)]
    )  # fmt: skip
    changes: list[str] = []
    final = wait_for_build(
        lambda: next(answers),
        timeout=None,
        interval=0,
        on_change=lambda b: changes.append(b["state"]),
        sleep=lambda _s: None,
    )
    assert final is not None and final["state"] == "succeeded"
    assert changes == ["started", "replicating", "succeeded"]


def test_waiting_gives_up_at_the_timeout() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    result = wait_for_build(
        lambda: build_document("replicating", 5),
        timeout=3,
        interval=1,
        on_change=lambda _b: None,
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert result is None and now[0] == 3


def test_the_progress_line_shows_phase_elapsed_time_and_regions() -> None:
    assert views.elapsed(42) == "0:42" and views.elapsed(3729) == "1:02:09"
    line = views.progress_line(build_document("replicating", 40, 10), 62)
    assert line == "b-1  replicating     1:02  g/d/1.0.0  West Europe 40%, East US 10%"
    assert views.progress_line(build_document("started"), 5).split()[1] == "creating"
    assert views.progress_line(build_document("succeeded", 100), 5).split()[1:3] == ["done", "0:05"]


def test_on_a_terminal_the_line_is_redrawn_in_place() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=True, clock=lambda: 0.0)
    for build in (build_document("queued"), build_document("replicating", 50)):
        display.polled(build)
        display.changed(build)
    display.close()
    text = stream.getvalue()
    assert text.count("\r\x1b[2K") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "West Europe 50%" in text


# -- against a local status API ------------------------------------------------------------------


def status(api: FakeStatusApi, *args: str) -> int:
    return main(["status", *args, "--api", api.url, "--interval", "0.01"])


def test_a_build_exits_0_and_json_is_the_apis_document(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    document = build_document("replicating", 40)
    status_api.answer(PATH, document)
    assert status(status_api, "b-1") == 0
    assert "build    b-1  (replicating)" in capsys.readouterr().out
    assert status(status_api, "b-1", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out) == document


def test_a_failed_build_exits_1(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, build_document("failed", error={"reason": "R", "message": "m"}))
    assert status(status_api, "b-1") == 1
    assert "error    R: m" in capsys.readouterr().out


def test_an_unknown_build_exits_4_at_once_even_with_wait(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.not_found(PATH, "no build 'b-1' (not received yet, or rejected)")
    started = time.monotonic()
    assert status(status_api, "b-1", "--wait") == 4
    assert time.monotonic() - started < 5
    assert status_api.paths() == [PATH]  # one look, no waiting
    err = capsys.readouterr().err
    assert "no build 'b-1'" in err and "galleryctl rejects" in err


def test_a_missing_api_is_not_found_at_the_url_not_an_unknown_build(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert status(status_api, "b-1") == 4  # the host answers 404 without the API's error body
    err = capsys.readouterr().err
    assert f"the status API was not found at {status_api.url}/api/builds/b-1" in err
    assert "no build" not in err


def test_an_answer_that_is_not_json_is_no_status_api(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer_raw(PATH, (200, b"<html>hello</html>"))
    assert status(status_api, "b-1") == 4
    assert "did not answer JSON" in capsys.readouterr().err


@pytest.mark.parametrize(("code", "exit_code"), [(503, 3), (429, 3), (500, 3), (401, 2), (403, 2)])
def test_http_errors_map_to_exit_codes(
    code: int, exit_code: int, status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, {"error": {"code": "Busy", "message": "later"}}, status=code)
    assert status(status_api, "b-1") == exit_code
    assert capsys.readouterr().err


def test_an_unreachable_api_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "b-1", "--api", "http://127.0.0.1:9"]) == 3
    assert "is unreachable" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/"])
def test_the_api_url_may_end_in_api(
    suffix: str,
    status_api: FakeStatusApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status_api.answer(PATH, build_document("succeeded", 100))
    monkeypatch.setenv("GALLERY_API_URL", status_api.url + suffix)
    assert main(["status", "b-1"]) == 0
    assert status_api.paths() == [PATH]
    assert api_base("https://app.azurewebsites.net/api") == "https://app.azurewebsites.net"
    capsys.readouterr()


def test_the_function_key_is_sent(
    status_api: FakeStatusApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, build_document("succeeded", 100))
    monkeypatch.setenv("GALLERY_API_KEY", "k-123")
    assert status(status_api, "b-1") == 0
    headers = {k.lower(): v for k, v in status_api.requests[0][1].items()}
    assert headers["x-functions-key"] == "k-123"
    capsys.readouterr()


def test_the_api_address_may_come_from_the_settings_file(
    status_api: FakeStatusApi, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, build_document("succeeded", 100))
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"Values": {"GALLERY_API_URL": status_api.url + "/api"}}))
    assert main(["status", "b-1", "--settings", str(path)]) == 0
    capsys.readouterr()


def test_wait_follows_every_phase_to_the_end_on_stderr(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(
        PATH,
        build_document("queued"),
        build_document("started"),
        build_document("replicating", 40, 0),
        build_document("replicating", 40, 0),
        build_document("replicating", 100, 60),
        build_document("succeeded", 100, 100),
    )
    assert status(status_api, "b-1", "--wait", "-o", "json") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["state"] == "succeeded"  # stdout: the result only
    phases = [line.split()[1] for line in captured.err.splitlines()]
    assert phases == ["queued", "creating", "replicating", "replicating", "done"]
    assert "West Europe 40%, East US 0%" in captured.err
    assert "West Europe 100%, East US 60%" in captured.err


def test_wait_for_a_build_that_fails_exits_1(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = build_document("failed", error={"reason": "ReplicationFailed", "message": "m"})
    status_api.answer(PATH, build_document("replicating", 5), failed)
    assert status(status_api, "b-1", "--wait") == 1
    assert "error    ReplicationFailed: m" in capsys.readouterr().out


def test_wait_has_an_optional_timeout_exit_3(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, build_document("replicating", 5))
    assert status(status_api, "b-1", "--wait", "--timeout", "0.2") == 3
    assert "did not end within 0.2 s" in capsys.readouterr().err


def test_only_show_errors_hides_the_progress(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, build_document("replicating", 5), build_document("succeeded", 100))
    assert status(status_api, "b-1", "--wait", "--only-show-errors") == 0
    assert capsys.readouterr().err == ""


def test_debug_logs_the_requests_to_the_api(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer(PATH, build_document("succeeded", 100))
    assert status(status_api, "b-1", "--debug") == 0
    assert f"GET {status_api.url}{PATH} -> HTTP 200" in capsys.readouterr().err
    assert status(status_api, "b-1") == 0
    assert "GET " not in capsys.readouterr().err


def test_without_a_build_id_the_recent_builds_are_listed(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer("/api/builds?limit=20", {"builds": [build_document("succeeded", 100)]})
    assert status(status_api) == 0
    assert "b-1" in capsys.readouterr().out


def test_fetch_keeps_the_demos_contract(status_api: FakeStatusApi) -> None:
    status_api.not_found(PATH)
    assert fetch(status_api.url, "builds/b-1") is None
    status_api.answer("/api/builds/b-2", build_document("succeeded", build_id="b-2"))
    answer: dict[str, Any] = fetch(status_api.url + "/api", "builds/b-2")
    assert answer["buildId"] == "b-2"


def test_wait_needs_a_build_id_and_sane_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--wait"]) == 2
    assert "give its BUILD_ID" in capsys.readouterr().err
    for bad in (
        ["--timeout", "0"],
        ["--interval", "-1"],
        ["--timeout", "nan"],
        ["--interval", "x"],
    ):
        with pytest.raises(SystemExit) as usage:
            main(["status", "b-1", "--wait", *bad])
        assert usage.value.code == 2
