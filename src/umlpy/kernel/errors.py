"""Errors inside the kernel: errno as exceptions, -errno only at the boundary."""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E


class KernelError(Exception):
    """errno, and a message for the log.  Raised on every failing syscall,
    so the text is made only when asked for (str)."""
    __slots__ = ("errno", "msg")

    def __init__(self, errno: int, msg: str = "") -> None:
        self.errno = errno
        self.msg = msg

    def __str__(self) -> str:
        return self.msg or E.NAMES.get(self.errno, str(self.errno))


class Block(Exception):
    """Raised by a syscall handler that must wait.

    The task parks on `queues` until one is woken (or `deadline`, a monotonic
    ns time, passes); then `retry` runs (by default: the handler again with the
    same arguments, Linux-restart style) and its result is the syscall's.
    `restart` says what a signal handler interrupting the wait does, as
    Linux's ERESTARTSYS (restart if SA_RESTART) or ERESTARTNOHAND (EINTR);
    0 for a page fault's wait (no syscall: the handler runs, the access
    faults again);
    `interrupted_result` is returned instead when part of the work is done
    (a partial write); `on_interrupt` undoes what the wait holds.
    With ERESTART_RESTARTBLOCK, `restart_fn` is how restart_syscall goes on
    when no handler runs (Linux's restart_block: the same end time, say),
    EINTR if there is none.
    """

    # the defaults live in the class, and a Block sets only what differs:
    # every wait raises one, most with nothing but a queue
    deadline: int | None = None
    retry: Callable[[], int | None] | None = None
    on_timeout: Callable[[], int | None] | None = None
    restart: int = E.ERESTARTSYS
    interrupted_result: int | None = None
    on_interrupt: Callable[[], None] | None = None
    restart_fn: Callable[[], int | None] | None = None
    clock_watch: Callable[[], None] | None = None     # the scheduler's, for a WallDeadline

    def __init__(self, *queues, **options) -> None:
        self.queues = queues
        for name, value in options.items():     # what differs from the defaults above
            if name not in _OPTIONS:
                raise TypeError(f"Block got an unexpected option {name!r}")
            setattr(self, name, value)


_OPTIONS = frozenset(("deadline", "retry", "on_timeout", "restart", "interrupted_result",
                      "on_interrupt", "restart_fn"))


class NoReturn(Exception):
    """The task is gone (exited or killed): nothing to resume."""
