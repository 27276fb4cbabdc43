"""The guest's wall clock, which a privileged guest may set as Linux's.

The guest machine's CLOCK_REALTIME is the host's plus an offset of its own
(0 at boot), CLOCK_TAI that plus the guest's TAI offset (at boot the
host's).  clock_settime, settimeofday and adjtimex's ADJ_SETOFFSET move
the offset and never the host's clock; leap seconds and the NTP state's
slewing (kernel/ntp.py: tick, frequency, PLL phase, adjtime(3)) move it a
step as the guest clock passes each second, which is when Linux's
timekeeper runs second_overflow.  The monotonic and boot clocks are the
host's and never change (as Linux's settime leaves them), nor does NTP
slew them here: they are read in the host's vDSO.  Only a restore can
move them: on a host whose clocks read less than the checkpointed
machine's (another host, or this one rebooted) they would go back, so
they get offsets there, as a time namespace's (`mono_offset`,
`boot_offset`, checkpoint/machine.py), and from then on read by a trap.

The wall clock is read in the vDSO too.  As long as the guest keeps the
host's time its clock_gettime, gettimeofday and time answer there without
a trap; from the guest's first change on (`diverged`) they are made to
trap (kernel/vdso.py) in every address space, live or new, so that every
reader sees the guest's time.

A change of the clock wakes `clock_set` (Linux's clock_was_set): what
waits for an absolute CLOCK_REALTIME or CLOCK_TAI time (a sleep, a timer,
a timerfd) moves its deadline on the monotonic clock by what the clock
moved (`base_offset`), and a timerfd armed with TFD_TIMER_CANCEL_ON_SET
sees the step (`steps`).
"""
from __future__ import annotations

from typing import Callable

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.kernel.ntp import Ntp
from umlpy.kernel.wait import WaitQueue

NS = 10**9
KTIME_MAX = (1 << 63) - 1           # Linux's "never": timer values saturate here
KTIME_SEC_MAX = KTIME_MAX // NS
TIME_SETTOD_SEC_MAX = KTIME_SEC_MAX - 30 * 365 * 24 * 3600
_SCALE = 32                     # the NTP code's fixed point (NTP_SCALE_SHIFT)
_WALL = (C.CLOCK_REALTIME, C.CLOCK_REALTIME_COARSE)
_MONOTONIC = (C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_RAW, C.CLOCK_MONOTONIC_COARSE)
_FOLLOWING = (C.CLOCK_REALTIME, C.CLOCK_TAI)


def settod_check(sec: int, nsec: int) -> None:
    """timespec64_valid_settod: a time the clock could be set to."""
    if sec < 0 or not 0 <= nsec < NS or sec >= TIME_SETTOD_SEC_MAX:
        raise KernelError(E.EINVAL)


