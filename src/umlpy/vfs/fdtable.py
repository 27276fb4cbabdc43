"""The per-process table of file descriptors.

Allocation follows Linux's rule (the lowest free descriptor, at or above
F_DUPFD's minimum) through `FdBitmap`, Linux's open_fds/full_fds_bits
idea carried to as many levels as needed: finding a free descriptor costs
O(log64 n) whatever the table holds, so a guest with a raised
RLIMIT_NOFILE cannot make every open (and every other guest) wait on a
scan of its table.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.abi.consts import O_PATH, S_IFDIR, S_IFMT
from umlpy.kernel.errors import KernelError
from umlpy.vfs import dnotify, locks
from umlpy.vfs.file import File, files_stat

NR_OPEN_DEFAULT = 1024
_SHIFT = 6
_BITS = 1 << _SHIFT        # descriptors per word
_FULL = (1 << _BITS) - 1


class FdBitmap:
    """The set of descriptors in use, searchable for the lowest free one.

    levels[0] holds one bit per descriptor (set: in use); a bit of
    levels[i + 1] is set when the word of levels[i] it stands for is full.
    Words past the end of a level are empty.  Every level above the first
    exists only while the one below it has more than one word.
    """

    __slots__ = ("levels",)

    def __init__(self) -> None:
        self.levels: list[list[int]] = [[]]

    def copy(self) -> FdBitmap:
        n = FdBitmap()
        n.levels = [list(level) for level in self.levels]
        return n

    def _grow(self, fd: int) -> None:
        """Make levels[0] cover fd, and add the summary levels that needs."""
        low = self.levels[0]
        need = (fd >> _SHIFT) + 1
        if len(low) >= need:
            return
        low.extend([0] * (need - len(low)))
        i = 0
        while len(self.levels[i]) > 1:
            below = self.levels[i]
            words = (len(below) + _BITS - 1) // _BITS
            if i + 1 == len(self.levels):
                self.levels.append([0] * words)
                above = self.levels[i + 1]
                for w, word in enumerate(below):
                    if word == _FULL:
                        above[w >> _SHIFT] |= 1 << (w & (_BITS - 1))
            else:
                above = self.levels[i + 1]
                above.extend([0] * (words - len(above)))
            i += 1

    def set(self, fd: int) -> None:
        if fd >> _SHIFT >= len(self.levels[0]):
            self._grow(fd)
        idx = fd
        for level in self.levels:
            w = idx >> _SHIFT
            level[w] |= 1 << (idx & (_BITS - 1))
            if level[w] != _FULL:
                return
            idx = w

    def clear(self, fd: int) -> None:
        idx = fd
        for level in self.levels:
            w = idx >> _SHIFT
            if w >= len(level):
                return
            was_full = level[w] == _FULL
            level[w] &= ~(1 << (idx & (_BITS - 1)))
            if not was_full:
                return
            idx = w

    def first_free(self, start: int, level: int = 0) -> int:
        """The lowest clear bit of levels[level] at or above start."""
        bits = self.levels[level]
        w = start >> _SHIFT
        if w >= len(bits):
            return start
        free = ~bits[w] & _FULL & ~((1 << (start & (_BITS - 1))) - 1)
        if free:
            return (w << _SHIFT) + (free & -free).bit_length() - 1
        if level + 1 == len(self.levels):
            w += 1      # the top level has one word: everything past it is free
        else:
            w = self.first_free(w + 1, level + 1)
        if w >= len(bits):
            return w << _SHIFT
        free = ~bits[w] & _FULL
        return (w << _SHIFT) + (free & -free).bit_length() - 1


class FdTable:
    def __init__(self) -> None:
        self.files: dict[int, File] = {}
        self.cloexec: set[int] = set()
        self.limit = NR_OPEN_DEFAULT
        self.users = 1          # processes sharing it (CLONE_FILES), as files_struct's count
        self._used = FdBitmap()

    def get(self, fd: int) -> File:
        """The open file behind fd, for an operation on the file (fdget).

        An O_PATH file only marks a place in the tree: every operation on the
        file itself (read, ioctl, mmap, sockets, epoll, fchmod...) is EBADF
        on it, as on Linux; the few that use the place take get_raw."""
        f = self.get_raw(fd)
        if f.flags & O_PATH:
            raise KernelError(E.EBADF)
        return f

    def get_raw(self, fd: int) -> File:
        """fdget_raw: O_PATH files too (dup, fcntl, fstat, fchdir, *at)."""
        f = self.files.get(fd)
        if f is None:
            raise KernelError(E.EBADF)
        return f

    def check_room(self, minfd: int = 0) -> int:
        """The fd install would take (EMFILE if none): for syscalls that
        reserve it before they make the file, as get_unused_fd_flags."""
        fd = self._used.first_free(minfd)
        if fd >= self.limit:
            raise KernelError(E.EMFILE)
        return fd

    def install(self, file: File, cloexec: bool = False, minfd: int = 0) -> int:
        """A descriptor for file.  A new file (no reference yet: made for
        this descriptor) that gets none, EMFILE or ENFILE, is released as
        Linux's error paths fput it, so that nothing it holds (an unlinked
        inode's blocks, a pipe's pages, a connection) outlives the call."""
        try:
            fd = self.check_room(minfd)
            if not file.refs:
                files_stat.check()
        except KernelError:
            if not file.refs:
                file.put_unused()
            raise
        self.install_at(fd, file, cloexec)
        return fd

    def reserve(self) -> None:
        """get_unused_fd_flags before a call makes its file (open, accept):
        EMFILE, or ENFILE past file-max, before anything is done."""
        self.check_room()
        files_stat.check()

    def install_at(self, fd: int, file: File, cloexec: bool) -> None:
        old = self.files.get(fd)
        self.files[fd] = file.get()
        if old is None:
            self._used.set(fd)
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
        self._used.clear(fd)
        self.cloexec.discard(fd)
        self._closed(f)

    def _closed(self, f: File) -> None:
        if f.inode is not None:
            locks.release_posix(self, f.inode)    # any close drops the table's record locks
            if f.inode.mode & S_IFMT == S_IFDIR:
                dnotify.flush(self, f)
        f.flush(self)
        f.put()

    def copy(self, nr_open: int) -> FdTable:
        """A private copy (fork, clone, unshare).  No table grows past
        nr_open (rounded up to a word of descriptors): a table whose highest
        descriptor lies beyond has no copy, EMFILE (dup_fd)."""
        words = max(self.files, default=-1) // _BITS + 1
        if words * _BITS > ((nr_open - 1) | (_BITS - 1)) + 1:
            raise KernelError(E.EMFILE)
        n = FdTable()
        n.limit = self.limit
        for fd, f in self.files.items():
            n.files[fd] = f.get()
        n.cloexec = set(self.cloexec)
        n._used = self._used.copy()
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

    def unshare(self, nr_open: int) -> FdTable:
        """A private copy of a shared table, for exec and unshare(2) (Linux's
        unshare_fd): the same table when no one else holds it."""
        if self.users == 1:
            return self
        n = self.copy(nr_open)
        self.users -= 1
        return n

    def close_all(self) -> None:
        for fd in list(self.files):
            self.close(fd)
