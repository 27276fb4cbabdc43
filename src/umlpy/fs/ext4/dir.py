"""ext4 directory blocks: checksum tails, and htree directories read linearly.

Under metadata_csum every leaf block ends in a 12-byte fake dirent
(inode 0, rec_len 12, file type 0xDE) holding crc32c of the block before
it, seeded per inode; it is checked when the block is first read, kept
out of the entries, and recomputed when the block is written back.

An htree directory (dir_index, EXT4_INDEX_FL) is read by scanning every
block: its index blocks (block 0, and blocks whose first dirent is an
empty one spanning the block, Linux's test) hold no names.  Until an
htree module keeps the index up to date, the first change drops it, as
Linux's ext4_add_entry does when it cannot use the index: the flag is
cleared and, under metadata_csum, each index block becomes an ordinary
leaf (its last dirent shortened by 12 bytes to make room for the tail),
so e2fsck finds a valid linear directory.  A module that maintains the
index subclasses Ext4DirIndex (fs.dir_class) and overrides _unindex and
the changing methods.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.dir import Dirent, DirIndex, init_block
from umlpy.fs.ext4 import csum
from umlpy.fs.ext4 import layout as X

if TYPE_CHECKING:
    from umlpy.fs.ext4.inode import Ext4Inode


class Ext4DirIndex(DirIndex):
    def __init__(self, dir_inode: Ext4Inode) -> None:
        self.csum = dir_inode.fs.metadata_csum
        self.dx: set[int] = set()      # logical blocks still formatted as htree nodes
        super().__init__(dir_inode)

    # -- reading ------------------------------------------------------------------
    def _is_dx_block(self, lblk: int, buf: bytearray) -> bool:
        if not self.dir.is_dx():
            return False
        return lblk == 0 or L.rec_len_from_disk(L.DIRENT.unpack_from(buf)[1], self.bs) == self.bs

    def _parse(self, lblk: int, buf: bytearray | None, end: int | None = None) -> None:
        if buf is None or not self.csum:
            super()._parse(lblk, buf)
            return
        if self._is_dx_block(lblk, buf):
            self.dx.add(lblk)
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

    # -- changing: the index goes first ------------------------------------------------
    def _unindex(self) -> None:
        """Turn the directory into a plain linear one (see the module docstring)."""
        if not self.dir.flags & L.FL_INDEX and not self.dx:
            return
        fs = self.dir.fs
        for lblk in sorted(self.dx):
            last: Dirent = self.blocks[lblk][-1]
            if last.rec_len - L.rec_len_needed(len(last.name)) * bool(last.ino) \
                    < X.DIR_TAIL_SIZE:
                raise fs.error(f"inode #{self.dir.ino}: htree block {lblk} is full")
            last.rec_len -= X.DIR_TAIL_SIZE
            self._store(last)
            pblk = self.pblks[lblk]
            buf = fs.bcache.get(pblk)
            put_tail(buf)
            fs.bcache.mark_dirty(pblk, buf)
            self._seal(pblk)
            self._changed(lblk)
        self.dx.clear()
        self.dir.flags &= ~L.FL_INDEX

    def add(self, name: bytes, ino: int, ftype: int) -> None:
        self._unindex()
        super().add(name, ino, ftype)

    def remove(self, name: bytes) -> Dirent:
        self._unindex()
        return super().remove(name)

    def retarget(self, name: bytes, ino: int, ftype: int) -> None:
        self._unindex()
        super().retarget(name, ino, ftype)


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
