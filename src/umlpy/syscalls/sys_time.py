"""Time: clocks, sleeping, setting the time, adjtimex, times.

The monotonic and boot clocks are the host's (CLOCK_BOOTTIME too, and
/proc/uptime follows it), read in the host's vDSO without a trap, unless
a restore gave them offsets (checkpoint/machine.py) or the reader is in
a time namespace with offsets of its own (kernel/timens.py): then they
trap too, and are answered here on the guest's clock (plus the
namespace's offsets, which absolute times given to clock_nanosleep and
the timers lose again: timers.monotonic_for).  The wall clocks (CLOCK_REALTIME, CLOCK_TAI) are the guest machine's own
(kernel/timekeeping.py): the host's until a guest with CAP_SYS_TIME sets
them, which moves only the guest's clock; from then on the vDSO's time
calls trap and are answered here.  adjtimex works on the guest's NTP
state (kernel/ntp.py).

CPU-time clocks are the host's CPU time of the guest's tasks
(kernel/cpuclock.py).
"""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.abi import timex as X
from umlpy.abi.capability import CAP_SYS_TIME
from umlpy.kernel import cpuclock, cred, rusage, timekeeping, timens
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timekeeping import settod_check
from umlpy.kernel.timers import NS, after, monotonic_for, read_timespec
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import put_u64, s32

# the clocks read in the vDSO (the wall ones the guest's, the others the host's)
_VDSO = (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_MONOTONIC_RAW, C.CLOCK_REALTIME_COARSE,
         C.CLOCK_MONOTONIC_COARSE, C.CLOCK_BOOTTIME, C.CLOCK_TAI)
_SLEEPABLE = (C.CLOCK_REALTIME, C.CLOCK_MONOTONIC, C.CLOCK_BOOTTIME, C.CLOCK_TAI)
_ALARMS = (C.CLOCK_REALTIME_ALARM, C.CLOCK_BOOTTIME_ALARM)


def clock_now(t, clk: int) -> int:
    """Clock clk as t reads it (its monotonic and boot clocks in its time
    namespace)."""
    if clk in _VDSO:
        return timekeeping.timekeeper().clock_ns(clk) + timens.offset_of(t, clk)
    return cpuclock.cpu_time(cpuclock.owner_of(t, clk, gettime=True), cpuclock.which_of(clk))


@syscall("clock_gettime")
def sys_clock_gettime(t, clk, tp, *_):
    t.mem.write(tp, structs.pack_timespec(clock_now(t, s32(clk))))
    return 0


@syscall("clock_getres")
def sys_clock_getres(t, clk, tp, *_):
    clk = s32(clk)
    if clk in _VDSO:
        res = clock.host_clock_res_ns(clk)
    else:
        cpuclock.owner_of(t, clk)
        res = clock.host_cpu_clock_res_ns(cpuclock.which_of(clk))
    if tp:
        t.mem.write(tp, structs.pack_timespec(res))
    return 0


@syscall("gettimeofday")
def sys_gettimeofday(t, tv, tz, *_):
    tk = timekeeping.timekeeper()
    if tv:
        t.mem.write(tv, structs.pack_timeval(tk.realtime_ns()))
    if tz:
        t.mem.write(tz, struct.pack("<ii", *tk.tz))
    return 0


@syscall("time")
def sys_time(t, tloc, *_):
    now = timekeeping.realtime_ns() // NS
    put_u64(t, tloc, now)
    return now


def sleep_until(t, deadline: int, rem: int, absolute: bool = False):
    """Sleep to a monotonic deadline.  A relative sleep a signal interrupts
    stores the time left in rem, and restarts to the same end; an absolute
    one restarts as called (hrtimer_nanosleep)."""
    def interrupted() -> None:
        if rem and not absolute:
            t.mem.write(rem, structs.pack_timespec(max(0, deadline - clock.monotonic_ns())))
    raise Block(deadline=deadline, on_timeout=lambda: 0, on_interrupt=interrupted,
                restart=E.ERESTARTNOHAND if absolute else E.ERESTART_RESTARTBLOCK,
                restart_fn=None if absolute else SleepOn(t, deadline, rem))


class SleepOn:
    """restart_syscall's way on after a relative sleep was interrupted:
    to the same end (its restart block), which a checkpoint of a task
    stopped meanwhile reads."""
    __slots__ = ("t", "deadline", "rem")

    def __init__(self, t, deadline: int, rem: int) -> None:
        self.t, self.deadline, self.rem = t, deadline, rem

    def __call__(self):
        return sleep_until(self.t, self.deadline, self.rem)


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
    return sleep_until(t, after(read_timespec(t, req)), rem)


@syscall("clock_nanosleep")
def sys_clock_nanosleep(t, clk, flags, req, rem, *_):
    clk = s32(clk)
    absolute = bool(flags & C.TIMER_ABSTIME)
    if clk in _SLEEPABLE:
        ns = read_timespec(t, req)
        if absolute:        # on a wall clock, it follows the clock's changes (kernel/sched.py)
            return sleep_until(t, monotonic_for(clk, ns, True, t.proc.ns.time), 0, absolute=True)
        return sleep_until(t, after(ns), rem)
    if clk in _VDSO or clk in (C.CLOCK_THREAD_CPUTIME_ID, *_ALARMS) \
            or (clk < 0 and clk & 7 == cpuclock.CLOCKFD):
        raise KernelError(E.EOPNOTSUPP)     # no nsleep (the alarm clocks: no RTC)
    if clk >= 0 and clk != C.CLOCK_PROCESS_CPUTIME_ID:
        raise KernelError(E.EINVAL)
    ns = read_timespec(t, req)
    if clk & cpuclock.CPUCLOCK_PERTHREAD and ~(clk >> 3) in (0, t.kernel.procs.vnr(t.proc, t.tid)):
        raise KernelError(E.EINVAL)         # a thread cannot sleep on its own CPU time
    cc = cpuclock.CpuClock.of(t, clk)
    return _cpu_sleep_until(t, cc, ns if absolute else cc.now() + ns, absolute, rem)


