"""Timers and CPU time in a checkpoint: setitimer's and timer_create's,
each saved as the time it has left on its own clock, with its interval
and what it was created with; a POSIX timer set to an absolute wall-clock
time also as that time, which it keeps; a POSIX timer's pending signal as
the timer it comes from.  The CPU time each process and thread used,
which its CPU clocks go on from after the restore (kernel/rusage.py's
cpu_base), so RLIMIT_CPU's watch (kernel/cpulimit.py) is made again
from the limits and counts the time used before too.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.checkpoint import image
from umlpy.kernel import cpulimit, ioac, rusage, timekeeping
from umlpy.kernel.ioac import IoAc
from umlpy.kernel.errors import KernelError
from umlpy.kernel.timers import monotonic_for
from umlpy.syscalls import sys_timer
from umlpy.syscalls.sys_timer import ITIMER_KEYS as ITIMERS
from umlpy.syscalls.sys_timer import PosixTimer

U64 = 1 << 64


def savable(p) -> bool:
    """Every timer of the process is one this module saves, or
    RLIMIT_CPU's watch, which the restore makes again."""
    return all(key in ITIMERS or key == cpulimit.KEY or isinstance(tm, PosixTimer) for key, tm in p.timers.items())


def save_usage(u: rusage.Usage) -> list[int]:
    """A Usage as the image has it (read back by usage)."""
    return [u.utime, u.stime, u.maxrss]


def save_cpu(p) -> dict:
    """A live process's CPU time (its own, with its threads' that died)
    and its waited-for children's, as getrusage reports them; the I/O
    accounting of its threads that ended and of those children."""
    return {"cpu": save_usage(rusage.own(p)), "cusage": save_usage(p.cusage),
            "io": p.dead_ioac.save(), "cio": p.child_ioac.save()}


def save_task_cpu(t) -> list[int]:
    """A thread's own CPU time (RUSAGE_THREAD)."""
    return save_usage(rusage.of(t, rusage.RUSAGE_THREAD))


def io(e: image.Reader, key: str) -> IoAc:
    """I/O accounting saved by IoAc.save: counts, each below 2^64."""
    return IoAc.load(e.ints(key, 0, U64, len(ioac.FIELDS)))


def usage(e: image.Reader, key: str) -> rusage.Usage:
    """A Usage saved by _usage: user and system ns, peak RSS in KiB."""
    return rusage.Usage(*e.ints(key, 0, 1 << 62, 3))     # (room left for the time still to come)


def restore_cpu(k, t, p: image.Reader) -> None:
    """A process's CPU time before the checkpoint (its threads' are
    theirs: restore.py's _task), its children's, and RLIMIT_CPU's watch
    once its limits are back."""
    proc = t.proc
    proc.cpu_base, proc.cusage = usage(p, "cpu"), usage(p, "cusage")
    proc.dead_ioac, proc.child_ioac = io(p, "io"), io(p, "cio")
    cpulimit.update(k, proc)


def named(tm, proc) -> bool:
    """Whether a queued timer signal's timer is one the image names: a
    POSIX timer of proc, not deleted."""
    return isinstance(tm, PosixTimer) and not tm.deleted and proc.timers.get(tm.id) is tm


def state(tm) -> dict:
    """What an IntervalTimer (an itimer's, a POSIX timer's, a timerfd's)
    is saved as: the time left on its own clock (negative when due, None
    when disarmed), its interval, and whether a periodic one fired and
    waits for its expiry to be taken before it restarts."""
    return {"left_ns": None if tm.deadline is None else tm.deadline - tm.now(), "interval": tm.interval,
            "expired": tm.expired}


def rearm(tm, e: image.Reader, start: bool = True, deadline: int | None = None) -> None:
    """A timer set again from its `state` (deadline: the one to use in
    place of `left_ns` from now); start=False keeps only the deadline
    (SIGEV_NONE), and an expired one waits to be restarted."""
    if e.doc.get("left_ns") is None:
        return
    expired = e.bool("expired")
    if deadline is None:
        deadline = tm.now() + e.int("left_ns", -(1 << 62), 1 << 62)
    tm.arm(deadline, e.int("interval", 0, 1 << 62), start=start and not expired)
    tm.expired = expired


def save_itimers(p) -> list:
    """setitimer's timers (alarm's too) as the time each has left, on its
    own clock (the host's monotonic clock, the process's CPU clock).  An expired periodic
    ITIMER_REAL (its SIGALRM still pending) is restarted when that signal
    is taken, as before the checkpoint."""
    out = []
    for which, key in enumerate(ITIMERS):
        tm = p.timers.get(key)
        if tm is not None and tm.deadline is not None:
            out.append({"which": which, **state(tm)})
    return out


