"""A guest task's kernel side, as a kernel developer reads it: mconsole
`stack PID` (drivers/mconsole.py), UML's show_stack of a task.

umlpy has no per-task kernel stacks.  A task that waits is parked
(kernel/sched.py) on the Block its syscall handler raised, and that
exception's traceback is the kernel stack at the moment it blocked: the
handler's frames, their locals alive until the task is woken.  What it
waits for is the Block's: wait queues, a deadline, and the continuation
that runs on wake-up (retry, on_timeout), a callable whose name and
definition say where the syscall goes on.  A task in user mode has only
its registers; a stopped one, the stop.  Source paths are shown from the
package on (umlpy/kernel/sched.py): the answer also goes to the kernel
log, which names no host directory.
"""
from __future__ import annotations

import traceback
from types import CodeType
from typing import Callable

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NAMES as SYSCALLS
from umlpy.kernel.errors import Block
from umlpy.kernel.task import State, Task
from umlpy.kernel.timekeeping import WallDeadline

MAX_QUEUES = 8          # a poll of many fds waits on many queues: name a few
WAKE_REASONS = ("woken", "timed out", "interrupted by a signal")    # sched.WAKE_*


def describe(t: Task) -> list[str]:
    p = t.proc
    ppid = p.parent.pid if p.parent is not None else 0
    lines = [f"task:{p.comm.decode(errors='replace'):<15} state:{t.state.value} pid:{t.tid} "
             f"tgid:{p.pid} ppid:{ppid}"]
    if t.in_syscall >= 0:
        name = SYSCALLS.get(t.in_syscall, f"syscall_{t.in_syscall}")
        lines.append(f"syscall: {name}({', '.join(f'{a:#x}' for a in t.block_args)})")
    lines += _state(t)
    lines.append(f"signals: pending {_signals(t.pending | p.shared_pending)}, blocked {_signals(t.blocked)}")
    lines.append(f"RIP: {t.regs.rip:#018x} RSP: {t.regs.rsp:#018x} syscall: {t.in_syscall}")
    if t.state is State.BLOCKED and t.block is not None:
        lines += _kernel_stack(t.block)
    return lines


def _state(t: Task) -> list[str]:
    st = t.state
    if st is State.USER:
        return ["running guest code (user mode): no kernel stack"]
    if st is State.STOPPED:
        return ["job-control stop: waits for SIGCONT"]
    if st is State.TRACED:
        tracer = t.ptrace.tracer.pid if t.ptrace is not None else 0
        return [f"ptrace-stop: waits for its tracer (pid {tracer}) to restart it"]
    if st is State.DEAD:
        return ["dead: only its host exit is still to come"]
    if st is State.KERNEL:
        return [f"in the kernel, runnable ({WAKE_REASONS[t.wake_reason]}): its syscall goes on "
                f"at the scheduler's next pass"]
    b = t.block
    if b is None:
        return ["sleeping, on no wait"]
    return _wait(b)


def _wait(b: Block) -> list[str]:
    names = [q.name or "(unnamed)" for q in b.queues[:MAX_QUEUES]]
    more = len(b.queues) - len(names)
    on = ", ".join(names) + (f" and {more} more" if more > 0 else "")
    lines = [f"waits on: {on or 'no queue'}"]
    if b.deadline is None:
        lines.append("timeout: none")
    else:
        left = (int(b.deadline) - clock.monotonic_ns()) / 1e9
        clk = f" (an absolute time on clock {b.deadline.clk})" if isinstance(b.deadline, WallDeadline) else ""
        lines.append(f"timeout: in {left:.3f}s{clk}")
    restart = E.NAMES.get(b.restart, str(b.restart)) if b.restart else "none (a page fault's wait)"
    lines.append(f"a signal ends it with: {restart}")
    lines.append("continues in: " + (_callable(b.retry) if b.retry is not None
                                     else "its syscall handler again, same arguments"))
    if b.on_timeout is not None:
        lines.append("on timeout: " + _callable(b.on_timeout))
    return lines


def _kernel_stack(b: Block) -> list[str]:
    lines = ["kernel stack where it blocked (innermost last):"]
    for frame, lineno in traceback.walk_tb(b.__traceback__):
        lines.append(f"  {_where(frame.f_code, lineno)}")
    return lines


def _callable(fn: Callable) -> str:
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return repr(fn)
    return _where(code, code.co_firstlineno)


def _where(code: CodeType, lineno: int) -> str:
    """py-spy's form, `function (file:line)`, the file from the package on
    (another one's: its directory and name)."""
    path = code.co_filename
    cut = path.rfind("/umlpy/")
    short = path[cut + 1:] if cut >= 0 else "/".join(path.split("/")[-2:])
    return f"{code.co_qualname} ({short}:{lineno})"


def _signals(mask: int) -> str:
    sigs = [f"SIG{S.NAMES[s]}" if s in S.NAMES else f"SIGRT{s - S.SIGRTMIN}"
            for s in range(1, S.NSIG + 1) if mask & S.sigbit(s)]
    return ",".join(sigs) or "none"
