"""hostfs escape suite: a guest (root inside, on any host user) must never
reach a host file outside the confinement, by `..`, by symlinks pointing
out, by a middle component swapped for a symlink, or by host-side renames
and symlink swaps racing its walks (docs/security.md, "hostfs").

Every case plants canaries outside the confinement: a secret's content and
file names carrying a random token, in the confinement's parent and in a
directory beside it.  The token must never show in anything the guest or
the kernel printed, and nothing outside may change on the host.  Each case
runs as the invoking host user and, when that is root, as nobody too, with
everything around the confinement writable by that user, so that only the
confinement stands between the guest and the canaries.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, NOBODY, PATH_ENV, UMLPY, as_nobody, sh

RENAME_EXCHANGE = 2
AT_FDCWD = -100


@dataclass
class Arena:
    """top/ holds the confinement (jail/) and the canaries around it."""
    top: Path
    prefix: list[str]
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    before: dict[str, tuple] = field(default_factory=dict)

    @property
    def jail(self) -> Path:
        return self.top / "jail"

    @property
    def outside(self) -> Path:
        return self.top / "outside"

    def plant(self) -> None:
        secret = f"{self.token} host secret\n"
        (self.top / f"secret-{self.token}").write_text(secret)        # beside the confinement
        for d in (self.outside, self.outside / "sub", self.outside / f"leak-{self.token}", self.jail):
            d.mkdir(parents=True, exist_ok=True)
        for f in ("secret", "file", "sub/file", "sub/secret", f"leak-{self.token}/inner"):
            (self.outside / f).write_text(secret)

    def seal(self) -> None:
        """Hand everything to the host user the guest runs as, then take
        the snapshot of the outside that `check` compares with."""
        if self.prefix:
            for p in [self.top, *self.top.rglob("*")]:
                os.lchown(p, NOBODY, NOBODY)
        self.before = self.outside_state()

    def outside_state(self) -> dict[str, tuple]:
        """Every name below top except the confinement: its inode, type,
        mode, owner, links, size, mtime and content or link target."""
        out = {}
        for dirpath, dirs, files in os.walk(self.top):
            d = Path(dirpath)
            if d == self.top:
                dirs.remove("jail")
            for name in [".", *dirs, *files]:
                p = d / name
                st = p.lstat()
                body = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
                out[str(p)] = (st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size,
                               st.st_mtime_ns, body)
        return out

    def run(self, script: str, *params: str) -> tuple[str, str]:
        """The guest's output and the kernel log of script run as init."""
        r = sh(script, *params, prefix=self.prefix)
        return self.check(r.stdout, r.stderr)

    def check(self, stdout: bytes, stderr: bytes) -> tuple[str, str]:
        """Nothing leaked into what was printed, nothing changed outside."""
        out, log = stdout.decode(errors="replace"), stderr.decode(errors="replace")
        leaks = [line for line in (out + log).splitlines() if self.token in line]
        assert not leaks, leaks
        assert self.outside_state() == self.before
        return out, log


@pytest.fixture(params=["host user", "nobody"])
def arena(request, scratch) -> Arena:
    if request.param == "nobody":
        if os.geteuid() != 0:
            pytest.skip("the suite already runs as an unprivileged host user")
        prefix = as_nobody()
    else:
        prefix = []
    a = Arena(scratch, prefix)
    a.plant()
    return a


def test_without_hostfs_param_every_mount_is_refused(arena):
    arena.seal()
    out, log = arena.run(f"for o in '' '-o /' '-o {arena.outside}' '-o {arena.top}'; do "
                         "mount none /mnt -t hostfs $o && echo MOUNTED; done; ls -a1 /mnt; echo done")
    assert out == "mount: permission denied (are you root?)\n" * 4 + ".\n..\ndone\n"   # busybox's EPERM
    refusals = [line for line in log.splitlines() if "hostfs: mount refused" in line]
    assert len(refusals) == 4
    assert all(line.endswith("hostfs: mount refused: no hostfs=<dir> on the command line (hostfs=<dir> "
                             "allows mounts of <dir> and below, hostfs=/ the whole host)") for line in refusals)


