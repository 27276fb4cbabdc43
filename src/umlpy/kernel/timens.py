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
from umlpy.kernel.timekeeping import KTIME_MAX, NS
from umlpy.kernel.vdso import space_of

if TYPE_CHECKING:
    from umlpy.kernel.nsproxy import TimeNamespace

MONOTONIC_CLOCKS = (C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_RAW, C.CLOCK_MONOTONIC_COARSE)
BOOT_CLOCKS = (C.CLOCK_BOOTTIME, C.CLOCK_BOOTTIME_ALARM)


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
