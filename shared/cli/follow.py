"""Following a build to its end: ``status --wait`` and ``submit --wait``.

The build is polled every ``--interval`` seconds until it has succeeded or failed, with no time
limit unless ``--timeout SECONDS`` is given (replication can take hours). Progress goes to
stderr, so that stdout stays the result (``-o json`` prints the final build only): on a terminal
one line updated in place (phase, elapsed time, per-region percent); otherwise one line per
change, which reads well in a CI log.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from shared.cli import api, exit_codes, views
from shared.cli.output import CliError

DEFAULT_INTERVAL: Final = 2.0
#: The line is redrawn in place: carriage return, then erase the line.
_REDRAW: Final = "\r\x1b[2K"

Build = dict[str, Any]


def _seconds(text: str, *, low: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = low - 1
    if not value >= low:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= {low:g}, got {text!r}")
    return value


def add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=lambda text: _seconds(text, low=0.001),
        metavar="SECONDS",
        help="give up waiting after this long (default: no limit)",
    )
    parser.add_argument(
        "--interval",
        type=lambda text: _seconds(text, low=0.01),
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between polls (default {DEFAULT_INTERVAL:g})",
    )


def _change_key(build: Build) -> tuple[Any, ...]:
    return (build["state"], tuple((r["region"], r["progress"]) for r in build.get("regions") or ()))


def wait_for_build(
    get: Callable[[], Build | None],
    *,
    timeout: float | None,
    interval: float,
    on_change: Callable[[Build], None],
    on_poll: Callable[[Build], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Build | None:
    """Poll ``get`` until the build has ended and return it; ``None`` once ``timeout`` seconds
    have passed (``None``: no limit). ``get`` returns ``None`` while the build is not there yet;
    ``on_change`` sees each new state or progress once, ``on_poll`` every answer."""
    deadline = None if timeout is None else clock() + timeout
    seen: tuple[Any, ...] | None = None
    while deadline is None or clock() < deadline:
        build = get()
        if build is not None:
            if on_poll is not None:
                on_poll(build)
            if _change_key(build) != seen:
                seen = _change_key(build)
                on_change(build)
            if build["state"] in views.FINAL_STATES:
                return build
        sleep(interval)
    return None


def _age(build: Build, now: datetime) -> float | None:
    try:
        created = datetime.fromisoformat(str(build["createdAt"]).replace("Z", "+00:00"))
        return (now - created).total_seconds()
    except (KeyError, ValueError, TypeError):
        return None


class ProgressDisplay:
    """Shows the progress of one build on ``stream``; ``None``: shows nothing."""

    def __init__(
        self,
        stream: TextIO | None,
        *,
        tty: bool,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream, self._tty, self._now, self._clock = stream, tty, now, clock
        self._started = clock()
        self._drawn = False

    def _line(self, build: Build) -> str:
        """The progress line; the elapsed time is the build's age (else the time waited)."""
        age = _age(build, self._now())
        return views.progress_line(build, age if age is not None else self._clock() - self._started)

    def changed(self, build: Build) -> None:
        if self._stream is not None and not self._tty:
            print(self._line(build), file=self._stream, flush=True)

    def polled(self, build: Build) -> None:
        if self._stream is not None and self._tty:
            self._stream.write(_REDRAW + self._line(build))
            self._stream.flush()
            self._drawn = True

    def close(self) -> None:
        if self._stream is not None and self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def display_for(args: argparse.Namespace) -> ProgressDisplay:
    """On stderr, unless ``--only-show-errors`` or ``-o none``."""
    quiet = getattr(args, "only_show_errors", False) or getattr(args, "output", None) == "none"
    return ProgressDisplay(None if quiet else sys.stderr, tty=sys.stderr.isatty())


def follow(args: argparse.Namespace, get: Callable[[], Build | None]) -> Build:
    """Follow a build until it ends; the final build, or :class:`CliError` (exit 3) when
    ``--timeout`` passed first. API errors propagate (``api.ApiError``)."""
    display = display_for(args)
    try:
        build = wait_for_build(
            get,
            timeout=args.timeout,
            interval=args.interval,
            on_change=display.changed,
            on_poll=display.polled,
        )
    finally:
        display.close()
    if build is None:
        raise CliError(f"the build did not end within {args.timeout:g} s", exit_codes.UNAVAILABLE)
    return build


def getter(base: str, key: str | None, build_id: str) -> Callable[[], Build]:
    """A function that fetches the build (raises ``api.NotFoundAnswer`` when it is unknown)."""
    return lambda: dict(api.get_json(base, f"builds/{build_id}", key))
