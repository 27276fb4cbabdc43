"""The two CRCs of the journal, with Linux's conventions.

Linux's crc32c() and crc32_be() take a running value and neither invert
it on entry nor on exit; jbd2 seeds them itself (~0, or the journal's
UUID checksum).  The PyPI crc32c package and zlib compute the finished,
inverted CRCs, so each call here inverts around them.  crc32_be (the
non-reflected CRC-32 of journal checksum v1) has no C implementation at
hand: it is zlib's reflected CRC-32 over bit-reversed bytes, bit-reversed
back, which keeps every byte loop in C.
"""
from __future__ import annotations

import zlib

import crc32c as _crc32c

_MASK = 0xFFFFFFFF
_REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_REVERSE_TABLE = bytes.maketrans(bytes(range(256)), _REVERSE)


def crc32c(seed: int, data: bytes | bytearray | memoryview) -> int:
    """Linux's crc32c(seed, data): CRC-32C continued from seed, no final xor."""
    return _crc32c.crc32c(data, seed ^ _MASK) ^ _MASK


def _rev32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "little").translate(_REVERSE_TABLE), "big")


def crc32_be(seed: int, data: bytes | bytearray | memoryview) -> int:
    """Linux's crc32_be(seed, data): big-endian (MSB-first) CRC-32, no final xor."""
    le = zlib.crc32(bytes(data).translate(_REVERSE_TABLE), _rev32(seed) ^ _MASK) ^ _MASK
    return _rev32(le)
