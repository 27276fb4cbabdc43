"""ext2 on-disk structures: superblock, group descriptor, inode, dirent.

Only byte layouts, constants and pure encode/decode helpers live here, kept
apart from filesystem logic so the rest of the package never spells an
offset.  Offsets follow Linux's fs/ext2/ext2.h and e2fsprogs' ext2_fs.h.
Every field is little-endian.  Records keep the raw bytes they were read
from, so the fields we do not model (reserved words, ext4 additions) are
written back unchanged.
"""
from __future__ import annotations

import struct
from typing import ClassVar

from umlpy.abi import consts as C

MAGIC = 0xEF53
SUPERBLOCK_OFFSET = 1024
SUPERBLOCK_SIZE = 1024
SUPERBLOCK_CSUM_OFF = 1020     # s_checksum: crc32c of the bytes before it (metadata_csum)
ROOT_INO = 2
GOOD_OLD_FIRST_INO = 11
GOOD_OLD_INODE_SIZE = 128
GOOD_OLD_REV = 0
DYNAMIC_REV = 1
NDIR_BLOCKS = 12
N_BLOCKS = 15
LINK_MAX = 32000
NAME_LEN = 255

# s_state
STATE_VALID = 0x1
STATE_ERROR = 0x2

# feature bits (e2fsprogs' names, as `mke2fs -O` and dumpe2fs spell them)
COMPAT_NAMES = {
    0x1: "dir_prealloc", 0x2: "imagic_inodes", 0x4: "has_journal", 0x8: "ext_attr",
    0x10: "resize_inode", 0x20: "dir_index", 0x40: "lazy_bg", 0x100: "snapshot_bitmap",
    0x200: "sparse_super2", 0x400: "fast_commit", 0x800: "stable_inodes", 0x1000: "orphan_file",
}
INCOMPAT_NAMES = {
    0x1: "compression", 0x2: "filetype", 0x4: "needs_recovery", 0x8: "journal_dev",
    0x10: "meta_bg", 0x40: "extent", 0x80: "64bit", 0x100: "mmp", 0x200: "flex_bg",
    0x400: "ea_inode", 0x1000: "dirdata", 0x2000: "metadata_csum_seed", 0x4000: "large_dir",
    0x8000: "inline_data", 0x10000: "encrypt", 0x20000: "casefold",
}
RO_COMPAT_NAMES = {
    0x1: "sparse_super", 0x2: "large_file", 0x4: "btree_dir", 0x8: "huge_file", 0x10: "uninit_bg",
    0x20: "dir_nlink", 0x40: "extra_isize", 0x100: "quota", 0x200: "bigalloc",
    0x400: "metadata_csum", 0x800: "replica", 0x1000: "read-only", 0x2000: "project",
    0x4000: "shared_blocks", 0x8000: "verity", 0x10000: "orphan_present",
}
COMPAT_HAS_JOURNAL = 0x4
COMPAT_EXT_ATTR = 0x8
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_META_BG = 0x10
RO_COMPAT_SPARSE_SUPER = 0x1
RO_COMPAT_LARGE_FILE = 0x2
RO_COMPAT_BTREE_DIR = 0x4
RO_COMPAT_HUGE_FILE = 0x8
RO_COMPAT_METADATA_CSUM = 0x400

# What this driver, like Linux's fs/ext2, understands.
INCOMPAT_SUPPORTED = INCOMPAT_FILETYPE | INCOMPAT_META_BG
RO_COMPAT_SUPPORTED = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR


def feature_names(table: dict[int, str], letter: str, mask: int) -> list[str]:
    """Names of the bits in mask; unknown bits as e2fsprogs prints them."""
    out = []
    for bit in range(32):
        if mask >> bit & 1:
            out.append(table.get(1 << bit, f"FEATURE_{letter}{bit}"))
    return out


