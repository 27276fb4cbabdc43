"""Block device nodes opened by the guest (/dev/ubda, /dev/loop0): reads,
writes, and the generic block ioctls of Linux's block/ioctl.c; what those
do not know goes to the driver (loop's LOOP_*)."""
from __future__ import annotations

import struct

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.block.device import SECTOR, BlockDevice
from umlpy.kernel import ioac, printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import PositionedFile

BLKROSET = 0x125D
BLKROGET = 0x125E
BLKRRPART = 0x125F
BLKGETSIZE = 0x1260
BLKFLSBUF = 0x1261
BLKRASET = 0x1262
BLKRAGET = 0x1263
BLKFRASET = 0x1264
BLKFRAGET = 0x1265
BLKSSZGET = 0x1268
BLKBSZGET = 0x80081270
BLKGETSIZE64 = 0x80081272
BLKDISCARD = 0x1277
BLKIOMIN = 0x1278
BLKIOOPT = 0x1279
BLKALIGNOFF = 0x127A
BLKPBSZGET = 0x127B
BLKDISCARDZEROES = 0x127C
BLKSECDISCARD = 0x127D
BLKZEROOUT = 0x127F
HDIO_GETGEO = 0x0301
PAGE = 4096
ZERO_CHUNK = 1 << 20


def soft_block_size(dev: BlockDevice) -> int:
    """BLKBSZGET: the size a mounted filesystem set (sb_set_blocksize), else
    set_init_blocksize's: the largest power of two up to a page that
    divides the device's size, from its logical block size up."""
    fs = dev.mounted_fs
    if fs is not None and getattr(fs, "block_size", 0):
        return fs.block_size
    bs = dev.block_size
    while bs < PAGE and not dev.size & bs:
        bs <<= 1
    return bs


class BlockFile(PositionedFile):
    kind = "blk"
    chunked_write = True    # a write never waits: all of it goes, in pieces (mke2fs writes whole inode tables)
    pollable = False        # def_blk_fops has no poll: epoll_ctl refuses it
    splice_read = splice_write = True
    has_fsync = True

    def __init__(self, dentry, inode, flags: int, dev: BlockDevice) -> None:
        self.exclusive = bool(flags & C.O_EXCL)     # blkdev_open: O_EXCL claims the device
        dev.open(self if self.exclusive else None)
        super().__init__(dentry, inode, flags & ~C.O_EXCL)
        self.dev = dev

    def release(self) -> None:
        self.dev.release(self if self.exclusive else None)

    def fsync(self) -> None:
        """blkdev_fsync: the device's cache flushed."""
        self.dev.flush()

    def pread(self, task, n: int, off: int) -> bytes:
        n = max(0, min(n, self.dev.size - off))
        return self.dev.read(off, n) if n else b""

    def pwrite(self, task, data: bytes, off: int) -> int:
        """blkdev_write_iter: EPERM on a write-protected device, ENOSPC at its end."""
        if self.dev.write_protected:
            raise KernelError(E.EPERM)
        if not data:
            return 0
        if off >= self.dev.size:
            raise KernelError(E.ENOSPC)
        data = data[:self.dev.size - off]
        self.dev.write(off, data)
        ioac.dirtied(off, len(data))
        return len(data)

    def lseek(self, off: int, whence: int) -> int:
        base = {C.SEEK_SET: 0, C.SEEK_CUR: self.pos, C.SEEK_END: self.dev.size}.get(whence)
        if base is None or base + off < 0:
            raise KernelError(E.EINVAL)
        self.pos = base + off
        return self.pos

    def ioctl(self, task, req: int, arg: int) -> int:
        """blkdev_ioctl, then the driver's ioctl for what it does not know."""
        dev = self.dev
        put = {BLKGETSIZE64: ("<Q", dev.size), BLKGETSIZE: ("<Q", dev.size // SECTOR),
               BLKSSZGET: ("<i", dev.block_size), BLKPBSZGET: ("<I", dev.block_size),
               BLKIOMIN: ("<I", dev.block_size), BLKIOOPT: ("<I", 0), BLKALIGNOFF: ("<i", 0),
               BLKDISCARDZEROES: ("<I", 0), BLKROGET: ("<i", int(dev.write_protected)),
               BLKBSZGET: ("<i", soft_block_size(dev))}.get(req)
        if put is not None:
            task.mem.write(arg, struct.pack(*put))
            return 0
        if req in (BLKRAGET, BLKFRAGET):
            if not arg:
                raise KernelError(E.EINVAL)
            task.mem.write(arg, struct.pack("<q", dev.readahead))
            return 0
        if req in (BLKROSET, BLKFLSBUF, BLKRRPART, BLKRASET, BLKFRASET) \
                and not capable(task.proc.creds, K.CAP_SYS_ADMIN):
            raise KernelError(E.EACCES)
        if req == BLKROSET:
            dev.bdev_ro = struct.unpack("<i", task.mem.read(arg, 4))[0] != 0
        elif req in (BLKRASET, BLKFRASET):
            dev.readahead = arg // (PAGE // SECTOR) * (PAGE // SECTOR)   # whole pages, as ra_pages keeps it
        elif req == BLKFLSBUF:
            dev.flush()
        elif req == BLKRRPART:
            return self._rescan()
        elif req in (BLKDISCARD, BLKSECDISCARD, BLKZEROOUT):
            return self._discard(task, req, arg)
        elif req == HDIO_GETGEO:
            raise KernelError(E.ENOTTY)     # neither ubd nor loop has a geometry here
        else:
            return dev.ioctl(task, self, req, arg)
        return 0

    def _rescan(self) -> int:
        """BLKRRPART: EINVAL where partition scanning is off (a loop device
        without LO_FLAGS_PARTSCAN); a disk without a partition table has
        none to find; the partitions of one that has are not supported."""
        if not self.dev.partitionable or self.dev.scan_partitions():
            raise KernelError(E.EINVAL)
        return 0

    def _discard(self, task, req: int, arg: int) -> int:
        """BLKZEROOUT writes zeros over a sector-aligned range inside the
        device; discarding is something no device here does (EOPNOTSUPP, as
        for a loop file on ext2)."""
        if not self.writable:
            raise KernelError(E.EBADF)
        start, length = struct.unpack("<QQ", task.mem.read(arg, 16))
        if req != BLKZEROOUT:
            printk.pr_info_ratelimited(f"{self.dev.name}: discard is not supported")
            raise KernelError(E.EOPNOTSUPP)
        end = start + length - 1
        if start % SECTOR or length % SECTOR or end >= self.dev.size or end < start:
            raise KernelError(E.EINVAL)
        if self.dev.write_protected:
            raise KernelError(E.EPERM)
        for off in range(start, start + length, ZERO_CHUNK):
            self.dev.write(off, bytes(min(ZERO_CHUNK, start + length - off)))
        return 0
