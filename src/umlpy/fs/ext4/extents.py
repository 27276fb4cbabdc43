"""Extent trees: ext4's block map, behind fs/ext2/bmap.py's interface.

An inode's tree (Documentation/filesystems/ext4/ifork.rst) is read once,
checked as Linux's __ext4_ext_check does (magic, counts, depth, order,
block ranges, the checksum tail of every tree block) and kept on the
inode as a sorted list of extents (logical start, length, physical start,
unwritten).  Mapping is a bisection of that list.  A change (allocation,
conversion of unwritten blocks that are being written, truncation) edits
the list, merges neighbours that touch logically and physically, and lays
the tree out again over the blocks it already had: leaves filled in
order, as few levels as the count needs (the inode's 4 slots, then index
blocks), blocks allocated when the tree grows and freed when it shrinks.
Only tree blocks whose bytes change are written, and each gets its
checksum (the sealer) when the buffer cache writes it.

ExtentMap and BlockMap both offer map(inode, lo, hi), alloc(inode, lo,
hi), free_from(inode, lo) and punch(inode, lo, hi); InodeMaps picks one
by EXT4_EXTENTS_FL.  fallocate's other edits (preallocate, collapse,
insert) exist for extents alone, as in Linux.  Every edit is all or
nothing: the new list is stored first (which may need tree blocks the
disk does not have: NoSpace, and nothing changed), and only then are the
data blocks it dropped freed.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, NamedTuple

from umlpy.abi import errno as E
from umlpy.fs.ext2.bmap import BlockMap
from umlpy.fs.ext4 import csum
from umlpy.fs.ext4 import layout as X
from umlpy.fs.ext4.inline import InlineMap
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs
    from umlpy.fs.ext4.inode import Ext4Inode


class Extent(NamedTuple):
    lblk: int
    count: int
    pblk: int
    unwritten: bool

    @property
    def end(self) -> int:
        return self.lblk + self.count


class Tree:
    """An inode's extents in order, and the tree blocks that hold them."""
    __slots__ = ("extents", "starts", "nodes")

    def __init__(self, extents: list[Extent], nodes: list[int]) -> None:
        self.extents = extents
        self.starts = [e.lblk for e in extents]
        self.nodes = nodes


class NoSpace(Exception):
    """The tree needs blocks the disk does not have."""


def empty_root() -> list[int]:
    """i_block of an inode with no extents yet: the header alone."""
    raw = bytearray(X.IBLOCK_SIZE)
    X.EXT_HDR.pack_into(raw, 0, X.EXT_MAGIC, 0, X.IBLOCK_MAX, 0, 0)
    return list(X.IBLOCK.unpack(raw))


def _cut(extents: list[Extent], at: int) -> list[Extent]:
    """extents with the one that straddles `at` split in two there."""
    out = []
    for e in extents:
        if e.lblk < at < e.end:
            k = at - e.lblk
            out.append(Extent(e.lblk, k, e.pblk, e.unwritten))
            out.append(Extent(at, e.count - k, e.pblk + k, e.unwritten))
        else:
            out.append(e)
    return out


def merged(extents: list[Extent]) -> list[Extent]:
    """Sorted, with neighbours joined where logical and physical runs touch."""
    out: list[Extent] = []
    for e in sorted(extents):
        if out:
            p = out[-1]
            cap = X.EXT_UNWRITTEN_MAX_LEN if e.unwritten else X.EXT_INIT_MAX_LEN
            if p.end == e.lblk and p.pblk + p.count == e.pblk and p.unwritten == e.unwritten \
                    and p.count + e.count <= cap:
                out[-1] = Extent(p.lblk, p.count + e.count, p.pblk, p.unwritten)
                continue
        out.append(e)
    return out