@syscall("clock_settime", note="CLOCK_REALTIME: the guest's wall clock (never the host's); CPU-time clocks EPERM")
def sys_clock_settime(t, clk, tp, *_):
    clk = s32(clk)
    if clk == C.CLOCK_REALTIME:
        sec, nsec = structs.unpack_timespec(t.mem.read(tp, 16))
        settod_check(sec, nsec)
        cred.need(t.proc.creds, CAP_SYS_TIME)
        timekeeping.timekeeper().set(sec * NS + nsec)
        return 0
    if clk >= 0:
        raise KernelError(E.EINVAL)         # no clock_set
    t.mem.read(tp, 16)
    cpuclock.owner_of(t, clk)
    raise KernelError(E.EPERM)              # posix_cpu_clock_set: CPU time is not set


@syscall("settimeofday", note="the guest's wall clock and time zone (never the host's)")
def sys_settimeofday(t, tv, tz, *_):
    """do_sys_settimeofday64: the time zone first; its first setting
    without a time warps the clock by it (timekeeping_warp_clock)."""
    if tv:
        sec, usec = struct.unpack("<qq", t.mem.read(tv, 16))
        if not 0 <= usec <= 10**6:
            raise KernelError(E.EINVAL)
        settod_check(sec, usec * 1000)
    minuteswest, dsttime = struct.unpack("<ii", t.mem.read(tz, 8)) if tz else (0, 0)
    cred.need(t.proc.creds, CAP_SYS_TIME)
    tk = timekeeping.timekeeper()
    if tz:
        if not -15 * 60 <= minuteswest <= 15 * 60:
            raise KernelError(E.EINVAL)
        if tk.set_tz(minuteswest, dsttime) and not tv and minuteswest:
            try:
                tk.inject(minuteswest * 60 * NS)
            except KernelError:
                pass        # timekeeping_warp_clock does not look at how it went
    if tv:
        tk.set(sec * NS + usec * 1000)
    return 0


_LLONG = 1 << 63


def _validate_timex(creds, tx: dict[str, int]) -> None:
    """timekeeping_validate_timex."""
    modes = tx["modes"]
    if modes & X.ADJ_ADJTIME:
        if not modes & X.ADJ_OFFSET_SINGLESHOT & ~X.ADJ_ADJTIME:     # the kernel's singleshot bit, 0x0001
            raise KernelError(E.EINVAL)
        if not modes & X.ADJ_OFFSET_READONLY:
            cred.need(creds, CAP_SYS_TIME)
    else:
        if modes:
            cred.need(creds, CAP_SYS_TIME)
        if modes & X.ADJ_TICK and not 900000 // X.USER_HZ <= tx["tick"] <= 1100000 // X.USER_HZ:
            raise KernelError(E.EINVAL)
    if modes & X.ADJ_SETOFFSET:
        cred.need(creds, CAP_SYS_TIME)
        if not 0 <= tx["tv_usec"] < (NS if modes & X.ADJ_NANO else 10**6):
            raise KernelError(E.EINVAL)
    if modes & X.ADJ_FREQUENCY and not -(_LLONG // X.PPM_SCALE) <= tx["freq"] <= (_LLONG - 1) // X.PPM_SCALE:
        raise KernelError(E.EINVAL)


def _adjtimex(t, addr: int) -> int:
    """do_adjtimex on the guest's clock: the checks, an ADJ_SETOFFSET
    step, then the NTP state's reading and changes."""
    tx = X.unpack_timex(t.mem.read(addr, X.TIMEX_SIZE))
    _validate_timex(t.proc.creds, tx)
    tk = timekeeping.timekeeper()
    if tx["modes"] & X.ADJ_SETOFFSET:
        usec = tx["tv_usec"]
        tk.inject(tx["tv_sec"] * NS + (usec if tx["modes"] & X.ADJ_NANO else usec * 1000))
    state, tai = tk.ntp.adjtimex(tx, tk.realtime_ns(), tk.tai)
    tk.set_tai(tai)
    t.mem.write(addr, X.pack_timex(tx))
    return state


@syscall("adjtimex", note="the guest's NTP state (kernel/ntp.py); tick, frequency and slews move the guest's wall clock a step a second")
def sys_adjtimex(t, buf, *_):
    return _adjtimex(t, buf)


@syscall("clock_adjtime", note="CLOCK_REALTIME as adjtimex")
def sys_clock_adjtime(t, clk, buf, *_):
    clk = s32(clk)
    if clk == C.CLOCK_REALTIME:
        return _adjtimex(t, buf)
    if clk < 0 and clk & 7 == cpuclock.CLOCKFD:
        t.mem.read(buf, X.TIMEX_SIZE)
        raise KernelError(E.EINVAL)         # no dynamic (fd) clocks here
    if clk < 0 or clk in _VDSO or clk in (C.CLOCK_PROCESS_CPUTIME_ID, C.CLOCK_THREAD_CPUTIME_ID, *_ALARMS):
        raise KernelError(E.EOPNOTSUPP)     # a clock that cannot be adjusted
    raise KernelError(E.EINVAL)


@syscall("times")
def sys_times(t, buf, *_):
    if buf:
        me, kids = rusage.own(t.proc), t.proc.cusage
        t.mem.write(buf, struct.pack("<qqqq", *(ns // 10**7 for ns in (me.utime, me.stime, kids.utime, kids.stime))))
    return t.kernel.uptime_ns() // 10**7
