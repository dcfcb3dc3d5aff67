"""Azure's size rules for a VHD's disk data, and the wording of the problems they find.

The disk data (file size - 512 for a fixed VHD) must be a whole number of MiB, at least 20 MiB
and at most 32 TiB; each problem says by how much it misses and how to resize the disk.
"""

from __future__ import annotations

from typing import Final

from shared.core.errors import Problem
from shared.vhd.footer import GIB, MIB, TIB

MIN_VIRTUAL_SIZE: Final = 20 * MIB
MAX_VIRTUAL_SIZE: Final = 32 * TIB

#: The conversion that produces what Azure accepts (force_size keeps the exact byte size instead
#: of rounding it to a CHS geometry).
QEMU_FIXED_CONVERT: Final = "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size"


def mib_text(size: int) -> str:
    whole, rest = divmod(size, MIB)
    return f"{whole} MiB" if rest == 0 else f"{size / MIB:.3f} MiB"


def size_text(size: int) -> str:
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit} ({size} bytes)"
    if size >= MIB:
        return f"{size / MIB:.3f} MiB ({size} bytes)"
    return f"{size} bytes"


def resize_recipe(target_size: int) -> str:
    target_mib = target_size // MIB
    return (
        "convert the disk to raw if needed (`qemu-img convert -O raw disk.vhd disk.raw`), "
        f"`qemu-img resize -f raw disk.raw {target_mib}M`, then "
        f"`{QEMU_FIXED_CONVERT} disk.raw disk.vhd`"
    )


def size_problems(data_size: int, path: str, rule_text: str) -> list[Problem]:
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
                    f"the virtual size {data_size} bytes ({mib_text(data_size)}) is not a whole "
                    f"number of MiB: it is {remainder} bytes over {floor_mib} MiB "
                    f"({short_by} bytes short of {floor_mib + 1} MiB); Azure needs {rule_text}"
                ),
                hint=resize_recipe((floor_mib + 1) * MIB)
                + " (force_size keeps the size exact instead of rounding it to a CHS geometry)",
            )
        )
    if data_size < MIN_VIRTUAL_SIZE:
        problems.append(
            Problem(
                path=path,
                rule="virtual-size-range",
                message=(
                    f"the virtual size {size_text(data_size)} is below Azure's minimum of 20 MiB"
                ),
                hint=resize_recipe(MIN_VIRTUAL_SIZE),
            )
        )
    elif data_size > MAX_VIRTUAL_SIZE:
        problems.append(
            Problem(
                path=path,
                rule="virtual-size-range",
                message=(
                    f"the virtual size {size_text(data_size)} is above Azure's maximum of 32 TiB"
                ),
                hint="shrink the file system and the disk below 32 TiB, or split the data disks",
            )
        )
    return problems
