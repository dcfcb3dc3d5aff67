"""The options every ``galleryctl`` command takes, as az has them, and the logging they set.

``-o/--output``, ``--json``, ``--query``, ``--verbose``, ``--debug`` and ``--only-show-errors``
are accepted before the command (``galleryctl -o json status``) and after it (``galleryctl
status -o json``); ``--version`` only before. :func:`install_common_options` adds them to every
command of the parser tree, including the nested ones (``lifecycle plan``), so no command can
miss them, and gives every parser the plain help formatter.

Logging goes to stderr, with SAS signatures and account keys masked: by default warnings;
``--verbose`` adds the pipeline's info messages; ``--debug`` everything, including azure-core's
HTTP logging (each request's method, URL and headers, with azure-core's own redaction) and the
status API's requests; ``--only-show-errors`` errors only, and no progress lines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any, Final

from shared.cli import output
from shared.cli.helptext import PlainHelpFormatter
from shared.core.redaction import redact_secrets

DISTRIBUTION: Final = "gallery-pipeline"
#: The loggers whose level the options set (root: ours and the libraries'; azure: the SDKs').
AZURE_LOGGER: Final = "azure"


def version_text() -> str:
    """``galleryctl 0.1.0``: the installed package's version, from its metadata."""
    try:
        return f"galleryctl {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return "galleryctl (version unknown: the package is not installed; pip install -e .)"


def _common_options(root: bool) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(flags, argparse keywords) of each common option. On a command, defaults are suppressed,
    so that a value given before the command is not reset by the command's own parser."""
    value: dict[str, Any] = {} if root else {"default": argparse.SUPPRESS}
    flag: dict[str, Any] = {"action": "store_true", "default": False, **value}
    return [
        (
            ("-o", "--output"),
            {
                "choices": output.FORMATS,
                "metavar": "FORMAT",
                **value,
                "help": "output format: json, jsonc, table (the default), tsv, yaml or none",
            },
        ),
        (
            ("--json",),
            {
                "dest": "output",
                "action": "store_const",
                "const": "json",
                **value,
                "help": "same as -o json",
            },
        ),
        (
            ("--query",),
            {
                "metavar": "JMESPATH",
                "type": output.compile_query,
                **value,
                "help": "JMESPath query applied to the result, e.g. \"[?state=='failed'].buildId\"",
            },
        ),
        (("--verbose",), {**flag, "help": "more logging (info)"}),
        (
            ("--debug",),
            {**flag, "help": "all logging, with the HTTP requests (azure-core, the status API)"},
        ),
        (("--only-show-errors",), {**flag, "help": "only errors: no warnings, no progress"}),
    ]


def add_common_options(parser: argparse.ArgumentParser, *, root: bool) -> None:
    """The common options, except those the command defines itself (lifecycle's ``--json``)."""
    group = parser.add_argument_group("global options")
    for flags, keywords in _common_options(root):
        if not any(flag in parser._option_string_actions for flag in flags):
            group.add_argument(*flags, **keywords)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[argparse.ArgumentParser, bool]]:
    """Every parser of the tree with whether it is a leaf (a command that runs)."""
    children = [
        sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in dict.fromkeys(action.choices.values())
    ]
    yield parser, not children
    for child in children:
        yield from _parsers(child)


def install_common_options(root: argparse.ArgumentParser) -> None:
    """Plain help everywhere; the common options on the root and on every command."""
    root.add_argument("--version", action="version", version=version_text())
    add_common_options(root, root=True)
    for parser, leaf in _parsers(root):
        parser.formatter_class = PlainHelpFormatter
        if leaf and parser is not root:
            add_common_options(parser, root=False)


def normalise(args: argparse.Namespace) -> None:
    """A command's own ``--json`` flag (lifecycle's) and ``-o json`` mean the same."""
    if getattr(args, "json", False) is True:
        args.output = "json"
    if hasattr(args, "json") and args.output == "json":
        args.json = True


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


def log_levels(args: argparse.Namespace) -> tuple[int, int]:
    """(root level, azure SDK level) for the options given."""
    if args.debug:
        return logging.DEBUG, logging.DEBUG
    if args.only_show_errors:
        return logging.ERROR, logging.ERROR
    if args.verbose:
        return logging.INFO, logging.WARNING  # azure-core logs each request at INFO
    return logging.WARNING, logging.WARNING


@contextmanager
def cli_logging(args: argparse.Namespace) -> Iterator[None]:
    """Log to stderr at the levels the options ask for; restore the previous levels after
    (``main`` also runs in-process, in tests and benchmarks)."""
    root_level, azure_level = log_levels(args)
    root, azure = logging.getLogger(), logging.getLogger(AZURE_LOGGER)
    saved = (root.level, azure.level)
    handler = logging.StreamHandler(sys.stderr)
    shape = "%(asctime)s " if args.debug else ""
    handler.setFormatter(_RedactingFormatter(f"{shape}%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(root_level)
    root.addHandler(handler)
    root.setLevel(root_level)
    azure.setLevel(azure_level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        azure.setLevel(saved[1])
