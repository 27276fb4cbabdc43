"""Submission: SQEs taken from the ring, checked, chained and run.

Requests run inline, in the submitting task's io_uring_enter, with that
task's fd table, credentials, root and cwd (what Linux's io-wq workers
inherit from the submitter: CVE-2020-29373, LTP io_uring02, was io-wq
resolving paths outside the submitter's chroot).  IOSQE_ASYNC changes
nothing but when the work is done.  A request that must wait for its file
(an empty pipe, a socket without data) is parked: it watches the wait
queues the syscall would have slept on and is tried again from the event
loop when one fires, so nobody blocks; its CQE comes when it is done.

IOSQE_IO_LINK/HARDLINK chains run in order; a failed member (a soft link:
an error, or a read/write short of its length) completes the rest with
-ECANCELED.  IOSQE_IO_DRAIN holds a chain (and every later one) until all
earlier requests have completed.  Every loop here is bounded by the SQ
size or by the requests already queued: no ring contents make it spin.
"""
from __future__ import annotations

from arch_um.memory import GuestFault
from umlpy.abi import errno as E
from umlpy.abi import io_uring as U
from umlpy.io_uring.ops import OPS, Req, unsupported
from umlpy.io_uring.ring_file import IoUringFile
from umlpy.kernel import parked
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.task import State
from umlpy.syscalls.util import result_or_errno

LINK_FLAGS = U.IOSQE_IO_LINK | U.IOSQE_IO_HARDLINK
# requests (and drained chains) a ring may have waiting, per CQ entry: what
# Linux's allocation of requests (charged to memory) bounds, a bound here
# on the kernel objects a guest can make; a submission that meets it stops
# (EAGAIN if it took none)
PARKED_PER_CQE = 2


def _init(t, ring: IoUringFile, req: Req) -> int:
    """io_init_req: the SQE's flags and fields; 0 or the errno its CQE gets."""
    if req.opcode >= U.IORING_OP_LAST:
        return E.EINVAL
    op = OPS.get(req.opcode)
    if op is None:
        return unsupported(f"opcode {req.opcode}").errno
    if req.flags & ~U.SQE_VALID_FLAGS:
        return E.EINVAL
    if req.flags & U.IOSQE_BUFFER_SELECT:
        return E.EOPNOTSUPP         # no opcode here selects a provided buffer
    if req.ioprio and not op.ioprio:
        return E.EINVAL
    if req.personality:
        return E.EINVAL             # no personality is ever registered
    try:
        op.prep(t, ring, req)
    except KernelError as e:
        return e.errno
    except GuestFault:
        return E.EFAULT
    return 0


def submit_sqes(t, ring: IoUringFile, to_submit: int) -> int:
    """io_submit_sqes: up to to_submit SQEs (never more than the SQ holds);
    how many were consumed.  A request whose checks fail is completed with
    its error and ends the submission (unless IORING_SETUP_SUBMIT_ALL)."""
    rings = ring.rings
    ready = rings.sq_ready()
    if not ready:
        return 0
    left = count = min(to_submit, rings.sq_entries, ready)
    starved = False
    while left:
        if len(ring.waiting) + len(ring.deferred) >= rings.cq_entries * PARKED_PER_CQE:
            starved = True          # as Linux when no request can be allocated
            break
        sqe = rings.next_sqe()
        if sqe is None:
            break
        left -= 1
        req = Req(*sqe)
        req.error = _init(t, ring, req)
        _queue(t, ring, req)
        if req.error and not ring.setup_flags & U.IORING_SETUP_SUBMIT_ALL:
            break
    if ring.link:                   # a chain the last SQE left open runs as it is
        chain, ring.link = ring.link, []
        _start(t, ring, chain)
    rings.commit_sq()
    ring.commit(False)
    if starved and left == count:
        raise KernelError(E.EAGAIN)
    return count - left


def _queue(t, ring: IoUringFile, req: Req) -> None:
    """Add req to the chain being built, or run what it completes (a
    member that failed its checks fails the chain it is in)."""
    ring.link.append(req)
    if req.flags & LINK_FLAGS:
        return
    chain, ring.link = ring.link, []
    _start(t, ring, chain)


