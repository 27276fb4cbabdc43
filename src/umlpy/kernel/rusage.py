"""Resource usage: what getrusage, wait4, waitid, times and /proc report.

Guest code runs as host processes, so a process's CPU time and peak RSS are
its host process's (host user time as user time; host system time, which
includes its ptrace stops, as system time).  As Linux's, the total is the
precise run time, split between user and system as the tick samples are
and never going back (cputime_adjust).  They are sampled when the
process dies, while its host process still exists: a process that exits
by a syscall is asked itself (an injected getrusage, written just below its
stack pointer: the memory dies with it), which costs a fifth of reading its
host /proc files, the way for the others.  A parent adds a child's totals
to its own children's when it waits for the child, as Linux's
wait_task_zombie (an auto-reaped child adds nothing).

A restored task goes on in a new host process whose CPU time starts at
zero: what it had used before is its `cpu_base`, added to every figure
(the process's and each thread's), so CPU time never goes back and
RLIMIT_CPU counts what was used before the checkpoint too.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from arch_um import clock, procinfo, ptrace
from arch_um.memory import GuestFault
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel import ioac
from umlpy.kernel.errors import KernelError

RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD = 0, -1, 1
_RUSAGE_HEAD = struct.Struct("<5q")     # ru_utime, ru_stime (timevals), ru_maxrss
_RUSAGE_LONGS = struct.Struct("<14q")   # ru_maxrss .. ru_nivcsw


@dataclass
class Usage:
    utime: int = 0      # ns
    stime: int = 0      # ns
    maxrss: int = 0     # KiB

    def __add__(self, o: Usage) -> Usage:
        return Usage(self.utime + o.utime, self.stime + o.stime, max(self.maxrss, o.maxrss))

    def adjust(self, sampled: Usage, rtime: int) -> Usage:
        """Linux's cputime_adjust, self being the last answer (prev_cputime):
        rtime split in the ratio of the sampled user and system times, with
        neither ever less than it was; sampled's peak RSS."""
        if self.utime + self.stime < rtime:
            su, ss = sampled.utime, sampled.stime
            stime = rtime * ss // (ss + su) if ss and su else 0 if not ss else rtime
            stime = max(stime, self.stime)
            utime = rtime - stime
            if utime < self.utime:
                utime = self.utime
                stime = rtime - utime
            self.utime, self.stime = utime, stime
        return Usage(self.utime, self.stime, sampled.maxrss)

    def pack(self, blocks: tuple[int, int] = (0, 0), switches: tuple[int, int] = (0, 0)) -> bytes:
        """struct rusage: two timevals and fourteen longs, ru_inblock and
        ru_oublock among them (blocks: kernel/ioac.py's), ru_nvcsw and
        ru_nivcsw the last two (switches: this module's)."""
        return (structs.pack_timeval(self.utime) + structs.pack_timeval(self.stime)
                + _RUSAGE_LONGS.pack(self.maxrss, 0, 0, 0, 0, 0, 0, *blocks, 0, 0, 0, *switches))


def own(proc) -> Usage:
    """A process's own usage: sampled at death, else read from the host."""
    if proc.usage is not None:
        return proc.usage
    live = [t for t in proc.threads if t.mem is not None]
    if not live:
        return proc.cpu_base
    hpid = live[0].hpid
    sampled = Usage(*clock.host_usage(hpid))
    # the host's process clock names its leader: gone, the tick samples are the total
    rtime = clock.host_process_cpu_ns(hpid, clock.CPUCLOCK_SCHED) or sampled.utime + sampled.stime
    return proc.prev_cputime.adjust(sampled, rtime) + proc.cpu_base


