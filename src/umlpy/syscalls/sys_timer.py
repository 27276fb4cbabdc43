"""Timers: alarm, itimers, POSIX timers and timerfds."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_WAKE_ALARM
from umlpy.kernel import timekeeping
from umlpy.kernel.cpuclock import CLOCKFD, CpuClock
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.signal import sigpending_held
from umlpy.kernel.timers import (ALARM_CLOCKS, JIFFY_NS, TIMERFD_CLOCKS, IntervalTimer, after, check_timer_clock,
                                 ktime_add_safe, monotonic_for,
                                 pack_itimerspec, pack_itimerval, unpack_itimerspec, unpack_itimerval)
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, File

ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
SI_TIMER = -2
TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET = 1, 2
NS = 10**9
INT_MAX = 0x7FFFFFFF


# -- ITIMER_REAL and alarm ---------------------------------------------------------

class RealTimer(IntervalTimer):
    """ITIMER_REAL: SIGALRM to the process; a periodic one is restarted
    when a SIGALRM is dequeued from the process's queue (Linux's
    dequeue_signal), so while SIGALRM stays pending it expires no more."""

    def __init__(self, t) -> None:
        super().__init__(t.kernel.sched, self._fire)
        self.k = t.kernel
        self.proc = t.proc

    def _fire(self) -> None:
        self.k.signals.send_proc(self.proc, S.SIGALRM, C.SI_KERNEL)

    def sigalrm_dequeued(self) -> None:
        if self.expired:
            self.forward(clock.monotonic_ns())
            self.restart()


def _real_timer(t) -> RealTimer:
    key = ITIMER_KEYS[ITIMER_REAL]
    tm = t.proc.timers.get(key)
    if tm is None:
        tm = t.proc.timers[key] = RealTimer(t)
    return tm


class CpuTimer(IntervalTimer):
    """ITIMER_VIRTUAL / ITIMER_PROF: expire on the process's user or user
    and system CPU time; a periodic one moves on by one interval at each
    expiry, as check_cpu_itimer."""

    def __init__(self, t, which: int, sig: int) -> None:
        super().__init__(t.kernel.sched, self._fire, CpuClock(t.proc, which))
        self.k = t.kernel
        self.sig = sig
        self.used: dict = {}        # each thread's CPU time at the last expiry

    def _fire(self) -> None:
        self.k.signals.send_proc(self.cpu.owner, self.sig, C.SI_KERNEL, prefer=self._busiest())
        if self.interval:
            self.deadline = ktime_add_safe(self.deadline, self.interval)
            self.restart()

    def _busiest(self):
        """The thread an expiry goes to first: Linux sends it from the tick
        of the thread that is running (it wakes that one), a thread using
        the CPU; here the one that used most since the last expiry.  A
        profiler counts on it (Go's drops a setitimer SIGPROF that reaches
        a thread with a timer of its own)."""
        best, most, now = self.cpu.owner.threads[0], -1, self._thread_times()
        for t, ns in now.items():
            used = ns - self.used.get(t, 0)
            if used > most:
                best, most = t, used
        self.used = now
        return best

    def _thread_times(self) -> dict:
        """Each thread's CPU time now; nothing for a single thread, which
        has no choice to make (no host reads for a profiled single-threaded
        program)."""
        threads = self.cpu.owner.threads
        if len(threads) == 1:
            return {}
        return {t: clock.host_thread_cpu_ns(t.hpid, clock.CPUCLOCK_SCHED) for t in threads}

    def set(self, value: int, interval: int) -> None:
        self.used = self._thread_times()    # the first expiry weighs the use since now, not each thread's life
        self.arm(ktime_add_safe(self.now(), value) if value else None, interval if value else 0)

    def remaining(self) -> int:
        """An expiry not yet seen reads as one tick (get_cpu_itimer)."""
        if self.deadline is None:
            return 0
        left = self.deadline - self.now()
        return left if left > 0 else JIFFY_NS


ITIMER_KEYS = ("real", "virtual", "prof")      # their keys in proc.timers, by ITIMER_* number
_ITIMERS = {ITIMER_VIRTUAL: (ITIMER_KEYS[ITIMER_VIRTUAL], clock.CPUCLOCK_VIRT, S.SIGVTALRM),
            ITIMER_PROF: (ITIMER_KEYS[ITIMER_PROF], clock.CPUCLOCK_PROF, S.SIGPROF)}


def itimer(t, which: int):
    """The process's timer for setitimer's `which`, made on first use."""
    if which == ITIMER_REAL:
        return _real_timer(t)
    if which not in _ITIMERS:
        raise KernelError(E.EINVAL)
    name, cpu_which, sig = _ITIMERS[which]
    tm = t.proc.timers.get(name)
    if tm is None:
        tm = t.proc.timers[name] = CpuTimer(t, cpu_which, sig)
    return tm


@syscall("setitimer")
def sys_setitimer(t, which, new, old, *_):
    # a NULL new value disarms, as Linux still allows
    interval, value = unpack_itimerval(t.mem.read(new, 32)) if new else (0, 0)
    which = s32(which)
    tm = itimer(t, which)
    if old:
        t.mem.write(old, pack_itimerval(tm.interval, tm.remaining()))
    if which == ITIMER_REAL:
        tm.arm(after(value) if value else None, interval if value else 0)
    else:
        tm.set(value, interval)
    return 0
@syscall("getitimer")
def sys_getitimer(t, which, cur, *_):
    tm = itimer(t, s32(which))
    t.mem.write(cur, pack_itimerval(tm.interval, tm.remaining()))
    return 0


@syscall("alarm")
def sys_alarm(t, seconds, *_):
    """Any unsigned int of seconds; returns what was left, rounded as
    Linux's alarm_setitimer (never 0 for a pending alarm, half a second
    up), as the unsigned int it is."""
    seconds &= 0xFFFFFFFF
    tm = _real_timer(t)
    left = tm.remaining()
    tm.arm(after(seconds * NS) if seconds else None, 0)
    secs, rest = divmod(left, NS)
    if (not secs and rest) or rest >= NS // 2:
        secs += 1
    return secs & 0xFFFFFFFF


# -- POSIX timers ------------------------------------------------------------------

class PosixTimer(IntervalTimer):
    """A POSIX timer as Linux's k_itimer: its one preallocated signal is
    queued at most once; an expiry while it is still queued only counts
    (si_overrun); a periodic timer is restarted when that signal is
    dequeued (posixtimer_rearm), the intervals missed meanwhile being the
    overrun count it carries and timer_getoverrun reports."""

    def __init__(self, t, tid: int, clk: int, notify: int, signo: int, value: int, target,
                 cpu: CpuClock | None) -> None:
        super().__init__(t.kernel.sched, self._fire, cpu)
        self.k = t.kernel
        self.proc = t.proc
        self.id = tid
        self.clk = clk
        self.notify = notify
        self.signo = signo
        self.value = value
        self.target = target     # a task for SIGEV_THREAD_ID
        self.requeue = 0         # it_requeue_pending: odd while an expiry waits for its signal's dequeue
        self.overrun = -1        # it_overrun: intervals since the last restart, beyond the first
        self.overrun_last = 0    # it_overrun_last: what timer_getoverrun reports
        self.sig_overrun = 0     # the queued signal's own si_overrun
        self.sig_token = 0       # and the setting it is from (si_sys_private)
        self.queued = False      # our signal is pending
        self.deleted = False

    def set(self, deadline: int | None, interval: int) -> None:
        """timer_settime (common_timer_set): a signal still queued stays,
        but no longer restarts the timer when it is dequeued."""
        self.requeue = (self.requeue + 2) & ~1
        self.overrun_last = 0
        self.arm(deadline, interval, start=self.notify != SIGEV_NONE)

    def _fire(self) -> None:
        # the setting the signal is from, even when it is already queued
        # (posix_timer_event sets si_sys_private before send_sigqueue)
        self.sig_token = 0
        if self.interval:
            self.requeue += 1
            self.sig_token = self.requeue
        if self.queued:
            self.sig_overrun += 1
            return
        info = ("timer", self)
        if self.target is None:
            sent = self.k.signals.send_proc(self.proc, self.signo, SI_TIMER, info)
        else:
            sent = self.k.signals.send_task(self.target, self.signo, SI_TIMER, info)
        if sent:
            self.queued = True
            self.sig_overrun = 0
        elif self.interval:
            # ignored, so no dequeue will restart it: restart it now, but at
            # least a tick later, so a tiny interval cannot flood the kernel
            now = self.now()
            self.overrun += self.forward(now + (JIFFY_NS if self.interval < JIFFY_NS else 0))
            self.restart()
            self.requeue += 1

    def dequeued(self) -> tuple:
        """Our signal leaves the queue: restart a periodic timer if the
        signal is from its current setting; the siginfo as delivered."""
        self.queued = False
        overrun = self.sig_overrun
        if self.interval and self.sig_token == self.requeue and not self.deleted:
            self.overrun += self.forward(self.now())
            self.restart()
            self.overrun_last, self.overrun = self.overrun, -1
            self.requeue += 1
            overrun += self.overrun_last
        return ("raw", struct.pack("<iiQ", self.id, min(overrun, INT_MAX), self.value))

    def flushed(self) -> None:
        """Our queued signal was discarded (now ignored, or a SIGCONT)."""
        self.queued = False

    def gettime(self) -> tuple[int, int]:
        """(interval, value) as common_timer_get: an expired periodic timer
        is moved past now first; an expired one still due reads as 1 ns,
        except a SIGEV_NONE one, which reads 0."""
        none = self.notify == SIGEV_NONE
        if self.deadline is None or (not self.interval and not self.running and not none):
            return self.interval, 0
        now = self.now()
        if self.interval and (self.requeue & 1 or none):
            self.overrun += self.forward(now)
        left = self.deadline - now
        if left <= 0:
            return self.interval, 0 if none else 1
        return self.interval, left

    def getoverrun(self) -> int:
        """As the int Linux reports, capped at INT_MAX (timer_overrun_to_int):
        a fine interval that expired long ago overruns billions of times."""
        return min(self.overrun_last, INT_MAX)

    def delete(self) -> None:
        """timer_delete, exec: a signal still queued is delivered, but
        restarts nothing."""
        self.deleted = True
        self.cancel()


def _posix(t, tid: int) -> PosixTimer:
    tm = t.proc.timers.get(s32(tid))
    if not isinstance(tm, PosixTimer):
        raise KernelError(E.EINVAL)
    return tm


def delete_posix_timers(proc) -> None:
    """exec: POSIX timers go (Linux's exit_itimers); itimers and alarm stay."""
    for tid in [tid for tid, tm in proc.timers.items() if isinstance(tm, PosixTimer)]:
        proc.timers.pop(tid).delete()
        proc.charge_sigpending(-1)


@syscall("timer_create")
def sys_timer_create(t, clk, sevp, idp, *_):
    """SIGEV_THREAD signals as SIGEV_SIGNAL, as Linux: the C library runs the thread."""
    clk = s32(clk)
    cpu = timer_clock(t, clk)
    proc = t.proc
    if sigpending_held(proc) >= proc.rlimit(C.RLIMIT_SIGPENDING)[0]:
        raise KernelError(E.EAGAIN)     # each timer holds a queued signal: the user's RLIMIT_SIGPENDING
    tid = proc.next_timer_id
    while tid in proc.timers:           # ids go round (posix_timer_add), skipping live ones
        tid = (tid + 1) & INT_MAX
    proc.next_timer_id = (tid + 1) & INT_MAX
    if sevp:
        value, signo, notify, target_tid = struct.unpack("<Qiii", t.mem.read(sevp, 20))
    else:
        value, signo, notify, target_tid = tid, S.SIGALRM, SIGEV_SIGNAL, 0
    notify, target = timer_event(t, clk, notify, signo, target_tid)
    t.mem.write(idp, struct.pack("<i", tid))
    proc.timers[tid] = PosixTimer(t, tid, clk, notify, signo, value, target, cpu)
    proc.charge_sigpending(1)
    return 0


def timer_clock(t, clk: int) -> CpuClock | None:
    """timer_create's clock: its CPU clock, None for a clock on the
    monotonic base; EINVAL or EOPNOTSUPP for one that has no timers."""
    if clk < 0 and clk & 7 == CLOCKFD:
        raise KernelError(E.EOPNOTSUPP)     # a dynamic (fd) clock has no timers
    if clk < 0 or clk in (C.CLOCK_PROCESS_CPUTIME_ID, C.CLOCK_THREAD_CPUTIME_ID):
        return CpuClock.of(t, clk)
    check_timer_clock(clk)
    return None


def timer_event(t, clk: int, notify: int, signo: int, target_tid: int):
    """good_sigevent: (notify, the task a SIGEV_THREAD_ID signals)."""
    target = None
    if notify == SIGEV_THREAD_ID:
        target = t.kernel.procs.find_task(t.proc, target_tid)
        if target is None or target.proc is not t.proc:
            raise KernelError(E.EINVAL)
    elif notify == SIGEV_THREAD:
        notify = SIGEV_SIGNAL           # good_sigevent: the kernel only signals
    elif notify not in (SIGEV_SIGNAL, SIGEV_NONE):
        raise KernelError(E.EINVAL)
    if notify != SIGEV_NONE and not 1 <= signo <= S.NSIG:
        raise KernelError(E.EINVAL)
    if clk in ALARM_CLOCKS:
        raise KernelError(E.EOPNOTSUPP)     # alarm_timer_create: there is no RTC to wake the machine
    return notify, target


@syscall("timer_settime")
def sys_timer_settime(t, tid, flags, new, old, *_):
    if not new:
        raise KernelError(E.EINVAL)
    interval, value = unpack_itimerspec(t.mem.read(new, 32))
    tm = _posix(t, tid)
    if old:
        t.mem.write(old, pack_itimerspec(*tm.gettime()))
    absolute = bool(flags & C.TIMER_ABSTIME)
    if value and tm.cpu is not None:
        tm.set(value if absolute else ktime_add_safe(tm.now(), value), interval)
    elif value:
        tm.set(monotonic_for(tm.clk, value, absolute, t.proc.ns.time), interval)
    else:
        tm.set(None, 0)     # disarmed: the interval goes too (common_timer_set)
    return 0


@syscall("timer_gettime")
def sys_timer_gettime(t, tid, cur, *_):
    t.mem.write(cur, pack_itimerspec(*_posix(t, tid).gettime()))
    return 0


@syscall("timer_getoverrun")
def sys_timer_getoverrun(t, tid, *_):
    return _posix(t, tid).getoverrun()


@syscall("timer_delete")
def sys_timer_delete(t, tid, *_):
    tm = _posix(t, tid)
    tm.delete()
    del t.proc.timers[tm.id]
    t.proc.charge_sigpending(-1)
    return 0


# -- timerfd -----------------------------------------------------------------------

class TimerFdFile(File):
    """A timerfd: expiries count as ticks; a periodic timer is restarted by
    the read (or timerfd_gettime) that takes them, adding the intervals
    missed meanwhile, as Linux's timerfd_read.  One armed with
    TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET on a wall clock is
    cancelled by the next step of the guest's clock: its read fails once
    with ECANCELED (timerfd_clock_was_set)."""

    kind = "[timerfd]"

    def __init__(self, sched, clk: int, flags: int) -> None:
        super().__init__(None, anon_inode(), flags)
        self.clk = clk
        self.ticks = 0
        self.wq = WaitQueue("timerfd")
        self.timer = IntervalTimer(sched, self._fire)
        self.cancel_steps: int | None = None   # might_cancel: the clock's steps when armed
        self.canceled = False

    def _fire(self) -> None:
        self.ticks += 1
        self.wq.wake_all()

    def setup_cancel(self, might_cancel: bool) -> None:
        """timerfd_setup_cancel: watch for clock steps, or stop."""
        tk = timekeeping.timekeeper()
        if self.cancel_steps is not None:
            tk.clock_set.unwatch(self._clock_set)
        self.cancel_steps = tk.steps if might_cancel else None
        self.canceled = False
        if might_cancel:
            tk.clock_set.watch(self._clock_set)

    def _clock_set(self) -> None:
        steps = timekeeping.timekeeper().steps
        if self.cancel_steps is not None and steps != self.cancel_steps:
            self.cancel_steps = steps
            self.canceled = True
            self.ticks += 1
            self.wq.wake_all()

    def _restart(self) -> None:
        tm = self.timer
        if tm.expired:
            self.ticks += tm.forward(clock.monotonic_ns()) - 1
            tm.restart()

    def read(self, task, n: int) -> bytes:
        if n < 8:
            raise KernelError(E.EINVAL)
        if not self.ticks:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        if self.canceled:
            self.canceled = False
            self.ticks = 0
            self.timer.expired = False
            raise KernelError(E.ECANCELED)
        self._restart()
        ticks, self.ticks = self.ticks, 0
        return struct.pack("<Q", ticks)

    def poll(self) -> int:
        return POLLIN if self.ticks else 0

    def poll_queues(self) -> list:
        return [self.wq]

    def gettime(self) -> tuple[int, int]:
        """(interval, value): an expired one-shot timer reads as 0, as
        timerfd_get_remaining; an expired periodic one is restarted first."""
        self._restart()
        d = self.timer.deadline
        return self.timer.interval, 0 if d is None else max(0, d - clock.monotonic_ns())

    def release(self) -> None:
        self.timer.cancel()
        self.setup_cancel(False)


def _timerfd(t, fd: int) -> TimerFdFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, TimerFdFile):
        raise KernelError(E.EINVAL)
    return f


