"""Directory blocks: linear ext2 dirents, indexed in memory.

A directory is parsed once into entries per block and a dict by name, so
that lookups are O(1) and inserting into a directory of 10000 names does
not rescan every block.  On disk the format is Linux's: entries are
inserted by splitting the slack of an existing entry (first fit from the
start), removed by merging into the previous entry (or clearing the inode
of a block's first entry), and the directory grows by whole blocks.
htree (dir_index) directories are read as linear ones, like Linux's ext2;
any change clears their index flag so e2fsck does not find a stale tree.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Protocol

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.bcache import extents
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext2.inode import Ext2Inode


class Dirent:
    __slots__ = ("lblk", "off", "rec_len", "ino", "ftype", "name")

    def __init__(self, lblk: int, off: int, rec_len: int, ino: int, ftype: int, name: bytes) -> None:
        self.lblk = lblk
        self.off = off
        self.rec_len = rec_len
        self.ino = ino
        self.ftype = ftype
        self.name = name

    def slack(self) -> int:
        """Bytes a new entry could take from this one."""
        if self.ino == 0:
            return self.rec_len
        return self.rec_len - L.rec_len_needed(len(self.name))


class Entry(Protocol):
    """A name's entry as a directory finds it: the inode it leads to."""
    ino: int


class Directory(Protocol):
    """What an inode asks of its directory contents (fs.dir_class): ext2's DirIndex,
    ext4's linear-or-indexed directory."""

    def __init__(self, dir_inode: Ext2Inode) -> None: ...
    @classmethod
    def format_new(cls, d: Ext2Inode, pblk: int, parent: int) -> None: ...
    def get(self, name: bytes) -> Entry | None: ...
    def listing(self) -> list[tuple[bytes, int, int]]: ...
    def cookies(self, pos: int) -> Iterator[tuple[bytes, int, int, int]] | None: ...
    def is_empty(self) -> bool: ...
    def add(self, name: bytes, ino: int, ftype: int) -> None: ...
    def remove(self, name: bytes) -> Entry: ...
    def retarget(self, name: bytes, ino: int, ftype: int) -> None: ...


class ByName:
    """The reading half of a directory whose entries are all in memory, by
    name ('.' and '..' apart): ext2's DirIndex, ext4's inline directory."""
    names: dict[bytes, Dirent]

    def get(self, name: bytes) -> Dirent | None:
        return self.names.get(name)

    def listing(self) -> list[tuple[bytes, int, int]]:
        ft = L.FT_TO_DT
        return [(n, e.ino, ft.get(e.ftype, 0)) for n, e in self.names.items()]

    def cookies(self, pos: int) -> Iterator[tuple[bytes, int, int, int]] | None:
        """Positions of the filesystem's own (Inode.readdir): none, the VFS numbers
        the listing."""
        return None

    def is_empty(self) -> bool:
        return not self.names


