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
grow with the size of the disk. This module is pure domain code: no Azure SDK imports; the blob
reader lives in :mod:`shared.adapters.blob_range_reader`.
"""

from __future__ import annotations

import enum
import logging
import os
import struct
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from shared.core.errors import Problem, ValidationFailed

logger = logging.getLogger(__name__)

FOOTER_SIZE: Final = 512
COOKIE: Final = b"conectix"
MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB
TIB: Final = 1024 * GIB
MIN_VIRTUAL_SIZE: Final = 20 * MIB
MAX_VIRTUAL_SIZE: Final = 32 * TIB

#: Footer ``features`` field: bit 1 ("reserved") must always be set.
FEATURES_RESERVED: Final = 0x00000002
#: Footer ``format version`` 1.0.
FORMAT_VERSION_1_0: Final = 0x00010000
#: ``data offset`` of a fixed disk: there is no dynamic header.
FIXED_DATA_OFFSET: Final = 0xFFFFFFFFFFFFFFFF
#: VHD timestamps count seconds since 2000-01-01 00:00:00 UTC.
VHD_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

#: The conversion that produces what Azure accepts (force_size keeps the exact byte size instead
#: of rounding it to a CHS geometry).
QEMU_FIXED_CONVERT: Final = "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size"

# Big-endian footer layout (offsets 0..85; 427 reserved bytes follow):
# cookie 8s @0, features I @8, format version I @12, data offset Q @16, timestamp I @24,
# creator application 4s @28, creator version I @32, creator host OS 4s @36, original size Q @40,
# current size Q @48, geometry: cylinders H @56, heads B @58, sectors per track B @59,
# disk type I @60, checksum I @64, unique id 16s @68, saved state B @84, reserved 427s @85.
_FOOTER_STRUCT: Final = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427s")
_CHECKSUM_OFFSET: Final = 64
assert _FOOTER_STRUCT.size == FOOTER_SIZE


class DiskType(enum.IntEnum):
    """The footer's ``disk type`` values defined by the specification."""

    NONE = 0
    FIXED = 2
    DYNAMIC = 3
    DIFFERENCING = 4


@dataclass(frozen=True)
class DiskGeometry:
    """CHS geometry from the footer (informational; Azure uses the byte sizes)."""

    cylinders: int
    heads: int
    sectors_per_track: int

    @property
    def capacity(self) -> int:
        """Bytes addressable through the CHS geometry (can be less than the real size)."""
        return self.cylinders * self.heads * self.sectors_per_track * 512


