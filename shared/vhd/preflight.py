"""VHD preflight: check a VHD's 512-byte footer before Azure sees it, without downloading it.

Azure Compute Gallery (like managed disks) accepts only *fixed* VHDs: the raw disk data followed by
a 512-byte footer whose cookie is ``conectix`` (Microsoft "Virtual Hard Disk Image Format
Specification"; all fields big-endian). On top of the format, Azure requires:

* the disk type is fixed (2), not dynamic (3) or differencing (4);
* the footer checksum is right (one's complement of the byte sum, checksum field zeroed);
* the footer's current size equals the file size minus 512;
* (file size - 512) is a whole number of MiB;
* 20 MiB <= virtual size <= 32 TiB.

:func:`inspect_vhd` reads at most two 512-byte ranges through a :class:`RangeReader`: the tail
(the footer), and only when there is no footer there, the head, to say what the file is instead
(VHDX, qcow2, a dynamic VHD cut short...). It never reads the disk data, so time and memory do not
grow with the size of the disk. This module is pure domain code: no Azure SDK imports. The
footer codec is :mod:`shared.vhd.footer`, the readers :mod:`shared.vhd.readers` (the blob reader
lives in :mod:`shared.adapters.blob_range_reader`).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any, Final

from shared.core.errors import Problem, ValidationFailed
from shared.vhd.footer import COOKIE, FOOTER_SIZE, DiskType, VhdFooter, parse_footer
from shared.vhd.readers import BlobTypeAware, RangeReader
from shared.vhd.size_rules import QEMU_FIXED_CONVERT, size_problems, size_text

logger = logging.getLogger(__name__)


class DetectedFormat(enum.StrEnum):
    """What the file turned out to be."""

    VHD_FIXED = "vhd-fixed"
    VHD_DYNAMIC = "vhd-dynamic"
    VHD_DIFFERENCING = "vhd-differencing"
    VHD_UNKNOWN_TYPE = "vhd-unknown-type"
    VHD_TRUNCATED = "vhd-truncated"
    VHDX = "vhdx"
    QCOW2 = "qcow2"
    VMDK = "vmdk"
    VDI = "vdi"
    RAW_OR_UNFINISHED = "raw-or-unfinished"
    RAW_OR_TRUNCATED = "raw-or-truncated"
    EMPTY = "empty"


@dataclass(frozen=True)
class VhdReport:
    """The outcome of :func:`inspect_vhd`: every problem found, not only the first."""

    file_size: int
    footer: VhdFooter | None
    problems: list[Problem]
    detected_format: DetectedFormat
    #: Virtual disk size: the footer's current size when there is a footer, else None.
    virtual_size: int | None
    blob_type: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "format": str(self.detected_format),
            "fileSize": self.file_size,
            "virtualSize": self.virtual_size,
            "blobType": self.blob_type,
            "footer": self.footer.to_json() if self.footer else None,
            "problems": [
                {"path": p.path, "rule": p.rule, "message": p.message, "hint": p.hint}
                for p in self.problems
            ],
        }


def _detect_head_format(head: bytes) -> DetectedFormat | None:
    if head.startswith(b"vhdxfile"):
        return DetectedFormat.VHDX
    if head.startswith(b"QFI\xfb"):
        return DetectedFormat.QCOW2
    if head.startswith(b"KDMV") or head.startswith(b"# Disk DescriptorFile"):
        return DetectedFormat.VMDK
    if len(head) >= 68 and head[64:68] == b"\x7f\x10\xda\xbe":
        return DetectedFormat.VDI
    return None


_FOREIGN_FORMAT_TEXT: Final = {
    DetectedFormat.VHDX: ("a VHDX image (signature `vhdxfile`)", "vhdx"),
    DetectedFormat.QCOW2: ("a qcow2 image (signature `QFI\\xfb`)", "qcow2"),
    DetectedFormat.VMDK: ("a VMDK image", "vmdk"),
    DetectedFormat.VDI: ("a VirtualBox VDI image", "vdi"),
}


def _inspect_footer(footer: VhdFooter, file_size: int) -> tuple[DetectedFormat, list[Problem]]:
    problems = _checksum_problems(footer)
    detected, disk_type_problem = _disk_type_verdict(footer)
    if disk_type_problem is not None:
        problems.append(disk_type_problem)

    if footer.disk_type != DiskType.FIXED:
        # A dynamic/differencing file is not the size of its disk; judge the disk's own size.
        problems.extend(
            size_problems(
                footer.current_size,
                "vhd.footer.currentSize",
                "the virtual size to be a whole number of MiB",
            )
        )
        return detected, problems

    data_size = file_size - FOOTER_SIZE
    if footer.current_size != data_size:
        problems.append(_size_mismatch_problem(footer, file_size))
    problems.extend(
        size_problems(data_size, "vhd.fileSize", "(file size - 512) to be a multiple of 1 MiB")
    )
    return detected, problems


def _checksum_problems(footer: VhdFooter) -> list[Problem]:
    if footer.checksum_ok:
        return []
    return [
        Problem(
            path="vhd.footer.checksum",
            rule="footer-checksum",
            message=(
                f"the footer checksum is 0x{footer.checksum:08x} but its fields sum to "
                f"0x{footer.computed_checksum():08x}: the footer is corrupted (a damaged "
                "copy, or a tool that edited the footer without updating the checksum)"
            ),
            hint="re-create the VHD from the source image and upload it again",
        )
    ]


def _disk_type_verdict(footer: VhdFooter) -> tuple[DetectedFormat, Problem | None]:
    """What the footer's disk type says the file is, and the problem if it is not fixed."""
    disk_type = footer.disk_type
    if disk_type == DiskType.FIXED:
        return DetectedFormat.VHD_FIXED, None
    if disk_type == DiskType.DYNAMIC:
        return DetectedFormat.VHD_DYNAMIC, Problem(
            path="vhd.footer.diskType",
            rule="fixed-disk-type",
            message=(
                "this is a dynamic (sparse) VHD, disk type 3; Azure accepts only fixed VHDs "
                "(disk type 2)"
            ),
            hint=(
                "convert it to a fixed VHD: `qemu-img convert -f vpc -O vpc "
                "-o subformat=fixed,force_size disk.vhd disk-fixed.vhd` (or Hyper-V "
                "`Convert-VHD -VHDType Fixed`)"
            ),
        )
    if disk_type == DiskType.DIFFERENCING:
        return DetectedFormat.VHD_DIFFERENCING, Problem(
            path="vhd.footer.diskType",
            rule="fixed-disk-type",
            message=(
                "this is a differencing VHD, disk type 4: it holds only changes against a "
                "parent disk; Azure accepts only a self-contained fixed VHD (disk type 2)"
            ),
            hint=(
                "merge it with its parent into a fixed VHD: `qemu-img convert -O vpc "
                "-o subformat=fixed,force_size child.vhd disk-fixed.vhd` (qemu-img follows "
                "the parent chain)"
            ),
        )
    return DetectedFormat.VHD_UNKNOWN_TYPE, Problem(
        path="vhd.footer.diskType",
        rule="fixed-disk-type",
        message=(
            f"the footer's disk type is {disk_type}, not a fixed VHD (2); the footer is "
            "damaged or was written by a broken tool"
        ),
        hint=f"re-create the VHD: `{QEMU_FIXED_CONVERT} disk.raw disk.vhd`",
    )


