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
from umlpy.kernel.errors import Block, KernelError

NS = 10**9
KTIME_MAX = (1 << 63) - 1           # Linux's "never": timer values saturate here
KTIME_SEC_MAX = KTIME_MAX // NS
_TIMESPEC = struct.Struct("<qq")
_ITIMERSPEC = struct.Struct("<qqqq")   # it_interval, it_value (timespecs)
_ITIMERVAL = struct.Struct("<qqqq")    # it_interval, it_value (timevals)


def ktime(sec: int, nsec: int) -> int:
    """A timespec from a guest as Linux's ktime: EINVAL unless it is valid
    (timespec64_valid: no negative seconds, nanoseconds below 10^9), and
    values past what 64-bit nanoseconds hold saturate at KTIME_MAX
    (timespec64_to_ktime), so any valid value is a usable timeout."""
    if sec < 0 or not 0 <= nsec < NS:
        raise KernelError(E.EINVAL)
    if sec >= KTIME_SEC_MAX:
        return KTIME_MAX
    return sec * NS + nsec


def read_timespec(t, addr: int) -> int:
    """A struct timespec in guest memory as a ktime (see ktime)."""
    return ktime(*_TIMESPEC.unpack(t.mem.read(addr, _TIMESPEC.size)))


def ktime_add_safe(a: int, b: int) -> int:
    """a + b, saturating as Linux's ktime_add_safe."""
    r = a + b
    return r if r <= KTIME_MAX else KTIME_SEC_MAX * NS


def after(value_ns: int) -> int:
    """The monotonic deadline value_ns from now, as a relative hrtimer's."""
    return ktime_add_safe(clock.monotonic_ns(), value_ns)


_ALARM_BASE = {8: C.CLOCK_REALTIME, 9: C.CLOCK_BOOTTIME}     # the *_ALARM clocks


def monotonic_for(clk: int, value_ns: int, absolute: bool) -> int:
    """A deadline on the monotonic clock for a value on clock clk (the
    host's: the guest reads it there)."""
    if not absolute:
        return after(value_ns)
    base = _ALARM_BASE.get(clk, clk)
    if base in (C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_COARSE):
        return value_ns
    return clock.monotonic_ns() + (value_ns - clock.host_clock_ns(base))


def check_clock(clk: int) -> None:
    if clk not in (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_BOOTTIME, C.CLOCK_REALTIME_COARSE,
                   C.CLOCK_MONOTONIC_COARSE, *_ALARM_BASE):
        raise KernelError(E.EINVAL)


def unpack_itimerspec(data: bytes) -> tuple[int, int]:
    """(interval ns, value ns), each checked and saturated as ktime()."""
    i_s, i_ns, v_s, v_ns = _ITIMERSPEC.unpack(data)
    return ktime(i_s, i_ns), ktime(v_s, v_ns)


def pack_itimerspec(interval: int, value: int) -> bytes:
    return _ITIMERSPEC.pack(interval // NS, interval % NS, value // NS, value % NS)


def unpack_itimerval(data: bytes) -> tuple[int, int]:
    """(interval ns, value ns): timeval_valid, then as ktime()."""
    i_s, i_us, v_s, v_us = _ITIMERVAL.unpack(data)
    for us in (i_us, v_us):
        if not 0 <= us < 10**6:
            raise KernelError(E.EINVAL)
    return ktime(i_s, i_us * 1000), ktime(v_s, v_us * 1000)


def pack_itimerval(interval: int, value: int) -> bytes:
    # Linux rounds a running timer's remaining time up to the microsecond
    v_us = (value + 999) // 1000
    return _ITIMERVAL.pack(interval // NS, (interval % NS) // 1000, v_us // 10**6, v_us % 10**6)


def bounded(fn: Callable[[], int], timeout: int | None) -> int:
    """Run a whole syscall whose waits a timeout of its own bounds (a
    socket's SO_RCVTIMEO/SO_SNDTIMEO): None waits as fn does, 0 does not
    wait.  When the time is up the call returns what it has done or fails
    with EAGAIN; a signal ends it with EINTR, never a restart, as Linux's
    sock_intr_errno for a socket with a timeout."""
    if timeout is None:
        return fn()
    return _bounded(fn, after(timeout))


def _bounded(fn: Callable[[], int], deadline: int) -> int:
    try:
        return fn()
    except Block as b:
        inner = b.retry or fn       # no retry of its own: the whole call again
        done = b.interrupted_result

        def timed_out() -> int:
            if done is not None:
                return done
            raise KernelError(E.EAGAIN)
        b.deadline = deadline if b.deadline is None else min(b.deadline, deadline)
        b.retry = lambda: _bounded(inner, deadline)
        b.on_timeout = timed_out
        b.restart = E.EINTR
        raise


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
