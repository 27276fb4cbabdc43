"""hostfs' host half (Linux's fs/hostfs/hostfs_user.c): operations on host
files for the kernel's hostfs, confined beneath one held host directory.

The confinement (docs/security.md, "hostfs"): a HostTree holds an O_PATH fd
of the mounted host directory, and every operation names its object by the
components of its path below that directory, never by a host path string.
The object's directory is opened from the held fd with openat2(2) and
RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS; the last
component is then handled by an *at() call relative to that directory fd
that does not follow it (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW, or a call that
never follows: mkdirat, unlinkat, renameat2, linkat without flags, ...).
Components `.`, `..` and anything holding a `/` are refused.  So no host
symlink is ever followed here, whenever it was swapped in, and no `..`
climbs out: the guest resolves hostfs symlinks itself, in its own namespace.

Paths, not a held fd per directory: a directory fd follows its directory
wherever the host renames it, out of the tree too, and a guest walking a
big tree would hold one fd per directory; a path is resolved afresh each
time, always beneath the root, and costs one openat2 per operation below
the top level (docs/architecture.md, "hostfs", has the numbers).

Failures are the host's OSError; the kernel turns errno into its own error.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Callable, TypeVar

from arch_um._hostcall import lib

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
CONFINED = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

Path = tuple[bytes, ...]   # components below the tree's root; () is the root
T = TypeVar("T")


def _err(code: int, what: bytes) -> OSError:
    return OSError(code, os.strerror(code), what)


def openat2(dirfd: int, path: bytes, flags: int, resolve: int) -> int:
    fd = lib.umlpy_openat2(dirfd, path, flags | os.O_CLOEXEC, 0, resolve)
    if fd < 0:
        raise _err(-fd, path)
    return fd


def _joined(path: Path) -> bytes:
    """path as a relative host path, every component checked: one name each."""
    rel = b"/".join(path)
    if path and (rel.count(b"/") != len(path) - 1 or b"" in path or b"." in path
                 or b".." in path or b"\0" in rel):
        raise _err(errno.EINVAL, rel)
    return rel or b"."


class HostTree:
    """A mounted host directory, held open; every operation stays beneath it.

    The directory itself is the administrator's (hostfs=<dir>, opened as the
    host resolves it); the mount data below it is the guest's and is
    resolved beneath it (symlinks that stay inside are followed, anything
    leading out fails with EXDEV).
    """

    __slots__ = ("fd", "path")

    def __init__(self, confine: bytes, sub: bytes) -> None:
        top = os.open(confine, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.fd = openat2(top, sub.strip(b"/") or b".", os.O_PATH | os.O_DIRECTORY,
                              RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
        finally:
            os.close(top)
        self.path = os.path.normpath(os.path.join(confine, sub.lstrip(b"/")))   # for /proc/mounts

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def open(self, path: Path, flags: int) -> int:
        """An fd of the object at path itself (a trailing symlink is ELOOP)."""
        return openat2(self.fd, _joined(path), flags | os.O_NOFOLLOW, CONFINED)

    def _at(self, path: Path, fn: Callable[[int, bytes], T]) -> T:
        """fn(directory fd, name), the pair naming path's object for an
        *at() call; the directory is opened beneath the root for the call."""
        rel = _joined(path)
        if len(path) <= 1:
            return fn(self.fd, rel)
        d = openat2(self.fd, rel.rpartition(b"/")[0], os.O_PATH | os.O_DIRECTORY, CONFINED)
        try:
            return fn(d, path[-1])
        finally:
            os.close(d)

    # -- attributes ----------------------------------------------------------
    def lstat(self, path: Path) -> os.stat_result:
        return self._at(path, _lstat)

    def chmod(self, path: Path, mode: int) -> None:
        self._at(path, lambda d, name: _chmod(d, name, mode))

    def chown(self, path: Path, uid: int, gid: int) -> None:
        self._at(path, lambda d, name: os.chown(name, uid, gid, dir_fd=d, follow_symlinks=False))

    def set_times(self, path: Path, atime_ns: int | None, mtime_ns: int | None) -> None:
        """utimensat without following, None keeping that time (UTIME_OMIT)."""
        def set_times(d: int, name: bytes) -> None:
            st = _lstat(d, name)
            os.utime(name, ns=(st.st_atime_ns if atime_ns is None else atime_ns,
                               st.st_mtime_ns if mtime_ns is None else mtime_ns),
                     dir_fd=d, follow_symlinks=False)
        self._at(path, set_times)

    def truncate(self, path: Path, size: int) -> None:
        fd = self.open(path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def statvfs(self) -> os.statvfs_result:
        return os.statvfs(self.fd)

    # -- directories ---------------------------------------------------------
    def scandir(self, path: Path) -> list[tuple[bytes, os.stat_result]]:
        """The names in a directory with their lstat (entries that vanish
        while listing are left out)."""
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        out = []
        try:
            with os.scandir(fd) as it:
                for e in it:
                    try:
                        out.append((os.fsencode(e.name), e.stat(follow_symlinks=False)))
                    except FileNotFoundError:
                        pass
        finally:
            os.close(fd)
        return out

    def create(self, path: Path, mode: int) -> None:
        """A new regular file with exactly mode (the host umask not applied)."""
        fd = self._at(path, lambda d, name: os.open(
            name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=d))
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def mkdir(self, path: Path, mode: int) -> None:
        def mkdir(d: int, name: bytes) -> None:
            os.mkdir(name, 0o700, dir_fd=d)
            _chmod(d, name, mode)
        self._at(path, mkdir)

    def mknod(self, path: Path, mode: int) -> None:
        """fifos and sockets: what any host user may make."""
        def mknod(d: int, name: bytes) -> None:
            os.mknod(name, mode & (stat.S_IFIFO | stat.S_IFSOCK | 0o600), dir_fd=d)
            _chmod(d, name, mode & 0o7777)
        self._at(path, mknod)

    def symlink(self, path: Path, target: bytes) -> None:
        self._at(path, lambda d, name: os.symlink(target, name, dir_fd=d))

    def readlink(self, path: Path) -> bytes:
        return self._at(path, lambda d, name: os.readlink(name, dir_fd=d))

    def unlink(self, path: Path) -> None:
        self._at(path, lambda d, name: os.unlink(name, dir_fd=d))

    def rmdir(self, path: Path) -> None:
        self._at(path, lambda d, name: os.rmdir(name, dir_fd=d))

    def link(self, old: Path, new: Path) -> None:
        self._at(old, lambda od, oname: self._at(new, lambda nd, nname: os.link(
            oname, nname, src_dir_fd=od, dst_dir_fd=nd, follow_symlinks=False)))

    def rename(self, old: Path, new: Path, flags: int) -> None:
        """renameat2(2), flags (RENAME_NOREPLACE, RENAME_EXCHANGE) as given:
        the host refuses what it cannot do."""
        r = self._at(old, lambda od, oname: self._at(new, lambda nd, nname: lib.umlpy_renameat2(
            od, oname, nd, nname, flags)))
        if r < 0:
            raise _err(-r, _joined(old))


def _lstat(d: int, name: bytes) -> os.stat_result:
    return os.stat(name, dir_fd=d, follow_symlinks=False)


def _chmod(d: int, name: bytes, mode: int) -> None:
    """fchmodat(AT_SYMLINK_NOFOLLOW) (Python has no such call): a symlink
    found there, swapped in since the guest looked, is EOPNOTSUPP."""
    r = lib.umlpy_fchmodat_nofollow(d, name, mode)
    if r < 0:
        raise _err(-r, name)


class HostFd:
    """A host file the kernel holds open for hostfs reads and writes.

    It stands in for a MemFile where the mmap and exec paths want one: they
    only need `.fd`, which the guest reaches through /proc/<kernel>/fd/N,
    so MAP_SHARED writes land in the host file itself.  Opened non-blocking
    and checked to be a regular file, so a fifo or device the host put in
    the file's place never blocks the kernel or is opened for the guest.
    """

    __slots__ = ("fd", "writable")

    def __init__(self, tree: HostTree, path: Path, writable: bool, append: bool) -> None:
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NONBLOCK
        if append:
            flags |= os.O_APPEND
        self.fd = tree.open(path, flags)
        self.writable = writable
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            self.close()
            raise _err(errno.ESTALE, _joined(path))

    def pread(self, n: int, off: int) -> bytes:
        return os.pread(self.fd, n, off)

    def pwrite(self, data: bytes, off: int) -> int:
        return os.pwrite(self.fd, data, off)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def fstat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def seek(self, off: int, whence: int) -> int:
        """lseek SEEK_DATA/SEEK_HOLE: where the host file has data (a core
        dump of its mapping skips the holes)."""
        return os.lseek(self.fd, off, whence)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