def _start(t, ring: IoUringFile, chain: list[Req]) -> None:
    """Run a chain now, or after the drain it (or one before it) waits for."""
    if (any(r.flags & U.IOSQE_IO_DRAIN for r in chain) and len(ring.waiting)) or ring.deferred:
        ring.deferred.append((t, chain))
        return
    run_chain(t, ring, chain)


def run_chain(t, ring: IoUringFile, chain: list[Req]) -> None:
    """Issue the chain's requests in order until one fails (the rest are
    cancelled) or must wait (the rest follow it when it is done)."""
    if any(r.error for r in chain):
        # a member that failed its checks fails the whole chain unissued
        for r in chain:
            ring.post(r.user_data, -(r.error or E.ECANCELED))
        return
    for i, req in enumerate(chain):
        try:
            res = result_or_errno(lambda: OPS[req.opcode].issue(t, ring, req))
        except Block as b:
            Parked(t, ring, req, chain[i + 1:], b)
            return
        if not complete(ring, req, res, chain[i + 1:]):
            return


def complete(ring: IoUringFile, req: Req, res: int, rest: list[Req]) -> bool:
    """Post req's CQE; whether the chain goes on (False: the rest cancelled)."""
    timeout = req.opcode == U.IORING_OP_TIMEOUT
    if timeout:
        ring.cq_timeouts += 1
    if not (req.flags & U.IOSQE_CQE_SKIP_SUCCESS and res >= 0):
        ring.post(req.user_data, res)
    else:
        ring.flush_cancelled()
    failed = res < 0 or (OPS[req.opcode].short_fails and res < req.len)
    if timeout and res == -E.ETIME and req.op_flags & U.IORING_TIMEOUT_ETIME_SUCCESS:
        failed = False
    if failed and rest and not req.flags & U.IOSQE_IO_HARDLINK:
        for r in rest:
            ring.post(r.user_data, -E.ECANCELED)
        return False
    return True


def _undrain(ring: IoUringFile) -> None:
    """Every earlier request is done: run the chains a drain held."""
    while ring.deferred and not len(ring.waiting) and not ring.dead:
        t, chain = ring.deferred.popleft()
        if t.state is State.DEAD:
            continue
        run_chain(t, ring, chain)


class Parked(parked.Parked):
    """A request waiting for its file, and the rest of its chain.  The
    task's death or the ring's release cancels it."""

    def __init__(self, t, ring: IoUringFile, req: Req, rest: list[Req], block: Block) -> None:
        super().__init__(t)
        self.ring = ring
        self.req = req
        self.rest = rest
        ring.waiting.add(self)
        self.arm(block)

    def rearm(self, b: Block) -> None:
        """TIMEOUT_REMOVE's update: the same request, a new wait."""
        self.disarm()
        self.arm(b)

    def counted(self) -> None:
        """A TIMEOUT's count was reached: it completes 0."""
        self.disarm()
        self.finish(lambda: 0)

    def reissue(self) -> int:
        return OPS[self.req.opcode].issue(self.t, self.ring, self.req)

    def finish(self, attempt) -> None:
        if self.ring.dead:
            self.cancel()
            return
        if self.t.state is State.DEAD:
            self.cancel()           # io_uring_cancel_generic at the task's exit
            self.aborted()
            return
        try:
            res = result_or_errno(attempt)
        except Block as b:
            self.arm(b)
            return
        self._forget()
        if complete(self.ring, self.req, res, self.rest) and self.rest:
            run_chain(self.t, self.ring, self.rest)
        _undrain(self.ring)
        self.ring.commit(True)

    def _forget(self) -> None:
        self.ring.waiting.remove(self)

    def cancel(self) -> None:
        """Drop it without a CQE (its ring is gone)."""
        self.disarm()
        self._forget()

    def aborted(self) -> None:
        """Cancelled (ASYNC_CANCEL, POLL_REMOVE, its task's exit): it and
        the rest of its chain complete -ECANCELED."""
        ring = self.ring
        for r in [self.req, *self.rest]:
            ring.post(r.user_data, -E.ECANCELED)
        _undrain(ring)
        ring.commit(True)
