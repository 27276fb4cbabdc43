"""Block devices: byte-addressed reads and writes of a fixed-size disk.

Filesystems see only this interface (never a host file): `read`, `write`,
`flush`.  Drivers implement it: a plain host image (`ImageDevice`), a UML
COW overlay (drivers/ubd.py).
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

SECTOR = 512


class BlockDevice:
    name = "block"
    major = 0
    minor = 0

    def __init__(self, size: int, read_only: bool) -> None:
        self.size = size
        self.read_only = read_only

    def read(self, off: int, n: int) -> bytes:
        raise NotImplementedError

    def write(self, off: int, data: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def check(self, off: int, n: int, write: bool) -> None:
        if write and self.read_only:
            raise KernelError(E.EROFS)
        if off < 0 or off + n > self.size:
            raise KernelError(E.EIO)


class ImageDevice(BlockDevice):
    """A whole host file as a disk (arch_um.hostfile.HostFile underneath)."""

    def __init__(self, host, read_only: bool) -> None:
        size = (host.size() + SECTOR - 1) // SECTOR * SECTOR
        super().__init__(size, read_only)
        self.host = host

    def read(self, off: int, n: int) -> bytes:
        self.check(off, n, False)
        data = self.host.pread(n, off)
        return data if len(data) == n else data + bytes(n - len(data))

    def write(self, off: int, data: bytes) -> None:
        self.check(off, len(data), True)
        self.host.pwrite(data, off)

    def flush(self) -> None:
        if not self.read_only:
            self.host.fsync()
