"""Address-space bookkeeping: what each guest mapped, its commit accounting.

Anonymous memory is the host's (host page tables are the guest's), so the
kernel does not hold pages; it validates every mapping request, keeps a list
of ranges per address space and commits private writable memory to the
machine's `mem=` (Committed_AS), refusing with ENOMEM as
vm.overcommit_memory says (MemBudget).  The stub page is
out of the guest's reach.

An address space holds at most vm.max_map_count mappings (VMAs).  The host
keeps them, merging and splitting as Linux does, so the count is the host's
(less the stub's); reading it costs a pass over the host's maps, so the
kernel reads it only when a bound it keeps (the last count, plus what the
changes since could have added) comes near the limit.
What the host's page tables cannot say is kept here too, per range: which
file (or segment) a mapping shows and whether it may become writable
(`files`), and which ranges are mlocked (`locked`).  Locking is bookkeeping
only: the guest's pages are the host's, never locked on the host, but
locked_vm, its limit and what /proc shows are Linux's.
"""
from __future__ import annotations

import bisect
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from arch_um import procinfo
from arch_um.memory import TASK_SIZE
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_RAWIO
from umlpy.abi.consts import PAGE_SIZE
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.shmem import ShmemPool

# mappings a fresh image has before the loader's (stack, vDSO, vvar), over-counted
FRESH_VMAS = 16
VMAS_PER_CHANGE = 3     # the most one mmap, munmap, mprotect or mremap adds
MAP_MAP, MAP_SPLIT, MAP_HOLE, MAP_MOVE = 0, 1, 2, 3

VM_LOCKED = 0x2000
VM_LOCKONFAULT = 0x80000
# coredump_filter (Linux keeps it in mm->flags): which mappings a core
# holds; bits past these are ignored when written
DUMP_ANON_PRIVATE, DUMP_ANON_SHARED, DUMP_MAPPED_PRIVATE, DUMP_MAPPED_SHARED, DUMP_ELF_HEADERS, \
    DUMP_HUGETLB_PRIVATE, DUMP_HUGETLB_SHARED = (1 << i for i in range(7))
DUMP_FILTER_MASK = (1 << 9) - 1
DUMP_FILTER_DEFAULT = 0x33


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

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) no range covers."""
        out, at = [], start
        for s, e, _v in self.overlapping(start, end):
            if s > at:
                out.append((at, s))
            at = e
        if at < end:
            out.append((at, end))
        return out

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
    for writing can never be made writable); `dentry` is the name it was
    mapped by (vm_file's path: what a core's NT_FILE lists), None for a
    segment or /dev/zero."""
    obj: object
    origin: int
    shared: bool
    maywrite: bool
    dentry: object = None

    def moved(self, delta: int) -> FileMap:
        return FileMap(self.obj, self.origin + delta, self.shared, self.maywrite, self.dentry)


def _count_mapped(pieces, sign: int) -> None:
    """Tell the inodes among what pieces of mappings show (vfs Inode.mapped;
    a SysV segment or /dev/zero has no such count) that sign * their
    bytes more of address spaces map them."""
    for s, e, fm in pieces:
        mapped = getattr(fm.obj, "mapped", None)
        if mapped is not None:
            mapped(sign * (e - s))


@contextmanager
def kept_mapped(obj) -> Iterator[None]:
    """obj counts as mapped while a mapping of it moves (mremap): its
    unmapping from the old place would free an unlinked file midway."""
    mapped = getattr(obj, "mapped", None)
    if mapped is not None:
        mapped(1)
    try:
        yield
    finally:
        if mapped is not None:
            mapped(-1)


def settle_shmem(gone: list) -> None:
    """Mappings went: the shmem holders among what they showed (tmpfs
    files, SysV segments) count the pages their faults filled
    (kernel/shmem.py), once each."""
    seen: set[int] = set()
    for _s, _e, fm in gone:
        obj = fm.obj
        if id(obj) not in seen and hasattr(obj, "settle_shmem"):
            seen.add(id(obj))
            obj.settle_shmem()