class DirIndex(ByName):
    def __init__(self, dir_inode: Ext2Inode) -> None:
        self.dir = dir_inode
        fs = dir_inode.fs
        self.bs = fs.block_size
        self.filetype = fs.has_filetype
        self.names: dict[bytes, Dirent] = {}
        self.dots: dict[bytes, Dirent] = {}
        nblocks = dir_inode.size() // self.bs
        self.pblks = fs.bmap.map(dir_inode, 0, nblocks)
        self.blocks: list[list[Dirent]] = []
        self.room: list[int] = []
        self._load()

    # -- reading --------------------------------------------------------------
    def _load(self) -> None:
        bc = self.dir.fs.bcache
        for _, count, first in extents(self.pblks):
            # one device read per run of physically contiguous blocks
            for buf in bc.get_run(first, count) if first else [None] * count:
                self._parse(len(self.blocks), buf)

    def _parse(self, lblk: int, buf: bytearray | None, end: int | None = None) -> None:
        """Index the entries of block lblk that lie before end (the block's end
        unless a subclass keeps a tail there)."""
        ents: list[Dirent] = []
        self.blocks.append(ents)
        if buf is None:       # a hole: nothing there, nothing may go there
            self.room.append(0)
            return
        off, bs = 0, self.bs if end is None else end
        while off < bs:
            ino, rec_len, name_len, ftype = L.DIRENT.unpack_from(buf, off)
            rec_len = L.rec_len_from_disk(rec_len, bs)
            if not self.filetype:
                name_len |= ftype << 8
                ftype = 0
            if rec_len < 12 or rec_len & 3 or off + rec_len > bs \
                    or L.DIRENT_HDR + name_len > rec_len:
                raise KernelError(E.EIO, f"ext2: bad dirent in directory {self.dir.ino}")
            name = bytes(buf[off + 8:off + 8 + name_len])
            e = Dirent(lblk, off, rec_len, ino, ftype, name)
            ents.append(e)
            if ino:
                if lblk == 0 and name in (b".", b"..") and len(ents) <= 2:
                    self.dots[name] = e
                else:
                    self.names[name] = e
            off += rec_len
        self.room.append(max(e.slack() for e in ents))

    # -- changing -------------------------------------------------------------
    def _store(self, e: Dirent) -> None:
        """Write e's header and name into its block."""
        fs = self.dir.fs
        blk = self.pblks[e.lblk]
        buf = fs.bcache.get(blk)
        n = len(e.name)
        L.DIRENT.pack_into(buf, e.off, e.ino, L.rec_len_to_disk(e.rec_len), n & 0xFF,
                           e.ftype if self.filetype else n >> 8)
        buf[e.off + 8:e.off + 8 + n] = e.name
        fs.bcache.mark_dirty(blk, buf)

    def _changed(self, lblk: int) -> None:
        self.room[lblk] = max((e.slack() for e in self.blocks[lblk]), default=0)
        self._drop_index()

    def _drop_index(self) -> None:
        """ext2 does not keep an htree up to date: a change clears the index flag."""
        self.dir.flags &= ~L.FL_INDEX

    def nblocks(self) -> int:
        return len(self.pblks)

    def block_with_room(self, name: bytes) -> int | None:
        """The first block an entry called name fits in (first fit), None if none."""
        need = L.rec_len_needed(len(name))
        return next((lblk for lblk, room in enumerate(self.room) if room >= need), None)

    def add(self, name: bytes, ino: int, ftype: int) -> None:
        need = L.rec_len_needed(len(name))
        if not self.filetype:
            ftype = 0
        lblk = self.block_with_room(name)
        if lblk is None:
            self._grow(name, ino, ftype)
            return
        ents = self.blocks[lblk]
        for i, e in enumerate(ents):
            if e.ino == 0 and e.rec_len >= need:
                e.ino, e.ftype, e.name = ino, ftype, name
                self._store(e)
                new = e
                break
            used = L.rec_len_needed(len(e.name))
            if e.ino and e.rec_len - used >= need:
                new = Dirent(lblk, e.off + used, e.rec_len - used, ino, ftype, name)
                e.rec_len = used
                ents.insert(i + 1, new)
                self._store(e)
                self._store(new)
                break
        else:
            raise KernelError(E.EIO, "ext2: directory room miscounted")
        self.names[name] = new
        self._changed(lblk)

    def _grow(self, name: bytes, ino: int, ftype: int) -> None:
        d = self.dir
        lblk = len(self.pblks)
        got = d.fs.bmap.alloc(d, lblk, lblk + 1)
        if not got:
            raise KernelError(E.ENOSPC)
        space = self._new_block(got[0])
        self.pblks.append(got[0])
        e = Dirent(lblk, 0, space, ino, ftype, name)
        self.blocks.append([e])
        self.room.append(0)
        self._store(e)
        d.set_size((lblk + 1) * self.bs)
        self.names[name] = e
        self._changed(lblk)

    def _new_block(self, pblk: int) -> int:
        """Zero a block just added to the directory; the bytes entries may use."""
        self.dir.fs.bcache.zeroed(pblk)
        return self.bs

    @classmethod
    def format_new(cls, d: Ext2Inode, pblk: int, parent: int) -> None:
        """The first block of a new directory d: '.' and '..' taking the whole block."""
        fs = d.fs
        init_block(fs.bcache.zeroed(pblk), d.ino, parent, fs.block_size, fs.has_filetype)

    def remove(self, name: bytes) -> Dirent:
        e = self.names.pop(name)
        ents = self.blocks[e.lblk]
        i = next(k for k, x in enumerate(ents) if x is e)
        if i > 0:
            prev = ents[i - 1]
            prev.rec_len += e.rec_len
            del ents[i]
            self._store(prev)
        else:
            e.ino = 0
            self._store(e)
        self._changed(e.lblk)
        return e

    def retarget(self, name: bytes, ino: int, ftype: int) -> None:
        """Point an existing name (or '..') at another inode."""
        e = self.dots[name] if name == b".." else self.names[name]
        e.ino = ino
        e.ftype = ftype if self.filetype else 0
        self._store(e)
        self._changed(e.lblk)


def init_block(buf: bytearray, ino: int, parent: int, space: int, filetype: bool) -> None:
    """'.' and '..' taking the first space bytes of a new directory's first block."""
    ft = L.FT_DIR if filetype else 0
    L.DIRENT.pack_into(buf, 0, ino, 12, 1, ft)
    buf[8:9] = b"."
    L.DIRENT.pack_into(buf, 12, parent, L.rec_len_to_disk(space - 12), 2, ft)
    buf[20:22] = b".."
