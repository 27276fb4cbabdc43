"""The ext4 directory index (dir_index, "htree"), on Linux's on-disk format.

An indexed directory keeps ordinary dirent blocks ("leaves") but adds a
B-tree over a hash of the names (dirhash.py), so a lookup reads one leaf
instead of the whole directory.  Block 0 is the root: fake '.' and '..'
dirents (the '..' one spanning the block so that a kernel without dir_index
sees an ordinary block), dx_root_info (hash version, info length, indirect
levels) and an array of (hash, block) entries whose first slot holds limit
and count instead of a hash.  With indirect levels, the root's entries lead
to dx_node blocks (one empty dirent spanning the block, then the same
array); the lowest entries lead to leaves.  Entry i covers hashes from its
hash up to the next entry's; bit 0 of an entry's hash says the leaf
continues the previous leaf's last hash (a split fell inside a run of equal
hashes), so a lookup that misses goes on into it, as Linux's
ext4_htree_next_block does.  With metadata_csum every leaf ends in a
12-byte tail dirent holding its crc32c and every index block has an 8-byte
dx_tail after its `limit` entries; the limits are one entry smaller.

Changes follow Linux's fs/ext4/namei.c: a name goes into the leaf the index
picks (first fit, as add_dirent_to_buf); a full leaf is split by hash, the
upper half of its entries by size moving to a new block (do_split); a full
index node is split in two, and a full root moves its entries to a new
node under it, growing a level (ext4_dx_add_entry); a one-block linear
directory that fills becomes indexed (make_indexed_dir).  Removal leaves
the index alone, as Linux's does; retarget rewrites an entry in place.  readdir walks the leaves in hash order
and returns entries sorted by (hash, minor hash) with that pair as the
position cookie, so telldir/seekdir survive inserts that split leaves.

Directory blocks are untrusted: every count, limit, block number and
rec_len is checked before use.  An unusable index raises BadDxDir (EUCLEAN,
Linux's ERR_BAD_DX_DIR: the caller may fall back to a linear scan, as Linux
does without metadata_csum); a bad leaf raises EUCLEAN and a wrong checksum
EBADMSG (Linux's EFSBADCRC).  Each also logs one line.

The directory is reached through DirBlocks, which the ext4 driver
implements over a directory inode.
"""
from __future__ import annotations

import struct
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Iterator, Protocol

from umlpy.abi import errno as E
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext4 import dirhash
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

_ENTRY = struct.Struct("<II")          # dx_entry: hash, block
_COUNTLIMIT = struct.Struct("<HH")     # the first dx_entry's hash slot: limit, count
_ROOT_INFO = struct.Struct("<IBBBB")   # reserved_zero, hash_version, info_length, indirect_levels, flags
_LEAF_TAIL = struct.Struct("<IHBBI")   # inode 0, rec_len 12, name_len 0, file_type 0xDE, crc32c
_DIRENT = L.DIRENT                     # inode, rec_len, name_len, file_type

ROOT_INFO_OFF = 24                     # after '.' (12 bytes) and the head of '..' (12)
ROOT_INFO_LEN = 8
NODE_ENTRIES_OFF = 8                   # after a dx_node's empty dirent header
LEAF_TAIL_LEN = 12
DX_TAIL_LEN = 8
FT_DIR_CSUM = 0xDE
BLOCK_MASK = 0x0FFFFFFF                # dx_entry.block: the upper 4 bits are reserved
HASH_CONTINUED = 1                     # bit 0 of a dx_entry hash
LEVELS, LEVELS_LARGEDIR = 2, 3         # index levels (root included) without/with largedir

EOF_64BIT = (1 << 63) - 1              # readdir cookie past the last entry
EOF_32BIT = dirhash.EOF_32BIT


