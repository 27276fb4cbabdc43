"""The escape suite: guest programs attack the kernel/host boundary.

t_escape (guest-only: natively there is no stub) aims every syscall that
writes guest memory, and every memory-management call, at the page through
which the kernel makes host syscalls, jumps into each of its instructions
with the registers of a host mkdir, and tries the 32-bit syscall gates.  A
successful escape would create a directory on the host; the host checks it
never appears.  t_efault (the fault suite) runs natively and in the guest,
here both as the unprivileged host user (test_differential runs it as root).
Everything runs as root and as nobody on the host.  t_bigcopy checks that
a guest's huge copies do not become as much kernel memory.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, NOBODY, PATH_ENV, PROGS, UMLPY, as_nobody, native, sh

USERS = ["host-user", "nobody"]

WRITE_CALLS = ["read", "readv", "recv", "pread", "pread page", "getdents64", "fstat", "getcwd", "uname",
               "clock_gettime", "pipe", "rt_sigprocmask old", "getresuid", "sysinfo"]
MM_CALLS = ["mprotect rwx", "mprotect none", "munmap", "munmap around", "mmap fixed", "mmap fixed_noreplace",
            "mmap file fixed", "mremap onto", "mremap of", "madvise dontfork", "madvise dontneed",
            "madvise remove", "mlock", "shmat remap", "brk over", "pkey_mprotect", "process_vm_writev"]


def _prefix(user: str) -> list[str]:
    return as_nobody() if user == "nobody" else []


@pytest.mark.parametrize("path", ["seccomp=on", "seccomp=off"])
@pytest.mark.parametrize("user", USERS)
def test_stub_attacks_reach_nothing(user, path):
    """Both trap paths: on the seccomp one, the stub's syscall instruction
    is where the kernel's own injections run, and the filter stops every
    call made there for the kernel to judge (umlpy_inject lets through only
    its own); a guest jumping there makes an ordinary guest syscall."""
    canary = Path(tempfile.gettempdir()) / f"umlpy-escape-{uuid.uuid4().hex}"
    r = sh(f"mkdir -p /tmp/s; for p in /t/bin/t_escape /t/bin/t_escape.pie; do $p {canary} /tmp/s; done",
           path, prefix=_prefix(user))
    out = r.stdout.decode()
    assert not canary.exists(), "a guest made a host syscall of its own"
    assert out.count("done\n") == 2, out[-2000:]
    lines = out.splitlines()
    for target in ("into the stub's code", "into the stub's scratch"):
        for call in WRITE_CALLS:
            assert lines.count(f"{call} {target}: -1 EFAULT") == 2, (call, target)
    for call in MM_CALLS:
        got = [ln for ln in lines if ln.startswith(f"{call}: ")]
        assert len(got) == 2 and all(": -1 E" in ln for ln in got), got
    assert lines.count("mmap hint: elsewhere") == 2
    assert not [ln for ln in lines if "CHANGED" in ln or "FAILED" in ln or "MADE" in ln]
    # jumping into the stub is an ordinary guest syscall: the guest's own mkdir
    assert lines.count("  stub+0x78 returned 0; canary in the guest: made") == 2
    assert len([ln for ln in lines if ln.startswith("jump to stub+") and ln.endswith("child exited")]) == 16
    assert lines.count("  SEGV code 0x80 addr (nil), at cd 80, cs 0x33") == 2
    assert lines.count("int $0x80: exit 7") == 2
    assert lines.count("sigreturn to a 32-bit cs: signal SEGV") == 2
    assert lines.count("far return to 32-bit code: signal SEGV") == 2
    assert b"Oops" not in r.stderr


def test_fault_suite_as_nobody():
    """t_efault natively as nobody against the guest of a kernel run by nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the native side as another user")
    d = Path(tempfile.mkdtemp(prefix="umlpy-efault-"))
    d.chmod(0o777)
    try:
        want = native(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                       str(PROGS / "t_efault"), str(d)], cwd=d)
    finally:
        subprocess.run(["rm", "-rf", str(d)])
    got = sh("mkdir -p /tmp/s; /t/bin/t_efault /tmp/s; true", prefix=as_nobody())
    assert got.stdout.decode() == want.decode()
    assert want.rstrip().endswith(b"done")


def _kernel_peak_kib(script: str) -> tuple[int, bytes]:
    """Boot, run script, then read the kernel process's peak RSS (VmHWM)
    from the host while the guest waits."""
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV, "--", "-c",
                          f"{script}; echo measure-now; sleep 30"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out = b""
        for line in p.stdout:
            if line == b"measure-now\n":
                break
            out += line
        status = Path(f"/proc/{p.pid}/status").read_text()
        hwm = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1])
    finally:
        p.kill()
        p.wait()
    return hwm, out


def test_big_copies_are_taken_in_pieces(scratch):
    """One 64 MiB write into a pipe, a stream, /dev/null and a file, and a
    64 MiB read from /dev/zero, as natively; the kernel's own memory grows
    by far less than the buffer (it used to hold every byte, twice)."""
    want = native([str(PROGS / "t_bigcopy"), str(scratch)])
    base, _ = _kernel_peak_kib("true")
    peak, got = _kernel_peak_kib("mkdir -p /tmp/s; /t/bin/t_bigcopy /tmp/s")
    assert got.decode() == want.decode()
    assert want.rstrip().endswith(b"done")
    assert peak - base < 32 * 1024, (base, peak)
