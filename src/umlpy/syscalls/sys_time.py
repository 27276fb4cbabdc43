"""Time: clocks, sleeping, setting the time, times.

The guest reads the host's clocks: clock_gettime, gettimeofday and time of
the wall, monotonic and boot clocks run in the host's vDSO without a trap,
so the syscalls answer with the same host clocks (CLOCK_BOOTTIME is the
host's, and /proc/uptime follows it).  For the same reason the time cannot
be set: the guest would go on reading the host's, so even with
CAP_SYS_TIME setting it is refused with EPERM (as in a container), after
Linux's checks of the clock and the value.

CPU-time clocks are the host's CPU time of the guest's tasks
(kernel/cpuclock.py).
"""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.abi.capability import CAP_SYS_TIME
from umlpy.kernel import cpuclock, cred, printk, rusage
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import KTIME_SEC_MAX, NS, after, read_timespec
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import put_u64, s32

REALTIME_ALARM, BOOTTIME_ALARM = 8, 9
# the host clocks the guest reads as they are
_HOST = (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_RAW, C.CLOCK_REALTIME_COARSE,
         C.CLOCK_MONOTONIC_COARSE, C.CLOCK_BOOTTIME, C.CLOCK_TAI)
_SLEEPABLE = (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_BOOTTIME, C.CLOCK_TAI)
TIME_SETTOD_SEC_MAX = KTIME_SEC_MAX - 30 * 365 * 24 * 3600


def clock_now(t, clk: int) -> int:
    if clk in _HOST:
        return clock.host_clock_ns(clk)
    return cpuclock.cpu_time(cpuclock.owner_of(t, clk, gettime=True), cpuclock.which_of(clk))


@syscall("clock_gettime")
def sys_clock_gettime(t, clk, tp, *_):
    t.mem.write(tp, structs.pack_timespec(clock_now(t, s32(clk))))
    return 0


@syscall("clock_getres")
def sys_clock_getres(t, clk, tp, *_):
    clk = s32(clk)
    if clk in _HOST:
        res = clock.host_clock_res_ns(clk)
    else:
        cpuclock.owner_of(t, clk)
        res = clock.host_cpu_clock_res_ns(cpuclock.which_of(clk))
    if tp:
        t.mem.write(tp, structs.pack_timespec(res))
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


def _sleep_until(t, deadline: int, rem: int, absolute: bool = False):
    """Sleep to a monotonic deadline.  A relative sleep a signal interrupts
    stores the time left in rem, and restarts to the same end; an absolute
    one restarts as called (hrtimer_nanosleep)."""
    def interrupted() -> None:
        if rem and not absolute:
            t.mem.write(rem, structs.pack_timespec(max(0, deadline - clock.monotonic_ns())))
    raise Block(deadline=deadline, on_timeout=lambda: 0, on_interrupt=interrupted,
                restart=E.ERESTARTNOHAND if absolute else E.ERESTART_RESTARTBLOCK,
                restart_fn=lambda: _sleep_until(t, deadline, rem))


def _cpu_sleep_until(t, clk: cpuclock.CpuClock, end: int, absolute: bool, rem: int):
    """Sleep until a CPU-time clock reaches end (posix_cpu_nsleep); its
    owner's end ends the sleep too.  A relative sleep a signal interrupts
    stores the CPU time still to go."""
    def left() -> int:
        return 0 if clk.gone() else end - clk.now()

    def interrupted() -> None:
        if rem and not absolute:
            t.mem.write(rem, structs.pack_timespec(max(0, left())))

    def attempt():
        n = left()
        if n <= 0:
            return 0
        raise Block(deadline=clk.next_look(n), retry=attempt,
                    on_timeout=attempt, on_interrupt=interrupted,
                    restart=E.ERESTARTNOHAND if absolute else E.ERESTART_RESTARTBLOCK, restart_fn=attempt)
    return attempt()


