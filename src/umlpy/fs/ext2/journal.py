"""The filesystem's side of its jbd2 journal: finding it, replaying it at mount.

Linux's ext3/ext4 replay a journal that needs recovery (INCOMPAT_RECOVER)
at mount, read-only mounts included: only a read-only device refuses
(EROFS, "write access unavailable").  Afterwards the superblock is read
again (the log may have rewritten it), needs_recovery is cleared, and an
error the journal recorded marks the filesystem as having errors
(ext4_clear_journal_err).  The journal must be the internal one: an
external journal device is refused.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.extmap import extent_blocks
from umlpy.fs.jbd2 import Journal, recover
from umlpy.fs.jbd2.csum import crc32c
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext2.fs import Ext2Fs

_IBLOCK = struct.Struct("<15I")


def journal_map(fs: Ext2Fs) -> list[int]:
    """The device block of each block of the journal inode."""
    sb = fs.sb
    if sb.feature_incompat & L.INCOMPAT_JOURNAL_DEV or not sb.journal_inum:
        raise KernelError(E.EINVAL, "ext2: external journals are not supported")
    if not 1 <= sb.journal_inum <= sb.inodes_count:
        raise KernelError(E.EUCLEAN, f"ext2: bad journal inode {sb.journal_inum}")
    inode = fs.iget(sb.journal_inum)
    if not inode.is_reg:
        raise KernelError(E.EUCLEAN, "ext2: the journal inode is not a regular file")
    count = inode.size() // fs.block_size
    if inode.flags & L.FL_EXTENTS:
        return extent_blocks(lambda b: bytes(fs.bcache.get(b)), _IBLOCK.pack(*inode.block),
                             count, sb.blocks_count)
    return fs.bmap.map(inode, 0, count)


def write_super(dev, sb: L.Superblock) -> None:
    """The primary superblock, with its checksum when metadata_csum asks for one."""
    raw = bytearray(sb.pack())
    if sb.feature_ro_compat & L.RO_COMPAT_METADATA_CSUM:
        sb.checksum = crc32c(0xFFFFFFFF, raw[:L.SUPERBLOCK_CSUM_OFF])
        raw = bytearray(sb.pack())
    dev.write(L.SUPERBLOCK_OFFSET, bytes(raw))


def replay_journal(fs: Ext2Fs) -> None:
    """Recover fs's journal on its device and clear needs_recovery.

    fs is a mount in progress: its block cache, group descriptors and
    block map are read, nothing else; they are stale afterwards."""
    dev = fs.device
    printk.pr_info("ext3: recovery required on filesystem" + (" (read-only mount)" if fs.read_only else ""))
    if dev.write_protected:
        raise KernelError(E.EROFS, "ext3: write access unavailable, cannot proceed")
    j = Journal(dev, fs.block_size, journal_map(fs), fs.sb.blocks_count)
    recover(j)
    sb = L.Superblock(dev.read(L.SUPERBLOCK_OFFSET, L.SUPERBLOCK_SIZE))
    sb.feature_incompat &= ~L.INCOMPAT_RECOVER
    if j.sb.errno:
        printk.pr_warn(f"ext3: filesystem error recorded from previous mount: {j.sb.errno}; "
                       "marking fs in need of filesystem check")
        sb.state |= L.STATE_ERROR
        j.sb.errno = 0
        j.write_super()
    write_super(dev, sb)
    dev.flush()
    printk.pr_info("ext3: recovery complete")
