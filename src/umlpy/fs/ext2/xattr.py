"""Extended attributes on disk: the EA block and the inode body.

Two places hold an inode's attributes, in the format Linux and e2fsprogs
share (fs/ext2/xattr.c, lib/ext2fs/ext_attr.c):

- the block i_file_acl names: a header (magic, refcount, h_blocks = 1,
  hash of the entries), entries sorted by (name index, name length, name),
  a zero word, free space, then the values packed against the end of the
  block, each padded to 4 bytes, with offsets from the start of the block;
- in a large inode, the space after i_extra_isize: the magic, entries, a
  zero word, values packed against the end of the inode, with offsets from
  the first entry.  Linux's ext2 neither reads nor writes these; ext4 and
  `mke2fs -d` do, so they are read here and kept.

Writes go where Linux's ext2 puts them, into the block: a block shared
by several inodes (h_refcount > 1) is copied first, an emptied one is
freed.  A name that was in the inode body and is set again moves to the
block; one that is removed leaves the body.  An attribute is parsed into
an Entry and the whole area is packed anew on every change, which yields
the layout Linux's in-place edits keep (entries sorted, values packed
without gaps) and recomputes every hash e2fsck verifies.

Only the user., trusted. and security. namespaces (indexes 1, 4, 6) are
served; the others (POSIX ACLs 2 and 3, ext4's system. 7, ...) are kept
byte for byte and not listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.fs.ext2.inode import Ext2Inode

PREFIXES = {L.XATTR_INDEX_USER: b"user.", L.XATTR_INDEX_TRUSTED: b"trusted.",
            L.XATTR_INDEX_SECURITY: b"security."}
NAME_HASH_SHIFT = 5
VALUE_HASH_SHIFT = 16
BLOCK_HASH_SHIFT = 16
_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class Entry:
    index: int      # e_name_index
    name: bytes     # the name without its namespace prefix
    value: bytes

    @property
    def key(self) -> tuple[int, int, bytes]:
        """Linux's order of entries in a block (see ext2_xattr_set)."""
        return self.index, len(self.name), self.name

    @property
    def full_name(self) -> bytes:
        return PREFIXES[self.index] + self.name


def _rotl(h: int, shift: int) -> int:
    return ((h << shift) | (h >> (32 - shift))) & _MASK


def entry_hash(name: bytes, value: bytes) -> int:
    """e_hash: ext2_xattr_hash_entry over the name, then the zero-padded value words.

    Name bytes count as unsigned, as Linux (built with -funsigned-char since
    6.2) and e2fsprogs 1.47 hash them; e2fsck also accepts the old signed
    hash of bytes >= 0x80 that x86 kernels wrote before.
    """
    h = 0
    for c in name:
        h = _rotl(h, NAME_HASH_SHIFT) ^ c
    if value:
        padded = value.ljust(L.xattr_pad(len(value)), b"\0")
        for (word,) in L.U32.iter_unpack(padded):
            h = _rotl(h, VALUE_HASH_SHIFT) ^ word
    return h


def block_hash(hashes: list[int]) -> int:
    """h_hash (ext2_xattr_rehash): 0, "never share", when some entry hash is 0."""
    h = 0
    for eh in hashes:
        if eh == 0:
            return 0
        h = _rotl(h, BLOCK_HASH_SHIFT) ^ eh
    return h


def block_header(buf: bytes | bytearray) -> tuple[int, int] | None:
    """(refcount, hash) of an EA block, None when the header is bad (as Linux checks it)."""
    magic, refcount, blocks, h = L.XATTR_HEADER.unpack_from(buf)
    if magic != L.XATTR_MAGIC or blocks != 1:
        return None
    return refcount, h


def _entry_size(name_len: int) -> int:
    return L.xattr_pad(L.XATTR_ENTRY.size + name_len)


def parse(buf: bytes | bytearray, first: int, base: int, end: int) -> list[Entry]:
    """The entries from offset first up to the zero word; value offsets count from base."""
    out: list[Entry] = []
    off = first
    while True:
        if off + 4 > end:
            raise KernelError(E.EIO, "ext2: xattr entries run past their area")
        if L.U32.unpack_from(buf, off)[0] == 0:
            return out
        nlen, index, voff, inum, vsize, _ = L.XATTR_ENTRY.unpack_from(buf, off)
        nxt = off + _entry_size(nlen)
        if nxt >= end or inum or base + voff + vsize > end:
            raise KernelError(E.EIO, "ext2: bad xattr entry")
        name = bytes(buf[off + L.XATTR_ENTRY.size:off + L.XATTR_ENTRY.size + nlen])
        value = bytes(buf[base + voff:base + voff + vsize]) if vsize else b""
        out.append(Entry(index, name, value))
        off = nxt


