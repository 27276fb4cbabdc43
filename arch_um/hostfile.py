"""Host memory files and host files.

A MemFile is a host memfd owned by the kernel: tmpfs file data and the page
cache live in them, so that read/write in the kernel and mmap in the guest
(the tracee maps /proc/<kernel>/fd/N) see the same pages.
"""
import errno
import fcntl
import mmap
import os
import resource
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from arch_um._hostcall import ffi, lib

_SELF = os.getpid()


def kernel_fd_path(fd: int) -> str:
    """A path a tracee can open to reach one of the kernel's fds."""
    return f"/proc/{os.getpid()}/fd/{fd}"


MAP_WHOLE_MAX = 1 << 32      # memfds up to this size are mapped whole for copies


_vm_write_c = lib.umlpy_vm_write


def _vm_write(pid: int, m: mmap.mmap, off: int, remote: int, n: int) -> int:
    ptr = ffi.from_buffer(m)
    try:
        r = _vm_write_c(pid, ptr + off, remote, n)
    finally:
        ffi.release(ptr)
    return r if r >= 0 else -1


class HostFdsExhausted(OSError):
    """No host fd may be taken for a guest's object (a memory file, a NAT
    socket): they hold all the kernel may give them (it keeps a reserve
    for its own)."""

    def __init__(self) -> None:
        super().__init__(errno.ENFILE, "the host fds for guest objects are all in use")


RESERVE_MIN = 32
_budget = 0         # memory files there may be at once (set at the first, after boot raised the limit)
_live = 0


