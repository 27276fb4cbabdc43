"""ext4 metadata checksums (metadata_csum; crc16 for the older gdt_csum).

Every checksum is crc32c as the kernel's ext4_chksum computes it: seeded
with the value given and without the final inversion, over the structure
with its own checksum field taken as zero.  Most are seeded with the
filesystem's seed (crc32c of the UUID, or s_checksum_seed under
metadata_csum_seed); inode, extent and directory blocks with the inode's
seed, which adds the inode number and generation.  The `crc32c` package
computes them in C, and `crcmod` (crcmod-plus) gdt_csum's crc16 (the
ANSI polynomial, reflected, from 0xFFFF: CRC-16/MODBUS).
"""
from __future__ import annotations

import struct

import crcmod

from umlpy.fs.ext4 import layout as X
from umlpy.fs.jbd2.csum import crc32c as chksum    # ext4_chksum: crc32c from a seed, no final xor

_MASK = 0xFFFFFFFF
_LE32 = struct.Struct("<I")
_LE64 = struct.Struct("<Q")
_crc16 = crcmod.mkCrcFun(0x18005, initCrc=0xFFFF, rev=True, xorOut=0)


def fs_seed(sb: X.Superblock) -> int:
    if sb.feature_incompat & X.INCOMPAT_CSUM_SEED:
        return sb.checksum_seed
    return chksum(_MASK, sb.uuid)


def superblock(raw: bytes | bytearray) -> int:
    return chksum(_MASK, memoryview(raw)[:1020])


def inode_seed(seed: int, ino: int, generation: int) -> int:
    return chksum(chksum(seed, _LE32.pack(ino)), _LE32.pack(generation & _MASK))


def inode(iseed: int, raw: bytes | bytearray, has_hi: bool) -> int:
    """Over the whole on-disk inode with i_checksum_lo (and _hi) as zero:
    a copy with them zeroed, one crc32c."""
    buf = bytearray(raw)
    buf[X.INODE_CSUM_LO:X.INODE_CSUM_LO + 2] = b"\0\0"
    if has_hi:
        buf[X.INODE_CSUM_HI:X.INODE_CSUM_HI + 2] = b"\0\0"
    return chksum(iseed, buf)


def group_desc(seed: int, g: int, raw: bytes | bytearray) -> int:
    """The 16 bits bg_checksum holds under metadata_csum."""
    mv = memoryview(raw)
    off = X.GroupDesc64.CSUM_OFF
    c = chksum(seed, _LE32.pack(g))
    c = chksum(c, mv[:off])
    c = chksum(c, b"\0\0")
    return chksum(c, mv[off + 2:]) & 0xFFFF


def group_desc_crc16(uuid: bytes, g: int, raw: bytes | bytearray) -> int:
    """bg_checksum under gdt_csum (uninit_bg): crc16 of the UUID, group and descriptor."""
    off = X.GroupDesc64.CSUM_OFF
    return _crc16(b"".join((uuid, _LE32.pack(g), raw[:off], raw[off + 2:])))


def bitmap(seed: int, data: bytes | bytearray | memoryview) -> int:
    return chksum(seed, data)


def xattr_block(seed: int, blk: int, buf: bytes | bytearray) -> int:
    mv = memoryview(buf)
    off = X.XATTR_CSUM_OFF
    c = chksum(seed, _LE64.pack(blk))
    c = chksum(c, mv[:off])
    c = chksum(c, b"\0\0\0\0")
    return chksum(c, mv[off + 4:])


def orphan_block(seed: int, blk: int, slots: bytes | bytearray | memoryview) -> int:
    """ob_checksum: the orphan file inode's seed, the block's number on the
    device, then its slots (the tail excluded)."""
    return chksum(chksum(seed, _LE64.pack(blk)), slots)
