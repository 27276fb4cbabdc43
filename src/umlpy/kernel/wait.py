"""Wait queues: the one choke point between blocked tasks and the scheduler.

A task blocked in a syscall sits on one or more queues (and maybe a timer).
`wake_all` hands every waiter to the scheduler, which re-runs the waiting
syscall; a waiter that still cannot proceed blocks again.  Cancellation
(signals, timeouts, death) removes the task from all its queues at once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from umlpy.kernel.task import Task

_wake_hook = None


def set_wake_hook(hook) -> None:
    global _wake_hook
    _wake_hook = hook


class WaitQueue:
    __slots__ = ("waiters", "name", "watchers", "xwatchers")

    def __init__(self, name: str = "") -> None:
        self.waiters: list[Task] = []
        self.name = name
        self.watchers: list = []    # callbacks run on every wake (epoll entries)
        # exclusive ones (EPOLLEXCLUSIVE): each wake runs them in turn until
        # one says it woke a waiter, as __wake_up_common's nr_exclusive = 1
        self.xwatchers: list = []

    def watch(self, callback, exclusive: bool = False) -> None:
        (self.xwatchers if exclusive else self.watchers).append(callback)

    def unwatch(self, callback) -> None:
        for lst in (self.watchers, self.xwatchers):
            try:
                lst.remove(callback)
                return
            except ValueError:
                pass

    def add(self, task: Task) -> None:
        self.waiters.append(task)

    def remove(self, task: Task) -> None:
        try:
            self.waiters.remove(task)
        except ValueError:
            pass

    def wake_all(self) -> None:
        if self.watchers:
            for cb in list(self.watchers):
                cb()
        if self.xwatchers:
            for cb in list(self.xwatchers):
                if cb():
                    break
        if not self.waiters:
            return
        waiters, self.waiters = self.waiters, []
        for t in waiters:
            _wake_hook(t)

    def __bool__(self) -> bool:
        return bool(self.waiters)
