"""pidfds (vfs/pidfd.py): pidfd_open, signals without pid-reuse races; clone's
CLONE_PIDFD and waitid's P_PIDFD are in sys_process."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import cred
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_process import deliver_checked
from umlpy.syscalls.sys_signal import check_forged, read_siginfo
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32
from umlpy.vfs import pidfd

PIDFD_NONBLOCK = C.O_NONBLOCK


@syscall("pidfd_open")
def sys_pidfd_open(t, pid, flags, *_):
    if flags & ~PIDFD_NONBLOCK or s32(pid) <= 0:
        raise KernelError(E.EINVAL)
    proc = t.kernel.procs.find_proc(t.proc, s32(pid))      # zombies too, until reaped
    if proc is None:
        if t.kernel.procs.find_task(t.proc, s32(pid)) is not None:
            raise KernelError(E.EINVAL)     # a thread, not a thread-group leader
        raise KernelError(E.ESRCH)
    return pidfd.install(t, proc, flags)


@syscall("pidfd_send_signal")
def sys_pidfd_send_signal(t, fd, sig, info, flags, *_):
    """Linux 6.1's: no flags yet (6.9's PIDFD_SIGNAL_* scopes came later);
    a siginfo of the caller's must name the signal sent, and only a
    process signalling itself may forge the kernel's si_codes.  A zombie
    takes the signal (and drops it) until it is reaped, as with kill."""
    if flags:
        raise KernelError(E.EINVAL)
    proc = pidfd.process_of(t, s32(fd), tgid_dirs=True)
    sig = s32(sig)
    kinfo = None
    if info:
        signo, code, fields = read_siginfo(t, info)
        if signo != sig:
            raise KernelError(E.EINVAL)
        check_forged(t, code, t is proc.leader)
        kinfo = (code, fields)
    if t.kernel.procs.by_pid.get(proc.pid) is not proc:
        raise KernelError(E.ESRCH)      # reaped
    deliver_checked(t, proc, sig, kinfo)
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
    if not cred.ptrace_may_access(t, proc, fscreds=False):
        raise KernelError(E.EPERM)
    f = proc.fdtable.get_raw(s32(targetfd))
    return t.files.install(f, True)