class Timekeeper:
    def __init__(self) -> None:
        host = clock.realtime_ns()
        self.offset = 0             # guest CLOCK_REALTIME - host CLOCK_REALTIME, ns
        self.tai = round((clock.host_clock_ns(C.CLOCK_TAI) - host) / NS)    # s
        self.ntp = Ntp()
        self.second = host // NS    # the last second the NTP state moved on at
        self.frac = 0               # the slew not yet applied, ns << 32
        self.tz = (0, 0)            # sys_tz: minutes west, DST type
        self.tz_set = False         # settimeofday's firsttime
        self.steps = 0              # clock steps so far (TFD_TIMER_CANCEL_ON_SET)
        self.clock_set = WaitQueue("clock_was_set")
        self.diverged = False       # the guest's wall clock is no longer the host's
        self.on_diverge: Callable[[], None] | None = None
        self.mono_offset = 0        # guest CLOCK_MONOTONIC (RAW, COARSE) - the host's, ns
        self.boot_offset = 0        # guest CLOCK_BOOTTIME - the host's, ns

    # -- reading ---------------------------------------------------------------------
    def realtime_ns(self) -> int:
        now = clock.realtime_ns() + self.offset
        if now // NS > self.second:
            now = self._advance(now)
        return now

    def clock_ns(self, clk: int) -> int:
        """A clock the guest reads in its vDSO (the wall clocks its own)."""
        if clk == C.CLOCK_REALTIME:
            return self.realtime_ns()
        if clk == C.CLOCK_TAI:
            return self.realtime_ns() + self.tai * NS
        if clk == C.CLOCK_REALTIME_COARSE:
            self.realtime_ns()
            return clock.host_clock_ns(clk) + self.offset
        if clk in _MONOTONIC:
            return clock.host_clock_ns(clk) + self.mono_offset
        if clk == C.CLOCK_BOOTTIME:
            return clock.host_clock_ns(clk) + self.boot_offset
        return clock.host_clock_ns(clk)

    def monotonic_ns(self) -> int:
        """The guest's CLOCK_MONOTONIC."""
        return clock.monotonic_ns() + self.mono_offset

    def boottime_ns(self) -> int:
        """The guest's CLOCK_BOOTTIME (its uptime)."""
        return clock.boottime_ns() + self.boot_offset

    def clocks_offset(self) -> bool:
        """Whether the guest's monotonic or boot clock is not the host's
        (then the vDSO cannot answer for it)."""
        return bool(self.mono_offset or self.boot_offset)

    def base_offset(self, clk: int) -> int | None:
        """How far an absolute time on clock clk is from the host's wall
        clock, for one that follows the guest's clock changes; None for the
        monotonic and boot clocks."""
        if clk not in _FOLLOWING:
            return None
        return self.offset + (self.tai * NS if clk == C.CLOCK_TAI else 0)

    def _advance(self, now: int) -> int:
        """Run the NTP state's second_overflow for each second the guest's
        wall clock passed since it last did, applying the slew and leap
        seconds it gives."""
        ntp, leapt, before = self.ntp, False, self.offset
        while now // NS > self.second:
            quiet = ntp.quiet_seconds(self.second, now // NS)
            if quiet:
                self.second += quiet
                self.frac += quiet * ntp.second_excess()
                ntp.skip(quiet)
            else:
                self.second += 1
                self.frac += ntp.second_excess()
                leap = ntp.second_overflow(self.second)
                if leap:
                    leapt = True
                    self.offset += leap * NS
                    self.second += leap
                    self.tai -= leap
            gained = self.frac >> _SCALE
            self.frac -= gained << _SCALE
            self.offset += gained
            now = clock.realtime_ns() + self.offset
        if leapt or self.offset != before:
            self._moved(step=leapt)
        return now

    # -- setting -----------------------------------------------------------------------
    def set(self, value: int) -> None:
        """do_settimeofday64: the wall clock to value (ns, checked); EINVAL
        before the monotonic clock's time."""
        if value < self.monotonic_ns():
            raise KernelError(E.EINVAL)
        self.realtime_ns()
        self.offset = value - clock.realtime_ns()
        self._stepped(value)

    def inject(self, delta: int) -> None:
        """timekeeping_inject_offset (ADJ_SETOFFSET): the wall clock moves
        by delta ns; EINVAL if it would go before the monotonic clock or
        past what it can be set to."""
        new = self.realtime_ns() + delta
        if new < self.monotonic_ns() or new // NS >= TIME_SETTOD_SEC_MAX:
            raise KernelError(E.EINVAL)
        self.offset += delta
        self._stepped(new)

    def _stepped(self, now: int) -> None:
        self.second = now // NS
        self.frac = 0
        self.ntp.clear()
        self._moved(step=True)

    def set_tai(self, tai: int) -> None:
        if tai != self.tai:
            self.tai = tai
            self._moved(step=True)

    def set_tz(self, minuteswest: int, dsttime: int) -> bool:
        """sys_tz; the first time without a time set, a non-zero zone warps
        the clock (timekeeping_warp_clock: the RTC kept local time).
        Returns whether this was the first time."""
        self.tz = (minuteswest, dsttime)
        self._diverge()
        first, self.tz_set = not self.tz_set, True
        return first

    def _moved(self, step: bool) -> None:
        if step:
            self.steps += 1
        self._diverge()
        self.clock_set.wake_all()

    def _diverge(self) -> None:
        if not self.diverged:
            self.diverged = True
            if self.on_diverge is not None:
                self.on_diverge()



class WallDeadline(int):
    """A monotonic deadline for an absolute time on a wall clock (clk),
    which moves when the guest sets that clock, as an hrtimer on the
    realtime base does after clock_was_set: the scheduler re-arms a wait
    on one (kernel/sched.py).  anchor is the clock's base_offset it was
    worked out at."""

    clk: int
    anchor: int

    def __new__(cls, value: int, clk: int, anchor: int) -> WallDeadline:
        d = super().__new__(cls, value)
        d.clk, d.anchor = clk, anchor
        return d

    def moved(self) -> WallDeadline:
        """The same time on the clock as it is set now."""
        now = _tk.base_offset(self.clk)
        if now is None or now == self.anchor:
            return self
        return WallDeadline(int(self) - (now - self.anchor), self.clk, now)


_tk = Timekeeper()


def timekeeper() -> Timekeeper:
    return _tk


def boot() -> Timekeeper:
    """A fresh machine's clock (the kernel's boot)."""
    global _tk
    _tk = Timekeeper()
    return _tk


def realtime_ns() -> int:
    """The guest's CLOCK_REALTIME (file times, ...)."""
    return _tk.realtime_ns()


def realtime_seconds_ns() -> int:
    """ktime_get_real_seconds (SysV IPC's times): the coarse wall clock,
    which the guest's time() reads too.  The exact clock can be a tick
    past it at a second's turn, and a msgget followed by time() then saw
    a creation time after the time read (LTP's msgctl01)."""
    return _tk.clock_ns(C.CLOCK_REALTIME_COARSE)