def pack(entries: list[Entry], size: int, first: int, base: int) -> tuple[bytearray, int] | None:
    """An area of size bytes holding entries from first, values packed from the end.

    Returns the area (its header bytes before first left zero) and the
    block hash of the entries, or None when they do not fit.
    """
    need = first + sum(_entry_size(len(e.name)) + L.xattr_pad(len(e.value)) for e in entries) + 4
    if need > size:
        return None
    buf = bytearray(size)
    off, vend = first, size
    hashes = []
    for e in entries:
        voff = 0
        if e.value:
            vend -= L.xattr_pad(len(e.value))
            buf[vend:vend + len(e.value)] = e.value
            voff = vend - base
        h = entry_hash(e.name, e.value)
        hashes.append(h)
        L.XATTR_ENTRY.pack_into(buf, off, len(e.name), e.index, voff, 0, len(e.value), h)
        buf[off + L.XATTR_ENTRY.size:off + L.XATTR_ENTRY.size + len(e.name)] = e.name
        off += _entry_size(len(e.name))
    return buf, block_hash(hashes)


def split_name(name: bytes) -> tuple[int, bytes]:
    """(name index, rest) of a full name; EOPNOTSUPP outside the namespaces served."""
    for index, prefix in PREFIXES.items():
        if name.startswith(prefix):
            return index, name[len(prefix):]
    raise KernelError(E.EOPNOTSUPP)


# -- the inode body ---------------------------------------------------------------
def _ibody_start(inode: Ext2Inode) -> int | None:
    """Offset in the raw inode of the in-inode xattr area, None when there is none."""
    ei = inode.extra_isize
    start = L.GOOD_OLD_INODE_SIZE + ei
    if ei == 0 or start + L.XATTR_IBODY_HEADER_SIZE + 4 > len(inode._raw):
        return None
    return start


def has_ibody(inode: Ext2Inode) -> bool:
    """The inode body holds an xattr area (its magic word: EXT4_STATE_XATTR)."""
    start = _ibody_start(inode)
    return start is not None and L.U32.unpack_from(inode._raw, start)[0] == L.XATTR_MAGIC


def _ibody(inode: Ext2Inode) -> list[Entry]:
    if not has_ibody(inode):
        return []
    first = _ibody_start(inode) + L.XATTR_IBODY_HEADER_SIZE
    return parse(inode._raw, first, first, len(inode._raw))


def ibody_entries(inode: Ext2Inode) -> list[Entry]:
    """The entries in the inode body, every namespace (ext4's inline data reads system.data)."""
    return _ibody(inode)


def set_ibody_entries(inode: Ext2Inode, entries: list[Entry]) -> bool:
    """The inode body holds entries now (ext4's inline data, which grows and
    shrinks system.data there); False, nothing changed, when they do not fit."""
    got = _pack_ibody(inode, entries)
    if got is None:
        return False
    start, area = got
    inode._raw[start:] = area
    return True


def ibody_value_room(inode: Ext2Inode, index: int, name: bytes) -> int:
    """The longest value entry (index, name) could have in the inode body,
    the other entries kept (ext4's get_max_inline_xattr_value_size)."""
    start = _ibody_start(inode)
    if start is None:
        return 0
    others = [e for e in _ibody(inode) if e.index != index or e.name != name]
    used = L.XATTR_IBODY_HEADER_SIZE + _entry_size(len(name)) + 4 + sum(
        _entry_size(len(e.name)) + L.xattr_pad(len(e.value)) for e in others)
    return max(0, len(inode._raw) - start - used) & ~3


def _pack_ibody(inode: Ext2Inode, entries: list[Entry]) -> tuple[int, bytearray] | None:
    """(offset, bytes) of the body holding entries; None when they do not fit."""
    start = _ibody_start(inode)
    hdr = L.XATTR_IBODY_HEADER_SIZE
    packed = None if start is None else pack(entries, len(inode._raw) - start, hdr, hdr)
    if packed is None:
        return None
    area = packed[0]
    if entries:             # an empty area loses its magic, as ext4 leaves it
        L.U32.pack_into(area, 0, L.XATTR_MAGIC)
    return start, area


