"""The filesystem's side of its jbd2 journal: finding it, replaying it at mount.

Linux's ext3/ext4 replay a journal that needs recovery (INCOMPAT_RECOVER)
at mount, read-only mounts included: only a read-only device refuses
(EROFS, "write access unavailable").  Afterwards the filesystem reads its
superblock again (the log may have rewritten it) and clears
needs_recovery (Ext2Fs._recover).  The journal must be the internal one:
an external journal device is refused.  Its blocks are found through the
filesystem's block map, which on ext4 reads extents.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.jbd2 import Journal, recover
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext2.fs import Ext2Fs

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
    return fs.bmap.map(inode, 0, inode.size() // fs.block_size)




def replay_journal(fs: Ext2Fs) -> int:
    """Recover fs's journal on its device; returns the error number the
    journal recorded (0: none), which it then forgets.

    fs is a mount in progress: its block cache, group descriptors and
    block map are read, nothing else; they are stale afterwards."""
    dev = fs.device
    printk.pr_info(f"{fs.name}: recovery required on filesystem" + (" (read-only mount)" if fs.read_only else ""))
    if dev.write_protected:
        raise KernelError(E.EROFS, f"{fs.name}: write access unavailable, cannot proceed")
    j = Journal(dev, fs.block_size, journal_map(fs), fs.sb.blocks_count)
    recover(j)
    err = j.sb.errno
    if err:
        j.sb.errno = 0
        j.write_super()
    return err
