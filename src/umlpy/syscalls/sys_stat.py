"""stat family: stat, lstat, fstat, newfstatat, statx."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_path, s32
from umlpy.vfs import namei


def dev_of(inode) -> int:
    return inode.fs.dev


def stat_bytes(inode) -> bytes:
    return structs.pack_stat(dev_of(inode), inode.ino, inode.nlink, inode.mode, inode.uid,
                             inode.gid, inode.rdev, inode.size(), inode.fs.blksize, inode.blocks(),
                             inode.atime, inode.mtime, inode.ctime)


def _at(t, dirfd: int, path: int, flags: int):
    if flags & ~(C.AT_SYMLINK_NOFOLLOW | C.AT_EMPTY_PATH | C.AT_NO_AUTOMOUNT | 0x6000):
        raise KernelError(E.EINVAL)
    p = read_path(t, path) if path or not flags & C.AT_EMPTY_PATH else b""
    if not p and flags & C.AT_EMPTY_PATH:
        dfd = s32(dirfd)
        if dfd != C.AT_FDCWD:
            return t.files.get_raw(dfd).inode
    d = namei.lookup(t, s32(dirfd), p, follow=not flags & C.AT_SYMLINK_NOFOLLOW,
                     empty_ok=bool(flags & C.AT_EMPTY_PATH))
    return d.inode


@syscall("stat")
def sys_stat(t, path, buf, *_):
    t.mem.write(buf, stat_bytes(namei.lookup(t, C.AT_FDCWD, read_path(t, path)).inode))
    return 0


@syscall("lstat")
def sys_lstat(t, path, buf, *_):
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path), follow=False)
    t.mem.write(buf, stat_bytes(d.inode))
    return 0


@syscall("fstat")
def sys_fstat(t, fd, buf, *_):
    f = t.files.get_raw(s32(fd))
    t.mem.write(buf, stat_bytes(f.inode))
    return 0


@syscall("newfstatat")
def sys_newfstatat(t, dirfd, path, buf, flags, *_):
    t.mem.write(buf, stat_bytes(_at(t, dirfd, path, flags)))
    return 0


STATX__RESERVED = 0x80000000
AT_STATX_SYNC_TYPE = 0x6000


@syscall("statx")
def sys_statx(t, dirfd, path, flags, mask, buf, *_):
    if mask & STATX__RESERVED or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        raise KernelError(E.EINVAL)
    ino = _at(t, dirfd, path, flags & ~AT_STATX_SYNC_TYPE)
    d = dev_of(ino)
    t.mem.write(buf, structs.pack_statx(
        structs.STATX_BASIC_STATS, d, ino.ino, ino.nlink, ino.mode, ino.uid, ino.gid,
        ino.rdev, ino.size(), ino.fs.blksize, ino.blocks(), ino.atime, ino.ctime, ino.ctime, ino.mtime))
    return 0
