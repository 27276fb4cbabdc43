"""seccomp(2) and prctl's PR_SET_SECCOMP / PR_GET_SECCOMP: a task limits
the syscalls it (and every task it makes) may make (kernel/seccomp.py
runs the filters).

What Linux's seccomp_set_mode_strict, seccomp_set_mode_filter and
seccomp_get_action_avail check, in their order: the operation's flags,
the program's length (EINVAL), no_new_privs or CAP_SYS_ADMIN for a
filter (EACCES), its instructions (EINVAL), a change of mode (EINVAL),
the total length of a task's filters (ENOMEM), and with
SECCOMP_FILTER_FLAG_TSYNC every
thread of the process on a filter the caller's descends from (else the
first other thread's tid).  The user-notification listener is not
supported: SECCOMP_FILTER_FLAG_NEW_LISTENER is EINVAL, as on a kernel
without it, and SECCOMP_GET_ACTION_AVAIL does not list USER_NOTIF.
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.bpf import classic
from umlpy.kernel import printk
from umlpy.kernel import seccomp as sc
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State
from umlpy.syscalls.table import PARTIAL, syscall

SET_MODE_STRICT, SET_MODE_FILTER, GET_ACTION_AVAIL, GET_NOTIF_SIZES = 0, 1, 2, 3
FLAG_TSYNC, FLAG_LOG, FLAG_SPEC_ALLOW, FLAG_NEW_LISTENER, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV = \
    1, 2, 4, 8, 16, 32
FLAGS_KNOWN = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH \
    | FLAG_WAIT_KILLABLE_RECV
AVAILABLE = frozenset((sc.RET_KILL_PROCESS, sc.RET_KILL_THREAD, sc.RET_TRAP, sc.RET_ERRNO, sc.RET_TRACE,
                       sc.RET_LOG, sc.RET_ALLOW))
NOTIF_SIZES = struct.pack("<HHH", 80, 24, 64)     # seccomp_notif, seccomp_notif_resp, seccomp_data
FPROG = struct.Struct("<H6xQ")                    # struct sock_fprog


@syscall("seccomp", status=PARTIAL, note="strict and filter modes (classic BPF, every action but USER_NOTIF; "
                                          "TRACE finds no tracer: ENOSYS), TSYNC; no listener fd")
def sys_seccomp(t, op, flags, uargs, *_):
    return do_seccomp(t, op & 0xFFFFFFFF, flags & 0xFFFFFFFF, uargs)


def do_seccomp(t, op: int, flags: int, uargs: int) -> int:
    if op == SET_MODE_STRICT:
        if flags or uargs:
            raise KernelError(E.EINVAL)
        _may_assign(t, sc.MODE_STRICT)
        t.seccomp = sc.Seccomp(sc.MODE_STRICT, None)
        return 0
    if op == SET_MODE_FILTER:
        return _set_filter(t, flags, uargs)
    if op == GET_ACTION_AVAIL:
        if flags:
            raise KernelError(E.EINVAL)
        action = struct.unpack("<I", t.mem.read(uargs, 4))[0]
        if action not in AVAILABLE:
            raise KernelError(E.EOPNOTSUPP)
        return 0
    if op == GET_NOTIF_SIZES:
        if flags:
            raise KernelError(E.EINVAL)
        t.mem.write(uargs, NOTIF_SIZES)
        return 0
    raise KernelError(E.EINVAL)


def prctl(t, option: int, a2: int, a3: int) -> int:
    """PR_GET_SECCOMP and PR_SET_SECCOMP."""
    if option == C.PR_GET_SECCOMP:
        cur = t.seccomp
        return sc.MODE_DISABLED if cur is None else cur.mode
    if a2 == sc.MODE_STRICT:
        return do_seccomp(t, SET_MODE_STRICT, 0, 0)
    if a2 == sc.MODE_FILTER:
        return do_seccomp(t, SET_MODE_FILTER, 0, a3)
    raise KernelError(E.EINVAL)


def _set_filter(t, flags: int, uargs: int) -> int:
    if flags & ~FLAGS_KNOWN:
        raise KernelError(E.EINVAL)
    if flags & FLAG_TSYNC and flags & FLAG_NEW_LISTENER and not flags & FLAG_TSYNC_ESRCH:
        raise KernelError(E.EINVAL)
    if flags & FLAG_WAIT_KILLABLE_RECV and not flags & FLAG_NEW_LISTENER:
        raise KernelError(E.EINVAL)
    # seccomp_prepare_user_filter: the program copied and checked first
    count, addr = FPROG.unpack(t.mem.read(uargs, FPROG.size))
    if not 0 < count <= classic.MAXINSNS:
        raise KernelError(E.EINVAL)
    if not t.proc.no_new_privs and not t.proc.creds.cap_effective >> CAP_SYS_ADMIN & 1:
        raise KernelError(E.EACCES)     # (CAP_SYS_ADMIN in its own user namespace, as ns_capable)
    prog = classic.decode(t.mem.read(addr, count * classic.INSN.size))
    if flags & FLAG_NEW_LISTENER:
        printk.pr_info_ratelimited("seccomp: SECCOMP_FILTER_FLAG_NEW_LISTENER not supported (no user notification)")
        raise KernelError(E.EINVAL)
    _may_assign(t, sc.MODE_FILTER)
    cur = t.seccomp
    prev = cur.filter if cur is not None else None
    if len(prog) + (prev.path_len if prev is not None else 0) > sc.MAX_INSNS_PER_PATH:
        raise KernelError(E.ENOMEM)     # seccomp_attach_filter: 4 more for each earlier filter
    state = sc.Seccomp(sc.MODE_FILTER, sc.Filter(prog, prev, bool(flags & FLAG_LOG)))
    if flags & FLAG_TSYNC:      # seccomp_can_sync_threads: each on no filter or one of the caller's
        for x in t.proc.threads:
            other = x.seccomp
            if x is t or x.state is State.DEAD or other is None or other.mode == sc.MODE_FILTER and (
                    other.filter is None or prev is not None and prev.descends_from(other.filter)):
                continue
            if flags & FLAG_TSYNC_ESRCH:
                raise KernelError(E.ESRCH)
            return t.kernel.procs.vnr(t.proc, x.tid)
    t.seccomp = state
    if flags & FLAG_TSYNC:
        for x in t.proc.threads:
            if x.state is not State.DEAD:
                x.seccomp = state
    return 0


def _may_assign(t, mode: int) -> None:
    """seccomp_may_assign_mode: a task's mode never changes once set."""
    cur = t.seccomp
    if cur is not None and cur.mode != mode:
        raise KernelError(E.EINVAL)
