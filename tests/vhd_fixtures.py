"""VHD fixtures made at test time: qemu-img (Debian qemu-utils, installed by `make setup`) and
our own writer (devstack/vhdgen.py). Nothing is checked in; every file lands in a pytest tmp dir."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.vhd.footer import MIB

QEMU_TIMEOUT_SECONDS = 30


def qemu_img() -> str:
    """Path of qemu-img; the Makefile installs it, so its absence is a setup failure."""
    path = shutil.which("qemu-img")
    if path is None:
        raise RuntimeError("qemu-img is missing: run `make setup` (installs Debian qemu-utils)")
    return path


def run_qemu_img(*args: str) -> str:
    result = subprocess.run(
        [qemu_img(), *args],
        capture_output=True,
        text=True,
        timeout=QEMU_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"qemu-img {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def make_raw(path: Path, size: int, *, content: bytes = b"") -> Path:
    """A sparse raw disk image of ``size`` bytes with ``content`` at offset 0."""
    with path.open("wb") as handle:
        handle.write(content)
        handle.truncate(size)
    return path


def qemu_convert(raw: Path, target: Path, output_format: str, options: str | None = None) -> Path:
    args = ["convert", "-f", "raw", "-O", output_format]
    if options:
        args += ["-o", options]
    run_qemu_img(*args, str(raw), str(target))
    return target


def qemu_fixed_vhd(directory: Path, size: int, *, force_size: bool, name: str = "") -> Path:
    """``qemu-img convert -O vpc -o subformat=fixed[,force_size]`` of a raw image of ``size``."""
    raw = make_raw(directory / f"{name or 'disk'}-{size}.raw", size, content=b"\xeb\x63\x90" * 100)
    options = "subformat=fixed,force_size" if force_size else "subformat=fixed"
    suffix = "force" if force_size else "chs"
    return qemu_convert(raw, directory / f"{name or 'disk'}-{size}-{suffix}.vhd", "vpc", options)


def qemu_dynamic_vhd(directory: Path, size: int = 21 * MIB) -> Path:
    raw = make_raw(directory / "dynamic-source.raw", size, content=b"\x01" * 4096)
    return qemu_convert(raw, directory / "dynamic.vhd", "vpc", "subformat=dynamic")


class TailOnlyReader:
    """A huge 'file' that is holes except for its last 512 bytes (beyond what ext4 allows)."""

    def __init__(self, size: int, tail: bytes) -> None:
        self._size, self._tail = size, tail
        self.bytes_read = 0
        self.reads = 0

    def size(self) -> int:
        return self._size

    def read_range(self, offset: int, length: int) -> bytes:
        self.reads += 1
        start = self._size - len(self._tail)
        data = bytes(
            self._tail[i - start] if i >= start else 0
            for i in range(offset, min(offset + length, self._size))
        )
        self.bytes_read += len(data)
        return data
