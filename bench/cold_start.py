"""Benchmark: the cold start of the app, with and without telemetry.

What the Functions host pays before the first invocation is the import of ``function_app``. The
app imports the Azure SDKs lazily, so that import must stay within 1.15x the bare import of the
five SDKs it uses, and OpenTelemetry must not change it: ``azure-monitor-opentelemetry`` is
imported only on the first invocation, and only when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
is set (``shared.adapters.telemetry``). Each case runs in a fresh interpreter and times the
import statement itself (``time.perf_counter`` around it, interpreter start-up excluded); the
cases alternate, and each figure is the median of the runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Final

from bench.common import Check, Section

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
RUNS: Final = 9
MAX_RATIO: Final = 1.15
SDKS: Final = (
    "azure.functions",
    "azure.identity",
    "azure.mgmt.compute",
    "azure.servicebus",
    "azure.storage.blob",
)
#: A connection string to an ingestion endpoint nobody listens on (nothing leaves the machine).
CONNECTION_STRING: Final = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
)
#: Telemetry of the distro itself (statsbeat, SDK stats, control plane) stays off here.
QUIET_DISTRO: Final = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
}
#: Timed in the child: prints the seconds the statement took and what it loaded.
_PROBE: Final = """
import json, sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
watched = ("azure.monitor.opentelemetry", "opentelemetry.sdk", "opentelemetry")
loaded = sorted(m for m in watched if m in sys.modules)
print(json.dumps({{"seconds": elapsed, "loaded": loaded}}))
"""

CASES: Final[tuple[tuple[str, str, bool], ...]] = (
    # (label, statement, connection string set)
    ("the five Azure SDKs (bare)", "import " + ", ".join(SDKS), False),
    ("`import function_app`, no connection string", "import function_app", False),
    ("`import function_app`, connection string set", "import function_app", True),
    (
        "`import function_app`, then the first factory call (configures telemetry)",
        "import function_app\nfrom shared import composition\ncomposition.settings()",
        True,
    ),
)


def _environment(telemetry: bool) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    if telemetry:
        env |= {"APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION_STRING, **QUIET_DISTRO}
    return env


def _probe(statement: str, telemetry: bool) -> tuple[float, list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        env=_environment(telemetry),
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return float(result["seconds"]) * 1000, list(result["loaded"])


def run(workdir: Path) -> Section:
    del workdir
    samples: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
    loaded: dict[str, set[str]] = {label: set() for label, _, _ in CASES}
    _probe("import " + ", ".join(SDKS), False)  # warm the file cache once, not measured
    for _ in range(RUNS):  # alternate the cases, so drift in the machine hits them all alike
        for label, statement, telemetry in CASES:
            milliseconds, modules = _probe(statement, telemetry)
            samples[label].append(milliseconds)
            loaded[label].update(modules)
    medians = {label: statistics.median(values) for label, values in samples.items()}
    sdks = medians[CASES[0][0]]
    section = Section(
        title="Cold start (`import function_app`)",
        description=(
            "Import time of the app in a fresh interpreter (interpreter start-up excluded), "
            "against the bare import of the five Azure SDKs it uses "
            f"({', '.join(f'`{name}`' for name in SDKS)}). Median of {RUNS} runs per case, "
            "the cases alternating. The last row adds what the first invocation pays when "
            "telemetry is on: importing and configuring azure-monitor-opentelemetry."
        ),
        columns=["Case", "Median", "Min", "Max", "vs. the SDKs", "Telemetry modules loaded"],
    )
    for label, _, _ in CASES:
        values = samples[label]
        section.rows.append(
            [
                label,
                f"{medians[label]:.1f} ms",
                f"{min(values):.1f} ms",
                f"{max(values):.1f} ms",
                f"{medians[label] / sdks:.2f}x",
                ", ".join(sorted(loaded[label])) or "none",
            ]
        )
    for label, _, _ in CASES[1:3]:
        ratio = medians[label] / sdks
        section.checks.append(
            Check(f"{label}: <= {MAX_RATIO}x the SDKs", f"{ratio:.2f}x", ratio <= MAX_RATIO)
        )
        section.checks.append(
            Check(
                f"{label}: no OpenTelemetry (API, SDK or distro) imported",
                ", ".join(sorted(loaded[label])) or "none",
                not loaded[label],
            )
        )
    configured = CASES[3][0]
    section.checks.append(
        Check(
            "with a connection string, the first invocation configures the distro",
            ", ".join(sorted(loaded[configured])) or "none",
            "azure.monitor.opentelemetry" in loaded[configured],
        )
    )
    section.notes.append(
        "The app imports azure-functions and its own handlers at cold start; every Azure SDK "
        "(and azure-monitor-opentelemetry) is imported by the first factory call that needs it."
    )
    return section
