"""The write side: transactions committed to the log, then checkpointed.

    w = JournalWriter(journal)         # an empty (recovered) journal
    t = w.begin(credits)               # joins the running transaction
    t.add(blocknr, new_contents); t.revoke(freed_metadata_blocknr)
    w.commit()                         # durable and atomic on return
    w.checkpoint()                     # written in place; log space back
    w.close()                          # at unmount: the journal marked empty

What a commit guarantees, as jbd2's: either every block of the
transaction is replayed after a crash or none is.  The log gets revoke
blocks, then descriptor blocks each followed by the blocks its tags name
(a block beginning with the journal magic is logged with it zeroed and
FLAG_ESCAPE), then, after a device flush, the commit block, then another
flush (async_commit skips the first: its commit checksum covers for it).
Checksums are those the journal's features ask for: v1 (crc32_be of the
descriptor and data blocks in the commit block), v2/v3 (crc32c in every
tag, block tail and commit block).  Nothing reaches its home location
before its transaction is committed, and a block revoked (freed metadata)
is never written home from an older transaction afterwards, so a freed
block reused for file data is safe.

Bounds, as jbd2's: a transaction may take at most a quarter of the log
(j_max_transaction_buffers); begin(credits) commits the running
transaction early when it could not take credits more blocks, add and
revoke past the bound fail with ENOSPC; a commit that does not fit in the
free log checkpoints first.  begin(limit=n) lets one transaction grow to
n log blocks, up to the whole ring: for a set of changes that must stay
atomic although it outgrew the quarter (replay, Linux's and e2fsck's,
takes a transaction of any size that fits in the log).
"""
from __future__ import annotations

from dataclasses import dataclass

from umlpy.abi import errno as E
from umlpy.fs.jbd2 import format as F
from umlpy.fs.jbd2.csum import crc32_be
from umlpy.fs.jbd2.journal import Journal, JournalError
from umlpy.kernel.errors import KernelError
from umlpy.vfs.inode import now_ns


class Transaction:
    """The running transaction: new contents of metadata blocks, and revokes."""

    def __init__(self, writer: JournalWriter, limit: int) -> None:
        self._w = writer
        self.limit = limit                      # log blocks it may take
        self.blocks: dict[int, bytes] = {}      # in the order first added
        self.revoked: dict[int, None] = {}

    def __len__(self) -> int:
        return self._w.log_blocks(len(self.blocks), len(self.revoked))

    def add(self, blocknr: int, data: bytes | bytearray) -> None:
        """Log blocknr's new contents (a later add of the same block wins)."""
        w = self._w
        if not 0 <= blocknr < w.j.fs_blocks or len(data) != w.j.bs:
            raise KernelError(E.EINVAL, f"jbd2: bad block {blocknr} for a transaction")
        fresh = blocknr not in self.blocks
        if fresh and w.log_blocks(len(self.blocks) + 1, len(self.revoked)) > self.limit:
            raise KernelError(E.ENOSPC, "jbd2: transaction too large for the journal")
        self.revoked.pop(blocknr, None)         # reused: jbd2_journal_cancel_revoke
        self.blocks[blocknr] = bytes(data)

    def revoke(self, blocknr: int) -> None:
        """blocknr was metadata and is freed: no older copy may be replayed."""
        w = self._w
        if not 0 <= blocknr < w.j.fs_blocks:
            raise KernelError(E.EINVAL, f"jbd2: bad block {blocknr} to revoke")
        if blocknr not in self.revoked and \
                w.log_blocks(len(self.blocks), len(self.revoked) + 1) > self.limit:
            raise KernelError(E.ENOSPC, "jbd2: transaction too large for the journal")
        self.blocks.pop(blocknr, None)
        self.revoked[blocknr] = None


@dataclass
class _Committed:
    """A transaction in the log whose blocks are not yet home."""
    tid: int
    blocks: dict[int, bytes]


