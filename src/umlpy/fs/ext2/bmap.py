"""The classic ext2 block map: 12 direct, single, double, triple indirect.

Ranges of logical blocks are mapped, allocated and freed in one walk of
the tree each, reading every indirect block once per call rather than
once per data block, so a 200 MB file costs a few hundred Python
iterations per megabyte rather than a tree descent per block.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Iterator

from umlpy.abi import errno as E
from umlpy.fs.ext2.layout import NDIR_BLOCKS
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext2.fs import Ext2Fs
    from umlpy.fs.ext2.inode import Ext2Inode


class Full(Exception):
    """The disk filled up part way: what was mapped so far is usable."""


def tiers(ppb: int) -> list[tuple[int, int, int]]:
    """(first logical block, number of blocks, depth) of each i_block slot tier."""
    out = [(0, NDIR_BLOCKS, 0)]
    base = NDIR_BLOCKS
    for depth in (1, 2, 3):
        out.append((base, ppb ** depth, depth))
        base += ppb ** depth
    return out


def max_blocks(ppb: int, block_size: int) -> int:
    """Largest file in blocks: the tree's reach, and i_blocks' 2^32 sectors.

    Like Linux's ext2_max_size, the indirect blocks count against the
    32-bit sector count too.
    """
    reach = NDIR_BLOCKS + ppb + ppb ** 2 + ppb ** 3
    upper = ((1 << 32) - 1) // (block_size // 512)
    meta = 1 + (1 + ppb) + (1 + ppb + ppb * ppb)
    return min(reach, upper - meta)


def _slot(depth: int) -> int:
    return NDIR_BLOCKS - 1 + depth


class BlockMap:
    """Map, allocate and free logical blocks of one inode's i_block tree."""

    def __init__(self, fs: Ext2Fs) -> None:
        self.fs = fs
        self.ppb = fs.block_size // 4
        self.tiers = tiers(self.ppb)
        self.ptrs = struct.Struct(f"<{self.ppb}I")
        self.spb = fs.block_size // 512      # i_blocks units per block

    def _read_ptrs(self, blk: int) -> tuple[int, ...]:
        self._check(blk)
        return self.ptrs.unpack_from(self.fs.bcache.get(blk))

    def _check(self, blk: int) -> None:
        if not self.fs.sb.first_data_block <= blk < self.fs.sb.blocks_count:
            raise KernelError(E.EIO, f"ext2: block {blk} out of range")

    def _parts(self, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """(depth, lo, hi) of [lo, hi) in each tier it touches, relative to the tier."""
        for base, span, depth in self.tiers:
            a, b = max(lo, base), min(hi, base + span)
            if a < b:
                yield depth, a - base, b - base

    def _children(self, depth: int, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """(slot, lo, hi) of [lo, hi) under each pointer of a depth-level block."""
        span = self.ppb ** (depth - 1)
        for i in range(lo // span, (hi - 1) // span + 1):
            yield i, max(lo, i * span) - i * span, min(hi, (i + 1) * span) - i * span

    # -- mapping --------------------------------------------------------------
    def map(self, ino: Ext2Inode, lo: int, hi: int) -> list[int]:
        """Physical block of each logical block in [lo, hi); 0 for a hole."""
        out: list[int] = []
        for depth, a, b in self._parts(lo, hi):
            if depth == 0:
                out.extend(ino.block[a:b])
            else:
                self._map_tree(ino.block[_slot(depth)], depth, a, b, out)
        if out:
            top = max(out)
            if top >= self.fs.sb.blocks_count:
                raise KernelError(E.EIO, f"ext2: inode {ino.ino} maps block {top}")
        return out

    def _map_tree(self, blk: int, depth: int, lo: int, hi: int, out: list[int]) -> None:
        if blk == 0:
            out.extend([0] * (hi - lo))
            return
        ptrs = self._read_ptrs(blk)
        if depth == 1:
            out.extend(ptrs[lo:hi])
            return
        for i, a, b in self._children(depth, lo, hi):
            self._map_tree(ptrs[i], depth - 1, a, b, out)

    # -- allocation -----------------------------------------------------------
    def alloc(self, ino: Ext2Inode, lo: int, hi: int) -> list[int]:
        """Map [lo, hi), allocating what is missing; a shorter list if the disk fills.

        The list returned is always a prefix of the range with every block
        present, so a caller can write that much.  Every block allocated is
        attached to the tree before anything below it is, so running out
        of space half way loses nothing.
        """
        out: list[int] = []
        try:
            for depth, a, b in self._parts(lo, hi):
                if depth == 0:
                    vals = ino.block[a:b]
                    try:
                        self._fill(ino, vals, out)
                    finally:
                        ino.block[a:b] = vals
                else:
                    s = _slot(depth)
                    if ino.block[s] == 0:
                        ino.block[s] = self._new_indirect(ino)
                    self._alloc_tree(ino, ino.block[s], depth, a, b, out)
        except Full:
            pass
        return out

    def _fill(self, ino: Ext2Inode, vals: list[int], out: list[int]) -> None:
        """Give the holes in vals (in place) new blocks; on a full disk a prefix, then Full."""
        holes = [i for i, v in enumerate(vals) if v == 0]
        if holes:
            new = self.fs.alloc.alloc_blocks(ino.goal(), len(holes))
            for i, b in zip(holes, new):
                vals[i] = b
            if new:
                ino.i_blocks += len(new) * self.spb
                ino.set_goal(new[-1] + 1)
            if len(new) < len(holes):
                out.extend(vals[:holes[len(new)]])
                raise Full
        out.extend(vals)

    def _new_indirect(self, ino: Ext2Inode) -> int:
        new = self.fs.alloc.alloc_blocks(ino.goal(), 1)
        if not new:
            raise Full
        ino.i_blocks += self.spb
        ino.set_goal(new[0] + 1)
        self.fs.bcache.zeroed(new[0])
        return new[0]

    def _set_ptr(self, blk: int, i: int, vals: list[int]) -> None:
        buf = self.fs.bcache.get(blk)
        struct.pack_into(f"<{len(vals)}I", buf, 4 * i, *vals)
        self.fs.bcache.mark_dirty(blk, buf)

    def _alloc_tree(self, ino: Ext2Inode, blk: int, depth: int, lo: int, hi: int,
                    out: list[int]) -> None:
        """Allocate the missing blocks in [lo, hi) below the indirect block blk."""
        ptrs = self._read_ptrs(blk)
        if depth == 1:
            vals = list(ptrs[lo:hi])
            try:
                self._fill(ino, vals, out)
            finally:
                if vals != list(ptrs[lo:hi]):
                    self._set_ptr(blk, lo, vals)
            return
        for i, a, b in self._children(depth, lo, hi):
            child = ptrs[i]
            if child == 0:
                child = self._new_indirect(ino)
                self._set_ptr(blk, i, [child])
            self._alloc_tree(ino, child, depth - 1, a, b, out)

    # -- freeing --------------------------------------------------------------
    def free_from(self, ino: Ext2Inode, lo: int) -> None:
        """Free every block mapping logical blocks >= lo, and emptied indirect blocks."""
        self.punch(ino, lo, self.tiers[-1][0] + self.tiers[-1][1])

    def punch(self, ino: Ext2Inode, lo: int, hi: int) -> None:
        """Free the blocks mapping [lo, hi), and indirect blocks left empty
        (truncation, and ext4's punch hole on an indirect-mapped file)."""
        freed: list[int] = []
        for depth, a, b in self._parts(lo, hi):
            if depth == 0:
                freed.extend(p for p in ino.block[a:b] if p)
                ino.block[a:b] = [0] * (b - a)
            else:
                s = _slot(depth)
                if ino.block[s] and self._free_tree(ino.block[s], depth, a, b, freed):
                    ino.block[s] = 0
        if freed:
            for p in freed:
                self.fs.bcache.forget(p)
            self.fs.alloc.free_blocks(freed)
            ino.i_blocks -= len(freed) * self.spb

    def _free_tree(self, blk: int, depth: int, lo: int, hi: int, freed: list[int]) -> bool:
        """Free entries in [lo, hi) below blk; True when blk itself went too (now empty)."""
        orig = self._read_ptrs(blk)
        ptrs = list(orig)
        if depth == 1:
            freed.extend(p for p in ptrs[lo:hi] if p)
            ptrs[lo:hi] = [0] * (hi - lo)
        else:
            for i, a, b in self._children(depth, lo, hi):
                if ptrs[i] and self._free_tree(ptrs[i], depth - 1, a, b, freed):
                    ptrs[i] = 0
        if not any(ptrs):
            freed.append(blk)
            return True
        if tuple(ptrs) == orig:
            return False
        buf = self.fs.bcache.get(blk)
        self.ptrs.pack_into(buf, 0, *ptrs)
        self.fs.bcache.mark_dirty(blk, buf)
        return False
