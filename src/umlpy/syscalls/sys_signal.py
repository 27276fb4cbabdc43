"""Signal syscalls: actions, masks, sigreturn, alternate stacks, waiting."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import after, read_timespec
from umlpy.kernel.signal import discard, pack_siginfo, set_altstack, user_siginfo
from umlpy.kernel.task import SigAction
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, File
from umlpy.syscalls.sys_process import deliver_checked, send_specific
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32

_SIGACTION = struct.Struct("<QQQQ")
_STACK = struct.Struct("<QI4xQ")


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
        handler, flags, restorer, mask = new
        a = t.proc.sighand.actions[sig] = SigAction(handler, flags & C.UAPI_SA_FLAGS, restorer,
                                                    mask & ~S.UNBLOCKABLE)
        if t.kernel.signals._ignored(t.proc, t, sig) or a.handler == C.SIG_IGN:
            discard(t.proc, S.sigbit(sig))
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


@syscall("restart_syscall")
def sys_restart_syscall(t, *_):
    """A wait a signal without handler interrupted goes on (the restart_fn
    its Block left, see kernel/signal.py); EINTR if there is none."""
    fn, t.restart_fn = t.restart_fn, None
    if fn is None:
        raise KernelError(E.EINTR)
    return fn()


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
    new = _STACK.unpack(t.mem.read(ss, _STACK.size)) if ss else None
    old = set_altstack(t, new, t.regs.rsp)
    if oss:
        t.mem.write(oss, _STACK.pack(*old))
    return 0


@syscall("rt_sigtimedwait")
def sys_rt_sigtimedwait(t, uset, uinfo, uts, size, *_):
    _check_size(size)
    (mask,) = struct.unpack("<Q", t.mem.read(uset, 8))
    return do_sigtimedwait(t, mask & ~S.UNBLOCKABLE, uinfo, after(read_timespec(t, uts)) if uts else None)


def do_sigtimedwait(t, mask: int, uinfo: int, deadline: int | None) -> int:
    def timed_out():
        t.sigwait = 0
        return -E.EAGAIN

    def attempt():
        sig, code, fields = t.kernel.signals.take(t, mask)
        if sig:
            t.sigwait = 0
            if uinfo:
                t.mem.write(uinfo, pack_siginfo(sig, code, fields))
            return sig
        if deadline is not None and clock.monotonic_ns() >= deadline:
            return timed_out()
        t.sigwait = mask
        raise Block(deadline=deadline, retry=attempt, on_timeout=timed_out,
                    on_interrupt=timed_out, restart=E.EINTR,     # a stop too: never restarted
                    restart_fn=None if deadline is None else SigWaitOn(t, mask, uinfo, deadline))
    return attempt()


class SigWaitOn:
    """How a checkpoint carries an rt_sigtimedwait on to its end (a signal
    ends it with EINTR; this goes with restart_syscall only after a
    restore, so that the wait keeps its time left)."""
    __slots__ = ("t", "mask", "uinfo", "deadline")

    def __init__(self, t, mask: int, uinfo: int, deadline: int) -> None:
        self.t, self.mask, self.uinfo, self.deadline = t, mask, uinfo, deadline

    def __call__(self) -> int:
        return do_sigtimedwait(self.t, self.mask, self.uinfo, self.deadline)


# -- queued signals with data ----------------------------------------------------

def read_siginfo(t, addr: int, sig: int | None = None) -> tuple[int, int, tuple]:
    """(si_signo, si_code, fields) of a siginfo a process built, as the
    kernel queues it (user_siginfo); rt_sigqueueinfo gives sig, which
    replaces the si_signo found (__copy_siginfo_from_user)."""
    info = t.mem.read(addr, 128)
    return user_siginfo(info if sig is None else struct.pack("<i", sig) + info[4:])


def check_forged(t, code: int, self_targeted: bool) -> None:
    """Only the kernel says SI_USER, SI_TKILL or a positive si_code, unless
    a task signals itself."""
    if (code >= 0 or code == C.SI_TKILL) and not self_targeted:
        raise KernelError(E.EPERM)


@syscall("rt_sigqueueinfo")
def sys_rt_sigqueueinfo(t, pid, sig, uinfo, *_):
    pid, sig = s32(pid), s32(sig)
    _, code, fields = read_siginfo(t, uinfo, sig)
    check_forged(t, code, pid == t.kernel.procs.vnr(t.proc, t.tid))
    # zombies too, as kill; and a tid names its process, as kill's pid does
    proc = t.kernel.procs.find_proc(t.proc, pid) if pid > 0 else None
    if proc is None and pid > 0:
        task = t.kernel.procs.find_task(t.proc, pid)
        proc = task.proc if task is not None else None
    if proc is None:
        raise KernelError(E.ESRCH)
    deliver_checked(t, proc, sig, (code, fields))
    return 0


@syscall("rt_tgsigqueueinfo")
def sys_rt_tgsigqueueinfo(t, tgid, tid, sig, uinfo, *_):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    _, code, fields = read_siginfo(t, uinfo, sig)
    if tid <= 0 or tgid <= 0:
        raise KernelError(E.EINVAL)
    check_forged(t, code, tid == t.kernel.procs.vnr(t.proc, t.tid))
    return send_specific(t, tid, sig, (code, fields), tgid)


# -- signalfd ----------------------------------------------------------------------

def signalfd_siginfo(sig: int, code: int, fields: tuple) -> bytes:
    """struct signalfd_siginfo (128 bytes) from a queued signal's data."""
    pid = uid = status = overrun = tid = errno = 0
    ptr = addr = 0
    if fields and fields[0] == "raw":
        body = fields[1].ljust(16, b"\0")
        errno = fields[2] if len(fields) > 2 else 0
        if code == -2:     # SI_TIMER: tid, overrun, value
            tid, overrun, ptr = struct.unpack_from("<iiQ", body)
        else:
            pid, uid, ptr = struct.unpack_from("<iIQ", body)
    elif len(fields) == 1:
        addr = fields[0]
    elif len(fields) == 3:
        pid, uid, status = fields
    elif len(fields) == 2:
        pid, uid = fields
    data = struct.pack("<IiiIIiIIIIiiQQQQ", sig, errno, code, pid, uid, 0, tid, 0, overrun, 0,
                       status, ptr & 0xFFFFFFFF, ptr, 0, 0, addr)
    return data.ljust(128, b"\0")