class ExtentMap:
    def __init__(self, fs: Ext4Fs) -> None:
        self.fs = fs
        self.cap = (fs.block_size - X.EXT_HDR.size) // X.EXT_ENTRY_SIZE   # entries per block
        self.spb = fs.block_size // 512

    # -- reading and checking the tree -----------------------------------------------
    def tree(self, ino: Ext4Inode) -> Tree:
        t = ino.ext_tree
        if t is None:
            extents: list[Extent] = []
            nodes: list[int] = []
            root = X.IBLOCK.pack(*ino.block)
            self._walk(ino, root, X.IBLOCK_MAX, None, 0, 1 << 32, extents, nodes)
            t = ino.ext_tree = Tree(extents, nodes)
        return t

    def _bad(self, ino: Ext4Inode, why: str, errno: int = E.EUCLEAN) -> KernelError:
        return self.fs.error(f"inode #{ino.ino}: extent tree: {why}", errno)

    def _walk(self, ino: Ext4Inode, buf: bytes | bytearray, cap: int, depth_want: int | None,
              lo: int, hi: int, extents: list[Extent], nodes: list[int]) -> None:
        """Check one node whose keys must lie in [lo, hi) and gather what it maps."""
        magic, n, mx, depth, _ = X.EXT_HDR.unpack_from(buf)
        if magic != X.EXT_MAGIC:
            raise self._bad(ino, "bad magic")
        if not 0 < mx <= cap or n > mx or depth > X.EXT_MAX_DEPTH:
            raise self._bad(ino, f"bad header (entries {n}, max {mx}, depth {depth})")
        if depth_want is not None and depth != depth_want:
            raise self._bad(ino, f"depth {depth} where {depth_want} was due")
        if n == 0 and depth > 0:
            raise self._bad(ino, "an empty index node")
        sb = self.fs.sb
        first, last = sb.first_data_block, sb.blocks_count
        if depth == 0:
            prev = lo
            for i in range(n):
                lb, ln, hi16, lo32 = X.EXT_ENTRY.unpack_from(buf, 12 + 12 * i)
                unwritten = ln > X.EXT_INIT_MAX_LEN
                count = ln - X.EXT_INIT_MAX_LEN if unwritten else ln
                p = hi16 << 32 | lo32
                if count == 0 or lb < prev or lb + count > hi or p < first or p + count > last:
                    raise self._bad(ino, f"bad extent {lb}+{count} at block {p}")
                extents.append(Extent(lb, count, p, unwritten))
                prev = lb + count
            return
        keys = []
        for i in range(n):
            lb, leaf_lo, leaf_hi, _ = X.EXT_INDEX.unpack_from(buf, 12 + 12 * i)
            keys.append((lb, leaf_hi << 32 | leaf_lo))
        for i, (lb, child) in enumerate(keys):
            end = keys[i + 1][0] if i + 1 < n else hi
            if lb < lo or lb >= end or not first <= child < last:
                raise self._bad(ino, f"bad index entry {lb} -> {child}")
            cbuf = self.fs.bcache.get(child)
            self._check_tail(ino, child, cbuf)
            nodes.append(child)
            self._walk(ino, cbuf, self.cap, depth - 1, lb, end, extents, nodes)

    def _tail_off(self, buf: bytes | bytearray) -> int:
        return X.EXT_HDR.size + X.EXT_ENTRY_SIZE * X.EXT_HDR.unpack_from(buf)[2]

    def _check_tail(self, ino: Ext4Inode, blk: int, buf: bytearray) -> None:
        if not self.fs.metadata_csum or blk in self.fs.verified:
            return
        off = self._tail_off(buf)
        if off + 4 > len(buf):
            raise self._bad(ino, f"block {blk}: no room for its checksum")
        if X.U32.unpack_from(buf, off)[0] != csum.chksum(ino.csum_seed(), buf[:off]):
            raise self._bad(ino, f"block {blk}: checksum invalid", E.EBADMSG)
        self.fs.verified.add(blk)

    # -- the interface inode.py uses ---------------------------------------------------
    def extent_at(self, ino: Ext4Inode, lblk: int) -> Extent | None:
        """The extent holding logical block lblk, written or not."""
        t = self.tree(ino)
        i = bisect_right(t.starts, lblk) - 1
        return t.extents[i] if i >= 0 and t.extents[i].end > lblk else None

    def map(self, ino: Ext4Inode, lo: int, hi: int) -> list[int]:
        """Physical block of each logical block in [lo, hi); 0 for holes and
        unwritten extents (which read as zeros)."""
        t = self.tree(ino)
        out = [0] * (hi - lo)
        i = max(0, bisect_right(t.starts, lo) - 1)
        for e in t.extents[i:]:
            if e.lblk >= hi:
                break
            a, b = max(e.lblk, lo), min(e.end, hi)
            if a < b and not e.unwritten:
                out[a - lo:b - lo] = range(e.pblk + a - e.lblk, e.pblk + b - e.lblk)
        return out

    def alloc(self, ino: Ext4Inode, lo: int, hi: int) -> list[int]:
        """Map [lo, hi) for writing: allocate holes, make unwritten extents
        written; a prefix of the range when the disk fills."""
        t = self.tree(ino)
        work = _cut(_cut(list(t.extents), lo), hi)
        inside = [e for e in work if lo <= e.lblk < hi]
        kept = [e for e in work if not lo <= e.lblk < hi]
        out: list[int] = []
        new_blocks: list[int] = []
        pos, full = lo, False
        goal = self._goal(ino, t, lo)
        for e in inside + [Extent(hi, 0, 0, False)]:
            if full:
                kept.append(e)
                continue
            if e.lblk > pos:
                got = self.fs.alloc.alloc_blocks(goal, e.lblk - pos)
                new_blocks += got
                for run in _runs(got):
                    kept.append(Extent(pos, len(run), run[0], False))
                    pos += len(run)
                out += got
                if pos < e.lblk:
                    full = True
                    kept.append(e)
                    continue
                if got:
                    goal = got[-1] + 1
            if e.count:
                kept.append(Extent(e.lblk, e.count, e.pblk, False))
                out += range(e.pblk, e.pblk + e.count)
                pos, goal = e.end, e.pblk + e.count
        kept = [e for e in kept if e.count]
        try:
            self._commit(ino, t, merged(kept), new_blocks, [])
        except NoSpace:
            return []
        return out

    def free_from(self, ino: Ext4Inode, lo: int) -> None:
        """Free every block mapping logical blocks >= lo; the tree shrinks with them."""
        self.punch(ino, lo, 1 << 32)

    def punch(self, ino: Ext4Inode, lo: int, hi: int) -> None:
        """Free the blocks mapping [lo, hi) (ext4_ext_remove_space); splitting
        an extent may need a tree block: NoSpace, and nothing changed."""
        t = self.tree(ino)
        if not any(e.lblk < hi and e.end > lo for e in t.extents):
            return
        keep: list[Extent] = []
        freed: list[int] = []
        for e in _cut(_cut(list(t.extents), lo), hi):
            if lo <= e.lblk < hi:
                freed += range(e.pblk, e.pblk + e.count)
            else:
                keep.append(e)
        self._commit(ino, t, keep, [], freed)

    def preallocate(self, ino: Ext4Inode, lo: int, hi: int,
                    unwrite: tuple[int, int] = (0, 0)) -> None:
        """fallocate's allocation (EXT4_GET_BLOCKS_CREATE_UNWRIT_EXT): every
        hole in [lo, hi) gets unwritten extents; the written extents inside
        unwrite (zero range's CONVERT_UNWRITTEN) turn unwritten, so they
        read as zeros on their own blocks.  All or nothing: ENOSPC."""
        t = self.tree(ino)
        ua, ub = unwrite
        out: list[Extent] = []
        holes: list[tuple[int, int]] = []
        pos = lo
        for e in _cut(_cut(_cut(_cut(list(t.extents), lo), hi), ua), ub):
            if lo <= e.lblk < hi:
                if e.lblk > pos:
                    holes.append((pos, e.lblk))
                pos = e.end
                if ua <= e.lblk < ub and not e.unwritten:
                    cap = X.EXT_UNWRITTEN_MAX_LEN      # a full written extent is one too long
                    out += [Extent(e.lblk + k, min(cap, e.count - k), e.pblk + k, True)
                            for k in range(0, e.count, cap)]
                    continue
            out.append(e)
        if pos < hi:
            holes.append((pos, hi))
        need = sum(b - a for a, b in holes)
        new = self.fs.alloc.alloc_blocks(self._goal(ino, t, lo), need) if need else []
        if len(new) < need:
            self.fs.alloc.free_blocks(new)
            raise KernelError(E.ENOSPC)
        it = iter(new)
        for a, b in holes:
            for run in _runs([next(it) for _ in range(b - a)], X.EXT_UNWRITTEN_MAX_LEN):
                out.append(Extent(a, len(run), run[0], True))
                a += len(run)
        self._commit(ino, t, merged(out), new, [])

    def collapse(self, ino: Ext4Inode, lo: int, hi: int) -> None:
        """FALLOC_FL_COLLAPSE_RANGE: free [lo, hi) and move every extent
        after it down by hi - lo (ext4_ext_shift_extents, left)."""
        t = self.tree(ino)
        n = hi - lo
        keep: list[Extent] = []
        freed: list[int] = []
        for e in _cut(_cut(list(t.extents), lo), hi):
            if e.end <= lo:
                keep.append(e)
            elif e.lblk >= hi:
                keep.append(e._replace(lblk=e.lblk - n))
            else:
                freed += range(e.pblk, e.pblk + e.count)
        self._commit(ino, t, merged(keep), [], freed)

    def insert(self, ino: Ext4Inode, at: int, n: int) -> None:
        """FALLOC_FL_INSERT_RANGE: split the extent at `at` and move it and
        everything after up by n blocks; EINVAL when the last extent would
        pass the largest logical block, as ext4_ext_shift_extents checks."""
        t = self.tree(ino)
        work = _cut(list(t.extents), at)
        if work and work[-1].end + n > X.EXT_MAX_BLOCKS:
            raise KernelError(E.EINVAL)
        self._commit(ino, t, merged([e._replace(lblk=e.lblk + n) if e.lblk >= at else e
                                     for e in work]), [], [])

    def _commit(self, ino: Ext4Inode, t: Tree, extents: list[Extent], new: list[int],
                freed: list[int]) -> None:
        """Store an edited extent list that maps the just-allocated blocks
        new and no longer maps freed; on NoSpace give new back and leave
        everything as it was."""
        ino.i_blocks += len(new) * self.spb
        try:
            self._store(ino, t, extents)
        except NoSpace:
            ino.i_blocks -= len(new) * self.spb
            self.fs.alloc.free_blocks(new)
            raise
        if new:
            ino.set_goal(new[-1] + 1)
        if freed:
            for b in freed:
                self.fs.bcache.forget(b)
            self.fs.alloc.free_blocks(freed)
            ino.i_blocks -= len(freed) * self.spb
    def _goal(self, ino: Ext4Inode, t: Tree, lblk: int) -> int:
        """ext4_ext_find_goal: in line with the extent before lblk, else the inode's goal."""
        i = bisect_right(t.starts, lblk) - 1
        if i >= 0:
            e = t.extents[i]
            return e.pblk + (lblk - e.lblk)
        return ino.goal()

    # -- laying the tree out ------------------------------------------------------------
    def _shape(self, n: int) -> list[int]:
        """Nodes per level below the root, leaves first, for n extents."""
        levels: list[int] = []
        count = n
        while count > X.IBLOCK_MAX:
            count = -(-count // self.cap)
            levels.append(count)
        if len(levels) > X.EXT_MAX_DEPTH:
            raise NoSpace
        return levels

    def _store(self, ino: Ext4Inode, t: Tree, extents: list[Extent]) -> None:
        """Make the tree hold exactly extents, reusing, adding or freeing tree blocks."""
        levels = self._shape(len(extents))
        need = sum(levels)
        have = t.nodes
        fs = self.fs
        if need > len(have):
            got = fs.alloc.alloc_blocks(ino.goal(), need - len(have))
            if len(got) < need - len(have):
                fs.alloc.free_blocks(got)
                raise NoSpace
            for b in got:
                fs.bcache.zeroed(b)
            ino.i_blocks += len(got) * self.spb
            have = have + got
        elif need < len(have):
            for b in have[need:]:
                fs.bcache.forget(b)
            fs.alloc.free_blocks(have[need:])
            ino.i_blocks -= (len(have) - need) * self.spb
            have = have[:need]
        # entries of the current level: (first logical block, packed entry)
        entries = [(e.lblk, X.EXT_ENTRY.pack(
            e.lblk, e.count + (X.EXT_INIT_MAX_LEN if e.unwritten else 0),
            e.pblk >> 32, e.pblk & 0xFFFFFFFF)) for e in extents]
        nxt = 0
        for depth, count in enumerate(levels):
            up = []
            for k in range(count):
                chunk = entries[k * self.cap:(k + 1) * self.cap]
                blk = have[nxt]
                nxt += 1
                self._write_node(ino, blk, depth, chunk)
                up.append((chunk[0][0], X.EXT_INDEX.pack(chunk[0][0], blk & 0xFFFFFFFF,
                                                          blk >> 32, 0)))
            entries = up
        root = bytearray(X.IBLOCK_SIZE)
        X.EXT_HDR.pack_into(root, 0, X.EXT_MAGIC, len(entries), X.IBLOCK_MAX, len(levels), 0)
        root[12:12 + 12 * len(entries)] = b"".join(e for _, e in entries)
        ino.block = list(X.IBLOCK.unpack(root))
        t.extents = extents
        t.starts = [e.lblk for e in extents]
        t.nodes = have

    def _write_node(self, ino: Ext4Inode, blk: int, depth: int,
                    chunk: list[tuple[int, bytes]]) -> None:
        fs = self.fs
        body = X.EXT_HDR.pack(X.EXT_MAGIC, len(chunk), self.cap, depth, 0) \
            + b"".join(e for _, e in chunk)
        end = X.EXT_HDR.size + X.EXT_ENTRY_SIZE * self.cap
        buf = fs.bcache.get(blk)
        new = body + bytes(end - len(body))
        if buf[:end] != new:
            buf[:end] = new
            fs.bcache.mark_dirty(blk, buf)
        if fs.metadata_csum:
            seed = ino.csum_seed()
            fs.bcache.set_sealer(blk, lambda b: X.U32.pack_into(
                b, end, csum.chksum(seed, memoryview(b)[:end])))
            fs.verified.add(blk)


def _runs(blocks: list[int], cap: int = X.EXT_INIT_MAX_LEN) -> list[list[int]]:
    """blocks cut into physically contiguous runs of at most one extent's
    length (cap: shorter for unwritten extents)."""
    out: list[list[int]] = []
    for b in blocks:
        if out and out[-1][-1] + 1 == b and len(out[-1]) < cap:
            out[-1].append(b)
        else:
            out.append([b])
    return out


class InodeMaps:
    """fs.bmap on ext4: extent-mapped inodes through ExtentMap, inline ones
    (no blocks) through InlineMap, the others (from ext2/ext3 days)
    through the indirect BlockMap."""

    def __init__(self, fs: Ext4Fs) -> None:
        self.extent = ExtentMap(fs)
        self.indirect = BlockMap(fs)
        self.inline = InlineMap()

    def _of(self, ino: Ext4Inode) -> ExtentMap | BlockMap | InlineMap:
        if ino.flags & X.FL_INLINE_DATA:
            return self.inline
        return self.extent if ino.flags & X.FL_EXTENTS else self.indirect

    def map(self, ino: Ext4Inode, lo: int, hi: int) -> list[int]:
        return self._of(ino).map(ino, lo, hi)

    def alloc(self, ino: Ext4Inode, lo: int, hi: int) -> list[int]:
        return self._of(ino).alloc(ino, lo, hi)

    def free_from(self, ino: Ext4Inode, lo: int) -> None:
        self._of(ino).free_from(ino, lo)

    def punch(self, ino: Ext4Inode, lo: int, hi: int) -> None:
        self._of(ino).punch(ino, lo, hi)
