"""Block and inode allocation: bitmaps and the free counts that mirror them.

Each group's bitmaps live in the buffer cache; every bit set or cleared
moves the group descriptor's count and the superblock's total with it, so
that what sync() writes is consistent for e2fsck.  Searches use the C
speed of `re` over the bitmap bytes rather than a Python loop per bit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator

from umlpy.abi import errno as E
from umlpy.fs.ext2.bcache import runs
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext2.fs import Ext2Fs


def _first_byte_not(bm: bytes | bytearray, value: bytes, lo: int, hi: int) -> int:
    """The index of the first byte in bm[lo:hi] other than value, or -1
    (lstrip scans in C several times faster than a regex search)."""
    chunk = bm[lo:hi]
    rest = len(chunk.lstrip(value))
    return -1 if rest == 0 else lo + len(chunk) - rest


def find_zero(bm: bytes | bytearray, start: int, end: int) -> int:
    """The first clear bit in [start, end), or -1."""
    i = start
    while i < end and i & 7:
        if not bm[i >> 3] >> (i & 7) & 1:
            return i
        i += 1
    if i >= end:
        return -1
    b = _first_byte_not(bm, b"\xff", i >> 3, (end + 7) >> 3)
    if b < 0:
        return -1
    byte = bm[b]
    i = b * 8 + ((~byte & (byte + 1)).bit_length() - 1)
    return i if i < end else -1


def zero_run(bm: bytes | bytearray, start: int, end: int) -> int:
    """How many clear bits follow from start (itself clear), up to end."""
    i = start
    while i < end and i & 7:
        if bm[i >> 3] >> (i & 7) & 1:
            return i - start
        i += 1
    if i >= end:
        return end - start
    b = _first_byte_not(bm, b"\x00", i >> 3, (end + 7) >> 3)
    if b < 0:
        return end - start
    byte = bm[b]
    i = b * 8 + ((byte & -byte).bit_length() - 1)
    return min(i, end) - start


def count_set(bm: bytes | bytearray, start: int, n: int) -> int:
    lo, hi = start >> 3, (start + n + 7) >> 3
    v = int.from_bytes(bm[lo:hi], "little") >> (start - lo * 8)
    return (v & ((1 << n) - 1)).bit_count()


def set_bits(bm: bytearray, start: int, n: int, value: bool) -> None:
    """Set (or clear) n bits from start: edge bits one by one, whole bytes by slice."""
    end = start + n
    i = start
    while i < end and i & 7:
        _set1(bm, i, value)
        i += 1
    whole = (end - i) >> 3
    if whole:
        bm[i >> 3:(i >> 3) + whole] = (b"\xff" if value else b"\x00") * whole
        i += whole * 8
    while i < end:
        _set1(bm, i, value)
        i += 1


def _set1(bm: bytearray, i: int, value: bool) -> None:
    if value:
        bm[i >> 3] |= 1 << (i & 7)
    else:
        bm[i >> 3] &= ~(1 << (i & 7)) & 0xFF


class Allocator:
    def __init__(self, fs: Ext2Fs) -> None:
        self.fs = fs
        self.sb = fs.sb
        self.ngroups = fs.sb.groups_count

    # -- blocks ---------------------------------------------------------------
    def group_of_block(self, blk: int) -> int:
        return (blk - self.sb.first_data_block) // self.sb.blocks_per_group

    def alloc_blocks(self, goal: int, count: int) -> list[int]:
        """Up to count free blocks, first-fit from goal onwards (fewer when full).

        Runs from the goal come first, so a file written sequentially is
        laid out contiguously, as Linux's goal-directed allocator does.
        """
        sb, fs = self.sb, self.fs
        count = min(count, sb.free_blocks_count)
        out: list[int] = []
        if count <= 0:
            return out
        if not sb.first_data_block <= goal < sb.blocks_count:
            goal = sb.first_data_block
        g0 = self.group_of_block(goal)
        bit0 = goal - sb.group_first_block(g0)
        for k in range(self.ngroups + 1):
            g = (g0 + k) % self.ngroups
            gd = fs.gds[g]
            if gd.free_blocks_count == 0:
                continue
            lo = bit0 if k == 0 else 0
            hi = bit0 if k == self.ngroups else sb.blocks_in_group(g)
            bm = fs.block_bitmap(g)
            view = self._allocatable(g, bm)
            got = 0
            pos = lo
            while len(out) < count and pos < hi:
                z = find_zero(view, pos, hi)
                if z < 0:
                    break
                want = min(count - len(out), gd.free_blocks_count - got)
                n = min(zero_run(view, z, min(hi, z + max(want, 0))), want)
                if n <= 0:
                    break
                set_bits(bm, z, n, True)
                if view is not bm:
                    set_bits(view, z, n, True)
                base = sb.group_first_block(g) + z
                out.extend(range(base, base + n))
                got += n
                pos = z + n
            if got:
                gd.free_blocks_count -= got
                fs.bcache.mark_dirty(gd.block_bitmap, bm)
                fs.gd_dirty(g)
            if len(out) >= count:
                break
        sb.free_blocks_count -= len(out)
        return out

    def _allocatable(self, g: int, bm: bytearray) -> bytearray:
        """The bitmap allocation searches: the group's own, here (ext4's
        journal also keeps blocks freed by the running transaction busy)."""
        return bm

    def group_runs(self, blocks: Iterable[int]) -> Iterator[tuple[int, int, int]]:
        """(group, first bit, count) of each run of blocks, cut at group ends."""
        sb = self.sb
        for start, n in runs(sorted(blocks)):
            while n:
                g = self.group_of_block(start)
                bit = start - sb.group_first_block(g)
                k = min(n, sb.blocks_in_group(g) - bit)
                yield g, bit, k
                start += k
                n -= k

    def free_blocks(self, blocks: Iterable[int]) -> None:
        sb, fs = self.sb, self.fs
        total = 0
        for g, bit, k in self.group_runs(blocks):
            gd = fs.gds[g]
            bm = fs.block_bitmap(g)
            used = count_set(bm, bit, k)
            if used != k:
                printk.pr_warn(f"ext2: freeing {k - used} already free blocks near "
                               f"{sb.group_first_block(g) + bit}")
            set_bits(bm, bit, k, False)
            fs.bcache.mark_dirty(gd.block_bitmap, bm)
            gd.free_blocks_count += used
            fs.gd_dirty(g)
            total += used
        sb.free_blocks_count += total

    # -- inodes ---------------------------------------------------------------
    def _group_for_inode(self, parent_group: int, parent_ino: int, is_dir: bool) -> int:
        """Linux ext2's choice: directories spread out, files near their parent."""
        gds, ng = self.fs.gds, self.ngroups
        if is_dir:
            avg = self.sb.free_inodes_count // ng
            best, best_free = -1, -1
            for g, gd in enumerate(gds):
                if gd.free_inodes_count and gd.free_inodes_count >= avg \
                        and gd.free_blocks_count > best_free:
                    best, best_free = g, gd.free_blocks_count
            if best >= 0:
                return best
        else:
            gd = gds[parent_group]
            if gd.free_inodes_count and gd.free_blocks_count:
                return parent_group
            g = (parent_group + parent_ino) % ng
            i = 1
            while i < ng:
                g = (g + i) % ng
                if gds[g].free_inodes_count and gds[g].free_blocks_count:
                    return g
                i <<= 1
        for k in range(ng):
            g = (parent_group + k) % ng
            if gds[g].free_inodes_count:
                return g
        raise KernelError(E.ENOSPC)

    def alloc_inode(self, parent_ino: int, is_dir: bool) -> int:
        sb, fs = self.sb, self.fs
        if sb.free_inodes_count == 0:
            raise KernelError(E.ENOSPC)
        ipg = sb.inodes_per_group
        g = self._group_for_inode((parent_ino - 1) // ipg, parent_ino, is_dir)
        for k in range(self.ngroups):
            gg = (g + k) % self.ngroups
            gd = fs.gds[gg]
            if not gd.free_inodes_count:
                continue
            bm = fs.inode_bitmap(gg)
            first = sb.first_inode - 1 if gg == 0 else 0
            bit = find_zero(bm, first, ipg)
            if bit < 0:
                continue
            set_bits(bm, bit, 1, True)
            fs.bcache.mark_dirty(gd.inode_bitmap, bm)
            gd.free_inodes_count -= 1
            if is_dir:
                gd.used_dirs_count += 1
            fs.gd_dirty(gg)
            sb.free_inodes_count -= 1
            return gg * ipg + bit + 1
        raise KernelError(E.ENOSPC)

    def free_inode(self, ino: int, is_dir: bool) -> None:
        sb, fs = self.sb, self.fs
        g, bit = divmod(ino - 1, sb.inodes_per_group)
        gd = fs.gds[g]
        bm = fs.inode_bitmap(g)
        if not count_set(bm, bit, 1):
            printk.pr_warn(f"ext2: freeing free inode {ino}")
            return
        set_bits(bm, bit, 1, False)
        fs.bcache.mark_dirty(gd.inode_bitmap, bm)
        gd.free_inodes_count += 1
        if is_dir and gd.used_dirs_count:
            gd.used_dirs_count -= 1
        fs.gd_dirty(g)
        sb.free_inodes_count += 1
