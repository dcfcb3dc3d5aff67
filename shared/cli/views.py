"""How builds look to people: the build list, one build with its regions, the progress line.

The data is the status API's JSON (``shared.builds.status.record_view``); these functions only
choose what a person reads first. A build's state is shown as its phase: ``queued`` (waiting for
its source), ``creating`` (the image version is being created), ``replicating`` (per region,
with percent), then ``done`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from shared.cli.formats import table

BAR_WIDTH: Final = 20
PHASES: Final = {
    "queued": "queued",
    "started": "creating",
    "replicating": "replicating",
    "succeeded": "done",
    "failed": "failed",
}
FINAL_STATES: Final = ("succeeded", "failed")


def phase(build: dict[str, Any]) -> str:
    return PHASES.get(str(build.get("state")), str(build.get("state")))


def bar(progress: int) -> str:
    filled = round(BAR_WIDTH * max(0, min(progress, 100)) / 100)
    return "#" * filled + "." * (BAR_WIDTH - filled)


def target(build: dict[str, Any]) -> str:
    """``gallery/definition/version`` (``-`` until a version is chosen)."""
    where = build["target"]
    return f"{where['gallery']}/{where['definition']}/{where.get('version') or '-'}"


def list_rows(builds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per build for the table of ``galleryctl builds``."""
    return [
        {
            "Build": b["buildId"],
            "State": b["state"],
            "Target": target(b),
            "Progress": f"{b.get('progress', 0)}%",
            "Updated": str(b.get("updatedAt", ""))[:19],
        }
        for b in builds
    ]


def render_list(builds: Sequence[dict[str, Any]]) -> str:
    return table(list_rows(builds)) if builds else "no builds yet"


def _region_table(regions: Sequence[dict[str, Any]]) -> str:
    rows = [("REGION", "STATE", "PROGRESS", "", "")]
    rows += [
        (r["region"], r["state"], f"{r['progress']:>3}%", bar(r["progress"]), r.get("details", ""))
        for r in regions
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join([*(row[i].ljust(widths[i]) for i in range(4)), row[4]]).rstrip() for row in rows
    )


def render_build(build: dict[str, Any]) -> str:
    """One build: its state, request, source and target, error, then one line per region."""
    lines = [
        f"build    {build['buildId']}  ({build['state']})",
        f"request  {build['requestId']}",
        f"source   {build['source']}",
        f"target   {target(build)}",
    ]
    if build.get("error"):
        lines.append(f"error    {build['error']['reason']}: {build['error']['message']}")
    if build.get("regions"):
        lines += ["", _region_table(build["regions"])]
    return "\n".join(lines)


def elapsed(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:09``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def progress_line(build: dict[str, Any], seconds: float) -> str:
    """``b-3f..  replicating  0:42  gallery/definition/1.0.3  West Europe 40%, East US 10%``."""
    regions = ", ".join(f"{r['region']} {r['progress']}%" for r in build.get("regions") or ())
    shown = f"{build['buildId']}  {phase(build):<11}  {elapsed(seconds):>7}  {target(build)}"
    return f"{shown}  {regions}" if regions and phase(build) != "done" else shown
