"""The resource limits the host enforces: RLIMIT_STACK, RLIMIT_AS and RLIMIT_DATA.

A guest's stack grows by its host process's own page faults, and its
memory is mapped by the host process (injected mmap, brk, mremap), so
only the host's limits bound them: a process's limit is set on its host
process whenever it changes (setrlimit, prlimit, a restore), and the host
keeps it across fork and the stub's execve as Linux keeps the guest's.
An injected mmap the host refuses for the limit fails with the host's
ENOMEM, as Linux's may_expand_vm.  umlpy's own hard limit caps each (an
unprivileged process cannot raise past it).
"""
from __future__ import annotations

from arch_um import host

ENFORCED = frozenset(host.HOST_ENFORCED)


def apply(proc, res: int) -> None:
    soft, hard = proc.rlimit(res)
    for th in proc.threads:
        if th.hpid:
            host.set_host_limit(th.hpid, res, soft, hard)   # one per process, as rlimits are
            return


def apply_all(proc) -> None:
    for res in ENFORCED:
        if res in proc.rlimits:
            apply(proc, res)