class SignalFdFile(File):
    kind = "[signalfd]"

    def __init__(self, proc, mask: int, flags: int) -> None:
        super().__init__(None, anon_inode(), flags)
        self.proc = proc
        self.mask = mask

    def read(self, task, n: int) -> bytes:
        if n < 128:
            raise KernelError(E.EINVAL)
        out = []
        while len(out) < n // 128:
            sig, code, fields = task.kernel.signals.take(task, self.mask)
            if not sig:
                break
            out.append(signalfd_siginfo(sig, code, fields))
        if out:
            return b"".join(out)
        if self.nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(task.proc.signal_wq)

    def poll(self) -> int:
        t = self.proc.threads[0]
        return POLLIN if (t.pending | self.proc.shared_pending) & self.mask else 0

    def poll_queues(self) -> list:
        return [self.proc.signal_wq]


@syscall("signalfd")
def sys_signalfd(t, fd, mask, size, *_):
    return sys_signalfd4(t, fd, mask, size, 0)


@syscall("signalfd4")
def sys_signalfd4(t, fd, mask, size, flags, *_):
    _check_size(size)
    if flags & ~(C.O_CLOEXEC | C.O_NONBLOCK):
        raise KernelError(E.EINVAL)
    (m,) = struct.unpack("<Q", t.mem.read(mask, 8))
    m &= ~S.UNBLOCKABLE
    fd = s32(fd)
    if fd != -1:
        f = t.files.get(fd)
        if not isinstance(f, SignalFdFile):
            raise KernelError(E.EINVAL)
        f.mask = m
        return fd
    f = SignalFdFile(t.proc, m, C.O_RDWR | (flags & C.O_NONBLOCK))
    return t.files.install(f, bool(flags & C.O_CLOEXEC))

