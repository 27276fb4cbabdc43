"""Block device nodes opened by the guest (/dev/ubda): reads, writes, ioctls."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import File

BLKGETSIZE = 0x1260
BLKFLSBUF = 0x1261
BLKSSZGET = 0x1268
BLKGETSIZE64 = 0x80081272
BLKROGET = 0x125E


class BlockFile(File):
    kind = "blk"
    splice_read = splice_write = True
    has_fsync = True

    def __init__(self, dentry, inode, flags: int, dev) -> None:
        super().__init__(dentry, inode, flags)
        self.dev = dev
        if self.writable and dev.read_only:
            raise KernelError(E.EROFS)

    def pread(self, task, n: int, off: int) -> bytes:
        n = max(0, min(n, self.dev.size - off))
        return self.dev.read(off, n) if n else b""

    def pwrite(self, task, data: bytes, off: int) -> int:
        if off >= self.dev.size and data:
            raise KernelError(E.ENOSPC)
        data = data[:self.dev.size - off]
        self.dev.write(off, data)
        return len(data)

    def read(self, task, n: int) -> bytes:
        data = self.pread(task, n, self.pos)
        self.pos += len(data)
        return data

    def write(self, task, data: bytes) -> int:
        n = self.pwrite(task, data, self.pos)
        self.pos += n
        return n

    def lseek(self, off: int, whence: int) -> int:
        base = {C.SEEK_SET: 0, C.SEEK_CUR: self.pos, C.SEEK_END: self.dev.size}.get(whence)
        if base is None or base + off < 0:
            raise KernelError(E.EINVAL)
        self.pos = base + off
        return self.pos

    def ioctl(self, task, req: int, arg: int) -> int:
        if req == BLKGETSIZE64:
            task.mem.write(arg, struct.pack("<Q", self.dev.size))
        elif req == BLKGETSIZE:
            task.mem.write(arg, struct.pack("<Q", self.dev.size // 512))
        elif req == BLKSSZGET:
            task.mem.write(arg, struct.pack("<i", 512))
        elif req == BLKROGET:
            task.mem.write(arg, struct.pack("<i", int(self.dev.read_only)))
        elif req == BLKFLSBUF:
            self.dev.flush()
        else:
            raise KernelError(E.ENOTTY)
        return 0
