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


_digests: dict[tuple[int, ...], tuple[int, int]] = {}


def digest(directory: str, name: str) -> tuple[int, int]:
    """(size, CRC-32C) of a file of the image (read through a mapping: no copy).

    Remembered by the file's identity and change time, which any write
    moves on: a migration's target digests the image it made as it writes
    the manifest, and its restore, in the same process, need not read
    tens of MiB again in the downtime."""
    with open(_in(directory, name), "rb") as f:
        st = os.fstat(f.fileno())
        key = _key(st)
        if key in _digests:
            return _digests[key]
        size = st.st_size
        if size == 0:
            return 0, 0
        with mmap.mmap(f.fileno(), size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ) as m:
            _digests[key] = size, crc32c.crc32c(m)
        return _digests[key]


def remember(fd: int, crc: int) -> None:
    """The CRC-32C of the file open at fd, summed by the caller as it
    wrote it (a migration's staging blob, by its pieces): digest() then
    answers without reading the file, until the file changes."""
    st = os.fstat(fd)
    _digests[_key(st)] = st.st_size, crc


def _key(st: os.stat_result) -> tuple[int, ...]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class Blob:
    """A file of the image read at offsets, through a mapping of it (the
    restore copies memory from it straight into the guest's)."""

    def __init__(self, directory: str, name: str, populate: bool = True) -> None:
        with open(_in(directory, name), "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            # populated at once where the restore reads it all: one fault per
            # page of a big machine's memory costs more than the copy
            flags = mmap.MAP_SHARED | (mmap.MAP_POPULATE if populate else 0)
            self._map = mmap.mmap(f.fileno(), self.size, flags=flags, prot=mmap.PROT_READ) if self.size else None

    def read_at(self, off: int, n: int) -> memoryview:
        """n bytes at off (fewer at the end); valid until close."""
        if self._map is None:
            return memoryview(b"")
        return memoryview(self._map)[off:off + n]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
