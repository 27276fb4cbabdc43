"""Sanitized programs: AddressSanitizer (with LeakSanitizer) and
ThreadSanitizer binaries built here by the host's gcc, run from a disk of
their libraries in the guest and natively, their reports and exit statuses
compared.  CI sandboxes run exactly such test binaries.  Their runtimes ask
the kernel for what ordinary programs never do: terabytes of shadow memory
at fixed addresses across the middle of the user range (ASan's high shadow
covers 0x02008fff7000-0x10007fff8000), MAP_NORESERVE so that none of it is
committed, and LeakSanitizer stops the world with ptrace from a clone of
the process to read every thread's registers."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IMAGE, TREE, UMLPY, install_with_libs, sh

SRC = Path(__file__).parent / "sanitized"
RUNS = [("asan", "clean"), ("asan", "overflow"), ("asan", "leak"), ("tsan", "")]
# reports without colours whatever their output is
OPTIONS = {"ASAN_OPTIONS": "color=never", "TSAN_OPTIONS": "color=never"}


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory) -> tuple[Path, Path]:
    """The two programs (in bin/) and an ext2 disk of the busybox tree with
    them and the libraries they load."""
    base = tmp_path_factory.mktemp("sanitized")
    bindir = base / "bin"
    bindir.mkdir()
    for name in ("asan", "tsan"):
        r = subprocess.run(["gcc", "-g", "-O0", f"-fsanitize={'address' if name == 'asan' else 'thread'}",
                            "-pthread", "-o", str(bindir / name), str(SRC / f"{name}.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"the host's gcc cannot build a {name} program: {r.stderr[-500:]}")
    root = base / "tree"
    shutil.copytree(TREE, root, symlinks=True)
    for prog in bindir.iterdir():
        install_with_libs(prog, root, "/s")
    img = base / "s.img"
    used = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", str(root), str(img), f"{max(64, used * 3 // 2 >> 20)}M"],
                   check=True, capture_output=True)
    return bindir, img


def _report(text: str) -> str:
    """A sanitizer's report without what differs from run to run (pids,
    addresses, host thread ids) or from host to guest (the C library's
    frames, which the host may symbolize from debug files the guest's disk
    lacks; where the program lies)."""
    text = re.sub(r"==\d+==", "==PID==", text)
    text = re.sub(r"(pid|tid)=\d+", r"\1=N", text)
    text = re.sub(r"0x[0-9a-f]+", "ADDR", text)
    return "\n".join(ln for ln in text.splitlines()
                     if not ln.startswith("  ADDR:")        # the shadow map's rows
                     and not (re.match(r"\s+#\d+ ", ln) and "tests/sanitized/" not in ln and "libsanitizer" not in ln))


def test_sanitizer_reports_as_native(sanitized):
    bindir, img = sanitized
    script = "mount -t proc proc /proc; export " + " ".join(f"{k}={v}" for k, v in OPTIONS.items()) + "; " + "; ".join(f"(/s/{prog} {arg} 2>&1; echo status $?) | cat" for prog, arg in RUNS)
    got = subprocess.run([str(UMLPY), str(IMAGE), "quiet", f"ubd0={img}", "init=/bin/sh", "--", "-c", script],
                         capture_output=True, timeout=300)
    want = []
    for prog, arg in RUNS:
        r = subprocess.run([str(bindir / prog), *([arg] if arg else [])], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, env={"PATH": "/bin", **OPTIONS})
        want.append(r.stdout.decode() + f"status {r.returncode}\n")
    out = got.stdout.decode()
    assert _report(out) == _report("".join(want)), got.stderr.decode()[-3000:]
    assert "ERROR: LeakSanitizer: detected memory leaks" in out
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in out
    assert "WARNING: ThreadSanitizer: data race" in out and "status 66" in out
    assert b"Oops" not in got.stderr


def test_no_hole_in_the_address_space():
    """t_gapfill as a guest user: below vm.mmap_min_addr (where the trap
    stub's page lies) nothing maps, and above it every gap the maps show
    can be taken (LTP's stack_clash fills them all)."""
    r = sh("mount -t proc proc /proc; su user -s /bin/sh -c /t/bin/t_gapfill")
    out = r.stdout.decode()
    assert "a page below mmap_min_addr: EPERM\n" in out, out
    assert "refused: 0\n" in out and out.endswith("done\n"), out