class DirBlocks(Protocol):
    """What the index needs from a directory inode and its filesystem.

    read() returns the cached, mutable buffer of a logical block of the
    directory: the index changes it in place and then calls mark_dirty().
    append_block() allocates the next logical block (zeroed), grows i_size
    and returns it.  csum() is crc32c seeded with the inode's checksum seed
    (fs seed, inode number, generation), used only when metadata_csum is set.
    """

    ino: int
    block_size: int
    hash_seed: tuple[int, int, int, int] | None   # s_hash_seed words (dirhash.seed_words)
    def_hash_version: int                         # s_def_hash_version, for new indexes
    sb_flags: int                                 # s_flags: EXT2_FLAGS_(UN)SIGNED_HASH
    metadata_csum: bool
    largedir: bool
    filetype: bool                                # has the filetype feature
    inodes_count: int                             # s_inodes_count: the largest valid inode

    def nblocks(self) -> int: ...
    def read(self, lblk: int) -> bytearray: ...
    def mark_dirty(self, lblk: int) -> None: ...
    def append_block(self) -> tuple[int, bytearray]: ...
    def set_indexed(self) -> None: ...            # set EXT4_INDEX_FL on the inode
    def csum(self, data: bytes) -> int: ...


class BadDxDir(KernelError):
    """The index cannot be followed (Linux's ERR_BAD_DX_DIR); the leaves may still be fine."""

    def __init__(self, msg: str) -> None:
        super().__init__(E.EUCLEAN, msg)


@dataclass
class DxEntry:
    """A live directory entry as the index found it."""
    lblk: int
    off: int
    ino: int
    ftype: int
    name: bytes


@dataclass
class _Frame:
    """One index block on the path from the root (Linux's dx_frame)."""
    lblk: int
    buf: bytearray
    base: int          # offset of limit/count, the entry array's start
    at: int            # the entry followed down

    def countlimit(self) -> tuple[int, int]:
        limit, count = _COUNTLIMIT.unpack_from(self.buf, self.base)
        return count, limit

    def entry(self, i: int) -> tuple[int, int]:
        """(hash, block) of entry i; entry 0's hash is 0 (its slot holds limit/count)."""
        h, blk = _ENTRY.unpack_from(self.buf, self.base + 8 * i)
        return (h if i else 0), blk & BLOCK_MASK

    def set_count(self, count: int) -> None:
        _COUNTLIMIT.pack_into(self.buf, self.base, self.countlimit()[1], count)


@dataclass
class _LeafMap:
    """Where a leaf's dirents are, so that a lookup or an insert need not parse
    the whole block each time (in Python that walk was most of a create).
    Made by one checked walk, then kept up to date by the changes made here;
    any other change to the leaf drops it (see _seal_leaf and forget_leaves)."""
    offs: list[int]      # every dirent's offset, in block order
    room: list[int]      # those with space for another entry after them, in block order


MIN_REC_LEN = L.rec_len_needed(1)     # the smallest dirent (a one-byte name): 12


