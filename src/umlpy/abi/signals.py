"""Signal numbers, names and default actions (signal(7))."""
import enum

NSIG = 64

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = range(1, 9)
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT = range(9, 17)
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU = range(17, 25)
SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = range(25, 32)
SIGRTMIN = 32
SIGRTMAX = 64

NAMES = {
    1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE",
    9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
    16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU",
    23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO",
    30: "PWR", 31: "SYS",
}


class Default(enum.Enum):
    TERM = "term"
    CORE = "core"
    STOP = "stop"
    CONT = "cont"
    IGNORE = "ignore"


_CORE = {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS}
_STOP = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}
_IGNORE = {SIGCHLD, SIGURG, SIGWINCH}


def default_action(sig: int) -> Default:
    if sig in _CORE:
        return Default.CORE
    if sig in _STOP:
        return Default.STOP
    if sig == SIGCONT:
        return Default.CONT
    if sig in _IGNORE:
        return Default.IGNORE
    return Default.TERM


def sigbit(sig: int) -> int:
    return 1 << (sig - 1)


UNBLOCKABLE = sigbit(SIGKILL) | sigbit(SIGSTOP)
