"""The tracer: one line per guest syscall, signal and exit, as strace -f.

The kernel calls it from four places, each behind one `if strace.tracer
is not None` (kernel/strace/__init__.py): syscall entry (the dispatch),
syscall exit (`finish`, the return to user mode), signal delivery
(`do_signal`, where a ptrace tracer would get its signal-delivery-stop)
and exits (`exit_process`, `exit_thread`).

A syscall's arguments that the guest passes in are decoded at entry, what
the kernel writes at exit, and the line is printed whole at exit.  A
syscall that waits (a handler that parks its task) is still open when
another task's line comes: that line is preceded by the open one cut
short with `<unfinished ...>`, and the waiting call's exit then prints
`<... NAME resumed>` and the rest, exactly when strace -f would.
"""
from __future__ import annotations

import functools
from typing import Callable

from umlpy.abi.syscall_nr import NAMES
from umlpy.kernel import printk
from umlpy.kernel.strace import decode as D
from umlpy.kernel.strace.siginfo import siginfo_text
from umlpy.kernel.task import State

COLUMN = 40         # strace's -a: where "= result" starts


def guarded(hook: Callable) -> Callable:
    """A bug in the tracer is an oops in the log, never the guest's
    syscall failing or its task dying: the trace just misses a line."""
    @functools.wraps(hook)
    def run(self, *args) -> None:
        try:
            hook(self, *args)
        except Exception as exc:
            printk.oops(f"strace: {hook.__name__}", exc)
    return run


class Call:
    __slots__ = ("plan", "args", "head", "cut")

    def __init__(self, plan: D.Plan, args: tuple, head: list[str]) -> None:
        self.plan = plan
        self.args = args
        self.head = head        # the arguments decoded at entry
        self.cut = False        # printed as <unfinished ...> already


class Tracer:
    def __init__(self, write: Callable[[str], None], errnos: dict[int, tuple[str, str]],
                 syscalls: frozenset[str] | None, pid: int | None, count_tasks: Callable[[], int],
                 current: Callable[[], object]) -> None:
        self.write = write
        self.errnos = errnos
        self.syscalls = syscalls        # None: all of them
        self.pid = pid                  # None: every process
        self.count_tasks = count_tasks  # live traced tasks: "[pid N] " once there are two
        self.calls: dict[object, Call] = {}
        self.plans: dict[str, D.Plan] = {}
        self.current = current          # the task whose syscall the kernel is running
        self.open: tuple[object, Call] | None = None    # the last entered call not yet printed
        self.deferred: list[Callable[[], None]] = []    # lines due after the running call's

    # -- output -------------------------------------------------------------------
    def _traced(self, t) -> bool:
        return self.pid is None or t.proc.pid == self.pid

    def _prefix(self, t) -> str:
        return f"[pid {t.tid:5d}] " if self.count_tasks() > 1 else ""

    def _cut(self, own: Call | None = None) -> None:
        """Another line comes: the open call, unless it is the one that
        line ends (own), is printed so far with <unfinished ...>."""
        if self.open is not None:
            ot, oc = self.open
            self.open = None
            if oc is not own:
                oc.cut = True
                self.write(self._prefix(ot) + self._opening(oc) + " <unfinished ...>\n")

    def _emit(self, t, text: str, own: Call | None = None) -> None:
        self._cut(own)
        self.write(self._prefix(t) + text + "\n")

    @staticmethod
    def _opening(c: Call) -> str:
        more = c.plan.out_from < len(c.plan.fmts) and c.head
        return f"{c.plan.name}({', '.join(c.head)}{', ' if more else ''}"

    def _finish(self, t, c: Call, tail: str, result: str) -> None:
        line = (f"<... {c.plan.name} resumed>" if c.cut else self._opening(c)) + tail + ") "
        width = len(self._prefix(t)) + len(line)
        self._emit(t, line + " " * max(0, COLUMN - width) + "= " + result, c)

    # -- hooks ------------------------------------------------------------------------
    @guarded
    def enter(self, t, nr: int, args: tuple) -> None:
        if not self._traced(t):
            return
        name = NAMES.get(nr, f"syscall_{nr:#x}")
        if self.syscalls is not None and name not in self.syscalls:
            return
        plan = self.plans.get(name)
        if plan is None:
            plan = self.plans[name] = D.Plan(name)
        c = Call(plan, args, plan.render(t, args, 0, min(plan.out_from, len(plan.fmts)), None))
        self._cut()         # strace prints the entry now: a waiting call's line is cut
        self.calls[t] = c
        self.open = (t, c)

    @guarded
    def leave(self, t, ret: int | None) -> None:
        c = self.calls.pop(t, None)
        if c is None:
            return
        p = c.plan
        tail = p.render(t, c.args, p.out_from, len(p.fmts), ret) if p.out_from < len(p.fmts) else []
        self._finish(t, c, ", ".join(tail), D.result(t, p.name, c.args, ret, self.errnos))
        self._flush_deferred()

    def _flush_deferred(self) -> None:
        while self.deferred:
            self.deferred.pop(0)()

    @guarded
    def signal(self, t, sig: int, code: int, fields: tuple) -> None:
        if self._traced(t):
            self._emit(t, f"--- {D.signame(sig)} {siginfo_text(sig, code, fields)} ---")

    @guarded
    def exited(self, t, status: int) -> None:
        """t is gone: a call it never returned from ends with `= ?`, then
        how it ended (a wait status)."""
        if not self._traced(t):
            return
        c = self.calls.pop(t, None)
        if status & 0x7f:
            core = " (core dumped)" if status & 0x80 else ""
            line = f"+++ killed by {D.signame(status & 0x7f)}{core} +++"
        else:
            line = f"+++ exited with {(status >> 8) & 0xff} +++"

        def report() -> None:
            if c is not None:
                undecoded = c.plan.out_from < len(c.plan.fmts)    # what it would have printed at exit
                self._finish(t, c, " <unfinished ...>" if undecoded else "", "?")
            self._emit(t, line)
        cur = self.current()
        if cur is not t and cur in self.calls and cur.state is State.KERNEL:
            # killed by another task's syscall (kill, exit_group of a thread):
            # strace sees the death after that call returns
            self.deferred.append(report)
            return
        report()
        self._flush_deferred()
