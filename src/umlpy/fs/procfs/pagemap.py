"""/proc/PID/pagemap: one 64-bit entry per virtual page, in Linux's format.

The guest's pages are its host process's, so the host's pagemap of that
process tells what Linux would: bit 63 present, 61 a file page or shared
anonymous memory, 56 mapped by this process only, 55 soft-dirty.  What the
guest's kernel cannot honestly say is left out:

- the page frame number (bits 0-54) is always 0, as Linux shows it to a
  reader without CAP_SYS_ADMIN: the frames are the host's, and a guest has
  no physical memory of its own to number;
- the guest has no swap: a page the host swapped out is still the guest's,
  so it reads as present (bit 62 is never set);
- the stub page, which is not the guest's, reads as not mapped;
- bits the guest kernel has no feature for (uffd write-protect, the host's
  guard regions) are cleared.
"""
from __future__ import annotations

import struct

from arch_um import procinfo
from arch_um.memory import TASK_SIZE
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import VNode
from umlpy.fs.procfs.pidmem import AddressedFile
from umlpy.fs.procfs.target import Target, live
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import File

PM_ENTRY_BYTES = 8
PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_FILE = 1 << 61
PM_MMAP_EXCLUSIVE = 1 << 56
PM_SOFT_DIRTY = 1 << 55
_KEPT = PM_FILE | PM_MMAP_EXCLUSIVE | PM_SOFT_DIRTY
TASK_PAGES = TASK_SIZE // C.PAGE_SIZE
MAX_READ_ENTRIES = 1 << 19      # one read(2) returns at most this many (4 MiB)


def entries(proc, first: int, count: int) -> bytes:
    """The guest's pagemap entries of pages [first, first + count), which
    must lie below TASK_SIZE, as the file holds them.  Most of an address
    space is not mapped: a run of empty entries is passed on as it is."""
    raw = procinfo.task_pagemap(proc.threads[0].hpid, first, count) if live(proc) else None
    if raw is None or len(raw) != PM_ENTRY_BYTES * count:
        return bytes(PM_ENTRY_BYTES * count)
    lo, hi = max(first, STUB_BASE // C.PAGE_SIZE), min(first + count, STUB_END // C.PAGE_SIZE)
    if hi > lo:
        raw = raw[:(lo - first) * PM_ENTRY_BYTES] + bytes((hi - lo) * PM_ENTRY_BYTES) \
            + raw[(hi - first) * PM_ENTRY_BYTES:]
    if not any(raw):
        return raw
    return struct.pack(f"<{count}Q", *[(PM_PRESENT | (e & _KEPT)) if e & (PM_PRESENT | PM_SWAP) else 0
                                       for e in struct.unpack(f"<{count}Q", raw)])


def present_pages(proc, start: int, end: int) -> int:
    """How many pages of [start, end) are present."""
    count = (end - start) // C.PAGE_SIZE
    raw = entries(proc, start // C.PAGE_SIZE, count)
    return sum(1 for e in struct.unpack(f"<{count}Q", raw) if e)


class PagemapFile(AddressedFile):
    """An open pagemap: reads at any 8-byte aligned offset, as many whole
    entries as asked for (up to the end of user space); seeks anywhere."""

    def pread(self, task, n: int, off: int) -> bytes:
        if off % PM_ENTRY_BYTES or n % PM_ENTRY_BYTES:
            raise KernelError(E.EINVAL)
        first = off // PM_ENTRY_BYTES
        count = min(n // PM_ENTRY_BYTES, MAX_READ_ENTRIES, max(0, TASK_PAGES - first))
        if count <= 0 or self.proc.exited:
            return b""
        return entries(self.proc, first, count)

    def pwrite(self, task, data: bytes, off: int) -> int:
        raise KernelError(E.EINVAL)     # nothing to write


class PagemapInode(VNode):
    def __init__(self, fs, key: tuple, tg: Target) -> None:
        super().__init__(fs, key, C.S_IFREG | 0o400, tg.owner, tg.alive)
        self.tg = tg

    def open_file(self, dentry, flags: int, task) -> File:
        """Opening asks what reading /proc/PID/mem does (proc_mem_open:
        PTRACE_MODE_READ); there is nothing to write (EINVAL)."""
        self.check_alive()
        self.tg.check_access(task)
        return PagemapFile(dentry, self, flags, self.tg)