# i_flags
FL_IMMUTABLE = 0x10
FL_APPEND = 0x20
FL_INDEX = 0x1000          # htree directory
FL_HUGE_FILE = 0x40000
FL_EXTENTS = 0x80000       # i_block holds an extent tree (ext4)
FL_INHERITED = 0x1 | 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x4000 | 0x10000
FL_DIR_ONLY = 0x10000 | 0x20000  # dirsync, topdir: not inherited by files
FL_OTHER = 0x40 | 0x80           # nodump, noatime: all special files inherit
FL_USER_VISIBLE = 0x0003DFFF     # what FS_IOC_GETFLAGS shows (EXT2_FL_USER_VISIBLE)
FL_USER_MODIFIABLE = 0x000380FF  # what FS_IOC_SETFLAGS may change
FL_REG_MASK = ~(0x10000 | 0x20000 | 0x4000 | 0x1000)    # flags meaningless on files (ext2_mask_flags)

# extended attributes (ext2_xattr_header, ext2_xattr_entry): an EA block is
# a 32-byte header then entries; the space after i_extra_isize in a large
# inode holds the magic word then entries (ext4's in-inode xattrs)
XATTR_MAGIC = 0xEA020000
XATTR_HEADER = struct.Struct("<IIII")   # magic, refcount, blocks, hash (then 16 reserved)
XATTR_HEADER_SIZE = 32
XATTR_IBODY_HEADER_SIZE = 4             # the magic alone
XATTR_ENTRY = struct.Struct("<BBHIII")  # name_len, name_index, value_offs, value_inum, value_size, hash
XATTR_INDEX_USER, XATTR_INDEX_TRUSTED, XATTR_INDEX_SECURITY = 1, 4, 6


def xattr_pad(n: int) -> int:
    """Entries and values are padded to 4 bytes (EXT2_XATTR_PAD)."""
    return (n + 3) & ~3


class Record:
    """A little-endian on-disk struct decoded into attributes.

    LAYOUT lists (name, offset, format); a count prefix ("15I") makes a list.
    Fields that touch are packed by one struct each (a "segment"); the gaps
    between segments are never written, so pack() leaves the bytes we do
    not model (reserved words, later additions) exactly as they were read.
    """
    LAYOUT: ClassVar[tuple[tuple[str, int, str], ...]] = ()
    SIZE: ClassVar[int] = 0
    # (offset, struct, ((name, count or 0 for a scalar), ...)) per segment
    _segments: ClassVar[tuple[tuple[int, struct.Struct, tuple[tuple[str, int], ...]], ...]]

    def __init_subclass__(cls) -> None:
        segs: list[list] = []
        end = -1
        for name, off, f in sorted(cls.LAYOUT, key=lambda x: x[1]):
            if off != end:
                segs.append([off, "<", []])
            segs[-1][1] += f
            count = int(f[:-1]) if f[:-1].isdigit() and f[-1] != "s" else 0
            segs[-1][2].append((name, count))
            end = off + struct.calcsize("<" + f)
        cls._segments = tuple((off, struct.Struct(fmt), tuple(shape)) for off, fmt, shape in segs)
        # a segment of scalars alone is read and written in one step each way
        cls._scalar = tuple(all(not count for _, count in shape) for _, _, shape in segs)
        cls._names = tuple(tuple(name for name, _ in shape) for _, _, shape in segs)

    def __init__(self, raw: bytes | None = None) -> None:
        self.raw = bytearray(raw if raw is not None else bytes(self.SIZE))
        d = self.__dict__
        for (off, st, shape), scalar, names in zip(self._segments, self._scalar, self._names):
            vals = st.unpack_from(self.raw, off)
            if scalar:
                d.update(zip(names, vals))
                continue
            i = 0
            for name, count in shape:
                if count:
                    d[name] = list(vals[i:i + count])
                    i += count
                else:
                    d[name] = vals[i]
                    i += 1

    def pack(self) -> bytes:
        d = self.__dict__
        for (off, st, shape), scalar, names in zip(self._segments, self._scalar, self._names):
            if scalar:
                st.pack_into(self.raw, off, *[d[n] for n in names])
                continue
            vals: list = []
            for name, count in shape:
                v = d[name]
                if count:
                    vals.extend(v)
                else:
                    vals.append(v)
            st.pack_into(self.raw, off, *vals)
        return bytes(self.raw)


