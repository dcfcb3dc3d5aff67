"""``galleryctl`` entry point (also ``python -m shared.cli``).

Exit codes: 0 success/valid, 1 invalid input (reasons printed), 2 usage error.
Subcommands register themselves through ``register(subparsers)`` in their module; add a module
to ``_SUBCOMMAND_MODULES`` to expose it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

_SUBCOMMAND_MODULES: tuple[str, ...] = (
    "shared.cli.validate_vhd",
    "shared.cli.check_request",
    "shared.cli.lifecycle",
    "shared.cli.submit",
    "shared.cli.status",
    "shared.cli.rejects",
)


class _SubcommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galleryctl", description="Gallery Pipeline command-line tool."
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    handler = cast(Callable[[argparse.Namespace], int], args.handler)
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
