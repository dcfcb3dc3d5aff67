"""Shared pieces of the benchmarks: timing, memory, and the result shape every module returns.

A benchmark module exposes ``run(workdir: Path) -> Section``; ``bench/__main__.py`` lists the
modules, runs them in order and writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One target a benchmark must meet (e.g. "bytes read <= 1 KiB")."""

    target: str
    measured: str
    passed: bool


@dataclass
class Section:
    """One benchmark's results: a table (columns + rows) and the targets it checked."""

    title: str
    description: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


@dataclass(frozen=True)
class Timing:
    """Wall times of ``runs`` calls, in milliseconds."""

    runs: int
    median_ms: float
    p95_ms: float
    min_ms: float

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms"


def time_calls(function: Callable[[], object], runs: int, *, warmup: int = 3) -> Timing:
    """Call ``function`` ``warmup`` times, then ``runs`` times; return wall-time statistics."""
    for _ in range(warmup):
        function()
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        function()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    p95_index = min(len(samples) - 1, round(0.95 * (len(samples) - 1)))
    return Timing(
        runs=runs,
        median_ms=statistics.median(samples),
        p95_ms=samples[p95_index],
        min_ms=samples[0],
    )


def peak_allocation(function: Callable[[], T]) -> tuple[T, int]:
    """Run ``function`` once under tracemalloc; return its result and peak bytes allocated."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        result = function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, max(0, peak - baseline)


def kib(size: float) -> str:
    return f"{size / 1024:.1f} KiB"
