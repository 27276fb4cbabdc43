"""Address-space bookkeeping: what each guest mapped, checked against mem=.

Anonymous memory is the host's (host page tables are the guest's), so the
kernel does not hold pages; it validates every mapping request, keeps a list
of ranges per address space and charges private writable memory to the
machine's `mem=` budget, refusing with ENOMEM beyond it.  The stub page is
out of the guest's reach.
"""
from __future__ import annotations

import bisect

from arch_um.memory import TASK_SIZE
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError



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
        self.shared_files: list[tuple[int, int, object]] = []   # writable MAP_SHARED of files
        self.users = 1          # processes on this address space (CLONE_VM)

    def map_shared_file(self, start: int, end: int, inode) -> None:
        self.shared_files.append((start, end, inode))

    def write_back(self, start: int = 0, end: int = TASK_SIZE, durable: bool = False) -> None:
        """The guest may have written files through shared mappings in
        [start, end): their filesystems write the pages back (msync,
        munmap, exit), as Linux's writeback of dirty shared pages."""
        done = set()
        for s, e, inode in self.shared_files:
            if s < end and e > start and id(inode.fs) not in done:
                done.add(id(inode.fs))
                inode.fs.sync(durable)

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
        if self.shared_files:
            self.shared_files = [piece for s, e, ino in self.shared_files
                                 for piece in ((s, min(e, start), ino), (max(s, end), e, ino))
                                 if piece[0] < piece[1]]

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
        n.shared_files = list(self.shared_files)
        return n

    def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self.write_back()
        self.shared_files.clear()
        self.budget.uncharge(self.charged)
        self.charged = 0
        self.starts.clear()
        self.ranges.clear()
        if self.mem is not None:
            self.mem.close()
            self.mem = None
