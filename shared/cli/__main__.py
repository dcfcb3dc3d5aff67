"""``galleryctl`` entry point (also ``python -m shared.cli``).

Subcommands register themselves through ``register(subparsers)`` in their module; add a module
to ``_SUBCOMMAND_MODULES`` to expose it. A handler returns a :class:`~shared.cli.output.Result`
(its data, exit code and view for people), which the output layer renders as ``-o`` asks, or
an exit code when it printed itself; errors are :class:`~shared.cli.output.CliError`. Exit
codes are in :mod:`shared.cli.exit_codes` and docs/cli.md.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from shared.cli import exit_codes, helptext, options, output
from shared.cli.api import ApiError
from shared.core.errors import NotFoundError, PipelineError, TransientError

_SUBCOMMAND_MODULES: tuple[str, ...] = (
    "shared.cli.validate_vhd",
    "shared.cli.check_request",
    "shared.cli.submit",
    "shared.cli.status",
    "shared.cli.builds",
    "shared.cli.rejects",
    "shared.cli.lifecycle",
)
DESCRIPTION = """Gallery Pipeline's operator tool: validate VHDs and build requests, submit
builds and follow them, list builds and rejected requests, plan and apply the lifecycle.

Every command takes -o/--output (json, jsonc, table, tsv, yaml, none), --query JMESPATH,
--verbose, --debug and --only-show-errors; "galleryctl COMMAND --help" shows its options,
examples and exit codes. Settings: --settings FILE, GALLERY_SETTINGS, or the environment."""
EXAMPLES = (
    (
        "is this request valid?",
        "galleryctl check-request request.json --settings local.settings.json",
    ),
    ("publish it and follow the build", "galleryctl submit request.json --wait"),
    ("failed builds, as JSON", "galleryctl builds --state failed -o json"),
)

Handler = Callable[[argparse.Namespace], "output.Result | int"]


class _SubcommandModule(Protocol):
    def register(self, subparsers: helptext.SubParsers[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galleryctl",
        description=DESCRIPTION,
        epilog=helptext.epilog(EXAMPLES, exit_codes.MEANINGS),
        formatter_class=helptext.PlainHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in _SUBCOMMAND_MODULES:
        try:
            module = cast(_SubcommandModule, importlib.import_module(module_name))
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # subcommand not built yet
            raise
        module.register(subparsers)
    options.install_common_options(parser)
    return parser


def _code_of(error: PipelineError) -> int:
    """The exit code of an error no command translated itself."""
    if isinstance(error, TransientError):
        return exit_codes.UNAVAILABLE
    if isinstance(error, NotFoundError):
        return exit_codes.NOT_FOUND
    return exit_codes.FAILED


def run_handler(args: argparse.Namespace) -> int:
    """Run the command, render its result, and return its exit code."""
    handler = cast(Handler, args.handler)
    try:
        outcome = handler(args)
    except output.CliError as error:
        return output.show_error(args, error, args.command)
    except ApiError as error:
        return output.show_error(args, output.CliError(error.message, error.code), args.command)
    except PipelineError as error:
        failure = output.CliError(error.message, _code_of(error))
        return output.show_error(args, failure, args.command)
    except KeyboardInterrupt:
        print("\ngalleryctl: interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    if isinstance(outcome, output.Result):
        try:
            output.emit(args, outcome.data, outcome.human)
        except BrokenPipeError:  # the reader stopped early (| head): not the command's failure
            _silence_stdout()
        return outcome.code
    return outcome


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (in-process callers)


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """One parser per process: building it is most of an in-process call's time (benchmarks,
    tests), and parsing leaves it unchanged."""
    return build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    options.normalise(args)
    with options.cli_logging(args):
        return run_handler(args)


if __name__ == "__main__":
    sys.exit(main())
