"""UML's COW file format (v3, and reading v1/v2), byte-compatible.

Header (v3, packed, big-endian): magic "MOOO" (0x4f4f4f4d), version 3,
32-bit backing mtime, 64-bit backing size, sector size, alignment,
cow_format (0 = bitmap), then the 4096-byte backing file path.  The bitmap
(one bit per sector, LSB first) starts at the header size rounded up to the
alignment, the data at the end of the bitmap rounded up again.  See
shared/reference/uml-compat.md; uml_moo reads what this writes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = 0x4F4F4F4D
PATH_LEN_V3 = 4096
_V3 = struct.Struct(">IIIQIII4096s")
HEADER_SIZE = _V3.size   # 4128
SECTOR = 512
ALIGN = 4096


class CowFormatError(Exception):
    pass


@dataclass
class CowHeader:
    version: int
    backing: str
    mtime: int
    size: int
    sectorsize: int = SECTOR
    alignment: int = ALIGN

    @property
    def bitmap_offset(self) -> int:
        if self.version < 3:
            return _V1_SIZE if self.version == 1 else _V2_SIZE
        return _round_up(HEADER_SIZE, self.alignment)

    @property
    def bitmap_len(self) -> int:
        sectors = (self.size + self.sectorsize - 1) // self.sectorsize
        return (sectors + 7) // 8

    @property
    def data_offset(self) -> int:
        end = self.bitmap_offset + self.bitmap_len
        if self.version < 3:
            return _round_up(end, self.sectorsize)
        return _round_up(end, self.alignment)

    def pack(self) -> bytes:
        path = self.backing.encode()
        if len(path) >= PATH_LEN_V3:
            raise CowFormatError("backing file name too long")
        return _V3.pack(MAGIC, 3, self.mtime & 0xFFFFFFFF, self.size, self.sectorsize,
                        self.alignment, 0, path.ljust(PATH_LEN_V3, b"\0"))


def _round_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


# v1: host order: magic, version, char path[256], time_t mtime, u64 size, int sectorsize
_V1 = struct.Struct("<II256sqQi")
_V1_SIZE = _V1.size
# v2: network order: magic, version, char path[4096], int mtime, u64 size, int sectorsize
_V2 = struct.Struct(">II4096siQi")
_V2_SIZE = _V2.size


def is_cow(head: bytes) -> bool:
    if len(head) < 8:
        return False
    return struct.unpack(">I", head[:4])[0] == MAGIC or struct.unpack("<I", head[:4])[0] == MAGIC


def parse(head: bytes) -> CowHeader:
    """Parse a COW header (at least HEADER_SIZE bytes of the file's start)."""
    if not is_cow(head):
        raise CowFormatError("not a COW file")
    big = struct.unpack(">I", head[:4])[0] == MAGIC
    version = struct.unpack(">I" if big else "<I", head[4:8])[0]
    if version == 1:
        _m, _v, path, mtime, size, sectorsize = _V1.unpack_from(head)
        return CowHeader(1, _cstr(path), mtime, size, sectorsize, SECTOR)
    if version == 2:
        _m, _v, path, mtime, size, sectorsize = _V2.unpack_from(head)
        return CowHeader(2, _cstr(path), mtime, size, sectorsize, SECTOR)
    if version != 3:
        raise CowFormatError(f"unknown COW version {version}")
    if len(head) >= 36 and head[32:36] == b"\0\0\0\0":
        # "broken v3" from 64-bit builds before 2005: unpacked struct, 64-bit mtime
        mtime, size, sectorsize, alignment, _fmt = struct.unpack_from(">QQIII", head, 8)
        path = head[36:36 + PATH_LEN_V3]
        return CowHeader(3, _cstr(path), mtime, size, sectorsize, alignment)
    _m, _v, mtime, size, sectorsize, alignment, fmt, path = _V3.unpack_from(head)
    if fmt != 0:
        raise CowFormatError(f"unknown COW format {fmt}")
    return CowHeader(3, _cstr(path), mtime, size, sectorsize, alignment)


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="surrogateescape")
