"""The simulator's one clock.

Two quantities come from it:

* ``now()``: the simulated wall-clock date (real time plus an offset that ``POST /admin/clock``
  moves forward). Dates such as ``publishedDate`` and end-of-life checks use it.
* ``work_since(mark)``: how many simulated seconds of *work* have been done since ``mark``.
  Real seconds count ``speed`` times; seconds added by ``advance`` count once. Long-running
  operations store a mark when they start and derive their state from it on every read, so a
  restart loses nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ClockMark:
    """A point on the clock: real epoch seconds and the advance offset at that moment."""

    real: float
    offset: float


class SimClock:
    """Real time scaled by ``speed``, plus a persisted offset that only moves forward."""

    def __init__(self, speed: float, offset: float = 0.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._offset = offset
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds``; return the new offset."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._offset

    def reset(self) -> None:
        """Drop the offset (``POST /admin/reset``): simulated time is real time again."""
        with self._lock:
            self._offset = 0.0

    def mark(self) -> ClockMark:
        return ClockMark(real=time.time(), offset=self._offset)

    def work_since(self, mark: ClockMark) -> float:
        """Simulated seconds of work done since ``mark``."""
        real_elapsed = max(0.0, time.time() - mark.real)
        return real_elapsed * self.speed + (self._offset - mark.offset)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self._offset, dt.UTC)


def azure_timestamp(moment: dt.datetime) -> str:
    """ARM's timestamp form: 7 fractional digits and ``+00:00``."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0+00:00"


def parse_timestamp(text: str) -> dt.datetime | None:
    """Parse an ISO 8601 date/time as ARM accepts it; ``None`` if it is not one."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python accepts at most 6 fractional digits; ARM sends 7.
    if "." in value:
        head, _, tail = value.partition(".")
        digits = ""
        rest = ""
        for index, char in enumerate(tail):
            if not char.isdigit():
                rest = tail[index:]
                break
            digits += char
        value = f"{head}.{digits[:6]}{rest}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed
