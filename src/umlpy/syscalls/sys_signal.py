"""Signal syscalls: actions, masks, sigreturn, alternate stacks, waiting."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import structs
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.errors import Block, KernelError
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32

_SIGACTION = struct.Struct("<QQQQ")
_STACK = struct.Struct("<Qi4xQ")
MINSIGSTKSZ = 2048


def _check_size(size: int) -> None:
    if size != 8:
        raise KernelError(E.EINVAL)


@syscall("rt_sigaction")
def sys_rt_sigaction(t, sig, act, oact, size, *_):
    _check_size(size)
    sig = s32(sig)
    if not 1 <= sig <= S.NSIG:
        raise KernelError(E.EINVAL)
    a = t.proc.sighand.actions[sig]
    new = None
    if act:
        new = _SIGACTION.unpack(t.mem.read(act, _SIGACTION.size))
        if sig in (S.SIGKILL, S.SIGSTOP):
            raise KernelError(E.EINVAL)
    if oact:
        t.mem.write(oact, _SIGACTION.pack(a.handler, a.flags, a.restorer, a.mask))
    if new is not None:
        a.handler, a.flags, a.restorer, mask = new
        a.mask = mask & ~S.UNBLOCKABLE
        if t.kernel.signals._ignored(t.proc, t, sig) or a.handler == C.SIG_IGN:
            bit = S.sigbit(sig)
            t.proc.shared_pending &= ~bit
            for th in t.proc.threads:
                th.pending &= ~bit
    return 0


@syscall("rt_sigprocmask")
def sys_rt_sigprocmask(t, how, nset, oset, size, *_):
    _check_size(size)
    old = t.blocked
    if nset:
        (m,) = struct.unpack("<Q", t.mem.read(nset, 8))
        if how == C.SIG_BLOCK:
            new = old | m
        elif how == C.SIG_UNBLOCK:
            new = old & ~m
        elif how == C.SIG_SETMASK:
            new = m
        else:
            raise KernelError(E.EINVAL)
        t.blocked = new & ~S.UNBLOCKABLE
    if oset:
        t.mem.write(oset, struct.pack("<Q", old))
    return 0


@syscall("rt_sigreturn")
def sys_rt_sigreturn(t, *_):
    t.kernel.signals.sigreturn(t)
    return None


@syscall("rt_sigpending")
def sys_rt_sigpending(t, addr, size, *_):
    if size > 8:
        raise KernelError(E.EINVAL)
    pend = (t.pending | t.proc.shared_pending) & t.blocked
    t.mem.write(addr, struct.pack("<Q", pend)[:size])
    return 0


@syscall("rt_sigsuspend")
def sys_rt_sigsuspend(t, mask, size, *_):
    _check_size(size)
    (m,) = struct.unpack("<Q", t.mem.read(mask, 8))
    t.saved_mask = t.blocked
    t.blocked = m & ~S.UNBLOCKABLE

    def wait():
        raise Block(retry=wait, restart=E.ERESTARTNOHAND)
    return wait()


@syscall("pause")
def sys_pause(t, *_):
    def wait():
        raise Block(retry=wait, restart=E.ERESTARTNOHAND)
    return wait()


@syscall("sigaltstack")
def sys_sigaltstack(t, ss, oss, *_):
    sp, flags, size = t.altstack
    on = bool(size) and sp < t.regs.rsp <= sp + size
    if oss:
        t.mem.write(oss, _STACK.pack(sp, (C.SS_ONSTACK if on else 0) | (flags & C.SS_DISABLE), size))
    if ss:
        nsp, nflags, nsize = _STACK.unpack(t.mem.read(ss, _STACK.size))
        if on:
            raise KernelError(E.EPERM)
        if nflags & ~(C.SS_DISABLE | (1 << 31)):
            raise KernelError(E.EINVAL)
        if nflags & C.SS_DISABLE:
            t.altstack = (0, C.SS_DISABLE, 0)
        else:
            if nsize < MINSIGSTKSZ:
                raise KernelError(E.ENOMEM)
            t.altstack = (nsp, 0, nsize)
    return 0


@syscall("rt_sigtimedwait")
def sys_rt_sigtimedwait(t, uset, uinfo, uts, size, *_):
    _check_size(size)
    (mask,) = struct.unpack("<Q", t.mem.read(uset, 8))
    mask &= ~S.UNBLOCKABLE
    deadline = None
    if uts:
        s, ns = structs.unpack_timespec(t.mem.read(uts, 16))
        if s < 0 or not 0 <= ns < 10**9:
            raise KernelError(E.EINVAL)
        deadline = clock.monotonic_ns() + s * 10**9 + ns

    def timed_out():
        t.sigwait = 0
        return -E.EAGAIN

    def attempt():
        sig, info = t.kernel.signals.take(t, mask)
        if sig:
            t.sigwait = 0
            if uinfo:
                t.mem.write(uinfo, info)
            return sig
        if deadline is not None and clock.monotonic_ns() >= deadline:
            return timed_out()
        t.sigwait = mask
        raise Block(deadline=deadline, retry=attempt, on_timeout=timed_out,
                    on_interrupt=timed_out, restart=E.ERESTARTNOHAND)
    return attempt()