def test_hostfs_slash_opens_the_whole_host(arena):
    """The control: with hostfs=/ the canary is visible, so the checks
    above and below would see a leak."""
    arena.seal()
    r = sh(f"mount none /mnt -t hostfs -o {arena.outside} && cat /mnt/secret", "hostfs=/", prefix=arena.prefix)
    assert r.stdout.decode() == f"{arena.token} host secret\n"


def test_mount_data_stays_beneath_the_confinement(arena):
    (arena.jail / "sub").mkdir()
    os.symlink("..", arena.jail / "up")
    os.symlink(arena.outside, arena.jail / "abs")
    arena.seal()
    tries = ["/..", "..", "../outside", "/sub/../..", "sub/../../outside", "up", "up/outside", "abs",
             str(arena.outside), str(arena.top)]
    out, log = arena.run(f"for o in {' '.join(tries)}; do mount none /mnt -t hostfs -o $o 2>/dev/null && "
                         "{ echo mounted $o; ls -a /mnt; cat /mnt/secret; umount /mnt; }; done; "
                         "mount none /mnt -t hostfs -o sub/../sub && echo mounted sub; cd /mnt && cd .. && pwd; "
                         "ls -a /mnt/..; cat /mnt/../secret* /mnt/../outside/secret; echo done",
                         f"hostfs={arena.jail}")
    assert [line for line in out.splitlines() if line.startswith("mounted")] == ["mounted sub"]
    assert log.count(f"leads out of hostfs={arena.jail}") == 8      # all but the two absent names
    assert "\n/\n" in out and out.endswith("done\n")


def test_symlinks_pointing_out_are_followed_in_the_guest(arena):
    """Host symlinks are the guest's: absolute, relative, deep and `..`
    links all resolve in the guest's namespace, where decoys stand."""
    j = arena.jail
    (j / "deep" / "er").mkdir(parents=True)
    for name, target in (("abs", arena.outside), ("rel", "../outside"), ("deep/er/rel", "../../../outside"),
                         ("up", ".."), ("absfile", arena.outside / "secret"), ("relfile", "../outside/secret")):
        os.symlink(target, j / name)
    arena.seal()
    script = (f"mkdir -p {arena.outside} /outside && for d in {arena.outside} /outside; do "
              "echo decoy > $d/secret; done; mount none /mnt -t hostfs || exit 1; "
              "for L in abs rel deep/er/rel up/outside; do d=/mnt/$L; "
              "ls -la $d/; cat $d/secret $d/file $d/sub/file $d/leak-*/inner; "
              "echo pwned > $d/new; echo pwned >> $d/file; mkdir $d/newdir; touch $d/sub/file; "
              "chmod 777 $d/sub; ln $d/file /mnt/hard; mv $d/sub/secret /mnt/moved; rm -f $d/sub/file; "
              "cd $d && ls -la . sub && cd /; done; "
              "for F in absfile relfile; do f=/mnt/$F; cat $f; echo pwned >> $f; truncate -s 0 $f; chmod 600 $f; "
              "chown 1:1 $f; touch $f; ln $f /mnt/hard2; done; "
              "ls -laR /mnt; find -L /mnt; readlink /mnt/abs; echo done")
    out, _ = arena.run(script, f"hostfs={arena.jail}")
    assert "decoy" in out and out.endswith("done\n")


def test_directory_swapped_for_a_symlink_by_another_mount(arena):
    """Two mounts of one host directory: through the second, the guest
    swaps a directory the first has cached (and is the shell's cwd) for a
    host symlink pointing out; the first must not follow it on the host."""
    arena.seal()
    rounds = [str(arena.outside), "../outside", "../../outside"]
    script = ("mkdir /a /b; mount none /a -t hostfs && mount none /b -t hostfs || exit 1; i=0; "
              f"for T in {' '.join(rounds)}; do i=$((i+1)); rm -f /b/d; "
              "mkdir -p /a/d/sub && echo inside > /a/d/sub/file && cd /a/d/sub && cat file && "
              "mv /b/d /b/d.$i && ln -s $T /b/d && "
              "{ ls -la; cat secret file; echo pwned > new; echo pwned >> file; mkdir nd; ln -s x sl; "
              "mv file file2; touch secret; chmod 700 .; ls -la /a/d/sub/ /a/d/; cat /a/d/sub/secret; "
              "cd .. && { ls -la; cat secret sub/secret; echo pwned > new; }; }; cd /; done; "
              "ls -laR /a; echo done")
    out, _ = arena.run(script, f"hostfs={arena.jail}")
    assert out.count("inside\n") == len(rounds) and out.endswith("done\n")
    assert os.readlink(arena.jail / "d") == rounds[-1]
    assert all((arena.jail / f"d.{i}" / "sub" / "file").read_text() == "inside\n" for i in (1, 2, 3))


