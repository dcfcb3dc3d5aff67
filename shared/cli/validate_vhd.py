"""``galleryctl validate-vhd PATH_OR_BLOB_URL``: the VHD preflight from the command line.

Exit codes: 0 the VHD is valid; 1 it is not (every reason is printed); 2 usage error, or the
source cannot be read (no such file or blob, access denied, bad URL or settings); 3 storage is
unavailable right now (timeouts, throttling, 5xx: try again).

Blob URLs are read with at most two small range reads (see :mod:`shared.vhd.preflight`).
Authentication:
a SAS in the URL; else the ``AzureWebJobsStorage`` connection string when the URL is under its
blob endpoint (Azurite); else ``DefaultAzureCredential``. URLs are printed without their SAS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from shared.core.errors import NotFoundError, PermanentError, PipelineError, TransientError
from shared.core.redaction import strip_query
from shared.vhd.preflight import VhdReport, inspect_vhd
from shared.vhd.readers import FileRangeReader, RangeReader

EXIT_VALID: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 3

COMMAND: Final = "validate-vhd"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate-vhd`` subcommand."""
    parser = subparsers.add_parser(
        COMMAND,
        help="check that a local file or a blob is a VHD that Azure accepts",
        description=(
            "Check a VHD the way Azure will, by reading only its 512-byte footer: fixed disk "
            "type, footer checksum, size matches the footer, size a whole number of MiB, "
            "20 MiB to 32 TiB, page blob. Exit 0 valid, 1 invalid, 2 usage error or unreadable "
            "source, 3 storage unavailable."
        ),
    )
    parser.add_argument(
        "source",
        metavar="PATH_OR_BLOB_URL",
        help="a local file, or a blob URL (with a SAS, or under AzureWebJobsStorage's endpoint)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.add_argument(
        "--timeout",
        type=int,
        default=30,
        metavar="SECONDS",
        help="per-request timeout for blob reads (default 30)",
    )
    parser.set_defaults(handler=run)


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _open_reader(source: str, timeout: int) -> RangeReader:
    if _is_url(source):
        # Imported here so that checking a local file never loads the Azure SDK.
        from shared.adapters.blob_range_reader import open_blob_reader  # noqa: PLC0415
        from shared.core.settings import Settings  # noqa: PLC0415

        settings = Settings.from_env(os.environ)
        return open_blob_reader(
            source, settings, timeout_seconds=timeout, connection_timeout=min(timeout, 10)
        )
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"no such file: {source}")
    if not path.is_file():
        raise PermanentError(f"not a regular file: {source}")
    return FileRangeReader(path)


def _fail(args: argparse.Namespace, error: PipelineError, code: int, out: TextIO) -> int:
    if args.json:
        payload = {
            "valid": None,
            "source": strip_query(args.source),
            "error": {"reason": error.reason, "message": error.message},
        }
        print(json.dumps(payload, indent=2), file=out)
    else:
        print(f"galleryctl {COMMAND}: {error.message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Handler of ``galleryctl validate-vhd``; returns the exit code."""
    out = sys.stdout
    try:
        reader = _open_reader(args.source, args.timeout)
        report = inspect_vhd(reader)
    except TransientError as error:
        return _fail(args, error, EXIT_UNAVAILABLE, out)
    except PipelineError as error:
        return _fail(args, error, EXIT_USAGE, out)
    source = strip_query(args.source)
    reads = int(getattr(reader, "reads", 0))
    bytes_read = int(getattr(reader, "bytes_read", 0))
    if args.json:
        payload: dict[str, Any] = {"source": source, **report.to_json()}
        payload["read"] = {"reads": reads, "bytes": bytes_read}
        print(json.dumps(payload, indent=2), file=out)
    else:
        print(render_text(source, report, reads=reads, bytes_read=bytes_read), file=out)
    return EXIT_VALID if report.ok else EXIT_INVALID


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
