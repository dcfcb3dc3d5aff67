"""``make bench`` (``python -m bench``): run every benchmark and write docs/benchmarks.md.

Add a benchmark by writing a module with ``run(workdir: Path) -> bench.common.Section`` and
listing it in :data:`BENCHMARK_MODULES`. Exit code 1 when any target is missed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bench.common import Section

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
COMMAND = "make bench"

BENCHMARK_MODULES: tuple[str, ...] = (
    "bench.vhd_preflight",
    "bench.lifecycle_scan",
    "bench.pipeline_latency",
    "bench.cold_start",
)

logger = logging.getLogger("bench")


def render(sections: Sequence[Section], *, started: datetime, seconds: float) -> str:
    """docs/benchmarks.md: how the figures were produced, then one section per benchmark."""
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{COMMAND}` (which runs `.venv/bin/python -m bench`) on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')}, in {seconds:.1f} s.",
        f"Machine: {platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}. The file is rewritten on every run; do not edit it.",
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", "", section.description, ""]
        lines.append("| " + " | ".join(section.columns) + " |")
        lines.append("|" + "---|" * len(section.columns))
        lines += ["| " + " | ".join(row) + " |" for row in section.rows]
        lines += ["", "| Target | Measured | Result |", "|---|---|---|"]
        lines += [
            f"| {check.target} | {check.measured} | {'pass' if check.passed else 'FAIL'} |"
            for check in section.checks
        ]
        if section.notes:
            lines.append("")
            lines += [f"- {note}" for note in section.notes]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the Markdown report"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # no per-request HTTP logs
    started = datetime.now(UTC)
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="gallery-bench-") as tmp:
        for module_name in BENCHMARK_MODULES:
            module = importlib.import_module(module_name)
            run = cast(Callable[[Path], Section], module.run)
            workdir = Path(tmp) / module_name.rsplit(".", 1)[-1]
            workdir.mkdir()
            logger.info("running %s", module_name)
            sections.append(run(workdir))
    seconds = (datetime.now(UTC) - started).total_seconds()
    report = render(sections, started=started, seconds=seconds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    failed = [check.target for section in sections for check in section.checks if not check.passed]
    if failed:
        print(f"targets missed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all targets met; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
