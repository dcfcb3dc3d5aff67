"""``galleryctl rejects``: the build requests that were dead-lettered, with their reasons.

Reads image-builds-rejected/$deadletterqueue (GALLERY_REJECTED_QUEUE), where invalid and
impossible requests end with their reason and a description naming each field, rule and fix,
without removing anything. --queue image-builds shows the build queue's own dead letters
(messages Service Bus gave up on after its max delivery count). The description is shown in
full, wrapped to the terminal; -o json also has each message's body (secrets masked).
Settings come from --settings FILE, GALLERY_SETTINGS, or the environment.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import Any, Final

from shared.cli import exit_codes
from shared.cli.builds import positive
from shared.cli.helptext import SubParsers, add_command
from shared.cli.local_settings import add_settings_option, load_settings
from shared.cli.output import CliError, Result
from shared.core.errors import PermanentError, TransientError

INDENT: Final = "    "
MIN_WIDTH: Final = 60
EXAMPLES = (
    ("the rejected requests and why", "galleryctl rejects --settings local.settings.json"),
    ("the build queue's own dead letters", "galleryctl rejects --queue image-builds"),
    ("reasons only", "galleryctl rejects --query '[].[messageId, reason]' -o tsv"),
)
CODES = {
    exit_codes.OK: "shown (also when there are none)",
    exit_codes.USAGE: "usage error: no settings, bad settings",
    exit_codes.UNAVAILABLE: "Service Bus is unavailable (or the queue does not exist): try again",
}


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "rejects",
        summary="list dead-lettered build requests with their reasons",
        description=__doc__ or "",
        examples=EXAMPLES,
        codes=CODES,
    )
    parser.add_argument("--queue", help="a queue whose dead letters to show (default: the rejects)")
    parser.add_argument("--limit", type=positive, default=50, help="how many (default 50)")
    add_settings_option(parser)
    parser.set_defaults(handler=run)


def render_letters(letters: list[dict[str, Any]], queue: str, width: int | None = None) -> str:
    """Each letter as a line of when, message id and reason, then its whole description,
    wrapped (never cut) to ``width`` (default: the terminal's)."""
    if not letters:
        return f"no dead letters in {queue}"
    columns = width or shutil.get_terminal_size((100, 24)).columns
    wrap = textwrap.TextWrapper(
        width=max(columns, MIN_WIDTH),
        initial_indent=INDENT,
        subsequent_indent=INDENT,
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines = []
    for letter in letters:
        when = (letter["enqueuedAt"] or "-")[:19].replace("T", " ")
        lines.append(f"{when}  {letter['messageId']}  {letter['reason']}")
        lines += wrap.wrap(letter["description"]) or [INDENT]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> Result:
    settings = load_settings(args.settings)
    from shared import composition  # noqa: PLC0415  (the SDK import is only needed here)

    queue = args.queue or settings.rejected_queue
    try:
        letters = composition.messaging().peek_dead_letters(queue, args.limit)
    except TransientError as error:
        raise CliError(f"{error.message}; try again", exit_codes.UNAVAILABLE) from error
    except PermanentError as error:
        raise CliError(error.message, exit_codes.USAGE) from error
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
    return Result(document, human=lambda data: render_letters(data, queue))
