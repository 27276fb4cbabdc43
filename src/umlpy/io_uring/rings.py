"""The memory an io_uring shares with its user: the rings (SQ and CQ heads,
tails, masks, flags, the CQE array and the SQ index array, one allocation
as Linux's struct io_rings) and the SQE array.

The guest writes the SQ tail, the SQ index array, the SQEs and the CQ
head; the kernel writes the rest.  Everything the guest writes is read
once per use and range-checked: an SQ index past the ring is dropped
(sq_dropped counts it, as Linux), at most sq_entries SQEs are taken per
submission whatever the tail says, and the CQ head only decides how much
room the CQ has (never more than cq_entries).  Head and tail arithmetic is
modulo 2^32, as the u32 counters Linux keeps; the kernel's own copies
(cached_sq_head, cached_cq_tail) are the truth, the shared words are
written from them.

Ordering: the kernel runs while the submitter is stopped in its syscall;
it reads the SQ tail before the SQEs it covers, and writes a CQE before
the CQ tail that publishes it (Linux's smp_load_acquire/smp_store_release
pairs; the host's page-file reads and writes are in program order).
"""
from __future__ import annotations

import weakref
from collections import deque

from umlpy.abi import io_uring as U
from umlpy.abi.consts import PAGE_SIZE
from umlpy.kernel.sharedpages import SharedPages

M32 = 0xFFFFFFFF
# CQEs kept in the kernel while the CQ is full (IORING_FEAT_NODROP); past
# this many the next ones are dropped and counted in cq_overflow, as Linux
# does when it cannot allocate an overflow entry
OVERFLOW_MAX = U.IORING_MAX_CQ_ENTRIES


def alloc_size(n: int) -> int:
    """The bytes io_mem_alloc gets for n: whole pages, a power of two of
    them (a compound page); what a mapping of it may span at most."""
    size = PAGE_SIZE
    while size < n:
        size <<= 1
    return size


def rings_layout(sq_entries: int, cq_entries: int) -> tuple[int, int]:
    """rings_size: (where the SQ index array starts, the rings' bytes)."""
    cq_end = U.RING_CQES + cq_entries * U.CQE_SIZE
    array = (cq_end + U.SMP_CACHE_BYTES - 1) & ~(U.SMP_CACHE_BYTES - 1)
    return array, array + 4 * sq_entries


def _charged(budget, name: str, size: int) -> SharedPages:
    """Pages charged to the guest's memory budget (ENOMEM past it) for as
    long as they live: the ring file's, or a mapping's that outlived it."""
    budget.charge(size)
    pages = SharedPages(name, size)
    weakref.finalize(pages, budget.uncharge, size)
    return pages


