"""Where a command's settings come from, the same way for every command.

1. ``--settings FILE``: the ``Values`` of a ``local.settings.json`` (the one ``python -m devstack
   up`` writes, or one an operator keeps per environment);
2. else ``GALLERY_SETTINGS``: the path of such a file;
3. else the environment itself (the ``GALLERY_*`` settings, ``AzureWebJobsStorage``,
   ``ServiceBusConnection``...), as the app reads it.

The environment wins over a file, as in Core Tools. A command that needs settings and finds
none of the three says so (:data:`NO_SETTINGS`) instead of failing later on a setting that is
merely empty, such as an allow-list.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from shared.cli import exit_codes
from shared.cli.output import CliError
from shared.core.errors import PermanentError
from shared.core.settings import SettingName, Settings

SETTINGS_FILE_VARIABLE: Final = "GALLERY_SETTINGS"
NO_SETTINGS: Final = (
    "no settings: pass --settings FILE, set GALLERY_SETTINGS, or export the GALLERY_* settings"
)
#: Every app setting name: one of them in the environment means settings were given.
APP_SETTINGS: Final = frozenset(
    value for name, value in vars(SettingName).items() if name.isupper() and isinstance(value, str)
)


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help=(
            "a local.settings.json whose Values to use (default: the file GALLERY_SETTINGS "
            "names, else the environment)"
        ),
    )


def has_app_settings(environ: Mapping[str, str]) -> bool:
    """Whether any app setting (``GALLERY_*``, ``AzureWebJobsStorage``...) is set."""
    return any(environ.get(name) for name in APP_SETTINGS)


def settings_file(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """``--settings FILE``, else the file ``GALLERY_SETTINGS`` names, else ``None``."""
    if path is not None:
        return path
    named = environ.get(SETTINGS_FILE_VARIABLE, "").strip()
    return Path(named) if named else None


def _export(path: Path) -> None:
    """Export the file's ``Values``; what the environment already has wins."""
    try:
        values = json.loads(path.read_bytes()).get("Values") or {}
        items = list(values.items())
    except (OSError, ValueError, AttributeError, RecursionError) as error:
        raise PermanentError(
            f"settings file {path}: {error!r}", reason="BadSettingsFile"
        ) from error
    for name, value in items:
        os.environ.setdefault(str(name), str(value))


def load_settings_file(path: Path | None, *, required: bool = True) -> None:
    """Export the settings file (``--settings`` or ``GALLERY_SETTINGS``) into the environment.

    Raises :class:`PermanentError` (reason ``NoSettings``) when ``required`` and there are no
    settings at all, and (``BadSettingsFile``) when the file cannot be read."""
    chosen = settings_file(path, os.environ)
    if chosen is not None:
        _export(chosen)
    elif required and not has_app_settings(os.environ):
        raise PermanentError(NO_SETTINGS, reason="NoSettings")


def load_settings(path: Path | None, *, required: bool = True) -> Settings:
    """The settings object for a command; a usage error (exit 2) when missing or bad."""
    try:
        load_settings_file(path, required=required)
        return Settings.from_env(os.environ)
    except PermanentError as error:
        prefix = "" if error.reason in ("NoSettings", "BadSettingsFile") else "bad settings: "
        raise CliError(f"{prefix}{error.message}", exit_codes.USAGE) from error
