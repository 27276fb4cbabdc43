"""Waiting on several fds: poll, ppoll, select, pselect6.

A waiter parks on the wait queues of every file it watches (each file
says which queues announce a change) and re-checks all of them when one
fires; the deadline is fixed at the first call so re-checks do not extend
it.  Timeouts are Linux's end times (poll_select_set_timeout): any valid
value is accepted, one too far to reach means waiting for good, and
select, pselect6 and ppoll write back the time left however they end.
"""
from __future__ import annotations

import struct

from arch_um import clock
from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import NS
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32, u32
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI

POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
_IN = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR
_OUT = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR
_EX = POLLPRI
TIME64_MAX = (1 << 63) - 1


def _revents(t, fd: int, events: int) -> tuple[int, list]:
    if fd < 0:
        return 0, []
    f = t.files.files.get(fd)
    if f is None:
        return POLLNVAL, []
    return file_revents(f, events), f.poll_queues()


def file_revents(f, events: int) -> int:
    """What poll reports of f among events (POLLERR and POLLHUP always
    count); poll, select and io_uring's POLL_ADD ask this."""
    ev = f.poll()
    if ev & POLLIN:
        ev |= POLLRDNORM
    if ev & POLLOUT:
        ev |= POLLWRNORM
    return ev & (events | POLLERR | POLLHUP)


def ready_or_block(f, events: int, retry=None) -> int:
    """One-shot poll of one file (io_uring's POLL_ADD, AIO's IOCB_CMD_POLL):
    its ready events among those asked, or a wait on its queues."""
    mask = file_revents(f, events)
    if mask:
        return mask
    raise Block(*f.poll_queues(), retry=retry)


def end_time(sec: int, nsec: int) -> int:
    """Linux's poll_select_set_timeout: the monotonic time a timeout of
    (sec, nsec) ends, 0 for a zero timeout (poll once); EINVAL for an
    invalid timespec; an end past 64-bit seconds saturates there."""
    if sec < 0 or not 0 <= nsec < NS:
        raise KernelError(E.EINVAL)
    if not sec and not nsec:
        return 0
    now = clock.monotonic_ns()
    if now // NS + sec > TIME64_MAX:
        return TIME64_MAX * NS
    return now + sec * NS + nsec


def _wait(check, end: int | None, on_timeout, restart_fn=None):
    """Run check(); if nothing is ready, park until a queue fires or the end
    time.  A signal without handler restarts the call as made (select,
    ppoll: their timeouts hold the time left), or with restart_fn (poll)."""
    def attempt():
        n, queues = check()
        if n is not None:
            return n
        if end is not None and clock.monotonic_ns() >= end:
            return on_timeout()
        raise Block(*queues, deadline=end, retry=attempt, on_timeout=on_timeout,
                    restart=E.ERESTART_RESTARTBLOCK if restart_fn else E.ERESTARTNOHAND, restart_fn=restart_fn)
    return attempt()


def do_poll(t, addr: int, nfds: int, end: int | None, restartable: bool = False) -> int:
    """poll's work; restartable: poll(2) itself, which a signal without
    handler restarts to the same end time (do_restart_poll)."""
    nfds = u32(nfds)        # an unsigned int, at most RLIMIT_NOFILE
    if nfds > t.files.limit:
        raise KernelError(E.EINVAL)
    raw = t.mem.read(addr, 8 * nfds) if nfds else b""
    req = [struct.unpack_from("<ihh", raw, 8 * i) for i in range(nfds)]

    def check(final: bool = False):
        out = bytearray(raw)
        ready = 0
        queues: list = []
        for i, (fd, events, _) in enumerate(req):
            rev, qs = _revents(t, fd, events & 0xFFFF)
            queues += qs
            struct.pack_into("<h", out, 8 * i + 6, rev)
            if rev:
                ready += 1
        if ready or final or end == 0:
            if nfds:
                t.mem.write(addr, bytes(out))
            return ready, queues
        return None, queues
    return _wait(check, end, lambda: check(True)[0], PollOn(t, addr, nfds, end) if restartable else None)


