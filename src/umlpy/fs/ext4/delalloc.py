"""Delayed allocation (ext4's delalloc, the default of an ext4 mount).

A write into a hole of a file whose whole contents are in its page cache
(fs/ext2's MemFile) does not allocate: the blocks are reserved, counted,
and the data stays in the page cache until write-back gives it blocks,
in one allocation, contiguous.  Write-back comes, as Linux's flusher
brings it: for data older than the commit interval, at the next periodic
commit (Linux's dirty_expire_centisecs, 30 s, is longer: this keeps what
the guest wrote on the disk within two intervals); for everything at
fsync, sync and umount; for one file before anything that reads its
block map (fallocate, SEEK_DATA/SEEK_HOLE, FIEMAP_FLAG_SYNC, a write into
allocated blocks; a FIEMAP without it shows them as DELALLOC extents).  A file created, written and unlinked in between
never has a block allocated.

Ordered mode holds without writing data at every commit: while a file
has delayed blocks, the size its inode has on the disk is the size it
had before them (Linux's i_disksize; a truncate sets it), so no commit
records a size that covers data the disk does not have; after a crash
such a file ends where its written-back data ends, as on Linux.

Past 64 MiB of delayed data a write first writes back the oldest files
(Linux's balance_dirty_pages throttles the writer likewise), so neither
the memory nor the work a write-back finds is unbounded.

Reservations keep ENOSPC at write(2), where Linux reports it: a delayed
write is taken only while the free blocks less those already promised
stay above a margin (Linux's s_resv_clusters: 2% of the disk, at most
4096 blocks), else the write allocates at once as without delalloc; and
an allocation other than a write-back's may not take promised blocks
(ext4_has_free_clusters less the dirty clusters).  statfs and st_blocks
count the reserved blocks as used, as Linux's do.

Only a journalled ext4 mount delays (Linux also leaves ext2 and ext3
mounts without it): its periodic commit is the flusher.  `nodelalloc` and
the superblock's EXT4_DEFM_NODELALLOC turn it off.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from arch_um import clock
from umlpy.fs.ext2.bcache import runs
from umlpy.kernel import ioac, printk

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs
    from umlpy.fs.ext4.inode import Ext4Inode

FLUSH_STEP = 8 << 20        # bytes of page cache read per step of a write-back
DIRTY_LIMIT = 64 << 20      # delayed bytes past which a write writes back the oldest first
DEFM_NODELALLOC = 0x0800    # s_default_mount_opts: EXT4_DEFM_NODELALLOC
RESV_SHARE = 50             # the margin: 1/50 of the blocks ...
RESV_MAX = 4096             # ... at most this many


class DelayedAlloc:
    """The blocks promised to delayed writes, and the inodes holding them."""

    def __init__(self, fs: Ext4Fs) -> None:
        self.fs = fs
        self.bs = fs.block_size
        self.reserved = 0
        self.inodes: dict[int, tuple[Ext4Inode, int]] = {}     # ino: (inode, delayed since)
        self.margin = min(fs.sb.blocks_count // RESV_SHARE, RESV_MAX)
        self.flushing = False

    def delay(self, inode: Ext4Inode, off: int, n: int) -> bool:
        """Take a write of n bytes at off without allocating (its data goes
        to the page cache alone); False: it must allocate now (a block in
        the range is mapped, the file has a shared writable mapping
        (Ext4Inode.map_shared), or the disk is too full to promise more)."""
        if inode._mem is None or inode.is_inline or n <= 0 or inode.shared_mapped:
            return False
        bs = self.bs
        lo, hi = off // bs, (off + n + bs - 1) // bs
        mine = inode.delayed
        new = [b for b in range(lo, hi) if b not in mine]
        if not new:
            return True
        if inode.i_blocks and any(self.fs.bmap.map(inode, new[0], new[-1] + 1)):
            return False        # (a file without blocks has nothing mapped)
        if self.fs.sb.free_blocks_count - self.reserved - len(new) < self.margin:
            return False
        if not mine:
            inode.disksize = inode.size()
            self.inodes[inode.ino] = (inode, clock.monotonic_ns())
        mine.update(new)
        self.reserved += len(new)
        return True

    def drop(self, inode: Ext4Inode, first: int = 0) -> None:
        """The delayed blocks from logical block first on are gone (truncate,
        the inode freed): their reservation is given back, and their data
        never written (cancelled_write_bytes, kernel/ioac.py)."""
        mine = inode.delayed
        if not mine:
            return
        gone = mine if first == 0 else {b for b in mine if b >= first}
        self.reserved -= len(gone)
        ioac.cancelled(len(gone) * self.bs)
        if gone is mine:
            inode.delayed = set()
        else:
            mine -= gone
        if not inode.delayed:
            self.inodes.pop(inode.ino, None)

    def flush(self, inode: Ext4Inode) -> None:
        """ext4_writepages: the delayed blocks of inode get blocks and their
        data, a run at a time."""
        mine = inode.delayed
        if not mine or self.flushing:
            return
        lblks = sorted(mine)
        inode.delayed = set()
        self.reserved -= len(lblks)
        self.inodes.pop(inode.ino, None)
        mem, bs, step = inode._mem, self.bs, FLUSH_STEP // self.bs
        self.flushing = True
        try:
            for start, k in runs(lblks):
                for s in range(start, start + k, step):
                    c = min(step, start + k - s)
                    if mem is None or s * bs >= inode.size():
                        return
                    data = mem.pread(c * bs, s * bs)
                    data += bytes(c * bs - len(data))       # the last block's tail: zeros
                    if inode._write_disk(s * bs, data) < len(data):
                        self.fs.msg(f"Delayed block allocation failed for inode {inode.ino} "
                                    f"at logical offset {s} with max blocks {c} with error 28",
                                    printk.pr_err)
                        self.fs.msg("This should not happen!! Data will be lost", printk.pr_err)
                        return
        finally:
            self.flushing = False

    def balance(self) -> None:
        """balance_dirty_pages: past DIRTY_LIMIT of delayed data the writer
        writes back the oldest files until half of it is left, so that a
        commit never has an unbounded write-back to do (call it after the
        write's data is in the page cache)."""
        if self.reserved * self.bs <= DIRTY_LIMIT:
            return
        for inode, _ in list(self.inodes.values()):
            self.flush(inode)
            if self.reserved * self.bs <= DIRTY_LIMIT // 2:
                return

    def flush_older(self, cutoff_ns: int) -> None:
        """Write back the files whose delayed data is from before cutoff_ns."""
        for inode, since in list(self.inodes.values()):
            if since <= cutoff_ns:
                self.flush(inode)

    def promised(self) -> int:
        """Blocks an allocation other than a write-back may not take."""
        return 0 if self.flushing else self.reserved
