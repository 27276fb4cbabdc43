"""/proc/PID/timens_offsets: the clock offsets of a process's
time_for_children namespace (kernel/timens.py), read and written as
Linux's fs/proc/base.c does.

A write is at most two lines of "<clock> <seconds> <nanoseconds>", the
clock by name (monotonic, boottime) or number (1, 7), parsed by the
kernel's sscanf("%9s %lld %lu") (`_scan`: its quirks are the interface:
a 10th character of the name starts the seconds, a number too long wraps,
a nanosecond count of 2^63 or more passes its range check as a negative
`long`); it is taken whole at offset 0 and never moves the file position
(pwrite: ESPIPE, as for any seq_file).
Whether the writer may is asked of its credentials as it opened the
file (file_ns_capable), not as it writes.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import GenFile, SeqFile, VirtFs
from umlpy.fs.procfs.target import Target
from umlpy.kernel import timens
from umlpy.kernel.errors import KernelError

_SPACE = b" \t\n\v\f\r\xa0"         # the kernel's isspace (Latin-1 NBSP included)
_CLOCKS = {**{name.encode(): clk for name, clk in timens.OFFSET_CLOCKS.items()},
           **{b"%d" % clk: clk for clk in timens.OFFSET_CLOCKS.values()}}
MAX_OFFSETS = 2
_U64 = 1 << 64


def _skip(line: bytes, i: int) -> int:
    while i < len(line) and line[i] in _SPACE:
        i += 1
    return i


def _number(line: bytes, i: int, signed: bool) -> tuple[int, int] | None:
    """vsscanf's %lld / %lu at i: (value, end), or None where it stops.
    The digits wrap at 64 bits (simple_strntoull), a signed one is
    negated after, and the result is the C long it is stored in."""
    i = _skip(line, i)
    neg = signed and line[i:i + 1] == b"-"
    start = i + neg
    end = start
    while end < len(line) and 48 <= line[end] <= 57:
        end += 1
    if end == start:
        return None
    value = int(line[start:end]) % _U64
    value = (-value if neg else value) % _U64
    return (value - _U64 if value >> 63 else value), end


def _scan(line: bytes) -> tuple[int, int, int] | None:
    """sscanf(line, "%9s %lld %lu", clock, &sec, &nsec) == 3, the clock
    one timens_offsets_write knows and nsec below 10^9 (as a long):
    (clock id, sec, nsec), else None (EINVAL)."""
    i = _skip(line, 0)
    if i == len(line):
        return None
    end = i
    while end < len(line) and end - i < 9 and line[end] not in _SPACE:
        end += 1
    name = line[i:end]
    sec = _number(line, end, signed=True)
    nsec = _number(line, sec[1], signed=False) if sec is not None else None
    if nsec is None or nsec[0] >= 10**9 or name not in _CLOCKS:
        return None
    return _CLOCKS[name], sec[0], nsec[0]


def parse(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """timens_offsets_write's parse: the offsets of up to MAX_OFFSETS lines
    (the text ends at a NUL, as the kernel's copy of it does) and how much
    of the write that took; EINVAL for a line it cannot read."""
    text = data.split(b"\0", 1)[0]
    offsets: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        nl = text.find(b"\n", pos)
        line = text[pos:] if nl < 0 else text[pos:nl]
        off = _scan(line)
        if off is None:
            raise KernelError(E.EINVAL)
        offsets.append(off)
        more = nl >= 0 and nl + 1 < len(text)
        if len(offsets) == MAX_OFFSETS:
            return offsets, nl + 1 if more else len(data)
        if not more:
            return offsets, len(data)
        pos = nl + 1


class OffsetsFile(SeqFile):
    """An open /proc/PID/timens_offsets, with its opener's credentials."""

    def __init__(self, dentry, inode: OffsetsInode, flags: int, task) -> None:
        super().__init__(dentry, inode, flags, task)
        self.creds = task.proc.creds

    def write(self, task, data: bytes) -> int:
        """EINVAL for a write past the start (after a seek) or of a page or
        more; the offsets are the target process's time_for_children's
        (ESRCH once it is gone)."""
        if self.pos != 0 or len(data) >= C.PAGE_SIZE:
            raise KernelError(E.EINVAL)
        offsets, taken = parse(data)
        proc = self.inode.tg.proc()
        if proc.exited:
            raise KernelError(E.ESRCH)
        timens.set_offsets(self.creds, proc.ns.time_for_children, offsets)
        return taken

    def pwrite(self, task, data: bytes, off: int) -> int:
        raise KernelError(E.ESPIPE)     # seq_open takes FMODE_PWRITE away


class OffsetsInode(GenFile):
    """/proc/PID/timens_offsets (mode 0644, the process's)."""

    def __init__(self, fs: VirtFs, key: tuple, tg: Target) -> None:
        super().__init__(fs, key, self._show, mode=0o644, owner=tg.owner, alive=tg.alive)
        self.tg = tg

    def _show(self, task) -> bytes:
        proc = self.tg.proc()
        return b"" if proc.exited else timens.show_offsets(proc.ns.time_for_children)

    def open_file(self, dentry, flags: int, task) -> OffsetsFile:
        self.check_alive()
        return OffsetsFile(dentry, self, flags, task)

    def truncate(self, size: int) -> None:
        """O_TRUNC changes nothing (proc_setattr)."""
