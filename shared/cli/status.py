"""``galleryctl status BUILD_ID``: one build and its per-region replication, from the status API.

Shows the build's state, request, source, target and version, its error if it failed, and one
line per target region with its replication state and progress. --wait follows it until it has
succeeded or failed, with no time limit unless --timeout is given, showing the phase (queued,
creating, replicating per region with percent, done) and the elapsed time: updated in place on
a terminal, one line per change otherwise. An unknown build id fails at once (exit 4).
Without a build id: the most recent builds, as galleryctl builds lists them.

The API is the function app's (--api, or GALLERY_API_URL; default the local host
http://127.0.0.1:7071; with or without its /api suffix); a function key is sent from --key or
GALLERY_API_KEY. Both may be in the settings file (--settings FILE or GALLERY_SETTINGS).
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from shared.cli import api, builds, exit_codes, follow, views
from shared.cli.api import ApiUnavailable
from shared.cli.follow import wait_for_build
from shared.cli.helptext import SubParsers, add_command
from shared.cli.output import CliError, Result
from shared.cli.views import bar, render_build, render_list

#: What the demo (devstack/demo.py) uses from here, under the names it has always had.
__all__ = (
    "ApiUnavailable",
    "bar",
    "fetch",
    "register",
    "render_build",
    "render_list",
    "run",
    "wait_for_build",
)

UNKNOWN_HINT: Final = (
    "a request just submitted appears once a worker has picked it up (galleryctl submit --wait "
    "follows it from the start); rejected requests are listed by galleryctl rejects"
)
EXAMPLES = (
    ("one build and its regions", "galleryctl status b-3f9c2a71d04e5b6a8c1d2e3f"),
    ("follow it to the end", "galleryctl status b-3f9c2a71d04e5b6a8c1d2e3f --wait"),
    (
        "follow it for at most an hour, against the app in Azure",
        "galleryctl status b-3f... --wait --timeout 3600 --api https://myapp.azurewebsites.net",
    ),
    ("its version only", "galleryctl status b-3f... --query target.version -o tsv"),
)
CODES = {
    exit_codes.OK: "shown (with --wait: the build succeeded)",
    exit_codes.FAILED: "the build failed",
    exit_codes.USAGE: "usage error, a bad settings file, or access denied (function key)",
    exit_codes.UNAVAILABLE: "the status API is unreachable or unavailable, or --timeout passed",
    exit_codes.NOT_FOUND: "no such build (at once, also with --wait), or no status API at the URL",
}


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "status",
        summary="show a build and its per-region replication progress (--wait: follow it)",
        description=__doc__ or "",
        examples=EXAMPLES,
        codes=CODES,
    )
    parser.add_argument("build_id", nargs="?", metavar="BUILD_ID")
    parser.add_argument("--wait", action="store_true", help="follow the build until it has ended")
    follow.add_wait_options(parser)
    builds.add_list_options(parser)
    parser.set_defaults(handler=run)


def fetch(base: str, path: str, key: str | None = None, timeout: float = 10) -> Any:
    """GET ``{base}/api/{path}``: its JSON, ``None`` when the API answers that it does not exist
    (raises :class:`ApiUnavailable`, or its subclass ``ApiMissing``, otherwise)."""
    try:
        return api.get_json(api.api_base(base), path, key, timeout)
    except api.NotFoundAnswer:
        return None
    except api.ApiError as error:
        if isinstance(error, ApiUnavailable):
            raise
        raise ApiUnavailable(error.message) from error


def build_result(build: dict[str, Any]) -> Result:
    """A build as the result of a command: exit 1 if it failed."""
    code = exit_codes.FAILED if build["state"] == "failed" else exit_codes.OK
    return Result(build, code, human=views.render_build)


def run(args: argparse.Namespace) -> Result:
    if args.build_id is None and args.wait:
        raise CliError("--wait follows one build: give its BUILD_ID", exit_codes.USAGE)
    base, key = builds.load_api_settings(args)
    if args.build_id is None:
        return builds.list_result(builds.recent_builds(base, key, limit=args.limit))
    get = follow.getter(base, key, args.build_id)
    try:
        build = follow.follow(args, get) if args.wait else get()
    except api.NotFoundAnswer as error:
        raise CliError(f"{error.message}: {UNKNOWN_HINT}", exit_codes.NOT_FOUND) from error
    return build_result(build)
