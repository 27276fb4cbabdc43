"""What /proc/PID files show about a process: found by number, measured.

A /proc/PID directory stands for a pid, not for a Process object: its
dentry may be cached across the process's death and the pid's reuse, so
every file finds its process again when it is read (and fails with ESRCH,
as Linux's, once it is gone).  Host measurements (CPU time, resident
memory) are taken only from live tasks: a dead task's host pid may already
be someone else's.
"""
from __future__ import annotations

from arch_um import procinfo
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import SUID_DUMP_USER
from umlpy.kernel.cred import ptrace_may_access
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State

USER_HZ = 100
NS_PER_TICK = 10**9 // USER_HZ
CONSOLE_TTY = (5, 1)    # the only terminal a process can have as its ctty
STUB_PAGES = (STUB_END - STUB_BASE) // C.PAGE_SIZE

STATE_NAMES = {"R": "running", "S": "sleeping", "T": "stopped", "t": "tracing stop", "Z": "zombie",
               "X": "dead"}


def find_thread(kernel, tid: int):
    """The task with guest tid `tid` (a process's leader or one of its threads)."""
    p = kernel.procs.by_pid.get(tid)
    if p is not None and p.threads:
        return p.threads[0]
    for p in kernel.procs.by_pid.values():
        for t in p.threads:
            if t.tid == tid:
                return t
    return None


class Target:
    """A pid (and, under task/, a tid), resolved at each use."""

    def __init__(self, fs, pid: int, tid: int | None = None, whole: bool | None = None) -> None:
        self.fs = fs            # the procfs: its mount ids and kept values
        self.kernel = fs.kernel
        self.pid = pid
        self.tid = tid
        # the files speak for the whole process: /proc/PID, and /proc/TID
        # (a thread's own number, which a lookup finds but no listing shows)
        self.whole = tid is None if whole is None else whole

    def proc_or_none(self):
        p = self.kernel.procs.by_pid.get(self.pid)
        if p is None or not p.threads:
            return None
        if self.tid is not None and not any(t.tid == self.tid for t in p.threads):
            return None
        return p

    def alive(self) -> bool:
        return self.proc_or_none() is not None

    def has_fd(self, fd: int) -> bool:
        p = self.proc_or_none()
        return p is not None and fd in p.fdtable.files

    def proc(self):
        p = self.proc_or_none()
        if p is None:
            raise KernelError(E.ESRCH)
        return p

    def task(self):
        p = self.proc()
        if self.tid is None:
            return p.threads[0]
        return next(t for t in p.threads if t.tid == self.tid)

    def tasks(self) -> list:
        """The threads a file sums over: all of them for /proc/PID."""
        p = self.proc()
        return list(p.threads) if self.whole else [self.task()]

    def owner(self) -> tuple[int, int]:
        """Linux's task_dump_owner: the effective ids (root once gone, or
        while the process is not dumpable: it changed its ids)."""
        p = self.proc_or_none()
        if p is None or (p.mm is not None and p.dumpable != SUID_DUMP_USER):
            return 0, 0
        return p.creds.euid, p.creds.egid

    def dir_owner(self) -> tuple[int, int]:
        """task_dump_owner for the world-readable directories (dr-xr-xr-x):
        the effective ids whether dumpable or not, so stat(/proc/PID)
        tells a process's euid."""
        p = self.proc_or_none()
        return (p.creds.euid, p.creds.egid) if p is not None else (0, 0)

    def check_access(self, reader) -> None:
        """ptrace_may_access(READ, FSCREDS), EACCES if refused."""
        if reader is not None and not ptrace_may_access(reader, self.proc(), fscreds=True):
            raise KernelError(E.EACCES)


def live(proc) -> bool:
    return not proc.exited and proc.mm is not None


def nthreads(proc) -> int:
    return sum(1 for t in proc.threads if t.state is not State.DEAD) or 1


def state_letter(proc, task) -> str:
    if proc.zombie:
        return "Z"
    if task.state is State.DEAD:
        return "X"
    if task.state is State.TRACED:
        return "t"
    if proc.stopped or task.state is State.STOPPED:
        return "T"
    if task.state is State.BLOCKED:
        return "S"
    return "R"


def tty_nr(proc) -> int:
    """The controlling terminal in Linux's new_encode_dev form (0: none)."""
    if proc.ctty is None:
        return 0
    ma, mi = CONSOLE_TTY
    return (mi & 0xff) | (ma << 8) | ((mi & ~0xff) << 12)


def tpgid(proc, vnr) -> int:
    """The foreground group of its terminal, as vnr numbers it (-1: none)."""
    tty = proc.ctty
    return vnr(tty.pgrp) if tty is not None and tty.pgrp else -1


def layout(proc) -> dict[str, int]:
    """start/end of code and data as Linux's mm keeps them: the ELF's
    ranges below the brk (read-only ones are code, charged writable ones
    data), or what prctl(PR_SET_MM) set; zeros without an address space."""
    out = {"start_code": 0, "end_code": 0, "start_data": 0, "end_data": 0}
    if not live(proc):
        return out
    mm = proc.mm
    code = [(s, e) for s, e, charged in mm.ranges if e <= mm.brk_start and not charged]
    data = [(s, e) for s, e, charged in mm.ranges if e <= mm.brk_start and charged]
    if code:
        out["start_code"], out["end_code"] = code[0][0], code[-1][1]
    if data:
        out["start_data"], out["end_data"] = data[0][0], data[-1][1]
    out.update(mm.layout_set)       # where prctl(PR_SET_MM) moved them
    return out


class MemUse:
    """A process's memory in pages: size, resident, shared, text, data
    (as statm).  Live processes are measured on the host (the host's page
    tables are the guest's), less the stub page; otherwise the kernel's
    own mapping list gives the size and nothing is resident."""

    def __init__(self, proc) -> None:
        self.size = self.resident = self.shared = self.text = self.data = 0
        if not live(proc):
            return
        mm = proc.mm
        lay = layout(proc)
        self.text = (lay["end_code"] - lay["start_code"]) // C.PAGE_SIZE
        st = procinfo.task_statm(proc.threads[0].hpid)
        if st is not None:
            self.size = max(0, st[0] - STUB_PAGES)
            self.resident = max(0, st[1] - STUB_PAGES)
            self.shared = min(st[2], self.resident)
            self.data = st[5]
        else:
            self.size = sum(e - s for s, e, _ in mm.ranges) // C.PAGE_SIZE
            self.data = sum(e - s for s, e, c in mm.ranges if c) // C.PAGE_SIZE
