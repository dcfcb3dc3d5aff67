"""``galleryctl rejects``: the build requests that were dead-lettered, with their reasons.

Reads ``image-builds-rejected/$deadletterqueue`` (``GALLERY_REJECTED_QUEUE``), where invalid and
impossible requests end with their reason and a description naming each field, rule and fix,
without removing anything. ``--queue image-builds`` shows the build queue's own dead letters
(messages Service Bus gave up on after its max delivery count). Settings come from the
environment, or ``--settings local.settings.json``. Exit codes: 0 shown, 2 usage error,
3 Service Bus unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from shared.cli.local_settings import add_settings_option, load_settings_file
from shared.core.errors import PermanentError, TransientError
from shared.core.settings import Settings

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
DESCRIPTION_WIDTH = 100


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rejects",
        help="list dead-lettered build requests with their reasons",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--queue", help="a queue whose dead letters to show (default: the rejects)")
    parser.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_settings_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        load_settings_file(args.settings)
        settings = Settings.from_env(os.environ)
        from shared import composition  # noqa: PLC0415  (the SDK import is only needed here)

        queue = args.queue or settings.rejected_queue
        letters = composition.messaging().peek_dead_letters(queue, args.limit)
    except TransientError as error:
        print(f"galleryctl rejects: {error.message}; try again", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except PermanentError as error:
        print(f"galleryctl rejects: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        document = [
            {
                "messageId": letter.message_id,
                "reason": letter.reason,
                "description": letter.description,
                "enqueuedAt": letter.enqueued_at.isoformat() if letter.enqueued_at else None,
                "body": letter.body,
            }
            for letter in letters
        ]
        print(json.dumps(document, indent=2))
        return EXIT_OK
    if not letters:
        print(f"no dead letters in {queue}")
        return EXIT_OK
    for letter in letters:
        when = letter.enqueued_at.strftime("%Y-%m-%d %H:%M:%S") if letter.enqueued_at else "-"
        description = letter.description
        if len(description) > DESCRIPTION_WIDTH:
            description = description[: DESCRIPTION_WIDTH - 3] + "..."
        print(f"{when}  {letter.message_id}  {letter.reason}")
        print(f"    {description}")
    return EXIT_OK
