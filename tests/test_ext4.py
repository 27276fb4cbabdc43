"""ext4 (and ext3) read-write: images made by mke2fs, judged by e2fsck and debugfs.

Module tests drive Ext4Fs through the VFS Inode API over feature
variations; guest tests mount images in a booted kernel (and boot an ext4
root); every write path ends with `e2fsck -fn` clean.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from arch_um.hostfile import HostFile
from conftest import BUSYBOX, IMAGE, PATH_ENV, PROGS, UMLPY, copy_image, sh
from umlpy.abi import errno as E
from umlpy.block.device import ImageDevice
from umlpy.fs.ext2 import Ext2Error
from umlpy.fs.ext2 import layout as L
from umlpy.fs.ext4 import mount_ext4
from umlpy.fs.ext4 import layout as X
from umlpy.fs.jbd2 import format as F
from umlpy.kernel.errors import KernelError

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="e2fsprogs missing")

REG, DIR = 0o100644, 0o040755
MiB = 1 << 20
VARIANTS = {
    "default": [],
    "nocsum": ["-O", "^metadata_csum"],
    "gdtcsum": ["-O", "^metadata_csum,uninit_bg"],
    "no64bit": ["-O", "^64bit"],
    "noflex": ["-O", "^flex_bg"],
    "nojournal": ["-O", "^has_journal"],
    "csumseed": ["-O", "metadata_csum_seed"],
    "1k": ["-b", "1024"],
    "i128": ["-I", "128"],
}


# -- helpers -------------------------------------------------------------------------
def mkfs(path: Path, size: str = "64M", *opts: str, fstype: str = "ext4",
         src: Path | None = None) -> Path:
    cmd = ["mke2fs", "-q", "-F", "-t", fstype, *opts]
    if src is not None:
        cmd += ["-d", str(src)]
    subprocess.run([*cmd, str(path), size], check=True, capture_output=True)
    return path


def mount(path: Path, read_only: bool = False, name: str = "ext4"):
    dev = ImageDevice(HostFile(str(path), writable=not read_only), read_only=read_only)
    return mount_ext4(dev, read_only, name)


def fsck(path: Path) -> None:
    r = subprocess.run(["e2fsck", "-fn", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def debugfs(path: Path, cmd: str, write: bool = False) -> bytes:
    args = ["debugfs", *(["-w"] if write else []), "-R", cmd, str(path)]
    return subprocess.run(args, capture_output=True, check=True).stdout


def tree_depth(path: Path, name: str) -> int:
    """The extent tree's depth as debugfs's `ex` lists it (its Level column)."""
    out = debugfs(path, f"ex {name}").decode()
    levels = [int(m.group(2)) for m in re.finditer(r"^\s*(\d+)/\s*(\d+)", out, re.M)]
    return levels[0] if levels else 0


def errno_of(fn, *args) -> int:
    with pytest.raises(KernelError) as ei:
        fn(*args)
    return ei.value.errno


def pattern(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def finish(fs, path: Path) -> None:
    fs.unmount()
    fsck(path)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    (d / "dir").mkdir(parents=True)
    (d / "hello").write_bytes(b"hello ext4\n")
    (d / "data").write_bytes(pattern(300_000))
    for i in range(20):
        (d / "dir" / f"f{i}").write_bytes(b"%d\n" % i)
    (d / "short").symlink_to("hello")
    (d / "long").symlink_to("/" + "x" * 200)
    return d


# -- mount and read --------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_read_write_variants(tmp_path: Path, src: Path, variant: str) -> None:
    path = mkfs(tmp_path / "fs.img", "64M", *VARIANTS[variant], src=src)
    fs = mount(path)
    r = fs.root
    assert fs.name == "ext4" and fs.statfs()["type"] == 0xEF53
    assert r.lookup(b"hello").read(0, 100) == b"hello ext4\n"
    assert r.lookup(b"data").read(0, 10**6) == pattern(300_000)
    assert r.lookup(b"short").readlink() == b"hello"
    assert r.lookup(b"long").readlink() == b"/" + b"x" * 200
    assert sorted(n for n, _, _ in r.lookup(b"dir").entries()) == sorted(
        b"f%d" % i for i in range(20))
    # write paths: create, append, overwrite, truncate, rename, unlink, mkdir, rmdir, symlinks
    f = r.create(b"new", REG, 0, 0)
    f.write(0, pattern(3 * MiB, 2))
    f.write(3 * MiB, b"appended")
    f.write(100, b"overwritten")
    r.lookup(b"data").truncate(5000)
    r.lookup(b"data").truncate(70000)
    d = r.create(b"sub", DIR, 0, 0)
    for i in range(150):
        d.create(b"name-%03d" % i, REG, 0, 0).write(0, b"%d" % i)
    for i in range(0, 150, 3):
        d.unlink(b"name-%03d" % i)
    d.rename(b"name-001", r, b"moved", 0)
    r.lookup(b"dir").unlink(b"f3")
    r.create(b"gone", DIR, 0, 0)
    r.rmdir(b"gone")
    r.symlink(b"slow", b"t" * 300, 0, 0)
    r.symlink(b"sfast", b"fast", 0, 0)
    r.unlink(b"hello")
    finish(fs, path)
    want = bytearray(pattern(3 * MiB, 2) + b"appended")
    want[100:111] = b"overwritten"
    assert debugfs(path, "cat /new") == bytes(want)
    assert debugfs(path, "cat /data") == pattern(300_000)[:5000] + bytes(65000)
    assert debugfs(path, "cat /moved") == b"1"
    assert debugfs(path, "cat /sub/name-100") == b"100"
    assert b"name-003" not in debugfs(path, "ls /sub")
    stat = debugfs(path, "stat /new").decode()
    assert "Flags: 0x80000" in stat                     # EXT4_EXTENTS_FL on new files
    if variant == "i128":
        assert "crtime" not in stat
    else:
        assert "crtime" in stat
    assert "Flags: 0x0" in debugfs(path, "stat /sfast").decode()
    # and it reads back through the driver after a remount
    fs = mount(path, read_only=True)
    assert fs.root.lookup(b"new").read(0, 4 * MiB) == bytes(want)
    assert fs.root.lookup(b"slow").readlink() == b"t" * 300
    fs.unmount()


def dumpe2fs(path: Path) -> str:
    return subprocess.run(["dumpe2fs", "-h", str(path)], capture_output=True, text=True).stdout


def journal_start(path: Path) -> int:
    return int(re.search(r"Journal start:\s+(\d+)", dumpe2fs(path)).group(1))


@pytest.mark.parametrize("fstype", ["ext4", "ext3"])
def test_metadata_is_journalled_and_unmount_empties_the_journal(tmp_path: Path, fstype: str) -> None:
    """Mounted read-write: needs_recovery, the state left clean, nothing
    home before a commit; a copy taken after a commit (a crash before the
    checkpoint) is replayed alike by e2fsck and by the driver; unmount
    checkpoints, empties the journal and clears the flag."""
    path = mkfs(tmp_path / "fs.img", "32M", fstype=fstype)
    before = path.read_bytes()
    fs = mount(path, name=fstype)
    hdr = dumpe2fs(path)
    assert "needs_recovery" in hdr and "Filesystem state:         clean" in hdr
    assert journal_start(path) == 0
    d = fs.root.create(b"d", DIR, 0, 0)
    d.create(b"f", REG, 0, 0).write(0, pattern(50_000))
    fs.root.symlink(b"s", b"t" * 100, 0, 0)
    # nothing of the metadata is home yet: only data blocks changed
    fs.sync(durable=False)
    assert journal_start(path) == 0 and b"d" not in debugfs(path, "ls /").split()
    fs.sync()
    assert journal_start(path) != 0
    crashed = tmp_path / "crash.img"
    copy_image(path, crashed)
    fs.root.lookup(b"d").unlink(b"f")
    finish(fs, path)
    hdr = dumpe2fs(path)
    assert "needs_recovery" not in hdr and journal_start(path) == 0
    assert debugfs(path, "ls /d").count(b"f") == 0 and path.read_bytes() != before
    # the crash copy: e2fsck's replay and ours give the same files
    theirs = tmp_path / "theirs.img"
    copy_image(crashed, theirs)
    r = subprocess.run(["e2fsck", "-fy", str(theirs)], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    fsck(theirs)
    fs = mount(crashed, name=fstype)
    assert fs.root.lookup(b"d").lookup(b"f").read(0, 10**6) == pattern(50_000)
    fs.unmount()
    fsck(crashed)
    for img in (crashed, theirs):
        assert debugfs(img, "cat /d/f") == pattern(50_000)
        assert debugfs(img, "stat /s").count(b"Size: 100") == 1


# -- extent trees ------------------------------------------------------------------------
def test_sparse_file_past_4g_and_tree_depth(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img")
    fs = mount(path)
    f = fs.root.create(b"sparse", REG, 0, 0)
    for i in range(6):      # extents far apart: more than the inode's 4 slots
        f.write(i << 30, b"chunk %d" % i)
    f.write((5 << 30) + (1 << 29), b"past 4 GiB")
    assert f.read((5 << 30) + (1 << 29), 10) == b"past 4 GiB"
    assert f.read(1 << 20, 10) == bytes(10)
    finish(fs, path)
    assert tree_depth(path, "/sparse") >= 1
    assert "Size: %d" % ((5 << 30) + (1 << 29) + 10) in debugfs(path, "stat /sparse").decode()
    fs = mount(path)
    f = fs.root.lookup(b"sparse")
    assert f.read(3 << 30, 7) == b"chunk 3"
    f.truncate(2 << 30)          # back to 3 extents: the tree shrinks into the inode
    finish(fs, path)
    assert tree_depth(path, "/sparse") == 0


@pytest.mark.parametrize("block", [1024, 4096])
def test_fragmented_file_grows_an_index_block_and_shrinks(tmp_path: Path, block: int) -> None:
    path = mkfs(tmp_path / "fs.img", "64M", "-b", str(block))
    fs = mount(path)
    f = fs.root.create(b"frag", REG, 0, 0)
    n = 400 if block == 1024 else 1500     # more extents than 4 leaves hold
    for i in range(n):
        f.write(2 * i * block, b"%06d" % i)
    f.write(2 * n * block, b"end")
    finish(fs, path)
    assert tree_depth(path, "/frag") == 2
    data = debugfs(path, "cat /frag")
    assert all(data[2 * i * block:2 * i * block + 6] == b"%06d" % i for i in range(n))
    fs = mount(path)
    f = fs.root.lookup(b"frag")
    for i in range(0, n, 2):             # fill every other hole: extents merge
        f.write((2 * i + 1) * block, b"fill")
    f.truncate(n * block)
    finish(fs, path)
    fs = mount(path)
    f = fs.root.lookup(b"frag")
    assert f.read(block, 4) == b"fill" and f.read(2 * block, 6) == b"000001"
    f.truncate(3 * block)
    finish(fs, path)
    assert tree_depth(path, "/frag") == 0
    fs = mount(path)
    fs.root.unlink(b"frag")
    finish(fs, path)


def test_unwritten_extents_read_as_zeros_and_split(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "64M", "-b", "4096")
    debugfs(path, "write /dev/null pre", write=True)
    debugfs(path, "fallocate /pre 0 99", write=True)
    debugfs(path, "sif /pre size 409600", write=True)
    assert "Uninit" in debugfs(path, "ex /pre").decode()
    fsck(path)
    fs = mount(path)
    f = fs.root.lookup(b"pre")
    assert f.read(0, 409600) == bytes(409600)
    f.write(50 * 4096 + 10, b"in the middle")
    finish(fs, path)
    assert debugfs(path, "cat /pre") == bytes(50 * 4096 + 10) + b"in the middle" + \
        bytes(409600 - 50 * 4096 - 23)
    out = debugfs(path, "ex /pre").decode()
    assert out.count("Uninit") == 2


def test_disk_full_leaves_a_clean_fs(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "16M", "-O", "^has_journal")
    fs = mount(path)
    f = fs.root.create(b"fill", REG, 0, 0)
    off = 0
    with pytest.raises(KernelError) as ei:
        while True:
            off += f.write(off, bytes(MiB))
    assert ei.value.errno == E.ENOSPC
    g = fs.root.create(b"frag", REG, 0, 0)
    assert errno_of(g.write, 0, b"x") == E.ENOSPC
    f.truncate(1 * MiB)
    for i in range(300):
        g.write(2 * i * 1024, b"y")
    finish(fs, path)


# -- directories ------------------------------------------------------------------------------
def test_htree_directory_stays_indexed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "big").mkdir(parents=True)
    for i in range(600):
        (src / "big" / f"entry-number-{i}").write_bytes(b"%d" % i)
    path = mkfs(tmp_path / "h.img", "32M", "-b", "1024", src=src)
    subprocess.run(["e2fsck", "-fyD", str(path)], capture_output=True)
    fsck(path)
    assert "Flags: 0x81000" in debugfs(path, "stat /big").decode()
    fs = mount(path)
    big = fs.root.lookup(b"big")
    assert len(big.entries()) == 600
    assert big.lookup(b"entry-number-517").read(0, 10) == b"517"
    big.create(b"newcomer", REG, 0, 0)
    big.unlink(b"entry-number-3")
    finish(fs, path)
    assert "Flags: 0x81000" in debugfs(path, "stat /big").decode()
    assert b"Root node dump" in debugfs(path, "htree_dump /big")
    assert debugfs(path, "cat /big/entry-number-599") == b"599"


def test_dir_nlink_of_an_indexed_directory() -> None:
    """ext4_inc_count/dec_count on an htree directory: past 65000 it is 1."""
    from umlpy.fs.ext4.inode import Ext4Inode

    class Dx(Ext4Inode):
        def __init__(self) -> None:
            self.nlink, self.flags = X.EXT4_LINK_MAX, L.FL_INDEX

        def is_dx(self) -> bool:
            return True
    d = Dx()
    assert not d._dir_links_full()
    d._dir_link(1)
    assert d.nlink == 1
    d._dir_link(1)
    assert d.nlink == 1
    d._dir_link(-1)
    assert d.nlink == 1


# -- features, journal, corruption ----------------------------------------------------------------
def test_unsupported_incompat_is_refused_untouched(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-O", "encrypt")
    before = hashlib.sha256(path.read_bytes()).digest()
    for ro in (False, True):
        with pytest.raises(Ext2Error) as ei:
            mount(path, read_only=ro)
        assert "encrypt" in str(ei.value)
    assert hashlib.sha256(path.read_bytes()).digest() == before


def test_unknown_ro_compat_mounts_read_only(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-O", "quota")
    before = hashlib.sha256(path.read_bytes()).digest()
    with pytest.raises(Ext2Error) as ei:
        mount(path)
    assert "quota" in str(ei.value)
    fs = mount(path, read_only=True)
    assert fs.root.lookup(b"lost+found").is_dir
    fs.unmount()
    assert hashlib.sha256(path.read_bytes()).digest() == before


def test_journal_recovery_at_mount(tmp_path: Path) -> None:
    """needs_recovery: the journal is replayed (an empty log here; the
    replay of real logs is tests/test_jbd2.py's) and the flag cleared.  A
    journal that has a log start without the flag is refused (Linux wipes
    it instead)."""
    path = mkfs(tmp_path / "fs.img", "32M")
    debugfs(path, "feature needs_recovery", write=True)
    mount(path).unmount()
    assert b"needs_recovery" not in debugfs(path, "stats")
    fsck(path)
    path = mkfs(tmp_path / "fs2.img", "32M")
    jblk = int(debugfs(path, "bmap <8> 0").split()[0])
    raw = bytearray(path.read_bytes())
    raw[jblk * 1024 + F.JournalSuperblock.FIELDS["start"]:jblk * 1024 + F.JournalSuperblock.FIELDS["start"] + 4] = (1).to_bytes(4, "big")
    path.write_bytes(raw)
    with pytest.raises(Ext2Error) as ei:
        mount(path)
    assert "recovery" in str(ei.value)
    assert path.read_bytes() == raw


def test_ext3_type_and_ext2_images(tmp_path: Path) -> None:
    e3 = mkfs(tmp_path / "e3.img", "32M", fstype="ext3")
    fs = mount(e3, name="ext3")
    assert fs.name == "ext3"
    fs.root.create(b"f", REG, 0, 0).write(0, pattern(100_000))
    finish(fs, e3)
    assert debugfs(e3, "cat /f") == pattern(100_000)
    assert "Flags: 0x0" in debugfs(e3, "stat /f").decode()     # no extents on ext3
    e4 = mkfs(tmp_path / "e4.img", "32M")
    with pytest.raises(Ext2Error) as ei:
        mount(e4, name="ext3")
    assert "extent" in str(ei.value)
    e2 = mkfs(tmp_path / "e2.img", "32M", fstype="ext2")
    fs = mount(e2)
    fs.root.create(b"g", DIR, 0, 0).create(b"h", REG, 0, 0).write(0, b"on ext2")
    finish(fs, e2)
    assert debugfs(e2, "cat /g/h") == b"on ext2"


def _extent_block(path: Path, name: str) -> int:
    out = debugfs(path, f"stat {name}").decode()
    return int(re.search(r"\(ETB0\):(\d+)", out).group(1))


def test_corruption_is_reported_not_raised(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-b", "1024", "-O", "^has_journal")
    fs = mount(path)
    f = fs.root.create(b"frag", REG, 0, 0)
    for i in range(10):
        f.write(2 * i * 1024, b"z")
    fs.root.create(b"plain", REG, 0, 0).write(0, b"p")
    finish(fs, path)
    etb = _extent_block(path, "/frag")
    raw = bytearray(path.read_bytes())
    raw[etb * 1024 + 20] ^= 0xFF            # an extent entry: checksum no longer matches
    path.write_bytes(raw)
    fs = mount(path)
    f = fs.root.lookup(b"frag")
    assert errno_of(f.read, 0, 10) == E.EBADMSG
    assert fs.root.lookup(b"plain").read(0, 1) == b"p"
    fs.unmount()
    raw[etb * 1024:etb * 1024 + 2] = b"\0\0"    # bad magic, without metadata_csum
    path.write_bytes(raw)
    subprocess.run(["tune2fs", "-O", "^metadata_csum", str(path)], capture_output=True)
    fs = mount(path)
    assert errno_of(fs.root.lookup(b"frag").read, 0, 10) == E.EUCLEAN
    fs.unmount()
    path2 = tmp_path / "sb.img"
    sb = bytearray(mkfs(path2, "32M").read_bytes())
    sb[1024 + 0x78] ^= 1                    # the volume name: superblock checksum fails
    path2.write_bytes(sb)
    assert errno_of(mount, path2) == E.EBADMSG


# -- guests -------------------------------------------------------------------------------
GUEST_WORK = (
    "mount -t ext4 /dev/ubdb /mnt && cd /mnt && "
    "dd if=/dev/urandom of=big bs=64k count=64 2>/dev/null && md5sum big > big.md5 && "
    "echo one > f && echo two >> f && mkdir -p d/e && mv f d/e/g && "
    "dd if=/dev/zero of=sparse bs=4k count=1 seek=1310720 2>/dev/null && "
    "i=0; while [ $i -lt 40 ]; do echo $i > d/n$i; i=$((i+1)); done && rm d/n7 && "
    "truncate -s 100000 big2 2>/dev/null; cp big big2 && truncate -s 1000000 big2 && "
    "cat d/e/g && cd / && umount /mnt && echo done"
)


@pytest.mark.parametrize("variant", ["default", "1k"])
def test_guest_workload(tmp_path: Path, variant: str) -> None:
    path = mkfs(tmp_path / "g.img", "128M", *VARIANTS[variant])
    r = sh(GUEST_WORK, f"ubdb={path}")
    assert r.stdout.endswith(b"one\ntwo\ndone\n"), r.stdout + r.stderr
    assert b"Traceback" not in r.stderr
    fsck(path)
    big = debugfs(path, "cat /big")
    assert len(big) == 64 * 65536
    assert debugfs(path, "cat /big.md5").startswith(hashlib.md5(big).hexdigest().encode())
    assert debugfs(path, "cat /big2") == big[:1000000]
    assert debugfs(path, "cat /d/e/g") == b"one\ntwo\n"
    assert tree_depth(path, "/sparse") >= 0
    assert "Size: %d" % ((1310720 + 1) * 4096) in debugfs(path, "stat /sparse").decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="the native side needs CAP_LINUX_IMMUTABLE and a tmpfs")
def test_guest_chattr_flags_as_native(tmp_path: Path, scratch: Path) -> None:
    """t_chattr on ext4 in the guest says what it says on a host tmpfs:
    the VFS enforces the flags the same way for every filesystem."""
    want = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs t {scratch} && "
                           f"exec {PROGS / 't_chattr'} {scratch}"], capture_output=True, timeout=60).stdout
    assert want.endswith(b"done\n")
    path = mkfs(tmp_path / "c.img", "32M")
    r = sh("mount -t ext4 /dev/ubdb /mnt && /t/bin/t_chattr /mnt && umount /mnt", f"ubdb={path}")
    assert r.stdout == want, r.stderr
    fsck(path)


def test_a_mapped_unlinked_file_keeps_its_inode(tmp_path: Path, scratch: Path) -> None:
    """t_mapunlink on ext4 as natively: a file mapped, unlinked and closed
    stays allocated (its number not given again) until its last
    unmapping, and the image is clean afterwards (the orphan freed)."""
    want = subprocess.run([str(PROGS / "t_mapunlink"), str(scratch)], capture_output=True, timeout=60).stdout
    assert want.endswith(b"done\n")
    path = mkfs(tmp_path / "m.img", "32M")
    r = sh("mount -t ext4 /dev/ubdb /mnt && /t/bin/t_mapunlink /mnt && umount /mnt", f"ubdb={path}")
    assert r.stdout == want, r.stderr
    fsck(path)


def test_guest_corrupt_extent_block_is_an_error(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "root.img", "32M", "-b", "1024", "-O", "^has_journal")
    fs = mount(path)
    f = fs.root.create(b"frag", REG, 0, 0)
    for i in range(10):
        f.write(2 * i * 1024, b"z")
    fs.root.create(b"ok", REG, 0, 0).write(0, b"fine\n")
    finish(fs, path)
    etb = _extent_block(path, "/frag")
    raw = bytearray(path.read_bytes())
    raw[etb * 1024 + 20] ^= 0xFF
    path.write_bytes(raw)
    r = sh("mount -t ext4 /dev/ubdb /mnt; cat /mnt/ok; cat /mnt/frag; echo rc=$?; umount /mnt",
           f"ubdb={path}")
    assert b"fine\n" in r.stdout and b"rc=1" in r.stdout, r.stdout + r.stderr
    assert b"Traceback" not in r.stderr and b"checksum" in r.stderr


@pytest.mark.parametrize("fstype", ["ext4", "ext3"])
def test_ext4_root_is_detected_and_boots(tmp_path: Path, fstype: str) -> None:
    """Without rootfstype= each type is tried silently (MS_SILENT), ext3
    first as in Linux, so that an ext3 root is journalled (not taken by
    ext2's driver) and a quiet boot of an ext4 root prints the command's
    output alone; a mount -t ext3 of an image without a journal is
    refused, silently too (busybox mounts with MS_SILENT, and ext4 would
    take the image)."""
    tree = tmp_path / "tree"
    for d in ("bin", "dev", "proc", "tmp", "mnt"):
        (tree / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, tree / "bin" / "busybox")
    for name in ("sh", "echo", "cat", "mount", "grep", "dmesg"):
        (tree / "bin" / name).symlink_to("busybox")
    path = mkfs(tmp_path / "root.img", "32M", fstype=fstype, src=tree)
    e2 = mkfs(tmp_path / "e2.img", "8M", fstype="ext2")
    r = subprocess.run([str(UMLPY), str(IMAGE), f"ubd0={path}", f"ubd1={e2}", "rw", "quiet", PATH_ENV,
                        "init=/bin/sh", "--", "-c",
                        "mount -t proc proc /proc; grep ' / ' /proc/mounts; echo x > /tmp/y; cat /tmp/y; "
                        "mount -t ext3 /dev/ubdb /mnt 2>/dev/null || echo refused; dmesg -c > /tmp/log"],
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.stdout.startswith(f"/dev/root / {fstype} rw".encode()), r.stdout + r.stderr
    assert r.stdout.endswith(b"x\nrefused\n") and b"couldn't" not in r.stderr, r.stdout + r.stderr
    fsck(path)
    assert debugfs(path, "cat /tmp/y") == b"x\n"
    log = debugfs(path, "cat /tmp/log").decode()
    assert ("mounting ext3 file system using the ext4 subsystem" in log) == (fstype == "ext3")
    assert "EXT4-fs (ubda): mounted filesystem with ordered data mode. Quota mode: none." in log
    assert "couldn't" not in log


def test_xattr_blocks_are_checksummed(tmp_path: Path) -> None:
    path = mkfs(tmp_path / "fs.img", "32M", "-I", "128")
    fs = mount(path)
    f = fs.root.create(b"x", REG, 0, 0)
    f.setxattr(b"user.big", b"v" * 600, 0)
    f.setxattr(b"user.small", b"s", 0)
    finish(fs, path)
    assert "File ACL: 0" not in debugfs(path, "stat /x").decode()
    fs = mount(path)
    f = fs.root.lookup(b"x")
    assert f.getxattr(b"user.big") == b"v" * 600
    f.removexattr(b"user.small")
    finish(fs, path)


def _crtime(path: Path, name: str) -> str:
    """debugfs's crtime of name as SEC.NSEC (hex seconds:extra, the epoch bits in extra)."""
    m = re.search(r"crtime: 0x([0-9a-f]+):([0-9a-f]+)", debugfs(path, f"stat {name}").decode())
    lo, extra = int(m.group(1), 16), int(m.group(2), 16)
    sec = lo - (1 << 32 if lo >> 31 else 0) + ((extra & 3) << 32)
    return f"{sec}.{extra >> 2:09d}"


def test_statx_btime(tmp_path: Path, src: Path) -> None:
    """ext4 reports i_crtime as stx_btime when asked and the inode has room for it
    (ext4_getattr); 128-byte inodes, ext2 and tmpfs report none."""
    path = mkfs(tmp_path / "fs.img", "64M", src=src)
    small = mkfs(tmp_path / "small.img", "16M", "-I", "128", src=src)
    e2 = mkfs(tmp_path / "e2.img", "16M", fstype="ext2", src=src)
    r = sh("mount -t ext4 /dev/ubdb /mnt && touch /mnt/new && mkdir /tmp/s /tmp/e && "
           "mount -t ext4 /dev/ubdc /tmp/s && mount -t ext2 /dev/ubdd /tmp/e && "
           "/t/bin/t_btime /mnt/hello /mnt/new /tmp/s/hello /tmp/e/hello /tmp && "
           "umount /tmp/e && umount /tmp/s && umount /mnt",
           f"ubdb={path}", f"ubdc={small}", f"ubdd={e2}")
    out = r.stdout.decode()
    assert out.endswith("done\n") and "unasked" not in out, out + r.stderr.decode()
    lines = dict(line.split(" ", 1) for line in out.splitlines()[:-1])
    assert lines["/mnt/hello"] == "btime " + _crtime(path, "/hello")
    assert lines["/mnt/new"] == "btime " + _crtime(path, "/new")
    assert lines["/tmp/s/hello"] == lines["/tmp/e/hello"] == lines["/tmp"] == "no btime"


def test_statx_dioalign(tmp_path: Path, src: Path) -> None:
    """STATX_DIOALIGN as Linux 6.1 answers it: an ext4 regular file's and a
    block device's are their disk queue's (DMA alignment 512, logical
    block size 512); directories, ext2 and tmpfs say nothing."""
    path = mkfs(tmp_path / "fs.img", "64M", src=src)
    e2 = mkfs(tmp_path / "e2.img", "16M", fstype="ext2", src=src)
    r = sh("mount -t ext4 /dev/ubdb /mnt && mkdir /tmp/e && mount -t ext2 /dev/ubdc /tmp/e && "
           "/t/bin/t_btime -d /mnt/hello /mnt /dev/ubdb /tmp/e/hello /tmp && mount -t sysfs s /sys && "
           "cat /sys/block/ubdb/queue/dma_alignment",
           f"ubdb={path}", f"ubdc={e2}")
    assert r.stdout.decode() == ("/mnt/hello dioalign 512 512\n/mnt no dioalign\n/dev/ubdb dioalign 512 512\n"
                                 "/tmp/e/hello no dioalign\n/tmp no dioalign\ndone\n511\n"), r.stderr.decode()[-2000:]


_ODIRECT = """open file: 0
open directory: EINVAL
open /dev/null: EINVAL
open proc file: EINVAL
open fifo: EINVAL
write 8192: 8192
write 1: EINVAL
write 4096 from buf+1: EINVAL
write 0 from buf+1: 0
pwrite 4096 at 100: EINVAL
pwrite 512 at 512: 512
lseek 0: 0
read 4096: 4096
read 1: EINVAL
read 4096 into buf+8: EINVAL
pread 4096 at 4096: 4096
pread 4096 at 4095: EINVAL
pread 1 at the end: 0
pread 7 past the end: 0
preadv aligned: 1536
preadv one short iovec: EINVAL
pwritev aligned: 1536
pwritev one short iovec: EINVAL
setfl file: 1
setfl /dev/null: EINVAL
setfl pipe: 1
setfl eventfd: EINVAL
"""


def test_o_direct_opens_and_alignment(tmp_path: Path) -> None:
    """O_DIRECT as Linux takes it (t_odirect): an ext4 file opens with it,
    its directory, /dev/null and a proc file do not (EINVAL, F_SETFL too),
    and a transfer's position, buffer and length must be multiples of the
    disk's logical block size; a block device's the same.  Natively too
    when the host's temporary directory is on ext4 (before, every O_DIRECT
    transfer was taken as a buffered one: LTP dio04 and dio10)."""
    path = mkfs(tmp_path / "fs.img", "64M")
    r = sh("mount -t proc p /proc && mount -t ext4 /dev/ubdb /mnt && /t/bin/t_odirect /mnt /dev/ubdb",
           f"ubdb={path}")
    assert r.stdout.decode() == _ODIRECT + ("open device: 0\ndevice pread 4096: 4096\n"
                                            "device pread 4096 at 256: EINVAL\ndevice pread 100: EINVAL\n"
                                            "done\n"), r.stderr.decode()[-2000:]
    host = tmp_path / "native"
    host.mkdir()
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(host)], capture_output=True, text=True).stdout.strip()
    if fstype == "ext2/ext3":       # stat's name for ext4 too
        out = subprocess.run([str(PROGS / "t_odirect"), str(host)], capture_output=True, text=True).stdout
        assert out == _ODIRECT + "done\n"


