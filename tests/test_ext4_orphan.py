"""The orphan list and the orphan file (fs/ext4/orphan.py).

A file unlinked while open, an O_TMPFILE inode and a truncate in progress
are recorded on disk in the transaction that makes them orphans; when
umlpy is killed before they are freed, the next mount frees them
(truncates them to i_size) after the journal replay, as Linux's
ext4_orphan_cleanup, with its log lines.  e2fsck on the crashed image
sees the same orphans (it clears them as it replays), and `e2fsck -fn`
finds the image clean after our cleanup.  Each with the superblock's
list (s_last_orphan through i_dtime), with the orphan_file feature and on
ext3.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, UMLPY, copy_image, sh
from test_ext4 import REG, debugfs, fsck, mkfs, mount
from arch_um.hostfile import HostFile
from umlpy.block.device import ImageDevice
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext4 import mount_ext4
from umlpy.kernel.errors import KernelError
from umlpy.abi import errno as E
from umlpy.fs.ext4 import layout as X

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="e2fsprogs missing")

# name: (fs type, mke2fs options)
VARIANTS = {
    "list": ("ext4", ["-O", "^orphan_file"]),
    "orphan_file": ("ext4", ["-O", "orphan_file"]),
    "orphan_file-4k": ("ext4", ["-O", "orphan_file", "-b", "4096"]),
    "ext3": ("ext3", []),
}


def make(tmp_path: Path, variant: str, size: str = "32M") -> tuple[Path, str]:
    fstype, opts = VARIANTS[variant]
    return mkfs(tmp_path / "fs.img", size, *opts, fstype=fstype), fstype


def counts(img: Path) -> tuple[int, int]:
    """(free blocks, free inodes) as the superblock says."""
    out = subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True, text=True).stdout
    get = lambda key: int(re.search(rf"^{key}:\s+(\d+)", out, re.M).group(1))    # noqa: E731
    return get("Free blocks"), get("Free inodes")


def e2fsck_replay(img: Path, tmp_path: Path) -> str:
    """What e2fsck does with a copy of the crashed image: its journal
    replay (which processes the orphans it then finds), then a full check."""
    theirs = tmp_path / "theirs.img"
    copy_image(img, theirs)
    r = subprocess.run(["e2fsck", "-fy", str(theirs)], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r.stdout


def killed(img: Path, fstype: str, script: str) -> None:
    """Run script on img mounted at /mnt; SIGKILL umlpy once it printed go."""
    full = f"mount -t {fstype} /dev/ubdb /mnt && cd /mnt || exit 1\n{script}\necho go\nsleep 100\n"
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
                          PATH_ENV, f"ubdb={img}", "--", "-c", full],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"go\n"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.stdout.read()
        p.wait()


def next_mount_log(img: Path, fstype: str, opts: str = "") -> str:
    """The orphan lines of the kernel log of the next boot's mount (and umount)."""
    r = sh(f"mount -t {fstype} {opts} /dev/ubdb /mnt && umount /mnt; dmesg | grep -i -e orphan -e truncate",
           f"ubdb={img}")
    return r.stdout.decode()


@pytest.mark.parametrize("variant", VARIANTS)
def test_unlinked_open_file_is_freed_after_a_crash(tmp_path: Path, variant: str) -> None:
    img, fstype = make(tmp_path, variant)
    fresh = counts(img)
    killed(img, fstype, "dd if=/dev/urandom of=f bs=64k count=4 2>/dev/null; exec 3<>f; rm f; "
                        "dd if=/dev/zero bs=64k count=8 >&3 2>/dev/null; sync")
    ino = 13 if variant.startswith("orphan_file") else 12
    assert f"Clearing orphaned inode {ino} " in e2fsck_replay(img, tmp_path)
    log = next_mount_log(img, fstype)
    assert "EXT4-fs (ubdb): 1 orphan inode deleted" in log
    fsck(img)
    assert counts(img) == fresh == counts(tmp_path / "theirs.img")
    sb = X.Superblock(img.read_bytes()[1024:2048])
    assert sb.last_orphan == 0
    assert not sb.feature_ro_compat & X.RO_COMPAT_ORPHAN_PRESENT
    assert not sb.feature_incompat & L.INCOMPAT_RECOVER


@pytest.mark.parametrize("variant", VARIANTS)
def test_closed_and_unmounted_orphans_leave_nothing(tmp_path: Path, variant: str) -> None:
    """The orphan record goes at the last close, and at the unmount of the
    machine's stop with the other file still open."""
    img, fstype = make(tmp_path, variant)
    fresh = counts(img)
    r = sh(f"mount -t {fstype} /dev/ubdb /mnt && cd /mnt && echo a > a && echo b > b && "
           "exec 3<a 4<b && rm a b && sync && exec 3<&- && sync; echo rc=$?",
           f"ubdb={img}")
    assert b"rc=0" in r.stdout, r.stdout + r.stderr
    fsck(img)
    assert counts(img) == fresh


def crashed_truncate(img: Path, fstype: str, keep: int) -> int:
    """The state a crash in the middle of a long truncate leaves (ext4_setattr's
    first transaction committed: the inode on the orphan list at its new size,
    its blocks not freed yet); returns the inode number."""
    fs = mount(img, name=fstype)
    f = fs.root.create(b"big", REG, 0, 0)
    f.write(0, os.urandom(400_000))
    fs.sync()
    fs.orphans.add(f)
    f.set_size(keep)
    fs.sync()
    return f.ino            # killed here: never unmounted


