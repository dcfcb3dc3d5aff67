"""Timer trigger: a six-field NCRONTAB schedule (seconds first), run-on-startup and past-due.

Schedule syntax (UTC), as in Azure Functions: ``{second} {minute} {hour} {day} {month}
{day-of-week}``; each field takes ``*``, a value, a range ``a-b``, a list ``a,b,c`` and a step
``*/n``, ``a-b/n`` or ``a/n``. Months accept ``JAN``-``DEC`` and days of week ``SUN``-``SAT``
(0 = Sunday). As in NCrontab, a time matches when *every* field matches (day of month and day of
week are combined with AND). A TimeSpan ``hh:mm:ss`` (interval) is accepted too.

``TimerRequest.past_due`` is true when an invocation starts later than its scheduled time (the
previous run overran, or, with the schedule monitor, an occurrence was missed while the host was
down). ``run_on_startup`` invokes once when the listener starts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.functions import meta
from azure.functions.timer import TimerRequest, TimerRequestConverter

from devstack.host.loader import FunctionSpec, parse_timespan

logger = logging.getLogger(__name__)

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
#: An invocation starting this much later than scheduled is past due.
PAST_DUE_TOLERANCE = timedelta(milliseconds=500)
_MAX_SEARCH = timedelta(days=366 * 5)


class ScheduleError(ValueError):
    """The schedule expression is not valid NCRONTAB (message names the field)."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_offset: int = 0

    def parse_value(self, text: str) -> int:
        upper = text.upper()
        if self.names and upper in self.names:
            return self.names.index(upper) + self.names_offset
        try:
            value = int(text)
        except ValueError:
            raise ScheduleError(f"{self.name}: {text!r} is not a number") from None
        if not self.low <= value <= self.high:
            raise ScheduleError(f"{self.name}: {value} is outside {self.low}-{self.high}")
        return value

    def parse(self, text: str) -> frozenset[int]:
        values: set[int] = set()
        for part in text.split(","):
            if not part:
                raise ScheduleError(f"{self.name}: empty list item in {text!r}")
            base, _, step_text = part.partition("/")
            step = 1
            if step_text:
                try:
                    step = int(step_text)
                except ValueError:
                    raise ScheduleError(f"{self.name}: bad step {step_text!r}") from None
                if step <= 0:
                    raise ScheduleError(f"{self.name}: step must be positive")
            if base == "*":
                start, end = self.low, self.high
            elif "-" in base:
                first, _, last = base.partition("-")
                start, end = self.parse_value(first), self.parse_value(last)
                if start > end:
                    raise ScheduleError(f"{self.name}: range {base!r} runs backwards")
            else:
                start = self.parse_value(base)
                end = self.high if step_text else start
            values.update(range(start, end + 1, step))
        return frozenset(values)


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES, 1),
    _Field("day-of-week", 0, 6, _DAY_NAMES, 0),
)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression; :meth:`next_after` finds the next occurrence."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) != 6:
            raise ScheduleError(
                f"{expression!r}: expected 6 fields "
                "({second} {minute} {hour} {day} {month} {day-of-week}), "
                f"got {len(parts)}"
            )
        parsed = [spec.parse(text) for spec, text in zip(_FIELDS, parts, strict=True)]
        return cls(expression, *parsed)

    def _day_matches(self, moment: datetime) -> bool:
        # Python: Monday=0 .. Sunday=6; NCRONTAB: Sunday=0 .. Saturday=6
        return (
            moment.month in self.months
            and moment.day in self.days
            and (moment.weekday() + 1) % 7 in self.days_of_week
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (aware UTC in, aware UTC out)."""
        candidate = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        limit = candidate + _MAX_SEARCH
        while candidate < limit:
            if not self._day_matches(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if candidate.minute not in self.minutes:
                candidate = (candidate + timedelta(minutes=1)).replace(second=0)
                continue
            if candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
                continue
            return candidate
        raise ScheduleError(f"{self.expression!r} has no occurrence in the next 5 years")


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule (``hh:mm:ss``): every interval, counted from the previous run."""

    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment.astimezone(UTC) + self.interval


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(expression: str) -> Schedule:
    """Parse an NCRONTAB expression or a TimeSpan interval."""
    if len(expression.split()) == 1 and ":" in expression:
        interval = parse_timespan(expression)
        if interval <= timedelta(0):
            raise ScheduleError(f"{expression!r}: interval must be positive")
        return IntervalSchedule(expression, interval)
    return CronSchedule.parse(expression)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def build_timer_request(
    *, past_due: bool, last: datetime | None, next_: datetime, schedule_text: str
) -> TimerRequest:
    """Decode the JSON the real host sends through the real ``TimerRequestConverter``."""
    payload = {
        "Schedule": {"AdjustForDST": True, "Expression": schedule_text},
        "ScheduleStatus": {
            "Last": _iso(last) if last else "0001-01-01T00:00:00.000000Z",
            "Next": _iso(next_),
            "LastUpdated": _iso(datetime.now(UTC)),
        },
        "IsPastDue": past_due,
    }
    request = TimerRequestConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
    )
    assert isinstance(request, TimerRequest)
    return request


