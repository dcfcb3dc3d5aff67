"""``galleryctl submit FILE|-``: validate a build request and put it on the build queue.

Prints the request id and the build id (derived from the request id, so it is known before any
worker has seen the message: follow it with ``galleryctl status BUILD_ID``). The message id is
the request id, so submitting the same request twice within the queue's duplicate-detection
window sends it once, and the ledger ignores it after that.

Settings come from the environment like the app's (``ServiceBusConnection`` or
``ServiceBusConnection__fullyQualifiedNamespace``, the allow-lists...); ``--settings FILE`` loads
the ``Values`` of a ``local.settings.json`` first (what ``python -m devstack up`` writes).
Exit codes: 0 sent, 1 invalid request (every problem printed; input that is no JSON document,
e.g. not UTF-8 or nested too deep, is one too), 2 usage error, 3 the queue is unavailable
(retry). The input is read as bytes (``-``: ``sys.stdin.buffer``) and decoded by the contract.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.builds.submission import problems_document, submit_request
from shared.cli.check_request import read_document_bytes
from shared.cli.local_settings import add_settings_option, load_settings_file
from shared.core.errors import PermanentError, TransientError, ValidationFailed
from shared.core.messaging import MessageSender, OutgoingMessage
from shared.core.settings import Settings

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class _LazySender:
    """Builds the Service Bus client only when there is something valid to send."""

    def __init__(self, factory: Callable[[], MessageSender]) -> None:
        self._factory = factory

    def send(self, entity: str, message: OutgoingMessage) -> None:
        self._factory().send(entity, message)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="validate a build request and send it to the build queue",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("file", metavar="FILE|-", help="the request JSON file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_settings_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        load_settings_file(args.settings)
        body = read_document_bytes(args.file)  # decoded by submit_request: bad bytes exit 1
        settings = Settings.from_env(os.environ)
    except (OSError, PermanentError) as error:
        print(f"galleryctl submit: {error}", file=sys.stderr)
        return EXIT_USAGE
    from shared import composition  # noqa: PLC0415  (the SDK import is only needed here)

    try:
        submitted = submit_request(
            body,
            settings=settings,
            sender=_LazySender(composition.messaging),
            now=datetime.now(UTC),
            records=composition.build_records,
        )
    except ValidationFailed as error:
        if args.json:
            print(json.dumps({"sent": False, "problems": problems_document(error)}, indent=2))
        else:
            print(f"not sent: {len(error.problems)} problem(s)", file=sys.stderr)
            for problem in error.problems:
                print(
                    f"  {problem.path or '(document)'} [{problem.rule}]: {problem}", file=sys.stderr
                )
        return EXIT_INVALID
    except TransientError as error:
        print(f"galleryctl submit: {error.message}; try again", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except PermanentError as error:
        print(f"galleryctl submit: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        result: dict[str, Any] = {
            "sent": submitted.existing is None,
            "requestId": submitted.request_id,
            "buildId": submitted.build_id,
        }
        if submitted.existing is not None:
            result["message"] = submitted.summary
            result["version"] = submitted.existing.version
            result["state"] = submitted.existing.phase.value
        print(json.dumps(result))
    else:
        print(submitted.summary)
        print(f"build id {submitted.build_id}  (galleryctl status {submitted.build_id})")
    return EXIT_OK
