"""The VHD footer codec: byte-exact round trips, checksum and CHS geometry."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.vhd.footer import (
    COOKIE,
    FIXED_DATA_OFFSET,
    FOOTER_SIZE,
    MIB,
    DiskGeometry,
    DiskType,
    VhdFooter,
    build_fixed_footer,
    build_footer,
    chs_geometry,
    footer_checksum,
    parse_footer,
)
from tests.vhd_fixtures import qemu_fixed_vhd, run_qemu_img

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 0xFFFFFFFFFFFFFFFF)

footers = st.builds(
    VhdFooter,
    cookie=st.binary(min_size=8, max_size=8),
    features=u32,
    format_version=u32,
    data_offset=u64,
    timestamp=u32,
    creator_application=st.binary(min_size=4, max_size=4),
    creator_version=u32,
    creator_host_os=st.binary(min_size=4, max_size=4),
    original_size=u64,
    current_size=u64,
    geometry=st.builds(DiskGeometry, u16, u8, u8),
    disk_type=u32,
    checksum=u32,
    unique_id=st.binary(min_size=16, max_size=16),
    saved_state=u8,
    reserved=st.binary(min_size=427, max_size=427),
)


@given(footers)
def test_footer_fields_round_trip_through_bytes(footer: VhdFooter) -> None:
    data = footer.to_bytes()
    assert len(data) == FOOTER_SIZE
    assert parse_footer(data) == footer


@given(st.binary(min_size=FOOTER_SIZE, max_size=FOOTER_SIZE))
def test_any_512_bytes_round_trip_exactly(data: bytes) -> None:
    assert parse_footer(data).to_bytes() == data


@given(footers)
def test_with_checksum_makes_the_footer_verify(footer: VhdFooter) -> None:
    fixed = footer.with_checksum()
    assert fixed.checksum_ok
    assert parse_footer(fixed.to_bytes()).checksum_ok
    # Every other field is untouched.
    assert fixed.to_bytes()[:64] == footer.to_bytes()[:64]
    assert fixed.to_bytes()[68:] == footer.to_bytes()[68:]


@settings(max_examples=200)
@given(
    st.integers(0, 64 * 1024 * 1024 * MIB).map(lambda n: n - n % 512),
    st.integers(0, FOOTER_SIZE - 1),
    st.integers(1, 255),
)
def test_changing_any_byte_breaks_the_checksum(
    virtual_size: int, position: int, delta: int
) -> None:
    data = bytearray(build_fixed_footer(virtual_size))
    assert parse_footer(bytes(data)).checksum_ok
    data[position] = (data[position] + delta) % 256
    assert not parse_footer(bytes(data)).checksum_ok


@given(st.integers(0, 32 * 1024 * 1024 * MIB), st.binary(min_size=16, max_size=16))
def test_build_fixed_footer_fields(virtual_size: int, unique_id: bytes) -> None:
    when = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    footer = parse_footer(build_fixed_footer(virtual_size, timestamp=when, unique_id=unique_id))
    assert footer.cookie == COOKIE
    assert footer.disk_type == DiskType.FIXED
    assert footer.data_offset == FIXED_DATA_OFFSET
    assert footer.current_size == footer.original_size == virtual_size
    assert footer.created_at == when
    assert footer.unique_id == unique_id
    assert footer.checksum_ok
    assert footer.geometry == chs_geometry(virtual_size)


def test_checksum_is_ones_complement_of_byte_sum_without_checksum_field() -> None:
    data = bytearray(build_fixed_footer(21 * MIB))
    expected = ~(sum(data[:64]) + sum(data[68:])) & 0xFFFFFFFF
    assert footer_checksum(bytes(data)) == expected
    assert struct.unpack(">I", data[64:68])[0] == expected


def test_parse_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="512 bytes"):
        parse_footer(b"conectix" + bytes(100))


@settings(max_examples=300)
@given(st.integers(1, 2**44))
def test_chs_geometry_never_addresses_more_than_the_disk(virtual_size: int) -> None:
    geometry = chs_geometry(virtual_size)
    assert 1 <= geometry.heads <= 16
    assert geometry.sectors_per_track in (17, 31, 63, 255)
    assert geometry.cylinders <= 65535
    assert geometry.capacity <= virtual_size


def test_chs_geometry_matches_qemu(tmp_path: Path) -> None:
    # qemu-img without force_size rounds the disk up to its CHS geometry, so the footer's
    # current size is the geometry's capacity: the spec algorithm must give the same geometry.
    # Dynamic images cost nothing to create at any size; qemu sizes them the same way.
    sizes = (21 * MIB, 100 * MIB + 4096, 3 * 1024 * MIB, 40 * 1024 * MIB, 100 * 1024 * MIB)
    for size in sizes:
        vhd = tmp_path / f"chs-{size}.vhd"
        run_qemu_img("create", "-q", "-f", "vpc", "-o", "subformat=dynamic", str(vhd), str(size))
        footer = parse_footer(vhd.read_bytes()[-512:])
        assert footer.creator_application == b"qemu"
        assert chs_geometry(footer.current_size) == footer.geometry, size
        assert footer.geometry.capacity == footer.current_size
    fixed = parse_footer(qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=False).read_bytes()[-512:])
    assert chs_geometry(fixed.current_size) == fixed.geometry


def test_qemu_footer_parses_and_round_trips(tmp_path: Path) -> None:
    data = qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=True).read_bytes()[-512:]
    footer = parse_footer(data)
    assert footer.to_bytes() == data
    assert footer.checksum_ok
    assert footer.creator_application == b"qem2"  # qemu marks force_size images "qem2"
    assert footer.current_size == 21 * MIB
    assert footer.disk_type_name == "fixed"
    assert footer.to_json()["checksumValid"] is True


def test_dynamic_footer_points_at_its_header() -> None:
    footer = build_footer(30 * MIB, disk_type=DiskType.DYNAMIC)
    assert footer.data_offset == 512
    assert footer.disk_type_name == "dynamic"
    assert footer.checksum_ok
