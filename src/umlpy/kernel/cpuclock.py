"""CPU-time clocks (Linux's posix-cpu-timers): the host's CPU time of a
guest task or process.

The ids: CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID are the
caller's; clock_getcpuclockid and pthread_getcpuclockid build the others
from a pid or tid, ((~pid) << 3) | which, with 4 for a thread.  A thread's
clock is usable from its own process only, a process's from anywhere until
it is reaped.

Sleeps and timers on such a clock cannot be handed to a host timer (the
host arms CPU-time timers only for a caller's own threads), so the kernel
looks at the clock again when it could first have reached the deadline:
the guest is a uniprocessor (every guest task shares the kernel's one host
CPU), so its CPU time runs at most as fast as the wall clock, and what is
left is the soonest the deadline can come.  Near the end it looks at least
LOOK_MIN_NS apart, finer than Linux's tick, which is when Linux looks.
"""
from __future__ import annotations

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import rusage
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import Process, State
from umlpy.kernel.timers import ktime_add_safe

CPUCLOCK_PERTHREAD = 4
CPUCLOCK_MAX = 3
CLOCKFD = 3                 # (id & 7) == 3: a dynamic clock named by an fd (none here)
LOOK_MIN_NS = 1_000_000


def owner_of(t, clk: int, gettime: bool = False):
    """Linux's pid_for_clock: the Task (thread clock) or Process whose CPU
    time clk names; EINVAL if none.  Ids 2 and 3 are the caller's."""
    if clk == C.CLOCK_PROCESS_CPUTIME_ID:
        return t.proc
    if clk == C.CLOCK_THREAD_CPUTIME_ID:
        return t
    if clk >= 0 or clk & 7 == CLOCKFD or clk & 3 == CPUCLOCK_MAX:
        raise KernelError(E.EINVAL)
    pid = ~(clk >> 3)
    if clk & CPUCLOCK_PERTHREAD:
        if pid == 0:
            return t
        task = t.kernel.procs.find_task(t.proc, pid)
        if task is None or task.proc is not t.proc:
            raise KernelError(E.EINVAL)
        return task
    if pid == 0 or (gettime and pid == t.kernel.procs.vnr(t.proc, t.tid)):
        return t.proc
    proc = t.kernel.procs.find_proc(t.proc, pid)       # zombies too, until reaped
    if proc is None:
        raise KernelError(E.EINVAL)
    return proc


def which_of(clk: int) -> int:
    """What the clock counts: CPUCLOCK_PROF, _VIRT or _SCHED."""
    return clock.CPUCLOCK_SCHED if clk in (C.CLOCK_PROCESS_CPUTIME_ID, C.CLOCK_THREAD_CPUTIME_ID) else clk & 3


def cpu_time(owner, which: int) -> int:
    """The CPU-time clock of a Task or a Process: the host's, or what was
    sampled at its death; on top of what it used before a restore
    (kernel/rusage.py)."""
    base = owner.cpu_base
    before = base.utime if which == clock.CPUCLOCK_VIRT else base.utime + base.stime
    if not isinstance(owner, Process):
        return clock.host_thread_cpu_ns(owner.hpid, which) + before
    if owner.usage is None:
        ns = clock.host_process_cpu_ns(owner.host_tgid, which)
        if ns is not None:
            return ns + before
    u = rusage.own(owner)
    return u.utime if which == clock.CPUCLOCK_VIRT else u.utime + u.stime


class CpuClock:
    """One task's or process's CPU-time clock, as sleeps and timers watch it."""

    def __init__(self, owner, which: int) -> None:
        self.owner = owner
        self.which = which

    @classmethod
    def of(cls, t, clk: int) -> CpuClock:
        return cls(owner_of(t, clk), which_of(clk))

    def now(self) -> int:
        return cpu_time(self.owner, self.which)

    def gone(self) -> bool:
        """Its owner exited: the clock stops, and nothing on it expires."""
        o = self.owner
        return o.exited if isinstance(o, Process) else o.state is State.DEAD

    @staticmethod
    def next_look(left: int) -> int:
        """The monotonic time to look again at a clock left ns short of a deadline."""
        return ktime_add_safe(clock.monotonic_ns(), max(LOOK_MIN_NS, left))
