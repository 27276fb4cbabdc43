"""Timers: alarm, itimers, POSIX timers and timerfds."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel import cpulimit
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.signal import first_code
from umlpy.kernel.timers import (IntervalTimer, after, check_clock, monotonic_for, pack_itimerspec,
                                 pack_itimerval, unpack_itimerspec, unpack_itimerval)
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.table import PARTIAL, syscall
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

def _real_timer(t) -> IntervalTimer:
    proc = t.proc
    tm = proc.timers.get("real")
    if tm is None:
        k = t.kernel
        tm = proc.timers["real"] = IntervalTimer(
            k.sched, lambda overruns: k.signals.send_proc(proc, S.SIGALRM, C.SI_KERNEL))
    return tm


class CpuTimer:
    """ITIMER_VIRTUAL / ITIMER_PROF: expire on the process's CPU time, which
    is the host's for its tasks; sampled every tick while armed."""

    SAMPLE_NS = 10_000_000

    def __init__(self, t, sig: int) -> None:
        self.k = t.kernel
        self.proc = t.proc
        self.sig = sig
        self.interval = 0
        self.left = 0          # CPU ns still to run before expiry
        self.last = 0
        self._timer = None

    def _cpu(self) -> int:
        return sum(clock.host_task_cpu_ns(x.hpid) for x in self.proc.threads)

    def arm(self, value: int, interval: int) -> None:
        self.cancel()
        self.interval = interval
        self.left = value
        if value:
            self.last = self._cpu()
            self._schedule()

    def _schedule(self) -> None:
        self._timer = self.k.sched.add_timer(clock.monotonic_ns() + self.SAMPLE_NS, self._sample)

    def _sample(self) -> None:
        if self.proc.exited:
            return
        now = self._cpu()
        self.left -= now - self.last
        self.last = now
        if self.left <= 0:
            self.k.signals.send_proc(self.proc, self.sig, C.SI_KERNEL)
            if not self.interval:
                self.left = 0
                self._timer = None
                return
            self.left += self.interval
        self._schedule()

    def remaining(self) -> int:
        if not self.left:
            return 0
        return max(1, self.left - (self._cpu() - self.last))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.left = 0


_ITIMERS = {ITIMER_VIRTUAL: ("virtual", S.SIGVTALRM), ITIMER_PROF: ("prof", S.SIGPROF)}


def _itimer(t, which: int):
    if which == ITIMER_REAL:
        return _real_timer(t)
    if which not in _ITIMERS:
        raise KernelError(E.EINVAL)
    name, sig = _ITIMERS[which]
    tm = t.proc.timers.get(name)
    if tm is None:
        tm = t.proc.timers[name] = CpuTimer(t, sig)
    return tm


@syscall("setitimer", status=PARTIAL, note="VIRTUAL and PROF both count the host CPU time of the process, sampled at 100 Hz")
def sys_setitimer(t, which, new, old, *_):
    # a NULL new value disarms, as Linux still allows
    interval, value = unpack_itimerval(t.mem.read(new, 32)) if new else (0, 0)
    which = s32(which)
    tm = _itimer(t, which)
    if old:
        t.mem.write(old, pack_itimerval(tm.interval, tm.remaining()))
    if which == ITIMER_REAL:
        tm.arm(after(value) if value else None, interval if value else 0)
    else:
        tm.arm(value, interval)
    return 0


@syscall("getitimer")
def sys_getitimer(t, which, cur, *_):
    tm = _itimer(t, s32(which))
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
    def __init__(self, t, tid: int, clk: int, notify: int, signo: int, value: int, target) -> None:
        super().__init__(t.kernel.sched, self._fire)
        self.k = t.kernel
        self.proc = t.proc
        self.id = tid
        self.clk = clk
        self.notify = notify
        self.signo = signo
        self.value = value
        self.target = target     # a task for SIGEV_THREAD_ID
        self.overrun = 0         # expiries the queued signal stands for, beyond its own
        self.last_overrun = 0    # the same for the last signal delivered (timer_getoverrun)
        self.queued = False      # a signal of ours may still be pending

    def _owner(self):
        return self.proc if self.target is None else self.target

    def _delivered(self) -> None:
        """Once our signal has left the pending queue, its overrun count is
        the one timer_getoverrun reports, as Linux's it_overrun_last set
        when the signal is dequeued."""
        if self.queued and first_code(self._owner(), self.signo) != SI_TIMER:
            self.queued = False
            self.last_overrun = self.overrun

    def _fire(self, overruns: int) -> None:
        if self.notify == SIGEV_NONE:
            return
        self._delivered()
        if self.queued:
            self.overrun += 1 + overruns     # still queued: count, as Linux
            return
        self.overrun = overruns
        self.queued = True
        info = ("raw", struct.pack("<iiQ", self.id, min(overruns, INT_MAX), self.value))
        if self.target is None:
            self.k.signals.send_proc(self.proc, self.signo, SI_TIMER, info)
        else:
            self.k.signals.send_task(self.target, self.signo, SI_TIMER, info)

    def getoverrun(self) -> int:
        """The overrun count as the int Linux reports, capped at INT_MAX
        (timer_overrun_to_int): a fine interval that expired long ago
        overruns billions of times."""
        self._delivered()
        return min(self.last_overrun, INT_MAX)

    def reset_overrun(self) -> None:
        self.overrun = self.last_overrun = 0
        self.queued = False


def _posix(t, tid: int) -> PosixTimer:
    tm = t.proc.timers.get(s32(tid))
    if not isinstance(tm, PosixTimer):
        raise KernelError(E.EINVAL)
    return tm


