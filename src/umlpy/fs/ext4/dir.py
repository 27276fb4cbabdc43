"""ext4 directories: checksum tails on linear blocks, and the htree index kept.

Under metadata_csum every leaf block ends in a 12-byte fake dirent
(inode 0, rec_len 12, file type 0xDE) holding crc32c of the block before
it, seeded per inode; it is checked when the block is first read, kept
out of the entries, and recomputed when the block is written back.

A directory is what Linux's is_dx says: indexed (dir_index and
EXT4_INDEX_FL) or linear.  An indexed one goes through htree.py over
InodeBlocks (the block map and the buffer cache): a lookup reads the root,
the index nodes on the hash's path and one leaf, never the whole
directory; adding, removing and renaming keep the index as Linux's namei.c
does.  A linear one is fs/ext2's DirIndex (parsed once, names in a dict)
with the tails; when its single block is full and the filesystem has
dir_index, it becomes indexed (make_indexed_dir).  A multi-block linear
directory stays linear, as in Linux.

A corrupt index (htree.BadDxDir) is handled where Linux handles it:
lookups, removals and renames find the name by a linear scan of every
block (ext4_find_entry's fallback); an add clears the index flag and goes
on linearly, or, under metadata_csum, fails with EUCLEAN
(ext4_add_entry); readdir clears the flag without metadata_csum and lists
linearly (ext4_readdir).
"""
from __future__ import annotations

from collections import OrderedDict
from itertools import chain, islice
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.dir import Dirent, DirIndex, init_block
from umlpy.fs.ext4 import csum, dirhash
from umlpy.fs.ext4 import layout as X
from umlpy.fs.ext4.htree import EOF_64BIT, BadDxDir, DxEntry, Htree
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext4.inode import Ext4Inode

T = TypeVar("T")
HELD = 32        # buffers InodeBlocks remembers: more than one htree change touches


class Ext4DirIndex(DirIndex):
    """A linear directory (or an indexed one read linearly): DirIndex with tails."""

    def __init__(self, dir_inode: Ext4Inode) -> None:
        self.csum = dir_inode.fs.metadata_csum
        super().__init__(dir_inode)

    # -- reading ------------------------------------------------------------------
    def _is_dx_block(self, lblk: int, buf: bytearray) -> bool:
        """An index block of an indexed directory (Linux's test in ext4_read_dirblock):
        it has no tail, and its entries are the fake '..' or empty dirent."""
        if not self.dir.is_dx():
            return False
        return lblk == 0 or L.rec_len_from_disk(L.DIRENT.unpack_from(buf)[1], self.bs) == self.bs

    def _parse(self, lblk: int, buf: bytearray | None, end: int | None = None) -> None:
        if buf is None or not self.csum or self._is_dx_block(lblk, buf):
            super()._parse(lblk, buf)
            return
        fs, pblk, bs = self.dir.fs, self.pblks[lblk], self.bs
        ino, rec_len, name_len, ft, stored = X.DIR_TAIL.unpack_from(buf, bs - X.DIR_TAIL_SIZE)
        if ino or rec_len != X.DIR_TAIL_SIZE or name_len or ft != X.DIR_TAIL_FT:
            raise fs.error(f"inode #{self.dir.ino}: directory block {lblk} has no checksum tail",
                           E.EBADMSG)
        if pblk not in fs.verified:
            if stored != csum.chksum(self.dir.csum_seed(), buf[:bs - X.DIR_TAIL_SIZE]):
                raise fs.error(f"inode #{self.dir.ino}: directory block {lblk} failed checksum",
                               E.EBADMSG)
            fs.verified.add(pblk)
        self._seal(pblk)
        super()._parse(lblk, buf, bs - X.DIR_TAIL_SIZE)

    def _drop_index(self) -> None:
        """Linear changes leave the flag: ext4 clears it only where Ext4Dir does."""

    # -- the tail ------------------------------------------------------------------
    def _seal(self, pblk: int) -> None:
        seal(self.dir, pblk)

    def _new_block(self, pblk: int) -> int:
        buf = self.dir.fs.bcache.zeroed(pblk)
        if not self.csum:
            return self.bs
        put_tail(buf)
        self._seal(pblk)
        return self.bs - X.DIR_TAIL_SIZE

    @classmethod
    def format_new(cls, d: Ext4Inode, pblk: int, parent: int) -> None:
        fs = d.fs
        buf = fs.bcache.zeroed(pblk)
        tail = X.DIR_TAIL_SIZE if fs.metadata_csum else 0
        init_block(buf, d.ino, parent, fs.block_size - tail, fs.has_filetype)
        if tail:
            put_tail(buf)
            seal(d, pblk)


