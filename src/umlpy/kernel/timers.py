"""Interval timers on the kernel's clock: itimers, POSIX timers, timerfds.

A timer fires through the scheduler's timer heap (the event loop's
timeout is the timer interrupt); periodic timers re-arm themselves and
count overruns when the loop was late, as Linux's hrtimers do.
"""
from __future__ import annotations

import struct
from typing import Callable

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

NS = 10**9
_ITIMERSPEC = struct.Struct("<qqqq")   # it_interval, it_value (timespecs)
_ITIMERVAL = struct.Struct("<qqqq")    # it_interval, it_value (timevals)


def monotonic_for(clk: int, value_ns: int, absolute: bool) -> int:
    """A deadline on the monotonic clock for a value on clock clk."""
    now = clock.monotonic_ns()
    if not absolute:
        return now + value_ns
    if clk in (C.CLOCK_REALTIME, C.CLOCK_REALTIME_COARSE, 11):
        return now + (value_ns - clock.realtime_ns())
    return value_ns


def check_clock(clk: int) -> None:
    if clk not in (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_BOOTTIME, C.CLOCK_REALTIME_COARSE,
                   C.CLOCK_MONOTONIC_COARSE, 8, 9):   # 8/9: the *_ALARM clocks
        raise KernelError(E.EINVAL)


def unpack_itimerspec(data: bytes) -> tuple[int, int]:
    """(interval ns, value ns)"""
    i_s, i_ns, v_s, v_ns = _ITIMERSPEC.unpack(data)
    for s, ns in ((i_s, i_ns), (v_s, v_ns)):
        if s < 0 or not 0 <= ns < NS:
            raise KernelError(E.EINVAL)
    return i_s * NS + i_ns, v_s * NS + v_ns


def pack_itimerspec(interval: int, value: int) -> bytes:
    return _ITIMERSPEC.pack(interval // NS, interval % NS, value // NS, value % NS)


def unpack_itimerval(data: bytes) -> tuple[int, int]:
    i_s, i_us, v_s, v_us = _ITIMERVAL.unpack(data)
    for s, us in ((i_s, i_us), (v_s, v_us)):
        if s < 0 or not 0 <= us < 10**6:
            raise KernelError(E.EINVAL)
    return i_s * NS + i_us * 1000, v_s * NS + v_us * 1000


def pack_itimerval(interval: int, value: int) -> bytes:
    # Linux rounds a running timer's remaining time up to the microsecond
    v_us = (value + 999) // 1000
    return _ITIMERVAL.pack(interval // NS, (interval % NS) // 1000, v_us // 10**6, v_us % 10**6)


class IntervalTimer:
    """One timer: armed with (value, interval); calls fire(overruns) when it expires."""

    def __init__(self, sched, fire: Callable[[int], None]) -> None:
        self.sched = sched
        self.fire = fire
        self.interval = 0
        self.deadline: int | None = None
        self._timer = None

    def arm(self, deadline: int | None, interval: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.deadline = deadline
        self.interval = interval
        if deadline is not None:
            self._timer = self.sched.add_timer(deadline, self._expire)

    def remaining(self) -> int:
        if self.deadline is None:
            return 0
        return max(1, self.deadline - clock.monotonic_ns())

    def _expire(self) -> None:
        self._timer = None
        overruns = 0
        if self.interval:
            now = clock.monotonic_ns()
            nxt = self.deadline + self.interval
            if nxt <= now:
                missed = (now - nxt) // self.interval + 1
                overruns = missed
                nxt += missed * self.interval
            self.arm(nxt, self.interval)
        else:
            self.deadline = None
        self.fire(overruns)

    def cancel(self) -> None:
        self.arm(None, 0)