def _size_mismatch_problem(footer: VhdFooter, file_size: int) -> Problem:
    """The footer's current size is not the disk data the file holds."""
    data_size = file_size - FOOTER_SIZE
    difference = data_size - footer.current_size
    if difference < 0:
        detail = (
            f"the file is {-difference} bytes shorter than the footer says: it was truncated "
            "or created with the wrong size"
        )
    else:
        detail = (
            f"the file has {difference} bytes more disk data than the footer says: the "
            "blob or file was created larger than the VHD and the footer written at its end"
        )
    return Problem(
        path="vhd.footer.currentSize",
        rule="size-matches-footer",
        message=(
            f"the footer's current size is {footer.current_size} bytes but the file holds "
            f"{data_size} bytes before the footer (file size {file_size} - 512); {detail}"
        ),
        hint=(
            "upload the VHD file as it is, into a page blob of exactly the file's size "
            "(`azcopy copy ... --blob-type PageBlob`)"
        ),
    )


def inspect_vhd(reader: RangeReader) -> VhdReport:
    """Check the VHD behind ``reader``: at most two 512-byte reads (tail, then maybe head)."""
    blob_type = reader.blob_type if isinstance(reader, BlobTypeAware) else None
    file_size = reader.size()
    problems: list[Problem] = []
    if blob_type is not None and blob_type.lower() != "pageblob":
        problems.append(
            Problem(
                path="vhd.blobType",
                rule="page-blob-required",
                message=(
                    f"the blob is a {blob_type}; the gallery needs a page blob (Azure creates "
                    "disks and image versions only from VHDs stored as page blobs)"
                ),
                hint="upload it again as a page blob: `azcopy copy disk.vhd <url> "
                "--blob-type PageBlob` or `az storage blob upload --type page`",
            )
        )

    footer: VhdFooter | None = None
    if file_size < FOOTER_SIZE:
        head = reader.read_range(0, file_size) if file_size else b""
        foreign = _detect_head_format(head)
        detected = foreign or DetectedFormat.EMPTY
        problems.append(
            Problem(
                path="vhd.fileSize",
                rule="vhd-footer-present",
                message=(
                    f"the file is {file_size} bytes, smaller than the 512-byte VHD footer: it is "
                    "empty, truncated, or the upload has not started"
                ),
                hint="upload the complete fixed VHD",
            )
        )
        return VhdReport(file_size, None, problems, detected, None, blob_type)

    tail = reader.read_range(file_size - FOOTER_SIZE, FOOTER_SIZE)
    if tail[: len(COOKIE)] == COOKIE and len(tail) == FOOTER_SIZE:
        footer = parse_footer(tail)
        detected, footer_problems = _inspect_footer(footer, file_size)
        problems.extend(footer_problems)
        return VhdReport(file_size, footer, problems, detected, footer.current_size, blob_type)

    # No footer at the end: look at the start to say what this is instead.
    head = reader.read_range(0, FOOTER_SIZE)
    detected, problem = _classify_missing_footer(head, tail, file_size)
    problems.append(problem)
    return VhdReport(file_size, None, problems, detected, None, blob_type)


