"""A live migration's pre-copy by the host's write log (arch_um.writelog):
each round reads and sends only the pages written since the last, and the
final copy, the machine frozen, reads only those written since the last
round: nothing proportional to the memory falls in the downtime.

A process is tracked once the kernel has made a userfaultfd in its host
process (injected through a task whose stop a freeze took: one stopped
in guest code, never one the kernel holds in a syscall) and registered
its private mappings.  A mapping registered is protected first and then
read whole, so that what the target holds of it is known page by page:
a byte per page, 1 where the target holds the page (nonzero as sent), 0
where it read as zeros.  A mapping the host will not register, a process
made or exec'd since, and one whose log fails are read whole and compared
(checkpoint/migrate.py's Mirror), as on a host without the log.
"""
from __future__ import annotations

import re
from typing import Callable

from arch_um import ptrace, writelog
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.checkpoint import dump, image
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State

PAGE = C.PAGE_SIZE
HELD, SEND = 1, 2                   # a page's byte in the final copy: referenced, or sent
NONZERO = re.compile(b"[\x01\x02]+")
SAME = re.compile(b"\x01+|\x02+")

Send = Callable[[str, int, int, object], None]       # (kind, address, bytes, data or None)
Sent = Callable[[int, int], "bytes | None"]          # (address, bytes) -> the piece as sent, if any


