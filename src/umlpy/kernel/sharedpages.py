"""Kernel memory a guest maps: pages both sides see.

Some kernel objects are shared with user space by mmap of their fd: packet
socket rings (net/packet_ring.py), io_uring's submission and completion
rings (io_uring/rings.py).  Their bytes live in one host memory file; the
guest maps it (sys_mmap asks the file's mmap_pages for it) and the kernel
reads and writes the same pages through the file.  Nothing the guest
wrote there is ever trusted: its users range-check every value they read
back before using it as an index, an offset or a length.

A file may show the same pages at more than one mmap offset (io_uring's
SQ and CQ rings are one allocation, at IORING_OFF_SQ_RING and
IORING_OFF_CQ_RING): `at(file_offset)` names the pages as seen from there,
so that mmap asks the host for the right place in the memory file.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from arch_um.hostfile import MemFile

_U32 = struct.Struct("<I")


class SharedPages:
    """size bytes of zeroed host memory, shown at mmap offset 0 of its file."""

    file_offset = 0     # the mmap offset of the file its first byte is at

    def __init__(self, name: str, size: int, maps_name: bytes | None = None) -> None:
        self.maps_name = maps_name      # what /proc/PID/maps calls a mapping of it (None: the host's)
        self.size = size
        self.mem = MemFile(name)
        self.mem.truncate(size)

    def memfile(self) -> MemFile:
        return self.mem

    def read(self, off: int, n: int) -> bytes:
        assert 0 <= off and off + n <= self.size
        return self.mem.pread(n, off)

    def write(self, off: int, data: bytes) -> None:
        assert 0 <= off and off + len(data) <= self.size
        self.mem.pwrite(data, off)

    def u32(self, off: int) -> int:
        return _U32.unpack(self.read(off, 4))[0]

    def put_u32(self, off: int, v: int) -> None:
        self.write(off, _U32.pack(v & 0xFFFFFFFF))

    def at(self, file_offset: int) -> PagesAt:
        return PagesAt(self, file_offset)


@dataclass(frozen=True)
class PagesAt:
    """The same pages, shown at another mmap offset of the file (what a
    mapping's FileMap names; it keeps the pages alive)."""
    pages: SharedPages
    file_offset: int

    @property
    def size(self) -> int:
        return self.pages.size

    def memfile(self) -> MemFile:
        return self.pages.memfile()
