"""The kernel log: Linux-shaped lines on the host's stderr.

Levels as Linux's (0 emerg .. 7 debug); `quiet` shows warnings and worse,
`loglevel=N` shows levels below N.  Timestamps count from boot.
"""
from __future__ import annotations

import traceback
from collections import deque
from typing import Callable

from arch_um import clock
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYSLOG
from umlpy.kernel.cred import capable
from umlpy.kernel.wait import WaitQueue

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)
LOG_BUF_LEN = 1 << 17               # CONFIG_LOG_BUF_SHIFT=17
MINIMUM_CONSOLE_LOGLEVEL = 1


def stamp(t_ns: int) -> str:
    return f"[{t_ns // 10**9:5d}.{(t_ns % 10**9) // 1000:06d}]"


class Log:
    """The ring buffer syslog(2) and /dev/kmsg read (dmesg), and the
    console's level.

    Records are numbered from 0 at boot, each (priority, time since boot,
    text) with its syslog(2) form ("<prio>[time] text\n"); the priority is
    facility << 3 | level (0 for the kernel's own, LOG_USER's for what
    user space writes to /dev/kmsg).  Plain tuples: the kernel's object
    census (SysRq-m) does not count a full ring as a leak.  The buffer
    keeps the newest LOG_BUF_LEN bytes of them; `read_seq` is where the
    consuming reader (SYSLOG_ACTION_READ) is, `clear_seq` where a clear
    left READ_ALL's start (and /dev/kmsg's SEEK_DATA)."""

    def __init__(self, write) -> None:
        self._write = write
        self.console_loglevel = 8   # everything but what needs `debug`
        self.saved_loglevel = -1    # SYSLOG_ACTION_CONSOLE_OFF's, for CONSOLE_ON
        self.t0 = clock.monotonic_ns()
        self.records: deque[tuple[tuple[int, int, str], bytes]] = deque()
        self.size = 0
        self.first_seq = self.next_seq = self.read_seq = self.clear_seq = 0
        self.wq = WaitQueue("syslog")

    def printk(self, level: int, msg: str) -> None:
        self.emit(level, msg)

    def emit(self, prio: int, msg: str) -> None:
        """Log msg at prio (a level, with a facility above it for user
        space's); the console shows it if its level is below the console's."""
        t_ns = clock.monotonic_ns() - self.t0
        raw = f"<{prio}>{stamp(t_ns)} {msg}\n".encode(errors="replace")
        self.records.append(((prio, t_ns, msg), raw))
        self.size += len(raw)
        self.next_seq += 1
        while self.size > LOG_BUF_LEN:
            self.size -= len(self.records.popleft()[1])
            self.first_seq += 1
        self.wq.wake_all()
        if prio & 7 < self.console_loglevel:
            self._write(f"{stamp(t_ns)} {msg}\n")

    def record(self, seq: int) -> tuple[int, int, str]:
        """(prio, time, text) of record seq, which must be held (first_seq <= seq < next_seq)."""
        return self.records[seq - self.first_seq][0]

    def since(self, seq: int) -> list[bytes]:
        """The records from seq on (those still held), as syslog(2) shows them."""
        skip = max(seq, self.first_seq) - self.first_seq
        return [raw for _, raw in list(self.records)[skip:]]

    def take(self, n: int) -> bytes:
        """SYSLOG_ACTION_READ: whole records from read_seq, at most n bytes."""
        out = bytearray()
        self.read_seq = max(self.read_seq, self.first_seq)
        for rec in self.since(self.read_seq):
            if len(out) + len(rec) > n:
                break
            out += rec
            self.read_seq += 1
        return bytes(out)

    def tail(self, n: int) -> bytes:
        """SYSLOG_ACTION_READ_ALL: the newest whole records since the last
        clear that fit in n bytes."""
        picked: list[bytes] = []
        size = 0
        for rec in reversed(self.since(self.clear_seq)):
            if size + len(rec) > n:
                break
            picked.append(rec)
            size += len(rec)
        return b"".join(reversed(picked))

    def unread(self) -> int:
        return sum(len(r) for r in self.since(self.read_seq))

    def oops(self, what: str, exc: BaseException) -> None:
        self.printk(ALERT, f"Oops: {what}: {type(exc).__name__}: {exc}")
        for line in traceback.format_exception(exc):
            for sub in line.rstrip("\n").split("\n"):
                self.printk(ALERT, "  " + sub)