class TimerListener:
    """Fires one timer function on its schedule in a background thread until stopped."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoke: Callable[[FunctionSpec, Any, str], Any],
        *,
        status_dir: Path | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.spec = spec
        self._invoke = invoke
        self._clock = clock
        self._schedule_text = str(spec.trigger["schedule"])
        self.schedule = parse_schedule(self._schedule_text)
        self._run_on_startup = bool(spec.trigger.get("runOnStartup", False))
        use_monitor = spec.trigger.get("useMonitor")
        if use_monitor is None:  # the documented default: monitor schedules of a minute or more
            now = clock()
            first = self.schedule.next_after(now)
            use_monitor = self.schedule.next_after(first) - first >= timedelta(minutes=1)
        self._status_file = (
            status_dir / f"{spec.name}.json" if status_dir is not None and use_monitor else None
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{spec.name}", daemon=True)
        self._last: datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _read_status(self) -> tuple[datetime | None, datetime | None]:
        if self._status_file is None or not self._status_file.is_file():
            return None, None
        try:
            data = json.loads(self._status_file.read_text(encoding="utf-8"))
            return _parse_iso(data["Last"]), _parse_iso(data["Next"])
        except (ValueError, KeyError, OSError):
            logger.warning("ignoring unreadable timer status %s", self._status_file)
            return None, None

    def _write_status(self, last: datetime, next_: datetime) -> None:
        if self._status_file is None:
            return
        self._status_file.parent.mkdir(parents=True, exist_ok=True)
        document = {"Last": _iso(last), "Next": _iso(next_), "LastUpdated": _iso(self._clock())}
        self._status_file.write_text(json.dumps(document), encoding="utf-8")

    def _fire(self, *, past_due: bool, reason: str, next_: datetime) -> None:
        request = build_timer_request(
            past_due=past_due, last=self._last, next_=next_, schedule_text=self._schedule_text
        )
        started = self._clock()
        try:
            self._invoke(self.spec, request, reason)
        except Exception:  # the timer keeps running after a failed invocation, like the host
            logger.debug("timer function %s failed", self.spec.name, exc_info=True)
        self._last = started
        self._write_status(started, self.schedule.next_after(self._clock()))

    def _run(self) -> None:
        now = self._clock()
        _, stored_next = self._read_status()
        past_due_at_start = stored_next is not None and stored_next + PAST_DUE_TOLERANCE < now
        if past_due_at_start or self._run_on_startup:
            reason = "Timer fired: past due at startup" if past_due_at_start else "RunOnStartup"
            self._fire(
                past_due=past_due_at_start, reason=reason, next_=self.schedule.next_after(now)
            )
        due = self.schedule.next_after(self._clock())
        logger.info("timer %s: next occurrence %s", self.spec.name, _iso(due))
        while not self._stop.is_set():
            wait = (due - self._clock()).total_seconds()
            if wait > 0 and self._stop.wait(min(wait, 1.0)):
                return
            if wait > 0:
                continue
            now = self._clock()
            late = now - due > PAST_DUE_TOLERANCE
            following = self.schedule.next_after(due)
            self._fire(past_due=late, reason=f"Timer fired at {_iso(now)}", next_=following)
            after_run = self._clock()
            if late and following <= after_run:
                # one past-due invocation covers every occurrence missed during an overrun
                following = self.schedule.next_after(after_run)
            due = following
