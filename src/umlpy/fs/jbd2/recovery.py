"""Journal recovery, as Linux's jbd2_journal_recover.

Linux walks the log three times: a scan for its end (the last transaction
with a valid commit block), a pass gathering revoke records, a pass
writing every logged block that no later-or-equal revoke cancels.  Here
the scan keeps what it found (descriptor tags, revoke records) per
transaction, so the other two passes need not parse the log again; what
is replayed, and when recovery stops or fails, is Linux's:

- the scan ends at the first block without the magic, with the wrong
  sequence or of an unknown type; at a commit block whose checksum (v1
  crc32_be, v2/v3 crc32c) is wrong (that transaction and later ones are
  not replayed, the earlier ones are, and then, without async_commit,
  recovery fails with EUCLEAN as jbd2_journal_load does: the mount is
  refused and e2fsck has the last word); and after as many blocks as the
  ring holds, so a log that loops cannot hold recovery forever;
- a bad descriptor or revoke block checksum ends the scan at the next
  commit block if that commit is older than the last good one (a stale
  block), and fails recovery (EBADMSG) otherwise;
- a revoke block whose count overruns it fails recovery (EINVAL);
- a logged block whose tag checksum is wrong, or whose home is outside
  the filesystem, is not written; the others are, and recovery then fails
  (EBADMSG, EIO), leaving the journal as it was.

After a successful replay the device is flushed and the journal marked
empty (s_start 0, s_sequence the next transaction id), as the ext4 mount
does through jbd2_journal_flush when recovery is complete.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from umlpy.abi import errno as E
from umlpy.fs.jbd2 import format as F
from umlpy.fs.jbd2.csum import crc32_be
from umlpy.fs.jbd2.journal import Journal, JournalError
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

Tag = tuple[int, int, int]          # block number, flags, checksum


@dataclass
class RecoveryInfo:
    start_transaction: int = 0
    end_transaction: int = 0        # the first transaction not replayed
    head_block: int = 0
    replays: int = 0
    revokes: int = 0
    revoke_hits: int = 0
    failed_commit: int = 0          # a commit block with a bad checksum (0: none)


@dataclass
class _Transaction:
    tid: int
    descriptors: list[tuple[int, list[Tag]]] = field(default_factory=list)  # (first data block, tags)
    revokes: list[int] = field(default_factory=list)


def recover(j: Journal) -> RecoveryInfo:
    """Replay the committed transactions of j's log into the filesystem."""
    info = RecoveryInfo(start_transaction=j.sb.sequence)
    if not j.tail:
        info.end_transaction = j.sb.sequence
        return info
    txns = _scan(j, info)
    revoked: dict[int, int] = {}
    for t in txns:
        info.revokes += len(t.revokes)
        for blk in t.revokes:
            if blk not in revoked or F.tid_gt(t.tid, revoked[blk]):
                revoked[blk] = t.tid
    err = 0
    for t in txns:
        for start, tags in t.descriptors:
            err = _replay(j, t.tid, start, tags, revoked, info) or err
    j.next_tid = (info.end_transaction + 1) & 0xFFFFFFFF
    j.dev.flush()
    printk.pr_info(f"JBD2: recovery, transactions {info.start_transaction} to "
                   f"{info.end_transaction}: replayed {info.replays} and revoked "
                   f"{info.revoke_hits}/{info.revokes} blocks")
    if err:
        raise JournalError(err, "journal recovery failed")
    if info.failed_commit:
        raise JournalError(E.EUCLEAN, f"journal transaction {info.failed_commit} is corrupt")
    j.sb.start = 0
    j.sb.sequence = j.next_tid
    j.write_super()
    j.tail, j.tail_sequence, j.head = 0, j.next_tid, j.first
    return info


def _commit_ok(j: Journal, blk: bytes, crc: int) -> bool:
    """Whether a commit block's checksum holds (v1: crc of the transaction's blocks)."""
    ctype, csize = blk[F.COMMIT_TYPE_OFF], blk[F.COMMIT_SIZE_OFF]
    found = F.U32.unpack_from(blk, F.COMMIT_CHKSUM_OFF)[0]
    if j.sb.feature_compat & F.COMPAT_CHECKSUM:
        return ((crc == found and ctype == F.CRC32_CHKSUM and csize == F.CRC32_CHKSUM_SIZE)
                or (ctype == 0 and csize == 0 and found == 0))
    if not j.csum:
        return True
    if F.commit_csum(j.seed, blk) == found:
        return True
    # the commit header reached the disk but not the rest of its block
    partial = blk[:F.COMMIT_HEADER_SIZE] + bytes(j.bs - F.COMMIT_HEADER_SIZE)
    return F.commit_csum(j.seed, partial) == found


