"""ext4's directory-name hashes (Linux's fs/ext4/hash.c; on-disk format).

An indexed (dir_index) directory orders its leaves by a 32-bit hash of each
name, so lookups, inserts and e2fsck must all compute the very hash Linux
computed when the index was built: the legacy "hack" hash, half-MD4 or TEA
(Davis-Meyer over TEA), each in a signed or unsigned flavour.  The flavour
exists because the original code fed `char` bytes to the hash and `char` is
signed on x86 but unsigned on ARM/PowerPC; the superblock records which one
the filesystem was made with (EXT2_FLAGS_SIGNED_HASH / UNSIGNED_HASH) and
versions 3-5 are the unsigned variants of 0-2.  The flavours differ only for
names with bytes >= 0x80.

The hash is returned as (major, minor): major has its low bit cleared (the
index uses that bit to mark hash collisions that continue into the next
leaf) and never equals the 32-bit end-of-directory cookie; minor is 0 for
the legacy hash.  Names are hashed a 32-bit word at a time: a name is short,
but a directory of 50 000 inserts hashes every name more than once.
"""
from __future__ import annotations

import struct
from functools import lru_cache

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

LEGACY, HALF_MD4, TEA, LEGACY_UNSIGNED, HALF_MD4_UNSIGNED, TEA_UNSIGNED, SIPHASH = range(7)
UNSIGNED_OFFSET = 3            # version + 3: the unsigned flavour of 0-2

FLAGS_SIGNED_HASH = 0x1        # superblock s_flags
FLAGS_UNSIGNED_HASH = 0x2

EOF_32BIT = 0x7FFFFFFF         # the 32-bit readdir cookie meaning "end of directory"

_M = 0xFFFFFFFF
_DEFAULT_SEED = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_HIGH_BITS = (0, 0x80, 0x8080, 0x808080, 0x80808080)    # sign bit of each of n bytes
_TEA_DELTA = 0x9E3779B9


def seed_words(raw: bytes) -> tuple[int, int, int, int]:
    """s_hash_seed (16 bytes, as stored) as the four little-endian words the hashes use."""
    return struct.unpack("<4I", raw)


def effective_version(root_version: int, sb_flags: int) -> int:
    """The hash a directory uses: the index root's version, made unsigned when the
    superblock says the filesystem was built with unsigned chars (Linux's
    s_hash_unsigned; with neither flag x86 Linux takes signed)."""
    if root_version <= TEA and sb_flags & FLAGS_UNSIGNED_HASH:
        return root_version + UNSIGNED_OFFSET
    return root_version


@lru_cache(maxsize=None)
def _be_words(n: int) -> struct.Struct:
    return struct.Struct(f">{n}I")


def _hashbuf(msg: bytes, num: int, signed: bool) -> list[int]:
    """Linux's str2hashbuf: num words of msg, big-endian within a word (each byte
    shifted in after the previous), the last partial word and the missing ones
    padded with the length of msg repeated in every byte."""
    n = len(msg)
    pad = n | n << 8
    pad = (pad | pad << 16) & _M
    msg = msg[:num * 4]
    full, rem = divmod(len(msg), 4)
    words = list(_be_words(full).unpack_from(msg))
    if signed:
        # a signed byte b >= 0x80 adds b - 256: subtract 0x100 at its place
        words = [(w - ((w & 0x80808080) << 1)) & _M for w in words]
    if full < num:
        tail = int.from_bytes(msg[full * 4:], "big")
        if signed:
            tail -= (tail & _HIGH_BITS[rem]) << 1
        words.append(((pad << 8 * rem) + tail) & _M)
        words.extend([pad] * (num - full - 1))
    return words


