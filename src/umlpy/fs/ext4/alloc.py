"""Bitmaps of groups mke2fs left uninitialised (uninit_bg, metadata_csum).

With group descriptor checksums a group may be BLOCK_UNINIT (its block
bitmap was never written: it is whatever ext4_init_block_bitmap derives
from the group's own metadata) or INODE_UNINIT (no inode used yet), and
bg_itable_unused says how much of the inode table was never used.  The
first time a group's bitmap is wanted it is built, the flag cleared and
both written back; allocating an inode moves bg_itable_unused as
ext4_new_inode does.

Journalled, a block freed by the running transaction stays busy until it
commits (fs/ext4/journal.py says why), and an allocation that comes up
short while blocks are busy commits and tries again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.alloc import Allocator, set_bits
from umlpy.fs.ext4 import layout as X

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs


def base_meta_blocks(fs: Ext4Fs, g: int) -> int:
    """Blocks at the start of group g holding a superblock and descriptor copies
    (ext4_num_base_meta_blocks)."""
    sb = fs.sb
    n = 1 if sb.has_super(g) else 0
    dpb = fs.block_size // fs.desc_size
    if not sb.feature_incompat & L.INCOMPAT_META_BG or g < sb.first_meta_bg * dpb:
        if n:
            n += fs.gdt_count + sb.reserved_gdt_blocks
    elif g % dpb in (0, 1, dpb - 1):
        n += 1
    return n


def init_block_bitmap(fs: Ext4Fs, g: int, bm: bytearray) -> None:
    """ext4_init_block_bitmap: the group's own metadata in use, the bits past
    the group's last block set."""
    sb, gd = fs.sb, fs.gds[g]
    first, n = sb.group_first_block(g), sb.blocks_in_group(g)
    bm[:] = bytes(len(bm))
    set_bits(bm, 0, base_meta_blocks(fs, g), True)
    for blk, count in ((gd.block_bitmap, 1), (gd.inode_bitmap, 1),
                       (gd.inode_table, fs.itable_blocks)):
        lo, hi = max(blk, first), min(blk + count, first + n)
        if lo < hi:
            set_bits(bm, lo - first, hi - lo, True)
    set_bits(bm, n, len(bm) * 8 - n, True)


def init_inode_bitmap(fs: Ext4Fs, bm: bytearray) -> None:
    ipg = fs.sb.inodes_per_group
    bm[:] = bytes(len(bm))
    set_bits(bm, ipg, len(bm) * 8 - ipg, True)


class Ext4Allocator(Allocator):
    fs: Ext4Fs

    def __init__(self, fs: Ext4Fs) -> None:
        super().__init__(fs)
        self.busy: dict[int, bytearray] = {}   # group: bits of blocks freed, not yet committed

    def _allocatable(self, g: int, bm: bytearray) -> bytearray:
        busy = self.busy.get(g)
        if busy is None:
            return bm
        both = int.from_bytes(bm, "little") | int.from_bytes(busy, "little")
        return bytearray(both.to_bytes(len(bm), "little"))

    def alloc_blocks(self, goal: int, count: int) -> list[int]:
        out = self._take(goal, count)
        journal = self.fs.journal
        if len(out) < count and self.busy and journal is not None:
            Allocator.free_blocks(self, out)    # never used: not busy
            self.fs.commit()                    # the busy blocks are free once committed
            out = self._take(goal, count)
        return out

    def _take(self, goal: int, count: int) -> list[int]:
        """Blocks promised to delayed writes are not free but to their write-back."""
        da = self.fs.delalloc
        if da is not None:
            count = min(count, self.sb.free_blocks_count - da.promised())
            if count <= 0:
                return []
        return super().alloc_blocks(goal, count)

    def free_blocks(self, blocks: Iterable[int]) -> None:
        blocks = list(blocks)
        super().free_blocks(blocks)
        journal = self.fs.journal
        if journal is None:
            return
        journal.freed(blocks)
        for g, bit, k in self.group_runs(blocks):
            busy = self.busy.get(g)
            if busy is None:
                busy = self.busy[g] = bytearray(self.fs.block_size)
            set_bits(busy, bit, k, True)

    def release_busy(self) -> None:
        """The transaction that freed them committed: they may be reused."""
        self.busy.clear()

    def alloc_inode(self, parent_ino: int, is_dir: bool) -> int:
        ino = super().alloc_inode(parent_ino, is_dir)
        fs = self.fs
        if fs.group_csum:
            g, bit = divmod(ino - 1, self.sb.inodes_per_group)
            gd = fs.gds[g]
            if gd.flags & X.BG_BLOCK_UNINIT:
                fs.block_bitmap(g)          # ext4_new_inode initialises it too
            used = self.sb.inodes_per_group - gd.itable_unused
            if bit >= used:
                gd.itable_unused = self.sb.inodes_per_group - bit - 1
            fs.gd_dirty(g)
        return ino
