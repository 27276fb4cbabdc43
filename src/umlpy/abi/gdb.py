"""gdb's remote protocol numbers (gdb/signals.def): its signal numbers are
its own, equal to Linux's only for 1-6, 8, 9, 11, 13-15."""
from __future__ import annotations

from umlpy.abi import signals as S

# Linux signal -> gdb signal (GDB_SIGNAL_*); STKFLT has none
_FROM_LINUX = {
    S.SIGHUP: 1, S.SIGINT: 2, S.SIGQUIT: 3, S.SIGILL: 4, S.SIGTRAP: 5, S.SIGABRT: 6,
    S.SIGFPE: 8, S.SIGKILL: 9, S.SIGBUS: 10, S.SIGSEGV: 11, S.SIGSYS: 12, S.SIGPIPE: 13,
    S.SIGALRM: 14, S.SIGTERM: 15, S.SIGURG: 16, S.SIGSTOP: 17, S.SIGTSTP: 18, S.SIGCONT: 19,
    S.SIGCHLD: 20, S.SIGTTIN: 21, S.SIGTTOU: 22, S.SIGIO: 23, S.SIGXCPU: 24, S.SIGXFSZ: 25,
    S.SIGVTALRM: 26, S.SIGPROF: 27, S.SIGWINCH: 28, S.SIGUSR1: 30, S.SIGUSR2: 31, S.SIGPWR: 32,
    32: 77, 64: 78,
}
_FROM_LINUX.update({n: 45 + n - 33 for n in range(33, 64)})     # SIG33..SIG63
_TO_LINUX = {g: n for n, g in _FROM_LINUX.items()}
GDB_SIGNAL_UNKNOWN = 143


def from_linux(sig: int) -> int:
    return _FROM_LINUX.get(sig, GDB_SIGNAL_UNKNOWN)


def to_linux(gsig: int) -> int | None:
    """The Linux signal for gdb's number (0: none); None if Linux has none."""
    return 0 if gsig == 0 else _TO_LINUX.get(gsig)
