"""``galleryctl builds``: the most recently updated builds, newest first, as a table.

Reads GET /api/builds from the function app's status API (--api, or GALLERY_API_URL; default the
local host http://127.0.0.1:7071). --state, --source and --definition filter the list; they look
at the 500 most recently updated builds (the newest first), and --limit keeps the first ones.
-o json prints each build as the API gives it (regions, error, history).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Final

from shared.cli import api, exit_codes, views
from shared.cli.helptext import SubParsers, add_command
from shared.cli.local_settings import add_settings_option, load_settings_file
from shared.cli.output import CliError, Result
from shared.core.errors import PermanentError

#: How many recent builds the filters look through.
FILTER_WINDOW: Final = 500
DEFAULT_LIMIT: Final = 20
STATES: Final = ("queued", "started", "replicating", "succeeded", "failed")
EXAMPLES = (
    ("the last 20 builds", "galleryctl builds"),
    (
        "failed builds of one definition",
        "galleryctl builds --state failed --definition ubuntu-24.04",
    ),
    ("builds of one snapshot", "galleryctl builds --source snapshots/ubuntu-os-20261116"),
    (
        "the ids of builds still replicating",
        "galleryctl builds --state replicating --query '[].buildId' -o tsv",
    ),
)
CODES = {
    exit_codes.OK: "listed",
    exit_codes.USAGE: "usage error, a bad settings file, or access denied (function key)",
    exit_codes.UNAVAILABLE: "the status API is unreachable or unavailable",
    exit_codes.NOT_FOUND: "no status API at the URL",
}


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "builds",
        summary="list recent builds (filter by state, source, definition)",
        description=__doc__ or "",
        examples=EXAMPLES,
        codes=CODES,
    )
    add_list_options(parser)
    parser.add_argument("--state", choices=STATES, help="only builds in this state")
    parser.add_argument("--source", help="only builds whose source contains this (any case)")
    parser.add_argument(
        "--definition", metavar="[GALLERY/]DEFINITION", help="only builds into this definition"
    )
    parser.set_defaults(handler=run)


def add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=positive,
        default=DEFAULT_LIMIT,
        help=f"at most this many builds in a list (default {DEFAULT_LIMIT})",
    )
    api.add_api_options(parser)
    add_settings_option(parser)


def load_api_settings(args: argparse.Namespace) -> tuple[str, str | None]:
    """The API's address and key, after loading the settings file if there is one (it may name
    GALLERY_API_URL and GALLERY_API_KEY); no settings at all is fine: the local host."""
    try:
        load_settings_file(args.settings, required=False)
    except PermanentError as error:
        raise CliError(error.message, exit_codes.USAGE) from error
    return api.api_base(args.api), api.api_key(args.key)


def matches(
    build: dict[str, Any], *, state: str | None, source: str | None, definition: str | None
) -> bool:
    """Whether ``build`` passes the filters (``None``: no filter)."""
    if state is not None and build.get("state") != state:
        return False
    if source is not None and source.lower() not in str(build.get("source", "")).lower():
        return False
    if definition is None:
        return True
    where = build.get("target") or {}
    name = definition.lower()
    full = f"{where.get('gallery', '')}/{where.get('definition', '')}".lower()
    return name in (full, str(where.get("definition", "")).lower())


def recent_builds(
    base: str,
    key: str | None,
    *,
    limit: int,
    state: str | None = None,
    source: str | None = None,
    definition: str | None = None,
) -> list[dict[str, Any]]:
    """The ``limit`` most recently updated builds that pass the filters."""
    filtered = any(value is not None for value in (state, source, definition))
    listing = api.get_json(base, f"builds?limit={FILTER_WINDOW if filtered else limit}", key)
    builds: Sequence[dict[str, Any]] = listing.get("builds") or []
    kept = [b for b in builds if matches(b, state=state, source=source, definition=definition)]
    return kept[:limit]


def list_result(builds: list[dict[str, Any]]) -> Result:
    return Result(builds, human=views.render_list)


def run(args: argparse.Namespace) -> Result:
    base, key = load_api_settings(args)
    return list_result(
        recent_builds(
            base,
            key,
            limit=args.limit,
            state=args.state,
            source=args.source,
            definition=args.definition,
        )
    )
