"""pidfds (vfs/pidfd.py): pidfd_open, signals without pid-reuse races; clone's
CLONE_PIDFD and waitid's P_PIDFD are in sys_process."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel import cred, printk
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_process import deliver_checked
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32
from umlpy.vfs import pidfd

PIDFD_NONBLOCK = C.O_NONBLOCK


@syscall("pidfd_open")
def sys_pidfd_open(t, pid, flags, *_):
    if flags & ~PIDFD_NONBLOCK or s32(pid) <= 0:
        raise KernelError(E.EINVAL)
    proc = t.kernel.procs.by_pid.get(s32(pid))      # zombies too, until reaped
    if proc is None:
        if t.kernel.procs.task(s32(pid)) is not None:
            raise KernelError(E.EINVAL)     # a thread, not a thread-group leader
        raise KernelError(E.ESRCH)
    return pidfd.install(t, proc, flags)


@syscall("pidfd_send_signal", status=PARTIAL, note="info must be NULL (the kill(2) siginfo)")
def sys_pidfd_send_signal(t, fd, sig, info, flags, *_):
    if flags:
        raise KernelError(E.EINVAL)
    proc = pidfd.process_of(t, s32(fd))
    if info:
        printk.pr_notice("pidfd_send_signal with a siginfo is not supported")
        raise KernelError(E.EINVAL)
    sig = s32(sig)
    if not 0 <= sig <= S.NSIG:
        raise KernelError(E.EINVAL)
    if proc.exited:
        raise KernelError(E.ESRCH)
    deliver_checked(t, proc, sig)
    return 0


@syscall("pidfd_getfd")
def sys_pidfd_getfd(t, fd, targetfd, flags, *_):
    """A copy of another process's open file (its fd targetfd), with
    FD_CLOEXEC, for a caller that may ptrace it (PTRACE_MODE_ATTACH_REALCREDS)."""
    if flags:
        raise KernelError(E.EINVAL)
    proc = pidfd.process_of(t, s32(fd))
    if proc.exited:
        raise KernelError(E.ESRCH)
    if not cred.ptrace_may_access(t.proc, proc, fscreds=False):
        raise KernelError(E.EPERM)
    f = proc.fdtable.get_raw(s32(targetfd))
    return t.proc.fdtable.install(f, True)