def at_exit(proc, current) -> None:
    """current: the task whose syscall ends the process, if it is proc's."""
    shared = proc.mm is not None and proc.mm.users > 1     # vfork: the parent's memory stays
    if current is not None and current.proc is proc and current.in_syscall >= 0 and not shared:
        from umlpy.kernel.hostas import HostAs
        try:
            ptrace.ensure_stopped(current.hpid)     # its stack pointer is read below
            buf = (current.regs.rsp - 4096) & ~15
            if HostAs(current).call("getrusage", RUSAGE_SELF, buf) == 0:
                raw = current.mem.read(buf, _RUSAGE_HEAD.size + _RUSAGE_LONGS.size - 8)
                us, uus, ss, sus, maxrss = _RUSAGE_HEAD.unpack_from(raw)
                # its host threads' preemptions, the gone ones' too
                proc.switches = (_voluntary(proc), _RUSAGE_LONGS.unpack_from(raw, _RUSAGE_HEAD.size - 8)[13])
                # the host split its total its own way; the split must not
                # go back from what the process was told (its times(),
                # getrusage): the total through the process's own
                # cputime_adjust, as Linux's wait_task_zombie does
                host = Usage(us * 10**9 + uus * 1000, ss * 10**9 + sus * 1000, maxrss)
                proc.usage = proc.prev_cputime.adjust(host, host.utime + host.stime) + proc.cpu_base
                return
        except (KernelError, GuestFault, ptrace.HostError):
            pass
    proc.usage = own(proc)
    proc.switches = own_switches(proc)


def waited(parent, child) -> None:
    parent.cusage = parent.cusage + own(child) + child.cusage
    nv, niv = with_children(child)
    parent.child_switches = (parent.child_switches[0] + nv, parent.child_switches[1] + niv)


def with_children(proc) -> tuple[int, int]:
    """A process's context switches and its waited children's (wait4's
    RUSAGE_BOTH; what its parent's wait adds to the parent's children's)."""
    (nv, niv), (cnv, cniv) = own_switches(proc), proc.child_switches
    return nv + cnv, niv + cniv


def _involuntary(t) -> int:
    return procinfo.involuntary_switches(t.hpid) if t.mem is not None else 0


def _voluntary(proc) -> int:
    return proc.dead_nvcsw + sum(t.nvcsw for t in proc.threads)


def own_switches(proc) -> tuple[int, int]:
    """A process's context switches (getrusage's ru_nvcsw, ru_nivcsw):
    sampled at its death, else its live threads' and those of the threads
    that ended (of the involuntary ones, only the host's count of the
    whole process at its death has those)."""
    if proc.switches is not None:
        return proc.switches
    return _voluntary(proc), sum(_involuntary(t) for t in proc.threads)


def switches(t, who: int) -> tuple[int, int]:
    """getrusage's ru_nvcsw and ru_nivcsw: the voluntary ones are the
    task's waits in the kernel (kernel/sched.py counts them, as schedule()
    from a sleep), the involuntary ones the host's preemptions of its
    guest code; the process's, its waited children's or the thread's."""
    if who == RUSAGE_SELF:
        return own_switches(t.proc)
    if who == RUSAGE_CHILDREN:
        return t.proc.child_switches
    return t.nvcsw, _involuntary(t)


def blocks(t, who: int) -> tuple[int, int]:
    """getrusage's ru_inblock and ru_oublock: the process's threads',
    its waited children's, or the thread's own."""
    if who == RUSAGE_SELF:
        return ioac.own_blocks(t.proc)
    ac = t.proc.child_ioac if who == RUSAGE_CHILDREN else t.ioac
    return ac.inblock, ac.oublock


def of(t, who: int) -> Usage:
    if who == RUSAGE_SELF:
        return own(t.proc)
    if who == RUSAGE_CHILDREN:
        return t.proc.cusage
    if who == RUSAGE_THREAD:
        return t.prev_cputime.adjust(Usage(*clock.host_usage(t.hpid, t.hpid)), clock.host_task_cpu_ns(t.hpid)) \
            + t.cpu_base
    raise KernelError(E.EINVAL)
