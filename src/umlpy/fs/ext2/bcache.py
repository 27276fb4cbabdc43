"""A write-back buffer cache of filesystem blocks over a BlockDevice.

Metadata (bitmaps, inode tables, indirect and directory blocks) is read
and modified here and reaches the device only on flush(), in as few
writes as the dirty blocks allow.  File data bypasses the cache in runs
(read_run/write_run) so that a large file does not evict the metadata,
but stays coherent with any cached copy of the same blocks.

A block may have a sealer (set_sealer): a function that finishes the
block just before it is written, which is where ext4 puts the checksum of
a directory, extent or xattr block, once per write-back rather than once
per change.  ext2 registers none.

A journalled filesystem (fs/ext4/journal.py) changes two things: flush
hands the dirty blocks to its commit instead of writing them home, and
blocks committed to the log but not yet written home are pinned, so that
they are never dropped and read back stale from the device; when too many
blocks are dirty the cache calls too_dirty (a commit is due) rather than
writing any of them back on its own.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from umlpy.abi import errno as E
from umlpy.block.device import BlockDevice
from umlpy.kernel.errors import KernelError


def runs(blocks: list[int]) -> list[tuple[int, int]]:
    """(start, count) runs of consecutive numbers in blocks (in its order)."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][0] + out[-1][1] == b:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((b, 1))
    return out


def extents(pblks: list[int]) -> list[tuple[int, int, int]]:
    """(index, count, first physical block or 0 for a hole) runs of pblks."""
    out: list[tuple[int, int, int]] = []
    i, n = 0, len(pblks)
    while i < n:
        p = pblks[i]
        j = i + 1
        if p == 0:
            while j < n and pblks[j] == 0:
                j += 1
        else:
            while j < n and pblks[j] == p + (j - i):
                j += 1
        out.append((i, j - i, p))
        i = j
    return out


