"""The kernel under host debuggers (docs/debugging.md): `umlpy --pdb`
stops in pdb at an oops with the guest frozen; py-spy reads the running
kernel's stacks with the source files' names.  (mconsole `stack PID`:
tests/test_mconsole.py.)"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, ROOT, UMLPY
from test_tty import Terminal

PATCHED = Path(__file__).resolve().parent / "patched_kernel.py"
PDB = re.escape(b"(Pdb) ")
GUESTS = ("(while :; do echo tick; sleep 0.05; done) & T=$!; (while :; do :; done) & S=$!; "
          "sleep 0.3; ")    # a ticker making syscalls, a spinner making none


def _cooked(fd: int) -> bool:
    """Signals and output processing on: not the kernel's raw mode (pdb's
    readline itself turns ICANON and ECHO off while it reads a line)."""
    attrs = termios.tcgetattr(fd)       # the master answers with its slave's termios
    return bool(attrs[1] & termios.OPOST and attrs[3] & termios.ISIG)


def _guest_cpus(kernel_pid: int) -> dict[int, tuple[str, int]]:
    """The kernel's host children (guest tasks, the stub): state, CPU ticks."""
    out = {}
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
        except (OSError, ValueError):
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[1]) == kernel_pid:
            out[int(d.name)] = (f[0], int(f[11]) + int(f[12]))
    return out


def test_pdb_at_an_oops_with_the_guest_frozen():
    """An oops in a syscall handler stops in pdb on the host terminal,
    cooked; nothing of the guest runs meanwhile: its ticker is silent and
    its spinner, interrupted, takes no CPU; ^C interrupts pdb's command,
    `where` shows the handler's frames, and `c` goes on: the guest's
    syscall fails with the oops's errno and the terminal is raw again."""
    script = GUESTS + "mkdir /t1; echo mkdir=$?; kill $T $S; echo done"
    term = Terminal("init=/bin/sh", PATH_ENV, "--", "-c", script,
                    launcher=[sys.executable, str(PATCHED), "fault", "mkdir", "--pdb"])
    try:
        term.expect(rb"tick")
        term.expect(rb"kernel oops in syscall mkdir of task \d+")
        term.expect(PDB)
        assert _cooked(term.fd)
        end = time.monotonic() + 10           # PTRACE_INTERRUPT stops a task soon, not at once
        while any(st == "R" for st, _ in _guest_cpus(term.pid).values()) and time.monotonic() < end:
            time.sleep(0.05)
        before = _guest_cpus(term.pid)
        term.quiet(0.5)
        assert b"tick" not in term.out        # frozen: no syscall served, so no echo
        assert _guest_cpus(term.pid) == before and all(st != "R" for st, _ in before.values()), before
        term.send(b"\x03")
        term.expect(rb"KeyboardInterrupt")
        term.expect(PDB)
        term.out = b""
        term.send(b"where\n")
        seen = term.expect(PDB)
        assert b"_run_handler" in seen and b"injected_fault_handler" in seen, seen
        assert re.search(rb"umlpy/kernel/sched\.py\(\d+\)_run_handler", seen), seen
        term.send(b"c\n")
        term.expect(rb"mkdir: can't create directory '/t1': Invalid argument")
        term.expect(rb"mkdir=1")
        assert not _cooked(term.fd)           # raw again: the guest's line discipline
        term.expect(rb"done")
        assert term.wait() == 0
    finally:
        term.close()


def test_breakpoint_in_kernel_code():
    """breakpoint() in a syscall handler stops there on the cooked
    terminal; stepping stops again (each stop borrows the terminal), and
    `c` lets the syscall do its work."""
    term = Terminal("init=/bin/sh", PATH_ENV, "--", "-c", "mkdir /t1; echo mkdir=$?; ls -d /t1",
                    launcher=[sys.executable, str(PATCHED), "breakpoint", "mkdir"])
    try:
        seen = term.expect(PDB)
        assert b"breakpoint_before()" in seen and b"-> return handler(t, *args)" in seen, seen
        assert _cooked(term.fd)
        term.send(b"p t.proc.comm, args[1]\n")
        term.expect(rb"\(b'mkdir', 511\)")        # mkdir(path, 0777)
        term.send(b"n\n")
        term.expect(rb"--Return--")
        term.expect(PDB)
        assert _cooked(term.fd)
        term.send(b"c\n")
        term.expect(rb"mkdir=0\r\n/t1")
        assert term.wait() == 0
    finally:
        term.close()


def test_an_oops_without_pdb_goes_on():
    """Without --pdb an oops is logged and the kernel goes on (no debugger)."""
    r = subprocess.run([sys.executable, str(PATCHED), "fault", "mkdir", str(IMAGE), f"initrd={CPIO}", "quiet",
                        "init=/bin/sh", PATH_ENV, "--", "-c", "mkdir /t1; echo mkdir=$?"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert b"mkdir=1" in r.stdout and b"Oops: syscall mkdir" in r.stderr and b"pdb" not in r.stderr


@pytest.mark.skipif(shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None
                    and shutil.which("py-spy") is None, reason="py-spy missing")
def test_py_spy_dump_names_the_kernel_sources():
    """py-spy (ptrace) dumps a running kernel's Python stack; the frames of
    the image's kernel name the source files it was built from."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV,
                          "--", "-c", "echo up; sleep 30"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        r = subprocess.run([spy, "dump", "--full-filenames", "--pid", str(p.pid)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 and "ermission" in r.stderr:
            pytest.skip(f"py-spy may not ptrace here: {r.stderr.strip()}")
        assert r.returncode == 0, r.stderr
        frames = re.findall(r"^\s+(\S+) \((/\S+):(\d+)\)$", r.stdout, re.M)
        files = {Path(f) for _, f, _ in frames}
        assert ("Scheduler.run", str(ROOT / "src/umlpy/kernel/sched.py")) in {(fn, f) for fn, f, _ in frames}, \
            r.stdout
        assert all(f.exists() for f in files), r.stdout
    finally:
        p.kill()
        p.wait()
