"""Shared fixtures: the kernel image, the images rootfs/ builds, booting guests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hostview import hang_report

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "linux-um"
CPIO = ROOT / "rootfs" / "busybox.cpio"
PROGS = ROOT / "rootfs" / "cache" / "progs"
BUSYBOX = ROOT / "rootfs" / "cache" / "busybox"
TREE = ROOT / "rootfs" / "tree"
UMLPY = Path(sys.executable).parent / "umlpy"
PATH_ENV = "PATH=/bin:/sbin:/usr/bin:/usr/sbin"
# UMLPY_TEST_TRAP=ptrace boots every guest of boot() on the ptrace path
# alone (.ci/run runs a subset so); a test's own seccomp= comes later and wins
TRAP_PARAMS = ["seccomp=off"] if os.environ.get("UMLPY_TEST_TRAP") == "ptrace" else []


def _ensure_built() -> None:
    if not IMAGE.exists():
        subprocess.run([str(UMLPY), "build", "-o", str(IMAGE)], check=True)
    if not CPIO.exists():
        subprocess.run([str(ROOT / "rootfs" / "build.sh")], check=True)


_ensure_built()


def boot(*params: str, init_args: list[str] | None = None, stdin=subprocess.DEVNULL,
         input: bytes | None = None, timeout: float = 120, image: Path | str = IMAGE,
         prefix: list[str] | None = None, direct: bool = False) -> subprocess.CompletedProcess:
    """Boot the busybox initramfs with params; returns the finished umlpy."""
    cmd = list(prefix or [])
    cmd += [str(image)] if direct else [str(UMLPY), str(image)]
    cmd += [f"initrd={CPIO}", *TRAP_PARAMS, *params]
    if init_args is not None:
        cmd += ["--", *init_args]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            report = hang_report(p.pid, cmd)
            p.kill()
            out, err = p.communicate()
            raise Hung(cmd, timeout, out, err, report) from None
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


class Hung(subprocess.TimeoutExpired):
    """A guest outlived its test's timeout: what it was doing then
    (tests/hostview.py) is part of the failure."""

    def __init__(self, cmd, timeout, output, stderr, report: str) -> None:
        super().__init__(cmd, timeout, output, stderr)
        self.report = report

    def __str__(self) -> str:
        tail = (self.output or b"")[-2000:].decode(errors="replace")
        return f"{super().__str__()}\n--- its output's end\n{tail}\n{self.report}"


def sh(script: str, *params: str, **kw) -> subprocess.CompletedProcess:
    """Run a shell command line as init (sh -c) in a quiet guest."""
    return boot("quiet", "init=/bin/sh", PATH_ENV, *params, init_args=["-c", script], **kw)


@pytest.fixture(scope="module")
def debian() -> Path:
    """The Debian 12 image rootfs/debian.sh builds (its directory: root.img, tree)."""
    r = subprocess.run([str(ROOT / "rootfs" / "debian.sh")], capture_output=True, text=True)
    if r.returncode == 2:
        pytest.skip(f"the Debian image cannot be built here: {r.stderr.strip()}")
    if r.returncode != 0:
        pytest.fail(f"rootfs/debian.sh failed: {r.stderr[-2000:]}")
    return Path(r.stdout.strip())


@pytest.fixture
def scratch() -> Path:
    """A directory every user can reach (t_caps runs children as other uids),
    unlike tmp_path inside pytest's private base directory."""
    d = Path(tempfile.mkdtemp(prefix="umlpy-scratch-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def user_xattrs_work(d: Path) -> bool:
    """Whether the host filesystem under d takes user xattrs (native runs of t_xattr need them)."""
    probe = d / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def copy_image(src: Path | str, dst: Path | str) -> Path:
    """Copy a disk image with its holes: shutil.copy writes every hole out
    as zeros, and a suite run copying the 450 MB busybox image for each test
    once filled the CI machine's disk."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        off = 0
        while off < size:
            try:
                data = os.lseek(fi.fileno(), off, os.SEEK_DATA)
            except OSError:          # ENXIO: only a hole is left
                break
            end = os.lseek(fi.fileno(), data, os.SEEK_HOLE)
            while data < end:
                data += os.copy_file_range(fi.fileno(), fo.fileno(), end - data, data, data)
            off = end
        fo.truncate(size)
    shutil.copymode(src, dst)
    return Path(dst)


def install_with_libs(prog: Path, root: Path, dest: str) -> None:
    """Copy the host program prog into the tree root at dest, with the
    shared libraries (and loader) ldd names for it at their own paths."""
    target = root / dest.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(prog, target)
    libs = subprocess.run(["ldd", str(prog)], capture_output=True, text=True).stdout
    for word in libs.split():
        if word.startswith("/"):
            dst = root / word.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(word).resolve(), dst)


def native(args: list[str], cwd: Path | None = None, env: dict | None = None) -> bytes:
    return subprocess.run(args, capture_output=True, timeout=120, cwd=cwd,
                          env=env if env is not None else {"PATH": os.environ.get("PATH", "/bin")}).stdout


def make_traversable(path: Path) -> None:
    """Let another host user reach path (o+x on it and every parent)."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            os.chmod(p, mode | 0o001)


NOBODY = 65534


def as_nobody() -> list[str]:
    """The command prefix that runs umlpy as the unprivileged host user
    nobody when the suite runs as root (and nothing otherwise): the venv,
    its python, the image and the initramfs made reachable for it."""
    if os.geteuid() != 0:
        return []
    for p in (UMLPY.resolve(), Path(os.path.realpath(UMLPY.parent / "python")), IMAGE, CPIO):
        make_traversable(p.parent)
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