@syscall("nanosleep")
def sys_nanosleep(t, req, rem, *_):
    return _sleep_until(t, after(read_timespec(t, req)), rem)


@syscall("clock_nanosleep")
def sys_clock_nanosleep(t, clk, flags, req, rem, *_):
    clk = s32(clk)
    absolute = bool(flags & C.TIMER_ABSTIME)
    if clk in _SLEEPABLE:
        ns = read_timespec(t, req)
        if absolute:
            return _sleep_until(t, clock.monotonic_ns() + max(0, ns - clock_now(t, clk)), 0, absolute=True)
        return _sleep_until(t, after(ns), rem)
    if clk in _HOST or clk in (C.CLOCK_THREAD_CPUTIME_ID, REALTIME_ALARM, BOOTTIME_ALARM) \
            or (clk < 0 and clk & 7 == cpuclock.CLOCKFD):
        raise KernelError(E.EOPNOTSUPP)     # no nsleep (the alarm clocks: no RTC)
    if clk >= 0 and clk != C.CLOCK_PROCESS_CPUTIME_ID:
        raise KernelError(E.EINVAL)
    ns = read_timespec(t, req)
    if clk & cpuclock.CPUCLOCK_PERTHREAD and ~(clk >> 3) in (0, t.kernel.procs.vnr(t.proc, t.tid)):
        raise KernelError(E.EINVAL)         # a thread cannot sleep on its own CPU time
    cc = cpuclock.CpuClock.of(t, clk)
    return _cpu_sleep_until(t, cc, ns if absolute else cc.now() + ns, absolute, rem)


def _settod_check(sec: int, nsec: int) -> None:
    """timespec64_valid_settod: a time the clock could be set to."""
    if sec < 0 or not 0 <= nsec < NS or sec >= TIME_SETTOD_SEC_MAX:
        raise KernelError(E.EINVAL)


def _refuse_settime(what: str) -> None:
    """What a caller with CAP_SYS_TIME gets (see the module docstring)."""
    printk.pr_info_ratelimited(f"{what}: setting the time is not supported (the guest reads the host's clock)")
    raise KernelError(E.EPERM)


@syscall("clock_settime", status=PARTIAL,
         note="checks as Linux; setting CLOCK_REALTIME is refused with EPERM (the guest reads the host's clock)")
def sys_clock_settime(t, clk, tp, *_):
    clk = s32(clk)
    if clk == C.CLOCK_REALTIME:
        _settod_check(*structs.unpack_timespec(t.mem.read(tp, 16)))
        cred.need(t.proc.creds, CAP_SYS_TIME)
        _refuse_settime("clock_settime")
    if clk >= 0:
        raise KernelError(E.EINVAL)         # no clock_set
    t.mem.read(tp, 16)
    cpuclock.owner_of(t, clk)
    raise KernelError(E.EPERM)              # posix_cpu_clock_set: CPU time is not set


@syscall("settimeofday", status=PARTIAL,
         note="checks as Linux; setting the time or time zone is refused with EPERM (the guest reads the host's)")
def sys_settimeofday(t, tv, tz, *_):
    if tv:
        sec, usec = struct.unpack("<qq", t.mem.read(tv, 16))
        if not 0 <= usec <= 10**6:
            raise KernelError(E.EINVAL)
        _settod_check(sec, usec * 1000)
    minuteswest = struct.unpack("<ii", t.mem.read(tz, 8))[0] if tz else 0
    cred.need(t.proc.creds, CAP_SYS_TIME)
    if not -15 * 60 <= minuteswest <= 15 * 60:
        raise KernelError(E.EINVAL)
    if tv or tz:
        _refuse_settime("settimeofday")
    return 0


