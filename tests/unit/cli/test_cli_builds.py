"""``galleryctl builds``: recent builds as a table, filters, formats and exit codes."""

from __future__ import annotations

import json

import pytest

from shared.cli.__main__ import main
from tests.unit.cli.conftest import FakeStatusApi, build_document

BUILDS = [
    build_document("failed", 40, build_id="b-1", definition="ubuntu-24.04"),
    build_document("succeeded", 100, build_id="b-2", definition="ubuntu-24.04"),
    build_document(
        "replicating",
        10,
        build_id="b-3",
        definition="windows-2025",
        source="https://acct.blob.core.windows.net/vhds/Win/os.vhd",
    ),
]


def builds(api: FakeStatusApi, *args: str) -> int:
    return main(["builds", *args, "--api", api.url])


def test_a_table_by_default(status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]) -> None:
    status_api.answer("/api/builds?limit=20", {"builds": BUILDS})
    assert builds(status_api) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Build", "State", "Target", "Progress", "Updated"]
    assert [line.split()[0] for line in lines[2:]] == ["b-1", "b-2", "b-3"]
    assert lines[2].split()[1:4] == ["failed", "g/ubuntu-24.04/1.0.0", "40%"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--state", "failed"], ["b-1"]),
        (["--definition", "ubuntu-24.04"], ["b-1", "b-2"]),
        (["--definition", "G/Windows-2025"], ["b-3"]),
        (["--source", "vhds/win/"], ["b-3"]),
        (["--source", "snapshots/x", "--state", "succeeded"], ["b-2"]),
        (["--definition", "ubuntu-24.04", "--limit", "1"], ["b-1"]),
        (["--state", "queued"], []),
    ],
)
def test_filters_look_at_the_recent_window(
    filters: list[str],
    expected: list[str],
    status_api: FakeStatusApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status_api.answer("/api/builds?limit=500", {"builds": BUILDS})
    assert builds(status_api, *filters, "-o", "json") == 0
    assert [b["buildId"] for b in json.loads(capsys.readouterr().out)] == expected
    assert status_api.paths() == ["/api/builds?limit=500"]


def test_json_is_every_build_in_full_and_query_tsv_gives_ids(
    status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status_api.answer("/api/builds?limit=20", {"builds": BUILDS})
    assert builds(status_api, "--json") == 0
    assert json.loads(capsys.readouterr().out) == BUILDS
    assert builds(status_api, "--query", "[?state!='succeeded'].buildId", "-o", "tsv") == 0
    assert capsys.readouterr().out == "b-1\nb-3\n"


def test_no_builds(status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]) -> None:
    status_api.answer("/api/builds?limit=5", {"builds": []})
    assert builds(status_api, "--limit", "5") == 0
    assert capsys.readouterr().out == "no builds yet\n"


def test_exit_codes(status_api: FakeStatusApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert builds(status_api) == 4  # nothing serves /api/builds there
    assert "not found at" in capsys.readouterr().err
    assert main(["builds", "--api", "http://127.0.0.1:9"]) == 3
    status_api.answer("/api/builds?limit=20", {"error": {"code": "X", "message": "m"}}, status=503)
    assert builds(status_api) == 3
    capsys.readouterr()
    for bad in (["--limit", "0"], ["--state", "done"]):
        with pytest.raises(SystemExit) as usage:
            builds(status_api, *bad)
        assert usage.value.code == 2