def mapped_ids(procs) -> set[int]:
    """The ids of every object (inode, memory file) an address space maps."""
    ids: set[int] = set()
    seen: set[int] = set()
    for p in procs.by_pid.values():
        mm = p.mm
        if mm is None or id(mm) in seen:
            continue
        seen.add(id(mm))
        ids.update(id(fm.obj) for _s, _e, fm in mm.files.items)
    return ids


def mapped_anywhere(procs, obj, writable: bool = False) -> bool:
    """Does any address space map obj (a guest inode, or an object with a
    memfile()): with writable, shared with write access (VM_SHARED and
    VM_MAYWRITE, Linux's i_mmap_writable); else at all (a packet ring's
    po->mapped)."""
    seen = set()
    for p in procs.by_pid.values():
        mm = p.mm
        if mm is None or id(mm) in seen:
            continue
        seen.add(id(mm))
        if any(fm.obj is obj and (not writable or fm.shared and fm.maywrite)
               for _s, _e, fm in mm.files.items):
            return True
    return False


OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2
# vm.mmap_min_addr: the trap stub's page lies below it (arch_um/stub.py), so
# the guest's user range above it is whole
MMAP_MIN_ADDR = STUB_END
KERNEL_IMAGE = 10_957 << 10     # a 6.1 kernel's code, data, init and bss (UML's "Memory:" boot line)


