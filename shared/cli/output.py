"""The one output layer of ``galleryctl``: each command returns a JSON-able result; this renders it.

``-o/--output`` picks the format (``--json`` is ``-o json``):

- ``table`` (the default): the command's own view for people when it has one (a report, a
  table, a build with its regions), else an az-style table of the data;
- ``json``, ``jsonc`` (coloured when stdout is a terminal and ``NO_COLOR`` is unset), ``yaml``,
  ``tsv`` (no header) and ``none`` (nothing: the exit code alone).

``--query`` applies a JMESPath expression to the data first, as az does; the command's own
view is then skipped and the query's result is rendered as it is. Errors never go to stdout:
a :class:`CliError` prints its message on stderr (its data, when it has some, is still the
machine-readable stdout of the machine formats).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

from shared.cli import exit_codes, formats

FORMATS: Final = ("json", "jsonc", "table", "tsv", "yaml", "none")
DEFAULT_FORMAT: Final = "table"
#: A command's view for people: its text, or rows (flat objects) for the generic table.
HumanView = Callable[[Any], "str | list[dict[str, Any]]"]


@dataclass(frozen=True)
class Result:
    """What a command hands back: its data (what ``-o json`` prints), its exit code, and
    optionally its own view for people (``-o table`` without ``--query``)."""

    data: Any
    code: int = exit_codes.OK
    human: HumanView | None = None


class CliError(Exception):
    """A command failed: ``message`` goes to stderr and the command exits with ``code``.

    ``data`` (optional) is still printed in the machine formats, so that a script reading
    ``-o json`` gets a document on failure too (``{"sent": false, "problems": [...]}``)."""

    def __init__(self, message: str, code: int = exit_codes.FAILED, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


def compile_query(text: str) -> str:
    """``--query``'s argument type: a JMESPath expression that compiles (checked before the
    command runs, so that a typo never comes after an action). jmespath loads only then."""
    import jmespath  # type: ignore[import-untyped]  # noqa: PLC0415  (only with --query)
    from jmespath.exceptions import JMESPathError  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        jmespath.compile(text)
    except JMESPathError as error:
        raise argparse.ArgumentTypeError(f"invalid JMESPath query: {error}") from None
    return text


def apply_query(data: Any, query: str | None) -> Any:
    if not query:
        return data
    import jmespath  # noqa: PLC0415

    return jmespath.search(query, data)


def output_format(args: argparse.Namespace) -> str:
    return getattr(args, "output", None) or DEFAULT_FORMAT


def _coloured(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def render(data: Any, fmt: str, *, human: HumanView | None, query: str | None, tty: bool) -> str:
    """The text that ``fmt`` prints for ``data`` (without the final newline; ``""``: nothing)."""
    if fmt == "none":
        return ""
    if fmt == "table" and human is not None and not query:
        view = human(data)
        return view if isinstance(view, str) else formats.table(view)
    shown = apply_query(data, query)
    if fmt == "table":
        return formats.table(shown)
    if fmt == "tsv":
        return formats.tsv(shown)
    if fmt == "yaml":
        return formats.yaml(shown)
    if fmt == "jsonc" and tty:
        return formats.jsonc(shown)
    return formats.json_text(shown)


def emit(args: argparse.Namespace, data: Any, human: HumanView | None = None) -> None:
    """Print ``data`` on stdout in the format the command line asked for."""
    out = sys.stdout
    text = render(
        data,
        output_format(args),
        human=human,
        query=getattr(args, "query", None),
        tty=_coloured(out),
    )
    if text:
        print(text, file=out)


def show_error(args: argparse.Namespace, error: CliError, command: str) -> int:
    """Report ``error`` (stderr; its data on stdout in a machine format) and return its code."""
    if error.data is not None and output_format(args) not in ("table", "none"):
        emit(args, error.data)
    print(f"galleryctl {command}: {error.message}", file=sys.stderr)
    return error.code


def text_of(write: Callable[[TextIO], None]) -> str:
    """What ``write(stream)`` writes, as a string (for views written to a stream)."""
    buffer = io.StringIO()
    write(buffer)
    return buffer.getvalue().rstrip("\n")
