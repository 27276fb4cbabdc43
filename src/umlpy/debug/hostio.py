"""gdb's Host I/O packets (vFile:*): gdb reads the debugged program (and
any file it names) from the guest's filesystem, so `target remote` needs
no copy of the program on the host.

Files are opened read-only, regular files only, by path as the debugged
process would (its root, its cwd, its credentials), through the VFS;
gdb's File-I/O errno numbers and big-endian stat are its own.
"""
from __future__ import annotations

import struct

from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.debug import packets
from umlpy.kernel.errors import Block, KernelError
from umlpy.syscalls.sys_file import dentry_open
from umlpy.vfs import namei

MAX_OPEN = 16
# gdb's File-I/O errno values (gdb/include/gdb/fileio.h); others are EUNKNOWN
_FILEIO_ERRNO = {E.EPERM: 1, E.ENOENT: 2, E.EINTR: 4, E.EBADF: 9, E.EACCES: 13, E.EFAULT: 14,
                 E.EBUSY: 16, E.EEXIST: 17, E.ENODEV: 19, E.ENOTDIR: 20, E.EISDIR: 21,
                 E.EINVAL: 22, E.ENFILE: 23, E.EMFILE: 24, E.EFBIG: 27, E.ENOSPC: 28,
                 E.ESPIPE: 29, E.EROFS: 30, E.ENAMETOOLONG: 91}
_EUNKNOWN = 9999


def _error(errno: int) -> bytes:
    return b"F-1,%x" % _FILEIO_ERRNO.get(errno, _EUNKNOWN)


class HostIO:
    def __init__(self) -> None:
        self.files: dict[int, object] = {}

    def close_all(self) -> None:
        for f in self.files.values():
            f.put()
        self.files.clear()

    def packet(self, task, body: bytes) -> bytes:
        """The reply to vFile:<body>; an empty one for what is not here."""
        op, _, args = body.partition(b":")
        try:
            if op == b"setfs":
                return b"F0"        # always the debugged process's view
            if op == b"open":
                return self._open(task, args)
            if op == b"close":
                f = self.files.pop(int(args, 16), None)
                if f is None:
                    return _error(E.EBADF)
                f.put()
                return b"F0"
            if op == b"pread":
                fd, n, off = (int(x, 16) for x in args.split(b","))
                f = self._file(fd)
                data = f.pread(task, min(n, 0x1000), off)
                return b"F%x;" % len(data) + packets.escape(data)
            if op == b"fstat":
                return self._fstat(self._file(int(args, 16)))
        except KernelError as e:
            return _error(e.errno)
        except (GuestFault, Block):
            return _error(E.EIO)
        return b""

    def _file(self, fd: int):
        f = self.files.get(fd)
        if f is None:
            raise KernelError(E.EBADF)
        return f

    def _open(self, task, args: bytes) -> bytes:
        path, flags, _mode = args.split(b",")
        if int(flags, 16) & 3:
            return _error(E.EACCES)     # read-only: gdb only reads programs
        if len(self.files) >= MAX_OPEN:
            return _error(E.EMFILE)
        d = namei.lookup(task, C.AT_FDCWD, bytes.fromhex(path.decode()))
        if not d.inode.is_reg:
            return _error(E.EACCES)
        f = dentry_open(task, d, C.O_RDONLY)
        f.get()
        fd = next(i for i in range(MAX_OPEN) if i not in self.files)
        self.files[fd] = f
        return b"F%x" % fd

    @staticmethod
    def _fstat(f) -> bytes:
        """gdb's struct fio_stat: big-endian, 32-bit but sizes and blocks."""
        i = f.inode
        st = struct.pack(">IIIIIIIQQQIII", 0, i.ino & 0xFFFFFFFF, i.mode, i.nlink, i.uid, i.gid, 0,
                         i.size(), 4096, i.blocks(), i.atime // 10**9, i.mtime // 10**9,
                         i.ctime // 10**9)
        return b"F%x;" % len(st) + packets.escape(st)
