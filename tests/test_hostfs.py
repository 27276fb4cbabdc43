"""hostfs: host directories mounted in the guest, as UML's `-t hostfs`."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, PROGS, TREE, UMLPY, native, sh


def _guest(script: str, *params: str) -> subprocess.Popen:
    """A guest running script as init, to talk to while it runs."""
    return subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV,
                             *params, "--", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _tree(root: Path) -> dict[str, str]:
    """Every name under root: file contents, link targets, `dir`."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = p.read_text()
    return out


def test_guest_changes_land_on_the_host(scratch):
    (scratch / "old").write_text("from the host\n")
    script = (f"mount none /mnt -t hostfs -o {scratch} && cd /mnt && "
              "cat old && echo one > new && echo two >> new && "
              "printf 0123456789 > cut && truncate -s 4 cut && "
              "mkdir -p d/e && mv new d/e/moved && ln d/e/moved hard && ln -s d/e/moved soft && "
              "cat soft && mkdir gone && rmdir gone && echo x > rm && rm rm && "
              "mv d dd && cat dd/e/moved && chmod 640 hard && stat -c '%a %h' dd/e/moved && "
              "echo keep > tmp && exec 3<tmp && rm tmp && cat <&3 && grep hostfs /proc/mounts")
    r = sh("mount -t proc proc /proc; " + script, "hostfs=/")
    assert r.stdout.decode() == ("from the host\none\ntwo\none\ntwo\n640 2\nkeep\n"
                                 f"none /mnt hostfs rw,relatime,{scratch} 0 0\n"), r.stderr.decode()
    assert _tree(scratch) == {"old": "from the host\n", "cut": "0123", "dd": "dir", "dd/e": "dir",
                              "dd/e/moved": "one\ntwo\n", "hard": "one\ntwo\n", "soft": "-> d/e/moved"}
    assert (scratch / "hard").stat().st_ino == (scratch / "dd/e/moved").stat().st_ino
    assert (scratch / "hard").stat().st_mode & 0o777 == 0o640


def test_host_changes_show_in_the_guest(scratch):
    (scratch / "f").write_text("before\n")
    p = _guest("mount none /mnt -t hostfs; cat /mnt/f; ls /mnt; echo ready; "
               "while [ ! -e /mnt/go ]; do sleep 0.05; done; cat /mnt/f; ls -1 /mnt; stat -c %s /mnt/f",
               f"hostfs={scratch}")
    try:
        assert p.stdout.readline() == b"before\n"
        assert p.stdout.readline() == b"f\n"
        assert p.stdout.readline() == b"ready\n"
        (scratch / "f").write_text("after, longer\n")
        (scratch / "new").write_text("")
        (scratch / "go").write_text("")
        out, _ = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert out == b"after, longer\nf\ngo\nnew\n14\n"


# t_tmpfile is left out: hostfs has no O_TMPFILE (EOPNOTSUPP, as Linux's)
@pytest.mark.parametrize("prog", ["t_stat", "t_getdents", "t_dupfcntl", "t_mmap", "t_locks"])
def test_c_program_on_hostfs(prog, scratch):
    """The same program natively on a host dir and in the guest on another
    host dir through hostfs: identical output."""
    (scratch / "native").mkdir()
    (scratch / "guest").mkdir()
    want = native([str(PROGS / prog), str(scratch / "native")])
    got = sh(f"mount none /mnt -t hostfs -o /guest; /t/bin/{prog} /mnt; true", f"hostfs={scratch}")
    assert want.rstrip().endswith(b"done")
    assert got.stdout.decode() == want.decode()


def test_hostfs_param_confines_mounts(scratch):
    top = scratch / "top"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "f").write_text("inside\n")
    (scratch / "secret").write_text("host secret\n")
    os.symlink(scratch / "secret", top / "abs")         # absolute: the guest's /...
    os.symlink("../secret", top / "rel")                  # relative: out of the mount, in the guest
    r = sh(f"mkdir -p /tmp/a /tmp/b /tmp/c {scratch}; echo guest abs > {scratch}/secret; "
           "echo guest rel > /tmp/secret; mount none /tmp/a -t hostfs -o / && ls -1 /tmp/a; "
           "mount none /tmp/b -t hostfs -o /sub && cat /tmp/b/f; "
           "mount none /tmp/c -t hostfs -o /../.. 2>/dev/null || echo refused; "
           "cat /tmp/a/abs /tmp/a/rel", f"hostfs={top}")
    assert r.stdout.decode() == "abs\nrel\nsub\ninside\nrefused\nguest abs\nguest rel\n"


def test_append_option(scratch):
    (scratch / "f").write_text("abc")
    sh("mount none /mnt -t hostfs && printf XY | dd of=/mnt/f conv=notrunc 2>/dev/null", f"hostfs={scratch},append")
    assert (scratch / "f").read_text() == "abcXY"


def test_guest_holds_no_host_fds(scratch):
    (scratch / "f").write_text("data\n" * 1000)
    p = _guest(f"mount none /mnt -t hostfs -o {scratch}; exec 3</mnt/f 4>>/mnt/f; "
               "sleep 100 </mnt/f & echo started; wait", "hostfs=/")
    try:
        assert p.stdout.readline() == b"started\n"
        for task in Path(f"/proc/{p.pid}/task").iterdir():
            for g in (task / "children").read_text().split():
                # an injected open-mmap-close (exec of sleep) may hold one for a moment
                deadline = time.monotonic() + 5
                while os.listdir(f"/proc/{g}/fd") and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert os.listdir(f"/proc/{g}/fd") == [], g
    finally:
        p.kill()
        p.wait()


def test_kernel_fds_do_not_grow_with_directories_or_mounts(scratch):
    """hostfs holds no host fd per directory, and an unmount gives back the
    mount's: with fewer fds than either needs otherwise, a guest walks a
    tree of 420 directories and mounts and unmounts 250 times.  (The
    initramfs's files are tmpfs files, each a host memfd: the limit is
    what they take plus less than either workload would.)"""
    files = sum(1 for f in TREE.rglob("*") if f.is_file() and not f.is_symlink())
    for a in range(20):
        for b in range(20):
            (scratch / f"a{a}" / f"b{b}").mkdir(parents=True)
    r = sh("mount none /mnt -t hostfs && find /mnt -type d | wc -l && ls -laR /mnt >/dev/null && echo listed && "
           "umount /mnt && i=0; while [ $i -lt 250 ] && mount none /mnt -t hostfs -o a1 && umount /mnt; do "
           "i=$((i+1)); done; echo $i", f"hostfs={scratch}", prefix=["prlimit", f"--nofile={files + 100}:{files + 100}"])
    assert r.stdout == b"421\nlisted\n250\n", r.stderr.decode()[-2000:]
