"""``galleryctl status [BUILD_ID]``: builds and their per-region replication, from the status API.

Without a build id: the most recent builds, one line each. With one: that build, one line per
target region with its replication state and progress. ``--wait`` polls until the build has
succeeded or failed (bounded by ``--timeout``), printing each change. The API is the function
app's (``--api``, or ``GALLERY_API_URL``; default the local host ``http://127.0.0.1:7071``); a
function key is sent from ``--key`` or ``GALLERY_API_KEY``.
Exit codes: 0 shown (and, with ``--wait``, succeeded), 1 the build failed or is unknown,
2 usage error, 3 the API is unreachable or ``--wait`` timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, Final

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
DEFAULT_API: Final = "http://127.0.0.1:7071"
BAR_WIDTH: Final = 20


class ApiUnavailable(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show builds and per-region replication progress",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("build_id", nargs="?", metavar="BUILD_ID")
    parser.add_argument("--api", default=os.environ.get("GALLERY_API_URL", DEFAULT_API))
    parser.add_argument("--key", default=os.environ.get("GALLERY_API_KEY"), help="function key")
    parser.add_argument("--limit", type=int, default=20, help="builds to list (default 20)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.add_argument("--wait", action="store_true", help="poll until the build has ended")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds --wait may take")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.set_defaults(handler=run)


def fetch(api: str, path: str, key: str | None = None, timeout: float = 10) -> Any:
    """GET ``{api}/api/{path}``: the JSON body, ``None`` on 404, :class:`ApiUnavailable` else."""
    request = urllib.request.Request(f"{api.rstrip('/')}/api/{path}")
    if key:
        request.add_header("x-functions-key", key)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise ApiUnavailable(f"{api}: HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise ApiUnavailable(f"{api}: {error}") from error


def bar(progress: int) -> str:
    filled = round(BAR_WIDTH * max(0, min(progress, 100)) / 100)
    return "#" * filled + "." * (BAR_WIDTH - filled)


def _target(build: dict[str, Any]) -> str:
    target = build["target"]
    return f"{target['gallery']}/{target['definition']}/{target.get('version') or '-'}"


def render_list(builds: Sequence[dict[str, Any]]) -> str:
    rows = [("BUILD", "STATE", "TARGET", "PROGRESS", "UPDATED")]
    rows += [
        (b["buildId"], b["state"], _target(b), f"{b['progress']:>3}%", b["updatedAt"][:19])
        for b in builds
    ]
    return _table(rows) if builds else "no builds yet"


def render_build(build: dict[str, Any]) -> str:
    lines = [
        f"build    {build['buildId']}  ({build['state']})",
        f"request  {build['requestId']}",
        f"source   {build['source']}",
        f"target   {_target(build)}",
    ]
    if build.get("error"):
        lines.append(f"error    {build['error']['reason']}: {build['error']['message']}")
    if build["regions"]:
        rows: list[tuple[str, ...]] = [("REGION", "STATE", "PROGRESS", "")]
        rows += [
            (r["region"], r["state"], f"{r['progress']:>3}%", bar(r["progress"]))
            + ((r["details"],) if r.get("details") else ())
            for r in build["regions"]
        ]
        lines += ["", _table(rows)]
    return "\n".join(lines)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    )


def wait_for_build(
    get: Callable[[], dict[str, Any] | None],
    *,
    timeout: float,
    interval: float,
    on_change: Callable[[dict[str, Any]], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Poll until the build has ended; call ``on_change`` whenever state or progress changes."""
    deadline = clock() + timeout
    seen: tuple[Any, ...] | None = None
    build: dict[str, Any] | None = None
    while clock() < deadline:
        build = get()
        if build is not None:
            key = (build["state"], tuple((r["region"], r["progress"]) for r in build["regions"]))
            if key != seen:
                seen = key
                on_change(build)
            if build["state"] in ("succeeded", "failed"):
                return build
        sleep(interval)
    return None


def _progress_line(build: dict[str, Any]) -> str:
    regions = ", ".join(f"{r['region']} {r['progress']}%" for r in build["regions"]) or "-"
    return f"{build['buildId']}  {build['state']:<11} {_target(build)}  {regions}"


def run(args: argparse.Namespace) -> int:
    try:
        if args.build_id is None:
            listing = fetch(args.api, f"builds?limit={args.limit}", args.key)
            print(json.dumps(listing, indent=2) if args.json else render_list(listing["builds"]))
            return EXIT_OK
        if args.wait:
            build = wait_for_build(
                lambda: fetch(args.api, f"builds/{args.build_id}", args.key),
                timeout=args.timeout,
                interval=args.interval,
                on_change=lambda b: print(_progress_line(b), flush=True),
            )
            if build is None:
                print(
                    f"galleryctl status: build {args.build_id} did not end in time", file=sys.stderr
                )
                return EXIT_UNAVAILABLE
        else:
            build = fetch(args.api, f"builds/{args.build_id}", args.key)
    except ApiUnavailable as error:
        print(f"galleryctl status: API unavailable: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if build is None:
        print(f"galleryctl status: no build {args.build_id}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(build, indent=2) if args.json else render_build(build))
    return EXIT_FAILED if build["state"] == "failed" else EXIT_OK
