"""``galleryctl check-request FILE|-``: validate a build request without publishing anything.

Prints the normalised request, or every problem found with its path, rule and fix, including
input that is no JSON document at all (not UTF-8, not JSON, nested too deep, too big). The
allow-lists and limits come from the settings (--settings FILE, GALLERY_SETTINGS, or the
environment); without any settings the command says so rather than report every gallery as
not allowed. SAS query strings are never printed.

-o json prints {"valid": true, "request": {...}} or {"valid": false, "problems": [{"path",
"rule", "message", "hint"}]}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from shared.builds.submission import problems_document
from shared.cli import exit_codes
from shared.cli.helptext import SubParsers, add_command
from shared.cli.local_settings import add_settings_option, load_settings
from shared.cli.output import CliError, Result
from shared.contract.decode import MAX_DOCUMENT_BYTES, decode_document
from shared.contract.parse import parse_build_request
from shared.contract.rules import ValidationContext
from shared.core.errors import Problem, ValidationFailed

logger = logging.getLogger(__name__)

EXAMPLES = (
    (
        "check a request with the settings devstack wrote",
        "galleryctl check-request request.json --settings local.settings.json",
    ),
    (
        "from stdin, with the settings GALLERY_SETTINGS names",
        "GALLERY_SETTINGS=prod.settings.json galleryctl check-request - < request.json",
    ),
    (
        "only the rules that failed",
        "galleryctl check-request request.json --query 'problems[].rule' -o tsv",
    ),
    (
        "judge dates as of a given time",
        "galleryctl check-request request.json --now 2026-11-16T12:00:00Z",
    ),
)
CODES = {
    exit_codes.OK: "the request is valid",
    exit_codes.FAILED: "the request is invalid: every problem is printed",
    exit_codes.USAGE: "usage error: no such file, no settings, bad settings",
}


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    """Add the ``check-request`` subcommand."""
    parser = add_command(
        subparsers,
        "check-request",
        summary="validate a build request (contract v1) and print it normalised",
        description=__doc__ or "",
        examples=EXAMPLES,
        codes=CODES,
    )
    parser.add_argument("file", metavar="FILE|-", help="the request JSON file, or - for stdin")
    parser.add_argument(
        "--source-region",
        metavar="REGION",
        help="the OS source's region, if known: it must then be a target region",
    )
    parser.add_argument(
        "--now",
        metavar="TIME",
        type=_parse_now,
        help="judge dates as of this RFC 3339 time instead of the clock (for reproducible runs)",
    )
    add_settings_option(parser)
    parser.set_defaults(handler=run)


def _parse_now(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-11-16T12:00:00Z")
    return moment


def read_document_bytes(name: str) -> bytes:
    """The bytes of ``name`` (``-``: stdin), as they are: decoding them is the contract's job,
    so bytes that are not UTF-8 are a problem to report, not lone surrogates. Reads one byte
    more than a request may have, so that a bigger input is refused without reading it all."""
    if name == "-":
        return sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
    with open(name, "rb") as handle:
        return handle.read(MAX_DOCUMENT_BYTES + 1)


def read_input(name: str) -> bytes:
    """:func:`read_document_bytes`; a file that cannot be read is a usage error."""
    try:
        return read_document_bytes(name)
    except OSError as error:
        raise CliError(f"cannot read {name}: {error.strerror}", exit_codes.USAGE) from error


def problem_lines(problems: list[Problem]) -> list[str]:
    """Each problem as ``path: message [rule]`` with its fix on the next line."""
    lines = []
    for problem in problems:
        lines.append(f"  {problem.path or '(request)'}: {problem.message} [{problem.rule}]")
        if problem.hint:
            lines.append(f"      fix: {problem.hint}")
    return lines


def _problems_text(problems: list[Problem]) -> str:
    noun = "problem" if len(problems) == 1 else "problems"
    return "\n".join([f"invalid request: {len(problems)} {noun}", *problem_lines(problems)])


def run(args: argparse.Namespace) -> Result:
    """Handle ``check-request``."""
    data = read_input(args.file)
    settings = load_settings(args.settings)
    context = ValidationContext(source_region=args.source_region)
    try:
        document = decode_document(data)
        request = parse_build_request(
            document, settings, now=args.now or datetime.now(UTC), context=context
        )
    except ValidationFailed as error:
        logger.info("build request rejected: %d problem(s)", len(error.problems))
        problems = error.problems
        return Result(
            {"valid": False, "problems": problems_document(error)},
            exit_codes.FAILED,
            human=lambda _data: _problems_text(problems),
        )
    normalised: dict[str, Any] = request.to_document()
    return Result(
        {"valid": True, "request": normalised},
        human=lambda _data: (
            f"valid request {request.request_id}\n{json.dumps(normalised, indent=2)}"
        ),
    )
