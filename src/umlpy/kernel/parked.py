"""Work parked on wait queues: an asynchronous request (io_uring's, Linux
AIO's) whose attempt would have slept waits here instead, and nobody
blocks.  It watches the queues its attempt blocked on (and the attempt's
deadline); a wake tries it again from the event loop (not inside the
waker, which may be in the middle of its own work), on behalf of the task
that submitted it.  Subclasses say what an attempt is and what its result
or its timeout completes (`finish`).
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E
from umlpy.kernel.errors import Block


class _Hub:
    """Every parked request waiting on one wait queue, behind one watcher
    of it: many requests on one pipe cost the queue one entry, and each
    request comes and goes in O(1) (a WaitQueue's watchers are a list)."""

    def __init__(self, q) -> None:
        self.q = q
        self.parked: dict = {}
        q.watch(self.woken)

    def woken(self) -> None:
        parked, self.parked = self.parked, {}
        self.q.unwatch(self.woken)
        del _hubs[self.q]
        for p in parked:
            p.woken()


_hubs: dict = {}        # WaitQueue -> its _Hub, while it has parked requests


def _watch(q, p: "Parked") -> None:
    hub = _hubs.get(q)
    if hub is None:
        hub = _hubs[q] = _Hub(q)
    hub.parked[p] = None


def _unwatch(q, p: "Parked") -> None:
    hub = _hubs.get(q)
    if hub is not None:
        hub.parked.pop(p, None)
        if not hub.parked:
            q.unwatch(hub.woken)
            del _hubs[q]


class Parked:
    """One request waiting on the queues of the Block its attempt raised."""

    def __init__(self, t) -> None:
        self.t = t
        self.timer = None
        self.queues: tuple = ()
        self.block: Block | None = None

    def arm(self, b: Block) -> None:
        self.block = b
        self.queues = tuple(dict.fromkeys(b.queues))
        for q in self.queues:
            _watch(q, self)
        if b.deadline is not None:
            self.timer = self.t.kernel.sched.add_timer(b.deadline, self._timed_out)

    def disarm(self) -> None:
        for q in self.queues:
            _unwatch(q, self)
        self.queues = ()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def woken(self) -> None:
        if not self.queues:
            return                  # already woken: one retry is on its way
        self.disarm()
        self.timer = self.t.kernel.sched.add_timer(0, self._retry)

    def _timed_out(self) -> None:
        self.timer = None
        self.disarm()
        on_timeout = self.block.on_timeout
        self.finish(on_timeout if on_timeout is not None else self.timed_out)

    def _retry(self) -> None:
        self.timer = None
        retry = self.block.retry
        self.finish(retry if retry is not None else self.reissue)

    def timed_out(self) -> int:
        """A deadline passed that had no on_timeout of its own."""
        return -E.EAGAIN

    def reissue(self) -> int:
        """The attempt again, when its Block named no retry."""
        raise NotImplementedError

    def finish(self, attempt: Callable[[], int]) -> None:
        """Try attempt: arm again on its Block, or complete with its result."""
        raise NotImplementedError