def _classify_missing_footer(
    head: bytes, tail: bytes, file_size: int
) -> tuple[DetectedFormat, Problem]:
    """What a file without a footer at its end is: another format, a cut VHD, or raw data."""
    found = _classify_by_head(head, file_size)
    return found if found is not None else _classify_raw(tail, file_size)


def _classify_by_head(head: bytes, file_size: int) -> tuple[DetectedFormat, Problem] | None:
    """Another image format, or a VHD whose head still has the footer copy; else ``None``."""
    foreign = _detect_head_format(head)
    if foreign is not None:
        description, source_format = _FOREIGN_FORMAT_TEXT[foreign]
        return foreign, Problem(
            path="vhd.format",
            rule="vhd-format",
            message=f"this is {description}, not a VHD; Azure needs a fixed VHD",
            hint=(
                f"convert it: `qemu-img convert -f {source_format} -O vpc "
                "-o subformat=fixed,force_size disk."
                f"{source_format} disk.vhd` (its virtual size must be a whole number of MiB)"
            ),
        )
    if head[: len(COOKIE)] == COOKIE and len(head) == FOOTER_SIZE:
        copy = parse_footer(head)
        return DetectedFormat.VHD_TRUNCATED, Problem(
            path="vhd.footer",
            rule="vhd-footer-present",
            message=(
                f"the file starts with the footer copy of a {copy.disk_type_name} VHD "
                f"(virtual size {size_text(copy.current_size)}) but its last 512 bytes are not "
                f"a footer: the file ({file_size} bytes) is truncated or the upload is unfinished"
            ),
            hint=(
                "upload the whole file again, and convert it to a fixed VHD first: "
                "`qemu-img convert -f vpc -O vpc -o subformat=fixed,force_size disk.vhd "
                "disk-fixed.vhd`"
            ),
        )
    return None


def _classify_raw(tail: bytes, file_size: int) -> tuple[DetectedFormat, Problem]:
    """No footer and no known head: raw data, a truncated file, or an unfinished upload."""
    raw_hint = (
        f"if this is a raw disk image, make its size a whole number of MiB and convert it: "
        f"`qemu-img resize -f raw disk.raw <N>M` then `{QEMU_FIXED_CONVERT} disk.raw disk.vhd`"
    )
    if file_size % 512:
        return DetectedFormat.RAW_OR_TRUNCATED, Problem(
            path="vhd.fileSize",
            rule="vhd-footer-present",
            message=(
                f"no VHD footer (cookie `conectix`) at the end, and the file size {file_size} "
                f"is not a whole number of 512-byte sectors ({file_size % 512} bytes over): "
                "the file is truncated (an incomplete copy or upload) or is not a disk image"
            ),
            hint="copy or upload the complete VHD again; " + raw_hint,
        )
    if not any(tail):
        return DetectedFormat.RAW_OR_UNFINISHED, Problem(
            path="vhd.footer.cookie",
            rule="vhd-footer-present",
            message=(
                "no VHD footer: the last 512 bytes are all zero, where a fixed VHD has its "
                "`conectix` footer. This is a raw disk image, or the upload is unfinished "
                "(the footer is the last page written)"
            ),
            hint="if an upload is running, wait for it to finish; " + raw_hint,
        )
    return DetectedFormat.RAW_OR_TRUNCATED, Problem(
        path="vhd.footer.cookie",
        rule="vhd-footer-present",
        message=(
            "no VHD footer: the last 512 bytes are disk data, not a footer with cookie "
            "`conectix`. This is a raw disk image, or a VHD that lost its end (truncated)"
        ),
        hint=raw_hint,
    )


def ensure_valid_vhd(reader: RangeReader, *, subject: str = "VHD") -> VhdReport:
    """Like :func:`inspect_vhd`, but raise :class:`ValidationFailed` with every problem found."""
    report = inspect_vhd(reader)
    if not report.ok:
        logger.info(
            "VHD preflight rejected %s: %s",
            subject,
            ", ".join(p.rule for p in report.problems),
        )
        raise ValidationFailed(report.problems, subject=subject)
    return report