def _tail_ok(j: Journal, blk: bytes) -> bool:
    return not j.csum or F.block_tail_csum(j.seed, blk) == F.U32.unpack_from(blk, j.bs - F.TAIL_SIZE)[0]


def _scan(j: Journal, info: RecoveryInfo) -> list[_Transaction]:
    """PASS_SCAN: the committed transactions from s_start on, in order."""
    tid, pos = j.sb.sequence, j.tail
    head = pos
    cur = _Transaction(tid)
    out: list[_Transaction] = []
    need_check_time = False
    last_time = 0
    crc = 0xFFFFFFFF
    v1 = bool(j.sb.feature_compat & F.COMPAT_CHECKSUM)
    budget = j.last - j.first
    while budget > 0:
        blk = j.read(pos)
        pos = j.wrap(pos + 1)
        budget -= 1
        h = F.header(blk)
        if h is None or h[1] != tid:
            break
        btype = h[0]
        if btype == F.DESCRIPTOR_BLOCK:
            if not _tail_ok(j, blk):
                need_check_time = True      # maybe a stale block: the commit decides
            tags = F.parse_tags(blk, j.tags, j.tail_size)
            cur.descriptors.append((pos, tags))
            if v1:
                crc = crc32_be(crc, blk)
                try:
                    for i in range(len(tags)):
                        crc = crc32_be(crc, j.read(j.wrap(pos + i)))
                except KernelError:
                    break
            pos = j.wrap(pos + len(tags))
            budget -= len(tags)
        elif btype == F.COMMIT_BLOCK:
            commit_time = F.U64.unpack_from(blk, F.COMMIT_TIME_OFF)[0]
            if need_check_time:
                if commit_time >= last_time:
                    raise JournalError(E.EBADMSG, f"invalid checksum found in transaction {tid}")
                break                       # stale: the log ends before it
            if not _commit_ok(j, blk, crc):
                if commit_time >= last_time:
                    info.end_transaction, info.head_block = tid, head
                    if not j.sb.feature_incompat & F.INCOMPAT_ASYNC_COMMIT:
                        info.failed_commit = tid
                        printk.pr_err(f"JBD2: journal transaction {tid} is corrupt")
                break
            crc = 0xFFFFFFFF
            last_time = commit_time
            head = pos
            out.append(cur)
            tid = (tid + 1) & 0xFFFFFFFF
            cur = _Transaction(tid)
        elif btype == F.REVOKE_BLOCK:
            if not _tail_ok(j, blk):
                need_check_time = True
            recs = F.revoke_records(blk, j.tags.is_64bit, j.tail_size)
            if recs is None:
                raise JournalError(E.EINVAL, f"bad revoke block in transaction {tid}")
            cur.revokes.extend(recs)
        else:
            break
    if not info.end_transaction:
        info.end_transaction, info.head_block = tid, head
    return [t for t in out if F.tid_gt(info.end_transaction, t.tid)]


def _replay(j: Journal, tid: int, start: int, tags: list[Tag], revoked: dict[int, int],
            info: RecoveryInfo) -> int:
    """PASS_REPLAY of one descriptor's blocks: 0, or the errno to fail with."""
    err = 0
    for i, (blocknr, flags, csum) in enumerate(tags):
        rtid = revoked.get(blocknr)
        if rtid is not None and F.tid_geq(rtid, tid):
            info.revoke_hits += 1
            continue
        try:
            data = j.read(j.wrap(start + i))
        except KernelError as e:
            printk.pr_err(f"JBD2: IO error {e.errno} recovering block {blocknr}")
            err = e.errno
            continue
        if j.csum:
            want = F.tag_csum(j.seed, tid, data)
            if csum != (want if j.tags.csum_v3 else want & 0xFFFF):
                printk.pr_err(f"JBD2: invalid checksum recovering data block {blocknr}")
                err = E.EBADMSG
                continue
        if flags & F.FLAG_ESCAPE:
            data = F.U32.pack(F.MAGIC) + data[4:]
        if not 0 <= blocknr < j.fs_blocks:
            printk.pr_err(f"JBD2: block {blocknr} in the log is outside the filesystem")
            err = E.EIO
            continue
        j.write_home(blocknr, data)
        info.replays += 1
    return err
