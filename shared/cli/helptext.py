"""Help texts of ``galleryctl``: plain text with examples and exit codes, no reST markup.

Module docstrings are written for Sphinx (double backticks, ``:class:`` roles); ``--help`` is read
in a terminal. :class:`PlainHelpFormatter` strips that markup from every description, epilog and
option help, and keeps the layout of descriptions as written (``RawDescriptionHelpFormatter``).
:func:`add_command` creates a subcommand whose epilog has an "Examples:" and an "Exit codes:"
section.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence

from shared.cli import exit_codes

#: ``:class:`~shared.x.Y``` -> ``Y``; ``:mod:`shared.x``` -> ``shared.x``.
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_TILDE_TARGET = re.compile(r"^[\w.]+\.(\w+)$")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)

SubParsers = argparse._SubParsersAction  # the type argparse returns from add_subparsers()


def plain(text: str) -> str:
    """``text`` without reST roles and literals, as a terminal should show it."""
    text = _ROLE.sub(lambda m: _last_part(m.group(0), m.group(1)), text)
    return _LITERAL.sub(r"\1", text)


def _last_part(role: str, target: str) -> str:
    """A ``~`` role shows only the last dotted part of its target, as Sphinx does."""
    short = _TILDE_TARGET.match(target) if "`~" in role else None
    return short.group(1) if short else target


class PlainHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as laid out, without reST markup."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(plain(text), width, indent)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return super()._split_lines(plain(text), width)


def examples_section(examples: Sequence[tuple[str, str]]) -> str:
    """The "Examples:" block: a comment line and the command, for each example."""
    lines = ["Examples:"]
    for comment, command in examples:
        lines += [f"  # {comment}", f"  {command}", ""]
    return "\n".join(lines).rstrip()


def epilog(examples: Sequence[tuple[str, str]], codes: Mapping[int, str]) -> str:
    """Examples, then the exit codes of a command."""
    return f"{examples_section(examples)}\n\n{exit_codes.epilog_section(codes)}"


def add_command(
    subparsers: SubParsers[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
    examples: Sequence[tuple[str, str]],
    codes: Mapping[int, str],
) -> argparse.ArgumentParser:
    """A subcommand with a one-line ``summary`` (the command list), a ``description`` and an
    epilog of examples and exit codes."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog(examples, codes),
        formatter_class=PlainHelpFormatter,
    )
