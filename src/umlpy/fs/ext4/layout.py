"""ext4 additions to the on-disk structures of fs/ext2/layout.py.

The superblock and group descriptors keep their ext2 attribute names
(blocks_count, block_bitmap, free_blocks_count, ...) but hold the whole
64-bit value: the high halves that 64bit filesystems keep elsewhere in the
struct are folded in when the record is read and split out when it is
packed, so fs/ext2's code uses them unchanged.  Offsets follow
Documentation/filesystems/ext4/ (super.rst, group_descr.rst, inodes.rst,
ifork.rst, directory.rst) and e2fsprogs' ext2_fs.h.
"""
from __future__ import annotations

import struct
from typing import ClassVar

from umlpy.fs.ext2 import layout as L

# feature bits beyond fs/ext2's
COMPAT_HAS_JOURNAL = 0x4
COMPAT_DIR_INDEX = 0x20
COMPAT_ORPHAN_FILE = 0x1000
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_FLEX_BG = 0x200
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_INLINE_DATA = 0x8000
RO_COMPAT_GDT_CSUM = 0x10
RO_COMPAT_DIR_NLINK = 0x20
RO_COMPAT_EXTRA_ISIZE = 0x40
RO_COMPAT_METADATA_CSUM = 0x400
RO_COMPAT_ORPHAN_PRESENT = 0x10000

# what each type name mounts (Linux's EXT{2,3,4}_FEATURE_*_SUPP)
INCOMPAT_EXT3 = L.INCOMPAT_FILETYPE | L.INCOMPAT_RECOVER | L.INCOMPAT_META_BG
RO_COMPAT_EXT3 = L.RO_COMPAT_SPARSE_SUPER | L.RO_COMPAT_LARGE_FILE | L.RO_COMPAT_BTREE_DIR
INCOMPAT_EXT4 = INCOMPAT_EXT3 | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG \
    | INCOMPAT_CSUM_SEED | INCOMPAT_INLINE_DATA
RO_COMPAT_EXT4 = RO_COMPAT_EXT3 | L.RO_COMPAT_HUGE_FILE | RO_COMPAT_GDT_CSUM \
    | RO_COMPAT_DIR_NLINK | RO_COMPAT_EXTRA_ISIZE | RO_COMPAT_METADATA_CSUM \
    | RO_COMPAT_ORPHAN_PRESENT

DESC_SIZE_MIN_64BIT = 64
DESC_SIZE_MAX = 1024
CRC32C_CHKSUM = 1          # s_checksum_type
EXT4_LINK_MAX = 65000

# bg_flags
BG_INODE_UNINIT = 0x1
BG_BLOCK_UNINIT = 0x2

# i_flags
FL_JOURNAL_DATA = 0x4000
FL_DIRSYNC = 0x10000
FL_TOPDIR = 0x20000
FL_EXTENTS = 0x80000
FL_VERITY = 0x100000
FL_DAX = 0x2000000
FL_ENCRYPT = 0x800
FL_INLINE_DATA = 0x10000000
FL_PROJINHERIT = 0x20000000
FL_CASEFOLD = 0x40000000
FL_USER_VISIBLE = 0x725BDFFF     # EXT4_FL_USER_VISIBLE: lsattr shows e (extents) too
FL_USER_MODIFIABLE = 0x624BC0FF  # what FS_IOC_SETFLAGS may change
FL_REG_MASK = ~(FL_DIRSYNC | FL_TOPDIR | FL_CASEFOLD | FL_PROJINHERIT)   # ext4_mask_flags
FL_OTHER_MASK = 0x40 | 0x80      # nodump, noatime: all a special file may have
FL_DAX_MUT_EXCL = FL_VERITY | FL_ENCRYPT | FL_JOURNAL_DATA | FL_INLINE_DATA

# inode fields past the 128 bytes
INODE_CSUM_HI = 0x82            # i_checksum_hi, inside i_extra_isize >= 4
INODE_CSUM_LO = 0x7C
BOOT_LOADER_INO = 5             # EXT4_BOOT_LOADER_INO: any mode is fine for it


class Wide:
    """A Record whose 32-bit (or 16-bit) fields have high halves elsewhere.

    HI lists (field, high field, shift); when `wide` is false (not a
    64bit filesystem) the high fields are neither read nor written."""
    HI: ClassVar[tuple[tuple[str, str, int], ...]] = ()

    def _fold(self, wide: bool) -> None:
        self.wide = wide
        for name, hi, shift in self.HI:
            if wide:
                setattr(self, name, getattr(self, name) | getattr(self, hi) << shift)

    def pack(self) -> bytes:
        full = {name: getattr(self, name) for name, _, _ in self.HI}
        for name, hi, shift in self.HI:
            v = full[name]
            setattr(self, name, v & ((1 << shift) - 1))
            if self.wide:
                setattr(self, hi, v >> shift)
        try:
            return super().pack()       # type: ignore[misc]
        finally:
            for name, v in full.items():
                setattr(self, name, v)


