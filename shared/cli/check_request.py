"""``galleryctl check-request FILE|-``: validate a build request without publishing anything.

Prints the normalised request (exit 0) or every problem found (exit 1), including input that is
not a JSON document at all (not UTF-8, not JSON, nested too deep, too big: see
:mod:`shared.contract.decode`); a usage error such as a missing file or bad settings exits 2.
``--json`` prints ``{"valid": true, "request": {...}}`` or ``{"valid": false, "problems":
[{"path", "rule", "message", "hint"}]}``. Settings, including the allow-lists, come from the
environment (``Settings.from_env``). SAS query strings are never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from shared.contract.decode import MAX_DOCUMENT_BYTES, decode_document
from shared.contract.parse import parse_build_request
from shared.contract.rules import ValidationContext
from shared.core.errors import PermanentError, Problem, ValidationFailed
from shared.core.settings import Settings

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check-request`` subcommand."""
    parser = subparsers.add_parser(
        "check-request",
        help="validate a build request (contract v1) and print it normalised",
        description=(
            "Validate a build request and print the normalised request, or every problem. "
            "Exit 0 valid, 1 invalid, 2 usage error. Allow-lists come from the environment "
            "(GALLERY_ALLOWED_TARGET_GALLERIES, GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS)."
        ),
    )
    parser.add_argument("file", metavar="FILE|-", help="the request JSON file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
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


def _print_problems(problems: list[Problem], out: TextIO) -> None:
    noun = "problem" if len(problems) == 1 else "problems"
    print(f"invalid request: {len(problems)} {noun}", file=out)
    for problem in problems:
        where = problem.path or "(request)"
        print(f"  {where}: {problem.message} [{problem.rule}]", file=out)
        if problem.hint:
            print(f"      fix: {problem.hint}", file=out)


def _emit_json(payload: dict[str, Any], out: TextIO) -> None:
    json.dump(payload, out, indent=2)
    out.write("\n")


def run(args: argparse.Namespace) -> int:
    """Handle ``check-request``; returns the exit code."""
    out = sys.stdout
    try:
        data = read_document_bytes(args.file)
    except OSError as exc:
        print(f"galleryctl check-request: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = Settings.from_env(os.environ)
    except PermanentError as exc:
        print(f"galleryctl check-request: bad settings: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    now = args.now or datetime.now(UTC)
    context = ValidationContext(source_region=args.source_region)
    try:
        document = decode_document(data)
        request = parse_build_request(document, settings, now=now, context=context)
    except ValidationFailed as exc:
        problems = exc.problems
    else:
        if args.json:
            _emit_json({"valid": True, "request": request.to_document()}, out)
        else:
            print(f"valid request {request.request_id}", file=out)
            print(json.dumps(request.to_document(), indent=2), file=out)
        return EXIT_OK
    logger.info("build request rejected: %d problem(s)", len(problems))
    if args.json:
        _emit_json(
            {
                "valid": False,
                "problems": [
                    {"path": p.path, "rule": p.rule, "message": p.message, "hint": p.hint}
                    for p in problems
                ],
            },
            out,
        )
    else:
        _print_problems(problems, out)
    return EXIT_INVALID
