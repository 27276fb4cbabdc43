"""The disk filesystems' page cache, kept within a budget.

An ext2/ext4 file's page cache is a host memory file holding the whole
file: mmap maps it, reads copy from it, writes keep it coherent.  Linux's
page cache takes the RAM that is free and gives it back under pressure;
here it is host memory beside the guest's own, which nothing gave back:
reading or writing a file of N bytes kept N bytes of the host's memory
until the kernel ended (or vm.drop_caches), so a guest walking a big disk
could take the host's memory whatever its mem= said.

So the caches together stay within a budget (half the machine's RAM,
set at boot): past it the least recently used files' caches go, as
drop_caches lets them go (written back first; never one a process maps,
nor ext4's delayed data, whose only copy it is), until an eighth of the
budget is free again.  A file bigger than the whole budget gets no cache
for its reads and writes, which go through the buffer cache (bounded
itself); mmap still fills one, as it must have one.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable


class PageCache:
    def __init__(self) -> None:
        self.budget = 1 << 62           # bytes; set at boot from mem=
        self.total = 0                  # bytes of the files whose caches are held
        # id(inode) -> (inode, bytes charged), least recently used first
        self._lru: OrderedDict[int, tuple[object, int]] = OrderedDict()
        # the ids of the objects some address space maps (set at boot)
        self.mapped_ids: Callable[[], set[int]] = set

    def may_cache(self, size: int) -> bool:
        """Whether a file of this size may have a cache made for it."""
        return size <= self.budget

    def used(self, inode, size: int) -> None:
        """inode's cache was made, read or written, and holds size bytes."""
        key = id(inode)
        old = self._lru.pop(key, None)
        self._lru[key] = (inode, size)
        self.total += size - (old[1] if old is not None else 0)
        if self.total > self.budget:
            self.shrink(keep=key)

    def forget(self, inode) -> None:
        """inode's cache is gone (dropped, freed, unmounted)."""
        old = self._lru.pop(id(inode), None)
        if old is not None:
            self.total -= old[1]

    def shrink(self, keep: int | None = None) -> None:
        """Let the least recently used caches go until an eighth of the
        budget is free, skipping keep (the one in use now) and those that
        must stay (mapped, or holding ext4's delayed data)."""
        goal = self.budget - self.budget // 8
        mapped = self.mapped_ids()
        for key, (inode, _size) in list(self._lru.items()):
            if self.total <= goal:
                break
            if key == keep or key in mapped:
                continue
            inode.drop_page_cache()     # forgets it here, if it could go


cache = PageCache()
