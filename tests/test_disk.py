"""Disks: ubd devices, an ext2 root, COW overlays; e2fsck after every workload."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IMAGE, PATH_ENV, PROGS, ROOT, UMLPY, copy_image, native, user_xattrs_work

BASE = ROOT / "rootfs" / "busybox.img"


def disk_boot(*params: str, script: str | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    cmd = [str(UMLPY), str(IMAGE), "quiet", PATH_ENV, *params]
    if script is not None:
        cmd += ["init=/bin/sh", "--", "-c", script]
    return subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def fsck(img: Path, fix: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["e2fsck", "-fy" if fix else "-fn", str(img)], capture_output=True)


def assert_clean(img: Path) -> None:
    r = fsck(img)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def debugfs(img: Path, cmd: str) -> bytes:
    return subprocess.run(["debugfs", "-R", cmd, str(img)], capture_output=True).stdout


@pytest.fixture
def img(tmp_path) -> Path:
    p = tmp_path / "root.img"
    copy_image(BASE, p)
    return p


def big_image(tmp_path, size: str = "400M", block: int = 4096) -> Path:
    p = tmp_path / "big.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", str(block), str(p), size], check=True,
                   capture_output=True)
    return p


def test_boot_from_ubd0_read_only_by_default(img):
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    r = disk_boot(f"ubd0={img}", script="cat /etc/hostname; touch /x; echo rc=$?")
    assert r.stdout.startswith(b"umlpy\n")
    assert b"Read-only file system" in r.stdout
    assert r.stdout.endswith(b"rc=1\n")
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


def test_rw_root_workload_leaves_a_clean_filesystem(img):
    script = r"""
set -e
mkdir -p /w/a/b/c/d/e/f/g/h
cd /w
i=0; while [ $i -lt 2000 ]; do echo $i > f$i; i=$((i+1)); done
mkdir -p x y; echo moved > x/m; mv x/m y/m2; mv y x/y2
ln f1 hard1; ln -s f2 fast; ln -s $(printf '%0100d' 0)/very/long/target/to/be/a/slow/symlink slow
mknod cdev c 1 3; mknod bdev b 98 0; mkfifo fifo
dd if=/dev/zero of=sparse bs=1k seek=70000 count=1 2>/dev/null
dd if=/dev/urandom of=rand bs=1k count=300 2>/dev/null
echo kept > open; exec 3<open; rm open; cat <&3; exec 3<&-
dd if=/dev/zero of=trunc bs=1k count=100 2>/dev/null; truncate -s 5000 trunc; truncate -s 300000 trunc
chown 1000:1000 f3; chmod 4711 f4; touch -d '2001-02-03 04:05:06' f5
rm f6 f7; rmdir a/b/c/d/e/f/g/h
md5sum rand sparse trunc | sed 's/ .*//'
sync
"""
    r = disk_boot(f"ubd0={img}", "rw", script=script)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == b"kept"
    assert_clean(img)
    assert debugfs(img, "cat /w/y/../x/y2/m2") == b"moved\n" or debugfs(img, "cat /w/x/y2/m2") == b"moved\n"
    assert b"Type: symlink" in debugfs(img, "stat /w/slow")
    stat = debugfs(img, "stat /w/f3")
    assert b"User:  1000" in stat and b"Group:  1000" in stat
    assert b"Mode:  04711" in debugfs(img, "stat /w/f4")
    md5 = hashlib.md5(debugfs(img, "cat /w/rand")).hexdigest().encode()
    assert md5 == r.stdout.splitlines()[1]
    assert len(debugfs(img, "cat /w/trunc")) == 300000


def test_guest_listing_matches_rdump(img, tmp_path):
    script = r"""
mkdir -p /data/d1/d2; echo one > /data/d1/a; echo two > /data/d1/d2/b; ln -s d1/a /data/l
cd /data && find . | sort && find . -type f | sort | xargs md5sum
"""
    r = disk_boot(f"ubd0={img}", "rw", script=script)
    assert_clean(img)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump /data {out}", str(img)], capture_output=True, check=True)
    listing = subprocess.run("find . | sort && find . -type f | sort | xargs md5sum", shell=True,
                             cwd=out / "data", capture_output=True).stdout
    assert r.stdout == listing


def test_big_file_and_triple_indirect(tmp_path, img):
    big = big_image(tmp_path, "300M", 1024)
    script = r"""
