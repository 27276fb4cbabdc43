"""Namespaces: setns(2) (the namespaces are kernel/nsproxy.py's; unshare(2)
is sys_process.py's, with its other flags)."""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel import nsproxy
from umlpy.kernel.cred import ptrace_may_access
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32
from umlpy.vfs import nsfs
from umlpy.vfs.pidfd import PidFile


@syscall("setns", status=PARTIAL, note="nsfs files and pidfds; only UTS, IPC, mount, PID, network, user and time namespaces besides init's")
def sys_setns(t, fd, nstype, *_):
    f = t.files.get(s32(fd))
    nstype = s32(nstype)
    if isinstance(f, nsfs.NsFile):
        if nstype and nstype != f.ns.flag:
            raise KernelError(E.EINVAL)
        targets = [f.ns]
    elif isinstance(f, PidFile):
        # every namespace of the process the flags name (check_setns_flags)
        if not nstype or nstype & ~nsproxy.ALL_NEW:
            raise KernelError(E.EINVAL)
        other = f.proc
        if other.exited:
            raise KernelError(E.ESRCH)
        if not ptrace_may_access(t, other, fscreds=False):
            raise KernelError(E.EPERM)
        targets = [other.pidns if kind == "pid" else other.ns.of(kind)     # its own pid namespace
                   for kind, (flag, _) in nsproxy.KINDS.items() if nstype & flag]
    else:
        raise KernelError(E.EINVAL)
    nsproxy.setns(t.kernel, t, targets)
    return 0
