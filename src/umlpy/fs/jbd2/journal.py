"""Journal: one jbd2 journal on a block device, addressed through a map.

The journal is a ring of blocks [s_first, s_maxlen) behind its superblock
(journal block 0).  It is reached through a mapping from journal logical
block to device block given by the filesystem (the journal inode's block
map: indirect for ext3, extents for ext4), so this package knows nothing
of inodes.  Loading checks the superblock as Linux's load_superblock and
journal_check_superblock do; every block number read from the journal or
its map is range-checked before it is used.
"""
from __future__ import annotations

from typing import Sequence

from umlpy.abi import errno as E
from umlpy.block.device import BlockDevice
from umlpy.fs.jbd2 import format as F
from umlpy.fs.jbd2.csum import crc32c
from umlpy.kernel.errors import KernelError


class JournalError(KernelError):
    """A journal this kernel will not use (errno as Linux's jbd2 gives it)."""

    def __init__(self, errno: int, msg: str) -> None:
        super().__init__(errno, "JBD2: " + msg)


class Journal:
    """The journal's superblock, geometry and block I/O, and the state the
    recovery and the writer share (Linux's journal_t, in part).

    bmap: the device block of each journal block (a list, or any sequence:
    a lazy extent map); its length is the journal file's size in blocks.
    fs_blocks: the filesystem's size; no block at or past it is ever
    written, whatever the journal says.
    """

    def __init__(self, dev: BlockDevice, block_size: int, bmap: Sequence[int],
                 fs_blocks: int) -> None:
        self.dev = dev
        self.bs = block_size
        self.bmap = bmap
        self.fs_blocks = fs_blocks
        self.sb = self._load_super()
        sb = self.sb
        self.first, self.last = sb.first, sb.maxlen
        self.tags = F.TagFormat(bool(sb.feature_incompat & F.INCOMPAT_64BIT),
                                bool(sb.feature_incompat & F.INCOMPAT_CSUM_V2),
                                bool(sb.feature_incompat & F.INCOMPAT_CSUM_V3))
        self.csum = sb.csum_v2or3
        self.tail_size = F.TAIL_SIZE if self.csum else 0
        self.seed = crc32c(0xFFFFFFFF, sb.uuid) if self.csum else 0
        # j_tail / j_tail_sequence: the oldest transaction still needed (0: none);
        # next_tid: j_transaction_sequence, the id the next transaction gets
        self.tail = sb.start
        self.tail_sequence = sb.sequence
        self.next_tid = (sb.sequence + 1) & 0xFFFFFFFF
        self.head = self.first

    # -- the superblock ---------------------------------------------------------
    def _load_super(self) -> F.JournalSuperblock:
        if len(self.bmap) < 1:
            raise JournalError(E.EINVAL, "journal is empty")
        sb = F.JournalSuperblock(self.read(0))
        if sb.magic != F.MAGIC or sb.blocktype not in (F.SUPERBLOCK_V1, F.SUPERBLOCK_V2):
            raise JournalError(E.EINVAL, "no valid journal superblock found")
        if sb.blocksize != self.bs:
            raise JournalError(E.EINVAL, f"journal block size {sb.blocksize} is not the "
                                         f"filesystem's {self.bs}")
        if not F.MIN_JOURNAL_BLOCKS <= sb.maxlen <= len(self.bmap):
            raise JournalError(E.EINVAL, f"invalid journal size {sb.maxlen}")
        if not 0 < sb.first < sb.maxlen:
            raise JournalError(E.EINVAL, f"invalid start block of journal: {sb.first}")
        bad = (sb.feature_compat & ~F.KNOWN_COMPAT, sb.feature_ro_compat & ~F.KNOWN_RO_COMPAT,
               sb.feature_incompat & ~F.KNOWN_INCOMPAT)
        if any(bad):
            raise JournalError(E.EINVAL, "unrecognised features on journal: "
                                         "compat %#x, ro_compat %#x, incompat %#x" % bad)
        if sb.feature_incompat & F.INCOMPAT_FAST_COMMIT:
            # its blocks replay through ext4's own callbacks, which this kernel lacks
            raise JournalError(E.EINVAL, "fast commit journals are not supported")
        both = F.INCOMPAT_CSUM_V2 | F.INCOMPAT_CSUM_V3
        if sb.feature_incompat & both == both:
            raise JournalError(E.EINVAL, "can't enable checksumming v2 and v3 at the same time")
        if sb.csum_v2or3:
            if sb.feature_compat & F.COMPAT_CHECKSUM:
                raise JournalError(E.EINVAL, "can't enable checksumming v1 and v2/3 at the "
                                             "same time")
            if sb.checksum_type != F.CRC32C_CHKSUM:
                raise JournalError(E.EINVAL, "unknown checksum type")
            if sb.checksum != sb.compute_checksum():
                raise JournalError(E.EBADMSG, "journal checksum error")
        if sb.start and not sb.first <= sb.start < sb.maxlen:
            raise JournalError(E.EINVAL, f"invalid log start block {sb.start}")
        return sb

    def write_super(self) -> None:
        """Store the superblock's tail (s_start, s_sequence) and errno, durably."""
        self.write(0, self.sb.pack())
        self.dev.flush()

    # -- block I/O ----------------------------------------------------------------
    def device_block(self, lblk: int) -> int:
        """jbd2_journal_bmap: the device block of journal block lblk, checked."""
        if not 0 <= lblk < len(self.bmap):
            raise JournalError(E.EUCLEAN, f"journal block {lblk} out of range")
        pblk = self.bmap[lblk]
        if not 0 < pblk < self.fs_blocks:
            raise JournalError(E.EIO, f"bad block at offset {lblk}")
        return pblk

    def read(self, lblk: int) -> bytes:
        return self.dev.read(self.device_block(lblk) * self.bs, self.bs)

    def write(self, lblk: int, data: bytes) -> None:
        self.dev.write(self.device_block(lblk) * self.bs, data)

    def write_home(self, blocknr: int, data: bytes) -> None:
        """Write a block to its place in the filesystem (replay, checkpoint)."""
        if not 0 <= blocknr < self.fs_blocks:
            raise JournalError(E.EIO, f"block {blocknr} is outside the filesystem")
        self.dev.write(blocknr * self.bs, data)

    def wrap(self, lblk: int) -> int:
        """The ring: a block number that ran off the end comes back after s_first."""
        return lblk if lblk < self.last else self.first + (lblk - self.first) % (self.last - self.first)