class Flipper(threading.Thread):
    """A host thread exchanging each directory with a symlink pointing out
    (renameat2 RENAME_EXCHANGE: every instant, the name is one or the
    other), and two directories with each other, until stopped."""

    def __init__(self, pairs: list[tuple[Path, Path]]) -> None:
        super().__init__(daemon=True)
        self.pairs = [(bytes(a), bytes(b)) for a, b in pairs]
        self.stop = threading.Event()
        self.flips = 0
        self.errors: list[int] = []
        self.renameat2 = ctypes.CDLL(None, use_errno=True).renameat2

    def run(self) -> None:
        while not self.stop.is_set():
            for a, b in self.pairs:
                if self.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
                    self.flips += 1
                else:
                    self.errors.append(ctypes.get_errno())


def test_host_flips_directories_and_symlinks_while_the_guest_works(arena):
    """A host thread swaps directories for symlinks leading out (absolute,
    relative, a middle component) and directories for each other in a
    tight loop, while the guest lists, reads, creates, renames and holds
    its cwd inside them."""
    j, out_dir = arena.jail, arena.outside
    links = {"flip": str(out_dir), "rflip": "../outside", "mid/deep": "../../outside"}
    for name, target in links.items():
        (j / name / "sub").mkdir(parents=True)
        for f in ("file", "sub/file"):
            (j / name / f).write_text("inside\n")
        os.symlink(target, j / f"{name}.x")
    for name in ("r1", "r2"):
        (j / name / "sub").mkdir(parents=True)
        (j / name / "file").write_text("inside\n")
    arena.seal()
    flipper = Flipper([(j / n, j / f"{n}.x") for n in links] + [(j / "r1", j / "r2")])
    script = ("mount none /mnt -t hostfs || exit 1; "
              "( until cd /mnt/flip/sub || cd /mnt/flip.x/sub; do :; done 2>/dev/null; k=0; while [ $k -lt 1500 ]; do "
              "for f in *; do echo \"cwd $f\"; done; read -r l < file && echo \"cwd $l\"; echo y > h; "
              "k=$((k+1)); done ) & "
              "i=0; while [ $i -lt 25 ]; do for p in flip rflip mid/deep r1; do d=/mnt/$p; "
              "for f in $d/* $d/sub/*; do echo \"$f\"; done; "
              "read -r l < $d/file && echo \"$l\"; read -r l < $d/sub/file && echo \"$l\"; "
              "echo w$i > $d/n$i && mv $d/n$i $d/sub/m$i; mkdir $d/d$i && rmdir $d/d$i; "
              "cd $d/sub && { for f in *; do echo \"$f\"; done; read -r l < file && echo \"$l\"; echo x > c$i; }; "
              "cd /; done; ls -laR /mnt; i=$((i+1)); done 2>&1; wait; echo done")
    env = {"PATH": os.environ.get("PATH", "/bin")}
    p = subprocess.Popen(arena.prefix + [str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
                                         PATH_ENV, f"hostfs={j}", "--", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    flipper.start()
    try:
        stdout, stderr = p.communicate(timeout=300)
    finally:
        flipper.stop.set()
        flipper.join()
        p.kill()
        p.wait()
    out, _ = arena.check(stdout, stderr)
    assert not flipper.errors and flipper.flips > 1000, (flipper.flips, set(flipper.errors))
    assert out.endswith("done\n"), (out[-3000:], stderr.decode()[-3000:])
    cwd = out.count("cwd inside\n")
    assert cwd > 10 and out.count("inside\n") - cwd > 3      # the walks did reach inside too
