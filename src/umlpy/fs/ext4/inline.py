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
Writes and truncates of an inline file that still fit in the inode are
made there, system.data's value growing or shrinking in the inode body
(ext4_try_to_write_inline_data, ext4_inline_data_truncate); one that
does not fit, and fallocate, first move the bytes to a block
(ext4_convert_inline_data).  A directory is converted at its first
change, earlier than Linux would (legal: Linux only inlines when it
chooses to), into a one-block directory holding the same entries
(ext4_convert_inline_data_nolock).  Conversion takes the "system.data"
attribute and the flag away.  New files and directories are never inline.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2 import xattr
from umlpy.fs.ext2.dir import ByName, Dirent
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
    """A directory in its inode: read in place; changed after conversion."""

    def __init__(self, d: Ext4Inode) -> None:
        self.dir = d
        self.filetype = d.fs.has_filetype
        self.names: dict[bytes, Dirent] = {}
        head, tail = regions(d)
        self.dots = {b"..": Dirent(0, 0, DOTDOT_SIZE, L.U32.unpack_from(head)[0], L.FT_DIR, b"..")}
        self._parse(head, DOTDOT_SIZE, len(head))
        self._parse(tail, 0, len(tail))

    def _parse(self, buf: bytes, off: int, end: int) -> None:
        """ext4_check_dir_entry over one run of records."""
        while off < end:
            ino, rec_len, name_len, ftype = L.DIRENT.unpack_from(buf, off) if off + 8 <= end \
                else (0, 0, 0, 0)
            if not self.filetype:
                name_len |= ftype << 8
                ftype = 0
            if rec_len < 12 or rec_len & 3 or off + rec_len > end or L.DIRENT_HDR + name_len > rec_len:
                raise KernelError(E.EUCLEAN, f"inline directory {self.dir.ino}: bad entry")
            if ino:
                name = bytes(buf[off + 8:off + 8 + name_len])
                self.names[name] = Dirent(0, off, rec_len, ino, ftype, name)
            off += rec_len

    def add(self, name: bytes, ino: int, ftype: int) -> None:
        self.dir.uninline_dir()._dirx().add(name, ino, ftype)

    def remove(self, name: bytes) -> Dirent:
        return self.dir.uninline_dir()._dirx().remove(name)     # type: ignore[return-value]

    def retarget(self, name: bytes, ino: int, ftype: int) -> None:
        self.dir.uninline_dir()._dirx().retarget(name, ino, ftype)