class JournalWriter:
    def __init__(self, journal: Journal) -> None:
        j = journal
        if j.tail:
            raise JournalError(E.EINVAL, "the journal needs recovery before it is written")
        self.j = j
        ring = j.last - j.first
        self.max_log_blocks = ring // 4
        space = j.bs - F.HEADER_SIZE - j.tail_size
        self.tags_per_descriptor = 1 + (space - j.tags.size - F.UUID_SIZE) // j.tags.size
        self.records_per_revoke = (j.bs - F.REVOKE_HEADER_SIZE - j.tail_size) // \
            (8 if j.tags.is_64bit else 4)
        self.running: Transaction | None = None
        self.checkpoint_list: list[_Committed] = []
        self.logged: set[int] = set()   # blocks of the checkpoint list (a freed one needs a revoke)

    # -- sizes ------------------------------------------------------------------
    def log_blocks(self, nblocks: int, nrevokes: int) -> int:
        """Log blocks a transaction takes: revoke, descriptor and data blocks, commit."""
        return (-(-nrevokes // self.records_per_revoke) + -(-nblocks // self.tags_per_descriptor)
                + nblocks + 1)

    def free(self) -> int:
        """Log blocks a commit may take without checkpointing first."""
        j = self.j
        ring = j.last - j.first
        used = (j.head - j.tail) % ring if j.tail else 0
        return ring - used - 1          # the head never catches the tail

    # -- transactions -----------------------------------------------------------------
    def begin(self, credits: int = 1, limit: int | None = None) -> Transaction:
        """The running transaction, with room for credits more blocks
        (jbd2_journal_start): a full one is committed first.  limit: the
        log blocks a new transaction may take (default jbd2's quarter of
        the log; at most the whole ring less its commit's own slack)."""
        bound = self.max_log_blocks if limit is None else min(limit, self.j.last - self.j.first - 1)
        if credits + 1 > bound:
            raise KernelError(E.ENOSPC, "jbd2: transaction too large for the journal")
        t = self.running
        if t is not None and self.log_blocks(len(t.blocks) + credits, len(t.revoked)) > t.limit:
            self.commit()
            t = None
        if t is None:
            t = self.running = Transaction(self, bound)
        return t

    def commit(self) -> int | None:
        """Commit the running transaction; its id, or None when it was empty."""
        t, self.running = self.running, None
        if t is None or not (t.blocks or t.revoked):
            return None
        j = self.j
        if len(t) > self.free():
            self.checkpoint()
        tid = j.next_tid
        if not j.tail:                 # an empty journal: the log starts here now
            j.tail, j.tail_sequence = j.head, tid
            j.sb.start, j.sb.sequence = j.head, tid
            j.write_super()
        log = self._revoke_blocks(tid, t) + self._descriptor_blocks(tid, t)
        self._write_log(j.head, [data for data, _ in log])
        if not j.sb.feature_incompat & F.INCOMPAT_ASYNC_COMMIT:
            j.dev.flush()
        end = j.wrap(j.head + len(log))
        self._write_log(end, [self._commit_block(tid, log)])
        j.dev.flush()
        for c in self.checkpoint_list:
            for blk in t.revoked:
                c.blocks.pop(blk, None)
        self.logged.difference_update(t.revoked)
        self.logged.update(t.blocks)
        self.checkpoint_list.append(_Committed(tid, t.blocks))
        j.head = j.wrap(end + 1)
        j.next_tid = (tid + 1) & 0xFFFFFFFF
        return tid

    def checkpoint(self) -> None:
        """Write every committed block home, then move the log's tail past them."""
        j = self.j
        home: dict[int, bytes] = {}
        for c in self.checkpoint_list:
            home.update(c.blocks)
        for blk in sorted(home):
            j.write_home(blk, home[blk])
        j.dev.flush()
        self.checkpoint_list.clear()
        self.logged.clear()
        if j.tail:
            j.tail, j.tail_sequence = j.head, j.next_tid
            j.sb.start, j.sb.sequence = j.head, j.next_tid
            j.write_super()

    def close(self) -> None:
        """Unmount: commit, checkpoint, and mark the journal empty (s_start 0)."""
        self.commit()
        self.checkpoint()
        j = self.j
        j.tail, j.head = 0, j.first
        j.sb.start, j.sb.sequence = 0, j.next_tid
        j.write_super()

    # -- log blocks ---------------------------------------------------------------------
    def _block(self, btype: int, tid: int) -> bytearray:
        buf = bytearray(self.j.bs)
        F.HEADER.pack_into(buf, 0, F.MAGIC, btype, tid)
        return buf

    def _seal(self, buf: bytearray) -> bytes:
        """Set a descriptor or revoke block's tail checksum (v2/v3)."""
        if self.j.csum:
            F.U32.pack_into(buf, self.j.bs - F.TAIL_SIZE, F.block_tail_csum(self.j.seed, buf))
        return bytes(buf)

    def _revoke_blocks(self, tid: int, t: Transaction) -> list[tuple[bytes, bool]]:
        """(block, whether the v1 checksum covers it) of the revoke records."""
        rec = F.U64 if self.j.tags.is_64bit else F.U32
        blks = list(t.revoked)
        out = []
        for i in range(0, len(blks), self.records_per_revoke):
            chunk = blks[i:i + self.records_per_revoke]
            buf = self._block(F.REVOKE_BLOCK, tid)
            F.U32.pack_into(buf, F.HEADER_SIZE, F.REVOKE_HEADER_SIZE + rec.size * len(chunk))
            for k, blk in enumerate(chunk):
                rec.pack_into(buf, F.REVOKE_HEADER_SIZE + rec.size * k, blk)
            out.append((self._seal(buf), False))
        return out

    def _descriptor_blocks(self, tid: int, t: Transaction) -> list[tuple[bytes, bool]]:
        j = self.j
        items = list(t.blocks.items())
        out: list[tuple[bytes, bool]] = []
        for i in range(0, len(items), self.tags_per_descriptor):
            chunk = items[i:i + self.tags_per_descriptor]
            desc = self._block(F.DESCRIPTOR_BLOCK, tid)
            off = F.HEADER_SIZE
            logged = []
            for k, (blk, data) in enumerate(chunk):
                flags = F.FLAG_SAME_UUID if k else 0
                if k == len(chunk) - 1:
                    flags |= F.FLAG_LAST_TAG
                if data[:4] == F.U32.pack(F.MAGIC):
                    data = bytes(4) + data[4:]
                    flags |= F.FLAG_ESCAPE
                csum = F.tag_csum(j.seed, tid, data) if j.csum else 0
                tag = j.tags.encode(blk, flags, csum)
                desc[off:off + len(tag)] = tag
                off += len(tag)
                if not k:
                    desc[off:off + F.UUID_SIZE] = j.sb.uuid
                    off += F.UUID_SIZE
                logged.append((data, True))
            out.append((self._seal(desc), True))
            out.extend(logged)
        return out

    def _commit_block(self, tid: int, log: list[tuple[bytes, bool]]) -> bytes:
        j = self.j
        buf = self._block(F.COMMIT_BLOCK, tid)
        ns = now_ns()
        F.COMMIT_TIME.pack_into(buf, F.COMMIT_TIME_OFF, ns // 10**9, ns % 10**9)
        if j.sb.feature_compat & F.COMPAT_CHECKSUM:
            crc = 0xFFFFFFFF
            for data, summed in log:
                if summed:
                    crc = crc32_be(crc, data)
            buf[F.COMMIT_TYPE_OFF], buf[F.COMMIT_SIZE_OFF] = F.CRC32_CHKSUM, F.CRC32_CHKSUM_SIZE
            F.U32.pack_into(buf, F.COMMIT_CHKSUM_OFF, crc)
        elif j.csum:
            F.U32.pack_into(buf, F.COMMIT_CHKSUM_OFF, F.commit_csum(j.seed, buf))
        return bytes(buf)

    def _write_log(self, start: int, blocks: list[bytes]) -> None:
        """Write blocks at log position start on, one device write per run
        of neighbouring device blocks."""
        j = self.j
        run: list[bytes] = []
        first = prev = -1
        for i, data in enumerate(blocks):
            p = j.device_block(j.wrap(start + i))
            if run and p != prev + 1:
                j.dev.write(first * j.bs, b"".join(run))
                run = []
            if not run:
                first = p
            run.append(data)
            prev = p
        if run:
            j.dev.write(first * j.bs, b"".join(run))
