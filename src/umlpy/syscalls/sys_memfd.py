"""memfd_create and file seals (F_ADD_SEALS/F_GET_SEALS), as mm/memfd.c.

A memfd is an unnamed tmpfs file: its seals live on the inode
(TmpfsInode.seals) and fs/tmpfs.py enforces what they forbid to writes,
resizes, fallocate and chmod; mmap refuses writable shared mappings of a
write-sealed file (sys_mmap.py).  F_SEAL_WRITE itself is refused while a
writable shared mapping exists anywhere (mapping_deny_writable: EBUSY).
"""
from __future__ import annotations

import weakref

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.tmpfs import (F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK,
                            F_SEAL_WRITE, Tmpfs, TmpfsInode)
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import mapped_anywhere
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_cstr
from umlpy.vfs.dentry import Dentry
from umlpy.vfs.file import RegularFile

MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC = 0x1, 0x2, 0x4, 0x8, 0x10
MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC
MFD_HUGE_MASK = 0x3F << 26          # a huge page size, with MFD_HUGETLB
MFD_NAME_MAX_LEN = 255 - len("memfd:")
F_ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC
F_ADD_SEALS, F_GET_SEALS = 1033, 1034

_roots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()    # kernel -> Dentry


def _memfd_root(kernel) -> Dentry:
    """The root of the internal tmpfs memfds live in (Linux's shm_mnt, as
    big as the machine, one per boot): /proc/PID/fd shows a memfd as
    /memfd:NAME (deleted)."""
    root = _roots.get(kernel)
    if root is None:
        fs = Tmpfs(kernel.mem_budget.shmem)
        root = _roots[kernel] = Dentry(b"/", None, fs.root, None)
    return root


@syscall("memfd_create", status=PARTIAL, note="MFD_HUGETLB: ENOSYS (no hugetlbfs, as a Linux built without it)")
def sys_memfd_create(t, uname, flags, *_):
    """An unlinked tmpfs file: its pages are a host memfd like any tmpfs
    file's.  Without MFD_ALLOW_SEALING (or MFD_NOEXEC_SEAL) it is sealed
    against sealing; MFD_NOEXEC_SEAL takes the execute bits away for good."""
    flags &= 0xFFFFFFFF
    if flags & ~(MFD_ALL_FLAGS | (MFD_HUGE_MASK if flags & MFD_HUGETLB else 0)) \
            or flags & MFD_EXEC and flags & MFD_NOEXEC_SEAL:
        raise KernelError(E.EINVAL)
    try:
        name = read_cstr(t, uname, MFD_NAME_MAX_LEN + 1)
    except KernelError as e:
        raise KernelError(E.EINVAL if e.errno == E.ENAMETOOLONG else e.errno) from None
    if flags & MFD_HUGETLB:
        raise KernelError(E.ENOSYS)
    creds = t.proc.creds
    d = memfd_dentry(t.kernel, b"memfd:" + name, 0o666 if flags & MFD_NOEXEC_SEAL else 0o777,
                     creds.fsuid, creds.fsgid)
    if flags & MFD_NOEXEC_SEAL:
        d.inode.seals = F_SEAL_EXEC
    elif flags & MFD_ALLOW_SEALING:
        d.inode.seals = 0
    f = RegularFile(d, d.inode, C.O_RDWR | C.O_LARGEFILE)
    return t.files.install(f, bool(flags & MFD_CLOEXEC))


def memfd_dentry(kernel, name: bytes, perm: int, uid: int, gid: int) -> Dentry:
    """A new memfd's file, named name (memfd:NAME), sealed against sealing
    as tmpfs files are (a checkpoint's restore makes them again so too)."""
    root = _memfd_root(kernel)
    ino = TmpfsInode(root.inode.fs, C.S_IFREG | perm, uid, gid)
    ino.nlink = 0          # never linked anywhere: freed at last close
    return Dentry(name, root, ino, None)


def is_memfd(d: Dentry | None) -> bool:
    """Whether d is a memfd's file (on the internal tmpfs, in no mount)."""
    return d is not None and d.mount is None and any(d.parent is r for r in _roots.values())


def seals_fcntl(t, f, cmd: int, arg: int) -> int:
    """memfd_fcntl: F_GET_SEALS, and F_ADD_SEALS (memfd_add_seals) with its
    checks in Linux's order: a writable file, known seals, a sealable
    (tmpfs) file, not sealed against sealing, no writable shared mapping
    for F_SEAL_WRITE.  F_SEAL_EXEC on an executable file seals writes too."""
    inode = f.inode
    sealable = isinstance(inode, TmpfsInode) and inode.is_reg
    if cmd == F_GET_SEALS:
        if not sealable:
            raise KernelError(E.EINVAL)
        return inode.seals
    seals = arg & 0xFFFFFFFF        # the int fcntl passes on
    if not f.writable:
        raise KernelError(E.EPERM)
    if seals & ~F_ALL_SEALS or not sealable:
        raise KernelError(E.EINVAL)
    if inode.seals & F_SEAL_SEAL:
        raise KernelError(E.EPERM)
    if seals & F_SEAL_WRITE and not inode.seals & F_SEAL_WRITE and mapped_anywhere(t.kernel.procs, inode, writable=True):
        raise KernelError(E.EBUSY)
    if seals & F_SEAL_EXEC and inode.mode & 0o111:
        seals |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
    inode.seals |= seals
    return 0
