"""``galleryctl status`` rendering and the bounded wait loop."""

from __future__ import annotations

from typing import Any

from shared.cli.status import bar, render_build, render_list, wait_for_build


def build(state: str, *progress: int, error: dict[str, str] | None = None) -> dict[str, Any]:
    regions = [
        {"region": name, "state": "Completed" if p == 100 else "Replicating", "progress": p}
        for name, p in zip(("West Europe", "East US"), progress, strict=False)
    ]
    return {
        "buildId": "b-1",
        "requestId": "r-1",
        "source": "/subscriptions/s/resourcegroups/g/providers/microsoft.compute/snapshots/x",
        "state": state,
        "target": {"gallery": "g", "definition": "d", "version": "1.0.0"},
        "regions": regions,
        "progress": round(sum(progress) / len(progress)) if progress else 0,
        "updatedAt": "2026-11-22T12:00:00.123+00:00",
        "error": error,
    }


def test_a_build_is_shown_with_one_line_per_region() -> None:
    text = render_build(build("replicating", 40, 100))
    assert "build    b-1  (replicating)" in text
    assert "target   g/d/1.0.0" in text
    west = next(line for line in text.splitlines() if line.startswith("West Europe"))
    assert "Replicating" in west and " 40%" in west and bar(40) in west
    assert bar(40) == "########............"


def test_a_failed_build_shows_its_reason() -> None:
    text = render_build(build("failed", 40, error={"reason": "ReplicationFailed", "message": "x"}))
    assert "error    ReplicationFailed: x" in text


def test_the_list_has_a_header_and_a_row_per_build() -> None:
    lines = render_list([build("succeeded", 100, 100)]).splitlines()
    assert lines[0].split() == ["BUILD", "STATE", "TARGET", "PROGRESS", "UPDATED"]
    assert lines[1].split()[:4] == ["b-1", "succeeded", "g/d/1.0.0", "100%"]
    assert render_list([]) == "no builds yet"


def test_waiting_reports_each_change_once_and_stops_at_the_end() -> None:
    answers = iter(
        [None, build("started"), build("replicating", 10, 0), build("replicating", 10, 0),
         build("succeeded", 100, 100)]
    )  # fmt: skip
    changes: list[str] = []
    final = wait_for_build(
        lambda: next(answers),
        timeout=10,
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
        lambda: build("replicating", 5),
        timeout=3,
        interval=1,
        on_change=lambda _b: None,
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert result is None