class Rings:
    def __init__(self, sq_entries: int, cq_entries: int, budget) -> None:
        self.sq_entries = sq_entries
        self.cq_entries = cq_entries
        self.sq_array, size = rings_layout(sq_entries, cq_entries)
        self.rings = _charged(budget, "[io_uring] rings", alloc_size(size))
        self.sqes = _charged(budget, "[io_uring] sqes", alloc_size(sq_entries * U.SQE_SIZE))
        self.cached_sq_head = 0
        self.cached_cq_tail = 0
        self.overflow: deque[tuple[int, int, int]] = deque()
        self.dropped = False        # IO_CHECK_CQ_DROPPED: a CQE was lost
        r = self.rings
        r.put_u32(U.RING_SQ_MASK, sq_entries - 1)
        r.put_u32(U.RING_CQ_MASK, cq_entries - 1)
        r.put_u32(U.RING_SQ_ENTRIES, sq_entries)
        r.put_u32(U.RING_CQ_ENTRIES, cq_entries)

    def sq_offsets(self) -> tuple[int, ...]:
        """struct io_sqring_offsets: head, tail, ring_mask, ring_entries,
        flags, dropped, array."""
        return (U.RING_SQ_HEAD, U.RING_SQ_TAIL, U.RING_SQ_MASK, U.RING_SQ_ENTRIES,
                U.RING_SQ_FLAGS, U.RING_SQ_DROPPED, self.sq_array)

    def cq_offsets(self) -> tuple[int, ...]:
        """struct io_cqring_offsets: head, tail, ring_mask, ring_entries,
        overflow, cqes, flags."""
        return (U.RING_CQ_HEAD, U.RING_CQ_TAIL, U.RING_CQ_MASK, U.RING_CQ_ENTRIES,
                U.RING_CQ_OVERFLOW, U.RING_CQES, U.RING_CQ_FLAGS)

    # -- submission queue ----------------------------------------------------
    def sq_ready(self) -> int:
        """io_sqring_entries: SQEs the guest published and the kernel has
        not taken (whatever the tail says, u32 arithmetic)."""
        return (self.rings.u32(U.RING_SQ_TAIL) - self.cached_sq_head) & M32

    def sq_full(self) -> bool:
        return self.sq_ready() == self.sq_entries

    def next_sqe(self) -> tuple | None:
        """io_get_sqe: the next SQE through the index array, None (and one
        more sq_dropped) when its index is past the ring."""
        slot = self.cached_sq_head & (self.sq_entries - 1)
        self.cached_sq_head = (self.cached_sq_head + 1) & M32
        idx = self.rings.u32(self.sq_array + 4 * slot)
        if idx < self.sq_entries:
            return U.SQE.unpack(self.sqes.read(idx * U.SQE_SIZE, U.SQE_SIZE))
        self.rings.put_u32(U.RING_SQ_DROPPED, self.rings.u32(U.RING_SQ_DROPPED) + 1)
        return None

    def commit_sq(self) -> None:
        """io_commit_sqring: the SQ head tells the guest what was taken."""
        self.rings.put_u32(U.RING_SQ_HEAD, self.cached_sq_head)

    # -- completion queue ----------------------------------------------------
    def _queued(self) -> int:
        """CQEs the guest has not consumed; a head the guest moved past the
        tail counts as a full ring (Linux's min(queued, cq_entries))."""
        return min((self.cached_cq_tail - self.rings.u32(U.RING_CQ_HEAD)) & M32, self.cq_entries)

    def cq_ready(self) -> int:
        """io_cqring_events: what a waiter would find."""
        return (self.cached_cq_tail - self.rings.u32(U.RING_CQ_HEAD)) & M32

    def cq_head(self) -> int:
        return self.rings.u32(U.RING_CQ_HEAD)

    def _fill(self, user_data: int, res: int, flags: int) -> None:
        off = U.RING_CQES + (self.cached_cq_tail & (self.cq_entries - 1)) * U.CQE_SIZE
        self.rings.write(off, U.CQE.pack(user_data, res, flags))
        self.cached_cq_tail = (self.cached_cq_tail + 1) & M32
        self.rings.put_u32(U.RING_CQ_TAIL, self.cached_cq_tail)

    def post(self, user_data: int, res: int, flags: int = 0) -> None:
        """One completion: into the CQ, or behind the CQEs already waiting
        for room (their order kept), or dropped past OVERFLOW_MAX."""
        if not self.overflow and self._queued() < self.cq_entries:
            self._fill(user_data, res, flags)
            return
        if len(self.overflow) >= OVERFLOW_MAX:
            self.dropped = True
            self.rings.put_u32(U.RING_CQ_OVERFLOW, self.rings.u32(U.RING_CQ_OVERFLOW) + 1)
            return
        if not self.overflow:
            self._set_sq_flag(U.IORING_SQ_CQ_OVERFLOW, True)
        self.overflow.append((user_data, res, flags))

    def flush_overflow(self) -> None:
        """io_cqring_overflow_flush: waiting CQEs into the room the guest made."""
        while self.overflow and self._queued() < self.cq_entries:
            self._fill(*self.overflow.popleft())
        if not self.overflow:
            self._set_sq_flag(U.IORING_SQ_CQ_OVERFLOW, False)

    def _set_sq_flag(self, flag: int, on: bool) -> None:
        old = self.rings.u32(U.RING_SQ_FLAGS)
        new = old | flag if on else old & ~flag
        if new != old:
            self.rings.put_u32(U.RING_SQ_FLAGS, new)
