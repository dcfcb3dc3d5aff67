"""The exit codes of every ``galleryctl`` command, defined once (docs/cli.md lists them).

Scripts can rely on them: 0 ok, 1 failed or invalid, 2 usage, 3 transient or unavailable (try
again later), 4 not found. ``lifecycle apply`` adds 5 (halted), and Ctrl-C exits 130 as shells
expect. :func:`epilog_section` writes the "Exit codes:" block of a command's help from the
meanings it gives each code, so help and code cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
UNAVAILABLE: Final = 3
NOT_FOUND: Final = 4
#: ``lifecycle apply`` only: the lifecycle is halted by its circuit breaker and changed nothing.
HALTED: Final = 5
#: Interrupted (Ctrl-C): 128 + SIGINT, the shell convention.
INTERRUPTED: Final = 130

#: What each code means for any command; commands refine the wording in their help.
MEANINGS: Final[Mapping[int, str]] = {
    OK: "ok",
    FAILED: "failed or invalid",
    USAGE: "usage error (bad arguments, no or bad settings)",
    UNAVAILABLE: "transient or unavailable: try again later",
    NOT_FOUND: "not found",
    HALTED: "lifecycle apply only: the lifecycle is halted, nothing changed",
    INTERRUPTED: "interrupted (Ctrl-C)",
}


def epilog_section(codes: Mapping[int, str]) -> str:
    """The "Exit codes:" block of a help text, one code per line, in order."""
    lines = ["Exit codes:"]
    lines += [f"  {code:>3}  {meaning}" for code, meaning in sorted(codes.items())]
    return "\n".join(lines)
