"""The kernel is a boundary: no guest stalls the others or the kernel.

Costs that grow with what a guest holds, values that overflow the event
loop, devices that block the boot, processes that survive SIGKILL, state
that leaks from one program to the next.  Timings are only ever compared
with each other, with wide margins.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, PROGS, UMLPY, boot, native, sh
from test_security import _alive, _children


def test_fd_allocation_does_not_slow_down_as_the_table_fills():
    """20 000 opens: the last thousand cost what the first did (a scan from
    fd 0 made them 20 times slower, and every other guest waited)."""
    r = sh("/t/bin/t_fdalloc /tmp scale")
    out = r.stdout.decode().split()
    assert out[-1] == "done", r.stdout + r.stderr
    first, last = int(out[1]), int(out[3])
    assert last < 8 * first, (first, last)


def _until(stream, marker: bytes) -> bytes:
    out = b""
    while not out.endswith(marker):
        chunk = stream.read1(4096)
        if not chunk:
            break
        out += chunk
    return out


def test_sigkill_ends_every_wait_and_releases_what_it_held(scratch):
    """t_sigkill natively and in the guest: each child killed wherever it
    waits dies of SIGKILL within two seconds and what it held works again;
    then, from the host, nothing of the guest's is left but its one
    remaining process (no stray host process, no unreaped zombie)."""
    want = native([str(PROGS / "t_sigkill"), str(scratch)])
    assert want.endswith(b"done\n")
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV,
                          "--", "-c", "mkdir -p /tmp/s; /t/bin/t_sigkill /tmp/s; echo ==; exec sleep 1000"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        got = _until(p.stdout, b"==\n")
        assert got.decode() == want.decode() + "==\n"
        deadline = time.monotonic() + 5
        while len(_children(p.pid)) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        guests = _children(p.pid)
        assert len(guests) == 1 and all(_alive(g) for g in guests), guests
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("kind", ["a fifo", "a character device", "a directory"])
def test_ubd_refuses_what_is_not_a_disk(kind, tmp_path):
    """A fifo as ubd0= blocked the boot forever, /dev/null crashed the
    kernel at shutdown: anything but a regular file or a block device is
    refused at boot with a clear line and a non-zero exit."""
    path = {"a fifo": tmp_path / "fifo", "a character device": Path("/dev/null"),
            "a directory": tmp_path}[kind]
    if kind == "a fifo":
        os.mkfifo(path)
    for param in (f"ubd0={path}", f"ubd1r={path}", f"ubd2={tmp_path / 'cow'},{path}"):
        r = boot("quiet", "init=/bin/sh", param, init_args=["-c", "echo booted"], timeout=60)
        assert r.returncode == 1 and b"booted" not in r.stdout, (param, r.stderr)
        assert f"Failed to open '{path}': it is {kind}".encode() in r.stderr, r.stderr
        assert b"Traceback" not in r.stderr
