"""Time namespaces (time_namespaces(7), Linux's kernel/time/namespace.c):
what a namespace's offsets do to the clocks its processes read.

A time namespace (nsproxy.TimeNamespace) gives its processes'
CLOCK_MONOTONIC (and its RAW and COARSE variants) and CLOCK_BOOTTIME (and
CLOCK_BOOTTIME_ALARM) an offset from the machine's; the wall clocks are
everyone's.  unshare(CLONE_NEWTIME) makes a namespace for the caller's
children (its nsproxy's `time_for_children`; the caller stays where it
is), whose offsets start as the parent namespace's and may be written
through /proc/PID/timens_offsets until a process enters it (`commit`:
a fork or exec into it, setns), which freezes them for good, as Linux's
vvar page is set up once.

The kernel's own clocks and deadlines stay the machine's: a time is moved
into a namespace where Linux calls timens_add_* (`offset`: clock_gettime,
/proc/uptime, sysinfo, /proc/PID/stat's start time) and out of it where
Linux calls timens_ktime_to_host (`to_host`: the absolute times of
clock_nanosleep, POSIX timers, timerfds and futexes).  The vDSO reads the
host's clocks, so the address space of a process in a namespace whose
offsets are not zero has its clock_gettime trap for every clock
(kernel/vdso.py), as Linux's vDSO turns to the namespace's vvar page.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_TIME
from umlpy.kernel import timekeeping, userns
from umlpy.kernel.errors import KernelError
from umlpy.kernel.timekeeping import KTIME_MAX, KTIME_SEC_MAX, NS
from umlpy.kernel.vdso import space_of

if TYPE_CHECKING:
    from umlpy.kernel.nsproxy import TimeNamespace

MONOTONIC_CLOCKS = (C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_RAW, C.CLOCK_MONOTONIC_COARSE)
BOOT_CLOCKS = (C.CLOCK_BOOTTIME, C.CLOCK_BOOTTIME_ALARM)
# the clocks an offset is written for (/proc/PID/timens_offsets), by name
OFFSET_CLOCKS = {"monotonic": C.CLOCK_MONOTONIC, "boottime": C.CLOCK_BOOTTIME}


def _ns(ts: tuple[int, int]) -> int:
    """timespec64_to_ktime of an offset (its seconds are in range: see
    set_offsets)."""
    return ts[0] * NS + ts[1]


def offset(ns: TimeNamespace, clk: int) -> int:
    """How far clock clk reads ahead in ns of the machine's (timens_add_*),
    in nanoseconds: 0 for the clocks no offset touches."""
    if clk in MONOTONIC_CLOCKS:
        return _ns(ns.monotonic)
    if clk in BOOT_CLOCKS:
        return _ns(ns.boottime)
    return 0


def offset_of(task, clk: int) -> int:
    """offset() in the time namespace of the task reading (None: the
    kernel itself, which reads the machine's clocks)."""
    return offset(task.proc.ns.time, clk) if task is not None else 0


def to_host(ns: TimeNamespace, clk: int, tim: int) -> int:
    """do_timens_ktime_to_host: an absolute time on clock clk as ns reads
    it, on the machine's clock; one before the offset is long past (0),
    and the result saturates at KTIME_MAX.  Only the clocks timers run on
    (monotonic, boot) are moved."""
    if clk not in (C.CLOCK_MONOTONIC, *BOOT_CLOCKS):
        return tim
    off = offset(ns, clk)
    return 0 if tim < off else min(tim - off, KTIME_MAX)


def traps(ns: TimeNamespace) -> bool:
    """Whether a process in ns needs its vDSO's clock_gettime to trap: the
    host's clocks are not its own."""
    return ns.monotonic != (0, 0) or ns.boottime != (0, 0)


def commit(kernel, proc) -> None:
    """timens_commit: the process has entered its nsproxy's time namespace,
    whose offsets cannot change from now on, and its vDSO answers for
    that namespace (vdso_join_timens).  A process whose address space has
    no vDSO where exec put it (unmapped, moved) keeps what it has."""
    ns = proc.ns.time
    ns.frozen = True
    space = space_of(proc.mm)
    if space is not None:
        kernel.vdso.set_clocks(*space, traps(ns))


def show_offsets(ns: TimeNamespace) -> bytes:
    """/proc/PID/timens_offsets: the offsets of the process's
    time_for_children namespace (proc_timens_show_offsets)."""
    return b"".join(b"%-10s %10d %9d\n" % (name.encode(), *getattr(ns, name)) for name in OFFSET_CLOCKS)


def set_offsets(creds, ns: TimeNamespace, offsets: list[tuple[int, int, int]]) -> None:
    """proc_timens_set_offset: (clock, sec, nsec) each; EPERM without
    CAP_SYS_TIME in the user namespace owning ns (for the writer's
    credentials as it opened the file), ERANGE for an offset that puts the
    clock before 0 or past half of what a ktime holds, EACCES once a
    process has entered ns.  All or none are set."""
    if not userns.ns_capable(creds, ns.owner, CAP_SYS_TIME):
        raise KernelError(E.EPERM)
    tk = timekeeping.timekeeper()
    for clk, sec, nsec in offsets:
        now = tk.monotonic_ns() if clk == C.CLOCK_MONOTONIC else tk.boottime_ns()
        if not -KTIME_SEC_MAX <= sec <= KTIME_SEC_MAX:
            raise KernelError(E.ERANGE)
        total = now // NS + sec + (now % NS + nsec) // NS      # timespec64_add, normalised
        if not 0 <= total <= KTIME_SEC_MAX // 2:
            raise KernelError(E.ERANGE)
    if ns.frozen:
        raise KernelError(E.EACCES)
    for clk, sec, nsec in offsets:
        if clk == C.CLOCK_MONOTONIC:
            ns.monotonic = (sec, nsec)
        else:
            ns.boottime = (sec, nsec)
