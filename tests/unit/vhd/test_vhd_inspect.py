"""VHD preflight on real files: qemu-img output and our own writer, good and broken."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.vhdgen import (
    bad_checksum_footer,
    dynamic_vhd_bytes,
    write_dynamic_vhd,
    write_fixed_vhd,
    write_vhd_file,
)
from shared.core.errors import ValidationFailed
from shared.vhd.footer import (
    GIB,
    MIB,
    TIB,
    DiskType,
    build_fixed_footer,
    build_footer,
    parse_footer,
)
from shared.vhd.preflight import DetectedFormat, VhdReport, ensure_valid_vhd, inspect_vhd
from shared.vhd.readers import BytesRangeReader, FileRangeReader
from tests.vhd_fixtures import (
    TailOnlyReader,
    make_raw,
    qemu_convert,
    qemu_dynamic_vhd,
    qemu_fixed_vhd,
    run_qemu_img,
)


def inspect_file(path: Path) -> tuple[VhdReport, FileRangeReader]:
    reader = FileRangeReader(path)
    return inspect_vhd(reader), reader


def rules(report: VhdReport) -> list[str]:
    return [problem.rule for problem in report.problems]


# ---------------------------------------------------------------- accepted


def test_qemu_fixed_with_force_size_is_accepted_with_one_small_read(tmp_path: Path) -> None:
    vhd = qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=True)
    report, reader = inspect_file(vhd)
    assert report.ok, report.problems
    assert report.detected_format is DetectedFormat.VHD_FIXED
    assert report.virtual_size == 21 * MIB == vhd.stat().st_size - 512
    assert (reader.reads, reader.bytes_read) == (1, 512)


def test_our_sparse_64_gib_vhd_is_accepted_and_not_written_out(tmp_path: Path) -> None:
    vhd = write_fixed_vhd(tmp_path / "big.vhd", 64 * GIB, content=b"boot" * 128)
    assert vhd.stat().st_size == 64 * GIB + 512
    assert vhd.stat().st_blocks * 512 < 1 * MIB  # sparse: only the written pages exist
    report, reader = inspect_file(vhd)
    assert report.ok, report.problems
    assert report.virtual_size == 64 * GIB
    assert reader.bytes_read == 512


def test_our_writer_produces_what_qemu_reads(tmp_path: Path) -> None:
    content = os.urandom(4096)
    ours = write_fixed_vhd(tmp_path / "ours.vhd", 21 * MIB, content=content)
    raw = make_raw(tmp_path / "same.raw", 21 * MIB, content=content)
    # qemu sizes non-qemu VHDs by CHS geometry unless told to trust the footer's current size.
    image = f"driver=vpc,force_size_calc=current_size,file.filename={ours}"
    run_qemu_img("compare", "--image-opts", image, f"driver=raw,file.filename={raw}")
    info = run_qemu_img("info", "--output=json", "--image-opts", image)
    assert '"virtual-size": 22020096' in info
    assert '"format": "vpc"' in info


def test_ensure_valid_vhd_returns_the_report(tmp_path: Path) -> None:
    report = ensure_valid_vhd(FileRangeReader(write_fixed_vhd(tmp_path / "ok.vhd", 30 * MIB)))
    assert report.ok
    assert report.footer is not None
    assert report.footer.current_size == 30 * MIB


def test_size_limits_are_inclusive() -> None:
    for size in (20 * MIB, 32 * TIB):
        report = inspect_vhd(TailOnlyReader(size + 512, build_fixed_footer(size)))
        assert report.ok, (size, report.problems)


# ---------------------------------------------------------------- rejected


def test_qemu_fixed_without_force_size_is_rejected_for_alignment(tmp_path: Path) -> None:
    vhd = qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=False)
    data_size = vhd.stat().st_size - 512
    over = data_size % MIB
    assert over  # qemu rounded 21 MiB up to a CHS geometry
    report, _ = inspect_file(vhd)
    assert rules(report) == ["mib-aligned-size"]
    problem = report.problems[0]
    assert problem.path == "vhd.fileSize"
    assert f"{over} bytes over {data_size // MIB} MiB" in problem.message
    assert f"{MIB - over} bytes short of {data_size // MIB + 1} MiB" in problem.message
    assert "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size" in problem.hint
    assert f"qemu-img resize -f raw disk.raw {data_size // MIB + 1}M" in problem.hint


def test_qemu_dynamic_vhd_is_rejected(tmp_path: Path) -> None:
    report, reader = inspect_file(qemu_dynamic_vhd(tmp_path, 21 * MIB))
    assert report.detected_format is DetectedFormat.VHD_DYNAMIC
    # qemu rounds the dynamic disk to its CHS geometry too, so alignment is reported as well.
    assert rules(report)[0] == "fixed-disk-type"
    assert "dynamic" in report.problems[0].message
    assert "subformat=fixed,force_size" in report.problems[0].hint
    assert reader.reads == 1


def test_our_dynamic_vhd_is_a_real_dynamic_vhd(tmp_path: Path) -> None:
    vhd = write_dynamic_vhd(tmp_path / "dyn.vhd", 40 * MIB)
    image = f"driver=vpc,force_size_calc=current_size,file.filename={vhd}"
    assert '"virtual-size": 41943040' in run_qemu_img(
        "info", "--output=json", "--image-opts", image
    )
    report, _ = inspect_file(vhd)
    assert rules(report) == ["fixed-disk-type"]
    assert report.virtual_size == 40 * MIB


def test_differencing_vhd_is_rejected() -> None:
    footer = build_footer(30 * MIB, disk_type=DiskType.DIFFERENCING).to_bytes()
    report = inspect_vhd(BytesRangeReader(bytes(1536) + footer))
    assert rules(report) == ["fixed-disk-type"]
    assert "differencing" in report.problems[0].message
    assert "parent" in report.problems[0].message


def test_raw_image_is_rejected_with_its_reason(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB, content=b"\x55" * 512)
    report, reader = inspect_file(raw)
    assert report.footer is None
    assert report.detected_format is DetectedFormat.RAW_OR_UNFINISHED
    assert rules(report) == ["vhd-footer-present"]
    assert "raw disk image" in report.problems[0].message
    assert "unfinished" in report.problems[0].message
    assert "subformat=fixed,force_size" in report.problems[0].hint
    assert (reader.reads, reader.bytes_read) == (2, 1024)


def test_raw_image_with_data_at_the_end(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB)
    with raw.open("r+b") as handle:
        handle.seek(21 * MIB - 512)
        handle.write(b"\xaa" * 512)
    report, _ = inspect_file(raw)
    assert report.detected_format is DetectedFormat.RAW_OR_TRUNCATED
    assert "raw disk image" in report.problems[0].message


def test_truncated_fixed_vhd_is_rejected(tmp_path: Path) -> None:
    vhd = qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=True)
    os.truncate(vhd, vhd.stat().st_size - 1000)
    report, _ = inspect_file(vhd)
    assert rules(report) == ["vhd-footer-present"]
    assert "truncated" in report.problems[0].message
    assert f"{(21 * MIB + 512 - 1000) % 512} bytes over" in report.problems[0].message


def test_truncated_dynamic_vhd_is_recognised_by_its_footer_copy(tmp_path: Path) -> None:
    vhd = qemu_dynamic_vhd(tmp_path, 21 * MIB)
    os.truncate(vhd, vhd.stat().st_size - 512)
    report, reader = inspect_file(vhd)
    assert report.detected_format is DetectedFormat.VHD_TRUNCATED
    assert rules(report) == ["vhd-footer-present"]
    assert "truncated or the upload is unfinished" in report.problems[0].message
    assert "dynamic VHD" in report.problems[0].message
    assert reader.bytes_read == 1024


def test_corrupted_checksum_is_rejected(tmp_path: Path) -> None:
    vhd = write_fixed_vhd(tmp_path / "bad.vhd", 21 * MIB, footer=bad_checksum_footer(21 * MIB))
    report, _ = inspect_file(vhd)
    assert rules(report) == ["footer-checksum"]
    footer = report.footer
    assert footer is not None
    assert f"0x{footer.checksum:08x}" in report.problems[0].message
    assert f"0x{footer.computed_checksum():08x}" in report.problems[0].message


def test_flipped_byte_in_a_qemu_footer_is_a_checksum_failure(tmp_path: Path) -> None:
    vhd = qemu_fixed_vhd(tmp_path, 21 * MIB, force_size=True)
    with vhd.open("r+b") as handle:
        handle.seek(vhd.stat().st_size - 512 + 70)  # inside the unique id
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x10]))
    report, _ = inspect_file(vhd)
    assert rules(report) == ["footer-checksum"]


@pytest.mark.parametrize(
    ("output_format", "detected"),
    [("vhdx", DetectedFormat.VHDX), ("qcow2", DetectedFormat.QCOW2)],
)
def test_other_image_formats_are_named(
    tmp_path: Path, output_format: str, detected: DetectedFormat
) -> None:
    raw = make_raw(tmp_path / "disk.raw", 21 * MIB, content=b"\x01" * 4096)
    image = qemu_convert(raw, tmp_path / f"disk.{output_format}", output_format)
    report, _ = inspect_file(image)
    assert report.detected_format is detected
    assert rules(report) == ["vhd-format"]
    assert f"-f {output_format} -O vpc -o subformat=fixed,force_size" in report.problems[0].hint


def test_too_small_and_too_large() -> None:
    small = inspect_vhd(BytesRangeReader(bytes(16 * MIB) + build_fixed_footer(16 * MIB)))
    assert rules(small) == ["virtual-size-range"]
    assert "below Azure's minimum of 20 MiB" in small.problems[0].message
    big_size = 32 * TIB + MIB
    big = inspect_vhd(TailOnlyReader(big_size + 512, build_fixed_footer(big_size)))
    assert rules(big) == ["virtual-size-range"]
    assert "above Azure's maximum of 32 TiB" in big.problems[0].message


def test_footer_size_that_disagrees_with_the_file(tmp_path: Path) -> None:
    vhd = write_vhd_file(tmp_path / "odd.vhd", 22 * MIB, build_fixed_footer(21 * MIB))
    report, _ = inspect_file(vhd)
    assert rules(report) == ["size-matches-footer"]
    assert f"{MIB} bytes more disk data than the footer says" in report.problems[0].message


def test_every_problem_is_reported_at_once() -> None:
    size = 10 * MIB + 512
    footer = parse_footer(build_fixed_footer(size))
    broken = replace(footer, checksum=footer.checksum ^ 1).to_bytes()
    report = inspect_vhd(BytesRangeReader(bytes(size) + broken))
    assert rules(report) == ["footer-checksum", "mib-aligned-size", "virtual-size-range"]
    with pytest.raises(ValidationFailed) as caught:
        ensure_valid_vhd(BytesRangeReader(bytes(size) + broken), subject="VHD disk.vhd")
    assert [p.rule for p in caught.value.problems] == rules(report)
    assert "invalid VHD disk.vhd: 3 problems" in str(caught.value)


def test_empty_and_tiny_files() -> None:
    for data in (b"", b"QFI\xfb" + bytes(100)):
        report = inspect_vhd(BytesRangeReader(data))
        assert rules(report) == ["vhd-footer-present"]
        assert report.file_size == len(data)
    assert inspect_vhd(BytesRangeReader(b"QFI\xfb" + bytes(100))).detected_format == "qcow2"


def test_a_dynamic_vhd_uploaded_as_bytes_matches_the_file_check() -> None:
    data = dynamic_vhd_bytes(64 * MIB)
    report = inspect_vhd(BytesRangeReader(data))
    assert report.detected_format is DetectedFormat.VHD_DYNAMIC
    assert report.virtual_size == 64 * MIB
    assert report.file_size == len(data) < 64 * 1024


@given(st.integers(20, 32 * 1024 * 1024))
def test_any_whole_mib_size_in_range_is_accepted(size_mib: int) -> None:
    size = size_mib * MIB
    reader = TailOnlyReader(size + 512, build_fixed_footer(size))
    report = inspect_vhd(reader)
    assert report.ok, report.problems
    assert report.virtual_size == size
    assert reader.bytes_read == 512


@given(st.integers(20 * MIB, 32 * TIB).filter(lambda n: n % MIB != 0))
def test_any_misaligned_size_is_rejected_with_the_exact_excess(size: int) -> None:
    report = inspect_vhd(TailOnlyReader(size + 512, build_fixed_footer(size)))
    assert [p.rule for p in report.problems] == ["mib-aligned-size"]
    assert f"it is {size % MIB} bytes over {size // MIB} MiB" in report.problems[0].message
