"""``--settings FILE``: load a ``local.settings.json`` (e.g. the one devstack writes) first."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from shared.core.errors import PermanentError


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="load settings from a local.settings.json first (e.g. the one devstack writes)",
    )


def load_settings_file(path: Path | None) -> None:
    """Export the file's ``Values``; the environment wins, as in Core Tools."""
    if path is None:
        return
    try:
        values = json.loads(path.read_bytes()).get("Values") or {}
    except (OSError, ValueError, AttributeError, RecursionError) as error:
        raise PermanentError(f"--settings {path}: {error!r}", reason="BadSettingsFile") from error
    for name, value in values.items():
        os.environ.setdefault(str(name), str(value))
