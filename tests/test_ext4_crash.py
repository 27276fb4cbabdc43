"""Crashes of a journalled ext4/ext3 mount: umlpy killed at a random instant.

Each seeded run boots a guest that mounts a fresh image and writes (small
and big files, appends, renames over old names, unlinks, mkdir/rmdir),
printing a record each time an fsync or sync has returned, and always
holding one unlinked file open (an orphan the replay must free); the host
SIGKILLs umlpy at a seeded instant, then (1) replays the journal by
mounting the image with the driver and `e2fsck -fn` must find it clean,
(2) every record printed before the kill must hold: a file fsynced has
the content it had, the appended file is at least as long as when it was
fsynced and holds nothing but what was appended, and (3) e2fsck's own
replay of the same crashed image gives the same tree.

`CRASH_SEEDS=N` runs N seeds of each variant instead of the default.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, UMLPY, copy_image
from test_ext4 import DIR, REG, fsck, mkfs, mount
from umlpy.block.device import BlockDevice
from umlpy.fs.ext4 import mount_ext4

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="e2fsprogs missing")

SEEDS = int(os.environ.get("CRASH_SEEDS", "0"))

# name: (fs type, mke2fs options, mount options, seeds by default)
VARIANTS = {
    "ext4": ("ext4", [], "", 8),
    "ext4-commit1": ("ext4", [], "-o commit=1", 4),
    "ext4-1k-small-journal": ("ext4", ["-b", "1024", "-J", "size=1"], "", 4),
    "ext4-nocsum": ("ext4", ["-O", "^metadata_csum,^64bit"], "", 4),
    "ext3": ("ext3", [], "", 4),
    "ext4-orphan_file": ("ext4", ["-O", "orphan_file"], "", 4),
}

WORKLOAD = r"""
mount -t {fstype} {mopts} /dev/ubdb /mnt || exit 1
mkdir /mnt/w && cd /mnt/w || exit 1
echo go
i=0
while :; do
  d=d$((i % 5))
  mkdir -p $d
  exec 3<>$d/o$i; rm $d/o$i; echo open $i >&3
  printf 'small %d\n' $i | dd of=$d/s$i conv=fsync 2>/dev/null && echo "S $d/s$i $i"
  printf 'line %d\n' $i >> app
  if [ $((i % 3)) = 0 ]; then sync app && echo "A $(wc -c < app)"; fi
  if [ $((i % 4)) = 1 ]; then
    dd if=/dev/urandom of=$d/b$i.tmp bs=16k count=$((1 + i % 23)) 2>/dev/null
    mv $d/b$i.tmp $d/b$i && sync && echo "F $d/b$i $(md5sum $d/b$i)"
  fi
  echo junk$i > $d/j$i; mv $d/j$i $d/r$((i % 4)); rm -f $d/s$((i - 2)).gone
  mkdir $d/e$i; rmdir $d/e$((i - 3)) 2>/dev/null
  dd if=/dev/zero of=z bs=32k count=$((i % 11)) 2>/dev/null; mv z z$((i % 2))
  i=$((i + 1))
done
"""


def runs() -> list[tuple[str, int]]:
    return [(v, seed) for v, spec in VARIANTS.items() for seed in range(SEEDS or spec[3])]


def crash(img: Path, fstype: str, mopts: str, seed: int) -> list[str]:
    """Run the workload on img and SIGKILL umlpy at a seeded instant; the
    complete lines it printed."""
    script = WORKLOAD.format(fstype=fstype, mopts=mopts)
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
                          PATH_ENV, f"ubdb={img}", "--", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"go\n"
        time.sleep(random.Random(seed).uniform(0.2, 2.5))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        out = p.stdout.read()
        p.wait()
    return [ln.decode() for ln in out.split(b"\n")[:-1]]


def tree(img: Path, into: Path) -> dict[str, bytes]:
    """Every regular file of the image's /w, by path, as debugfs reads it."""
    into.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump /w {into}", str(img)], check=True,
                   capture_output=True)
    root = into / "w"
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*"))
            if f.is_file()}


def check_records(lines: list[str], files: dict[str, bytes]) -> None:
    """Every record's promise holds in files."""
    app = files.get("app", b"")
    expect_app = b"".join(b"line %d\n" % k for k in range(app.count(b"\n") + 1))
    assert expect_app.startswith(app), "the appended file holds what was never appended"
    for ln in lines:
        kind, *args = ln.split()
        if kind == "S":
            assert files.get(args[0]) == b"small %s\n" % args[1].encode(), ln
        elif kind == "F":
            assert hashlib.md5(files[args[0]]).hexdigest() == args[1], ln
        elif kind == "A":
            assert len(app) >= int(args[0]), ln