class Superblock(Wide, L.Superblock):
    LAYOUT = L.Superblock.LAYOUT + (
        ("journal_inum", 224, "I"), ("journal_dev", 228, "I"), ("last_orphan", 232, "I"),
        ("hash_seed", 236, "16s"), ("def_hash_version", 252, "B"), ("flags", 352, "I"),
        ("default_mount_opts", 256, "I"),
        ("blocks_count_hi", 336, "I"), ("r_blocks_count_hi", 340, "I"),
        ("free_blocks_count_hi", 344, "I"), ("log_groups_per_flex", 372, "B"),
        ("checksum_type", 373, "B"), ("checksum_seed", 624, "I"),
        ("orphan_file_inum", 640, "I"), ("checksum", 1020, "I"),
    )
    HI = (("blocks_count", "blocks_count_hi", 32), ("r_blocks_count", "r_blocks_count_hi", 32),
          ("free_blocks_count", "free_blocks_count_hi", 32))

    def __init__(self, raw: bytes | None = None) -> None:
        super().__init__(raw)
        self._fold(bool(self.feature_incompat & INCOMPAT_64BIT))


class GroupDesc(Wide, L.Record):
    """ext4_group_desc: 32 bytes, or s_desc_size (>= 64) on 64bit filesystems."""
    SIZE = 32
    LAYOUT = (
        ("block_bitmap", 0, "I"), ("inode_bitmap", 4, "I"), ("inode_table", 8, "I"),
        ("free_blocks_count", 12, "H"), ("free_inodes_count", 14, "H"),
        ("used_dirs_count", 16, "H"), ("flags", 18, "H"), ("exclude_bitmap", 20, "I"),
        ("block_bitmap_csum", 24, "H"), ("inode_bitmap_csum", 26, "H"),
        ("itable_unused", 28, "H"), ("checksum", 30, "H"),
    )


class GroupDesc64(GroupDesc):
    SIZE = 64
    LAYOUT = GroupDesc.LAYOUT + (
        ("block_bitmap_hi", 32, "I"), ("inode_bitmap_hi", 36, "I"), ("inode_table_hi", 40, "I"),
        ("free_blocks_count_hi", 44, "H"), ("free_inodes_count_hi", 46, "H"),
        ("used_dirs_count_hi", 48, "H"), ("itable_unused_hi", 50, "H"),
        ("exclude_bitmap_hi", 52, "I"), ("block_bitmap_csum_hi", 56, "H"),
        ("inode_bitmap_csum_hi", 58, "H"),
    )
    HI = (("block_bitmap", "block_bitmap_hi", 32), ("inode_bitmap", "inode_bitmap_hi", 32),
          ("inode_table", "inode_table_hi", 32), ("free_blocks_count", "free_blocks_count_hi", 16),
          ("free_inodes_count", "free_inodes_count_hi", 16),
          ("used_dirs_count", "used_dirs_count_hi", 16), ("itable_unused", "itable_unused_hi", 16),
          ("block_bitmap_csum", "block_bitmap_csum_hi", 16),
          ("inode_bitmap_csum", "inode_bitmap_csum_hi", 16))
    CSUM_OFF = 30

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw[:self.SIZE])
        self.raw = bytearray(raw)          # a larger s_desc_size keeps its tail
        self._fold(True)


def make_desc(raw: bytes) -> GroupDesc:
    if len(raw) >= GroupDesc64.SIZE:
        return GroupDesc64(raw)
    gd = GroupDesc(raw)
    gd._fold(False)
    return gd


# -- extent trees (ext4_extent_header, ext4_extent, ext4_extent_idx) ----------------
EXT_MAGIC = 0xF30A
EXT_HDR = struct.Struct("<HHHHI")       # magic, entries, max, depth, generation
EXT_ENTRY = struct.Struct("<IHHI")      # leaf: block, len, start_hi, start_lo
EXT_INDEX = struct.Struct("<IIHH")      # index: block, leaf_lo, leaf_hi, unused
EXT_ENTRY_SIZE = 12
EXT_INIT_MAX_LEN = 1 << 15              # an initialised extent: up to 32768 blocks
EXT_UNWRITTEN_MAX_LEN = EXT_INIT_MAX_LEN - 1
EXT_MAX_DEPTH = 5
EXT_MAX_BLOCKS = 0xFFFFFFFF             # no extent may reach past this logical block
IBLOCK_SIZE = 60
IBLOCK_OFF = 40                         # i_block in the inode
IBLOCK = struct.Struct("<15I")
U32 = L.U32
IBLOCK_MAX = (IBLOCK_SIZE - EXT_HDR.size) // EXT_ENTRY_SIZE    # 4 entries in i_block

# -- directory leaf tail (ext4_dir_entry_tail) ----------------------------------
DIR_TAIL_SIZE = 12
DIR_TAIL_FT = 0xDE
DIR_TAIL = struct.Struct("<IHBBI")      # inode 0, rec_len 12, name_len 0, 0xDE, checksum

XATTR_CSUM_OFF = 16                     # h_checksum in the EA block header

# -- the orphan file's blocks: inode numbers, then ext4_orphan_block_tail ----------
ORPHAN_MAGIC = 0x0B10CA04
ORPHAN_TAIL = struct.Struct("<II")      # ob_magic, ob_checksum
ORPHAN_TAIL_SIZE = ORPHAN_TAIL.size


def u32s(n: int) -> struct.Struct:
    """n little-endian 32-bit words."""
    return struct.Struct(f"<{n}I")
