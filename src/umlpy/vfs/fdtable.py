"""The per-process table of file descriptors."""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.vfs import locks
from umlpy.vfs.file import File

NR_OPEN_DEFAULT = 1024


class FdTable:
    def __init__(self) -> None:
        self.files: dict[int, File] = {}
        self.cloexec: set[int] = set()
        self.limit = NR_OPEN_DEFAULT
        self.users = 1          # processes sharing it (CLONE_FILES), as files_struct's count

    def get(self, fd: int) -> File:
        f = self.files.get(fd)
        if f is None:
            raise KernelError(E.EBADF)
        return f

    def install(self, file: File, cloexec: bool = False, minfd: int = 0) -> int:
        fd = minfd
        files = self.files
        while fd in files:
            fd += 1
        if fd >= self.limit:
            raise KernelError(E.EMFILE)
        self.install_at(fd, file, cloexec)
        return fd

    def install_at(self, fd: int, file: File, cloexec: bool) -> None:
        old = self.files.get(fd)
        self.files[fd] = file.get()
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        if old is not None:
            self._closed(old)

    def close(self, fd: int) -> None:
        f = self.files.pop(fd, None)
        if f is None:
            raise KernelError(E.EBADF)
        self.cloexec.discard(fd)
        self._closed(f)

    def _closed(self, f: File) -> None:
        if f.inode is not None:
            locks.release_posix(self, f.inode)    # any close drops the table's record locks
        f.put()

    def copy(self) -> FdTable:
        n = FdTable()
        n.limit = self.limit
        for fd, f in self.files.items():
            n.files[fd] = f.get()
        n.cloexec = set(self.cloexec)
        return n

    def close_on_exec(self) -> None:
        for fd in sorted(self.cloexec):
            self.close(fd)

    def share(self) -> FdTable:
        self.users += 1
        return self

    def release(self) -> None:
        """A process leaves the table (exit): the last one closes everything."""
        self.users -= 1
        if self.users == 0:
            self.close_all()

    def unshare(self) -> FdTable:
        """exec's private copy of a shared table (Linux's unshare_files)."""
        if self.users == 1:
            return self
        self.users -= 1
        return self.copy()

    def close_all(self) -> None:
        for fd in list(self.files):
            self.close(fd)
