"""A ring's parked requests (submit.Parked), indexed so that no lookup
walks them all: a guest may keep many waiting and then submit a full SQ
of cancels, removals or CQEs that complete counted TIMEOUTs, and each of
those must cost the kernel O(1) (amortized), or one io_uring_enter could
stall every guest.

Indexes: by (opcode, user_data) (POLL_REMOVE, TIMEOUT_REMOVE), by
user_data (ASYNC_CANCEL), by fd (ASYNC_CANCEL_FD), and a heap of counted
TIMEOUTs by the CQ sequence they wait for (entries of requests that left
early are skipped when met, and the heap is rebuilt when they outnumber
the live ones, as the scheduler's timer heap).
"""
from __future__ import annotations

import heapq
import itertools

COMPACT_MIN = 64


def _add(index: dict, key, p) -> None:
    index.setdefault(key, {})[p] = None


def _drop(index: dict, key, p) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.pop(p, None)
        if not bucket:
            del index[key]


def _pick(bucket: dict, every: bool) -> list:
    if every:
        return list(bucket)
    return [next(iter(bucket))] if bucket else []


class Waiting:
    def __init__(self) -> None:
        self._all: dict = {}                # Parked -> None, oldest first
        self._by_op_data: dict = {}
        self._by_data: dict = {}
        self._by_fd: dict = {}
        self._counted: list = []            # heap of (target, n, Parked)
        self._live_counted = 0
        self._n = itertools.count()

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, p) -> bool:
        return p in self._all

    def all(self) -> list:
        return list(self._all)

    def add(self, p) -> None:
        r = p.req
        self._all[p] = None
        _add(self._by_op_data, (r.opcode, r.user_data), p)
        _add(self._by_data, r.user_data, p)
        _add(self._by_fd, r.fd, p)
        if r.target is not None:
            heapq.heappush(self._counted, (r.target, next(self._n), p))
            self._live_counted += 1

    def remove(self, p) -> None:
        if p not in self._all:
            return
        r = p.req
        del self._all[p]
        _drop(self._by_op_data, (r.opcode, r.user_data), p)
        _drop(self._by_data, r.user_data, p)
        _drop(self._by_fd, r.fd, p)
        if r.target is not None:
            self._live_counted -= 1
            if len(self._counted) > COMPACT_MIN and len(self._counted) > 2 * self._live_counted:
                self._counted = [e for e in self._counted if e[2] in self._all]
                heapq.heapify(self._counted)

    def with_data(self, user_data: int, opcode: int | None, every: bool) -> list:
        """Those with this user_data (and opcode): every one, or the oldest
        (without a walk of the others)."""
        if opcode is None:
            bucket = self._by_data.get(user_data, {})
        else:
            bucket = self._by_op_data.get((opcode, user_data), {})
        return _pick(bucket, every)

    def on_fd(self, fd: int, every: bool) -> list:
        return _pick(self._by_fd.get(fd, {}), every)

    def reached(self, seq: int):
        """The counted TIMEOUTs whose target seq has reached, one at a time
        (each one's completion may post CQEs that bring others)."""
        while self._counted and self._counted[0][0] <= seq:
            p = heapq.heappop(self._counted)[2]
            if p in self._all:
                yield p
