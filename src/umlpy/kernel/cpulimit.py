"""RLIMIT_CPU, enforced: a process that has used its soft limit of CPU
time gets SIGXCPU, and again each further second (the soft limit moves up
by one, as getrlimit then shows); at the hard limit it gets SIGKILL.  As
Linux's check_process_timers.

A process's CPU time is its host processes' (kernel/rusage.py), sampled by
a timer that sleeps as long as the process could not reach its limit
(at most a second, at least a tick), so a guest that limits itself, as CI
sandboxes do, cannot burn a host CPU past the limit.
"""
from __future__ import annotations

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import signals as S
from umlpy.kernel import rusage
from umlpy.kernel.task import RLIM_INFINITY

NS = 10**9
TICK_NS = 10_000_000
KEY = "rlimit-cpu"          # its place among the process's timers: exit cancels it


class CpuLimit:
    def __init__(self, k, proc) -> None:
        self.k = k
        self.proc = proc
        self._timer = None

    def _schedule(self, wait_ns: int) -> None:
        self._timer = self.k.sched.add_timer(clock.monotonic_ns() + wait_ns, self._sample)

    def _sample(self) -> None:
        self._timer = None
        proc = self.proc
        if proc.exited:
            return
        soft, hard = proc.rlimit(C.RLIMIT_CPU)
        if soft == RLIM_INFINITY:
            return
        u = rusage.own(proc)
        used = u.utime + u.stime
        if hard != RLIM_INFINITY and used >= hard * NS:
            self.k.signals.send_proc(proc, S.SIGKILL, C.SI_KERNEL)
            return
        if used >= soft * NS:
            self.k.signals.send_proc(proc, S.SIGXCPU, C.SI_KERNEL)
            if soft < hard:
                soft += 1
                proc.rlimits[C.RLIMIT_CPU] = (soft, hard)
        left = min(x * NS - used for x in (soft, hard) if x != RLIM_INFINITY)
        threads = max(1, len(proc.threads))     # each can use a CPU's worth
        self._schedule(min(NS, max(TICK_NS, left // threads)))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def update(k, proc) -> None:
    """The process's RLIMIT_CPU changed (setrlimit, prlimit) or it was
    forked with one: watch it while the soft limit is finite."""
    w = proc.timers.get(KEY)
    if w is None:
        if proc.rlimit(C.RLIMIT_CPU)[0] == RLIM_INFINITY:
            return
        w = proc.timers[KEY] = CpuLimit(k, proc)
    w.cancel()
    w._sample()