# struct timex: modes (u32), then 8-byte fields; the ones adjtimex checks
_TIMEX_FREQ, _TIMEX_TIME_USEC, _TIMEX_TICK = 16, 80, 88
ADJ_FREQUENCY, ADJ_SETOFFSET, ADJ_NANO, ADJ_TICK = 0x0002, 0x0100, 0x2000, 0x4000
ADJ_OFFSET_SINGLESHOT, ADJ_OFFSET_READONLY, ADJ_ADJTIME = 0x0001, 0x2000, 0x8000
ADJ_OFFSET_SS_READ = 0xA001
PPM_SCALE = 1000 << 16
USER_HZ = 100
_LLONG = 1 << 63


def _adjtimex(t, addr: int, name: str) -> int:
    """do_adjtimex on the host's clock: timekeeping_validate_timex's checks,
    then a read of the host's state (modes 0, or adjtime's read); a change
    is refused with EPERM even with CAP_SYS_TIME (see the module docstring)."""
    tx = t.mem.read(addr, clock.TIMEX_SIZE)
    (modes,) = struct.unpack_from("<I", tx)
    creds = t.proc.creds
    if modes & ADJ_ADJTIME:
        if modes & ADJ_OFFSET_SINGLESHOT != ADJ_OFFSET_SINGLESHOT:
            raise KernelError(E.EINVAL)
        if not modes & ADJ_OFFSET_READONLY:
            cred.need(creds, CAP_SYS_TIME)
    else:
        if modes:
            cred.need(creds, CAP_SYS_TIME)
        (tick,) = struct.unpack_from("<q", tx, _TIMEX_TICK)
        if modes & ADJ_TICK and not 900000 // USER_HZ <= tick <= 1100000 // USER_HZ:
            raise KernelError(E.EINVAL)
    if modes & ADJ_SETOFFSET:
        cred.need(creds, CAP_SYS_TIME)
        (usec,) = struct.unpack_from("<q", tx, _TIMEX_TIME_USEC)
        if not 0 <= usec < (NS if modes & ADJ_NANO else 10**6):
            raise KernelError(E.EINVAL)
    (freq,) = struct.unpack_from("<q", tx, _TIMEX_FREQ)
    if modes & ADJ_FREQUENCY and not -(_LLONG // PPM_SCALE) <= freq <= (_LLONG - 1) // PPM_SCALE:
        raise KernelError(E.EINVAL)
    if modes not in (0, ADJ_OFFSET_SS_READ):
        _refuse_settime(name)
    state, out = clock.host_adjtimex_read(tx, modes == ADJ_OFFSET_SS_READ)
    t.mem.write(addr, out)
    return state


@syscall("adjtimex", status=PARTIAL,
         note="reads the host clock's state; a change is refused with EPERM (the guest reads the host's clock)")
def sys_adjtimex(t, buf, *_):
    return _adjtimex(t, buf, "adjtimex")


@syscall("clock_adjtime", status=PARTIAL, note="CLOCK_REALTIME as adjtimex")
def sys_clock_adjtime(t, clk, buf, *_):
    clk = s32(clk)
    if clk == C.CLOCK_REALTIME:
        return _adjtimex(t, buf, "clock_adjtime")
    if clk < 0 and clk & 7 == cpuclock.CLOCKFD:
        t.mem.read(buf, clock.TIMEX_SIZE)
        raise KernelError(E.EINVAL)         # no dynamic (fd) clocks here
    if clk < 0 or clk in _HOST or clk in (C.CLOCK_PROCESS_CPUTIME_ID, C.CLOCK_THREAD_CPUTIME_ID,
                                          REALTIME_ALARM, BOOTTIME_ALARM):
        raise KernelError(E.EOPNOTSUPP)     # a clock that cannot be adjusted
    raise KernelError(E.EINVAL)


@syscall("times")
def sys_times(t, buf, *_):
    if buf:
        me, kids = rusage.own(t.proc), t.proc.cusage
        t.mem.write(buf, struct.pack("<qqqq", *(ns // 10**7 for ns in (me.utime, me.stime, kids.utime, kids.stime))))
    return t.kernel.uptime_ns() // 10**7
