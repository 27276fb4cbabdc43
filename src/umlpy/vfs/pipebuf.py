"""A pipe's buffer as Linux keeps it: a ring of page-sized slots.

A pipe's size is a number of slots, not of bytes: a slot holds up to a
page, and a slot that was partly read still takes up its place.  So a
one-page pipe with half its page read is still full (no POLLOUT, a write
waits), as programs and LTP's epoll_wait06 see on Linux.  A write first
tops up the last slot with the part of it that is not a whole number of
pages (pipe_write's merge), then takes new slots a page at a time; that
makes a write of up to PIPE_BUF bytes atomic by itself.
"""
from __future__ import annotations

from collections import deque

PAGE = 4096


class _Slot:
    __slots__ = ("data", "merge", "offset")

    def __init__(self, data: bytes, merge: bool) -> None:
        self.data = bytearray(data)     # what is still to read
        self.merge = merge              # PIPE_BUF_FLAG_CAN_MERGE: a write() may top it up
        self.offset = 0                 # what was read of its page (not reused)


class PipeBuffer:
    """The bytes queued in a pipe, in slots.  Queueing never goes past
    `slots` slots except for what a reader gives back (see unread)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._q: deque[_Slot] = deque()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    @property
    def used(self) -> int:
        """Slots taken (pipe_occupancy)."""
        return len(self._q)

    @property
    def full(self) -> bool:
        return len(self._q) >= self.slots

    def room(self) -> int:
        """Bytes that go in new slots now (what splice and tee may add)."""
        return max(0, self.slots - len(self._q)) * PAGE

    def write(self, data: bytes, first: bool, merge: bool = True) -> int:
        """Queue what fits of data; returns how much.  first: the start of
        a write() call, which may top up the last slot (merge False for
        splice-like writes, whose slots are never topped up)."""
        done = 0
        tail = len(data) % PAGE
        if first and merge and tail and self._q:
            last = self._q[-1]
            if last.merge and last.offset + len(last.data) + tail <= PAGE:
                last.data += data[:tail]
                done = tail
        while done < len(data) and not self.full:
            piece = data[done:done + PAGE]
            self._q.append(_Slot(piece, merge))
            done += len(piece)
        self._len += done
        return done

    def peek(self, n: int) -> bytes:
        out = bytearray()
        for s in self._q:
            if len(out) >= n:
                break
            out += s.data[:n - len(out)]
        return bytes(out)

    def take(self, n: int) -> bytes:
        """Read up to n bytes; a slot read to its end is free again."""
        out = bytearray()
        while self._q and len(out) < n:
            s = self._q[0]
            k = min(n - len(out), len(s.data))
            out += s.data[:k]
            del s.data[:k]
            s.offset += k
            if not s.data:
                self._q.popleft()
        self._len -= len(out)
        return bytes(out)

    def unread(self, data: bytes) -> None:
        """Give back bytes just taken and not used (a splice whose
        destination took less): they go in front, in slots of their own."""
        for i in range(len(data) - (len(data) - 1) % PAGE - 1, -1, -PAGE):
            self._q.appendleft(_Slot(data[i:i + PAGE], False))
        self._len += len(data)

    def clear(self) -> None:
        self._q.clear()
        self._len = 0
