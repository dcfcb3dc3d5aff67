"""``galleryctl submit FILE|-``: validate a build request and put it on the build queue.

Prints the request id and the build id (derived from the request id, so it is known before any
worker has seen the message). The message id is the request id: submitting the same request
twice within the queue's duplicate-detection window sends it once, and the ledger ignores it
after that. A request whose build has already ended is not sent again; the command says so
("already built as 1.0.3", or how it failed).

--wait follows the build to its end, as galleryctl status --wait does (--no-wait, the default,
returns once the request is on the queue). Settings come from --settings FILE, GALLERY_SETTINGS,
or the environment (ServiceBusConnection or ServiceBusConnection__fullyQualifiedNamespace, the
allow-lists...); the status API from --api or GALLERY_API_URL.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from shared.builds.records import BuildPhase, BuildRecord
from shared.builds.status import record_view
from shared.builds.submission import Submitted, problems_document, submit_request
from shared.cli import api, exit_codes, follow, views
from shared.cli.check_request import read_input
from shared.cli.helptext import SubParsers, add_command
from shared.cli.local_settings import add_settings_option, load_settings
from shared.cli.output import CliError, Result
from shared.core.errors import PermanentError, TransientError, ValidationFailed
from shared.core.messaging import MessageSender, OutgoingMessage

#: How long ``--wait`` waits for a worker to pick a sent request up (its build to appear).
PICKUP_GRACE_SECONDS: Final = 120.0
EXAMPLES = (
    ("send a request", "galleryctl submit request.json --settings local.settings.json"),
    (
        "send it and follow the build to its end",
        "galleryctl submit request.json --settings local.settings.json --wait",
    ),
    (
        "keep the build id for later",
        "BUILD=$(galleryctl submit request.json --query buildId -o tsv)",
    ),
)
CODES = {
    exit_codes.OK: "sent (with --wait: the build succeeded), or already built",
    exit_codes.FAILED: "invalid request, nothing sent (every problem is printed); the build failed",
    exit_codes.USAGE: "usage error: no such file, no settings, bad settings",
    exit_codes.UNAVAILABLE: "the queue or the status API is unavailable, or --timeout passed",
    exit_codes.NOT_FOUND: "with --wait: no worker picked the request up, or no status API at --api",
}


class _LazySender:
    """Builds the Service Bus client only when there is something valid to send."""

    def __init__(self, factory: Callable[[], MessageSender]) -> None:
        self._factory = factory

    def send(self, entity: str, message: OutgoingMessage) -> None:
        self._factory().send(entity, message)


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "submit",
        summary="validate a build request and send it to the build queue",
        description=__doc__ or "",
        examples=EXAMPLES,
        codes=CODES,
    )
    parser.add_argument("file", metavar="FILE|-", help="the request JSON file, or - for stdin")
    parser.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="follow the build until it has succeeded or failed (default: --no-wait)",
    )
    follow.add_wait_options(parser)
    api.add_api_options(parser)
    add_settings_option(parser)
    parser.set_defaults(handler=run)


def _invalid(error: ValidationFailed) -> CliError:
    noun = "problem" if len(error.problems) == 1 else "problems"
    lines = [f"not sent: {len(error.problems)} {noun}"]
    for problem in error.problems:
        fix = f" (fix: {problem.hint})" if problem.hint else ""
        lines.append(f"  {problem.path or '(document)'} [{problem.rule}]: {problem.message}{fix}")
    data = {"sent": False, "problems": problems_document(error)}
    return CliError("\n".join(lines), exit_codes.FAILED, data=data)


def _send(args: argparse.Namespace) -> Submitted:
    body = read_input(args.file)  # decoded by submit_request: bytes that are no JSON exit 1
    settings = load_settings(args.settings)
    from shared import composition  # noqa: PLC0415  (the SDK import is only needed here)

    try:
        return submit_request(
            body,
            settings=settings,
            sender=_LazySender(composition.messaging),
            now=datetime.now(UTC),
            records=composition.build_records,
        )
    except ValidationFailed as error:
        raise _invalid(error) from error
    except TransientError as error:
        raise CliError(f"{error.message}; try again", exit_codes.UNAVAILABLE) from error
    except PermanentError as error:
        raise CliError(error.message, exit_codes.USAGE) from error


def _document(submitted: Submitted) -> dict[str, Any]:
    document: dict[str, Any] = {
        "sent": submitted.existing is None,
        "requestId": submitted.request_id,
        "buildId": submitted.build_id,
    }
    if submitted.existing is not None:
        document["message"] = submitted.summary
        document["version"] = submitted.existing.version
        document["state"] = submitted.existing.phase.value
    return document


def _summary(submitted: Submitted) -> str:
    return (
        f"{submitted.summary}\n"
        f"build id {submitted.build_id}  (galleryctl status {submitted.build_id} --wait)"
    )


def _picked_up(args: argparse.Namespace, submitted: Submitted) -> Callable[[], Any]:
    """The build as the API shows it; ``None`` while no worker has recorded it yet (at most
    :data:`PICKUP_GRACE_SECONDS`)."""
    fetch = follow.getter(api.api_base(args.api), api.api_key(args.key), submitted.build_id)
    deadline = time.monotonic() + PICKUP_GRACE_SECONDS

    def get() -> dict[str, Any] | None:
        try:
            return fetch()
        except api.NotFoundAnswer as missing:
            if time.monotonic() < deadline:
                return None
            raise CliError(
                f"request {submitted.request_id} was sent, but no worker has picked it up within "
                f"{PICKUP_GRACE_SECONDS:g} s (is the function app running? rejected requests: "
                "galleryctl rejects)",
                exit_codes.NOT_FOUND,
            ) from missing

    return get


def _already_ended(args: argparse.Namespace, submitted: Submitted, existing: BuildRecord) -> Result:
    """Nothing was sent: the request's build has ended. Exit 0 if it succeeded, else 1."""
    document = _document(submitted)
    code = exit_codes.OK if existing.phase is BuildPhase.SUCCEEDED else exit_codes.FAILED
    if not args.wait:
        return Result(document, code, human=lambda _d: _summary(submitted))
    build = document["build"] = record_view(existing)
    return Result(
        document, code, human=lambda _d: f"{_summary(submitted)}\n\n{views.render_build(build)}"
    )


def run(args: argparse.Namespace) -> Result:
    submitted = _send(args)
    if submitted.existing is not None:
        return _already_ended(args, submitted, submitted.existing)
    document = _document(submitted)
    if not args.wait:
        return Result(document, human=lambda _d: _summary(submitted))
    try:
        build = follow.follow(args, _picked_up(args, submitted))
    except api.ApiError as error:
        raise CliError(f"sent, but {error.message}", error.code) from error
    document["build"] = build
    return Result(
        document,
        exit_codes.FAILED if build["state"] == "failed" else exit_codes.OK,
        human=lambda _d: f"{_summary(submitted)}\n\n{views.render_build(build)}",
    )
