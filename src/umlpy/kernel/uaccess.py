"""Big copies from guest memory, taken a piece at a time.

A guest's one write(2) of 2 GB must not become 2 GB of kernel memory, and a
pipe or a stream that waits for room must not hold the guest's whole buffer
while it waits.  Copies up to COPY_CHUNK are read at once; beyond that the
data is a UserBuf, read as the sink takes it.
"""
from __future__ import annotations

from typing import Callable

from arch_um.memory import GuestFault

COPY_CHUNK = 1 << 20


class UserBuf:
    """Guest memory to be written somewhere, read only as the sink takes it
    (Linux's copy_from_user as a pipe or a stream fills): slicing reads the
    guest's memory at that moment, len() is free.  Sinks that only slice
    what they are given and may wait for room (pipes, ttys, ptys, unix
    streams: File.lazy_write) take these instead of bytes."""

    __slots__ = ("t", "segs", "n")

    def __init__(self, t, segs: list[tuple[int, int]]) -> None:
        self.t = t
        self.segs = [(a, k) for a, k in segs if k]
        self.n = sum(k for _, k in self.segs)

    def __len__(self) -> int:
        return self.n

    def _read(self, start: int, stop: int, whole: bool) -> bytes:
        """The bytes of [start, stop) across the segments: all of them
        (GuestFault otherwise), or up to the first bad page."""
        out, off = [], 0
        mem = self.t.mem
        for a, k in self.segs:
            if off >= stop:
                break
            lo, hi = max(start, off), min(stop, off + k)
            if lo < hi:
                part = mem.read(a + lo - off, hi - lo) if whole else mem.read_prefix(a + lo - off, hi - lo)
                out.append(part)
                if len(part) < hi - lo:
                    break
            off += k
        return b"".join(out)

    def prefix(self, start: int, stop: int) -> bytes:
        """The readable beginning of [start, stop): a file write stores what
        it could copy before a bad page (empty if the first byte is bad)."""
        return self._read(start, stop, False)

    def __getitem__(self, sl: slice) -> bytes:
        start, stop, _ = sl.indices(self.n)
        return self._read(start, stop, True)


def write_in_pieces(src: UserBuf, put: Callable[[bytes, int], int]) -> int:
    """A big write to a sink that never waits, COPY_CHUNK at a time:
    put(piece, offset) stores a piece and says how much it took.  Stops at a
    short put or at the first bad page; what was written counts, EFAULT only
    if nothing was."""
    done = 0
    while done < len(src):
        want = min(COPY_CHUNK, len(src) - done)
        piece = src.prefix(done, done + want)
        if not piece:
            if done:
                return done
            raise GuestFault(done)
        k = put(piece, done)
        done += k
        if k < want:
            break
    return done
