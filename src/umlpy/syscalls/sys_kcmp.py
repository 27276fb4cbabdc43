"""kcmp(2): whether two tasks share a kernel object (CRIU's question).

The answer orders the two objects as Linux's kcmp_ptr does, by their
addresses obfuscated with a per-boot random cookie per type (0 the same,
1 less, 2 greater), so that a caller learns sameness and a consistent
order, never an address.  I/O contexts are not modelled: every task's is
none, as a Linux task's that never asked for one, so KCMP_IO says 0.
"""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.kernel import cred
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_epoll import EpollFile
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32

KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM, KCMP_EPOLL_TFD = range(8)
_M64 = (1 << 64) - 1
# kptr_obfuscate's cookies: an xor and an odd multiplier per type, made once
_COOKIES = [(int.from_bytes(clock.random_bytes(8), "little"),
             int.from_bytes(clock.random_bytes(8), "little") | 1) for _ in range(KCMP_EPOLL_TFD + 1)]


def _order(a: object, b: object, kind: int) -> int:
    """kcmp_ptr: 0 for the same object, else 1 or 2 by obfuscated identity."""
    xor, mul = _COOKIES[kind]
    ka, kb = (((0 if o is None else id(o)) ^ xor) * mul & _M64 for o in (a, b))
    return int(ka < kb) | int(ka > kb) << 1


def _file(task, fd: int):
    """The open file at fd of task's table (get_file_raw_ptr), None if none."""
    if not 0 <= fd < 1 << 31:
        return None
    try:
        return task.files.get_raw(fd)
    except KernelError:
        return None


def _epoll_target(t, task2, slot_addr: int):
    """The file registered as (tfd, toff) in task2's epoll at efd, from the
    caller's struct kcmp_epoll_slot {efd, tfd, toff}."""
    efd, tfd, toff = struct.unpack("<III", t.mem.read(slot_addr, 12))
    ep = _file(task2, efd)
    if ep is None:
        raise KernelError(E.EBADF)
    if not isinstance(ep, EpollFile):
        raise KernelError(E.EINVAL)
    same_fd = [e.file for e in ep.entries.values() if e.fd == tfd]
    if toff >= len(same_fd):
        raise KernelError(E.ENOENT)
    return same_fd[toff]


@syscall("kcmp", status=PARTIAL, note="files, address spaces, fd tables, fs contexts, signal handlers, "
         "semaphore undo lists, epoll targets; no I/O contexts (KCMP_IO: always the same)")
def sys_kcmp(t, pid1, pid2, kind, idx1, idx2, *_):
    procs = t.kernel.procs
    t1, t2 = procs.find_task(t.proc, s32(pid1)), procs.find_task(t.proc, s32(pid2))
    if t1 is None or t2 is None:
        raise KernelError(E.ESRCH)
    if not cred.ptrace_may_access(t, t1.proc, fscreds=False, target_task=t1) or \
            not cred.ptrace_may_access(t, t2.proc, fscreds=False, target_task=t2):
        raise KernelError(E.EPERM)
    kind = s32(kind)
    if kind == KCMP_FILE:
        f1, f2 = _file(t1, idx1), _file(t2, idx2)
        if f1 is None or f2 is None:
            raise KernelError(E.EBADF)
        return _order(f1, f2, kind)
    if kind == KCMP_EPOLL_TFD:
        f1 = _file(t1, idx1)
        if f1 is None:
            raise KernelError(E.EBADF)
        return _order(f1, _epoll_target(t, t2, idx2), kind)
    shared = {KCMP_VM: lambda x: x.proc.mm, KCMP_FILES: lambda x: x.files, KCMP_FS: lambda x: x.fs,
              KCMP_SIGHAND: lambda x: x.proc.sighand, KCMP_IO: lambda x: None,
              KCMP_SYSVSEM: lambda x: getattr(x.proc, "sem_undo", None)}.get(kind)
    if shared is None:
        raise KernelError(E.EINVAL)
    return _order(shared(t1), shared(t2), kind)
