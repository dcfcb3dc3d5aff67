"""Random access to a file or blob, as the VHD preflight needs it: a few small ranged reads.

:class:`RangeReader` is the port (the blob reader is
:class:`shared.adapters.blob_range_reader.BlobRangeReader`); :class:`FileRangeReader` reads a
local file and :class:`BytesRangeReader` bytes in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable


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