class Htree:
    """The index of one directory: between calls it keeps only which blocks'
    checksums it has seen and where the leaves' dirents are."""

    def __init__(self, d: DirBlocks) -> None:
        self.d = d
        self.bs = d.block_size
        self.tail = LEAF_TAIL_LEN if d.metadata_csum else 0
        self.dx_tail = DX_TAIL_LEN if d.metadata_csum else 0
        self.max_levels = LEVELS_LARGEDIR if d.largedir else LEVELS
        self._last_hash: tuple = (None, None, None)
        self._verified: set[int] = set()   # blocks whose checksum was checked or written
        self._maps: dict[int, _LeafMap] = {}

    # -- errors --------------------------------------------------------------------
    def _bad_dx(self, msg: str) -> BadDxDir:
        printk.pr_err(f"EXT4-fs error: dx_probe: inode #{self.d.ino}: {msg}; "
                      "Corrupt directory, running e2fsck is recommended")
        return BadDxDir(msg)

    def _corrupt(self, lblk: int, msg: str, errno: int = E.EUCLEAN) -> KernelError:
        printk.pr_err(f"EXT4-fs error: inode #{self.d.ino}: block {lblk}: {msg}")
        return KernelError(errno, msg)

    # -- geometry ------------------------------------------------------------------
    def root_limit(self, info_len: int = ROOT_INFO_LEN) -> int:
        return (self.bs - ROOT_INFO_OFF - info_len - self.dx_tail) // 8

    def node_limit(self) -> int:
        return (self.bs - NODE_ENTRIES_OFF - self.dx_tail) // 8

    def hash(self, name: bytes, version: int) -> tuple[int, int]:
        last = self._last_hash
        if last[0] == name and last[1] == version:
            return last[2]      # a create and an unlink hash their name more than once
        h = dirhash.dirhash(bytes(name), version, self.d.hash_seed)
        self._last_hash = (bytes(name), version, h)
        return h

    # -- checksums -----------------------------------------------------------------
    def _dx_csum(self, buf: bytearray, base: int) -> tuple[int, int]:
        """(offset of the dx_tail, checksum it should hold): crc32c of the header and
        the used entries, then the tail's reserved word and a zero checksum."""
        limit, count = _COUNTLIMIT.unpack_from(buf, base)
        t = base + 8 * limit
        if count > limit or t + DX_TAIL_LEN > self.bs:
            return -1, 0
        return t, self.d.csum(bytes(buf[:base + 8 * count]) + bytes(buf[t:t + 4]) + b"\0\0\0\0")

    def _leaf_csum(self, buf: bytearray) -> tuple[bool, int]:
        """(the tail dirent is there, crc32c of the block before it)."""
        t = self.bs - LEAF_TAIL_LEN
        ino, rec_len, nlen, ft, _ = _LEAF_TAIL.unpack_from(buf, t)
        ok = ino == 0 and rec_len == LEAF_TAIL_LEN and nlen == 0 and ft == FT_DIR_CSUM
        return ok, self.d.csum(bytes(buf[:t]))

    def _seal_dx(self, f: _Frame) -> None:
        if self.dx_tail:
            t, c = self._dx_csum(f.buf, f.base)
            struct.pack_into("<I", f.buf, t + 4, c)
        self._verified.add(f.lblk)
        self.d.mark_dirty(f.lblk)

    def _seal_leaf(self, lblk: int, buf: bytearray, map_kept: bool = False) -> None:
        """Checksum a changed leaf; its map goes unless the change kept it true."""
        if not map_kept:
            self._maps.pop(lblk, None)
        if self.tail:
            t = self.bs - LEAF_TAIL_LEN
            _LEAF_TAIL.pack_into(buf, t, 0, LEAF_TAIL_LEN, 0, FT_DIR_CSUM, 0)
            struct.pack_into("<I", buf, t + 8, self._leaf_csum(buf)[1])
        self._verified.add(lblk)
        self.d.mark_dirty(lblk)

    # -- reading blocks ------------------------------------------------------------
    def _read(self, lblk: int, index: bool) -> bytearray:
        if not 0 <= lblk < self.d.nblocks():
            raise self._corrupt(lblk, f"block {lblk} past the directory's end")
        buf = self.d.read(lblk)
        if self.d.metadata_csum and lblk not in self._verified:
            if index:
                base = self._countlimit_off(lblk, buf)
                t, c = self._dx_csum(buf, base)
                ok = t >= 0 and struct.unpack_from("<I", buf, t + 4)[0] == c
            else:
                present, c = self._leaf_csum(buf)
                ok = present and struct.unpack_from("<I", buf, self.bs - 4)[0] == c
            if not ok:
                what = "Directory index" if index else "Directory block"
                raise self._corrupt(lblk, f"{what} failed checksum", E.EBADMSG)
            self._verified.add(lblk)
        return buf

    def _countlimit_off(self, lblk: int, buf: bytearray) -> int:
        """Where limit/count are in an index block: after dx_root_info in block 0,
        after the empty dirent of a dx_node."""
        if lblk == 0:
            info_len = buf[ROOT_INFO_OFF + 5]
            return ROOT_INFO_OFF + info_len
        if L.rec_len_from_disk(_DIRENT.unpack_from(buf, 0)[1], self.bs) != self.bs:
            raise self._corrupt(lblk, "directory leaf block found instead of index block")
        return NODE_ENTRIES_OFF

    # -- the path to a hash ----------------------------------------------------------
    def _root(self) -> tuple[bytearray, int]:
        """Block 0 with its dx_root_info checked, and the hash the directory uses."""
        root = self._read(0, index=True)
        _, hv, _, levels, flags = _ROOT_INFO.unpack_from(root, ROOT_INFO_OFF)
        if hv not in (dirhash.LEGACY, dirhash.HALF_MD4, dirhash.TEA):
            raise self._bad_dx(f"Unrecognised inode hash code {hv}")
        if flags & 1:
            raise self._bad_dx(f"Unimplemented hash flags: {flags:#06x}")
        if levels >= self.max_levels:
            raise self._bad_dx(f"Unimplemented hash depth: {levels:#06x}")
        return root, dirhash.effective_version(hv, self.d.sb_flags)

    def _probe(self, h: int, root: bytearray | None = None) -> list[_Frame]:
        """Index blocks from the root down to the lowest, each `at` the entry whose range
        holds hash h (Linux's dx_probe); root: block 0 as _root just read it."""
        if root is None:
            root = self._read(0, index=True)
        _, _, info_len, levels, _ = _ROOT_INFO.unpack_from(root, ROOT_INFO_OFF)
        base = ROOT_INFO_OFF + info_len
        limit = self.root_limit(info_len)
        frames: list[_Frame] = []
        lblk, buf, seen = 0, root, {0}
        while True:
            if base + 4 > self.bs or _COUNTLIMIT.unpack_from(buf, base)[0] != limit:
                raise self._bad_dx(f"dx entry: limit != {'root' if lblk == 0 else 'node'} limit")
            f = _Frame(lblk, buf, base, 0)
            count, _ = f.countlimit()
            if not 0 < count <= limit:
                raise self._bad_dx(f"dx entry: count {count} beyond limit {limit}")
            f.at = self._search(f, count, h)
            frames.append(f)
            nxt = f.entry(f.at)[1]
            if len(frames) > levels:
                return frames
            if nxt in seen:
                raise self._bad_dx(f"index loop at block {nxt}")
            seen.add(nxt)
            lblk, buf = nxt, self._read(nxt, index=True)
            base, limit = self._countlimit_off(lblk, buf), self.node_limit()

    @staticmethod
    def _search(f: _Frame, count: int, h: int) -> int:
        """The last entry whose hash is <= h (entry 0 stands for every smaller hash)."""
        lo, hi = 1, count - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if _ENTRY.unpack_from(f.buf, f.base + 8 * mid)[0] > h:
                hi = mid - 1
            else:
                lo = mid + 1
        return lo - 1

    def _next_leaf(self, frames: list[_Frame], h: int | None) -> bool:
        """Step the path to the next leaf in hash order (Linux's ext4_htree_next_block).
        With h, only if that leaf continues hash h (its entry hash is h with or
        without the collision bit); False at the end of the index."""
        i = len(frames) - 1
        while True:
            f = frames[i]
            if f.at + 1 < f.countlimit()[0]:
                break
            if i == 0:
                return False
            i -= 1
        f.at += 1
        if h is not None and f.entry(f.at)[0] & ~HASH_CONTINUED != h:
            return False
        for j in range(i + 1, len(frames)):
            blk = frames[j - 1].entry(frames[j - 1].at)[1]
            buf = self._read(blk, index=True)
            g = _Frame(blk, buf, self._countlimit_off(blk, buf), 0)
            count, limit = g.countlimit()
            if limit != self.node_limit() or not 0 < count <= limit:
                raise self._bad_dx(f"dx entry: count {count} / limit {limit} in block {blk}")
            frames[j] = g
        return True

    # -- leaves ----------------------------------------------------------------------
    def _entries(self, lblk: int, buf: bytearray,
                 end: int | None = None) -> Iterator[tuple[int, int, int, int, int]]:
        """(offset, rec_len, inode, name_len, file_type) of each dirent in a leaf (up to
        its checksum tail, or end), checked as Linux's ext4_check_dir_entry checks them."""
        off, bs = 0, self.bs
        end = bs - self.tail if end is None else end
        wide, max_ino = bs >= 65536, self.d.inodes_count
        unpack = _DIRENT.unpack_from
        while off < end:
            ino, rec_len, nlen, ft = unpack(buf, off)
            if wide:
                rec_len = L.rec_len_from_disk(rec_len, bs)
            # rec_len_needed inline: this loop is the directory's hot path
            if rec_len < 12 or rec_len & 3 or rec_len < (nlen + 11) & ~3 \
                    or off + rec_len > end or ino > max_ino:
                raise self._corrupt(lblk, f"bad entry in directory: offset={off}, "
                                          f"inode={ino}, rec_len={rec_len}, name_len={nlen}")
            yield off, rec_len, ino, nlen, ft
            off += rec_len

    def forget_leaves(self) -> None:
        """The leaves were changed behind the index's back (a linear fallback)."""
        self._maps.clear()

    def _leafmap(self, lblk: int, buf: bytearray) -> _LeafMap:
        m = self._maps.get(lblk)
        if m is None:
            offs, room = [], []
            for off, rec_len, ino, nlen, _ in self._entries(lblk, buf):
                offs.append(off)
                if rec_len - (L.rec_len_needed(nlen) if ino else 0) >= MIN_REC_LEN:
                    room.append(off)
            m = self._maps[lblk] = _LeafMap(offs, room)
        return m

    def _match(self, lblk: int, buf: bytearray, name: bytes) -> DxEntry | None:
        """The live dirent called name: where the name's bytes occur in the block
        and a dirent's name starts (never a parse when they occur nowhere)."""
        pos = buf.find(name, 8)
        if pos < 0:
            return None
        offs, n = self._leafmap(lblk, buf).offs, len(name)
        while pos >= 0:
            off = pos - 8
            i = bisect_left(offs, off)
            if i < len(offs) and offs[i] == off:
                ino, _, nlen, ft = _DIRENT.unpack_from(buf, off)
                if ino and nlen == n:
                    return DxEntry(lblk, off, ino, ft if self.d.filetype else 0, name)
            pos = buf.find(name, pos + 1)
        return None

    def _find_in_leaf(self, lblk: int, name: bytes) -> DxEntry | None:
        return self._match(lblk, self._read(lblk, index=False), name)

    def _add_to_leaf(self, lblk: int, buf: bytearray, name: bytes, ino: int,
                     ftype: int) -> DxEntry | None:
        """Put the entry into the first dirent with room (Linux's ext4_find_dest_de and
        ext4_insert_dentry); None if the leaf has none."""
        if self._match(lblk, buf, name) is not None:
            raise KernelError(E.EEXIST)
        need, n = L.rec_len_needed(len(name)), len(name)
        m = self._leafmap(lblk, buf)
        wide = self.bs >= 65536
        for j, off in enumerate(m.room):        # a dirent not in room fits nothing
            e_ino, rec_len, nlen, _ = _DIRENT.unpack_from(buf, off)
            if wide:
                rec_len = L.rec_len_from_disk(rec_len, self.bs)
            used = L.rec_len_needed(nlen) if e_ino else 0
            if rec_len - used >= need:
                break
        else:
            return None
        if e_ino:
            _DIRENT.pack_into(buf, off, e_ino, used, nlen, buf[off + 7])
            off, rec_len = off + used, rec_len - used
            insort(m.offs, off)
        if rec_len - need >= MIN_REC_LEN:
            m.room[j] = off      # the new dirent has the rest (the old one none)
        else:
            del m.room[j]
        ft = ftype if self.d.filetype else 0
        _DIRENT.pack_into(buf, off, ino, L.rec_len_to_disk(rec_len), n, ft)
        buf[off + 8:off + 8 + n] = name
        self._seal_leaf(lblk, buf, map_kept=True)
        return DxEntry(lblk, off, ino, ft, name)

    def _pack(self, buf: bytearray, pieces: list[bytes]) -> None:
        """Write dirents one after another from offset 0, the last taking the rest
        of the block up to the checksum tail."""
        off, end = 0, self.bs - self.tail
        for i, p in enumerate(pieces):
            buf[off:off + len(p)] = p
            rec_len = end - off if i == len(pieces) - 1 else len(p)
            struct.pack_into("<H", buf, off + 4, L.rec_len_to_disk(rec_len))
            off += len(p)
        buf[off:end] = bytes(end - off)

    def _split_leaf(self, parent: _Frame, lblk: int, buf: bytearray, h: int,
                    version: int) -> tuple[int, bytearray]:
        """Move the upper half of a full leaf's entries by hash into a new leaf and
        index it after parent.at (Linux's do_split); the leaf hash h goes into."""
        live = []
        for off, rec_len, ino, nlen, _ in self._entries(lblk, buf):
            if ino and nlen:
                name = bytes(buf[off + 8:off + 8 + nlen])
                live.append((self.hash(name, version)[0], off, rec_len, nlen))
        if len(live) < 2:
            raise self._corrupt(lblk, "full directory leaf with fewer than two entries")
        live.sort(key=lambda e: e[0])
        # from the top, move entries while more than half of the next one stays below
        # the middle of the block, counting their whole rec_len as Linux does
        size, move = 0, 0
        for _, _, rec_len, _ in reversed(live):
            if size + rec_len // 2 > self.bs // 2:
                break
            size += rec_len
            move += 1
        # (when even the top entry would cross the middle, half of them by count)
        split = len(live) - move if move < len(live) - 1 else len(live) // 2
        hash2 = live[split][0]
        continued = HASH_CONTINUED if live[split - 1][0] == hash2 else 0

        def piece(off: int, nlen: int) -> bytes:
            return bytes(buf[off:off + L.rec_len_needed(nlen)])
        upper = [piece(off, nlen) for _, off, _, nlen in live[split:]]
        keep = sorted((off, nlen) for _, off, _, nlen in live[:split])
        lower = [piece(off, nlen) for off, nlen in keep]
        new_lblk, new = self.d.append_block()
        self._pack(new, upper)
        self._pack(buf, lower)
        self._seal_leaf(new_lblk, new)
        self._seal_leaf(lblk, buf)
        self._insert_index(parent, hash2 | continued, new_lblk)
        return (new_lblk, new) if h >= hash2 else (lblk, buf)

    # -- index blocks ----------------------------------------------------------------
    def _insert_index(self, f: _Frame, h: int, blk: int) -> None:
        """A new (hash, block) right after f.at (Linux's dx_insert_block)."""
        count, limit = f.countlimit()
        if count >= limit:
            raise self._bad_dx(f"inserting into a full index block {f.lblk}")
        at = f.base + 8 * (f.at + 1)
        end = f.base + 8 * count
        f.buf[at + 8:end + 8] = f.buf[at:end]
        _ENTRY.pack_into(f.buf, at, h, blk)
        f.set_count(count + 1)
        self._seal_dx(f)

    def _new_node(self) -> _Frame:
        lblk, buf = self.d.append_block()
        _DIRENT.pack_into(buf, 0, 0, L.rec_len_to_disk(self.bs), 0, 0)
        return _Frame(lblk, buf, NODE_ENTRIES_OFF, 0)

    def _split_node(self, f: _Frame, parent: _Frame) -> None:
        """Move the upper half of a full index node into a new node indexed after it."""
        count, _ = f.countlimit()
        keep = count // 2
        h2 = _ENTRY.unpack_from(f.buf, f.base + 8 * keep)[0]
        g = self._new_node()
        g.buf[g.base:g.base + 8 * (count - keep)] = f.buf[f.base + 8 * keep:f.base + 8 * count]
        _COUNTLIMIT.pack_into(g.buf, g.base, self.node_limit(), count - keep)
        f.set_count(keep)
        self._seal_dx(g)
        self._seal_dx(f)
        self._insert_index(parent, h2, g.lblk)

    def _add_level(self, root: _Frame) -> None:
        """Move all the root's entries into a new node, the root's only child."""
        count, _ = root.countlimit()
        g = self._new_node()
        g.buf[g.base:g.base + 8 * count] = root.buf[root.base:root.base + 8 * count]
        _COUNTLIMIT.pack_into(g.buf, g.base, self.node_limit(), count)
        root.set_count(1)
        struct.pack_into("<I", root.buf, root.base + 4, g.lblk)
        root.buf[ROOT_INFO_OFF + 6] += 1
        self._seal_dx(g)
        self._seal_dx(root)

    # -- the operations --------------------------------------------------------------
    def lookup(self, name: bytes) -> DxEntry | None:
        """The entry called name: the leaf the index picks, then the leaves that
        continue its hash."""
        root, version = self._root()
        h = self.hash(name, version)[0]
        frames = self._probe(h, root)
        while True:
            f = frames[-1]
            hit = self._find_in_leaf(f.entry(f.at)[1], name)
            if hit is not None or not self._next_leaf(frames, h):
                return hit

    def insert(self, name: bytes, ino: int, ftype: int) -> DxEntry:
        """Add an entry (the caller knows the name is new): into the leaf the index
        picks, splitting that leaf, index nodes and the root as they fill.  ENOSPC
        when the index is full at its deepest level."""
        root, version = self._root()
        h = self.hash(name, version)[0]
        while True:
            frames = self._probe(h, root)
            root = None         # after a split, the path is read again
            low = frames[-1]
            lblk = low.entry(low.at)[1]
            buf = self._read(lblk, index=False)
            hit = self._add_to_leaf(lblk, buf, name, ino, ftype)
            if hit is not None:
                return hit
            count, limit = low.countlimit()
            if count < limit:
                lblk, buf = self._split_leaf(low, lblk, buf, h, version)
                hit = self._add_to_leaf(lblk, buf, name, ino, ftype)
                if hit is None:
                    raise self._corrupt(lblk, "no room in a freshly split leaf")
                return hit
            # the lowest index block is full: split the highest full one below a
            # non-full parent, or grow a level when every block up to the root is full
            i = len(frames) - 1
            while i > 0 and frames[i - 1].countlimit()[0] == frames[i - 1].countlimit()[1]:
                i -= 1
            if i > 0:
                self._split_node(frames[i], frames[i - 1])
            elif len(frames) >= self.max_levels:
                printk.pr_warn(f"EXT4-fs warning: Directory (ino: {self.d.ino}) index full, "
                               f"reach max htree level :{len(frames)}")
                raise KernelError(E.ENOSPC)
            else:
                self._add_level(frames[0])
            # the path changed: probe again (Linux's restart)

    def remove(self, name: bytes, hit: DxEntry | None = None) -> DxEntry:
        """Take the entry out of its leaf, merged into the one before it (or its inode
        cleared when it is first), as Linux's ext4_generic_delete_entry; the index
        keeps pointing at the leaf.  ENOENT if absent.  hit: the entry as a lookup
        found it, the directory unchanged since."""
        if hit is None:
            hit = self.lookup(name)
        if hit is None:
            raise KernelError(E.ENOENT)
        buf = self.d.read(hit.lblk)
        m = self._leafmap(hit.lblk, buf)
        i = bisect_left(m.offs, hit.off)
        rec_len = L.rec_len_from_disk(struct.unpack_from("<H", buf, hit.off + 4)[0], self.bs)
        # the name is wiped too, as Linux does, so it does not linger in the block
        if i == 0:
            struct.pack_into("<I", buf, hit.off, 0)
            buf[hit.off + 6:hit.off + rec_len] = bytes(rec_len - 6)
            grown = hit.off
        else:
            grown = m.offs[i - 1]
            prev_len = L.rec_len_from_disk(struct.unpack_from("<H", buf, grown + 4)[0], self.bs)
            struct.pack_into("<H", buf, grown + 4, L.rec_len_to_disk(prev_len + rec_len))
            buf[hit.off:hit.off + rec_len] = bytes(rec_len)
            del m.offs[i]
            k = bisect_left(m.room, hit.off)
            if k < len(m.room) and m.room[k] == hit.off:
                del m.room[k]
        k = bisect_left(m.room, grown)
        if k == len(m.room) or m.room[k] != grown:
            m.room.insert(k, grown)
        self._seal_leaf(hit.lblk, buf, map_kept=True)
        return hit

    def retarget(self, name: bytes, ino: int, ftype: int) -> None:
        """Point an existing entry at another inode, its file type too (Linux's
        ext4_setent), or the root's '..' (only its inode, as ext4_rename_dir_finish),
        resealing the block it is in.  ENOENT if absent."""
        if name == b"..":
            root = self._probe(0)[0]
            struct.pack_into("<I", root.buf, 12, ino)
            self._seal_dx(root)
            return
        hit = self.lookup(name)
        if hit is None:
            raise KernelError(E.ENOENT)
        buf = self.d.read(hit.lblk)
        struct.pack_into("<I", buf, hit.off, ino)
        if self.d.filetype:
            buf[hit.off + 7] = ftype
        self._seal_leaf(hit.lblk, buf, map_kept=True)

    def make_indexed(self, name: bytes, ino: int, ftype: int) -> DxEntry:
        """Turn a full one-block linear directory into an indexed one and add name
        (Linux's make_indexed_dir): the entries after '..' move to block 1, block 0
        becomes the root with one entry, and block 1 is split at once."""
        if self.d.nblocks() != 1:
            raise KernelError(E.EINVAL, "make_indexed: directory is not one block")
        root = self._read(0, index=False)
        _, d_len, d_nlen, _ = _DIRENT.unpack_from(root, 0)
        dd_len = L.rec_len_from_disk(_DIRENT.unpack_from(root, 12)[1], self.bs)
        if d_len != 12 or d_nlen != 1 or root[12 + 6] != 2 or dd_len < 12 or dd_len & 3 \
                or 12 + dd_len >= self.bs - self.tail:
            raise self._corrupt(0, "invalid rec_len for '..'")
        moved = bytes(root[12 + dd_len:self.bs - self.tail])
        lblk, leaf = self.d.append_block()
        leaf[:len(moved)] = moved
        last = None
        for off, *_ in self._entries(lblk, leaf, len(moved)):
            last = off
        if last is None:
            raise self._corrupt(0, "nothing to index after '..'")
        struct.pack_into("<H", leaf, last + 4, L.rec_len_to_disk(self.bs - self.tail - last))
        self._seal_leaf(lblk, leaf)
        struct.pack_into("<H", root, 16, L.rec_len_to_disk(self.bs - 12))
        root[ROOT_INFO_OFF:] = bytes(self.bs - ROOT_INFO_OFF)
        _ROOT_INFO.pack_into(root, ROOT_INFO_OFF, 0, self.d.def_hash_version, ROOT_INFO_LEN, 0, 0)
        f = _Frame(0, root, ROOT_INFO_OFF + ROOT_INFO_LEN, 0)
        _COUNTLIMIT.pack_into(root, f.base, self.root_limit(), 1)
        struct.pack_into("<I", root, f.base + 4, lblk)
        self._seal_dx(f)
        self.d.set_indexed()
        version = self._root()[1]
        h = self.hash(name, version)[0]
        lblk, leaf = self._split_leaf(f, lblk, leaf, h, version)
        hit = self._add_to_leaf(lblk, leaf, name, ino, ftype)
        if hit is None:
            raise self._corrupt(lblk, "no room in a freshly split leaf")
        return hit

    # -- readdir ---------------------------------------------------------------------
    @staticmethod
    def cookie(major: int, minor: int, is32: bool = False) -> int:
        """The readdir position of a (hash, minor hash) pair (Linux's hash2pos)."""
        return major >> 1 if is32 else (major >> 1) << 32 | minor

    def readdir(self, pos: int = 0, is32: bool = False) -> Iterator[tuple[int, bytes, int, int]]:
        """(cookie, name, inode, file_type) of each entry in hash order from position
        pos: '.' (hash 0), '..' (hash 2), then every leaf entry sorted by (hash,
        minor hash).  The cookie is the position to seek back to for that entry;
        EOF_64BIT / EOF_32BIT is the position after the last."""
        start = (pos << 1, 0) if is32 else ((pos >> 32) << 1, pos & 0xFFFFFFFF)
        root, version = self._root()
        dot_ino = _DIRENT.unpack_from(root, 0)[0]
        dotdot_ino = _DIRENT.unpack_from(root, 12)[0]
        ft = L.FT_DIR if self.d.filetype else 0
        if start == (0, 0):
            yield 0, b".", dot_ino, ft
        if start <= (2, 0):
            yield self.cookie(2, 0, is32), b"..", dotdot_ino, ft
        frames = self._probe(start[0])
        pending: list[tuple[int, int, bytes, int, int]] = []
        while True:
            f = frames[-1]
            lblk = f.entry(f.at)[1]
            buf = self._read(lblk, index=False)
            for off, _, ino, nlen, ftype in self._entries(lblk, buf):
                if ino:
                    name = bytes(buf[off + 8:off + 8 + nlen])
                    key = self.hash(name, version)
                    if key >= start:
                        pending.append((*key, name, ino, ftype if self.d.filetype else 0))
            more = self._next_leaf(frames, None)
            # entries below the next leaf's first hash cannot be preceded by any to come
            bound = frames[-1].entry(frames[-1].at)[0] & ~HASH_CONTINUED if more else 1 << 32
            pending.sort(key=lambda e: (e[0], e[1]))
            cut = next((i for i, e in enumerate(pending) if e[0] >= bound), len(pending))
            for major, minor, name, ino, ftype in pending[:cut]:
                yield self.cookie(major, minor, is32), name, ino, ftype
            del pending[:cut]
            if not more:
                return
