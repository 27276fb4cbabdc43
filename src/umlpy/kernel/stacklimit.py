"""RLIMIT_STACK, enforced by the host.

A guest's stack grows by its host process's own page faults, which only
the host's limit bounds: so a process's limit is set on its host process
whenever it changes (setrlimit, prlimit, a restore), and the host keeps
it across fork and the stub's execve as Linux keeps the guest's.  umlpy's
own hard limit caps it (an unprivileged process cannot raise past it).
"""
from __future__ import annotations

from arch_um import host
from umlpy.abi import consts as C


def apply(proc) -> None:
    soft, hard = proc.rlimit(C.RLIMIT_STACK)
    for th in proc.threads:
        if th.hpid:
            host.set_stack_limit(th.hpid, soft, hard)   # one per process, as rlimits are
            return