def delete_posix_timers(proc) -> None:
    """exec: POSIX timers go (Linux's exit_itimers); itimers and alarm stay."""
    for tid in [tid for tid, tm in proc.timers.items() if isinstance(tm, PosixTimer)]:
        proc.timers.pop(tid).cancel()


@syscall("timer_create", status=PARTIAL, note="SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID; no SIGEV_THREAD")
def sys_timer_create(t, clk, sevp, idp, *_):
    clk = s32(clk)
    check_clock(clk)
    proc = t.proc
    itimers = sum(key in proc.timers for key in ("real", "virtual", "prof", cpulimit.KEY))
    if len(proc.timers) - itimers >= proc.rlimit(C.RLIMIT_SIGPENDING)[0]:
        raise KernelError(E.EAGAIN)     # each timer holds a queued signal: RLIMIT_SIGPENDING
    tid = proc.next_timer_id
    while tid in proc.timers:           # ids go round (posix_timer_add), skipping live ones
        tid = (tid + 1) & INT_MAX
    proc.next_timer_id = (tid + 1) & INT_MAX
    if sevp:
        value, signo, notify, target_tid = struct.unpack("<Qiii", t.mem.read(sevp, 20))
    else:
        value, signo, notify, target_tid = tid, S.SIGALRM, SIGEV_SIGNAL, 0
    target = None
    if notify == SIGEV_THREAD_ID:
        target = t.kernel.procs.task(target_tid)
        if target is None or target.proc is not proc:
            raise KernelError(E.EINVAL)
    elif notify not in (SIGEV_SIGNAL, SIGEV_NONE):
        raise KernelError(E.EINVAL)
    if notify != SIGEV_NONE and not 1 <= signo <= S.NSIG:
        raise KernelError(E.EINVAL)
    t.mem.write(idp, struct.pack("<i", tid))
    proc.timers[tid] = PosixTimer(t, tid, clk, notify, signo, value, target)
    return 0


@syscall("timer_settime")
def sys_timer_settime(t, tid, flags, new, old, *_):
    if not new:
        raise KernelError(E.EINVAL)
    interval, value = unpack_itimerspec(t.mem.read(new, 32))
    tm = _posix(t, tid)
    if old:
        t.mem.write(old, pack_itimerspec(tm.interval, tm.remaining()))
    if value:
        tm.arm(monotonic_for(tm.clk, value, bool(flags & C.TIMER_ABSTIME)), interval)
    else:
        tm.cancel()         # disarmed: the interval goes too (common_timer_set)
    tm.reset_overrun()
    return 0


@syscall("timer_gettime")
def sys_timer_gettime(t, tid, cur, *_):
    tm = _posix(t, tid)
    t.mem.write(cur, pack_itimerspec(tm.interval, tm.remaining()))
    return 0


@syscall("timer_getoverrun")
def sys_timer_getoverrun(t, tid, *_):
    return _posix(t, tid).getoverrun()


@syscall("timer_delete")
def sys_timer_delete(t, tid, *_):
    tm = _posix(t, tid)
    tm.cancel()
    del t.proc.timers[tm.id]
    return 0


# -- timerfd -----------------------------------------------------------------------

class TimerFdFile(File):
    kind = "[timerfd]"

    def __init__(self, sched, clk: int, flags: int) -> None:
        super().__init__(None, anon_inode(), flags)
        self.clk = clk
        self.ticks = 0
        self.wq = WaitQueue("timerfd")
        self.timer = IntervalTimer(sched, self._fire)

    def _fire(self, overruns: int) -> None:
        self.ticks += 1 + overruns
        self.wq.wake_all()

    def read(self, task, n: int) -> bytes:
        if n < 8:
            raise KernelError(E.EINVAL)
        if not self.ticks:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        ticks, self.ticks = self.ticks, 0
        return struct.pack("<Q", ticks)

    def poll(self) -> int:
        return POLLIN if self.ticks else 0

    def poll_queues(self) -> list:
        return [self.wq]

    def remaining(self) -> int:
        """An expired one-shot timer reads as 0, as timerfd_get_remaining."""
        d = self.timer.deadline
        return 0 if d is None else max(0, d - clock.monotonic_ns())

    def release(self) -> None:
        self.timer.cancel()


def _timerfd(t, fd: int) -> TimerFdFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, TimerFdFile):
        raise KernelError(E.EINVAL)
    return f


@syscall("timerfd_create")
def sys_timerfd_create(t, clk, flags, *_):
    clk = s32(clk)
    check_clock(clk)
    if flags & ~(C.O_CLOEXEC | C.O_NONBLOCK):
        raise KernelError(E.EINVAL)
    f = TimerFdFile(t.kernel.sched, clk, C.O_RDWR | (flags & C.O_NONBLOCK))
    return t.files.install(f, bool(flags & C.O_CLOEXEC))


@syscall("timerfd_settime")
def sys_timerfd_settime(t, fd, flags, new, old, *_):
    interval, value = unpack_itimerspec(t.mem.read(new, 32))
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise KernelError(E.EINVAL)
    f = _timerfd(t, fd)
    if old:
        t.mem.write(old, pack_itimerspec(f.timer.interval, f.remaining()))
    f.ticks = 0
    f.timer.arm(monotonic_for(f.clk, value, bool(flags & TFD_TIMER_ABSTIME)) if value else None, interval)
    return 0


@syscall("timerfd_gettime")
def sys_timerfd_gettime(t, fd, cur, *_):
    f = _timerfd(t, fd)
    t.mem.write(cur, pack_itimerspec(f.timer.interval, f.remaining()))
    return 0
