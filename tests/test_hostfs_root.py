"""A host directory as the root filesystem: `rootfstype=hostfs
rootflags=DIR`, as UML boots it, within umlpy's hostfs confinement
(hostfs=<dir> must open the tree; DIR is taken inside it).  The root is
built from rootfs/tree's busybox; escapes out of it are tried with the
hostfs escape suite's arena (canaries around the confinement)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import IMAGE, PATH_ENV, TREE, UMLPY
import test_hostfs_escape
from test_hostfs_escape import Arena

arena = test_hostfs_escape.arena       # the escape suite's fixture: as the host user and as nobody


def make_root(d) -> None:
    """A busybox root: /bin/busybox with its applets, and the usual directories."""
    (d / "bin").mkdir(parents=True)
    shutil.copy2(TREE / "bin" / "busybox", d / "bin" / "busybox")
    applets = subprocess.run([str(d / "bin" / "busybox"), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", d / "bin" / a)
    for sub in ("dev", "proc", "tmp", "etc"):
        (d / sub).mkdir()


def boot_root(arena: Arena, script: str, *params: str, root=None) -> subprocess.CompletedProcess:
    cmd = arena.prefix + [str(UMLPY), str(IMAGE), "quiet", "rootfstype=hostfs", "init=/bin/sh", PATH_ENV,
                          *params, "--", "-c", script]
    return subprocess.run(cmd, capture_output=True, timeout=120, env={"PATH": os.environ.get("PATH", "/bin")})


@pytest.fixture
def rooted(arena: Arena) -> Arena:
    make_root(arena.jail)
    return arena


def test_boots_and_writes_through_with_rw(rooted):
    rooted.seal()
    r = boot_root(rooted, "mount -t proc proc /proc; grep ' / ' /proc/mounts; echo hi > /made; ls -1 /; "
                  "cat /made", f"hostfs={rooted.jail}", "rw")
    out, _ = rooted.check(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert out == "/dev/root / hostfs rw 0 0\nbin\ndev\netc\nmade\nproc\ntmp\nhi\n", out
    assert (rooted.jail / "made").read_text() == "hi\n"


def test_read_only_by_default(rooted):
    rooted.seal()
    r = boot_root(rooted, "touch /new 2>&1; mkdir /d 2>&1; echo done", f"hostfs={rooted.jail}")
    out, _ = rooted.check(r.stdout, r.stderr)
    assert out == "touch: /new: Read-only file system\nmkdir: can't create directory '/d': " \
                  "Read-only file system\ndone\n"
    assert not (rooted.jail / "new").exists() and not (rooted.jail / "d").exists()


def test_rootflags_picks_a_directory_inside_and_root_dev_root_is_accepted(arena):
    make_root(arena.jail / "guest")
    arena.seal()
    r = boot_root(arena, "ls -1 /; echo ok > /here", f"hostfs={arena.jail}", "root=/dev/root",
                  "rootflags=/guest", "rw")
    out, log = arena.check(r.stdout, r.stderr)
    assert out == "bin\ndev\netc\nproc\ntmp\n" and r.returncode == 0, log
    assert (arena.jail / "guest" / "here").read_text() == "ok\n"


def test_without_hostfs_param_the_root_is_refused(rooted):
    rooted.seal()
    r = boot_root(rooted, "echo booted", f"rootflags={rooted.jail}")
    out, log = rooted.check(r.stdout, r.stderr)
    assert out == "" and r.returncode == 1
    assert log.strip().endswith("Kernel panic - not syncing: VFS: Unable to mount root fs: rootfstype=hostfs "
                                "needs hostfs=<dir> to open the host directory (hostfs=/ opens the whole "
                                "host, as UML)"), log


@pytest.mark.parametrize("flags", ["..", "/../outside", "up", "abs", "sub/../../outside", "missing"])
def test_rootflags_leading_out_is_refused(rooted, flags):
    (rooted.jail / "sub").mkdir()
    os.symlink("..", rooted.jail / "up")
    os.symlink(rooted.outside, rooted.jail / "abs")
    rooted.seal()
    r = boot_root(rooted, "echo booted; ls /", f"hostfs={rooted.jail}", f"rootflags={flags}")
    out, log = rooted.check(r.stdout, r.stderr)
    assert out == "" and r.returncode == 1
    why = "ENOENT" if flags == "missing" else "EPERM"
    assert f"Unable to mount root fs: hostfs rootflags={flags} inside hostfs={rooted.jail}: {why}" in log


def test_dot_dot_and_symlinks_out_of_the_root_stay_inside(rooted):
    """`..` of the root is the root; host symlinks pointing out resolve in
    the guest's namespace, where decoys stand."""
    j = rooted.jail
    for name, target in (("abs", rooted.outside), ("rel", "../outside"), ("up", ".."),
                         ("absfile", rooted.outside / "secret"), ("relfile", "../outside/secret")):
        os.symlink(target, j / name)
    rooted.seal()
    script = (f"mkdir -p {rooted.outside} /outside; for d in {rooted.outside} /outside; do "
              "echo decoy > $d/secret; done; cd /..; pwd -P; ls /../.. /.. /up/.. | sort -u | tr '\\n' ' '; echo; "
              "cat /abs/secret /rel/secret /up/outside/secret /absfile /relfile /../secret* /../outside/secret "
              "/up/../outside/secret 2>&1; echo pwned >> /absfile; echo pwned > /rel/new; "
              "cd /up/up/..; pwd -P; ls -la /../ >/dev/null; echo done")
    r = boot_root(rooted, script, f"hostfs={j}", "rw")
    out, _ = rooted.check(r.stdout, r.stderr)
    assert out.startswith("/\n") and out.endswith("/\ndone\n"), out
    assert out.count("decoy") == 5 + 2, out