def _ibody_area(inode: Ext2Inode, entries: list[Entry]) -> tuple[int, bytearray]:
    """(offset, bytes) of the body holding fewer entries (new values go to the block)."""
    got = _pack_ibody(inode, entries)
    if got is None:         # only if the values read overlapped
        raise KernelError(E.EIO, f"ext2: inode {inode.ino}: bad in-inode xattrs")
    return got


# -- the EA block -------------------------------------------------------------------
def _block(inode: Ext2Inode) -> tuple[list[Entry], int]:
    """The block's entries and its refcount (none and 0 without a block)."""
    blk = inode.file_acl
    if not blk:
        return [], 0
    fs = inode.fs
    if not fs.sb.first_data_block <= blk < fs.sb.blocks_count:
        raise KernelError(E.EIO, f"ext2: inode {inode.ino}: xattr block {blk} out of range")
    buf = fs.xattr_block(blk)
    hdr = block_header(buf)
    if hdr is None:
        raise KernelError(E.EIO, f"ext2: inode {inode.ino}: bad xattr block {blk}")
    return parse(buf, L.XATTR_HEADER_SIZE, 0, fs.block_size), hdr[0]


def drop_block(inode: Ext2Inode) -> None:
    """The inode stops using its EA block (freed when no other inode shares it)."""
    fs = inode.fs
    fs.release_xattr_block(inode.file_acl)
    inode.i_blocks = max(0, inode.i_blocks - fs.block_size // 512)
    inode.file_acl = 0


def _write_block(inode: Ext2Inode, entries: list[Entry], refcount: int) -> None:
    """Make the inode's block hold entries: in place, in a new block, or none."""
    fs = inode.fs
    if not entries:
        drop_block(inode)
        return
    packed = pack(sorted(entries, key=lambda e: e.key), fs.block_size, L.XATTR_HEADER_SIZE, 0)
    if packed is None:
        raise KernelError(E.ENOSPC)
    data, h = packed
    L.XATTR_HEADER.pack_into(data, 0, L.XATTR_MAGIC, 1, 1, h)
    old = inode.file_acl
    if old and refcount == 1:
        buf = fs.xattr_block(old)
        buf[:] = data
        fs.bcache.mark_dirty(old, buf)
        return
    got = fs.alloc.alloc_blocks(inode.home_block(), 1)
    if not got:
        raise KernelError(E.ENOSPC)
    fs.new_xattr_block(got[0])[:] = data
    fs.note_ext_attr()
    if old:
        fs.release_xattr_block(old)     # copy on write: the others keep the shared block
    else:
        inode.i_blocks += fs.block_size // 512
    inode.file_acl = got[0]


# -- what Ext2Inode's xattr methods do ----------------------------------------------
def _all(inode: Ext2Inode) -> list[Entry]:
    """Body first, then block: the order ext4 lists them in."""
    return _ibody(inode) + _block(inode)[0]


def get(inode: Ext2Inode, name: bytes) -> bytes:
    index, rest = split_name(name)
    for e in _all(inode):
        if e.index == index and e.name == rest:
            return e.value
    raise KernelError(E.ENODATA)


def names(inode: Ext2Inode) -> list[bytes]:
    return [e.full_name for e in _all(inode) if e.index in PREFIXES]


def change(inode: Ext2Inode, name: bytes, value: bytes | None, flags: int) -> None:
    """Set (or with value None remove) one attribute, as ext2_xattr_set does."""
    fs = inode.fs
    index, rest = split_name(name)
    if len(rest) > L.NAME_LEN or (value is not None and len(value) > fs.block_size):
        raise KernelError(E.ERANGE)
    fs.check_rw()
    inode._check_mutable()
    body = _ibody(inode)
    block, refcount = _block(inode)

    def others(entries: list[Entry]) -> list[Entry]:
        return [e for e in entries if e.index != index or e.name != rest]
    new_body, new_block = others(body), others(block)
    exists = len(new_body) < len(body) or len(new_block) < len(block)
    if exists and flags & C.XATTR_CREATE:
        raise KernelError(E.EEXIST)
    if not exists and (value is None or flags & C.XATTR_REPLACE):
        raise KernelError(E.ENODATA)
    if value is not None:
        new_block.append(Entry(index, rest, value))
    body_area = _ibody_area(inode, new_body) if len(new_body) < len(body) else None
    if new_block != block:
        _write_block(inode, new_block, refcount)       # ENOSPC here changes nothing
    if body_area is not None:
        start, area = body_area
        inode._raw[start:] = area
    inode.touch(m=False)
