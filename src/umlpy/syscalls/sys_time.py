"""Time: clocks, sleeping, times."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel import rusage
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import after, read_timespec
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import put_u64, s32

_MONO = (C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_RAW, C.CLOCK_MONOTONIC_COARSE, C.CLOCK_BOOTTIME)
_REAL = (C.CLOCK_REALTIME, C.CLOCK_REALTIME_COARSE, 11)   # 11: CLOCK_TAI


def clock_now(t, clk: int) -> int:
    if clk in _REAL:
        return clock.realtime_ns()
    if clk in _MONO:
        return clock.monotonic_ns()
    if clk in (C.CLOCK_PROCESS_CPUTIME_ID, C.CLOCK_THREAD_CPUTIME_ID):
        return clock.host_task_cpu_ns(t.hpid)
    raise KernelError(E.EINVAL)


@syscall("clock_gettime")
def sys_clock_gettime(t, clk, tp, *_):
    t.mem.write(tp, structs.pack_timespec(clock_now(t, s32(clk))))
    return 0


@syscall("clock_getres")
def sys_clock_getres(t, clk, tp, *_):
    clock_now(t, s32(clk))
    if tp:
        t.mem.write(tp, structs.pack_timespec(1))
    return 0


@syscall("gettimeofday")
def sys_gettimeofday(t, tv, tz, *_):
    if tv:
        t.mem.write(tv, structs.pack_timeval(clock.realtime_ns()))
    if tz:
        t.mem.write(tz, bytes(8))
    return 0


@syscall("time")
def sys_time(t, tloc, *_):
    now = clock.realtime_ns() // 10**9
    put_u64(t, tloc, now)
    return now


def _sleep_until(t, deadline: int, rem: int):
    def interrupted() -> None:
        if rem:
            t.mem.write(rem, structs.pack_timespec(max(0, deadline - clock.monotonic_ns())))
    raise Block(deadline=deadline, on_timeout=lambda: 0, on_interrupt=interrupted,
                restart=E.ERESTART_RESTARTBLOCK)


@syscall("nanosleep")
def sys_nanosleep(t, req, rem, *_):
    return _sleep_until(t, after(read_timespec(t, req)), rem)


@syscall("clock_nanosleep")
def sys_clock_nanosleep(t, clk, flags, req, rem, *_):
    clk = s32(clk)
    if clk not in _REAL + _MONO:
        raise KernelError(E.EINVAL if clk not in (2, 3) else E.EOPNOTSUPP)   # ENOTSUP
    ns = read_timespec(t, req)
    if flags & C.TIMER_ABSTIME:
        deadline = clock.monotonic_ns() + max(0, ns - clock_now(t, clk))
        return _sleep_until(t, deadline, 0)
    return _sleep_until(t, after(ns), rem)


@syscall("times")
def sys_times(t, buf, *_):
    if buf:
        me, kids = rusage.own(t.proc), t.proc.cusage
        t.mem.write(buf, struct.pack("<qqqq", *(ns // 10**7 for ns in (me.utime, me.stime, kids.utime, kids.stime))))
    return t.kernel.uptime_ns() // 10**7
