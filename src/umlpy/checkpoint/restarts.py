"""The restart blocks a checkpoint carries: how a task that the freeze
found in a wait with a relative timeout goes on after the restore.

Linux's freezer ends such a wait as a signal without handler does, and
the task goes on through restart_syscall with the end time its restart
block kept (nanosleep, clock_nanosleep, poll, a FUTEX_WAIT with a
timeout).  The image keeps that block with the time left instead of the
end time (the restoring host's clocks are not the saving one's), so the
wait ends when it would have, the time the machine spent saved left out,
as a sleep's does.  The epoll waits (epoll_wait, epoll_pwait and
epoll_pwait2, with or without a signal mask), an rt_sigtimedwait and a
semtimedop go on the same way, where Linux's would end with EINTR: here
the checkpoint is not to be seen.  An epoll wait's temporary signal mask
is put in force again with the task's, its own mask kept to go back to
as when it was saved, so that a signal it blocks stays pending until the
wait ends.  select, pselect6 and ppoll need no block: their timeouts
hold the time left once the freeze writes it back, as Linux's
poll_select_finish does when a signal ends them.
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
from umlpy.syscalls.sys_ipc import SemWaitOn
from umlpy.syscalls.sys_poll import PollOn, set_sigmask
from umlpy.syscalls.sys_signal import SigWaitOn
from umlpy.syscalls.sys_time import SleepOn

U32 = 1 << 32               # (the image's bounds are exclusive)
U64 = 1 << 64
LEFT_MAX = 1 << 62          # over 146 years: longer waits are saved as this long
NFDS_MAX = FD_MAX = 1 << 20     # above any RLIMIT_NOFILE's ceiling (nr_open)
IPC_ID_MAX = 1 << 31        # a SysV IPC id, an int
# the waits whose timeouts the freeze brings up to date in the guest's memory
WRITES_BACK = frozenset(NR[n] for n in ("select", "pselect6", "ppoll"))


def save(fn: object) -> dict | None:
    """A restart block as the image keeps it; None for one it cannot
    (none, a wait with no timeout or to an absolute time: its syscall is
    made again as called, to the same time)."""
    now = clock.monotonic_ns()

    def left(end: int) -> int:
        # (a timeout too far to reach, up to 64-bit seconds, waits for good all the same)
        return min(max(0, end - now), LEFT_MAX - 1)
    if isinstance(fn, SleepOn):
        return {"kind": "sleep", "left_ns": left(fn.deadline), "rem": fn.rem}
    if isinstance(fn, PollOn) and fn.end:
        return {"kind": "poll", "left_ns": left(fn.end), "fds": fn.addr, "nfds": fn.nfds}
    if isinstance(fn, EpollWaitOn):
        block = {"kind": "epoll", "left_ns": left(fn.end), "epfd": fn.epfd, "events": fn.events,
                 "maxevents": fn.maxevents}
        if fn.mask is not None:
            block.update(kind="epoll_masked", mask=fn.mask)
        return block
    if isinstance(fn, SigWaitOn):
        return {"kind": "sigwait", "left_ns": left(fn.deadline), "mask": fn.mask, "info": fn.uinfo}
    if isinstance(fn, SemWaitOn):
        return {"kind": "sem", "left_ns": left(fn.deadline), "semid": fn.ident, "sops": fn.sops,
                "nsops": fn.nsops}
    if isinstance(fn, FutexWaitOn) and fn.relative and isinstance(fn.deadline, int):
        return {"kind": "futex", "left_ns": left(fn.deadline), "uaddr": fn.addr, "val": fn.val,
                "bitset": fn.bitset, "private": fn.private}
    return None


def take(t: Task, r: image.Reader) -> SleepOn | PollOn | EpollWaitOn | FutexWaitOn | SigWaitOn | SemWaitOn:
    """The restart block an image's entry describes, ending its time left
    from now.  An epoll wait's temporary signal mask goes in force now,
    the task's own (restored before) kept to go back to, as when the task
    was saved in the wait: a signal the wait's mask blocks, pending, is not
    delivered before the wait made again ends."""
    end = clock.monotonic_ns() + r.int("left_ns", 0, LEFT_MAX)
    kind = r.str("kind")
    if kind == "sleep":
        return SleepOn(t, end, r.int("rem", 0, U64))
    if kind == "poll":
        return PollOn(t, r.int("fds", 0, TASK_SIZE), r.int("nfds", 0, NFDS_MAX), end)
    if kind in ("epoll", "epoll_masked"):
        fn = EpollWaitOn(t, r.int("epfd", 0, FD_MAX), r.int("events", 0, TASK_SIZE),
                         r.int("maxevents", 1, EP_MAX_EVENTS + 1), end)
        if kind == "epoll_masked":
            fn.mask = r.int("mask", 0, U64) & ~S.UNBLOCKABLE
            set_sigmask(t, fn.mask)
        return fn
    if kind == "sigwait":       # (its info pointer is written only at the end: EFAULT then, as Linux's)
        return SigWaitOn(t, r.int("mask", 0, U64) & ~S.UNBLOCKABLE, r.int("info", 0, U64), end)
    if kind == "sem":
        return SemWaitOn(t, r.int("semid", 0, IPC_ID_MAX), r.int("sops", 0, TASK_SIZE),
                         r.int("nsops", 1, U32), end)
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
