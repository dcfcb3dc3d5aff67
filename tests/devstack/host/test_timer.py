"""Timer trigger: NCRONTAB parsing and next occurrences, run_on_startup, past-due."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from azure.functions.timer import TimerRequest

from devstack.host.timer_trigger import (
    CronSchedule,
    IntervalSchedule,
    ScheduleError,
    parse_schedule,
)
from tests.devstack.host import sample_app
from tests.devstack.host.conftest import HostFactory, wait_until


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * * *", "2026-01-01T00:00:00", "2026-01-01T00:00:01"),
        ("*/15 * * * * *", "2026-01-01T00:00:14", "2026-01-01T00:00:15"),
        ("0 */5 * * * *", "2026-01-01T00:07:30", "2026-01-01T00:10:00"),
        ("0 30 9 * * 1-5", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),  # Fri -> Mon
        ("0 0 3 * * *", "2026-01-01T03:00:00", "2026-01-02T03:00:00"),
        ("5,10 0 0 1 JAN,jul *", "2026-02-01T00:00:00", "2026-07-01T00:00:05"),
        ("10/20 * * * * *", "2026-01-01T00:00:31", "2026-01-01T00:00:50"),
        ("0 0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 0 12 13 * FRI", "2026-01-01T00:00:00", "2026-02-13T12:00:00"),  # day AND weekday
        ("0 0 0 * * SUN", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),
    ],
)
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(_at(after)) == _at(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 */5 * * *", "expected 6 fields"),
        ("60 * * * * *", "second: 60 is outside 0-59"),
        ("* * 24 * * *", "hour: 24"),
        ("* * * 0 * *", "day: 0"),
        ("* * * * 13 *", "month: 13"),
        ("* * * * * 7", "day-of-week: 7"),
        ("*/0 * * * * *", "step must be positive"),
        ("5-1 * * * * *", "runs backwards"),
        ("x * * * * *", "not a number"),
    ],
)
def test_invalid_schedules_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        CronSchedule.parse(expression)


def test_timespan_schedule() -> None:
    schedule = parse_schedule("00:00:30")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(_at("2026-01-01T00:00:00")) == _at("2026-01-01T00:00:30")


def test_run_on_startup_then_every_second(host_factory: HostFactory) -> None:
    host_factory(enabled=("tick",), settings={"TICK_SCHEDULE": "* * * * * *"})
    records = sample_app.wait_for("tick", 3, timeout=6)
    timers = [timer for timer, _ in records]
    assert all(isinstance(t, TimerRequest) for t in timers)
    assert not any(t.past_due for t in timers)
    assert timers[0].schedule_status["Last"].startswith("0001-01-01")  # the startup run
    assert timers[0].schedule == {"AdjustForDST": True, "Expression": "* * * * * *"}
    # the scheduled runs land on whole seconds, about one second apart
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(records[1:])]
    assert all(0.5 < gap < 1.6 for gap in gaps), gaps


def test_run_on_startup_fires_once_for_a_daily_schedule(host_factory: HostFactory) -> None:
    host = host_factory(enabled=("tick",), settings={"TICK_SCHEDULE": "0 0 3 * * *"})
    sample_app.wait_for("tick", 1, timeout=3)
    assert host.invoker.stats.snapshot()["tick"] == {"Succeeded": 1}


def test_overrunning_timer_is_past_due(host_factory: HostFactory) -> None:
    host_factory(enabled=("slow_tick",))
    # each run takes 1.6 s on a 1 s schedule: the next occurrence starts late
    timers = sample_app.wait_for("slow_tick", 2, timeout=6)
    assert timers[0].past_due is False
    assert timers[1].past_due is True


def test_missed_occurrence_while_down_is_past_due_at_startup(host_factory: HostFactory) -> None:
    settings = {"TICK_SCHEDULE": "0 0 * * * *"}  # hourly: the schedule monitor is on
    host = host_factory(enabled=("tick",), settings=settings)
    sample_app.wait_for("tick", 1, timeout=3)  # run on startup writes the status file
    assert host.options.state_dir is not None
    status_file = host.options.state_dir / "timers" / "tick.json"
    wait_until(status_file.is_file, 3, "timer status file")
    host.stop()
    status_file.write_text(
        '{"Last": "2020-01-01T00:00:00.000000Z", "Next": "2020-01-01T01:00:00.000000Z"}'
    )
    sample_app.clear()
    restarted = type(host)(host.options, environ={})
    restarted.start()
    try:
        ((timer, _),) = sample_app.wait_for("tick", 1, timeout=3)
        assert timer.past_due is True
    finally:
        restarted.stop()
