"""``galleryctl validate-vhd PATH_OR_BLOB_URL``: the VHD preflight from the command line.

Checks a VHD the way Azure will, by reading only its 512-byte footer (at most two small range
reads, see shared.vhd.preflight): fixed disk type, footer checksum, size matches the footer,
size a whole number of MiB, 20 MiB to 32 TiB, page blob. Every problem is printed with its fix.

Blob URLs are authenticated with a SAS in the URL; else the AzureWebJobsStorage connection
string of the settings (--settings FILE, GALLERY_SETTINGS, or the environment) when the URL is
under its blob endpoint (Azurite); else DefaultAzureCredential. A local file needs no settings.
URLs are printed without their SAS.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Final

from shared.cli import exit_codes
from shared.cli.helptext import SubParsers, add_command
from shared.cli.local_settings import add_settings_option, load_settings_file, settings_file
from shared.cli.output import CliError, Result
from shared.core.errors import NotFoundError, PermanentError, PipelineError, TransientError
from shared.core.redaction import strip_query
from shared.core.settings import SettingName, Settings
from shared.vhd.preflight import VhdReport, inspect_vhd
from shared.vhd.readers import FileRangeReader, RangeReader

COMMAND: Final = "validate-vhd"
EXAMPLES = (
    ("a local file", "galleryctl validate-vhd disk.vhd"),
    (
        "a blob, with a SAS (never printed)",
        "galleryctl validate-vhd 'https://acct.blob.core.windows.net/vhds/os.vhd?sv=...&sig=...'",
    ),
    (
        "a blob on Azurite, with the devstack settings",
        "galleryctl validate-vhd http://127.0.0.1:10000/devstoreaccount1/vhds/os.vhd "
        "--settings local.settings.json",
    ),
    ("only the rules that failed", "galleryctl validate-vhd disk.vhd --query 'problems[].rule'"),
)
CODES = {
    exit_codes.OK: "the VHD is valid",
    exit_codes.FAILED: "it is not: every reason is printed",
    exit_codes.USAGE: "usage, or an unreadable source (access denied, bad URL or settings)",
    exit_codes.UNAVAILABLE: "storage unavailable right now (timeouts, throttling, 5xx): try again",
    exit_codes.NOT_FOUND: "no such file or blob",
}


def register(subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    """Add the ``validate-vhd`` subcommand."""
    parser = add_command(
        subparsers,
        COMMAND,
        summary="check that a local file or a blob is a VHD that Azure accepts",
        description=__doc__ or "",
        examples=EXAMPLES,
        codes=CODES,
    )
    parser.add_argument(
        "source",
        metavar="PATH_OR_BLOB_URL",
        help="a local file, or a blob URL (with a SAS, or under AzureWebJobsStorage's endpoint)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=30,
        metavar="SECONDS",
        help="per-request timeout for blob reads (default 30)",
    )
    add_settings_option(parser)
    parser.set_defaults(handler=run)


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _with_file_storage_connection(
    settings: Settings, url: str, settings_path: Path | None
) -> Settings:
    """The settings, with the settings file's ``AzureWebJobsStorage`` when the environment's
    connection string does not cover ``url`` but the file's does (an exported production
    connection string must not hide the local stack's Azurite account)."""
    from shared.adapters.blob_range_reader import connection_string_covers  # noqa: PLC0415

    if connection_string_covers(settings.storage_connection_string, url):
        return settings
    path = settings_file(settings_path, os.environ)
    if path is None:
        return settings
    try:
        values = json.loads(path.read_bytes()).get("Values") or {}
    except (OSError, ValueError, AttributeError):
        return settings  # load_settings_file already reported an unreadable file
    from_file = values.get(SettingName.STORAGE_CONNECTION)
    if isinstance(from_file, str) and connection_string_covers(from_file, url):
        return dataclasses.replace(settings, storage_connection_string=from_file)
    return settings


def _open_reader(source: str, timeout: int, settings_path: Path | None) -> RangeReader:
    if _is_url(source):
        # Imported here so that checking a local file never loads the Azure SDK.
        from shared.adapters.blob_range_reader import open_blob_reader  # noqa: PLC0415

        load_settings_file(settings_path, required=False)
        settings = Settings.from_env(os.environ)
        settings = _with_file_storage_connection(settings, source, settings_path)
        return open_blob_reader(
            source, settings, timeout_seconds=timeout, connection_timeout=min(timeout, 10)
        )
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"no such file: {source}")
    if not path.is_file():
        raise PermanentError(f"not a regular file: {source}")
    return FileRangeReader(path)


def _exit_code(error: PipelineError) -> int:
    if isinstance(error, TransientError):
        return exit_codes.UNAVAILABLE
    if isinstance(error, NotFoundError):
        return exit_codes.NOT_FOUND
    return exit_codes.USAGE


def run(args: argparse.Namespace) -> Result:
    """Handler of ``galleryctl validate-vhd``."""
    source = strip_query(args.source)
    try:
        reader = _open_reader(args.source, args.timeout, args.settings)
        report = inspect_vhd(reader)
    except PipelineError as error:
        failure = {
            "valid": None,
            "source": source,
            "error": {"reason": error.reason, "message": error.message},
        }
        raise CliError(error.message, _exit_code(error), data=failure) from error
    reads = int(getattr(reader, "reads", 0))
    bytes_read = int(getattr(reader, "bytes_read", 0))
    document: dict[str, Any] = {"source": source, **report.to_json()}
    document["read"] = {"reads": reads, "bytes": bytes_read}
    return Result(
        document,
        exit_codes.OK if report.ok else exit_codes.FAILED,
        human=lambda _data: render_text(source, report, reads=reads, bytes_read=bytes_read),
    )


def _size(size: int | None) -> str:
    if size is None:
        return "unknown"
    mib, rest = divmod(size, 1024 * 1024)
    if rest == 0 and mib % 1024 == 0 and mib:
        return f"{mib // 1024} GiB ({size} bytes)"
    if rest == 0:
        return f"{mib} MiB ({size} bytes)"
    return f"{size / (1024 * 1024):.3f} MiB ({size} bytes)"


def render_text(source: str, report: VhdReport, *, reads: int, bytes_read: int) -> str:
    """The human-readable report: a verdict line, the footer facts, then every problem."""
    lines: list[str] = []
    if report.ok:
        lines.append(f"{source}: valid fixed VHD")
    else:
        count = len(report.problems)
        lines.append(
            f"{source}: NOT a valid VHD for Azure ({count} problem{'s' if count != 1 else ''})"
        )
    lines.append(f"  format        {report.detected_format}")
    lines.append(f"  file size     {report.file_size} bytes")
    if report.blob_type:
        lines.append(f"  blob type     {report.blob_type}")
    footer = report.footer
    if footer is not None:
        lines.append(f"  virtual size  {_size(report.virtual_size)}")
        lines.append(f"  disk type     {footer.disk_type_name}")
        created = footer.created_at.isoformat().replace("+00:00", "Z")
        lines.append(f"  creator       {footer.creator}, created {created}")
        lines.append(f"  unique id     {footer.uuid}")
        checksum_state = "ok" if footer.checksum_ok else "WRONG"
        lines.append(f"  checksum      0x{footer.checksum:08x} ({checksum_state})")
    lines.append(f"  read          {bytes_read} bytes in {reads} read{'s' if reads != 1 else ''}")
    for number, problem in enumerate(report.problems, start=1):
        lines.append(f"  {number}. [{problem.rule}] {problem.path}: {problem.message}")
        if problem.hint:
            lines.append(f"     fix: {problem.hint}")
    return "\n".join(lines)
