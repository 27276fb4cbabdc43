"""Address-space bookkeeping: what each guest mapped, checked against mem=.

Anonymous memory is the host's (host page tables are the guest's), so the
kernel does not hold pages; it validates every mapping request, keeps a list
of ranges per address space and charges private writable memory to the
machine's `mem=` budget, refusing with ENOMEM beyond it.  The stub page is
out of the guest's reach.

What the host's page tables cannot say is kept here too, per range: which
file (or segment) a mapping shows and whether it may become writable
(`files`), and which ranges are mlocked (`locked`).  Locking is bookkeeping
only: the guest's pages are the host's, never locked on the host, but
locked_vm, its limit and what /proc shows are Linux's.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from arch_um.memory import TASK_SIZE
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import errno as E
from umlpy.abi.consts import PAGE_SIZE
from umlpy.kernel.errors import KernelError

VM_LOCKED = 0x2000
VM_LOCKONFAULT = 0x80000


class Intervals:
    """Disjoint [start, end) ranges of an address space, sorted, each with a
    value that means the same for every address it covers (so a cut piece
    keeps it as it is).  Setting or clearing a range cuts the ranges it
    overlaps, as Linux splits vmas; equal neighbours merge, as vmas do."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[int, int, object]] | None = None) -> None:
        self.items: list[tuple[int, int, object]] = list(items or ())

    def _bounds(self, start: int, end: int) -> tuple[int, int]:
        items = self.items
        i = bisect.bisect_left(items, (start,))
        if i and items[i - 1][1] > start:
            i -= 1
        return i, bisect.bisect_left(items, (end,), i)

    def overlapping(self, start: int, end: int) -> list[tuple[int, int, object]]:
        """The pieces inside [start, end), cut to it."""
        i, j = self._bounds(start, end)
        return [(max(s, start), min(e, end), v) for s, e, v in self.items[i:j]]

    def at(self, addr: int):
        """The value covering addr, or None."""
        got = self.overlapping(addr, addr + 1)
        return got[0][2] if got else None

    def clear(self, start: int, end: int) -> list[tuple[int, int, object]]:
        """Forget [start, end); returns what was there."""
        i, j = self._bounds(start, end)
        cut = self.items[i:j]
        keep = []
        for s, e, v in cut:
            if s < start:
                keep.append((s, start, v))
            if e > end:
                keep.append((end, e, v))
        self.items[i:j] = keep
        return [(max(s, start), min(e, end), v) for s, e, v in cut]

    def set(self, start: int, end: int, value) -> None:
        if start >= end:
            return
        self.clear(start, end)
        items = self.items
        i = bisect.bisect_left(items, (start,))
        if i < len(items) and items[i][0] == end and items[i][2] == value:
            end = items.pop(i)[1]
        if i and items[i - 1][1] == start and items[i - 1][2] == value:
            i -= 1
            start = items.pop(i)[0]
        items.insert(i, (start, end, value))

    def size(self, start: int = 0, end: int = TASK_SIZE) -> int:
        return sum(e - s for s, e, _ in self.overlapping(start, end))

    def copy(self) -> Intervals:
        return Intervals(self.items)


@dataclass(frozen=True)
class FileMap:
    """What a file mapping shows: `obj` (a guest inode, or an object with
    a `memfile()`, as a SysV segment) at file offset addr - origin, and
    Linux's VM_SHARED and VM_MAYWRITE (a shared mapping of a file not open
    for writing can never be made writable)."""
    obj: object
    origin: int
    shared: bool
    maywrite: bool

    def moved(self, delta: int) -> FileMap:
        return FileMap(self.obj, self.origin + delta, self.shared, self.maywrite)


class MemBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, n: int) -> None:
        if self.used + n > self.limit:
            raise KernelError(E.ENOMEM)
        self.used += n

    def uncharge(self, n: int) -> None:
        self.used -= n


class Mm:
    def __init__(self, budget: MemBudget) -> None:
        self.budget = budget
        self.starts: list[int] = []
        self.ranges: list[tuple[int, int, bool]] = []   # (start, end, charged)
        self.brk_start = 0
        self.brk = 0
        self.charged = 0
        self.mem = None        # arch_um GuestMemory of the host process
        self.start_stack = 0
        self.arg_range = (0, 0)
        self.env_range = (0, 0)
        self.files = Intervals()        # FileMap of each file (and segment) mapping
        self.locked = Intervals()       # VM_LOCKED | VM_LOCKONFAULT of the mlocked ranges
        self.def_locked = 0             # mlockall(MCL_FUTURE): what new mappings get
        self.users = 1          # processes on this address space (CLONE_VM)

    @property
    def locked_pages(self) -> int:
        """locked_vm: the pages of the locked ranges."""
        return self.locked.size() // PAGE_SIZE

    def write_back(self, start: int = 0, end: int = TASK_SIZE, durable: bool = False) -> None:
        """The guest may have written files through shared mappings in
        [start, end): their filesystems write the pages back (msync,
        munmap, exit), as Linux's writeback of dirty shared pages."""
        done = set()
        for _s, _e, fm in self.files.overlapping(start, end):
            fs = getattr(fm.obj, "fs", None)
            if fm.shared and fm.maywrite and fs is not None and id(fs) not in done:
                done.add(id(fs))
                fs.sync(durable)

    @staticmethod
    def check_range(start: int, length: int) -> None:
        end = start + length
        if start < 0 or end > TASK_SIZE or end < start:
            raise KernelError(E.ENOMEM)
        if start < STUB_END and end > STUB_BASE:
            raise KernelError(E.EINVAL)

    def add(self, start: int, end: int, charged: bool) -> None:
        self.remove(start, end)
        if charged:
            self.budget.charge(end - start)
            self.charged += end - start
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ranges.insert(i, (start, end, charged))

    def remove(self, start: int, end: int) -> None:
        i = max(0, bisect.bisect_right(self.starts, start) - 1)
        keep: list[tuple[int, int, bool]] = []
        j = i
        while j < len(self.ranges) and self.ranges[j][0] < end:
            s, e, c = self.ranges[j]
            if e <= start:
                keep.append((s, e, c))
                j += 1
                continue
            cut = min(e, end) - max(s, start)
            if c:
                self.budget.uncharge(cut)
                self.charged -= cut
            if s < start:
                keep.append((s, start, c))
            if e > end:
                keep.append((end, e, c))
            j += 1
        self.ranges[i:j] = keep
        self.starts[i:j] = [r[0] for r in keep]
        self.files.clear(start, end)
        self.locked.clear(start, end)

    def share(self) -> Mm:
        """Another process on this address space (CLONE_VM): it stays until
        the last of them execs or exits."""
        self.users += 1
        return self

    def fork(self) -> Mm:
        n = Mm(self.budget)
        n.budget.charge(self.charged)
        n.charged = self.charged
        n.starts = list(self.starts)
        n.ranges = list(self.ranges)
        n.brk_start, n.brk = self.brk_start, self.brk
        n.start_stack = self.start_stack
        n.arg_range, n.env_range = self.arg_range, self.env_range
        n.files = self.files.copy()     # locks are not inherited (VM_LOCKED is cleared)
        return n

    def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self.write_back()
        self.files = Intervals()
        self.locked = Intervals()
        self.budget.uncharge(self.charged)
        self.charged = 0
        self.starts.clear()
        self.ranges.clear()
        if self.mem is not None:
            self.mem.close()
            self.mem = None
