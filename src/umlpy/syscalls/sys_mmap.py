"""Memory: brk, mmap, munmap, mprotect, mremap, madvise, msync.

Every request is validated (the stub page is out of reach) and accounted
against mem= by the kernel, then carried out by an injected host syscall:
anonymous memory is the host's.  File mappings map the page cache's memfd,
so read/write and mmap see the same pages.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.syscall_nr import NAMES
from umlpy.fs.tmpfs import WRITE_SEALS
from umlpy.kernel.errors import KernelError
from umlpy.kernel.exec import HostAs, mount_has
from umlpy.kernel.mm import MAP_HOLE, MAP_MAP, MAP_MOVE, MAP_SPLIT, Mm
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32


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
    elif new_end < old_end:
        _inject(t, "munmap", new_end, old_end - new_end)
        mm.remove(new_end, old_end)
    mm.brk = addr
    return addr


def _charged(flags: int, prot: int, anon: bool) -> bool:
    if flags & C.MAP_TYPE == C.MAP_PRIVATE:
        return bool(prot & C.PROT_WRITE)
    return anon


@syscall("mmap", status=PARTIAL, note="anonymous and page-cache files (tmpfs); devices: /dev/zero only")
def sys_mmap(t, addr, length, prot, flags, fd, off):
    if length == 0 or off & (C.PAGE_SIZE - 1):
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
        Mm.check_range(addr, size)
    mm = t.proc.mm
    anon = bool(flags & C.MAP_ANONYMOUS)
    has = HostAs(t)
    tfd = -1
    maywrite = False
    if not anon:
        f = t.files.get(s32(fd))
        inode = f.inode
        if inode is None or not (inode.is_reg or inode.fmt == C.S_IFCHR):
            raise KernelError(E.ENODEV if inode is None or inode.is_dir else E.EACCES)
        if not f.readable:
            raise KernelError(E.EACCES)
        if mtype != C.MAP_PRIVATE and prot & C.PROT_WRITE and not f.writable:
            raise KernelError(E.EACCES)
        if inode.fmt == C.S_IFCHR:
            if getattr(f, "maps_as_zero", False):
                anon = True
                flags |= C.MAP_ANONYMOUS
            else:
                raise KernelError(E.ENODEV)
        else:
            mf = inode.memfile()
            sealed = getattr(inode, "seals", 0) & WRITE_SEALS
            if mtype != C.MAP_PRIVATE and prot & C.PROT_WRITE and sealed:
                raise KernelError(E.EPERM)      # seal_check_write
            # VM_SHARED|VM_MAYWRITE: a shared mapping of a writable file may
            # be made writable later (mprotect), unless write-sealed
            maywrite = mtype != C.MAP_PRIVATE and f.writable and not sealed
            tfd = has.open_kernel_fd(mf.fd, C.O_RDWR if maywrite else C.O_RDONLY)
            if maywrite:
                # the guest may write the page cache behind the filesystem's
                # back: a disk filesystem copies it back on msync, munmap,
                # exit and every sync
                inode.shared_mapped = True
    if prot & C.PROT_READ and t.proc.personality & C.READ_IMPLIES_EXEC \
            and not (tfd >= 0 and f.dentry is not None and mount_has(f.dentry, "noexec")):
        prot |= C.PROT_EXEC
    charged = _charged(flags, prot, anon)
    if charged:
        mm.budget.charge(size)
        mm.budget.uncharge(size)
    try:
        mm.check_map_count(t.kernel.tunables.max_map_count, MAP_MAP)
        r = has.call("mmap", addr, size, prot, flags, tfd if not anon else -1, off if not anon else 0)
    finally:
        if tfd >= 0:
            has.call("close", tfd)
    if _fail(r):
        return r
    mm.add(r, r + size, charged)
    if not anon and maywrite:
        mm.map_shared_file(r, r + size, inode)
    return r


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
    return r


@syscall("mprotect")
def sys_mprotect(t, addr, length, prot, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    if length == 0:
        return 0
    Mm.check_range(addr, C.page_up(length))
    t.proc.mm.check_map_count(t.kernel.tunables.max_map_count, MAP_SPLIT, addr, addr + C.page_up(length))
    if prot & C.PROT_READ and t.proc.personality & C.READ_IMPLIES_EXEC:
        prot |= C.PROT_EXEC
    return _inject(t, "mprotect", addr, C.page_up(length), prot)


@syscall("mremap", status=PARTIAL, note="anonymous and file mappings; accounting approximate")
def sys_mremap(t, old, old_size, new_size, flags, new, *_):
    if old & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    Mm.check_range(old, C.page_up(old_size))
    if flags & C.MREMAP_FIXED:
        Mm.check_range(new, C.page_up(new_size))
    mm = t.proc.mm
    grow = C.page_up(new_size) - C.page_up(old_size)
    if grow > 0:
        mm.budget.charge(grow)
        mm.budget.uncharge(grow)
    mm.check_map_count(t.kernel.tunables.max_map_count, MAP_MOVE)
    r = _inject(t, "mremap", old, old_size, new_size, flags, new)
    if not _fail(r):
        charged = any(c for s, e, c in mm.ranges if s < old + old_size and e > old)
        files = [ino for s, e, ino in mm.shared_files if s < old + old_size and e > old]
        mm.remove(old, old + C.page_up(old_size))
        mm.add(r, r + C.page_up(new_size), charged)
        if files:
            mm.map_shared_file(r, r + C.page_up(new_size), files[0])
    return r


@syscall("madvise")
def sys_madvise(t, addr, length, advice, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    if length:
        Mm.check_range(addr, C.page_up(length))
    return _inject(t, "madvise", addr, length, advice)


MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4


@syscall("msync")
def sys_msync(t, addr, length, flags, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    r = _inject(t, "msync", addr, length, flags)
    if not _fail(r):
        t.proc.mm.write_back(addr, addr + C.page_up(length), durable=bool(flags & MS_SYNC))
    return r


@syscall("membarrier", note="carried out by the host in the caller's host process (its threads are the guest's)")
def sys_membarrier(t, cmd, flags, cpu, *_):
    return _inject(t, "membarrier", cmd, flags, cpu)



@syscall("mlock", "munlock", status=PARTIAL, note="carried out by the host within its RLIMIT_MEMLOCK")
def sys_mlock(t, addr, length, *_):
    Mm.check_range(C.page_down(addr), C.page_up(addr + length) - C.page_down(addr))
    return _inject(t, NAMES[t.in_syscall], addr, length)


@syscall("mlockall", "munlockall", status=PARTIAL, note="carried out by the host within its RLIMIT_MEMLOCK")
def sys_mlockall(t, flags, *_):
    return _inject(t, NAMES[t.in_syscall], flags)


@syscall("mincore")
def sys_mincore(t, addr, length, vec, *_):
    if addr & (C.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    Mm.check_range(addr, C.page_up(length))
    return _inject(t, "mincore", addr, length, vec)
