"""Shmem: the pages that tmpfs files, memfds and SysV segments hold in the
kernel's host memfds, counted machine-wide as Linux's NR_SHMEM.

Those pages are host memory that no guest process need map: a memfd filled
with write(2), a segment detached after use, a file on /dev/shm.  Linux
keeps them in its RAM, so they take from what the guest has; here they
were host memory beside `mem=` that nothing bounded (a guest of mem=256M,
as an unprivileged user, held 1.5 GB of the host's in one memfd).  So:
- a write or fallocate that would take shmem past the machine's RAM fails
  with ENOMEM (shmem_get_folio's allocation failing), after any size= of
  the mount (ENOSPC), as Linux checks them;
- what holders no address space maps hold counts in the guest's memory
  use (kernel/oom.usage: the OOM killer, MemFree, Shmem); mapped pages
  are already the processes' own (smaps' Pss_Shmem);
- pages a mapping filled (a fault, which the kernel does not see) are
  counted when the mapping goes (munmap, exit, exec) or at the file's next
  write, truncate or fallocate.

The initramfs is the one exception: what its unpacking takes is counted
beside RAM, not in it (`base`), where Linux would hold it in RAM; a test
initramfs of static programs can be as big as a small machine's memory,
and the host's operator chose it.  So the bound is RAM plus the initrd.

A holder has `shmem_bytes` (its pages as last counted) and `settle_shmem()`
(count them again from the host).
"""
from __future__ import annotations

import weakref
from typing import Callable, TypeVar

from umlpy.kernel import printk

T = TypeVar("T")


class ShmemPool:
    def __init__(self, limit: int) -> None:
        self.limit = limit          # the machine's RAM (MemTotal)
        self.bytes = 0              # what every holder holds, as last counted
        self.base = 0               # what the initramfs's files still hold of what they took at boot
        self.exempt: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # holder -> its part of base
        self.holders: weakref.WeakSet = weakref.WeakSet()

    def unpack(self, fill: Callable[[], T]) -> T:
        """Run fill (the initramfs's unpacking) with what it takes set
        beside the limit."""
        self.base = 1 << 62
        try:
            return fill()
        finally:
            self.exempt.update((h, h.shmem_bytes) for h in self.holders)
            self.base = self.bytes

    def counted(self, holder, delta: int) -> None:
        """holder's pages changed by delta bytes (a holder that holds
        nothing more is forgotten)."""
        self.bytes += delta
        part = self.exempt.get(holder)
        if part is not None and holder.shmem_bytes < part:     # an initramfs file shrank, or went
            self.base -= part - holder.shmem_bytes
            self.exempt[holder] = holder.shmem_bytes
        if holder.shmem_bytes:
            self.holders.add(holder)
        else:
            self.holders.discard(holder)

    def in_ram(self) -> int:
        """What all holders hold that counts in RAM (mapped or not)."""
        return self.bytes - self.base

    def room(self, n: int) -> bool:
        """Whether n bytes of new pages fit in the machine's RAM."""
        return self.bytes + n <= self.limit + self.base

    def refuse(self) -> None:
        printk.pr_warn_ratelimited(f"shmem: out of memory: {self.in_ram() >> 10} kB of "
                                   f"{self.limit >> 10} kB held by tmpfs files, memfds and SysV segments")

    def unmapped(self, mapped: set[int]) -> int:
        """Bytes held by the holders whose ids are not in mapped (the
        initramfs's as unpacked left out)."""
        exempt = self.exempt
        return sum(h.shmem_bytes - exempt.get(h, 0) for h in list(self.holders) if id(h) not in mapped)