def save_posix_timers(p) -> list:
    """POSIX timers (timer_create) as save_itimers saves interval timers:
    the time left on their clocks, with what timer_create was given."""
    return [{"id": tm.id, "clock": tm.clk, "notify": tm.notify, "signo": tm.signo, "value": tm.value,
             "target": tm.target.tid if tm.target is not None else 0, "overrun_last": tm.overrun_last,
             **state(tm), **({"queued": {"overrun": tm.overrun, "sig_overrun": tm.sig_overrun,
                                         "restarts": bool(tm.interval) and tm.sig_token == tm.requeue}}
                             if tm.queued else {}), **_wall(tm)}
            for tm in p.timers.values() if isinstance(tm, PosixTimer)]


def _wall(tm) -> dict:
    """A timer set to an absolute time on a wall clock (TIMER_ABSTIME):
    that time, which the restore's clock is to reach, however far the
    restore is from the checkpoint."""
    w = tm.follows
    if w is None or tm.deadline is None:
        return {}
    return {"wall": {"clock": w.clk, "at_ns": timekeeping.timekeeper().clock_ns(w.clk) + tm.deadline - tm.now()}}


def _wall_deadline(e: image.Reader) -> int | None:
    """The deadline of a timer saved with its absolute wall-clock time
    (_wall), on the restored machine's clock; None for one saved by its
    time left."""
    if not e.has("wall"):
        return None
    w = e.sub("wall")
    clk = w.int("clock", 0, 16)
    if clk not in (C.CLOCK_REALTIME, C.CLOCK_BOOTTIME, C.CLOCK_TAI):
        raise image.ImageError(f"manifest: {w.where}.clock: not a wall clock")
    return monotonic_for(clk, w.int("at_ns", 0, 1 << 63), True)


def restore_itimers(t, p: image.Reader) -> None:
    """setitimer's timers, each with the time it had left on its clock
    (save_itimers)."""
    for e in p.list("itimers"):
        tm = sys_timer.itimer(t, e.int("which", 0, len(sys_timer.ITIMER_KEYS)))
        if e.doc.get("left_ns") is None:
            raise image.ImageError(f"manifest: {e.where}.left_ns: an interval timer saved unset")
        rearm(tm, e)


def restore_posix_timers(t, p: image.Reader) -> None:
    """POSIX timers (save_posix_timers), checked as timer_create checks
    what it is given (a SIGEV_THREAD_ID one's thread restored before)."""
    proc = t.proc
    top = sys_timer.INT_MAX + 1
    for e in p.list("posix_timers"):
        tid, clk = e.int("id", 0, top), e.int("clock", -top, top)
        signo = e.int("signo", 0, S.NSIG + 1)
        try:
            cpu = sys_timer.timer_clock(t, clk)
            notify, target = sys_timer.timer_event(t, clk, e.int("notify", 0, 8), signo,
                                                   e.int("target", 0, top))
        except KernelError as err:
            raise image.ImageError(f"manifest: {e.where}: timer_create says {E.NAMES.get(err.errno)}") from None
        if tid in proc.timers:
            raise image.ImageError(f"manifest: {e.where}.id: a timer twice")
        tm = proc.timers[tid] = sys_timer.PosixTimer(t, tid, clk, notify, signo, e.int("value", 0, U64),
                                                     target, cpu)
        rearm(tm, e, start=notify != sys_timer.SIGEV_NONE, deadline=_wall_deadline(e))
        tm.overrun_last = e.int("overrun_last", 0, top)
        if e.has("queued"):     # its signal pending: the sigq entries name it (link_queued)
            q = e.sub("queued")
            tm.queued = True
            tm.overrun, tm.sig_overrun = q.int("overrun", -1, top), q.int("sig_overrun", 0, top)
            tm.requeue = 1                  # an expiry waiting for its signal's dequeue
            tm.sig_token = 1 if q.bool("restarts") else 0
    proc.next_timer_id = p.int("next_timer_id", 0, top)
    link_queued(proc)


def link_queued(proc) -> None:
    """The queued signals that name a POSIX timer (["timer", id] in the
    image) made the timer's own again: each timer whose signal is pending
    is named by exactly one, and only such timers are."""
    owners = [proc.sigq] + [x.sigq for x in proc.threads]
    named: list[int] = []
    for sigq in owners:
        for sig, q in sigq.items():
            for i, (code, fields) in enumerate(q):
                if fields[:1] == ("timer",):
                    tm = proc.timers.get(fields[1])
                    if not isinstance(tm, PosixTimer) or not tm.queued or tm.signo != sig:
                        raise image.ImageError(f"process {proc.pid}: a queued signal names timer {fields[1]}, "
                                               "whose signal is not pending")
                    q[i] = (code, ("timer", tm))
                    named.append(tm.id)
    queued = sorted(tm.id for tm in proc.timers.values() if isinstance(tm, PosixTimer) and tm.queued)
    if sorted(named) != queued:
        raise image.ImageError(f"process {proc.pid}: a pending timer signal queued {len(named)} times "
                               f"for {len(queued)} timers")