class InodeBlocks:
    """htree's DirBlocks over a directory inode: its block map (looked up once,
    extended by append_block) and the filesystem's buffer cache."""

    def __init__(self, d: Ext4Inode) -> None:
        fs, sb = d.fs, d.fs.sb
        self.dir = d
        self.fs = fs
        self.ino = d.ino
        self.block_size = fs.block_size
        self.hash_seed = dirhash.seed_words(sb.hash_seed)
        self.def_hash_version = sb.def_hash_version
        self.sb_flags = sb.flags
        self.metadata_csum = fs.metadata_csum
        self.largedir = False            # an INCOMPAT feature this driver does not mount
        self.filetype = fs.has_filetype
        self.inodes_count = sb.inodes_count
        self.pblks = fs.bmap.map(d, 0, d.size() // fs.block_size)
        # the buffers handed out last, so that mark_dirty puts back one the cache
        # dropped meanwhile (the cache's own contract: mark_dirty(blk, buf))
        self._held: OrderedDict[int, bytearray] = OrderedDict()

    def nblocks(self) -> int:
        return len(self.pblks)

    def _hold(self, lblk: int, buf: bytearray) -> bytearray:
        self._held[lblk] = buf
        self._held.move_to_end(lblk)
        if len(self._held) > HELD:
            self._held.popitem(last=False)
        return buf

    def read(self, lblk: int) -> bytearray:
        pblk = self.pblks[lblk]
        if not pblk:
            raise self.fs.error(f"inode #{self.ino}: Directory hole found for htree block {lblk}")
        return self._hold(lblk, self.fs.bcache.get(pblk))

    def mark_dirty(self, lblk: int) -> None:
        self.fs.bcache.mark_dirty(self.pblks[lblk], self._held.get(lblk))

    def append_block(self) -> tuple[int, bytearray]:
        d, lblk = self.dir, len(self.pblks)
        got = self.fs.bmap.alloc(d, lblk, lblk + 1)
        if not got:
            raise KernelError(E.ENOSPC)
        self.pblks.append(got[0])
        d.set_size((lblk + 1) * self.block_size)
        return lblk, self._hold(lblk, self.fs.bcache.zeroed(got[0]))

    def set_indexed(self) -> None:
        self.dir.flags |= L.FL_INDEX

    def csum(self, data: bytes) -> int:
        return csum.chksum(self.dir.csum_seed(), data)


class Ext4Dir:
    """An ext4 directory behind fs/ext2's Directory interface (see the module docstring)."""

    def __init__(self, dir_inode: Ext4Inode) -> None:
        self.dir = dir_inode
        self.fs = dir_inode.fs
        self._tree = Htree(InodeBlocks(dir_inode)) if dir_inode.is_dx() else None
        self._lin: Ext4DirIndex | None = None     # the linear view, while it is current
        # the last get's name and answer, until the directory changes: a
        # create asks for its name twice (the lookup, then the add's check)
        # and an unlink too (which inode, then where to remove it)
        self._last: tuple[bytes, Dirent | DxEntry | None] | None = None

    @classmethod
    def format_new(cls, d: Ext4Inode, pblk: int, parent: int) -> None:
        Ext4DirIndex.format_new(d, pblk, parent)

    def _linear(self) -> Ext4DirIndex:
        if self._lin is None:
            self._lin = Ext4DirIndex(self.dir)
        return self._lin

    def _tree_changed(self) -> None:
        self._lin = None         # a fallback's parse of the blocks is stale now
        self._last = None

    def _unindex(self, for_add: bool) -> None:
        """A corrupt index met by an add (or readdir): drop it as Linux does, which
        under metadata_csum an add refuses and readdir does not do."""
        if self.fs.metadata_csum:
            if for_add:
                raise self.fs.error(f"inode #{self.dir.ino}: Directory has corrupted htree index.")
            return
        self.dir.flags &= ~L.FL_INDEX
        self._tree = None
        self._lin = None
        self._last = None

    # -- reading ------------------------------------------------------------------
    def get(self, name: bytes) -> Dirent | DxEntry | None:
        last = self._last
        if last is not None and last[0] == name:
            return last[1]
        if self._tree is None:
            hit = self._linear().get(name)
        else:
            try:
                hit = self._tree.lookup(name)
            except BadDxDir:
                hit = self._linear().get(name)
        self._last = (name, hit)
        return hit

    def _hash_order(self, pos: int) -> Iterator[tuple[bytes, int, int, int]] | None:
        """The index's readdir from pos with each entry's following position; None
        when the index cannot even be started (readdir's fallback)."""
        assert self._tree is not None
        if pos == EOF_64BIT:
            return iter(())
        it = self._tree.readdir(pos)
        try:
            first = next(it, None)
        except BadDxDir:
            self._unindex(for_add=False)
            return None
        if first is None:
            return iter(())
        return _with_next(chain([first], it))

    def cookies(self, pos: int) -> Iterator[tuple[bytes, int, int, int]] | None:
        return None if self._tree is None else self._hash_order(pos)

    def listing(self) -> list[tuple[bytes, int, int]]:
        if self._tree is not None:
            it = self._hash_order(0)
            if it is not None:
                return [(name, ino, dt) for name, ino, dt, _ in islice(it, 2, None)]
        return self._linear().listing()

    def is_empty(self) -> bool:
        if self._tree is not None:
            it = self._hash_order(0)
            if it is not None:
                return next(islice(it, 2, None), None) is None
        return self._linear().is_empty()

    # -- changing -------------------------------------------------------------------
    def add(self, name: bytes, ino: int, ftype: int) -> None:
        self._last = None
        fallback = self._tree is not None
        if self._tree is not None:
            try:
                self._tree.insert(name, ino, ftype)
                self._tree_changed()
                return
            except BadDxDir:
                self._unindex(for_add=True)
        lin = self._linear()
        if lin.nblocks() == 1 and lin.block_with_room(name) is None and not fallback \
                and self.fs.sb.feature_compat & X.COMPAT_DIR_INDEX:
            self._make_indexed(name, ino, ftype)
            return
        lin.add(name, ino, ftype)

    def _make_indexed(self, name: bytes, ino: int, ftype: int) -> None:
        """The full first block becomes the root over two leaves (make_indexed_dir)."""
        blocks = InodeBlocks(self.dir)
        self.fs.bcache.unseal(blocks.pblks[0])     # its leaf tail becomes a dx tail
        self._last = None
        tree = Htree(blocks)
        try:
            tree.make_indexed(name, ino, ftype)
        finally:        # (ENOSPC may come before or after the root is made)
            self._lin = None
            self._tree = tree if self.dir.is_dx() else None

    def remove(self, name: bytes) -> Dirent | DxEntry:
        last, self._last = self._last, None
        if self._tree is not None:
            found = last[1] if last is not None and last[0] == name and isinstance(last[1], DxEntry) else None
            try:
                hit = self._tree.remove(name, found)
                self._tree_changed()
                return hit
            except BadDxDir:
                return self._fallback(lambda lin: lin.remove(name))
        return self._linear().remove(name)

    def retarget(self, name: bytes, ino: int, ftype: int) -> None:
        self._last = None
        if self._tree is not None:
            try:
                self._tree.retarget(name, ino, ftype)
                self._tree_changed()
            except BadDxDir:
                self._fallback(lambda lin: lin.retarget(name, ino, ftype))
            return
        self._linear().retarget(name, ino, ftype)

    def _fallback(self, change: Callable[[Ext4DirIndex], T]) -> T:
        """A change made linearly in an indexed directory (its index is corrupt
        where the name hashes).  The blocks' checksums go in now rather than at
        write-back, since the index reads them as they are."""
        lin = self._linear()
        self._last = None
        try:
            return change(lin)
        finally:
            for pblk in lin.pblks:
                if pblk:
                    self.fs.bcache.unseal(pblk)
            self._lin = None
            if self._tree is not None:
                self._tree.forget_leaves()


def _with_next(it: Iterator[tuple[int, bytes, int, int]]) -> Iterator[tuple[bytes, int, int, int]]:
    """htree's (position, name, inode, file type) as the VFS wants them: (name,
    inode, d_type, position of the next entry), the last one's being the end."""
    ft = L.FT_TO_DT
    prev = next(it, None)
    while prev is not None:
        cur = next(it, None)
        _, name, ino, ftype = prev
        yield name, ino, ft.get(ftype, 0), cur[0] if cur is not None else EOF_64BIT
        prev = cur


def put_tail(buf: bytearray) -> None:
    """The empty checksum tail at the end of a leaf block."""
    X.DIR_TAIL.pack_into(buf, len(buf) - X.DIR_TAIL_SIZE, 0, X.DIR_TAIL_SIZE, 0, X.DIR_TAIL_FT, 0)


def seal(d: Ext4Inode, pblk: int) -> None:
    """Have the cache recompute the tail's checksum whenever pblk is written."""
    fs = d.fs
    bs, end, seed = fs.block_size, fs.block_size - X.DIR_TAIL_SIZE, d.csum_seed()
    fs.bcache.set_sealer(pblk, lambda b: X.U32.pack_into(
        b, bs - 4, csum.chksum(seed, memoryview(b)[:end])))
    fs.verified.add(pblk)