@pytest.mark.parametrize("variant,seed", runs())
def test_kill_mid_workload_is_replayed_clean(tmp_path: Path, variant: str, seed: int) -> None:
    fstype, mkfs_opts, mopts, _ = VARIANTS[variant]
    img = mkfs(tmp_path / "fs.img", "64M", *mkfs_opts, fstype=fstype)
    lines = crash(img, fstype, mopts, seed)
    theirs = tmp_path / "theirs.img"
    copy_image(img, theirs)
    mount(img, name=fstype).unmount()       # our replay
    fsck(img)
    ours = tree(img, tmp_path / "ours")
    check_records(lines, ours)
    r = subprocess.run(["e2fsck", "-fy", str(theirs)], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    assert tree(theirs, tmp_path / "theirs") == ours


# -- every write a possible crash point -------------------------------------------------------
class RecordingDevice(BlockDevice):
    """A disk in memory that logs every write: the image a crash after any
    of them leaves (a SIGKILL keeps every write the host had taken) is the
    image before plus a prefix of the log."""

    def __init__(self, image: bytes) -> None:
        super().__init__(len(image), False)
        self.data = bytearray(image)
        self.writes: list[tuple[int, bytes]] = []

    def _read(self, off: int, n: int) -> bytes:
        return bytes(self.data[off:off + n])

    def _write(self, off: int, data: bytes) -> None:
        self.check(off, len(data), True)
        self.data[off:off + len(data)] = data
        self.writes.append((off, bytes(data)))


def driver_workload(fs, rnd: random.Random, dev: RecordingDevice) -> list[list]:
    """Random changes through the driver; [from, until, path, contents] of
    each file synced: a crash after `from` writes and before `until` (the
    start of the commit that deletes it, or never) must find it intact."""
    root = fs.root
    dirs = [root.create(b"d%d" % k, DIR, 0, 0) for k in range(3)]
    app = root.create(b"app", REG, 0, 0)
    done: list[list] = []
    for i in range(80):
        d = rnd.randrange(3)
        op = rnd.random()
        if op < 0.3:
            data = rnd.randbytes(rnd.choice([100, 5000, 70_000, 400_000]))
            dirs[d].create(b"k%d" % i, REG, 0, 0).write(0, data)
            fs.sync()
            done.append([len(dev.writes), None, f"d{d}/k{i}", data])
        elif op < 0.4:
            app.write(app.size(), b"line %d\n" % i)
            if rnd.random() < 0.5:
                fs.sync()
        elif op < 0.55:
            f = dirs[d].create(b"t%d" % i, REG, 0, 0)
            f.write(0, rnd.randbytes(rnd.randrange(1, 300_000)))
            dirs[d].rename(b"t%d" % i, dirs[(d + 1) % 3], b"r%d" % (i % 4), 0)
        elif op < 0.65:
            names = [n for n, _, _ in dirs[d].entries() if n.startswith(b"r")]
            if names:
                dirs[d].unlink(rnd.choice(names))
        elif op < 0.75:
            e = dirs[d].create(b"e%d" % i, DIR, 0, 0)
            e.create(b"x", REG, 0, 0).write(0, b"x" * 5000)
            if rnd.random() < 0.5:
                e.unlink(b"x")
                dirs[d].rmdir(b"e%d" % i)
        elif op < 0.9:
            live = [r for r in done if r[1] is None]
            if live:
                # its blocks are free once the unlink commits, not before
                rec = rnd.choice(live)
                dd, name = rec[2].encode().split(b"/")
                root.lookup(dd).unlink(name)
                dirs[d].create(b"n%d" % i, REG, 0, 0).write(0, rnd.randbytes(len(rec[3])))
                rec[1] = len(dev.writes)
                fs.sync()
        else:
            fs.commit()                 # the commit interval's
    return done


@pytest.mark.parametrize("fstype,opts", [("ext4", []), ("ext4", ["-b", "1024", "-J", "size=1"]),
                                         ("ext3", [])])
def test_crash_after_any_write_is_replayed_clean(tmp_path: Path, fstype: str, opts: list[str]) -> None:
    """The driver's own writes cut after a random prefix (many cuts land
    inside a commit or a checkpoint): replayed by the driver, e2fsck -fn
    clean, every file synced before the cut intact."""
    base = mkfs(tmp_path / "base.img", "32M", *opts, fstype=fstype).read_bytes()
    dev = RecordingDevice(base)
    fs = mount_ext4(dev, False, fstype)
    rnd = random.Random(len(opts))
    done = driver_workload(fs, rnd, dev)
    cuts = sorted(rnd.sample(range(len(dev.writes) + 1), min(25, len(dev.writes) + 1)))
    img, applied = bytearray(base), 0
    path = tmp_path / "cut.img"
    for cut in cuts:
        for off, data in dev.writes[applied:cut]:
            img[off:off + len(data)] = data
        applied = cut
        path.write_bytes(img)
        mount(path, name=fstype).unmount()
        fsck(path)
        fs2 = mount(path, read_only=True, name=fstype)
        for at, until, name, data in done:
            if at <= cut and (until is None or cut <= until):
                d, f = name.encode().split(b"/")
                assert fs2.root.lookup(d).lookup(f).read(0, len(data) + 1) == data, (cut, name)
        fs2.unmount()


def test_commit_interval_commits_without_a_sync(tmp_path: Path) -> None:
    """commit=1: a file written and never synced is in the journal once the
    interval has passed (kjournald's periodic commit), so a kill keeps it."""
    img = mkfs(tmp_path / "fs.img", "32M")
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
                          PATH_ENV, f"ubdb={img}", "--", "-c",
                          "mount -t ext4 -o commit=1 /dev/ubdb /mnt && mkdir /mnt/d && "
                          "echo data > /mnt/d/f && sleep 4 && echo slept && sleep 100"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"slept\n"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    mount(img).unmount()
    fsck(img)
    fs = mount(img, read_only=True)
    assert fs.root.lookup(b"d").lookup(b"f").read(0, 100) == b"data\n"
    fs.unmount()
