"""/proc/PID/mem: the process's memory at the file offset that is its
address, for debuggers (gdb reads and writes the inferior through it).

As Linux's proc_mem_operations: opening asks ptrace's attach access (the
mm is the one of open time); reads and writes are forced (remote_vm:
read-only text takes breakpoints), a page at a time, and stop short at
the first unmapped page (EIO if that is the first); lseek takes SEEK_SET
and SEEK_CUR to any offset.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import VNode
from umlpy.fs.procfs.target import Target, live
from umlpy.kernel import remote_vm
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import File, PositionedFile

MAX_RW = 1 << 20        # one call moves at most this much (Linux: a page per loop, signals checked)


class AddressedFile(PositionedFile):
    """A file whose offsets are the process's addresses (mem, pagemap): the
    process of open time; read and write at the position; mem_lseek's
    rule: SEEK_SET and SEEK_CUR only, to any offset."""

    def __init__(self, dentry, inode, flags: int, tg: Target) -> None:
        super().__init__(dentry, inode, flags)
        self.proc = tg.proc()

    def lseek(self, off: int, whence: int) -> int:
        if whence == C.SEEK_SET:
            self.pos = off
        elif whence == C.SEEK_CUR:
            self.pos += off
        else:
            raise KernelError(E.EINVAL)
        return self.pos


class MemFile(AddressedFile):
    def _mem(self):
        p = self.proc
        return p.mm.mem if live(p) else None

    def pread(self, task, n: int, off: int) -> bytes:
        mem = self._mem()
        if mem is None or n <= 0:
            return b""
        data = remote_vm.read(mem, off, min(n, MAX_RW))
        if not data:
            raise KernelError(E.EIO)
        return data

    def pwrite(self, task, data: bytes, off: int) -> int:
        mem = self._mem()
        if mem is None or not data:
            return 0
        done = remote_vm.write(mem, off, bytes(data[:MAX_RW]))
        if not done:
            raise KernelError(E.EIO)
        return done


class MemInode(VNode):
    def __init__(self, fs, key: tuple, tg: Target) -> None:
        super().__init__(fs, key, C.S_IFREG | 0o600, tg.owner, tg.alive)
        self.tg = tg

    def open_file(self, dentry, flags: int, task) -> File:
        self.check_alive()
        self.tg.check_access(task)
        return MemFile(dentry, self, flags, self.tg)
