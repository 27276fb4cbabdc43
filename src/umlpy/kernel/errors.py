"""Errors inside the kernel: errno as exceptions, -errno only at the boundary."""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E


class KernelError(Exception):
    __slots__ = ("errno",)

    def __init__(self, errno: int, msg: str = "") -> None:
        super().__init__(msg or E.NAMES.get(errno, str(errno)))
        self.errno = errno


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

    def __init__(self, *queues, deadline: int | None = None,
                 retry: Callable[[], int | None] | None = None,
                 on_timeout: Callable[[], int | None] | None = None,
                 restart: int = E.ERESTARTSYS,
                 interrupted_result: int | None = None,
                 on_interrupt: Callable[[], None] | None = None,
                 restart_fn: Callable[[], int | None] | None = None) -> None:
        super().__init__()
        self.queues = queues
        self.deadline = deadline
        self.retry = retry
        self.on_timeout = on_timeout
        self.restart = restart
        self.interrupted_result = interrupted_result
        self.on_interrupt = on_interrupt
        self.restart_fn = restart_fn
        self.clock_watch: Callable[[], None] | None = None     # the scheduler's, for a WallDeadline


class NoReturn(Exception):
    """The task is gone (exited or killed): nothing to resume."""