mount -t ext2 /dev/ubdb /mnt && cd /mnt &&
dd if=/dev/zero bs=1M count=200 2>/dev/null | tr '\0' 'x' > big &&
ls -l big | awk '{print $5}' &&
dd if=/dev/zero of=far bs=1k seek=300000 count=1 2>/dev/null && ls -l far | awk '{print $5}' &&
cd / && umount /mnt && echo unmounted
"""
    r = disk_boot(f"ubd0={img}", f"ubd1={big}", script=script, timeout=600)
    assert r.stdout == b"209715200\n307201024\nunmounted\n", r.stderr
    assert_clean(big)
    assert_clean(img)


def test_xattrs_on_ext2_match_native(tmp_path, img):
    """t_xattr on the ext2 root (1 KiB blocks, 128-byte inodes) and on a second
    disk (4 KiB blocks, 256-byte inodes) prints what it prints natively."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if not user_xattrs_work(scratch):
        pytest.skip("the host filesystem refuses user xattrs")
    want = native([str(PROGS / "t_xattr"), str(scratch)])
    assert want.endswith(b"done\n")
    second = tmp_path / "second.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", "-I", "256", str(second), "16M"],
                   check=True, capture_output=True)
    script = r"""
mkdir -p /w && /t/bin/t_xattr /w
echo ===
mount -t ext2 /dev/ubdb /mnt && /t/bin/t_xattr /mnt && umount /mnt
sync
"""
    r = disk_boot(f"ubd0={img}", f"ubd1={second}", "rw", script=script)
    on_root, _, on_second = r.stdout.partition(b"===\n")
    assert on_root == want, r.stderr
    assert on_second == want, r.stderr
    assert_clean(img)
    assert_clean(second)


def test_cow_overlay_base_untouched_and_uml_moo(tmp_path):
    base = tmp_path / "base.img"
    copy_image(BASE, base)
    before = hashlib.sha256(base.read_bytes()).hexdigest()
    cow = tmp_path / "guest.cow"
    r = disk_boot(f"ubd0={cow},{base}", "rw", script="echo changed > /etc/motd; sync; echo ok")
    assert r.stdout == b"ok\n"
    assert hashlib.sha256(base.read_bytes()).hexdigest() == before
    merged = tmp_path / "merged.img"
    subprocess.run(["uml_moo", str(cow), str(merged)], check=True, capture_output=True)
    assert_clean(merged)
    assert debugfs(merged, "cat /etc/motd") == b"changed\n"
    # the COW file alone names its backing file
    r = disk_boot(f"ubd0={cow}", script="cat /etc/motd")
    assert r.stdout == b"changed\n"


def test_changed_backing_file_is_refused(tmp_path):
    base = tmp_path / "base.img"
    copy_image(BASE, base)
    cow = tmp_path / "guest.cow"
    disk_boot(f"ubd0={cow},{base}", script="true")
    os.utime(base, (1_600_000_000, 1_600_000_000))
    r = disk_boot(f"ubd0={cow},{base}", script="echo booted")
    assert r.returncode != 0 and r.stdout == b""
    assert b"mtime mismatch" in r.stderr


