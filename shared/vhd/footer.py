"""The VHD footer codec: the 512-byte footer of a VHD, parsed, built and checksummed.

Microsoft "Virtual Hard Disk Image Format Specification": a fixed VHD is the raw disk data
followed by a 512-byte footer whose cookie is ``conectix``; all fields are big-endian.
:func:`parse_footer` reads the fields without judging them (the Azure rules are
:func:`shared.vhd.preflight.inspect_vhd`); :func:`build_footer` and :func:`build_fixed_footer`
write a footer with a correct checksum. Pure code: no I/O.
"""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

FOOTER_SIZE: Final = 512
COOKIE: Final = b"conectix"
#: Byte size units (disk sizes, and the limits Azure puts on them).
MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB
TIB: Final = 1024 * GIB

#: Footer ``features`` field: bit 1 ("reserved") must always be set.
FEATURES_RESERVED: Final = 0x00000002
#: Footer ``format version`` 1.0.
FORMAT_VERSION_1_0: Final = 0x00010000
#: ``data offset`` of a fixed disk: there is no dynamic header.
FIXED_DATA_OFFSET: Final = 0xFFFFFFFFFFFFFFFF
#: VHD timestamps count seconds since 2000-01-01 00:00:00 UTC.
VHD_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

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