class Tracked:
    """One process whose writes the host logs."""

    def __init__(self, mm, log: writelog.WriteLog) -> None:
        self.mm, self.log = mm, log
        self.held: dict[tuple[int, int], bytearray] = {}    # (start, end) -> a byte per page
        self.reading: dict[tuple[int, int], bytearray] = {}     # the same, of mappings being read whole

    def live(self, p) -> bool:
        return p.mm is self.mm and self.log.uffd >= 0

    def round(self, t, start: int, end: int, ino: int, send: Send, sent: Sent, lo: int, hi: int) -> int | None:
        """The pages of [lo, hi), a part of the mapping [start, end) (a
        round goes through a mapping in parts, from its start, one turn of
        the event loop each), written since the last round, sent; their
        bytes, or None where the mapping is not tracked.  sent(addr, n): a
        piece as a round before the log sent it (a comparison's), if any:
        a mapping seen first is read whole, but what the target holds of
        it already is not sent again."""
        held = self.held.get((start, end))
        if held is None:
            return self._first(t, start, end, ino, send, sent, lo, hi)
        n = 0
        try:
            for s, e in self.log.written(lo, hi):
                for addr in range(s, e, image.CHUNK):
                    n += _take(held, start, addr, _read(t, addr, min(image.CHUNK, e - addr)), send)
        except BaseException:
            del self.held[(start, end)]     # pages protected again but not read: read it whole next time
            raise
        return n

    def _first(self, t, start: int, end: int, ino: int, send: Send, sent: Sent, lo: int, hi: int) -> int | None:
        """A mapping not yet watched: registered and protected as its first
        part comes, then read whole, part by part (what is written meanwhile
        the log has for the next round)."""
        key = (start, end)
        held = self.reading.get(key)
        if lo == start:
            if held is None and not self.log.register(start, end - start):
                return None
            self.log.written(start, end)
            held = self.reading[key] = bytearray((end - start) // PAGE)
        elif held is None:      # (its first parts were not read: compared instead)
            return None
        try:
            n = sum(_take(held, start, addr, data, send, sent(addr, len(data)))
                    for addr, data in dump.resident_pieces(t, lo, hi, ino))
        except BaseException:
            del self.reading[key]
            raise
        if hi == end:
            self.held[key] = self.reading.pop(key)      # only once all of it was read
        return n

    def keep_only(self, vmas: set[tuple[int, int]]) -> None:
        """Forget the mappings no longer there as they were (a mapping that
        comes again, or grown or moved, is read whole)."""
        self.held = {key: v for key, v in self.held.items() if key in vmas}
        self.reading = {key: v for key, v in self.reading.items() if key in vmas}

    def final(self, t, start: int, end: int, send: Send) -> list[tuple[int, int]] | None:
        """The machine frozen: the pages written since the last round sent,
        the rest of the nonzero ones referenced, in address order; returns
        the runs (address, bytes) of nonzero pages, or None where the
        mapping is not tracked."""
        held = self.held.get((start, end))
        if held is None:
            return None
        written = bytearray()           # the written pages as read, in address order
        at: dict[int, int] = {}         # page index -> its offset in written
        for s, e in self.log.written(start, end, protect=False):
            for addr in range(s, e, image.CHUNK):
                data = _read(t, addr, min(image.CHUNK, e - addr))
                first = (addr - start) // PAGE
                count = len(data) // PAGE
                held[first:first + count] = bytes(count)
                for off, n in image.nonzero_runs(data):
                    held[first + off // PAGE:first + (off + n) // PAGE] = bytes([SEND]) * (n // PAGE)
                at[first] = len(written)
                written += data
        runs = []
        for m in NONZERO.finditer(held):
            runs.append((start + m.start() * PAGE, (m.end() - m.start()) * PAGE))
            for r in SAME.finditer(held, m.start(), m.end()):
                addr, n = start + r.start() * PAGE, (r.end() - r.start()) * PAGE
                if held[r.start()] == HELD:
                    send("ref", addr, n, None)
                else:
                    send("pages", addr, n, _pages(written, at, r.start(), r.end()))
        return runs


def _pages(written: bytearray, at: dict[int, int], first: int, last: int) -> bytes:
    """Pages [first, last) of a mapping out of what final() read of it:
    a run marked to send lies within written runs that touch, read in
    address order, so its bytes lie together in `written` (never read twice)."""
    k = first
    while k not in at:          # the start of the piece that holds the first page
        k -= 1
    off = at[k] + (first - k) * PAGE
    return bytes(memoryview(written)[off:off + (last - first) * PAGE])     # one copy, not two


def _read(t, addr: int, n: int) -> bytes:
    data = t.mem.peek(addr, n)
    if len(data) != n:
        raise KernelError(E.EIO, f"migrate: cannot read task {t.tid}'s memory at {addr:#x}")
    return data


def _take(held: bytearray, start: int, addr: int, data: bytes, send: Send, old: bytes | None = None) -> int:
    """Pages read at addr: the nonzero ones held, and sent unless old (what
    the target holds of the piece) has them the same; the others noted as
    zeros.  The bytes sent."""
    first, count = (addr - start) // PAGE, len(data) // PAGE
    held[first:first + count] = bytes(count)
    runs = image.nonzero_runs(data)
    for off, c in runs:
        held[first + off // PAGE:first + (off + c) // PAGE] = bytes([HELD]) * (c // PAGE)
    n = 0
    for off, c in image.changed_pages(data, old, runs):
        send("pre", addr + off, c, data[off:off + c])
        n += c
    return n


def track(k, tracked: dict[int, Tracked | None]) -> None:
    """Give a write log to each process that has none yet and a task in
    guest code (the machine frozen for the injections, then thawed)."""
    todo = [p for p in k.procs.by_pid.values()
            if not p.exited and not p.zombie and p.mm is not None and p.pid not in tracked
            and any(t.state is State.USER for t in p.threads)]
    if not todo:
        return
    frozen = dump.freeze(k)
    try:
        for p in todo:
            t = next((x for x in p.threads if frozen.get(x.hpid, (None, False))[1]), None)
            if t is not None:
                log = _log_for(t, frozen[t.hpid][0])
                if log is not None:
                    tracked[p.pid] = Tracked(p.mm, log)
    finally:
        dump.thaw(k, frozen)


def _log_for(t, regs) -> writelog.WriteLog | None:
    """A userfaultfd made in t's host process (t stopped by a freeze, its
    registers regs), its copy here; None, with a log line, if the host
    offers none."""
    r = ptrace.inject(t.hpid, regs, NR["userfaultfd"], writelog.USERFAULTFD_FLAGS)
    if r.fault or not 0 <= r.result < 1 << 31:
        printk.pr_info_ratelimited(f"migrate: no userfaultfd on this host ({-r.result if not r.fault else 'fault'}): "
                                   "pages are compared instead")
        return None
    try:
        return writelog.WriteLog(t.hpid, writelog.take_fd(t.hpid, r.result))
    except OSError as e:
        printk.pr_info_ratelimited(f"migrate: no write log for task {t.tid} ({e}): pages are compared instead")
        return None
    finally:
        ptrace.inject(t.hpid, regs, NR["close"], r.result)


def close(tracked: dict[int, Tracked | None]) -> None:
    """Let the logs go: closing a userfaultfd unregisters its ranges and
    lifts its protection."""
    for tr in tracked.values():
        if tr is not None:
            tr.log.close()
    tracked.clear()