class BufferCache:
    """Blocks by number; LRU among clean blocks, dirty ones kept until flush."""

    def __init__(self, dev: BlockDevice, block_size: int, limit_bytes: int = 32 << 20) -> None:
        self.dev = dev
        self.bs = block_size
        self.limit = max(256, limit_bytes // block_size)
        self._bufs: OrderedDict[int, bytearray] = OrderedDict()
        self._dirty: set[int] = set()
        self._sealers: dict[int, Callable[[bytearray], None]] = {}
        self.pinned: set[int] = set()       # newer than their home location (in the log)
        self.too_dirty: Callable[[], None] | None = None
        self.dirty_limit = self.limit // 2
        self._high = self.limit         # the size past which the next insert shrinks (see _shrink)

    # -- metadata blocks ------------------------------------------------------
    def get(self, blk: int) -> bytearray:
        """The cached, mutable copy of blk; call mark_dirty after changing it."""
        buf = self._bufs.get(blk)
        if buf is not None:
            self._bufs.move_to_end(blk)
            return buf
        buf = bytearray(self.dev.read(blk * self.bs, self.bs))
        self._insert(blk, buf)
        return buf

    def get_run(self, start: int, count: int) -> list[bytearray]:
        """Blocks start..start+count-1, reading the uncached ones in one device read."""
        missing = [b for b in range(start, start + count) if b not in self._bufs]
        if missing:
            lo, hi = missing[0], missing[-1] + 1
            data = self.dev.read(lo * self.bs, (hi - lo) * self.bs)
            for b in missing:
                i = (b - lo) * self.bs
                self._insert(b, bytearray(data[i:i + self.bs]))
        return [self.get(b) for b in range(start, start + count)]

    def zeroed(self, blk: int) -> bytearray:
        """A freshly allocated block: zeros, dirty, without reading the
        device.  Dirty before the cache may shrink: callers fill the buffer
        without marking it again, so it must never be the one let go."""
        buf = bytearray(self.bs)
        self._sealers.pop(blk, None)
        self._bufs[blk] = buf
        self._bufs.move_to_end(blk)
        self._note_dirty(blk)
        if len(self._bufs) > self._high:
            self._shrink()
        return buf

    def set_sealer(self, blk: int, seal: Callable[[bytearray], None]) -> None:
        """seal(buf) runs on blk's contents each time it is written back."""
        self._sealers[blk] = seal

    def unseal(self, blk: int) -> None:
        """Finish blk now with its sealer, if it has one and is dirty, and drop the
        sealer: its contents are about to be read as they are (an ext4 directory
        block an htree checks) or to change format (a leaf becoming an index root)."""
        seal = self._sealers.pop(blk, None)
        if seal is not None and blk in self._dirty:
            seal(self._bufs[blk])

    def mark_dirty(self, blk: int, buf: bytearray | None = None) -> None:
        if buf is not None and self._bufs.get(blk) is not buf:
            self._bufs[blk] = buf      # it was evicted while the caller held it
        elif buf is None and blk not in self._bufs:
            # a change to a buffer the cache let go, which it cannot write:
            # one EIO now, not a commit that fails for ever after
            raise KernelError(E.EIO, f"block {blk} changed after the buffer cache dropped it")
        self._note_dirty(blk)

    def _note_dirty(self, blk: int) -> None:
        self._dirty.add(blk)
        if self.too_dirty is not None and len(self._dirty) > self.dirty_limit:
            self.too_dirty()

    def drop_clean(self) -> None:
        """drop_caches: every block that holds nothing the disk (or the
        journal) lacks goes; the next get reads it again."""
        keep = self._dirty | self.pinned | self._sealers.keys()
        for blk in [b for b in self._bufs if b not in keep]:
            del self._bufs[blk]

    def forget(self, blk: int) -> None:
        """blk was freed: its contents must never be written back."""
        self._sealers.pop(blk, None)
        self.pinned.discard(blk)
        if self._bufs.pop(blk, None) is not None:
            self._dirty.discard(blk)

    # -- file data ------------------------------------------------------------
    def read_run(self, start: int, count: int) -> bytes:
        buf = bytearray(count * self.bs)
        self.read_run_into(start, memoryview(buf))
        return bytes(buf)

    def read_run_into(self, start: int, buf: memoryview) -> None:
        """read_run straight into buf (whole blocks), cached copies laid over."""
        self.dev.read_into(start * self.bs, buf)
        if not self._bufs:
            return
        end = start + len(buf) // self.bs
        bs = self.bs
        hits = [b for b in self._bufs if start <= b < end] if len(self._bufs) < end - start \
            else [b for b in range(start, end) if b in self._bufs]
        for b in hits:
            i = (b - start) * bs
            buf[i:i + bs] = self._bufs[b]

    def write_run(self, start: int, data: bytes | memoryview) -> None:
        self.dev.write(start * self.bs, data)
        if not self._bufs:
            return
        count = len(data) // self.bs
        for b in range(start, start + count):
            buf = self._bufs.get(b)
            if buf is not None:
                i = (b - start) * self.bs
                buf[:] = data[i:i + self.bs]
                self._dirty.discard(b)

    # -- write-back -----------------------------------------------------------
    def flush(self, commit: Callable[[dict[int, bytes]], None] | None = None) -> None:
        """Write every dirty block, one device write per run of neighbours;
        or give them all, sealed, to commit (a journal), which writes them
        and pins those it has not written home yet."""
        if not self._dirty:
            return
        for b in self._dirty & self._sealers.keys():
            self._sealers[b](self._bufs[b])
        if commit is not None:
            commit({b: bytes(self._bufs[b]) for b in sorted(self._dirty)})
        else:
            for start, count in runs(sorted(self._dirty)):
                self.dev.write(start * self.bs,
                               b"".join(self._bufs[b] for b in range(start, start + count)))
        self._dirty.clear()

    def _insert(self, blk: int, buf: bytearray) -> None:
        self._bufs[blk] = buf
        if len(self._bufs) > self._high:
            self._shrink()

    def _shrink(self) -> None:
        """Drop the least recently used clean blocks; write back if all are dirty
        (journalled: too_dirty was called, the commit comes after the syscall)."""
        excess = len(self._bufs) - self.limit * 3 // 4
        if len(self._dirty) > self.limit // 2 and self.too_dirty is None:
            self.flush()
        victims = []
        for b in self._bufs:
            if len(victims) >= excess:
                break
            if b not in self._dirty and b not in self.pinned:
                victims.append(b)
        for b in victims:
            del self._bufs[b]
        # Blocks that are dirty or pinned (in the journal, not yet home) cannot
        # go: a cache mostly of them was scanned whole at every insert (a
        # mkdir-heavy journalled workload spent half its time here).  The next
        # scan waits until the cache has grown by a quarter of its limit, by
        # when a commit or checkpoint has made more of them clean.
        self._high = max(self.limit, len(self._bufs) + self.limit // 4)
