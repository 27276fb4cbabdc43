"""The restart blocks a checkpoint carries: how a task that the freeze
found in a wait with a relative timeout goes on after the restore.

Linux's freezer ends such a wait as a signal without handler does, and
the task goes on through restart_syscall with the end time its restart
block kept (nanosleep, clock_nanosleep, poll, a FUTEX_WAIT with a
timeout).  The image keeps that block with the time left instead of the
end time (the restoring host's clocks are not the saving one's), so the
wait ends when it would have, the time the machine spent saved left out,
as a sleep's does.  An epoll_wait (and an epoll_pwait without a mask)
and an rt_sigtimedwait go on the same way, where Linux's would end with
EINTR: here the checkpoint is not to be seen.  select, pselect6 and ppoll
need no block: their timeouts hold the time left once the freeze writes
it back, as Linux's poll_select_finish does when a signal ends them.
"""
from __future__ import annotations

from arch_um import clock
from arch_um.memory import TASK_SIZE
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.checkpoint import image
from umlpy.kernel.task import Task
from umlpy.syscalls.sys_epoll import EP_MAX_EVENTS, EpollWaitOn
from umlpy.syscalls.sys_futex import FutexWaitOn
from umlpy.syscalls.sys_poll import PollOn
from umlpy.syscalls.sys_signal import SigWaitOn
from umlpy.syscalls.sys_time import SleepOn

U32 = 1 << 32               # (the image's bounds are exclusive)
U64 = 1 << 64
LEFT_MAX = 1 << 62          # longer than any timeout a guest can give (KTIME_MAX)
NFDS_MAX = FD_MAX = 1 << 20     # above any RLIMIT_NOFILE's ceiling (nr_open)
# the waits whose timeouts the freeze brings up to date in the guest's memory
WRITES_BACK = frozenset(NR[n] for n in ("select", "pselect6", "ppoll"))


def save(fn: object) -> dict | None:
    """A restart block as the image keeps it; None for one it cannot
    (none, a wait with no timeout or to an absolute time: its syscall is
    made again as called, to the same time)."""
    now = clock.monotonic_ns()
    if isinstance(fn, SleepOn):
        return {"kind": "sleep", "left_ns": max(0, fn.deadline - now), "rem": fn.rem}
    if isinstance(fn, PollOn) and fn.end:
        return {"kind": "poll", "left_ns": max(0, fn.end - now), "fds": fn.addr, "nfds": fn.nfds}
    if isinstance(fn, EpollWaitOn):
        return {"kind": "epoll", "left_ns": max(0, fn.end - now), "epfd": fn.epfd, "events": fn.events,
                "maxevents": fn.maxevents}
    if isinstance(fn, SigWaitOn):
        return {"kind": "sigwait", "left_ns": max(0, fn.deadline - now), "mask": fn.mask, "info": fn.uinfo}
    if isinstance(fn, FutexWaitOn) and fn.relative and isinstance(fn.deadline, int):
        return {"kind": "futex", "left_ns": max(0, fn.deadline - now), "uaddr": fn.addr, "val": fn.val,
                "bitset": fn.bitset, "private": fn.private}
    return None


def take(t: Task, r: image.Reader) -> SleepOn | PollOn | EpollWaitOn | FutexWaitOn | SigWaitOn:
    """The restart block an image's entry describes, ending its time left from now."""
    end = clock.monotonic_ns() + r.int("left_ns", 0, LEFT_MAX)
    kind = r.str("kind")
    if kind == "sleep":
        return SleepOn(t, end, r.int("rem", 0, U64))
    if kind == "poll":
        return PollOn(t, r.int("fds", 0, TASK_SIZE), r.int("nfds", 0, NFDS_MAX), end)
    if kind == "epoll":
        return EpollWaitOn(t, r.int("epfd", 0, FD_MAX), r.int("events", 0, TASK_SIZE),
                           r.int("maxevents", 1, EP_MAX_EVENTS + 1), end)
    if kind == "sigwait":
        return SigWaitOn(t, r.int("mask", 0, U64) & ~S.UNBLOCKABLE, r.int("info", 0, TASK_SIZE), end)
    if kind == "futex":
        return FutexWaitOn(t, r.int("uaddr", 0, TASK_SIZE), r.int("val", 0, U32), end,
                           r.int("bitset", 1, U32), r.bool("private"), True)
    raise image.ImageError(f"manifest: {r.where}: restart block kind {kind!r}")


def write_back(t: Task) -> None:
    """A task blocked in select, pselect6 or ppoll: its timeout now holds
    the time left (its Block's on_interrupt writes it, as the end of the
    call by a signal would), so that the call made again after the
    restore waits only that."""
    b = t.block
    if t.in_syscall in WRITES_BACK and b is not None and b.on_interrupt is not None:
        b.on_interrupt()
