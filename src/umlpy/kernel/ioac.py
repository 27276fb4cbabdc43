"""Per-task I/O accounting: Linux's struct task_io_accounting.

/proc/PID/io and getrusage's ru_inblock/ru_oublock come from it; psutil's
io_counters, iotop and LTP's readahead02 read it.  As Linux's:
- `rchar`/`wchar` and `syscr`/`syscw` are counted by the read and write
  calls of the file API (read, readv, pread, sendfile, copy_file_range and
  their write twins; never recvfrom or splice), bytes only when some moved;
- `read_bytes` is what the task made the block layer read from a disk
  (metadata and file data both): block/device.py charges each read to
  the task whose syscall runs (`current`), as submit_bio charges it;
- `write_bytes` is what a buffered write to a disk-backed file dirtied, in
  whole pages: the ext2 and ext4 drivers write through (or, with delayed
  allocation, hold data only until the next commit), so every write
  counts the pages it covers, where Linux counts a page once until its
  writeback; `cancelled_write_bytes` counts delayed ext4 data a truncate
  or an unlink took before it reached the disk (a block of it for each
  page of Linux's that was dirty, not yet written, and truncated).
A thread's figures go to its process when it ends, a process's to its
parent when the parent waits for it (wait_task_zombie): /proc/PID/io is
the process's with all of that, ru_inblock/ru_oublock keep the children's
apart (RUSAGE_CHILDREN).
"""
from __future__ import annotations

from contextlib import contextmanager

PAGE = 4096
FIELDS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes")


class IoAc:
    __slots__ = FIELDS

    def __init__(self) -> None:
        self.rchar = self.wchar = self.syscr = self.syscw = 0
        self.read_bytes = self.write_bytes = self.cancelled_write_bytes = 0

    def add(self, o: IoAc) -> None:
        for f in FIELDS:
            setattr(self, f, getattr(self, f) + getattr(o, f))

    @property
    def inblock(self) -> int:
        """task_io_get_inblock: 512-byte blocks read."""
        return self.read_bytes >> 9

    @property
    def oublock(self) -> int:
        """task_io_get_oublock: 512-byte blocks written (the cancelled ones
        are not taken off)."""
        return self.write_bytes >> 9

    def text(self) -> bytes:
        """/proc/PID/io's lines."""
        return "".join(f"{f}: {getattr(self, f)}\n" for f in FIELDS).encode()

    def save(self) -> list[int]:
        return [getattr(self, f) for f in FIELDS]

    @classmethod
    def load(cls, values: list[int]) -> IoAc:
        """From save()'s list (a checkpoint's, its range checked)."""
        ac = cls()
        for f, v in zip(FIELDS, values):
            setattr(ac, f, v)
        return ac


def whole(proc) -> IoAc:
    """A process's own: its ended threads', its waited children's and its
    live threads' (do_io_accounting with `whole`)."""
    ac = IoAc()
    ac.add(proc.dead_ioac)
    ac.add(proc.child_ioac)
    for t in proc.threads:
        ac.add(t.ioac)
    return ac


def own_blocks(proc) -> tuple[int, int]:
    """getrusage(RUSAGE_SELF)'s ru_inblock and ru_oublock: its threads',
    live and ended, not its children's."""
    ins, outs = proc.dead_ioac.inblock, proc.dead_ioac.oublock
    for t in proc.threads:
        ins += t.ioac.inblock
        outs += t.ioac.oublock
    return ins, outs


def thread_ended(t) -> None:
    """__exit_signal: the thread's figures stay with its process."""
    t.proc.dead_ioac.add(t.ioac)
    t.ioac = IoAc()
    t.proc.dead_nvcsw += t.nvcsw


def waited(parent, child) -> None:
    """wait_task_zombie: the child's whole figures go to the parent's."""
    parent.child_ioac.add(whole(child))


# the scheduler whose current task the block layer charges (set at boot:
# the filesystems below the syscall do not see the task they work for)
_sched = None
_workers = 0        # kernel workers running (loop's): their I/O is no task's


def attach(sched) -> None:
    global _sched
    _sched = sched


def _charged():
    """The task I/O is charged to now: the current one, unless a kernel
    worker does the I/O for a device (a loop device's backing file: Linux's
    loop worker thread, not the task, reads and writes it)."""
    return _sched.current if _sched is not None and not _workers else None


@contextmanager
def worker():
    """The I/O inside is a kernel worker's (see _charged)."""
    global _workers
    _workers += 1
    try:
        yield
    finally:
        _workers -= 1


def disk_read(n: int) -> None:
    """A read of n bytes from a disk (task_io_account_read)."""
    t = _charged()
    if t is not None:
        t.ioac.read_bytes += n


def cancelled(n: int) -> None:
    """n bytes counted in write_bytes that will never reach the disk
    (task_io_account_cancelled_write)."""
    t = _charged()
    if t is not None:
        t.ioac.cancelled_write_bytes += n


def dirtied(off: int, n: int) -> None:
    """A buffered write of n bytes at off to a disk-backed file: the
    pages it covers (task_io_account_write)."""
    if n <= 0:
        return
    t = _charged()
    if t is not None:
        t.ioac.write_bytes += ((off + n - 1) // PAGE - off // PAGE + 1) * PAGE
