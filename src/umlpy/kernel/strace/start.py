"""Turning the tracer on at boot, from the command line:

    strace                  trace to the kernel log (the console), as printk
    strace=FILE             trace to the host file FILE (truncated)
    strace.syscalls=LIST    only these syscalls: names, all, and strace's classes
                            (%file %network/%net %process %signal %memory %ipc);
                            !LIST: all but these
    strace.pid=N            only the process with pid N (all its threads),
                            as strace -p N

Signals and exits of the traced processes are printed whatever the
syscall filter, as strace prints them.
"""
from __future__ import annotations

from arch_um import strace as host
from umlpy.kernel import printk
from umlpy.kernel import strace
from umlpy.kernel.strace import decode
from umlpy.kernel.strace.names import CLASSES
from umlpy.kernel.strace.tracing import Tracer
from umlpy.abi.syscall_nr import NUMBERS


def parse_syscalls(spec: str) -> frozenset[str]:
    """strace -e trace=LIST: names and %classes, `all`, or `!LIST` for all
    but those; unknown ones are logged."""
    negate = spec.startswith("!")
    out: set[str] = set()
    for word in filter(None, spec.removeprefix("!").split(",")):
        if word.startswith("%") and word[1:] in CLASSES:
            out |= CLASSES[word[1:]]
        elif word == "all":
            out |= set(NUMBERS)
        elif word in NUMBERS:
            out.add(word)
        else:
            printk.pr_warn(f"strace.syscalls: unknown syscall or class {word!r}")
    return frozenset(set(NUMBERS) - out if negate else out)


def start(k, target: str, syscalls: str | None, pid: int | None) -> None:
    """Load python-ptrace's tables (through arch_um), open the output and
    install the tracer the hooks see."""
    decode.load_tables(host)
    if target:
        try:
            channel = host.open_trace_file(target)
        except OSError as e:
            printk.pr_err(f"strace={target}: cannot open: {e.strerror}; not tracing")
            return
        write = lambda text: channel.write(text.encode(errors="replace"))
    else:
        write = lambda text: printk.pr_info(text.rstrip("\n"))

    def count_tasks() -> int:
        if pid is None:
            return len(k.sched.tasks)
        proc = k.procs.by_pid.get(pid)
        return len(proc.threads) if proc is not None else 0

    strace.tracer = Tracer(write, host.errno_texts(), parse_syscalls(syscalls) if syscalls is not None else None,
                           pid, count_tasks, lambda: k.sched.current)
    printk.pr_info(f"strace: tracing {'every process' if pid is None else f'pid {pid}'}"
                   f"{f' to {target}' if target else ''}")