def syslog_allowed(creds, dmesg_restrict: int, open_to_all: bool) -> bool:
    """check_syslog_permissions: what is open to all (reading the whole
    buffer, its size) is unless kernel.dmesg_restrict; the rest needs
    CAP_SYSLOG (or CAP_SYS_ADMIN, which Linux still accepts)."""
    if open_to_all and not dmesg_restrict:
        return True
    return capable(creds, CAP_SYSLOG) or capable(creds, CAP_SYS_ADMIN)


_log: Log | None = None


def set_log(log: Log) -> None:
    global _log
    _log = log


def printk(level: int, msg: str) -> None:
    if _log is not None:
        _log.printk(level, msg)


def set_level(level: int) -> None:
    """sysrq 0-9: the console shows levels below level + 1, as Linux's."""
    if _log is not None:
        _log.console_loglevel = level + 1 if level else 1


def pr_info(msg: str) -> None:
    printk(INFO, msg)


def pr_notice(msg: str) -> None:
    printk(NOTICE, msg)


def pr_warn(msg: str) -> None:
    printk(WARNING, msg)


def pr_err(msg: str) -> None:
    printk(ERR, msg)


def pr_crit(msg: str) -> None:
    printk(CRIT, msg)


def pr_emerg(msg: str) -> None:
    printk(EMERG, msg)


class RateLimit:
    """Linux's ratelimit_state: at most `burst` messages per `interval`; a
    guest that can make the kernel log in a loop must not flood the host's
    stderr (nor the ring buffer)."""

    def __init__(self, interval_ns: int = 5 * 10**9, burst: int = 10, on_release: bool = False) -> None:
        self.interval_ns = interval_ns
        self.burst = burst
        self.on_release = on_release    # RATELIMIT_MSG_ON_RELEASE: the count is told by release()
        self.begin = 0
        self.printed = 0
        self.missed = 0

    def __call__(self, name: str) -> bool:
        now = clock.monotonic_ns()
        if now - self.begin >= self.interval_ns:
            if self.missed and not self.on_release:
                printk(WARNING, f"{name}: {self.missed} callbacks suppressed")
                self.missed = 0
            self.begin, self.printed = now, 0
        if self.printed < self.burst:
            self.printed += 1
            return True
        self.missed += 1
        return False

    def release(self, name: str) -> None:
        """ratelimit_state_exit: what was suppressed, told once at the end."""
        if self.missed:
            printk(WARNING, f"{name}: {self.missed} output lines suppressed due to ratelimiting")
            self.missed = 0


_info_limit = RateLimit()
_oops_limit = RateLimit()


def pr_info_ratelimited(msg: str) -> None:
    if _info_limit("pr_info_ratelimited"):
        printk(INFO, msg)


def pr_warn_ratelimited(msg: str) -> None:
    if _info_limit("pr_warn_ratelimited"):
        printk(WARNING, msg)


def pr_err_ratelimited(msg: str) -> None:
    if _info_limit("pr_err_ratelimited"):
        printk(ERR, msg)


_oops_hook: Callable[[str, BaseException], None] | None = None


def set_oops_hook(hook: Callable[[str, BaseException], None] | None) -> None:
    """What runs after every oops is logged: the `pdb` parameter's host
    debugger (arch_um/debugger.py), which holds the whole kernel while it
    runs; None for none."""
    global _oops_hook
    _oops_hook = hook


def oops(what: str, exc: BaseException) -> None:
    if _log is not None and _oops_limit("oops"):
        _log.oops(what, exc)
    if _oops_hook is not None:
        _oops_hook(what, exc)