def _corrupt(path: Path) -> int:
    """d/bad a directory with a bogus mode, d/link an entry naming inode 1
    (fanotify22's corruption); returns d/bad's inode number."""
    debugfs(path, "mkdir d", write=True)
    debugfs(path, "mkdir d/bad", write=True)
    ino = int(re.search(rb"Inode: (\d+)", debugfs(path, "stat d/bad")).group(1))
    debugfs(path, "sif d/bad mode 0xff", write=True)
    debugfs(path, "ln <1> d/link", write=True)
    return ino


def test_errors_reach_fanotify_and_abort_stops_writes(tmp_path: Path) -> None:
    """ext4's errors about its own corruption are FAN_FS_ERROR events for a
    filesystem mark (the first error's object and code, later ones
    counted), as ext4_error_inode and fsnotify_sb_error make them;
    remount,abort reports ESHUTDOWN about no inode and keeps the
    filesystem read-only.  ext2 answers the same lookups EINVAL, as
    ext2_get_inode does."""
    e4 = mkfs(tmp_path / "e4.img", "8M")
    bad = _corrupt(e4)
    e2 = mkfs(tmp_path / "e2.img", "8M", fstype="ext2")
    _corrupt(e2)
    r = sh(f"mkdir /m /m2; mount -t ext4 /dev/ubdb /m && /t/bin/t_fserror /m {bad}; "
           "mount -t ext2 /dev/ubdc /m2 && cat /m2/d/link", f"ubd1={e4}", f"ubd2={e2}")
    assert r.stdout.decode() == (
        "inode mark: EINVAL\nmount mark: EINVAL\nfilesystem mark, no FID: EINVAL\nfilesystem mark: 0\n"
        "open d/bad: EUCLEAN\n"
        "  event mask 0x8000 fd -1, fid type 1 bytes 8 len 28 (the bad inode's), error EUCLEAN count 1 (len 12)\n"
        "open d/link: EUCLEAN\nopen d/bad: EUCLEAN\n"
        "  event mask 0x8000 fd -1, fid type 1 bytes 8 len 28 (the directory's), error EUCLEAN count 2 (len 12)\n"
        "remount abort: 0\n"
        "  event mask 0x8000 fd -1, fid type 255 bytes 0 len 20, error ESHUTDOWN count 1 (len 12)\n"
        "remount rw: EROFS\ncreate: EROFS\ndone\n"
        "cat: can't open '/m2/d/link': Invalid argument\n"), r.stderr.decode()[-3000:]
    assert b"iget: bogus i_mode (377)" in r.stderr and b"Abort forced by user" in r.stderr
