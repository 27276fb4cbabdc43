"""The host's view of a running umlpy: its guests' host processes, its
management console, and what it was doing when a test's guest outlived
the test's timeout.

A hang in CI is seen once and gone: the report is all there is to read,
so it gathers what a kernel developer would ask for at the machine
(docs/debugging.md): the kernel's own Python stack (py-spy), every guest
task's state and kernel stack (mconsole `sysrq t` and `stack PID`), and
each host process's state, wait channel and current host syscall.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from arch_um.mconsole import request

MAX_STACKS = 40         # guest tasks whose kernel stack the report shows


def children(pid: int) -> set[int]:
    """The host processes pid's threads forked."""
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(x) for x in (task / "children").read_text().split()}
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = sorted(children(p))
        except OSError:
            continue
        out += kids
        todo += kids
    return out


def mconsole(sock: Path | str, cmd: str, timeout: float = 30) -> str:
    """One request to a kernel's management console: the text of its reply."""
    return request(str(sock), cmd, timeout)[1]


def _mconsole_socket(pid: int, cmd: list[str]) -> Path | None:
    """The socket of the kernel whose host pid is pid: its umid directory
    (uml_dir= on its command line, else ~/.uml) holds its pid file."""
    uml_dir = Path.home() / ".uml"
    for arg in cmd:
        if arg.startswith("uml_dir="):
            uml_dir = Path(arg.split("=", 1)[1])
    for pidfile in uml_dir.glob("*/pid"):
        try:
            if int(pidfile.read_text().split()[0]) == pid:
                return pidfile.parent / "mconsole"
        except (OSError, ValueError, IndexError):
            continue
    return None


def _guest_tasks(pid: int, cmd: list[str]) -> str:
    sock = _mconsole_socket(pid, cmd)
    if sock is None:
        return "(no management console found)"
    try:
        tasks = mconsole(sock, "sysrq t", timeout=10)
    except OSError as e:
        return f"(the management console did not answer: {e})"
    out = [tasks]
    tids = [line.split("pid:")[1].split()[0] for line in tasks.splitlines() if "pid:" in line]
    for tid in tids[:MAX_STACKS]:
        try:
            out.append(mconsole(sock, f"stack {tid}", timeout=10))
        except OSError as e:
            out.append(f"stack {tid}: {e}")
    return "\n".join(out)


def _py_spy(pid: int) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(spy, os.X_OK):
        return "(py-spy is not installed)"
    try:
        r = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "(py-spy did not answer)"
    return (r.stdout + r.stderr).strip()


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def _host_tree(pid: int) -> str:
    lines = []
    for p in [pid, *descendants(pid)]:
        for tid in sorted(os.listdir(f"/proc/{p}/task"), key=int) if os.path.isdir(f"/proc/{p}/task") else []:
            base = f"/proc/{p}/task/{tid}"
            stat = _read(f"{base}/stat")
            comm, state = stat.split(" (", 1)[1].rsplit(") ", 1) if ") " in stat else ("?", "?")
            lines.append(f"{p}/{tid} {comm} state {state[:1]} wchan {_read(base + '/wchan')} "
                         f"syscall {_read(base + '/syscall').split(' ')[0]}")
    return "\n".join(lines)


def hang_report(pid: int, cmd: list[str]) -> str:
    """What the umlpy at host pid was doing: asked while it still runs."""
    parts = [("host processes (pid/tid comm, state, wait channel, host syscall)", _host_tree(pid)),
             ("guest tasks (mconsole sysrq t, stack)", _guest_tasks(pid, cmd)),
             ("the kernel's Python stack (py-spy dump)", _py_spy(pid))]
    return "\n".join(f"--- {title}\n{text}" for title, text in parts)
