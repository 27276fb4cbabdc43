"""A guest task's seccomp state and its verdict on each syscall it makes
(Linux's kernel/seccomp.c; the syscalls that set it are in
syscalls/sys_seccomp.py).

Strict mode allows read, write, exit and rt_sigreturn and kills the
thread for anything else.  Filter mode runs every classic BPF filter the
task has (bpf/classic.py), newest first, on the syscall's seccomp_data
and takes the most restrictive verdict.  The state is per task and
immutable: a new filter makes a new state, which fork and clone share
with the child as Linux's refcounted filters are shared.

The trap paths bring every syscall here before its handler runs
(Scheduler._enter), so the filter sees what Linux's would (the number,
AUDIT_ARCH_X86_64, the instruction pointer after the `syscall`, the six
arguments); the vDSO's calls never trap, as on Linux.  SECCOMP_RET_TRACE
and SECCOMP_RET_USER_NOTIF find no tracer or listener here (ptrace's
seccomp events and the listener fd are not supported): the syscall fails
with ENOSYS, as Linux's does then.
"""
from __future__ import annotations

import struct
from typing import Callable

from arch_um import ptrace
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.bpf import classic
from umlpy.kernel import printk, threads
from umlpy.kernel.errors import NoReturn
from umlpy.kernel.task import State

MODE_DISABLED, MODE_STRICT, MODE_FILTER = 0, 1, 2
AUDIT_ARCH_X86_64 = 0xC000003E
SYS_SECCOMP = 1                 # SIGSYS's si_code

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_ACTION_FULL = 0xFFFF0000
RET_DATA = 0x0000FFFF
MAX_ERRNO = 4095
MAX_INSNS_PER_PATH = 32768      # (1 << 18) / sizeof(struct sock_filter)

STRICT_ALLOWED = frozenset((NR["read"], NR["write"], NR["exit"], NR["rt_sigreturn"]))
_DATA = struct.Struct("<iIQ6Q")


class Filter:
    """One attached filter and the ones attached before it."""
    __slots__ = ("prog", "prev", "log", "path_len")

    def __init__(self, prog: list, prev: Filter | None, log: bool) -> None:
        self.prog, self.prev, self.log = prog, prev, log
        # what the filters cost a syscall, in Linux's count (each plus 4)
        self.path_len = len(prog) + 4 + (prev.path_len if prev is not None else 0)

    def count(self) -> int:
        n, f = 0, self
        while f is not None:
            n, f = n + 1, f.prev
        return n

    def descends_from(self, other: Filter | None) -> bool:
        f = self
        while f is not None:
            if f is other:
                return True
            f = f.prev
        return other is None


class Seccomp:
    """A task's mode and newest filter (None in strict mode)."""
    __slots__ = ("mode", "filter")

    def __init__(self, mode: int, filt: Filter | None) -> None:
        self.mode, self.filter = mode, filt


def _signed_action(ret: int) -> int:
    """ACTION_ONLY: the action bits as a signed int, lower wins."""
    a = ret & RET_ACTION_FULL
    return a - (1 << 32) if a >> 31 else a


def evaluate(sc: Seccomp, nr: int, rip: int, args: tuple[int, ...]) -> tuple[int, Filter | None]:
    """seccomp_run_filters: (the verdict, the filter that gave it)."""
    data = _DATA.pack(nr, AUDIT_ARCH_X86_64, rip & (1 << 64) - 1, *(a & (1 << 64) - 1 for a in args))
    ret, match = RET_ALLOW, None
    f = sc.filter
    while f is not None:
        cur = classic.run(f.prog, data)
        if _signed_action(cur) < _signed_action(ret):
            ret, match = cur, f
        f = f.prev
    return ret, match


def verdict(k, t, sc: Seccomp, nr: int, args: tuple[int, ...]) -> Callable[[], int | None] | None:
    """What becomes of syscall nr of task t under its seccomp state: None
    to run it, else a handler that does the action instead (returns the
    syscall's result, or raises NoReturn for a killed thread)."""
    if sc.mode == MODE_STRICT:
        if nr in STRICT_ALLOWED:
            return None
        return lambda: _kill_thread(k, t, S.SIGKILL)
    ret, match = evaluate(sc, nr, t.regs.rip, args)
    action, data = ret & RET_ACTION_FULL, ret & RET_DATA
    if action == RET_ALLOW:
        return None
    # logged: a kill and LOG always, the others if their filter asked (SECCOMP_FILTER_FLAG_LOG)
    if action not in (RET_ERRNO, RET_TRAP, RET_TRACE, RET_USER_NOTIF) or match is not None and match.log:
        _log(t, nr, ret)
    if action == RET_LOG:
        return None
    if action == RET_ERRNO:
        return lambda: -min(data, MAX_ERRNO)
    if action == RET_TRAP:
        def trap() -> int:
            _force_sigsys(k, t, nr, data, current=True)
            return nr           # syscall_rollback: rax is the number again, as the handler sees it
        return trap
    if action in (RET_TRACE, RET_USER_NOTIF):
        printk.pr_info_ratelimited(f"seccomp: {t.proc.comm.decode(errors='replace')}[{t.tid}] syscall {nr}: "
                                   f"{'TRACE' if action == RET_TRACE else 'USER_NOTIF'} with no tracer or "
                                   "listener here: ENOSYS")
        return lambda: -E.ENOSYS
    # KILL_THREAD, KILL_PROCESS and any action Linux does not know
    if action == RET_KILL_THREAD and sum(x.state is not State.DEAD for x in t.proc.threads) > 1:
        return lambda: _kill_thread(k, t, S.SIGSYS)

    def kill_process() -> int:
        _force_sigsys(k, t, nr, data, current=False)    # its default action: a core, the process gone
        return nr
    return kill_process


def _force_sigsys(k, t, nr: int, data: int, current: bool) -> None:
    """force_sig_seccomp: SIGSYS, SYS_SECCOMP, si_errno the filter's data,
    the call's address, number and architecture."""
    body = struct.pack("<QiI", t.regs.rip, nr, AUDIT_ARCH_X86_64)
    k.signals.force_sig(t, S.SIGSYS, SYS_SECCOMP, ("raw", body, data), handler_current=current)


def _kill_thread(k, t, sig: int) -> None:
    """do_exit(sig) of one thread; the last one takes its process along."""
    ptrace.ensure_stopped(t.hpid)       # (held in a notification: its exit needs a real stop)
    if threads.exit_thread(k, t, sig):
        raise NoReturn()
    threads.clear_tid(k, t)
    k.procs.kill_process(t.proc, sig)
    raise NoReturn()


def _log(t, nr: int, ret: int) -> None:
    printk.pr_info_ratelimited(f"audit: type=1326 seccomp pid={t.proc.pid} comm=\"{t.proc.comm.decode(errors='replace')}\" "
                               f"sig={S.SIGSYS if ret & RET_ACTION_FULL not in (RET_LOG, RET_ERRNO) else 0} "
                               f"arch={AUDIT_ARCH_X86_64:x} syscall={nr} ip={t.regs.rip:#x} code={ret:#x}")
