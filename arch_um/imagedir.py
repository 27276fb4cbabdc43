"""The host directory a checkpoint image lives in (umlpy/checkpoint/):
its files made, written durably, digested and read back.  Names are
plain file names inside the directory, never paths."""
from __future__ import annotations

import hashlib
import os


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


def digest(directory: str, name: str) -> tuple[int, str]:
    """(size, sha256 hex) of a file of the image."""
    h = hashlib.sha256()
    size = 0
    with open(_in(directory, name), "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            h.update(chunk)
    return size, h.hexdigest()


class Blob:
    """A file of the image read at offsets."""

    def __init__(self, directory: str, name: str) -> None:
        self.f = open(_in(directory, name), "rb")
        self.size = os.fstat(self.f.fileno()).st_size

    def read_at(self, off: int, n: int) -> bytes:
        return os.pread(self.f.fileno(), n, off)

    def close(self) -> None:
        self.f.close()
