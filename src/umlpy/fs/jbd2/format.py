"""jbd2 on-disk format: journal superblock, block headers, descriptor tags,
revoke and commit blocks (Documentation/filesystems/ext4/journal.rst).

Every field is big-endian.  Only layouts, constants and pure encode and
decode helpers live here; what the bytes mean for recovery and for the
writer lives in recovery.py and transaction.py.  Nothing here trusts a
length or count read from disk: decoders clip to the block they are given.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from umlpy.fs.jbd2.csum import crc32c

MAGIC = 0xC03B3998

# h_blocktype
DESCRIPTOR_BLOCK, COMMIT_BLOCK, SUPERBLOCK_V1, SUPERBLOCK_V2, REVOKE_BLOCK = 1, 2, 3, 4, 5

# features (jbd2.h); COMPAT_CHECKSUM is checksum v1 (crc32_be in the commit block)
COMPAT_CHECKSUM = 0x1
INCOMPAT_REVOKE = 0x1
INCOMPAT_64BIT = 0x2
INCOMPAT_ASYNC_COMMIT = 0x4
INCOMPAT_CSUM_V2 = 0x8
INCOMPAT_CSUM_V3 = 0x10
INCOMPAT_FAST_COMMIT = 0x20
KNOWN_COMPAT = COMPAT_CHECKSUM
KNOWN_RO_COMPAT = 0
KNOWN_INCOMPAT = (INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2
                  | INCOMPAT_CSUM_V3 | INCOMPAT_FAST_COMMIT)
INCOMPAT_NAMES = {INCOMPAT_REVOKE: "revoke", INCOMPAT_64BIT: "64bit",
                  INCOMPAT_ASYNC_COMMIT: "async_commit", INCOMPAT_CSUM_V2: "checksum_v2",
                  INCOMPAT_CSUM_V3: "checksum_v3", INCOMPAT_FAST_COMMIT: "fast_commit"}

# descriptor tag t_flags
FLAG_ESCAPE = 0x1        # the block began with MAGIC, which the log copy has zeroed
FLAG_SAME_UUID = 0x2     # no 16-byte UUID follows this tag
FLAG_DELETED = 0x4
FLAG_LAST_TAG = 0x8

# commit block h_chksum_type / h_chksum_size (checksum v1)
CRC32_CHKSUM, CRC32_CHKSUM_SIZE = 1, 4
CRC32C_CHKSUM = 4        # s_checksum_type of checksum v2/v3 journals

MIN_JOURNAL_BLOCKS = 1024
HEADER = struct.Struct(">III")          # h_magic, h_blocktype, h_sequence
HEADER_SIZE = HEADER.size
TAIL_SIZE = 4                           # jbd2_journal_block_tail: t_checksum at the block's end
REVOKE_HEADER_SIZE = HEADER_SIZE + 4    # + r_count (bytes used, this header included)
UUID_SIZE = 16
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")

# commit_header: type, size, pad, 8 checksum words, then the commit time
COMMIT_TYPE_OFF, COMMIT_SIZE_OFF, COMMIT_CHKSUM_OFF = 12, 13, 16
COMMIT_HEADER_SIZE = 0x3C
COMMIT_TIME = struct.Struct(">QI")      # h_commit_sec, h_commit_nsec
COMMIT_TIME_OFF = 0x30


def tid_gt(x: int, y: int) -> bool:
    """x after y in 32-bit wrapping transaction ids."""
    return 0 < (x - y) & 0xFFFFFFFF < 0x80000000


def tid_geq(x: int, y: int) -> bool:
    return x == y or tid_gt(x, y)


def header(block: bytes | bytearray) -> tuple[int, int] | None:
    """(blocktype, sequence) of a journal block, None without the magic."""
    magic, btype, seq = HEADER.unpack_from(block)
    return (btype, seq) if magic == MAGIC else None


class JournalSuperblock:
    """journal_superblock_t; the raw block is kept so unmodelled bytes survive."""
    FIELDS = {
        "blocktype": 0x4, "blocksize": 0xC, "maxlen": 0x10, "first": 0x14, "sequence": 0x18,
        "start": 0x1C, "errno": 0x20, "feature_compat": 0x24, "feature_incompat": 0x28,
        "feature_ro_compat": 0x2C, "nr_users": 0x40, "max_transaction": 0x48,
        "num_fc_blks": 0x54, "head": 0x58, "checksum": 0xFC,
    }
    CHECKSUM_TYPE_OFF = 0x50
    UUID_OFF = 0x30
    SIZE = 1024                 # sizeof(journal_superblock_t): what its checksum covers

    def __init__(self, raw: bytes) -> None:
        self.raw = bytearray(raw[:self.SIZE])
        self.magic = U32.unpack_from(self.raw, 0)[0]
        for name, off in self.FIELDS.items():
            setattr(self, name, U32.unpack_from(self.raw, off)[0])
        self.checksum_type = self.raw[self.CHECKSUM_TYPE_OFF]
        self.uuid = bytes(self.raw[self.UUID_OFF:self.UUID_OFF + UUID_SIZE])
        if self.blocktype == SUPERBLOCK_V1:
            # version 1 has no feature words: whatever is there means nothing
            self.feature_compat = self.feature_incompat = self.feature_ro_compat = 0

    @property
    def csum_v2or3(self) -> bool:
        return bool(self.feature_incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3))

    def compute_checksum(self) -> int:
        raw = bytearray(self.raw)
        U32.pack_into(raw, self.FIELDS["checksum"], 0)
        return crc32c(0xFFFFFFFF, raw)

    def pack(self) -> bytes:
        for name, off in self.FIELDS.items():
            if name.startswith("feature_") and self.blocktype == SUPERBLOCK_V1:
                continue
            U32.pack_into(self.raw, off, getattr(self, name) & 0xFFFFFFFF)
        if self.csum_v2or3:
            self.checksum = self.compute_checksum()
            U32.pack_into(self.raw, self.FIELDS["checksum"], self.checksum)
        return bytes(self.raw)


@dataclass(frozen=True)
class TagFormat:
    """How descriptor tags are laid out for one set of journal features."""
    is_64bit: bool
    csum_v2: bool
    csum_v3: bool

    @property
    def size(self) -> int:
        """journal_tag_bytes: tag3 is 16; else 12, +2 with csum v2, -4 without 64bit."""
        if self.csum_v3:
            return 16
        return 12 + (2 if self.csum_v2 else 0) - (0 if self.is_64bit else 4)

    def decode(self, buf: bytes | bytearray, off: int) -> tuple[int, int, int]:
        """(block number, flags, checksum) of the tag at off (off + size <= len(buf))."""
        if self.csum_v3:
            lo, flags, hi, csum = struct.unpack_from(">IIII", buf, off)
        else:
            lo, csum, flags = struct.unpack_from(">IHH", buf, off)
            hi = U32.unpack_from(buf, off + 8)[0] if self.is_64bit else 0
        return lo | (hi << 32 if self.is_64bit else 0), flags, csum

    def encode(self, blocknr: int, flags: int, csum: int) -> bytes:
        hi = blocknr >> 32 if self.is_64bit else 0
        if self.csum_v3:
            return struct.pack(">IIII", blocknr & 0xFFFFFFFF, flags, hi, csum)
        out = struct.pack(">IHH", blocknr & 0xFFFFFFFF, csum & 0xFFFF if self.csum_v2 else 0, flags)
        if self.is_64bit:
            out += U32.pack(hi)
        return out.ljust(self.size, b"\0")


def parse_tags(block: bytes | bytearray, fmt: TagFormat, tail: int) -> list[tuple[int, int, int]]:
    """The (block number, flags, checksum) tags of a descriptor block, as
    count_tags walks them: up to LAST_TAG or to the end of the usable space
    (the block less its checksum tail); a tag not followed by SAME_UUID is
    followed by a 16-byte UUID."""
    out = []
    off, end = HEADER_SIZE, len(block) - tail
    while off + fmt.size <= end:
        tag = fmt.decode(block, off)
        out.append(tag)
        off += fmt.size + (0 if tag[1] & FLAG_SAME_UUID else UUID_SIZE)
        if tag[1] & FLAG_LAST_TAG:
            break
    return out


def revoke_records(block: bytes | bytearray, is_64bit: bool, tail: int) -> list[int] | None:
    """Block numbers of a revoke block; None when r_count overruns the block
    (scan_revoke_records' EINVAL)."""
    count = U32.unpack_from(block, HEADER_SIZE)[0]
    if count > len(block) - tail:
        return None
    rec = U64 if is_64bit else U32
    return [rec.unpack_from(block, off)[0]
            for off in range(REVOKE_HEADER_SIZE, count - rec.size + 1, rec.size)]


def block_tail_csum(seed: int, block: bytes | bytearray) -> int:
    """Checksum of a descriptor or revoke block: the block with its tail zeroed."""
    return crc32c(seed, bytes(block[:-TAIL_SIZE]) + bytes(TAIL_SIZE))


def commit_csum(seed: int, block: bytes | bytearray) -> int:
    """Checksum v2/v3 of a commit block: the block with h_chksum[0] zeroed."""
    raw = bytearray(block)
    U32.pack_into(raw, COMMIT_CHKSUM_OFF, 0)
    return crc32c(seed, raw)


def tag_csum(seed: int, sequence: int, data: bytes | bytearray) -> int:
    """Checksum v2/v3 of a logged block: the transaction id, then the block as logged."""
    return crc32c(crc32c(seed, U32.pack(sequence)), data)
