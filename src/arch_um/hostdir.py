"""hostfs' host half (Linux's fs/hostfs/hostfs_user.c): path operations on
host files for the kernel's hostfs.

Paths are bytes.  A final component is never followed (lstat, O_NOFOLLOW,
follow_symlinks=False): the guest resolves symlinks itself, inside its own
namespace, so a host symlink is only ever read, never traversed here.
Failures are the host's OSError; the kernel turns errno into its own error.
"""
from __future__ import annotations

import os
import stat

from arch_um._hostcall import lib



class HostFd:
    """A host file the kernel holds open for hostfs reads and writes.

    It stands in for a MemFile where the mmap and exec paths want one: they
    only need `.fd`, which the guest reaches through /proc/<kernel>/fd/N,
    so MAP_SHARED writes land in the host file itself.
    """

    __slots__ = ("fd", "writable")

    def __init__(self, path: bytes, writable: bool, append: bool) -> None:
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
        if append:
            flags |= os.O_APPEND
        self.fd = os.open(path, flags)
        self.writable = writable

    def pread(self, n: int, off: int) -> bytes:
        return os.pread(self.fd, n, off)

    def pwrite(self, data: bytes, off: int) -> int:
        return os.pwrite(self.fd, data, off)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def fstat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lstat(path: bytes) -> os.stat_result:
    return os.lstat(path)


def is_dir(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode)


def scandir(path: bytes) -> list[tuple[bytes, os.stat_result]]:
    """The names in a host directory with their lstat (entries that vanish
    while listing are left out)."""
    out = []
    with os.scandir(path) as it:
        for e in it:
            try:
                out.append((e.name, e.stat(follow_symlinks=False)))
            except FileNotFoundError:
                pass
    return out


def create(path: bytes, mode: int) -> None:
    """A new regular file with exactly mode (the host umask not applied)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def mkdir(path: bytes, mode: int) -> None:
    os.mkdir(path, 0o700)
    os.chmod(path, mode)


def mknod(path: bytes, mode: int) -> None:
    """fifos and sockets: what any host user may make."""
    os.mknod(path, mode & (stat.S_IFIFO | stat.S_IFSOCK | 0o600))
    os.chmod(path, mode & 0o7777)


def symlink(path: bytes, target: bytes) -> None:
    os.symlink(target, path)


def readlink(path: bytes) -> bytes:
    return os.readlink(path)


def link(old: bytes, new: bytes) -> None:
    os.link(old, new, follow_symlinks=False)


def unlink(path: bytes) -> None:
    os.unlink(path)


def rmdir(path: bytes) -> None:
    os.rmdir(path)


def rename(old: bytes, new: bytes, flags: int) -> None:
    """renameat2(2): flags RENAME_NOREPLACE or RENAME_EXCHANGE go to the
    host's renameat2 (Python has none), which refuses what it cannot do."""
    if not flags:
        os.rename(old, new)
        return
    r = lib.umlpy_renameat2(old, new, flags)
    if r < 0:
        raise OSError(-r, os.strerror(-r), old)


def chmod(path: bytes, mode: int) -> None:
    os.chmod(path, mode)


def lchown(path: bytes, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)


def set_times(path: bytes, atime_ns: int | None, mtime_ns: int | None) -> None:
    """utimensat without following, None keeping that time (UTIME_OMIT)."""
    st = os.lstat(path)
    os.utime(path, ns=(st.st_atime_ns if atime_ns is None else atime_ns,
                       st.st_mtime_ns if mtime_ns is None else mtime_ns), follow_symlinks=False)


def truncate(path: bytes, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def statvfs(path: bytes) -> os.statvfs_result:
    return os.statvfs(path)


def confined(root: bytes, sub: bytes) -> bytes:
    """root/sub with every symlink resolved; PermissionError if that leaves
    root (hostfs= confines every mount under its directory)."""
    base = os.path.realpath(root)
    full = os.path.realpath(os.path.join(base, sub.lstrip(b"/")))
    if full != base and not full.startswith(base.rstrip(b"/") + b"/"):
        raise PermissionError(1, "outside hostfs root", sub)
    return full
