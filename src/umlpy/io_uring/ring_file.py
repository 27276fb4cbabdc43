"""The io_uring file: what io_uring_setup returns (anon_inode:[io_uring]).

It holds the ring memory (rings.py), the registered buffers, the requests
still waiting for their file (submit.py parks them), and the wait queue
io_uring_enter's GETEVENTS and poll/epoll sleep on.  mmap of the file at
IORING_OFF_SQ_RING or IORING_OFF_CQ_RING shows the rings (the same pages
at both, IORING_FEAT_SINGLE_MMAP), at IORING_OFF_SQES the SQE array.
"""
from __future__ import annotations

from collections import deque

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import io_uring as U
from umlpy.io_uring.rings import Rings
from umlpy.io_uring.waiting import Waiting
from umlpy.kernel.errors import KernelError
from umlpy.kernel.sharedpages import PagesAt
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, File


class IoUringFile(File):
    kind = "[io_uring]"

    def __init__(self, rings: Rings, setup_flags: int) -> None:
        super().__init__(None, anon_inode(), C.O_RDWR)
        self.rings = rings
        self.setup_flags = setup_flags
        self.cq_wait = WaitQueue("io_uring")
        self.bufs: list[tuple[int, int]] | None = None     # registered (start, end)
        self.waiting = Waiting()            # parked requests (submit.Parked)
        self.deferred: deque = deque()      # chains waiting for a drain
        self.link: list = []                # the chain being assembled by a submission
        self.cancelled: list = []           # cancelled requests whose CQEs follow the next one
        self.cq_posted = 0                  # CQEs ever posted
        self.cq_timeouts = 0                # TIMEOUT completions among them (not counted by TIMEOUTs)
        self.posted = False                 # CQEs posted since the last commit
        self.eventfd = None                 # IORING_REGISTER_EVENTFD's file (a reference held)
        self.eventfd_async = False
        self.dead = False

    # -- completions ---------------------------------------------------------
    def post(self, user_data: int, res: int) -> None:
        self.rings.post(user_data, res)
        self.cq_posted += 1
        self.posted = True
        self.flush_cancelled()
        self._flush_timeouts()
        self.cq_wait.wake_all()

    def commit(self, parked: bool) -> None:
        """The end of a batch of completions (a submission's, a parked
        request's): a registered eventfd hears of it once, as Linux's
        io_eventfd_flush_signal; an EVENTFD_ASYNC one only of parked ones,
        unless the guest set IORING_CQ_EVENTFD_DISABLED."""
        if not self.posted:
            return
        self.posted = False
        if self.eventfd is None or (self.eventfd_async and not parked):
            return
        if not self.rings.rings.u32(U.RING_CQ_FLAGS) & U.IORING_CQ_EVENTFD_DISABLED:
            self.eventfd.signal(1)

    def cq_sequence(self) -> int:
        """CQEs posted so far, timeouts' own not counted (what a TIMEOUT's
        count is measured in; never wraps)."""
        return self.cq_posted - self.cq_timeouts

    def _flush_timeouts(self) -> None:
        """io_flush_timeouts: TIMEOUTs whose count the CQ has reached
        complete (0), after the CQE that made it."""
        for parked in self.waiting.reached(self.cq_sequence()):
            parked.counted()

    def flush_cancelled(self) -> None:
        """Post the CQEs of the requests cancel() took."""
        pending, self.cancelled = self.cancelled, []
        for parked in pending:
            parked.aborted()

    def cancel(self, found: list) -> int:
        """Cancel these parked requests (Waiting's lookups found them); how
        many.  They complete -ECANCELED right after the CQE posted next
        (the cancelling request's own), as Linux's task work posts them
        after it."""
        for parked in found:
            parked.cancel()
        self.cancelled += found
        return len(found)

    # -- mmap, poll, close ---------------------------------------------------
    def mmap_pages(self, off: int, size: int) -> PagesAt:
        """io_uring_validate_mmap_request: one of the three offsets, no
        bigger than the allocation behind it."""
        if off in (U.IORING_OFF_SQ_RING, U.IORING_OFF_CQ_RING):
            pages = self.rings.rings
        elif off == U.IORING_OFF_SQES:
            pages = self.rings.sqes
        else:
            raise KernelError(E.EINVAL)
        if size > pages.size:
            raise KernelError(E.EINVAL)
        return pages.at(off)

    def poll(self) -> int:
        mask = 0
        if not self.rings.sq_full():
            mask |= POLLOUT | POLLWRNORM
        if self.rings.cq_ready() or self.rings.overflow:
            mask |= POLLIN | POLLRDNORM
        return mask

    def poll_queues(self) -> list:
        return [self.cq_wait]

    def release(self) -> None:
        """The last reference is gone: requests still parked are dropped
        (io_ring_exit_work cancels them; nobody can see their CQEs)."""
        self.dead = True
        for parked in self.waiting.all():
            parked.cancel()
        self.deferred.clear()
        self.set_eventfd(None, False)

    def set_eventfd(self, f, only_async: bool) -> None:
        """Register f (a reference held), or let the registered one go."""
        if self.eventfd is not None:
            self.eventfd.put()
        self.eventfd = f.get() if f is not None else None
        self.eventfd_async = only_async
