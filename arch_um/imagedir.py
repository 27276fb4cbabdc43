"""The host directory a checkpoint image lives in (umlpy/checkpoint/):
its files made, written durably, digested and read back.  Names are
plain file names inside the directory, never paths."""
from __future__ import annotations

import mmap
import os

import crc32c


def _in(directory: str, name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad file name {name!r}")
    return os.path.join(directory, name)


def make(directory: str, clear: tuple[str, ...]) -> str:
    """Create directory (its absolute path is returned), and remove the
    files named in clear from an earlier image there."""
    os.makedirs(directory, exist_ok=True)
    for name in clear:
        try:
            os.unlink(_in(directory, name))
        except FileNotFoundError:
            pass
    return os.path.abspath(directory)


def create(directory: str, name: str):
    """A new file of the image, open for writing (a binary file object)."""
    return open(_in(directory, name), "wb")


def write_durably(directory: str, name: str, data: bytes) -> None:
    with open(_in(directory, name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read(directory: str, name: str, limit: int) -> bytes:
    """Up to limit + 1 bytes of the file (so a caller sees it is too long)."""
    with open(_in(directory, name), "rb") as f:
        return f.read(limit + 1)


def digest(directory: str, name: str) -> tuple[int, int]:
    """(size, CRC-32C) of a file of the image (read through a mapping: no copy)."""
    with open(_in(directory, name), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return 0, 0
        with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
            return size, crc32c.crc32c(m)


class Blob:
    """A file of the image read at offsets, through a mapping of it (the
    restore copies memory from it straight into the guest's)."""

    def __init__(self, directory: str, name: str) -> None:
        with open(_in(directory, name), "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            self._map = mmap.mmap(f.fileno(), self.size, prot=mmap.PROT_READ) if self.size else None

    def read_at(self, off: int, n: int) -> memoryview:
        """n bytes at off (fewer at the end); valid until close."""
        if self._map is None:
            return memoryview(b"")
        return memoryview(self._map)[off:off + n]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
