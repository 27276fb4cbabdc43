"""The host CPU an idle guest costs (issue 16: "no new cost when idle").

A guest blocked in read, poll or a sleep should cost its host nothing: no
polling loop, no periodic tick while every guest task sleeps.  Measured as
the utime+stime (/proc/PID/stat) of a process and of all its descendants,
umlpy and its guest processes, over a window in which the guest sits
blocked.  CPU time, not wall-clock speed: it holds on a loaded machine, so
tests/test_idle.py can assert it, and bench/run.py reports it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, utime+stime in ticks) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()     # after "pid (comm) "
    return int(fields[1]), int(fields[11]) + int(fields[12])


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of root and of every live descendant, in seconds."""
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(p))}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            ticks += stats[pid][1]
            todo += children.get(pid, [])
    return ticks / TICK


def blocked_cpu(cmd: list[str], seconds: float, ready: bytes = b"blocking", settle: float = 0.5,
                timeout: float = 120) -> float:
    """Start cmd with its stdin an open pipe nobody writes to, wait for its
    `ready` line, let it settle, then return the host CPU time the process
    tree used over `seconds`.  cmd is killed afterwards, with its session
    (UML's helper processes too)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        for line in p.stdout:
            if line.strip() == ready:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cmd}: no {ready!r} line")
        else:
            raise RuntimeError(f"{cmd}: ended (status {p.wait()}) before blocking")
        time.sleep(settle)
        before = tree_cpu_seconds(p.pid)
        time.sleep(seconds)
        return tree_cpu_seconds(p.pid) - before
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