@dataclass(frozen=True)
class VhdFooter:
    """Every field of the 512-byte VHD footer, exactly as stored (round-trips byte for byte)."""

    cookie: bytes
    features: int
    format_version: int
    data_offset: int
    #: Seconds since 2000-01-01 00:00:00 UTC.
    timestamp: int
    creator_application: bytes
    creator_version: int
    creator_host_os: bytes
    original_size: int
    current_size: int
    geometry: DiskGeometry
    disk_type: int
    checksum: int
    unique_id: bytes
    saved_state: int = 0
    reserved: bytes = field(default=bytes(427), repr=False)

    def to_bytes(self) -> bytes:
        """The footer as 512 bytes, with the stored ``checksum`` (see :meth:`with_checksum`)."""
        return _FOOTER_STRUCT.pack(
            self.cookie,
            self.features,
            self.format_version,
            self.data_offset,
            self.timestamp,
            self.creator_application,
            self.creator_version,
            self.creator_host_os,
            self.original_size,
            self.current_size,
            self.geometry.cylinders,
            self.geometry.heads,
            self.geometry.sectors_per_track,
            self.disk_type,
            self.checksum,
            self.unique_id,
            self.saved_state,
            self.reserved,
        )

    def computed_checksum(self) -> int:
        """The checksum these fields should carry."""
        return footer_checksum(self.to_bytes())

    @property
    def checksum_ok(self) -> bool:
        return self.checksum == self.computed_checksum()

    def with_checksum(self) -> VhdFooter:
        """A copy whose ``checksum`` field is correct for its other fields."""
        return replace(self, checksum=self.computed_checksum())

    @property
    def cookie_ok(self) -> bool:
        return self.cookie == COOKIE

    @property
    def disk_type_name(self) -> str:
        try:
            return DiskType(self.disk_type).name.lower()
        except ValueError:
            return f"unknown({self.disk_type})"

    @property
    def created_at(self) -> datetime:
        return VHD_EPOCH + timedelta(seconds=self.timestamp)

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.unique_id)

    @property
    def creator(self) -> str:
        """``creator application`` and version, e.g. ``qemu 5.3 (Wi2k)``."""
        app = self.creator_application.decode("latin-1").strip("\x00 ") or "?"
        host = self.creator_host_os.decode("latin-1").strip("\x00 ") or "?"
        major, minor = self.creator_version >> 16, self.creator_version & 0xFFFF
        return f"{app} {major}.{minor} ({host})"

    def to_json(self) -> dict[str, Any]:
        """Camel-case, JSON-friendly view of the footer (used by ``galleryctl --json``)."""
        return {
            "cookie": self.cookie.decode("latin-1"),
            "features": self.features,
            "formatVersion": f"{self.format_version >> 16}.{self.format_version & 0xFFFF}",
            "dataOffset": self.data_offset,
            "timestamp": self.created_at.isoformat().replace("+00:00", "Z"),
            "creatorApplication": self.creator_application.decode("latin-1"),
            "creatorVersion": f"{self.creator_version >> 16}.{self.creator_version & 0xFFFF}",
            "creatorHostOs": self.creator_host_os.decode("latin-1"),
            "originalSize": self.original_size,
            "currentSize": self.current_size,
            "geometry": {
                "cylinders": self.geometry.cylinders,
                "heads": self.geometry.heads,
                "sectorsPerTrack": self.geometry.sectors_per_track,
            },
            "diskType": self.disk_type_name,
            "checksum": f"0x{self.checksum:08x}",
            "checksumValid": self.checksum_ok,
            "uniqueId": str(self.uuid),
            "savedState": self.saved_state,
        }


def footer_checksum(footer: bytes) -> int:
    """One's complement of the byte sum of ``footer`` with its checksum field counted as zero."""
    if len(footer) != FOOTER_SIZE:
        raise ValueError(f"a VHD footer is {FOOTER_SIZE} bytes, got {len(footer)}")
    total = sum(footer) - sum(footer[_CHECKSUM_OFFSET : _CHECKSUM_OFFSET + 4])
    return ~total & 0xFFFFFFFF


def parse_footer(data: bytes) -> VhdFooter:
    """Parse 512 bytes into a :class:`VhdFooter`; no field is judged here (see inspect_vhd)."""
    if len(data) != FOOTER_SIZE:
        raise ValueError(f"a VHD footer is {FOOTER_SIZE} bytes, got {len(data)}")
    (
        cookie,
        features,
        format_version,
        data_offset,
        timestamp,
        creator_application,
        creator_version,
        creator_host_os,
        original_size,
        current_size,
        cylinders,
        heads,
        sectors_per_track,
        disk_type,
        checksum,
        unique_id,
        saved_state,
        reserved,
    ) = _FOOTER_STRUCT.unpack(data)
    return VhdFooter(
        cookie=cookie,
        features=features,
        format_version=format_version,
        data_offset=data_offset,
        timestamp=timestamp,
        creator_application=creator_application,
        creator_version=creator_version,
        creator_host_os=creator_host_os,
        original_size=original_size,
        current_size=current_size,
        geometry=DiskGeometry(cylinders, heads, sectors_per_track),
        disk_type=disk_type,
        checksum=checksum,
        unique_id=unique_id,
        saved_state=saved_state,
        reserved=reserved,
    )