def guest_fd_budget() -> int:
    """The fd limit less a reserve for the kernel's own fds (processes'
    /proc/PID/mem, disks, hostfs directories, its event loop): an eighth,
    at least RESERVE_MIN."""
    global _budget
    if not _budget:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        _budget = max(64, soft - max(RESERVE_MIN, soft // 8))
    return _budget


def take_guest_fd() -> None:
    """Count one more host fd held for a guest's object, or refuse it."""
    global _live
    if _live >= (_budget or guest_fd_budget()):
        raise HostFdsExhausted()
    _live += 1


def give_guest_fd() -> None:
    global _live
    _live -= 1


class MemFile:
    __slots__ = ("fd", "_map", "_map_len", "_ptr")

    def __init__(self, name: str = "umlpy", data: bytes = b"") -> None:
        self.fd = -1
        self._map = None
        self._map_len = 0
        self._ptr = None        # the whole-file mapping as a C pointer, while it is kept
        take_guest_fd()
        try:
            self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        except OSError:
            give_guest_fd()
            raise
        if data:
            os.pwrite(self.fd, data, 0)

    def copy_to_guest(self, pid: int, off: int, n: int, remote: int) -> int:
        """Copy n bytes at off straight into a tracee's memory (one copy:
        our mapping of the memfd, process_vm_writev).  Returns the count;
        -1 if the guest address is bad.  The mapping of the whole file is
        kept for the next copy, unless the file is too big to map (a
        sparse file of terabytes): then only this range is mapped."""
        end = off + n
        if end <= self._map_len:        # a cached read: one host call
            r = _vm_write_c(pid, self._ptr + off, remote, n)
            return r if r >= 0 else -1
        size = os.fstat(self.fd).st_size
        if end > size:
            return 0
        self._unmap()
        if size > MAP_WHOLE_MAX:
            base = off & ~(mmap.PAGESIZE - 1)
            with mmap.mmap(self.fd, end - base, mmap.MAP_SHARED, mmap.PROT_READ, offset=base) as m:
                return _vm_write(pid, m, off - base, remote, n)
        self._map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        self._ptr = ffi.from_buffer(self._map)
        self._map_len = size
        return self.copy_to_guest(pid, off, n, remote)

    def pread(self, n: int, off: int) -> bytes:
        return os.pread(self.fd, n, off)

    def pwrite(self, data: bytes, off: int) -> int:
        return os.pwrite(self.fd, data, off)

    @contextmanager
    def window(self, off: int, n: int) -> Iterator[memoryview]:
        """[off, off + n) of the file (off page-aligned, inside its size) as
        writable memory, so that a filler reads straight into the pages
        (one copy, no bytes object between)."""
        m = mmap.mmap(self.fd, n, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=off)
        view = memoryview(m)
        try:
            yield view
        finally:
            view.release()
            m.close()

    def truncate(self, size: int) -> None:
        if size < self._map_len:
            self._unmap()
        os.ftruncate(self.fd, size)

    def _unmap(self) -> None:
        if self._ptr is not None:
            ffi.release(self._ptr)
            self._ptr = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass
            self._map = None
            self._map_len = 0

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def blocks(self) -> int:
        return os.fstat(self.fd).st_blocks

    def fallocate(self, mode: int, off: int, n: int) -> None:
        """fallocate(2) on the memfd: reserve pages (FALLOC_FL_KEEP_SIZE: past
        the end without growing it) or free them (FALLOC_FL_PUNCH_HOLE)."""
        r = lib.umlpy_fallocate(self.fd, mode, off, n)
        if r < 0:
            raise OSError(-r, os.strerror(-r))

    def seek(self, off: int, whence: int) -> int:
        """lseek SEEK_DATA/SEEK_HOLE on the memfd: where its pages are."""
        return os.lseek(self.fd, off, whence)

    def close(self) -> None:
        self._unmap()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            give_guest_fd()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def read_host_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def host_file_exists(path: str) -> bool:
    return os.path.exists(path)


class HostFile:
    """A host file behind a block device (ubd images, COW files): a
    regular file or a host block device, nothing else (NotADisk).

    `lock` takes UML's host lock (an exclusive fcntl lock on the whole
    file), so a second instance on the same writable image fails.
    """

    def __init__(self, path: str, writable: bool, sync: bool = False, create: bool = False) -> None:
        flags = os.O_RDWR if writable else os.O_RDONLY
        if sync:
            flags |= os.O_SYNC
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        self.path = path
        self.writable = writable
        _check_disk(path, os.stat(path).st_mode if not create else stat.S_IFREG)
        # O_NONBLOCK: a fifo swapped in since the check must not hang the boot
        fd = os.open(path, flags | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
        try:
            _check_disk(path, os.fstat(fd).st_mode)
            os.set_blocking(fd, True)
        except OSError:
            os.close(fd)
            raise
        self.fd = fd

    def pread(self, n: int, off: int) -> bytes:
        return os.pread(self.fd, n, off)

    def readinto(self, buf: memoryview, off: int) -> int:
        """Fill buf from off with as much as the file holds (a short count at
        its end); what is past the end is left to the caller."""
        got = 0
        while got < len(buf):
            r = os.preadv(self.fd, [buf[got:]], off + got)
            if r <= 0:
                break
            got += r
        return got

    def pwrite(self, data: bytes, off: int) -> int:
        return os.pwrite(self.fd, data, off)

    def fsync(self) -> None:
        os.fsync(self.fd)

    def size(self) -> int:
        """The file's size, or the whole disk's for a host block device."""
        return os.lseek(self.fd, 0, os.SEEK_END)

    def mtime(self) -> int:
        return int(os.fstat(self.fd).st_mtime)

    def identity(self) -> tuple[int, int]:
        st = os.fstat(self.fd)
        return st.st_dev, st.st_ino

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def lock(self) -> bool:
        """Write (writable) or read lock on the whole file; False if taken.

        Open-file-description locks: they conflict with UML's fcntl locks
        from other processes and, unlike those, also between two opens in
        this one process (two ubd devices on one image).
        """
        try:
            self._ofd_lock(fcntl.F_WRLCK if self.writable else fcntl.F_RDLCK)
            return True
        except OSError:
            return False

    def unlock(self) -> None:
        """Let another instance take the file (a migration's target)."""
        self._ofd_lock(fcntl.F_UNLCK)

    def _ofd_lock(self, kind: int) -> None:
        """An open-file-description lock of the whole file (F_OFD_SETLK)."""
        fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", kind, 0, 0, 0, 0))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class NotADisk(OSError):
    """A ubd file that is neither a regular file nor a block device;
    kind says what it is ("a fifo", ...)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{path} is {kind}")
        self.kind = kind


_KINDS = {stat.S_IFIFO: "a fifo", stat.S_IFCHR: "a character device", stat.S_IFDIR: "a directory",
          stat.S_IFSOCK: "a socket"}


def _check_disk(path: str, mode: int) -> None:
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise NotADisk(path, _KINDS.get(stat.S_IFMT(mode), "not a regular file"))


def absolute_path(path: str) -> str:
    return os.path.abspath(path)


def file_stat(path: str) -> tuple[int, int] | None:
    """(size, mtime) of a host file, or None if it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, int(st.st_mtime)
