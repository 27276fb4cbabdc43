"""Memory: brk, mmap, munmap, mprotect, mremap, madvise, msync, the mlock
family, remap_file_pages.

Every request is validated (the stub page is out of reach) and accounted
against mem= by the kernel, then carried out by an injected host syscall:
anonymous memory is the host's.  File mappings map the page cache's memfd,
so read/write and mmap see the same pages; the kernel remembers which file
each shows (Mm.files) for what the host cannot tell: Linux's VM_MAYWRITE,
writeback, remap_file_pages.  Locking is the kernel's bookkeeping
(kernel/mlock.py).
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.abi.syscall_nr import NAMES
from umlpy.kernel import ipc, mlock, oom, userfaultfd
from umlpy.fs.tmpfs import WRITE_SEALS
from umlpy.kernel.errors import KernelError
from umlpy.fs.binprm import mount_has
from umlpy.kernel.hostas import HostAs
from umlpy.kernel.ipc import ShmSegment
from umlpy.kernel.mm import (kept_mapped, MAP_HOLE, MAP_MAP, MAP_MOVE, MAP_SPLIT, OVERCOMMIT_NEVER, VM_LOCKED, VM_LOCKONFAULT,
                             FileMap, Mm)
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32
from umlpy.vfs.atime import touch_atime


def _inject(t, name: str, *args: int) -> int:
    return HostAs(t).call(name, *args)


def _fail(r: int) -> bool:
    return -4096 < r < 0


@syscall("brk")
def sys_brk(t, addr, *_):
    mm = t.proc.mm
    if addr < mm.brk_start:
        return mm.brk
    old_end, new_end = C.page_up(mm.brk), C.page_up(addr)
    if new_end > old_end:
        try:
            Mm.check_range(old_end, new_end - old_end)
            mlock.future_check(t.proc, mm.def_locked, new_end - old_end)
            mm.budget.charge(new_end - old_end)
            mm.check_map_count(t.kernel.tunables.max_map_count, MAP_MAP)
        except KernelError:
            return mm.brk
        mm.budget.uncharge(new_end - old_end)
        r = _inject(t, "mmap", old_end, new_end - old_end, C.PROT_READ | C.PROT_WRITE,
                    C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_FIXED_NOREPLACE, -1, 0)
        if r != old_end:
            if not _fail(r):
                _inject(t, "munmap", r, new_end - old_end)
            return mm.brk
        mm.add(old_end, new_end, True)
        mlock.after_map(t, old_end, new_end, 0)
    elif new_end < old_end:
        _inject(t, "munmap", new_end, old_end - new_end)
        mm.remove(new_end, old_end)
    mm.brk = addr
    return addr


def _charged(flags: int, prot: int, anon: bool, overcommit: int) -> bool:
    """accountable_mapping: private writable memory, and shared anonymous
    memory (shmem's pages), unless MAP_NORESERVE made it VM_NORESERVE,
    which it does in every overcommit mode but "never" (ASan's terabytes
    of shadow are asked for so)."""
    if flags & C.MAP_NORESERVE and overcommit != OVERCOMMIT_NEVER:
        return False
    if flags & C.MAP_TYPE == C.MAP_PRIVATE:
        return bool(prot & C.PROT_WRITE)
    return anon


@syscall("mmap", status=PARTIAL,
         note="anonymous and page-cache files (tmpfs); devices: /dev/zero only; packet socket rings")
def sys_mmap(t, addr, length, prot, flags, fd, off):
    if off & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    f = None if flags & C.MAP_ANONYMOUS else t.files.get(s32(fd))     # EBADF comes first
    return do_mmap(t, addr, length, prot, flags, f, off)


def _path_noexec(f) -> bool:
    """path_noexec: the file's mount is noexec, or its filesystem is one the
    kernel mounted so (aio's ring: READ_IMPLIES_EXEC must not make it
    executable, CVE-2016-10044)."""
    return f.noexec_fs or f.dentry is not None and mount_has(f.dentry, MS.MOUNT_ATTR_NOEXEC)


def do_mmap(t, addr: int, length: int, prot: int, flags: int, f, off: int) -> int:
    """mmap of f (None: anonymous memory) for the task: the syscall's, and
    the kernel's own (io_setup's ring) on a file it holds."""
    anon = f is None
    if length == 0:
        raise KernelError(E.EINVAL)
    size = C.page_up(length)
    if size == 0 or size > 1 << 47:
        raise KernelError(E.ENOMEM)
    mtype = flags & C.MAP_TYPE
    if mtype not in (C.MAP_SHARED, C.MAP_PRIVATE, C.MAP_SHARED_VALIDATE):
        raise KernelError(E.EINVAL)
    if flags & (C.MAP_FIXED | C.MAP_FIXED_NOREPLACE):
        if addr & (C.PAGE_SIZE - 1):
            raise KernelError(E.EINVAL)
        Mm.check_fixed(t.proc.creds, addr, size)
    mm = t.proc.mm
    lock = VM_LOCKED if flags & C.MAP_LOCKED else 0
    if lock and not mlock.can_do_mlock(t.proc):
        raise KernelError(E.EPERM)
    mlock.future_check(t.proc, lock | mm.def_locked, size)
    has = HostAs(t)
    tfd = -1
    hoff = off              # where the mapping starts in the host file
    fmap = None
    accessed = False        # a file's pages mapped: f_op->mmap's file_accessed once it is
    if f is not None:
        inode = f.mapped_inode()
        pages = f.mmap_pages(off, size)
        # do_mmap's order: the file's access mode, noexec, then whether the
        # file can be mapped at all (f_op->mmap: ENODEV)
        shared = mtype != C.MAP_PRIVATE
        if shared and prot & C.PROT_WRITE and not f.writable:
            raise KernelError(E.EACCES)
        if shared and f.writable and inode is not None and inode.get_fsflags() & C.FS_APPEND_FL:
            raise KernelError(E.EACCES)     # no shared writable view of an append-only file
        if not f.readable:
            raise KernelError(E.EACCES)
        if prot & C.PROT_EXEC and _path_noexec(f):
            raise KernelError(E.EPERM)
        if pages is None and (inode is None or not (inode.is_reg or inode.fmt == C.S_IFCHR)):
            raise KernelError(E.ENODEV)
        # VM_MAYWRITE: a shared mapping of a file not open for writing
        # can never be made writable (mprotect says EACCES)
        maywrite = f.writable or not shared
        if pages is not None:
            # kernel pages (kernel/sharedpages.py), shown from their file_offset on
            hoff = off - pages.file_offset
            fmap = FileMap(pages, -hoff, shared, maywrite, f.dentry)
            tfd = has.open_kernel_fd(pages.memfile().fd, C.O_RDWR if shared and maywrite else C.O_RDONLY)
        elif inode.fmt == C.S_IFCHR:
            if not getattr(f, "maps_as_zero", False):
                raise KernelError(E.ENODEV)
            anon = True
            flags |= C.MAP_ANONYMOUS
            fmap = FileMap(None, 0, shared, maywrite)
        else:
            sealed = getattr(inode, "seals", 0) & WRITE_SEALS
            if shared and prot & C.PROT_WRITE and sealed:
                raise KernelError(E.EPERM)      # seal_check_write
            # a write-sealed file's shared mapping may never become writable
            maywrite = maywrite and not (shared and sealed)
            fmap = FileMap(inode, -off, shared, maywrite, f.dentry)
            host_rw = shared and maywrite
            tfd = has.open_kernel_fd(inode.memfile().fd, C.O_RDWR if host_rw else C.O_RDONLY)
            if host_rw:
                inode.map_shared()
            accessed = True
    if prot & C.PROT_READ and t.proc.personality & C.READ_IMPLIES_EXEC and not (f is not None and _path_noexec(f)):
        prot |= C.PROT_EXEC
    charged = _charged(flags, prot, anon, mm.budget.overcommit_memory)
    if charged:
        mm.budget.charge(size)
        mm.budget.uncharge(size)
    try:
        mm.check_map_count(t.kernel.tunables.max_map_count, MAP_MAP)
        r = has.call("mmap", addr, size, prot, flags & ~(C.MAP_LOCKED | C.MAP_POPULATE), tfd, hoff if tfd >= 0 else 0)
    finally:
        if tfd >= 0:
            has.call("close", tfd)
    if _fail(r):
        return r
    if accessed:
        touch_atime(f)      # generic_file_mmap, ext4_file_mmap, shmem_mmap
    mm.add(r, r + size, charged)
    if fmap is not None:
        mm.map_file(r, r + size, fmap.moved(r))
    ipc.detach_unmapped(t.proc, r, r + size)
    mlock.after_map(t, r, r + size, lock)
    if flags & C.MAP_POPULATE and not flags & C.MAP_NONBLOCK and not lock | mm.def_locked:
        _populate(t, r, size, prot, mtype == C.MAP_PRIVATE)
    return r


def _populate(t, start: int, size: int, prot: int, private: bool) -> None:
    """MAP_POPULATE's mm_populate: a private writable mapping faulted in for
    writing (COW broken), others for reading (a write-only one for writing:
    the host's populate has no FOLL_FORCE), PROT_NONE not at all; what it
    meets is not mmap's failure."""
    if prot & (C.PROT_READ | C.PROT_WRITE | C.PROT_EXEC):
        write = prot & C.PROT_WRITE and (private or not prot & C.PROT_READ)
        oom.populate(t, start, size, C.MADV_POPULATE_WRITE if write else C.MADV_POPULATE_READ)


@syscall("munmap")
def sys_munmap(t, addr, length, *_):
    if addr & (C.PAGE_SIZE - 1) or length == 0:
        raise KernelError(E.EINVAL)
    size = C.page_up(length)
    Mm.check_range(addr, size)
    t.proc.mm.check_map_count(t.kernel.tunables.max_map_count, MAP_HOLE, addr, addr + size)
    r = _inject(t, "munmap", addr, size)
    if not _fail(r):
        mm = t.proc.mm
        mm.write_back(addr, addr + size)
        mm.remove(addr, addr + size)
        ipc.detach_unmapped(t.proc, addr, addr + size)
    return r


@syscall("mprotect")
def sys_mprotect(t, addr, length, prot, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    if length == 0:
        return 0
    size = C.page_up(length)
    Mm.check_range(addr, size)
    mm = t.proc.mm
    end = addr + size
    mm.check_map_count(t.kernel.tunables.max_map_count, MAP_SPLIT, addr, end)
    if prot & C.PROT_READ and t.proc.personality & C.READ_IMPLIES_EXEC:
        prot |= C.PROT_EXEC
    if prot & C.PROT_WRITE:
        # Linux changes the vmas in order and stops at the first one that
        # may not be writable (EACCES), a hole before it being ENOMEM
        fixed = next((s for s, _e, fm in mm.files.overlapping(addr, end) if not fm.maywrite), None)
        if fixed is not None:
            if fixed > addr:
                r = _inject(t, "mprotect", addr, fixed - addr, prot)
                if _fail(r):
                    return r
            raise KernelError(E.EACCES)
    r = _inject(t, "mprotect", addr, size, prot)
    if not _fail(r):
        userfaultfd.reprotect(t, addr, end, prot)
    if not _fail(r) and prot & C.PROT_WRITE and mm.locked.items:
        mlock.populate(t, addr, end)    # a locked range made writable is faulted in for writing
    return r


MREMAP_DONTUNMAP = 4


@syscall("mremap", status=PARTIAL, note="anonymous and file mappings; accounting approximate")
def sys_mremap(t, old, old_size, new_size, flags, new, *_):
    if old & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    old_end = old + C.page_up(old_size)
    Mm.check_range(old, old_end - old)
    if flags & C.MREMAP_FIXED:
        Mm.check_fixed(t.proc.creds, new, C.page_up(new_size))
    mm = t.proc.mm
    grow = C.page_up(new_size) - C.page_up(old_size)
    locked = mm.locked.overlapping(old, old_end)
    # VM_ACCOUNT: what mmap committed grows committed (vma_to_resize)
    charged = any(c for s, e, c in mm.ranges if s < old_end and e > old)
    if grow > 0:
        if locked:
            mlock.future_check(t.proc, VM_LOCKED, grow)
        if charged:
            mm.budget.charge(grow)
            mm.budget.uncharge(grow)
    mm.check_map_count(t.kernel.tunables.max_map_count, MAP_MOVE)
    r = _inject(t, "mremap", old, old_size, new_size, flags, new)
    if not _fail(r):
        files = mm.files.overlapping(old, old_end)
        with kept_mapped(files[0][2].obj if files else None):
            _moved(t, mm, old, old_end, r, r + C.page_up(new_size), flags, charged, files, locked, grow)
    return r


def _moved(t, mm, old: int, old_end: int, r: int, new_end: int, flags: int, charged: bool, files: list,
           locked: list, grow: int) -> None:
    """The kernel's side of a done mremap: the old range's bookkeeping to
    the new one."""
    if flags & MREMAP_DONTUNMAP:
        # the old range stays mapped, emptied (its userfaultfd
        # registration too: its pages are missing again), and loses
        # VM_LOCKED, as move_vma leaves it; the new one is charged beside it
        mm.locked.clear(old, old_end)
        userfaultfd.dropped(t, old, old_end)
    else:
        mm.remove(old, old_end)
    mm.add(r, new_end, charged)
    if files:
        mm.map_file(r, new_end, files[0][2].moved(r - old))
    if locked:
        mm.locked.set(r, new_end, locked[0][2])
        if grow > 0:
            mlock.populate(t, new_end - grow, new_end)


# what madvise takes in Linux 6.1 built without KSM, THP and memory-failure
# injection (as /proc/config.gz says): others are EINVAL before anything
_MADV_VALID = frozenset((0, 1, 2, 3, 4, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23, 24))
MADV_DONTNEED = 4
# advice refused (EINVAL) on mlocked memory: DONTNEED, FREE, REMOVE, COLD, PAGEOUT
_MADV_NOT_LOCKED = frozenset((4, 8, 9, 20, 21))


@syscall("madvise")
def sys_madvise(t, addr, length, advice, *_):
    advice = s32(advice)
    if advice not in _MADV_VALID or addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    size = C.page_up(length) & ((1 << 64) - 1)
    if length and not size or addr + size >= 1 << 64:
        raise KernelError(E.EINVAL)
    if not size:
        return 0
    Mm.check_range(addr, size)
    if advice in _MADV_NOT_LOCKED:
        locked = t.proc.mm.locked.overlapping(addr, addr + size)
        if locked:
            # Linux advises the vmas in order and stops at the locked one
            if locked[0][0] > addr:
                _inject(t, "madvise", addr, locked[0][0] - addr, advice)
            raise KernelError(E.EINVAL)
    if advice in (C.MADV_POPULATE_READ, C.MADV_POPULATE_WRITE):
        return oom.populate(t, addr, size, advice)
    r = _inject(t, "madvise", addr, length, advice)
    if advice == MADV_DONTNEED and not _fail(r):
        userfaultfd.dropped(t, addr, addr + size)     # missing again, for a userfaultfd
    return r


MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4


@syscall("msync")
def sys_msync(t, addr, length, flags, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    r = _inject(t, "msync", addr, length, flags)
    if r in (0, -E.ENOMEM) and flags & MS_INVALIDATE \
            and t.proc.mm.locked.overlapping(addr, addr + C.page_up(length)):
        raise KernelError(E.EBUSY)      # locked pages cannot be invalidated
    if not _fail(r):
        t.proc.mm.write_back(addr, addr + C.page_up(length), durable=bool(flags & MS_SYNC))
    return r


@syscall("membarrier", note="carried out by the host in the caller's host process (its threads are the guest's)")
def sys_membarrier(t, cmd, flags, cpu, *_):
    return _inject(t, "membarrier", cmd, flags, cpu)



@syscall("mlock", "munlock", note="bookkeeping, within RLIMIT_MEMLOCK: pages are faulted in, never locked on the host")
def sys_mlock(t, addr, length, *_):
    if NAMES[t.in_syscall] == "munlock":
        return mlock.do_munlock(t, addr, length)
    return mlock.do_mlock(t, addr, length, VM_LOCKED)


@syscall("mlock2", note="as mlock; MLOCK_ONFAULT locks without faulting in")
def sys_mlock2(t, addr, length, flags, *_):
    flags = s32(flags)
    if flags & ~mlock.MLOCK_ONFAULT:
        raise KernelError(E.EINVAL)
    return mlock.do_mlock(t, addr, length, VM_LOCKED | (VM_LOCKONFAULT if flags else 0))


@syscall("mlockall", "munlockall", note="bookkeeping, as mlock")
def sys_mlockall(t, flags, *_):
    if NAMES[t.in_syscall] == "munlockall":
        return mlock.do_munlockall(t)
    return mlock.do_mlockall(t, s32(flags))


@syscall("mincore")
def sys_mincore(t, addr, length, vec, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    Mm.check_range(addr, C.page_up(length))
    return _inject(t, "mincore", addr, length, vec)


@syscall("remap_file_pages", note="emulated as Linux has since 4.0: a fresh shared mapping of the file range over the window")
def sys_remap_file_pages(t, start, size, prot, pgoff, flags, *_):
    """The window [start, start + size) must lie in shared mappings of one
    file, contiguous and alike; it is mapped again at file page pgoff
    (MAP_SHARED | MAP_FIXED | MAP_POPULATE, with the window's protection
    and lock), as Linux's emulation does."""
    if prot:
        raise KernelError(E.EINVAL)
    start, size = C.page_down(start), C.page_down(size)
    end = start + size
    if end <= start or end >= 1 << 64 or pgoff + (size >> C.PAGE_SHIFT) >= 1 << 64:
        raise KernelError(E.EINVAL)
    mm = t.proc.mm
    pieces = mm.files.overlapping(start, end)
    first = pieces[0][2] if pieces else None
    pos = start
    for s, e, fm in pieces:
        if s != pos or fm.obj is None or fm.obj is not first.obj or not fm.shared \
                or fm.maywrite != first.maywrite:
            raise KernelError(E.EINVAL)
        pos = e
    perms = {p for s, e, p, _sp in mlock.guest_vmas(t) if s < end and e > start}
    if pos != end or len(perms) != 1:
        raise KernelError(E.EINVAL)
    obj = first.obj
    if isinstance(obj, ShmSegment) and obj.dying:
        # Linux unmaps the window first: the last attachment of a removed
        # segment goes, the segment with it, and then it is not found
        if not _fail(_inject(t, "munmap", start, size)):
            mm.remove(start, end)
            ipc.detach_at(t.proc, start)
        raise KernelError(E.EINVAL)
    off = pgoff << C.PAGE_SHIFT
    has = HostAs(t)
    memfile = obj.memfile()
    (p,) = perms
    prot = sum(bit for c, bit in zip(p, (C.PROT_READ, C.PROT_WRITE, C.PROT_EXEC)) if c != "-")
    tfd = has.open_kernel_fd(memfile.fd, C.O_RDWR if first.maywrite else C.O_RDONLY)
    try:
        r = has.call("mmap", start, size, prot, C.MAP_SHARED | C.MAP_FIXED, tfd, off)
    finally:
        has.call("close", tfd)
    if _fail(r):
        return r
    mm.map_file(start, end, FileMap(obj, start - off, True, first.maywrite, first.dentry))
    mlock.populate(t, start, end)
    if not flags & C.MAP_NONBLOCK:
        _populate(t, start, size, prot, False)
    return 0
