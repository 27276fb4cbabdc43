"""The host side of the guest syscall tracer (src/umlpy/kernel/strace):
python-ptrace's syscall prototypes and flag tables, the host's errno
texts, and the trace file of `strace=FILE`.

python-ptrace is a host ptrace library: importing any of its modules runs
`ptrace/syscall/__init__.py`, which loads ctypes, os, socket and libc --
host modules the kernel may not import (tests/test_security.py).  So it is
imported here, in the host port, only when a trace is asked for at boot,
and what crosses to the kernel is plain data: tuples of names and dicts
of numbers to names.  Nothing of its process-reading machinery is used:
the kernel reads guest memory itself (copy_from_user).
"""
from __future__ import annotations

import errno
import os

from arch_um.console import HostChannel

Prototype = tuple[tuple[str, str], ...]     # ((C type, argument name), ...)


def prototypes() -> dict[str, Prototype]:
    """Every syscall python-ptrace knows: its arguments' C types and names."""
    from ptrace.syscall.prototypes import ALIASES, SYSCALL_PROTOTYPES
    out = {name: tuple((t, n) for t, n in args) for name, (_ret, args) in SYSCALL_PROTOTYPES.items()}
    for name, aliases in ALIASES.items():
        for alias in aliases:
            if name in out:
                out.setdefault(alias, out[name])
    return out


def filename_arguments() -> frozenset[str]:
    """The argument names python-ptrace takes for paths."""
    from ptrace.syscall.prototypes import FILENAME_ARGUMENTS
    return frozenset(FILENAME_ARGUMENTS)


def bit_tables() -> dict[str, tuple[tuple[int, str], ...]]:
    """Flag words whose bits have names: (bit, name) in python-ptrace's order."""
    from ptrace.syscall import posix_arg as P
    return {"open": tuple(P.OPEN_FLAGS_BITMASK), "prot": tuple(P.MMAP_PROT_BITMASK),
            "access": tuple(P.ACCESS_MODE_BITMASK), "clone": tuple(P.CLONE_FLAGS_BITMASK)}


def value_tables() -> dict[str, dict[int, str]]:
    """Arguments whose values have names (lseek's whence, fcntl's cmd, ...)."""
    from ptrace.syscall import socketcall_constants as SC
    from ptrace.syscall.linux_constants import RLIMIT_RESOURCE, SIGPROCMASK_HOW, SYSCALL_ARG_DICT
    out = {f"{call}.{arg}": dict(values) for call, args in SYSCALL_ARG_DICT.items()
           for arg, values in args.items()}
    out["family"] = dict(SC.SOCKET_FAMILY)
    out["socktype"] = dict(SC.SOCKET_TYPE)
    out["rlimit"] = dict(RLIMIT_RESOURCE)
    out["how"] = dict(SIGPROCMASK_HOW)
    return out


def errno_texts() -> dict[int, tuple[str, str]]:
    """errno -> (name, message) as the host's strace prints them (its
    libc's strerror); the guest's numbers are the host's (x86-64 Linux)."""
    return {n: (name, os.strerror(n)) for n, name in errno.errorcode.items()}


def open_trace_file(path: str) -> HostChannel:
    """strace=FILE: a host file the command line named, created or
    truncated as `strace -o FILE` does; never one a guest chose."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    return HostChannel(None, fd, owned=(fd,))
