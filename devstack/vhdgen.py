"""Our own VHD writer for the local stack: fixed VHDs (and broken ones) without writing gigabytes.

* :func:`write_fixed_vhd` makes a *sparse* local file: it writes the optional content at offset 0
  and the 512-byte footer at ``virtual_size``; the bytes between are holes, so a 64 GiB disk costs
  a few kilobytes.
* :func:`upload_fixed_vhd` creates a page blob of ``virtual_size + 512`` bytes and writes only the
  footer page (and the optional content): page blobs are sparse as well, on Azure and on Azurite.
* Variants for tests and demos: :func:`bad_checksum_footer`, :func:`dynamic_vhd_bytes` (a real,
  empty dynamic VHD that qemu-img reads), :func:`write_vhd_file` for any footer.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from shared.vhd.footer import (
    FOOTER_SIZE,
    DiskType,
    build_fixed_footer,
    build_footer,
    parse_footer,
)

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

logger = logging.getLogger(__name__)

#: Page blob writes are at most 4 MiB each.
_MAX_PAGE_WRITE = 4 * 1024 * 1024
_DYNAMIC_BLOCK_SIZE = 2 * 1024 * 1024
_DYNAMIC_HEADER_STRUCT = struct.Struct(">8sQQIIII16sII512s192s256s")


def _pad_to_sector(data: bytes) -> bytes:
    remainder = len(data) % 512
    return data if remainder == 0 else data + bytes(512 - remainder)


def write_vhd_file(
    path: str | os.PathLike[str], data_size: int, footer: bytes, *, content: bytes | None = None
) -> Path:
    """Write a sparse file: ``content`` at 0, holes up to ``data_size``, then ``footer``."""
    if content is not None and len(content) > data_size:
        raise ValueError(f"content ({len(content)} bytes) does not fit in {data_size} bytes")
    target = Path(path)
    with target.open("wb") as handle:
        if content:
            handle.write(content)
        handle.truncate(data_size)  # a hole, not zeros written to disk
        handle.seek(data_size)
        handle.write(footer)
    return target


def write_fixed_vhd(
    path: str | os.PathLike[str],
    virtual_size: int,
    *,
    content: bytes | None = None,
    footer: bytes | None = None,
) -> Path:
    """A sparse fixed VHD of ``virtual_size`` bytes; ``footer`` overrides the correct one."""
    return write_vhd_file(
        path, virtual_size, footer or build_fixed_footer(virtual_size), content=content
    )


def bad_checksum_footer(virtual_size: int) -> bytes:
    """A fixed-VHD footer whose checksum is off by one (everything else is right)."""
    footer = parse_footer(build_fixed_footer(virtual_size))
    return replace(footer, checksum=(footer.checksum + 1) & 0xFFFFFFFF).to_bytes()


def dynamic_footer(virtual_size: int) -> bytes:
    """A correct footer that says "dynamic" (disk type 3, dynamic header at offset 512)."""
    return build_footer(virtual_size, disk_type=DiskType.DYNAMIC).to_bytes()


def dynamic_vhd_bytes(virtual_size: int) -> bytes:
    """A complete, empty dynamic VHD: footer copy, ``cxsparse`` header, empty BAT, footer."""
    footer = dynamic_footer(virtual_size)
    entries = -(-virtual_size // _DYNAMIC_BLOCK_SIZE)
    table_offset = FOOTER_SIZE + 1024
    header_fields = [
        b"cxsparse",
        0xFFFFFFFFFFFFFFFF,  # next structure: none
        table_offset,
        0x00010000,  # header version
        entries,
        _DYNAMIC_BLOCK_SIZE,
        0,  # checksum, filled in below
        bytes(16),  # parent unique id
        0,  # parent timestamp
        0,  # reserved
        bytes(512),  # parent unicode name
        bytes(192),  # 8 parent locator entries of 24 bytes
        bytes(256),
    ]
    header = _DYNAMIC_HEADER_STRUCT.pack(*header_fields)
    header_fields[6] = ~sum(header) & 0xFFFFFFFF
    header = _DYNAMIC_HEADER_STRUCT.pack(*header_fields)
    bat = _pad_to_sector(b"\xff\xff\xff\xff" * entries)
    return footer + header + bat + footer


def write_dynamic_vhd(path: str | os.PathLike[str], virtual_size: int) -> Path:
    """An empty dynamic VHD file (a few KiB whatever ``virtual_size`` is)."""
    target = Path(path)
    target.write_bytes(dynamic_vhd_bytes(virtual_size))
    return target


def upload_pages(blob_client: BlobClient, offset: int, data: bytes, *, timeout: int = 30) -> None:
    """Write ``data`` (padded to 512 bytes) into a page blob at ``offset``, 4 MiB at a time."""
    data = _pad_to_sector(data)
    for start in range(0, len(data), _MAX_PAGE_WRITE):
        chunk = data[start : start + _MAX_PAGE_WRITE]
        blob_client.upload_page(chunk, offset=offset + start, length=len(chunk), timeout=timeout)


def upload_fixed_vhd(
    blob_client: BlobClient,
    virtual_size: int,
    *,
    content: bytes | None = None,
    footer: bytes | None = None,
    metadata: dict[str, str] | None = None,
    timeout: int = 30,
) -> int:
    """Create a page blob holding a fixed VHD of ``virtual_size`` bytes; returns the blob size.

    Only the footer page and ``content`` (at offset 0) are sent, so a 64 GiB disk uploads in
    milliseconds. ``footer`` overrides the correct footer (to upload broken VHDs). ``virtual_size``
    must be a multiple of 512 (a page blob is whole pages).
    """
    if virtual_size % 512:
        raise ValueError(f"a page blob is whole 512-byte pages; {virtual_size} is not")
    if content is not None and len(content) > virtual_size:
        raise ValueError(f"content ({len(content)} bytes) does not fit in {virtual_size} bytes")
    blob_size = virtual_size + FOOTER_SIZE
    blob_client.create_page_blob(size=blob_size, metadata=metadata, timeout=timeout)
    if content:
        upload_pages(blob_client, 0, content, timeout=timeout)
    upload_pages(
        blob_client, virtual_size, footer or build_fixed_footer(virtual_size), timeout=timeout
    )
    logger.info("uploaded a fixed VHD page blob of %d bytes", blob_size)
    return blob_size


def upload_page_blob(blob_client: BlobClient, data: bytes, *, timeout: int = 30) -> int:
    """Upload ``data`` (e.g. :func:`dynamic_vhd_bytes`) as a page blob; returns the blob size."""
    data = _pad_to_sector(data)
    blob_client.create_page_blob(size=len(data), timeout=timeout)
    upload_pages(blob_client, 0, data, timeout=timeout)
    return len(data)


def upload_block_blob(blob_client: BlobClient, data: bytes, *, timeout: int = 30) -> int:
    """Upload ``data`` as a block blob (the wrong blob type for a VHD); returns its size."""
    blob_client.upload_blob(data, blob_type="BlockBlob", overwrite=True, timeout=timeout)
    return len(data)