@syscall("timerfd_create")
def sys_timerfd_create(t, clk, flags, *_):
    clk = s32(clk)
    if clk not in TIMERFD_CLOCKS or flags & ~(C.O_CLOEXEC | C.O_NONBLOCK):
        raise KernelError(E.EINVAL)
    if clk in ALARM_CLOCKS and not capable(t.proc.creds, CAP_WAKE_ALARM):
        raise KernelError(E.EPERM)
    f = TimerFdFile(t.kernel.sched, clk, C.O_RDWR | (flags & C.O_NONBLOCK))
    return t.files.install(f, bool(flags & C.O_CLOEXEC))


@syscall("timerfd_settime")
def sys_timerfd_settime(t, fd, flags, new, old, *_):
    interval, value = unpack_itimerspec(t.mem.read(new, 32))
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise KernelError(E.EINVAL)
    f = _timerfd(t, fd)
    if old:
        t.mem.write(old, pack_itimerspec(*f.gettime()))
    f.ticks = 0
    absolute = bool(flags & TFD_TIMER_ABSTIME)
    f.setup_cancel(absolute and bool(flags & TFD_TIMER_CANCEL_ON_SET) and f.clk in (C.CLOCK_REALTIME, C.CLOCK_REALTIME_ALARM))
    f.timer.arm(monotonic_for(f.clk, value, absolute, t.proc.ns.time) if value else None, interval)
    return 0


@syscall("timerfd_gettime")
def sys_timerfd_gettime(t, fd, cur, *_):
    t.mem.write(cur, pack_itimerspec(*_timerfd(t, fd).gettime()))
    return 0