@pytest.mark.parametrize("variant", VARIANTS)
def test_truncate_in_progress_is_finished_at_mount(tmp_path: Path, variant: str) -> None:
    img, fstype = make(tmp_path, variant)
    fresh = counts(img)
    ino = crashed_truncate(img, fstype, 5000)
    theirs = e2fsck_replay(img, tmp_path)
    assert f"Truncating orphaned inode {ino} " in theirs
    log = next_mount_log(img, fstype)
    assert "EXT4-fs (ubdb): 1 truncate cleaned up" in log
    fsck(img)
    assert counts(img)[1] == fresh[1] - 1
    fs = mount(img, read_only=True, name=fstype)
    f = fs.root.lookup(b"big")
    bs = fs.block_size
    assert f.size() == 5000 and f.blocks() * 512 == -(-5000 // bs) * bs
    fs.unmount()


def linux_list(tmp_path: Path) -> tuple[Path, int, int]:
    """An orphan list as Linux leaves it: two inodes, one unlinked, one
    being truncated (immutable: that stops no truncate at mount), chained
    through i_dtime; (image, their numbers)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "gone").write_bytes(os.urandom(100_000))
    (src / "cut").write_bytes(os.urandom(100_000))
    img = mkfs(tmp_path / "fs.img", "16M", "-O", "^orphan_file", src=src)
    gone = int(debugfs(img, "stat /gone").split()[1])
    cut = int(debugfs(img, "stat /cut").split()[1])
    cmds = ["unlink /gone", f"sif <{gone}> links_count 0", f"sif <{gone}> dtime {cut}",
            f"sif <{cut}> size 1000", f"sif <{cut}> flags 0x80010", f"ssv last_orphan {gone}"]
    for c in cmds:
        debugfs(img, c, write=True)
    return img, gone, cut


def test_linux_style_orphan_list_made_by_debugfs(tmp_path: Path) -> None:
    """Such a list is left alone on a write-protected disk and processed
    at a read-write mount."""
    img, gone, cut = linux_list(tmp_path)
    theirs = e2fsck_replay(img, tmp_path)
    assert f"Clearing orphaned inode {gone} " in theirs and f"Truncating orphaned inode {cut} " in theirs
    before = img.read_bytes()
    log = sh("mount -t ext4 -o ro /dev/ubdb /mnt && ls /mnt; dmesg | grep -i orphan",
             f"ubdbr={img}").stdout.decode()
    assert "cut" in log and "EXT4-fs (ubdb): write access unavailable, skipping orphan cleanup" in log
    assert img.read_bytes() == before
    fs = mount(img)
    fs.unmount()
    fsck(img)
    fs = mount(img, read_only=True)
    f = fs.root.lookup(b"cut")
    assert f.size() == 1000 and f.blocks() <= 8
    assert fs.root.lookup(b"gone") is None
    fs.unmount()


@pytest.mark.parametrize("variant", ["list", "orphan_file"])
def test_read_only_mount_cleans_up_as_linux(tmp_path: Path, variant: str) -> None:
    """Linux cleans orphans up on a read-only mount too ("orphan cleanup on
    readonly fs"), leaving the journal empty; not on a write-protected disk."""
    img, fstype = make(tmp_path, variant)
    fresh = counts(img)
    fs = mount(img)
    f = fs.root.create(b"t", REG, 0, 0)
    f.write(0, b"x" * 100_000)
    f.open_count += 1
    fs.root.unlink(b"t")
    fs.sync()
    crashed = img.read_bytes()
    log = next_mount_log(img, fstype, "-o ro")
    assert "orphan cleanup on readonly fs" in log and "1 orphan inode deleted" in log
    fsck(img)
    assert counts(img) == fresh
    img.write_bytes(crashed)
    fs = mount_ext4(ImageDevice(HostFile(str(img), writable=True), read_only=False), True, fstype)
    assert fs.root.lookup(b"t") is None
    fs.unmount()
    fsck(img)


@pytest.mark.parametrize("variant", ["list", "orphan_file"])
def test_tmpfile_is_an_orphan_until_linked(tmp_path: Path, variant: str) -> None:
    img, fstype = make(tmp_path, variant)
    fs = mount(img)
    t1 = fs.root.tmpfile(0o600, 0, 0)
    t1.write(0, b"kept\n")
    t2 = fs.root.tmpfile(0o600, 0, 0)
    t2.write(0, b"dropped\n")
    t1.open_count += 1
    t2.open_count += 1
    fs.sync()
    fs.root.link(b"kept", t1)
    fs.sync()
    theirs = e2fsck_replay(img, tmp_path)
    assert f"Clearing orphaned inode {t2.ino} " in theirs and f"inode {t1.ino} " not in theirs
    fs = mount(img)
    fs.unmount()
    fsck(img)
    fs = mount(img, read_only=True)
    assert fs.root.lookup(b"kept").read(0, 100) == b"kept\n"
    fs.unmount()


def test_unprocessed_orphans_refuse_remount_rw(tmp_path: Path) -> None:
    """A filesystem with errors keeps its orphans at a read-only mount, and
    then may not become read-write (ext4_remount's EINVAL)."""
    img, gone, cut = linux_list(tmp_path)
    debugfs(img, "ssv state 3", write=True)
    fs = mount_ext4(ImageDevice(HostFile(str(img), writable=True), read_only=False), True)
    assert fs.sb.last_orphan == gone
    with pytest.raises(KernelError) as ei:
        fs.set_read_only(False)
    assert ei.value.errno == E.EINVAL
    fs.unmount()