def totalram(mem: int) -> int:
    """The RAM a kernel booted with mem= bytes gives the rest of the system
    (MemTotal, totalram_pages): less the kernel's own image and what is
    sized by memory (the page descriptors, hash tables), about 2 % (UML
    6.1 here: 2 044 340 kB of 2048M, 1 017 332 of 1024M, 8 207 856 of
    8192M).  A program that asks for all of mem= is refused as on Linux,
    not let in and then killed."""
    return max(mem // 2, mem - KERNEL_IMAGE - mem // 50) & ~(PAGE_SIZE - 1)


class MemBudget:
    """`mem=` as Linux's RAM, and the commit accounting of mm/util.c's
    __vm_enough_memory: `used` is Committed_AS (private writable memory
    mapped, touched or not); vm.overcommit_memory says when a new commitment
    is refused (0: one larger than RAM + swap; 1: never; 2: past
    CommitLimit).  What the guest really uses is the host's to say
    (kernel/oom.py), and past `mem=` the OOM killer acts, not this."""

    def __init__(self, limit: int) -> None:
        self.limit = limit              # MemTotal
        self.shmem = ShmemPool(limit)   # tmpfs, memfd and SysV pages (kernel/shmem.py)
        self.kmem = 0                   # kernel memory for guests' objects (Charge): Slab
        self.swap = 0                   # SwapTotal: umlpy has no swap
        self.used = 0                   # Committed_AS
        self.overcommit_memory = OVERCOMMIT_GUESS
        self.overcommit_ratio = 50      # percent of RAM mode 2 commits ...
        self.overcommit_kbytes = 0      # ... unless this is set (writing one zeroes the other)

    def commit_limit(self) -> int:
        """CommitLimit (vm_commit_limit), in bytes."""
        if self.overcommit_kbytes:
            allowed = self.overcommit_kbytes * 1024
        else:
            allowed = (self.limit // PAGE_SIZE) * max(0, self.overcommit_ratio) // 100 * PAGE_SIZE
        return allowed + self.swap

    def charge(self, n: int, single: bool = True) -> None:
        """Commit n bytes, or ENOMEM by the overcommit policy; single: one
        request (fork commits what was each checked before, mode 0 does
        not look at it again)."""
        mode = self.overcommit_memory
        if mode == OVERCOMMIT_GUESS and single and n > self.limit + self.swap:
            raise KernelError(E.ENOMEM)
        if mode == OVERCOMMIT_NEVER and self.used + n > self.commit_limit():
            raise KernelError(E.ENOMEM)
        self.used += n

    def uncharge(self, n: int) -> None:
        self.used -= n

    def kmem_charge(self, n: int) -> None:
        """n bytes of kernel memory for a guest's object: ENOMEM when they
        do not fit in RAM beside shmem, as Linux's allocation fails."""
        if self.kmem + n + self.shmem.in_ram() > self.limit:
            raise KernelError(E.ENOMEM)
        self.kmem += n


class Charge:
    """The kernel memory one guest object holds (a SysV queue's messages):
    charged to its machine as it grows, given back as it shrinks and, at
    the latest, when the object is collected (a namespace that went).

    The kernel's Python objects are host memory; those a guest can make
    without end are charged at what Linux's allocations for them take
    (kmalloc's sizes), so that they stop where Linux's would, at RAM."""

    __slots__ = ("budget", "n")

    def __init__(self, budget: MemBudget, owner: object) -> None:
        self.budget, self.n = budget, 0
        weakref.finalize(owner, self.drop)

    def add(self, n: int, force: bool = False) -> None:
        """ENOMEM past RAM, unless force: bytes held a moment ago given back
        (what a reader took and could not use)."""
        if force:
            self.budget.kmem += n
        else:
            self.budget.kmem_charge(n)
        self.n += n

    def sub(self, n: int) -> None:
        self.n -= n
        self.budget.kmem -= n

    def drop(self) -> None:
        self.budget.kmem -= self.n
        self.n = 0


_KMALLOC = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096)


def kmalloc_size(n: int) -> int:
    """What kmalloc(n) takes: its size class (a page multiple past 4 KiB)."""
    if n > 4096:
        return (n + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
    return _KMALLOC[bisect.bisect_left(_KMALLOC, n)]


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
        self.exe = None         # the program's inode (exe_file): not writable while here
        # the files exec opened (the program's and its interpreter's: exe_file
        # and their mappings' vm_file), let go with the address space: their
        # last put is the close event fsnotify reports
        self.held: list = []
        self.uffd = None        # userfaultfd's registrations and armed pages (kernel/userfaultfd.MmUffd)
        self.aio: dict = {}     # AIO contexts by ring address (syscalls/sys_aio.py): not inherited
        self.aio_next = 0       # the next context's id (ring->id)
        self.map_count = FRESH_VMAS     # VMAs at the last count (or a bound of them)
        self.map_changes = 0            # mapping changes since
        self.dump_filter = DUMP_FILTER_DEFAULT  # coredump_filter: fork and exec keep it (MMF_INIT_MASK)
        self.saved_auxv = b""           # the auxv exec gave (a core's NT_AUXV)
        self.layout_set: dict[str, int] = {}    # start/end of code and data as PR_SET_MM moved them

    def _host_vmas(self) -> list[tuple[int, int]]:
        """The guest's VMAs as the host has them (the stub's and the
        vsyscall page, which is no VMA, left out)."""
        raw = procinfo.task_maps(self.mem.pid) if self.mem is not None else None
        out = []
        for line in (raw or b"").splitlines():
            lo, _, hi = line.split(b" ", 1)[0].partition(b"-")
            start, end = int(lo, 16), int(hi, 16)
            if end <= TASK_SIZE and not (start < STUB_END and end > STUB_BASE):
                out.append((start, end))
        return out

    def check_map_count(self, limit: int, kind: int, start: int = 0, end: int = 0) -> None:
        """ENOMEM if a change would take the address space past limit VMAs,
        as Linux checks it: a new mapping while more than limit exist
        (MAP_MAP); a protection change of [start, end) that splits a VMA
        (MAP_SPLIT), or an unmap that makes a hole in one (MAP_HOLE), while
        limit exist; a move while limit - 3 exist (MAP_MOVE)."""
        self.map_changes += 1
        bound = self.map_count + VMAS_PER_CHANGE * self.map_changes
        if bound < limit - 3:
            return
        vmas = self._host_vmas()
        if not vmas:
            return      # the host cannot tell: it enforces its own limit
        count = self.map_count = len(vmas)
        self.map_changes = 1
        if kind == MAP_MAP:
            over = count > limit
        elif kind == MAP_MOVE:
            over = count >= limit - 3
        elif kind == MAP_HOLE:
            over = count >= limit and any(s < start and end < e for s, e in vmas)
        else:
            over = count >= limit and any(s < start < e or s < end < e for s, e in vmas)
        if over:
            raise KernelError(E.ENOMEM)

    def set_exe(self, inode) -> None:
        """Run inode as this address space's program: while it does, nobody
        may write it (deny_write_access; open for writing is ETXTBSY)."""
        self.exe = inode
        inode.writecount -= 1

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
    def check_range(start: int, length: int, stub_errno: int = E.EINVAL) -> None:
        """Past the user range ENOMEM; touching the stub's page stub_errno."""
        end = start + length
        if start < 0 or end > TASK_SIZE or end < start:
            raise KernelError(E.ENOMEM)
        if start < STUB_END and end > STUB_BASE:
            raise KernelError(stub_errno)

    @staticmethod
    def check_fixed(creds, start: int, length: int) -> None:
        """A mapping asked for at start (MAP_FIXED, shmat's address,
        mremap's MREMAP_FIXED), in get_unmapped_area's order: past the
        user range ENOMEM, then below vm.mmap_min_addr EPERM unless
        CAP_SYS_RAWIO allows it (security_mmap_addr), the stub's page
        always."""
        Mm.check_range(start, length, E.EPERM)
        if start < MMAP_MIN_ADDR and not capable(creds, CAP_SYS_RAWIO):
            raise KernelError(E.EPERM)

    def add(self, start: int, end: int, charged: bool) -> None:
        self.map_changes += 1
        self.remove(start, end)
        if charged:
            self.budget.charge(end - start)
            self.charged += end - start
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ranges.insert(i, (start, end, charged))

    def charged_at(self, addr: int) -> bool:
        """Is the mapping at addr committed (Linux's VM_ACCOUNT)?"""
        i = bisect.bisect_right(self.starts, addr) - 1
        return i >= 0 and addr < self.ranges[i][1] and self.ranges[i][2]

    def map_file(self, start: int, end: int, fm: FileMap) -> None:
        """[start, end) shows fm (what it showed before is gone)."""
        if start >= end:
            return
        _count_mapped(((start, end, fm),), 1)      # first: the file may be what goes
        gone = self.files.clear(start, end)
        settle_shmem(gone)
        _count_mapped(gone, -1)
        self.files.set(start, end, fm)

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
        gone = self.files.clear(start, end)
        settle_shmem(gone)
        _count_mapped(gone, -1)
        self.locked.clear(start, end)
        if self.uffd is not None:
            self.uffd.forget(start, end)

    def share(self) -> Mm:
        """Another process on this address space (CLONE_VM): it stays until
        the last of them execs or exits."""
        self.users += 1
        return self

    def fork(self) -> Mm:
        n = Mm(self.budget)
        n.budget.charge(self.charged, single=False)
        n.charged = self.charged
        n.starts = list(self.starts)
        n.ranges = list(self.ranges)
        n.brk_start, n.brk = self.brk_start, self.brk
        n.map_count, n.map_changes = self.map_count, self.map_changes
        n.start_stack = self.start_stack
        n.arg_range, n.env_range = self.arg_range, self.env_range
        n.dump_filter, n.saved_auxv = self.dump_filter, self.saved_auxv
        n.layout_set = self.layout_set
        if self.exe is not None:
            n.set_exe(self.exe)
        n.held = [f.get() for f in self.held]
        n.uffd = self.uffd.forked(n) if self.uffd is not None else None
        n.files = self.files.copy()     # locks are not inherited (VM_LOCKED is cleared)
        _count_mapped(n.files.items, 1)
        return n

    def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self.write_back()
        if self.exe is not None:
            self.exe.writecount += 1
            self.exe = None
        held, self.held = self.held, []
        for f in held:
            f.put()
        for ctx in list(self.aio.values()):
            ctx.kill()              # exit_aio
        self.aio = {}
        self.uffd = None
        gone, self.files = self.files.items, Intervals()
        settle_shmem(gone)
        _count_mapped(gone, -1)
        self.locked = Intervals()
        self.budget.uncharge(self.charged)
        self.charged = 0
        self.starts.clear()
        self.ranges.clear()
        if self.mem is not None:
            self.mem.close()
            self.mem = None
