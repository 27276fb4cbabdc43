"""Journalled metadata, ordered mode: ext3/ext4 mounted read-write with a
journal (Linux's fs/ext4/ext4_jbd2.c and the commit path of fs/jbd2).

While mounted, no metadata block goes home except through the log.  The
driver changes metadata in its buffer cache and inode objects as before;
at a commit point (fsync/fdatasync, sync/syncfs, the commit= interval,
umount and remount read-only, and right after a syscall that left more
dirty blocks than a transaction should hold) `commit` gathers everything
dirty: inodes into their table blocks, group descriptors, the superblock
(when its bytes changed), bitmaps, directory, extent, indirect, xattr and
symlink blocks; and commits them as one jbd2 transaction, with revoke
records for freed blocks that have a copy in the log.  Committed blocks
stay pinned in the cache until a checkpoint writes them home: when the
log is short of room for another transaction, and at unmount, which
leaves the journal empty.

Ordered mode: file data is written to its blocks when they are
allocated (at the guest's write, or at the write-back of delayed
allocation or of a shared mapping: delalloc.py), so it is on the device
before any commit that makes metadata point at it; the commit's flush before its commit block makes
it durable first (with async_commit, which skips that flush, an explicit
one does).  Blocks freed by the running transaction are not handed out
again until it commits (ext4 keeps them busy the same way): else data
written into a freed block would overwrite what the committed metadata
still references.  When an allocation finds the disk full but for such
blocks, the transaction is committed at once and the allocation retried
(ext4_should_retry_alloc), the one commit that can fall inside a syscall.

Atomicity: a commit covers every change since the previous one, so each
syscall's metadata is replayed whole or not at all.  A commit larger
than jbd2's quarter of the log stays one transaction as long as it fits
in the log; only one that outgrows the whole journal is split (as jbd2
would have split it: transactions of a quarter of the log each), and a
crash between its parts can leave what e2fsck repairs.  A crash loses
what no commit covered: changes since the last fsync, sync or interval.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from arch_um import clock
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext2.journal import journal_map
from umlpy.fs.jbd2 import Journal, JournalWriter
from umlpy.fs.jbd2 import format as F

if TYPE_CHECKING:
    from umlpy.fs.ext4.fs import Ext4Fs
    from umlpy.kernel.sched import Scheduler, Timer

DEFAULT_COMMIT_S = 5        # JBD2_DEFAULT_MAX_COMMIT_AGE


def open_journal(fs: Ext4Fs) -> Journal:
    """The filesystem's journal, checked (its superblock as jbd2 loads it)."""
    return Journal(fs.device, fs.block_size, journal_map(fs), fs.sb.blocks_count)


class MetadataJournal:
    """The running transaction of a read-write mount: what to revoke, the
    commit interval's timer, commit and close."""

    def __init__(self, fs: Ext4Fs, journal: Journal, sched: Scheduler | None,
                 commit_s: int) -> None:
        self.fs = fs
        self.writer = JournalWriter(journal)
        self.revokes: set[int] = set()
        self.sched = sched
        self.interval_ns = commit_s * 10**9
        self._timer: Timer | None = None
        self._soon: Timer | None = None
        bc = fs.bcache
        bc.too_dirty = self._too_dirty
        # a transaction should stay within jbd2's quarter of the log: commit
        # after the syscall that dirtied half of that (inodes are added at commit)
        bc.dirty_limit = max(1, self.writer.max_log_blocks // 2)
        self._arm()

    # -- when ---------------------------------------------------------------------
    def _arm(self) -> None:
        if self.sched is not None:
            self._timer = self.sched.add_timer(clock.monotonic_ns() + self.interval_ns,
                                               self._interval)

    def _interval(self) -> None:
        """kjournald's periodic commit (commit=N seconds), after the flusher's
        write-back of the data delayed since the last one (delalloc.py)."""
        self._timer = None
        da = self.fs.delalloc
        if da is not None:
            da.flush_older(clock.monotonic_ns() - self.interval_ns)
        self.fs.commit()
        self._arm()

    def _too_dirty(self) -> None:
        """Too many dirty blocks for one transaction: commit once the
        current syscall is done (a new handle would wait for that commit)."""
        if self.sched is not None and self._soon is None:
            self._soon = self.sched.add_timer(clock.monotonic_ns(), self._commit_soon)

    def _commit_soon(self) -> None:
        self._soon = None
        self.fs.commit()

    # -- what ---------------------------------------------------------------------
    def freed(self, blocks: list[int]) -> None:
        """Blocks just freed: those with a copy in the log get a revoke
        record, so no replay writes that copy over their next owner's data."""
        logged = self.writer.logged
        if logged:
            self.revokes.update(b for b in blocks if b in logged)

    def stage_super(self) -> None:
        """The superblock into the cache block that holds it, when its bytes
        changed (its write time is the direct writes' alone, as ext4's)."""
        fs = self.fs
        blk, off = divmod(L.SUPERBLOCK_OFFSET, fs.block_size)
        buf = fs.bcache.get(blk)
        raw = fs._encode_super()
        if buf[off:off + L.SUPERBLOCK_SIZE] != raw:
            buf[off:off + L.SUPERBLOCK_SIZE] = raw
            fs.bcache.mark_dirty(blk, buf)

    def commit(self, blocks: dict[int, bytes]) -> None:
        """Log blocks (every dirty one, sealed) and the pending revokes as
        one transaction (split only when larger than the journal), then
        pin them in the cache until they are checkpointed."""
        w, fs = self.writer, self.fs
        revokes, self.revokes = sorted(self.revokes), set()
        need = w.log_blocks(len(blocks), len(revokes))
        if w.free() < need or w.free() < w.max_log_blocks:
            self.checkpoint()           # jbd2 makes room before a commit needs it
        j = w.j
        if j.sb.feature_incompat & F.INCOMPAT_ASYNC_COMMIT:
            fs.device.flush()           # ordered: the data before the commit block
        ring = j.last - j.first - 1
        limit = need if need <= ring else None
        for blk in revokes:
            w.begin(1, limit).revoke(blk)
        for blk, data in blocks.items():
            w.begin(1, limit).add(blk, data)
        w.commit()
        fs.bcache.pinned.update(blocks)
        fs.alloc.release_busy()

    def checkpoint(self) -> None:
        self.writer.checkpoint()
        self.fs.bcache.pinned.clear()

    def close(self) -> None:
        """Unmount, remount read-only: the last commit written home, the
        journal empty (s_start 0), the cache on its own again."""
        for t in (self._timer, self._soon):
            if t is not None:
                t.cancel()
        self._timer = self._soon = None
        self.writer.close()
        bc = self.fs.bcache
        bc.pinned.clear()
        bc.too_dirty = None
        bc.dirty_limit = bc.limit // 2
