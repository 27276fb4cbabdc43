"""Dynamically linked programs: the host's own Debian python3 and its
libraries on an ext2 disk, run in the guest and natively, outputs compared."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IMAGE, TREE, UMLPY, install_with_libs

PYTHON = Path("/usr/bin/python3.11")

SCRIPT = r"""
import concurrent.futures, json, mmap, os, subprocess, sys, tempfile, threading
print(sys.version_info[:2])
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(sorted(ex.map(lambda x: x * x, range(8))))
out = subprocess.run(["/bin/sh", "-c", "echo from a child"], capture_output=True, text=True)
print(out.stdout.strip(), out.returncode)
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "f")
    with open(p, "wb") as f:
        f.write(b"x" * 10000)
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[0:5] = b"hello"
    print(open(p, "rb").read(7))
print(json.dumps({"threads": threading.active_count()}))
"""


@pytest.fixture(scope="module")
def python_disk(tmp_path_factory) -> Path:
    if not PYTHON.exists():
        pytest.skip(f"{PYTHON} (Debian's python3.11) is not installed")
    root = tmp_path_factory.mktemp("pyroot") / "tree"
    shutil.copytree(TREE, root, symlinks=True)
    install_with_libs(PYTHON, root, "/usr/bin")
    shutil.copytree("/usr/lib/python3.11", root / "usr/lib/python3.11", symlinks=True,
                    ignore=shutil.ignore_patterns("test", "__pycache__", "idlelib", "tkinter",
                                                  "ensurepip", "lib2to3", "site-packages", "dist-packages"))
    img = root.parent / "py.img"
    # the test programs' tree grows with every program: room for it and half again
    used = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    size = max(300, used * 3 // 2 >> 20)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", str(root), str(img), f"{size}M"],
                   check=True, capture_output=True)
    return img


def test_python3_dynamic_with_threads(python_disk, tmp_path):
    want = subprocess.run([str(PYTHON), "-I", "-c", SCRIPT], capture_output=True, cwd="/").stdout
    got = subprocess.run([str(UMLPY), str(IMAGE), "quiet", f"ubd0={python_disk}", "rw",
                          "init=/usr/bin/python3.11", "--", "-I", "-c", SCRIPT],
                         capture_output=True, timeout=300)
    assert got.stdout.decode() == want.decode(), got.stderr.decode()[-3000:]
    assert subprocess.run(["e2fsck", "-fn", str(python_disk)], capture_output=True).returncode == 0
