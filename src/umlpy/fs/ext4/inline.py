"""inline_data: small files, symlinks and directories kept in the inode
(Linux's fs/ext4/inline.c; `mke2fs -O inline_data -d` makes them).

An inode with EXT4_INLINE_DATA_FL has no blocks: its bytes are i_block's
60 bytes, then the value of the "system.data" extended attribute in the
inode body (there even when empty).  A directory keeps its parent's
inode number in the first 4 bytes of i_block (".." ; "." is implied),
then ext4_dir_entry_2 records filling the rest of i_block, and another
run of records filling the attribute's value.

Read here as Linux reads it: file data and mmap (the page cache is filled
from these bytes), symlink targets, directory lookups and readdir.
Changes are made in the inode while they fit there, as Linux makes them:
writes and truncates of a file, system.data's value growing or shrinking
in the inode body (ext4_try_to_write_inline_data,
ext4_inline_data_truncate); names added to a directory in the first
record with room, system.data's value grown to all the body can hold
when none has (ext4_try_add_inline_entry, ext4_update_inline_dir),
removed by merging into the record before (ext4_delete_inline_entry),
renamed in place.  What does not fit, and fallocate, first converts:
a file's bytes move to a block (ext4_convert_inline_data), a directory
becomes a one-block directory holding the same entries
(ext4_convert_inline_data_nolock); system.data and the flag go.  New
files and directories are never inline (legal: Linux only inlines when
it chooses to).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2 import xattr
from umlpy.fs.ext2.dir import ByName, Dirent, Directory
from umlpy.fs.ext4 import layout as X
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext4.inode import Ext4Inode

XATTR_INDEX_SYSTEM = 7
DATA_NAME = b"data"
DOTDOT_SIZE = 4             # EXT4_INLINE_DOTDOT_SIZE: the parent's inode number


def _is_data(e: xattr.Entry) -> bool:
    return e.index == XATTR_INDEX_SYSTEM and e.name == DATA_NAME


def _data_entry(inode: Ext4Inode) -> xattr.Entry | None:
    return next((e for e in xattr.ibody_entries(inode) if _is_data(e)), None)


def regions(inode: Ext4Inode) -> tuple[bytes, bytes]:
    """(i_block's 60 bytes, the system.data value)."""
    e = _data_entry(inode)
    if e is None:
        raise KernelError(E.EUCLEAN, f"inode {inode.ino}: inline data without system.data")
    return X.IBLOCK.pack(*inode.block), e.value


def read(inode: Ext4Inode, off: int = 0, n: int | None = None) -> bytes:
    """n bytes of the file from off, within i_size (all of it: n None);
    zeros past what the inode holds (a corrupt i_size costs no memory
    beyond what is asked)."""
    head, tail = regions(inode)
    size = inode.size()
    end = size if n is None else min(size, off + n)
    if off >= end:
        return b""
    return (head + tail)[off:end].ljust(end - off, b"\0")


def store(inode: Ext4Inode, data: bytes) -> bool:
    """The inode's inline bytes become data (which should be i_size long):
    i_block's 60, the rest as system.data's value, grown or shrunk in the
    inode body (ext4_update_inline_data, ext4_inline_data_truncate);
    False, nothing changed, when the body cannot hold them."""
    body = xattr.ibody_entries(inode)
    new = [xattr.Entry(e.index, e.name, data[X.IBLOCK_SIZE:]) if _is_data(e) else e for e in body]
    if not any(_is_data(e) for e in body) or not xattr.set_ibody_entries(inode, new):
        return False
    inode.block = list(X.IBLOCK.unpack(data[:X.IBLOCK_SIZE].ljust(X.IBLOCK_SIZE, b"\0")))
    return True


def drop(inode: Ext4Inode) -> None:
    """system.data leaves the inode body (the inode stops being inline)."""
    xattr.set_ibody_entries(inode, [e for e in xattr.ibody_entries(inode) if not _is_data(e)])


class InlineMap:
    """fs.bmap for inline inodes: no blocks at all."""

    def map(self, ino: Ext4Inode, lo: int, hi: int) -> list[int]:
        return [0] * max(0, hi - lo)

    def alloc(self, ino: Ext4Inode, lo: int, hi: int) -> list[int]:
        raise KernelError(E.EIO, f"inode {ino.ino}: blocks for an inline inode")

    def free_from(self, ino: Ext4Inode, lo: int) -> None:
        return None

    def punch(self, ino: Ext4Inode, lo: int, hi: int) -> None:
        return None


class InlineDir(ByName):
    """A directory in its inode, read and changed in place as Linux's
    inline.c does while its entries fit; converted when they do not."""

    def __init__(self, d: Ext4Inode) -> None:
        self.dir = d
        self.filetype = d.fs.has_filetype
        self.names: dict[bytes, Dirent] = {}
        head, tail = regions(d)
        self.dots = {b"..": Dirent(0, 0, DOTDOT_SIZE, L.U32.unpack_from(head)[0], L.FT_DIR, b"..")}
        self.tail_len = len(tail)
        # the records of i_block (after the parent) and of system.data's value
        self.runs = [self._parse(0, head, DOTDOT_SIZE, len(head)), self._parse(1, tail, 0, len(tail))]

    def _parse(self, run: int, buf: bytes, off: int, end: int) -> list[Dirent]:
        """ext4_check_dir_entry over one run of records."""
        out: list[Dirent] = []
        while off < end:
            ino, rec_len, name_len, ftype = L.DIRENT.unpack_from(buf, off) if off + 8 <= end \
                else (0, 0, 0, 0)
            if not self.filetype:
                name_len |= ftype << 8
                ftype = 0
            if rec_len < 12 or rec_len & 3 or off + rec_len > end or L.DIRENT_HDR + name_len > rec_len:
                raise KernelError(E.EUCLEAN, f"inline directory {self.dir.ino}: bad entry")
            name = bytes(buf[off + 8:off + 8 + name_len])
            e = Dirent(run, off, rec_len, ino, ftype, name)
            out.append(e)
            if ino:
                self.names[name] = e
            off += rec_len
        return out

    def _store(self) -> None:
        """The records back into i_block and system.data (i_size follows)."""
        head, tail = bytearray(X.IBLOCK_SIZE), bytearray(self.tail_len)
        L.U32.pack_into(head, 0, self.dots[b".."].ino)
        for buf, run in zip((head, tail), self.runs):
            for e in run:
                L.DIRENT.pack_into(buf, e.off, e.ino, e.rec_len, len(e.name) if e.ino else 0,
                                   e.ftype if e.ino else 0)
                if e.ino:
                    buf[e.off + 8:e.off + 8 + len(e.name)] = e.name
        if not store(self.dir, bytes(head + tail)):
            raise KernelError(E.EIO, f"inline directory {self.dir.ino}: does not fit")
        self.dir.set_size(X.IBLOCK_SIZE + self.tail_len)

    def _slot(self, need: int) -> tuple[list[Dirent], int] | None:
        """The first record with need bytes to spare (its run and index)."""
        for run in self.runs:
            for i, e in enumerate(run):
                if e.slack() >= need:
                    return run, i
        return None

    def _grow(self, need: int) -> bool:
        """ext4_update_inline_dir: system.data's value takes all the room the
        inode body has, the new space joining its last record."""
        room = xattr.ibody_value_room(self.dir, XATTR_INDEX_SYSTEM, DATA_NAME)
        if room - self.tail_len < need:
            return False
        run = self.runs[1]
        if run:
            run[-1].rec_len += room - self.tail_len
        else:
            run.append(Dirent(1, 0, room, 0, 0, b""))
        self.tail_len = room
        return True

    def _replaced(self) -> Directory | None:
        """The directory that took this one's place since a caller got it
        (an add converted it in the middle of a rename), if any."""
        return None if self.dir._dir is self else self.dir._dirx()

    def add(self, name: bytes, ino: int, ftype: int) -> None:
        """ext4_try_add_inline_entry, else the conversion."""
        if (now := self._replaced()) is not None:
            now.add(name, ino, ftype)
            return
        need = L.rec_len_needed(len(name))
        found = self._slot(need) or (self._grow(need) and self._slot(need)) or None
        if found is None:
            self.dir.uninline_dir()._dirx().add(name, ino, ftype)
            return
        run, i = found
        e = run[i]
        ftype = ftype if self.filetype else 0
        if e.ino:
            used = L.rec_len_needed(len(e.name))
            new = Dirent(e.lblk, e.off + used, e.rec_len - used, ino, ftype, name)
            e.rec_len = used
            run.insert(i + 1, new)
        else:
            e.ino, e.ftype, e.name = ino, ftype, name
            new = e
        self.names[name] = new
        self._store()

    def remove(self, name: bytes) -> Dirent:
        """ext4_delete_inline_entry: merged into the record before, or emptied."""
        if (now := self._replaced()) is not None:
            return now.remove(name)     # type: ignore[return-value]
        e = self.names.pop(name)
        run = self.runs[e.lblk]
        i = run.index(e)
        if i > 0:
            run[i - 1].rec_len += e.rec_len
            del run[i]
        else:
            e.ino = 0
        self._store()
        return e

    def retarget(self, name: bytes, ino: int, ftype: int) -> None:
        if (now := self._replaced()) is not None:
            now.retarget(name, ino, ftype)
            return
        e = self.dots[name] if name == b".." else self.names[name]
        e.ino = ino
        e.ftype = ftype if self.filetype else 0
        self._store()
