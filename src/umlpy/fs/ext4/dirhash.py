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
the legacy hash.  The transforms themselves run compiled (arch_um/dirhash.py):
every lookup in an indexed directory hashes its name, and in Python the
hash cost more than the rest of the lookup.
"""
from __future__ import annotations

import struct
from functools import lru_cache

from arch_um.dirhash import compute
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

LEGACY, HALF_MD4, TEA, LEGACY_UNSIGNED, HALF_MD4_UNSIGNED, TEA_UNSIGNED, SIPHASH = range(7)
UNSIGNED_OFFSET = 3            # version + 3: the unsigned flavour of 0-2

FLAGS_SIGNED_HASH = 0x1        # superblock s_flags
FLAGS_UNSIGNED_HASH = 0x2

EOF_32BIT = 0x7FFFFFFF         # the 32-bit readdir cookie meaning "end of directory"

_DEFAULT_SEED = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


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


@lru_cache(maxsize=256)     # a create or unlink hashes its name several times
def dirhash(name: bytes, version: int, seed: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """(major, minor) hash of name under hash version 0-5 and the superblock's
    seed (all zero or None: the default seed).  SipHash (casefolded encrypted
    directories) is not supported: EOPNOTSUPP."""
    signed = version < UNSIGNED_OFFSET and not name.isascii()   # ASCII hashes alike
    base = version % UNSIGNED_OFFSET if version < SIPHASH else version
    if base not in (LEGACY, HALF_MD4, TEA):
        raise KernelError(E.EOPNOTSUPP, f"ext4: directory hash version {version}")
    major, minor = compute(name, base, signed, seed if seed and any(seed) else _DEFAULT_SEED)
    if base == LEGACY:
        minor = 0
    major &= ~1
    if major == EOF_32BIT << 1:
        major = (EOF_32BIT - 1) << 1
    return major, minor