def _half_md4(buf: list[int], x: list[int]) -> None:
    """MD4's compression function cut down to three rounds of eight steps
    (Linux's half_md4_transform); adds the result into buf."""
    a, b, c, d = buf
    x0, x1, x2, x3, x4, x5, x6, x7 = x
    # round 1: F(x, y, z) = z ^ (x & (y ^ z))
    a = (a + (d ^ (b & (c ^ d))) + x0) & _M; a = (a << 3 | a >> 29) & _M
    d = (d + (c ^ (a & (b ^ c))) + x1) & _M; d = (d << 7 | d >> 25) & _M
    c = (c + (b ^ (d & (a ^ b))) + x2) & _M; c = (c << 11 | c >> 21) & _M
    b = (b + (a ^ (c & (d ^ a))) + x3) & _M; b = (b << 19 | b >> 13) & _M
    a = (a + (d ^ (b & (c ^ d))) + x4) & _M; a = (a << 3 | a >> 29) & _M
    d = (d + (c ^ (a & (b ^ c))) + x5) & _M; d = (d << 7 | d >> 25) & _M
    c = (c + (b ^ (d & (a ^ b))) + x6) & _M; c = (c << 11 | c >> 21) & _M
    b = (b + (a ^ (c & (d ^ a))) + x7) & _M; b = (b << 19 | b >> 13) & _M
    # round 2: G(x, y, z) = (x & y) + ((x ^ y) & z), constant 0x5A827999
    k = 0x5A827999
    a = (a + ((b & c) + ((b ^ c) & d)) + x1 + k) & _M; a = (a << 3 | a >> 29) & _M
    d = (d + ((a & b) + ((a ^ b) & c)) + x3 + k) & _M; d = (d << 5 | d >> 27) & _M
    c = (c + ((d & a) + ((d ^ a) & b)) + x5 + k) & _M; c = (c << 9 | c >> 23) & _M
    b = (b + ((c & d) + ((c ^ d) & a)) + x7 + k) & _M; b = (b << 13 | b >> 19) & _M
    a = (a + ((b & c) + ((b ^ c) & d)) + x0 + k) & _M; a = (a << 3 | a >> 29) & _M
    d = (d + ((a & b) + ((a ^ b) & c)) + x2 + k) & _M; d = (d << 5 | d >> 27) & _M
    c = (c + ((d & a) + ((d ^ a) & b)) + x4 + k) & _M; c = (c << 9 | c >> 23) & _M
    b = (b + ((c & d) + ((c ^ d) & a)) + x6 + k) & _M; b = (b << 13 | b >> 19) & _M
    # round 3: H(x, y, z) = x ^ y ^ z, constant 0x6ED9EBA1
    k = 0x6ED9EBA1
    a = (a + (b ^ c ^ d) + x3 + k) & _M; a = (a << 3 | a >> 29) & _M
    d = (d + (a ^ b ^ c) + x7 + k) & _M; d = (d << 9 | d >> 23) & _M
    c = (c + (d ^ a ^ b) + x2 + k) & _M; c = (c << 11 | c >> 21) & _M
    b = (b + (c ^ d ^ a) + x6 + k) & _M; b = (b << 15 | b >> 17) & _M
    a = (a + (b ^ c ^ d) + x1 + k) & _M; a = (a << 3 | a >> 29) & _M
    d = (d + (a ^ b ^ c) + x5 + k) & _M; d = (d << 9 | d >> 23) & _M
    c = (c + (d ^ a ^ b) + x0 + k) & _M; c = (c << 11 | c >> 21) & _M
    b = (b + (c ^ d ^ a) + x4 + k) & _M; b = (b << 15 | b >> 17) & _M
    buf[0] = (buf[0] + a) & _M
    buf[1] = (buf[1] + b) & _M
    buf[2] = (buf[2] + c) & _M
    buf[3] = (buf[3] + d) & _M


def _tea(buf: list[int], x: list[int]) -> None:
    """16 cycles of TEA keyed by x over buf's first two words, added back into them."""
    b0, b1 = buf[0], buf[1]
    a, b, c, d = x
    s = 0
    for _ in range(16):
        s = (s + _TEA_DELTA) & _M
        b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + s) ^ ((b1 >> 5) + b)) & _M)) & _M
        b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + s) ^ ((b0 >> 5) + d)) & _M)) & _M
    buf[0] = (buf[0] + b0) & _M
    buf[1] = (buf[1] + b1) & _M


# c * 7152373 as a u32 for each byte value, read as signed and as unsigned char
_HACK_UNSIGNED = tuple(c * 7152373 & _M for c in range(256))
_HACK_SIGNED = tuple((c - 256 if c >= 128 else c) * 7152373 & _M for c in range(256))


def _legacy(name: bytes, signed: bool) -> int:
    """The original dx_hack_hash: a chained byte hash, inherently a byte at a time."""
    table = _HACK_SIGNED if signed else _HACK_UNSIGNED
    h0, h1 = 0x12A3FE2D, 0x37ABE8F9
    for ch in name:
        h = (h1 + (h0 ^ table[ch])) & _M
        if h & 0x80000000:
            h = (h - 0x7FFFFFFF) & _M
        h1, h0 = h0, h
    return (h0 << 1) & _M


@lru_cache(maxsize=256)     # a create or unlink hashes its name several times
def dirhash(name: bytes, version: int, seed: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """(major, minor) hash of name under hash version 0-5 and the superblock's
    seed (all zero or None: the default seed).  SipHash (casefolded encrypted
    directories) is not supported: EOPNOTSUPP."""
    signed = version < UNSIGNED_OFFSET and not name.isascii()   # ASCII hashes alike
    base = version % UNSIGNED_OFFSET if version < SIPHASH else version
    if base == LEGACY:
        major, minor = _legacy(name, signed), 0
    elif base in (HALF_MD4, TEA):
        buf = list(seed if seed and any(seed) else _DEFAULT_SEED)
        words, step, transform = (8, 32, _half_md4) if base == HALF_MD4 else (4, 16, _tea)
        for off in range(0, len(name), step):
            transform(buf, _hashbuf(name[off:], words, signed))
        major, minor = (buf[1], buf[2]) if base == HALF_MD4 else (buf[0], buf[1])
    else:
        raise KernelError(E.EOPNOTSUPP, f"ext4: directory hash version {version}")
    major &= ~1
    if major == EOF_32BIT << 1:
        major = (EOF_32BIT - 1) << 1
    return major, minor