class Superblock(Record):
    SIZE = SUPERBLOCK_SIZE
    LAYOUT = (
        ("inodes_count", 0, "I"), ("blocks_count", 4, "I"), ("r_blocks_count", 8, "I"),
        ("free_blocks_count", 12, "I"), ("free_inodes_count", 16, "I"),
        ("first_data_block", 20, "I"), ("log_block_size", 24, "I"), ("log_frag_size", 28, "I"),
        ("blocks_per_group", 32, "I"), ("frags_per_group", 36, "I"),
        ("inodes_per_group", 40, "I"), ("mtime", 44, "I"), ("wtime", 48, "I"),
        ("mnt_count", 52, "H"), ("max_mnt_count", 54, "h"), ("magic", 56, "H"),
        ("state", 58, "H"), ("errors", 60, "H"), ("minor_rev_level", 62, "H"),
        ("lastcheck", 64, "I"), ("checkinterval", 68, "I"), ("creator_os", 72, "I"),
        ("rev_level", 76, "I"), ("def_resuid", 80, "H"), ("def_resgid", 82, "H"),
        ("first_ino", 84, "I"), ("inode_size", 88, "H"), ("block_group_nr", 90, "H"),
        ("feature_compat", 92, "I"), ("feature_incompat", 96, "I"),
        ("feature_ro_compat", 100, "I"), ("uuid", 104, "16s"), ("volume_name", 120, "16s"),
        ("reserved_gdt_blocks", 206, "H"), ("desc_size", 254, "H"),
        ("first_meta_bg", 260, "I"), ("mkfs_time", 264, "I"),
        ("min_extra_isize", 348, "H"), ("want_extra_isize", 350, "H"),
        ("journal_inum", 224, "I"), ("journal_dev", 228, "I"), ("checksum", 1020, "I"),
    )

    # -- geometry derived from the fields ----------------------------------
    @property
    def block_size(self) -> int:
        return 1024 << self.log_block_size

    @property
    def groups_count(self) -> int:
        bpg = self.blocks_per_group
        return (self.blocks_count - self.first_data_block + bpg - 1) // bpg

    @property
    def inode_size_bytes(self) -> int:
        return GOOD_OLD_INODE_SIZE if self.rev_level == GOOD_OLD_REV else self.inode_size

    @property
    def first_inode(self) -> int:
        return GOOD_OLD_FIRST_INO if self.rev_level == GOOD_OLD_REV else self.first_ino

    def group_first_block(self, g: int) -> int:
        return self.first_data_block + g * self.blocks_per_group

    def blocks_in_group(self, g: int) -> int:
        return min(self.blocks_per_group, self.blocks_count - self.group_first_block(g))

    def has_super(self, g: int) -> bool:
        """Whether group g holds a superblock backup (sparse_super rule)."""
        if g <= 1 or not self.feature_ro_compat & RO_COMPAT_SPARSE_SUPER:
            return True
        if g % 2 == 0:
            return False
        for p in (3, 5, 7):
            n = g
            while n % p == 0:
                n //= p
            if n == 1:
                return True
        return False


class GroupDesc(Record):
    SIZE = 32
    LAYOUT = (
        ("block_bitmap", 0, "I"), ("inode_bitmap", 4, "I"), ("inode_table", 8, "I"),
        ("free_blocks_count", 12, "H"), ("free_inodes_count", 14, "H"),
        ("used_dirs_count", 16, "H"), ("flags", 18, "H"),
    )


# The 128-byte inode every revision has (ext2_inode, Linux osd2), in the
# pieces the inode code reads and writes; the words between them (osd1,
# faddr, file_acl_high, the checksum, reserved) stay as the disk has them.
INODE_HEAD = struct.Struct("<HHIIIIIHHII")  # mode uid size atime ctime mtime dtime gid
INODE_HEAD_OFF = 0                          # links_count blocks flags
INODE_BLOCKS_OFF = 28                       # u32 i_blocks (lo), inside the head
INODE_MAP = struct.Struct("<15III")         # block[15] generation file_acl
INODE_MAP_OFF = 40
INODE_SIZE_HIGH_OFF = 108                   # u32
INODE_BLOCKS_HI_OFF = 116                   # u16
INODE_IDS_HIGH = struct.Struct("<HH")       # uid_high gid_high
INODE_IDS_HIGH_OFF = 120


