"""A pipe's buffer as Linux keeps it: a ring of page-sized slots.

A pipe's size is a number of slots, not of bytes: a slot holds up to a
page, and a slot that was partly read still takes up its place.  So a
one-page pipe with half its page read is still full (no POLLOUT, a write
waits), as programs and LTP's epoll_wait06 see on Linux.  A write first
tops up the last slot with the part of it that is not a whole number of
pages (pipe_write's merge), then takes new slots a page at a time; that
makes a write of up to PIPE_BUF bytes atomic by itself.

The slots' pages are kernel memory in the machine's RAM (kernel/mm.Charge),
taken as they fill and given back as they are read, as Linux's pipe_write
allocates a page per slot: a guest filling many pipes, or a big one, meets
ENOMEM at `mem=` rather than taking host memory without end.  A pipe's
first slot is not charged (Linux keeps a page cached per pipe too), so a
ping-pong through an empty pipe never touches the budget.
"""
from __future__ import annotations

from collections import deque

from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import Charge, MemBudget

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

    def __init__(self, slots: int, budget: MemBudget, owner: object) -> None:
        self.slots = slots
        self._q: deque[_Slot] = deque()
        self._len = 0
        self._budget = budget
        self._owner = owner         # what the charge is given back with at the latest
        self._kmem: Charge | None = None    # one page per slot past the first

    def _charge_page(self, force: bool = False) -> None:
        """The next slot past the first is taken: its page in RAM (ENOMEM
        past it, unless force: bytes given back that were just held)."""
        if self._kmem is None:
            self._kmem = Charge(self._budget, self._owner)
        self._kmem.add(PAGE, force)

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
        try:
            while done < len(data) and not self.full:
                if self._q:
                    self._charge_page()
                piece = data[done:done + PAGE]
                self._q.append(_Slot(piece, merge))
                done += len(piece)
        except KernelError:
            if not done:
                raise
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
                if self._q and self._kmem is not None:
                    self._kmem.sub(PAGE)
        self._len -= len(out)
        return bytes(out)

    def unread(self, data: bytes) -> None:
        """Give back bytes just taken and not used (a splice whose
        destination took less): they go in front, in slots of their own."""
        for i in range(len(data) - (len(data) - 1) % PAGE - 1, -1, -PAGE):
            if self._q:
                self._charge_page(force=True)
            self._q.appendleft(_Slot(data[i:i + PAGE], False))
        self._len += len(data)

    def clear(self) -> None:
        """Everything goes (a pty flushed, the pipe freed): its pages too."""
        self._q.clear()
        self._len = 0
        if self._kmem is not None:
            self._kmem.drop()
