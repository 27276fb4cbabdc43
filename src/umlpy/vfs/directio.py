"""O_DIRECT: which files take it, and what their transfers must align to.

Linux lets a file be opened (or F_SETFL'd) O_DIRECT only when its
mapping's address space has direct_IO (FMODE_CAN_ODIRECT): regular files
of ext2 and ext4 (and ext2's directories), block devices; not tmpfs in
6.1, procfs, sysfs, character devices or ext4's directories (EINVAL).
Such a file's transfers then go around the page cache, and the device
wants them aligned: the position, and every buffer's address and length,
multiples of its logical block size (iomap_dio_bio_iter,
__blockdev_direct_IO, blkdev_direct_IO: EINVAL otherwise).  umlpy copies
through its page cache all the same (the data is the same); what a
program sees of O_DIRECT is these checks.
"""
from __future__ import annotations

from typing import Iterable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.vfs import devices


def alignment(inode) -> int | None:
    """None: no direct I/O here; 0: opens, its transfers go buffered
    unchecked (an ext4 inline file); else the alignment its transfers need."""
    if inode.fmt == C.S_IFBLK:
        try:
            return devices.block_device(inode.rdev).block_size
        except KernelError:
            return None
    return inode.direct_io()


def check_open(inode, flags: int) -> None:
    """do_dentry_open and setfl: O_DIRECT on a file without direct I/O (a
    FIFO's open too) is EINVAL; the caller of setfl leaves pipes alone,
    where O_DIRECT is packet mode."""
    if flags & C.O_DIRECT and alignment(inode) is None:
        raise KernelError(E.EINVAL)


def check_transfer(f, pos: int | None, vecs: Iterable[tuple[int, int]], write: bool) -> None:
    """A read or write of an O_DIRECT file at pos (None: its position)
    from or into the buffers vecs: EINVAL unless all of it is aligned as
    the device wants.  Nothing to move is not checked (the filesystems
    return 0 first), nor is a read from the end of a file on
    (iomap_dio_rw)."""
    if not f.flags & C.O_DIRECT or f.inode is None:
        return
    align = alignment(f.inode)
    if not align:
        return
    at = f.pos if pos is None else pos
    bits = at
    total = 0
    for addr, n in vecs:
        bits |= addr | n
        total += n
    if not total or not bits & (align - 1):
        return
    if not write and f.inode.is_reg and at >= f.inode.size():
        return
    raise KernelError(E.EINVAL)