# Fields of large inodes, valid only up to 128 + i_extra_isize.
EXTRA_ISIZE_OFF = 128
EXTRA_FIELDS = {"ctime_extra": 132, "mtime_extra": 136, "atime_extra": 140,
                "crtime": 144, "crtime_extra": 148}
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")


def extra_get(raw: bytes, extra_isize: int, name: str) -> int | None:
    """A large-inode field, or None when i_extra_isize does not cover it."""
    off = EXTRA_FIELDS[name]
    if off + 4 > EXTRA_ISIZE_OFF + extra_isize or off + 4 > len(raw):
        return None
    return U32.unpack_from(raw, off)[0]


def extra_set(raw: bytearray, extra_isize: int, name: str, value: int) -> None:
    off = EXTRA_FIELDS[name]
    if off + 4 <= EXTRA_ISIZE_OFF + extra_isize and off + 4 <= len(raw):
        U32.pack_into(raw, off, value & 0xFFFFFFFF)


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def encode_time(ns: int) -> tuple[int, int]:
    """(seconds word, extra word) as ext4 stores times: 2 epoch bits + ns."""
    sec, nsec = divmod(ns, 10**9)
    lo = sec & 0xFFFFFFFF
    epoch = ((sec - _s32(lo)) >> 32) & 3
    return lo, (nsec << 2) | epoch


def decode_time(lo: int, extra: int | None) -> int:
    sec = _s32(lo)
    nsec = 0
    if extra is not None:
        sec += (extra & 3) << 32
        nsec = min(extra >> 2, 10**9 - 1)
    return sec * 10**9 + nsec


# -- device numbers in i_block (Linux's old and new encodings) --------------
def encode_rdev(major: int, minor: int) -> tuple[int, int]:
    """(i_block[0], i_block[1]): 16-bit old form when it fits, else new form."""
    if major < 256 and minor < 256:
        return (major << 8) | minor, 0
    return 0, (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def decode_rdev(b0: int, b1: int) -> tuple[int, int]:
    if b0:
        return (b0 >> 8) & 0xFF, b0 & 0xFF
    return (b1 & 0xFFF00) >> 8, (b1 & 0xFF) | ((b1 >> 12) & 0xFFF00)


# -- directory entries (ext2_dir_entry_2) -----------------------------------
DIRENT = struct.Struct("<IHBB")   # inode, rec_len, name_len, file_type
DIRENT_HDR = 8

FT_UNKNOWN, FT_REG, FT_DIR, FT_CHR, FT_BLK, FT_FIFO, FT_SOCK, FT_SYMLINK = range(8)
_FT_OF_FMT = {C.S_IFREG: FT_REG, C.S_IFDIR: FT_DIR, C.S_IFCHR: FT_CHR, C.S_IFBLK: FT_BLK,
              C.S_IFIFO: FT_FIFO, C.S_IFSOCK: FT_SOCK, C.S_IFLNK: FT_SYMLINK}
FT_TO_DT = {FT_UNKNOWN: C.DT_UNKNOWN, FT_REG: C.DT_REG, FT_DIR: C.DT_DIR, FT_CHR: C.DT_CHR,
            FT_BLK: C.DT_BLK, FT_FIFO: C.DT_FIFO, FT_SOCK: C.DT_SOCK, FT_SYMLINK: C.DT_LNK}


def ft_of_mode(mode: int) -> int:
    return _FT_OF_FMT.get(mode & C.S_IFMT, FT_UNKNOWN)


def rec_len_needed(name_len: int) -> int:
    """Bytes a dirent with that name takes: header + name, 4-byte aligned."""
    return (DIRENT_HDR + name_len + 3) & ~3


def rec_len_from_disk(v: int, block_size: int) -> int:
    # 64 KiB blocks cannot say 65536 in 16 bits: Linux writes 65535 (or 0)
    if block_size >= 65536 and v in (0, 65535):
        return 65536
    return v


def rec_len_to_disk(v: int) -> int:
    return 65535 if v >= 65536 else v