class PollOn:
    """restart_syscall's way on with a poll a signal without handler
    interrupted: the same fds to the same end (do_restart_poll's restart
    block), which a checkpoint reads."""
    __slots__ = ("t", "addr", "nfds", "end")

    def __init__(self, t, addr: int, nfds: int, end: int | None) -> None:
        self.t, self.addr, self.nfds, self.end = t, addr, nfds, end

    def __call__(self) -> int:
        return do_poll(self.t, self.addr, self.nfds, self.end, True)


def ms_end_time(timeout: int) -> int | None:
    """The end time of an int of milliseconds (poll, epoll_wait): negative waits for good."""
    ms = s32(timeout)
    return None if ms < 0 else end_time(ms // 1000, ms % 1000 * 1_000_000)


@syscall("poll")
def sys_poll(t, fds, nfds, timeout, *_):
    return do_poll(t, fds, nfds, ms_end_time(timeout), restartable=True)


def timespec_end_time(t, addr: int) -> int | None:
    """The end time of a struct timespec timeout; NULL waits for good."""
    if not addr:
        return None
    return end_time(*structs.unpack_timespec(t.mem.read(addr, 16)))


def _sticky(t) -> bool:
    """personality's STICKY_TIMEOUTS: select and ppoll leave the timeout as
    it was given (and so cannot restart a call a signal ended)."""
    return bool(t.proc.personality & C.STICKY_TIMEOUTS)


def _write_back(t, addr: int, end: int | None, timeval: bool, result: int) -> int:
    """Linux's poll_select_finish: the time left goes back to the guest's
    timeout (not for a zero one); a timeout the guest cannot have written
    to (read-only memory) leaves the result as it is."""
    if not addr or not end or _sticky(t):
        return result
    left = max(0, end - clock.monotonic_ns())
    sec, nsec = divmod(left, NS)
    try:
        t.mem.write(addr, struct.pack("<qq", sec, nsec // 1000 if timeval else nsec))
    except GuestFault:
        pass
    return result


def _timed(t, wait, addr: int, end: int | None, timeval: bool = False) -> int:
    """Run a wait that writes its time left back to addr however it ends."""
    try:
        return _write_back(t, addr, end, timeval, wait())
    except Block as b:
        inner, outer = b.retry, b.on_timeout
        b.retry = lambda: _timed(t, inner, addr, end, timeval)
        b.on_timeout = lambda: _write_back(t, addr, end, timeval, outer())
        b.on_interrupt = lambda: _write_back(t, addr, end, timeval, 0)
        if addr and _sticky(t) and b.restart == E.ERESTARTNOHAND:
            b.restart = E.EINTR
        raise


def _restore_sigmask(t) -> None:
    if t.saved_mask is not None:
        t.blocked, t.saved_mask = t.saved_mask, None


def _masked(t, wait) -> int:
    """Run a wait under the temporary mask, restoring it however it ends
    (errors too) but by a signal, whose handler frame restores it on
    sigreturn (Linux's restore_saved_sigmask_unless(-EINTR))."""
    try:
        result = wait()
    except Block as b:
        inner, outer = b.retry, b.on_timeout
        b.retry = lambda: _masked(t, inner)
        b.on_timeout = lambda: _masked(t, outer)
        raise
    except BaseException:
        _restore_sigmask(t)
        raise
    _restore_sigmask(t)
    return result


def read_sigmask(t, mask_addr: int, size: int) -> int | None:
    """The temporary signal mask of a p-wait (ppoll, pselect6,
    epoll_pwait, epoll_pwait2): the guest's sigset at mask_addr, None
    without one (set_user_sigmask's checks)."""
    if not mask_addr:
        return None
    if size != 8:
        raise KernelError(E.EINVAL)
    (m,) = struct.unpack("<Q", t.mem.read(mask_addr, 8))
    return m & ~S.UNBLOCKABLE


def set_sigmask(t, mask: int) -> None:
    """A p-wait's temporary mask in force, the task's own kept to go back
    to (set_user_sigmask).  One a restore put in force (a wait made again
    after a checkpoint: checkpoint/restarts.py) already keeps it."""
    if t.saved_mask is None:
        t.saved_mask = t.blocked
    t.blocked = mask


def wait_under(t, mask: int | None, wait) -> int:
    """wait() with mask (if any) as the blocked mask meanwhile."""
    if mask is None:
        return wait()
    set_sigmask(t, mask)
    return _masked(t, wait)


def wait_with_sigmask(t, mask_addr: int, size: int, wait) -> int:
    """ppoll, pselect6, io_uring_enter: wait() with the guest's sigset at
    mask_addr (if any) as the blocked mask meanwhile."""
    return wait_under(t, read_sigmask(t, mask_addr, size), wait)


@syscall("ppoll")
def sys_ppoll(t, fds, nfds, tsp, sigmask, size, *_):
    end = timespec_end_time(t, tsp)
    return wait_with_sigmask(t, sigmask, size, lambda: _timed(t, lambda: do_poll(t, fds, nfds, end), tsp, end))


def do_select(t, nfds: int, rp: int, wp: int, ep: int, end: int | None) -> int:
    nfds = s32(nfds)
    if nfds < 0:
        raise KernelError(E.EINVAL)
    nfds = min(nfds, t.files.limit)
    nbytes = ((nfds + 63) // 64) * 8
    below = (1 << nfds) - 1         # bits from nfds on are not looked at
    sets = [int.from_bytes(t.mem.read(p, nbytes), "little") & below if p and nbytes else 0
            for p in (rp, wp, ep)]
    wanted = _set_bits(sets[0] | sets[1] | sets[2], nbytes)

    def check(final: bool = False):
        res = [0, 0, 0]
        ready = 0
        queues: list = []
        for fd in wanted:
            bit = 1 << fd
            want = [s & bit for s in sets]
            f = t.files.files.get(fd)
            if f is None:
                raise KernelError(E.EBADF)
            ev = f.poll()
            queues += f.poll_queues()
            for i, mask in enumerate((_IN, _OUT, _EX)):
                if want[i] and ev & mask:
                    res[i] |= bit
                    ready += 1
        if ready or final or end == 0:
            for p, v in zip((rp, wp, ep), res):
                if p and nbytes:
                    t.mem.write(p, v.to_bytes(nbytes, "little"))
            return ready, queues
        return None, queues
    return _wait(check, end, lambda: check(True)[0])


def _set_bits(bits: int, nbytes: int) -> list[int]:
    """The fds in an fd_set, a word at a time: the cost is the set's
    size and its members, never a Python step per fd below nfds."""
    fds = []
    for w, (word,) in enumerate(struct.iter_unpack("<Q", bits.to_bytes(nbytes, "little"))):
        while word:
            low = word & -word
            fds.append(w * 64 + low.bit_length() - 1)
            word ^= low
    return fds


def _c_divmod(a: int, b: int) -> tuple[int, int]:
    """C's / and % (truncating toward zero)."""
    q = abs(a) // b * (1 if a >= 0 else -1)
    return q, a - q * b


@syscall("select")
def sys_select(t, nfds, rp, wp, ep, tvp, *_):
    end = None
    if tvp:
        # Linux folds whole seconds of tv_usec into tv_sec, then checks
        sec, usec = struct.unpack("<qq", t.mem.read(tvp, 16))
        q, r = _c_divmod(usec, 10**6)
        end = end_time(sec + q, r * 1000)
    return _timed(t, lambda: do_select(t, nfds, rp, wp, ep, end), tvp, end, timeval=True)


@syscall("pselect6")
def sys_pselect6(t, nfds, rp, wp, ep, tsp, sig, *_):
    end = timespec_end_time(t, tsp)
    mask_addr, size = struct.unpack("<QQ", t.mem.read(sig, 16)) if sig else (0, 0)
    return wait_with_sigmask(t, mask_addr, size,
                             lambda: _timed(t, lambda: do_select(t, nfds, rp, wp, ep, end), tsp, end))
