"""Interval timers on the kernel's clock: itimers, POSIX timers, timerfds.

A timer fires through the scheduler's timer heap (the event loop's
deadline is the timer interrupt); periodic timers are re-armed when their
expiry is consumed and count the intervals missed meanwhile as overruns,
as Linux's hrtimer-based timers do.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import timekeeping
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timekeeping import KTIME_MAX, KTIME_SEC_MAX, NS
from umlpy.kernel.timens import to_host

if TYPE_CHECKING:
    from umlpy.kernel.cpuclock import CpuClock
    from umlpy.kernel.nsproxy import TimeNamespace

JIFFY_NS = NS // 100                # one tick of the guest's HZ (100, as UML's)
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


def monotonic_for(clk: int, value_ns: int, absolute: bool, timens: TimeNamespace | None = None) -> int:
    """A deadline on the monotonic clock for a value on clock clk (an
    absolute one on a wall clock as that clock reads now: see
    IntervalTimer.follow for one that follows its changes).  timens: the
    time namespace of the task that gave an absolute time, in which its
    monotonic and boot clocks read (timens_ktime_to_host)."""
    if not absolute:
        return after(value_ns)
    if timens is not None:
        value_ns = to_host(timens, clk, value_ns)
    base = _ALARM_BASE.get(clk, clk)
    tk = timekeeping.timekeeper()
    if base in (C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_COARSE):
        return value_ns - tk.mono_offset        # the kernel's deadlines are on the host's clock
    deadline = clock.monotonic_ns() + (value_ns - tk.clock_ns(base))
    anchor = tk.base_offset(base)
    return deadline if anchor is None else timekeeping.WallDeadline(deadline, base, anchor)


ALARM_CLOCKS = tuple(_ALARM_BASE)
# the clocks POSIX timers run on (besides CPU-time clocks); the coarse and
# raw clocks are readable only (no timer_create: EOPNOTSUPP)
TIMER_CLOCKS = (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_BOOTTIME, C.CLOCK_TAI, *ALARM_CLOCKS)
NO_TIMER_CLOCKS = (C.CLOCK_MONOTONIC_RAW, C.CLOCK_REALTIME_COARSE, C.CLOCK_MONOTONIC_COARSE)
TIMERFD_CLOCKS = (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_BOOTTIME, *ALARM_CLOCKS)


def check_timer_clock(clk: int) -> None:
    """A clock timer_create takes (do_timer_create's first checks)."""
    if clk in NO_TIMER_CLOCKS:
        raise KernelError(E.EOPNOTSUPP)
    if clk not in TIMER_CLOCKS:
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
    """One timer as Linux's hrtimer under an itimer, a POSIX timer or a
    timerfd: armed with (deadline, interval), it calls fire() when it
    expires.  A periodic timer does not re-arm itself: its owner forwards
    and restarts it when the expiry is consumed (its signal dequeued, the
    timerfd read), as posixtimer_rearm and timerfd_read do, counting the
    intervals it missed meanwhile.  So a 1 ns interval nobody consumes
    expires once, instead of on every turn of the kernel's loop."""

    def __init__(self, sched, fire: Callable[[], None], cpu: CpuClock | None = None) -> None:
        self.sched = sched
        self.fire = fire
        self.cpu = cpu                     # its clock, if a CPU-time one; else monotonic
        self.interval = 0
        self.deadline: int | None = None   # the next expiry; an expired periodic one's last
        self.expired = False               # a periodic timer fired, not restarted since
        self._timer = None
        self.follows: timekeeping.WallDeadline | None = None    # an absolute time on a wall clock

    @property
    def running(self) -> bool:
        """On the scheduler's heap (hrtimer_active)."""
        return self._timer is not None

    def arm(self, deadline: int | None, interval: int, start: bool = True) -> None:
        """Set it (None disarms); start=False only keeps the deadline, for
        a timer whose expiry nobody is told of (SIGEV_NONE)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unfollow()
        self.deadline = deadline
        self.interval = interval
        self.expired = False
        if isinstance(deadline, timekeeping.WallDeadline):
            # an hrtimer on the realtime base: it moves as the guest sets
            # the clock (clock_was_set), its intervals on with it
            self.follows = deadline
            timekeeping.timekeeper().clock_set.watch(self._clock_set)
        if deadline is not None and start:
            self.restart()

    def _unfollow(self) -> None:
        if self.follows is not None:
            self.follows = None
            timekeeping.timekeeper().clock_set.unwatch(self._clock_set)

    def _clock_set(self) -> None:
        old = self.follows
        new = old.moved() if old is not None else None
        if new is old or self.deadline is None:
            return
        self.follows = new
        self.deadline -= new.anchor - old.anchor
        if self._timer is not None:
            self._timer.cancel()
            self.restart()

    def forward(self, now: int) -> int:
        """hrtimer_forward: move a periodic timer's deadline past now by
        whole intervals; returns how many (0 if it is not due)."""
        if self.deadline is None or not self.interval:
            return 0
        late = now - self.deadline
        if late < 0:
            return 0
        n = late // self.interval + 1
        self.deadline = ktime_add_safe(self.deadline, n * self.interval)
        return n

    def now(self) -> int:
        """Its clock's time."""
        return clock.monotonic_ns() if self.cpu is None else self.cpu.now()

    def restart(self) -> None:
        """Back on the heap at its deadline (hrtimer_restart)."""
        self.expired = False
        if self.cpu is None:
            self._timer = self.sched.add_timer(self.deadline, self._expire)
        else:       # looked at from the kernel's loop, as every expiry
            self._timer = self.sched.add_timer(clock.monotonic_ns(), self._look)

    def _look(self) -> None:
        """A CPU-time timer: expire if its clock got there, else look again
        when it could; a clock whose owner is gone never gets there."""
        self._timer = None
        if self.cpu.gone():
            return
        left = self.deadline - self.cpu.now()
        if left <= 0:
            self._expire()
        else:
            self._timer = self.sched.add_timer(self.cpu.next_look(left), self._look)

    def remaining(self) -> int:
        """Time to a running timer's expiry (at least 1 ns), 0 for one
        that does not run."""
        if self._timer is None:
            return 0
        return max(1, self.deadline - self.now())

    def _expire(self) -> None:
        self._timer = None
        if self.interval:
            self.expired = True
        else:
            self.deadline = None
            self._unfollow()
        self.fire()

    def cancel(self) -> None:
        self.arm(None, 0)
