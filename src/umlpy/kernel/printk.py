"""The kernel log: Linux-shaped lines on the host's stderr.

Levels as Linux's (0 emerg .. 7 debug); `quiet` shows warnings and worse,
`loglevel=N` shows levels below N.  Timestamps count from boot.
"""
from __future__ import annotations

import traceback

from arch_um import clock

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)


class Log:
    def __init__(self, write) -> None:
        self._write = write
        self.console_loglevel = 8   # everything but what needs `debug`
        self.t0 = clock.monotonic_ns()
        self.lines: list[str] = []  # the ring buffer (dmesg)

    def printk(self, level: int, msg: str) -> None:
        t = clock.monotonic_ns() - self.t0
        line = f"[{t // 10**9:5d}.{(t % 10**9) // 1000:06d}] {msg}"
        self.lines.append(line)
        if len(self.lines) > 4096:
            del self.lines[:1024]
        if level < self.console_loglevel:
            self._write(line + "\n")

    def oops(self, what: str, exc: BaseException) -> None:
        self.printk(ALERT, f"Oops: {what}: {type(exc).__name__}: {exc}")
        for line in traceback.format_exception(exc):
            for sub in line.rstrip("\n").split("\n"):
                self.printk(ALERT, "  " + sub)


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


def pr_emerg(msg: str) -> None:
    printk(EMERG, msg)


def oops(what: str, exc: BaseException) -> None:
    if _log is not None:
        _log.oops(what, exc)