def chs_geometry(virtual_size: int) -> DiskGeometry:
    """CHS geometry for ``virtual_size`` bytes, per the algorithm in the VHD specification."""
    total_sectors = min(virtual_size // 512, 65535 * 16 * 255)
    if total_sectors >= 65535 * 16 * 63:
        sectors_per_track, heads = 255, 16
        cylinder_times_heads = total_sectors // sectors_per_track
    else:
        sectors_per_track = 17
        cylinder_times_heads = total_sectors // sectors_per_track
        heads = max((cylinder_times_heads + 1023) // 1024, 4)
        if cylinder_times_heads >= heads * 1024 or heads > 16:
            sectors_per_track, heads = 31, 16
            cylinder_times_heads = total_sectors // sectors_per_track
        if cylinder_times_heads >= heads * 1024:
            sectors_per_track, heads = 63, 16
            cylinder_times_heads = total_sectors // sectors_per_track
    return DiskGeometry(cylinder_times_heads // heads, heads, sectors_per_track)


def build_footer(
    virtual_size: int,
    *,
    disk_type: int = DiskType.FIXED,
    data_offset: int | None = None,
    timestamp: datetime | None = None,
    unique_id: bytes | None = None,
    creator_application: bytes = b"gpln",
    creator_version: int = 0x00010000,
    creator_host_os: bytes = b"Wi2k",
) -> VhdFooter:
    """A footer with a correct checksum for a disk of ``virtual_size`` bytes."""
    if virtual_size < 0:
        raise ValueError("virtual_size must not be negative")
    when = timestamp or datetime.now(UTC)
    seconds = max(0, int((when - VHD_EPOCH).total_seconds())) & 0xFFFFFFFF
    if data_offset is None:
        data_offset = FIXED_DATA_OFFSET if disk_type == DiskType.FIXED else FOOTER_SIZE
    footer = VhdFooter(
        cookie=COOKIE,
        features=FEATURES_RESERVED,
        format_version=FORMAT_VERSION_1_0,
        data_offset=data_offset,
        timestamp=seconds,
        creator_application=creator_application,
        creator_version=creator_version,
        creator_host_os=creator_host_os,
        original_size=virtual_size,
        current_size=virtual_size,
        geometry=chs_geometry(virtual_size),
        disk_type=disk_type,
        checksum=0,
        unique_id=unique_id if unique_id is not None else uuid.uuid4().bytes,
    )
    return footer.with_checksum()


def build_fixed_footer(
    virtual_size: int, *, timestamp: datetime | None = None, unique_id: bytes | None = None
) -> bytes:
    """The 512-byte footer of a fixed VHD holding ``virtual_size`` bytes of disk data."""
    return build_footer(virtual_size, timestamp=timestamp, unique_id=unique_id).to_bytes()


# --------------------------------------------------------------------------------------------
# Readers


class RangeReader(Protocol):
    """Random access to a file or blob. Implementations count ``bytes_read`` and ``reads``."""

    bytes_read: int
    reads: int

    def size(self) -> int:
        """Total length in bytes."""
        ...

    def read_range(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer only at the end of the data)."""
        ...


@runtime_checkable
class BlobTypeAware(Protocol):
    """A reader that knows the storage blob type (``PageBlob``, ``BlockBlob``, ``AppendBlob``)."""

    @property
    def blob_type(self) -> str | None: ...


class FileRangeReader:
    """Reads ranges of a local file with ``pread``; the file is open only during each call."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.bytes_read = 0
        self.reads = 0

    def __repr__(self) -> str:
        return f"FileRangeReader({str(self.path)!r})"

    def size(self) -> int:
        return self.path.stat().st_size

    def read_range(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        self.reads += 1
        self.bytes_read += len(data)
        return data


class BytesRangeReader:
    """A :class:`RangeReader` over bytes in memory (tests, small payloads)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.bytes_read = 0
        self.reads = 0

    def size(self) -> int:
        return len(self.data)

    def read_range(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        chunk = self.data[offset : offset + length]
        self.reads += 1
        self.bytes_read += len(chunk)
        return chunk


# --------------------------------------------------------------------------------------------
# Inspection


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


def _mib_text(size: int) -> str:
    whole, rest = divmod(size, MIB)
    return f"{whole} MiB" if rest == 0 else f"{size / MIB:.3f} MiB"


def _size_text(size: int) -> str:
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit} ({size} bytes)"
    if size >= MIB:
        return f"{size / MIB:.3f} MiB ({size} bytes)"
    return f"{size} bytes"


def _resize_recipe(target_size: int) -> str:
    target_mib = target_size // MIB
    return (
        "convert the disk to raw if needed (`qemu-img convert -O raw disk.vhd disk.raw`), "
        f"`qemu-img resize -f raw disk.raw {target_mib}M`, then "
        f"`{QEMU_FIXED_CONVERT} disk.raw disk.vhd`"
    )


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


def _size_problems(data_size: int, path: str, rule_text: str) -> list[Problem]:
    """Alignment and range rules for the disk data size (file size - 512 for a fixed VHD)."""
    problems: list[Problem] = []
    remainder = data_size % MIB
    if remainder:
        floor_mib = data_size // MIB
        short_by = MIB - remainder
        problems.append(
            Problem(
                path=path,
                rule="mib-aligned-size",
                message=(
                    f"the virtual size {data_size} bytes ({_mib_text(data_size)}) is not a whole "
                    f"number of MiB: it is {remainder} bytes over {floor_mib} MiB "
                    f"({short_by} bytes short of {floor_mib + 1} MiB); Azure needs {rule_text}"
                ),
                hint=_resize_recipe((floor_mib + 1) * MIB)
                + " (force_size keeps the size exact instead of rounding it to a CHS geometry)",
            )
        )
    if data_size < MIN_VIRTUAL_SIZE:
        problems.append(
            Problem(
                path=path,
                rule="virtual-size-range",
                message=(
                    f"the virtual size {_size_text(data_size)} is below Azure's minimum of 20 MiB"
                ),
                hint=_resize_recipe(MIN_VIRTUAL_SIZE),
            )
        )
    elif data_size > MAX_VIRTUAL_SIZE:
        problems.append(
            Problem(
                path=path,
                rule="virtual-size-range",
                message=(
                    f"the virtual size {_size_text(data_size)} is above Azure's maximum of 32 TiB"
                ),
                hint="shrink the file system and the disk below 32 TiB, or split the data disks",
            )
        )
    return problems


def _inspect_footer(footer: VhdFooter, file_size: int) -> tuple[DetectedFormat, list[Problem]]:
    problems: list[Problem] = []
    if not footer.checksum_ok:
        problems.append(
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
        )
    disk_type = footer.disk_type
    if disk_type == DiskType.FIXED:
        detected = DetectedFormat.VHD_FIXED
    elif disk_type == DiskType.DYNAMIC:
        detected = DetectedFormat.VHD_DYNAMIC
        problems.append(
            Problem(
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
        )
    elif disk_type == DiskType.DIFFERENCING:
        detected = DetectedFormat.VHD_DIFFERENCING
        problems.append(
            Problem(
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
        )
    else:
        detected = DetectedFormat.VHD_UNKNOWN_TYPE
        problems.append(
            Problem(
                path="vhd.footer.diskType",
                rule="fixed-disk-type",
                message=(
                    f"the footer's disk type is {disk_type}, not a fixed VHD (2); the footer is "
                    "damaged or was written by a broken tool"
                ),
                hint=f"re-create the VHD: `{QEMU_FIXED_CONVERT} disk.raw disk.vhd`",
            )
        )

    if disk_type != DiskType.FIXED:
        # A dynamic/differencing file is not the size of its disk; judge the disk's own size.
        problems.extend(
            _size_problems(
                footer.current_size,
                "vhd.footer.currentSize",
                "the virtual size to be a whole number of MiB",
            )
        )
        return detected, problems

    data_size = file_size - FOOTER_SIZE
    if footer.current_size != data_size:
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
        problems.append(
            Problem(
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
        )
    problems.extend(
        _size_problems(data_size, "vhd.fileSize", "(file size - 512) to be a multiple of 1 MiB")
    )
    return detected, problems


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
                f"(virtual size {_size_text(copy.current_size)}) but its last 512 bytes are not "
                f"a footer: the file ({file_size} bytes) is truncated or the upload is unfinished"
            ),
            hint=(
                "upload the whole file again, and convert it to a fixed VHD first: "
                "`qemu-img convert -f vpc -O vpc -o subformat=fixed,force_size disk.vhd "
                "disk-fixed.vhd`"
            ),
        )
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