def test_four_guests_share_one_base(tmp_path):
    base = tmp_path / "base.img"
    copy_image(BASE, base)
    before = hashlib.sha256(base.read_bytes()).hexdigest()
    procs = [subprocess.Popen([str(UMLPY), str(IMAGE), "quiet", f"ubd0={tmp_path / f'g{i}.cow'},{base}", "rw",
                               "init=/bin/sh", "--", "-c", f"echo guest{i} > /id; sleep 1; cat /id"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert outs == [f"guest{i}\n".encode() for i in range(4)]
    assert hashlib.sha256(base.read_bytes()).hexdigest() == before


def test_second_instance_on_a_writable_image_fails(img):
    p = subprocess.Popen([str(UMLPY), str(IMAGE), "quiet", f"ubd0={img}", "rw", "init=/bin/sh", "--", "-c",
                          "echo up; read x"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        r = disk_boot(f"ubd0={img}", script="echo second")
        assert r.returncode != 0 and b"in use" in r.stderr
        r = disk_boot(f"ubd0c={img}", script="echo shared")     # `c`: no host lock
        assert r.stdout == b"shared\n"
    finally:
        p.communicate(b"\n", timeout=60)


def test_mount_umount_remount_and_df(tmp_path, img):
    second = big_image(tmp_path, "16M", 1024)
    script = r"""
mount -t proc proc /proc
mount -o remount,rw / && touch /rwok && echo remounted
mount -t ext2 /dev/ubdb /mnt && echo hi > /mnt/f && df /mnt | tail -1 | awk '{print $2}'
cd /mnt; umount /mnt; echo busy=$?; cd /; umount /mnt && echo unmounted
cat /mnt/f 2>/dev/null || echo gone
"""
    r = disk_boot(f"ubd0={img}", f"ubd1={second}", script=script)
    lines = r.stdout.decode().split("\n")
    assert lines[0] == "remounted"
    assert int(lines[1]) > 10000
    assert lines[2] == "busy=1" or lines[2].startswith("umount")
    assert "unmounted" in lines and "gone" in lines
    assert_clean(second)
    assert_clean(img)
    assert debugfs(second, "cat /f") == b"hi\n"


def test_unsupported_image_is_refused(tmp_path):
    """ext4 roots boot (tests/test_ext4.py); one with an INCOMPAT feature no
    driver here has (encrypt) is refused, naming it, untouched."""
    ext4 = tmp_path / "e4.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "encrypt", str(ext4), "16M"],
                   check=True, capture_output=True)
    before = hashlib.sha256(ext4.read_bytes()).hexdigest()
    r = disk_boot(f"ubd0={ext4}", "rw", script="echo booted")
    assert r.returncode != 0
    assert b"encrypt" in r.stderr
    assert hashlib.sha256(ext4.read_bytes()).hexdigest() == before


def test_shutdown_marks_clean(img):
    r = disk_boot(f"ubd0={img}", "rw", script="echo x > /y; poweroff -f")
    assert r.returncode == 0
    assert b"clean" in subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True).stdout.split(
        b"Filesystem state:")[1].split(b"\n")[0]
    assert_clean(img)


def test_crash_mid_write_is_repaired_by_e2fsck(img):
    p = subprocess.Popen([str(UMLPY), str(IMAGE), "quiet", f"ubd0={img}", "rw", "init=/bin/sh", "--", "-c",
                          "echo go; i=0; while true; do echo $i > /f$((i % 500)); i=$((i+1)); done"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout.readline() == b"go\n"
    time.sleep(1.5)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert fsck(img, fix=True).returncode in (0, 1, 2)
    assert_clean(img)
    r = disk_boot(f"ubd0={img}", script="echo alive")
    assert r.stdout == b"alive\n"


@pytest.mark.parametrize("prog", ["t_mmap", "t_tmpfile", "t_sgid", "t_inotify", "t_fown", "t_bigids"])
def test_page_cache_and_unnamed_files_on_ext2_match_native(img, scratch, prog):
    """Programs whose filesystem side is the VFS's and ext2's (t_sgid's
    children run as other uids: the scratch dir lets them in natively)."""
    from conftest import PROGS
    want = subprocess.run([str(PROGS / prog), str(scratch)], capture_output=True).stdout
    r = disk_boot(f"ubd0={img}", "rw", script=f"mkdir /w && /t/bin/{prog} /w")
    assert r.stdout == want, r.stderr.decode()[-2000:]
    assert_clean(img)


def test_shared_mapping_writes_reach_the_image_without_a_sync(img):
    """munmap, msync and exit carry pages written through MAP_SHARED to the
    image: they are there even when the kernel is killed right after.  On a
    filesystem without a journal: with one, a new file's metadata waits for
    the next commit (fsync, sync or the commit interval), as on Linux."""
    subprocess.run(["tune2fs", "-O", "^has_journal", str(img)], check=True, capture_output=True)
    p = subprocess.Popen([str(UMLPY), str(IMAGE), "quiet", f"ubd0={img}", "rw", "init=/bin/sh", "--", "-c",
                          "mkdir /w && /t/bin/t_mmap /w persist && echo written && sleep 100"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"written\n"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    fsck(img, fix=True)
    assert_clean(img)
    for how in ("munmap", "msync", "exit"):
        data = debugfs(img, f"cat /w/{how}")
        assert len(data) == 8192 and data[4096:4096 + 4 + len(how)] == f"via {how}".encode(), how


TMPFS_SCRIPT = r"""
mkdir -p /tmp/m
mount -t tmpfs -o size=1m,mode=0750,uid=5,gid=6,nr_inodes=4 t /tmp/m
ls -ldn /tmp/m | cut -d' ' -f1-4; stat -c '%s' /tmp/m; grep ' /tmp/m ' /proc/mounts
df -k /tmp/m | tail -1
dd if=/dev/zero of=/tmp/m/a bs=1k count=600 2>&1 | head -2; df -k /tmp/m | tail -1
dd if=/dev/zero of=/tmp/m/b bs=1k count=600 2>&1 | head -2; stat -c '%n %A %s' /tmp/m/*
touch /tmp/m/c /tmp/m/d 2>&1 | sed 's/.*: //'; ls -1 /tmp/m; df -i /tmp/m | tail -1; stat -c '%s' /tmp/m
rm /tmp/m/a /tmp/m/b; df -k /tmp/m | tail -1
truncate -s 10G /tmp/m/s; dd if=/dev/zero of=/tmp/m/t bs=1 count=7 seek=4400000000 2>&1 | tail -1
stat -c '%n %s %b' /tmp/m/s /tmp/m/t; df -k /tmp/m | tail -1; rm /tmp/m/s /tmp/m/t
fallocate -l 256k /tmp/m/r; dd if=/dev/zero of=/tmp/m/fill bs=4k 2>&1 | tail -1; df -k /tmp/m | tail -1
dd if=/dev/zero of=/tmp/m/r bs=4k count=64 conv=notrunc 2>&1 | tail -1; rm /tmp/m/r /tmp/m/fill; umount /tmp/m
mount -t tmpfs -o bogus=1 t /tmp/m 2>/dev/null; echo "unknown option: $?"
mount -t tmpfs -o size=10%,mode=1777 t /tmp/m && ls -ld /tmp/m | cut -c1-10; umount /tmp/m
mount -t tmpfs -o size=0,nr_inodes=0,mode=01777 t /tmp/m && grep ' /tmp/m ' /proc/mounts; umount /tmp/m
mount -t tmpfs -o size=50% t /tmp/m && grep ' /tmp/m ' /proc/mounts | sed 's/,size=[0-9]*k//'; umount /tmp/m
"""
# (the last line: half of an odd count of pages, rounded up, is not the
# default, so Linux shows it, in the host's size: that part is cut)


RAMFS_SCRIPT = r"""
mkdir -p /tmp/r
mount -t ramfs -o size=1k,mode=0700,nr_inodes=1,bogus=1 r /tmp/r && echo mounted
stat -f -c '%t %s %S %b %f %a %c %d %l' /tmp/r; ls -ld /tmp/r | cut -c1-10
dd if=/dev/zero of=/tmp/r/a bs=1k count=64 2>/dev/null; touch /tmp/r/b /tmp/r/c; stat -c '%n %A %s %b' /tmp/r/*
grep ' /tmp/r ' /proc/mounts; umount /tmp/r
mount -t ramfs -o mode=0x1 r /tmp/r 2>/dev/null; echo "bad mode: $?"
mount -t ramfs r /tmp/r && grep ' /tmp/r ' /proc/mounts && ls -ld /tmp/r | cut -c1-10; umount /tmp/r
"""


@pytest.mark.parametrize("script", [TMPFS_SCRIPT, RAMFS_SCRIPT], ids=["tmpfs", "ramfs"])
def test_tmpfs_mount_options_and_space_match_linux(tmp_path, script):
    """size=, nr_inodes=, mode=, uid=, gid= and df on a tmpfs (a sparse
    file costs only the pages it holds: 10 GiB ones fit in 1 MiB; what
    fallocate reserved takes a write once the tmpfs is full); mode= the
    one option of a ramfs, its statfs and /proc/mounts: busybox in the
    guest against busybox in a host mount namespace."""
    from conftest import BUSYBOX, CPIO
    native_script, script = script, "PATH=/bin; " + script
    bb = tmp_path / "bin"
    bb.mkdir()
    for applet in ("sh", "mkdir", "mount", "umount", "ls", "cut", "stat", "df", "tail", "head", "dd",
                   "touch", "sed", "rm", "echo", "grep", "truncate", "fallocate"):
        (bb / applet).symlink_to(BUSYBOX)
    want = subprocess.run(["unshare", "-m", str(bb / "sh"), "-c", f"PATH={bb}; " + native_script],
                          capture_output=True)
    if want.returncode != 0 or (b"unknown option: 255" if native_script is TMPFS_SCRIPT else b"mounted") not in want.stdout:
        pytest.skip(f"no mount namespace for the native side: {want.stderr.decode()[-300:]}")
    got = subprocess.run([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--", "-c",
                          "mount -t proc proc /proc; " + script], capture_output=True, timeout=120)
    assert got.stdout.decode() == want.stdout.decode().replace(str(bb), "/bin"), got.stderr.decode()[-2000:]
