"""Waiting on several fds: poll, ppoll, select, pselect6.

A waiter parks on the wait queues of every file it watches (each file
says which queues announce a change) and re-checks all of them when one
fires; the deadline is fixed at the first call so re-checks do not extend
it.
"""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.kernel.errors import Block, KernelError
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32, u32
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI

POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
_IN = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR
_OUT = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR
_EX = POLLPRI


def _revents(t, fd: int, events: int) -> tuple[int, list]:
    if fd < 0:
        return 0, []
    f = t.proc.fdtable.files.get(fd)
    if f is None:
        return POLLNVAL, []
    ev = f.poll()
    if ev & POLLIN:
        ev |= POLLRDNORM
    if ev & POLLOUT:
        ev |= POLLWRNORM
    return ev & (events | POLLERR | POLLHUP), f.poll_queues()


def _wait(check, deadline: int | None, on_timeout):
    """Run check(); if nothing is ready, park until a queue fires or deadline."""
    def attempt():
        n, queues = check()
        if n is not None:
            return n
        if deadline is not None and clock.monotonic_ns() >= deadline:
            return on_timeout()
        raise Block(*queues, deadline=deadline, retry=attempt, on_timeout=on_timeout,
                    restart=E.ERESTARTNOHAND)
    return attempt()


def _deadline(timeout_ns: int | None) -> int | None:
    return None if timeout_ns is None else clock.monotonic_ns() + timeout_ns


def do_poll(t, addr: int, nfds: int, timeout_ns: int | None) -> int:
    nfds = u32(nfds)        # an unsigned int, at most RLIMIT_NOFILE
    if nfds > t.proc.fdtable.limit:
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
        if ready or final or timeout_ns == 0:
            if nfds:
                t.mem.write(addr, bytes(out))
            return ready, queues
        return None, queues
    return _wait(check, _deadline(timeout_ns), lambda: check(True)[0])


@syscall("poll")
def sys_poll(t, fds, nfds, timeout, *_):
    ms = s32(timeout)
    return do_poll(t, fds, nfds, None if ms < 0 else ms * 1_000_000)


def timespec_timeout(t, addr: int) -> int | None:
    if not addr:
        return None
    s, ns = structs.unpack_timespec(t.mem.read(addr, 16))
    if s < 0 or not 0 <= ns < 10**9:
        raise KernelError(E.EINVAL)
    return s * 10**9 + ns


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


def wait_with_sigmask(t, mask_addr: int, size: int, wait) -> int:
    """ppoll, pselect6, epoll_pwait: wait() with the guest's sigset at
    mask_addr (if any) as the blocked mask meanwhile."""
    if not mask_addr:
        return wait()
    if size != 8:
        raise KernelError(E.EINVAL)
    (m,) = struct.unpack("<Q", t.mem.read(mask_addr, 8))
    t.saved_mask = t.blocked
    t.blocked = m & ~S.UNBLOCKABLE
    return _masked(t, wait)


@syscall("ppoll")
def sys_ppoll(t, fds, nfds, tsp, sigmask, size, *_):
    timeout = timespec_timeout(t, tsp)
    return wait_with_sigmask(t, sigmask, size, lambda: do_poll(t, fds, nfds, timeout))


def do_select(t, nfds: int, rp: int, wp: int, ep: int, timeout_ns: int | None) -> int:
    nfds = s32(nfds)
    if nfds < 0:
        raise KernelError(E.EINVAL)
    nfds = min(nfds, t.proc.fdtable.limit)
    nbytes = ((nfds + 63) // 64) * 8
    sets = [int.from_bytes(t.mem.read(p, nbytes), "little") if p and nbytes else 0
            for p in (rp, wp, ep)]

    def check(final: bool = False):
        res = [0, 0, 0]
        ready = 0
        queues: list = []
        for fd in range(nfds):
            bit = 1 << fd
            want = [s & bit for s in sets]
            if not any(want):
                continue
            f = t.proc.fdtable.files.get(fd)
            if f is None:
                raise KernelError(E.EBADF)
            ev = f.poll()
            queues += f.poll_queues()
            for i, mask in enumerate((_IN, _OUT, _EX)):
                if want[i] and ev & mask:
                    res[i] |= bit
                    ready += 1
        if ready or final or timeout_ns == 0:
            for p, v in zip((rp, wp, ep), res):
                if p and nbytes:
                    t.mem.write(p, v.to_bytes(nbytes, "little"))
            return ready, queues
        return None, queues
    return _wait(check, _deadline(timeout_ns), lambda: check(True)[0])


@syscall("select")
def sys_select(t, nfds, rp, wp, ep, tvp, *_):
    timeout = None
    if tvp:
        s, us = struct.unpack("<qq", t.mem.read(tvp, 16))
        if s < 0 or not 0 <= us < 10**6:
            raise KernelError(E.EINVAL)
        timeout = s * 10**9 + us * 1000
    return do_select(t, nfds, rp, wp, ep, timeout)


@syscall("pselect6")
def sys_pselect6(t, nfds, rp, wp, ep, tsp, sig, *_):
    timeout = timespec_timeout(t, tsp)
    mask_addr, size = struct.unpack("<QQ", t.mem.read(sig, 16)) if sig else (0, 0)
    return wait_with_sigmask(t, mask_addr, size, lambda: do_select(t, nfds, rp, wp, ep, timeout))
