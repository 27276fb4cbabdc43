"""Loop devices: /dev/loop-control, /dev/loopN bound to guest files (on
tmpfs, ext2, hostfs), filesystems made and mounted on them, and the images
checked by the host's e2fsck afterwards."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import IMAGE, PROGS, ROOT, UMLPY, native, sh

EXPECTED = ROOT / "tests" / "progs" / "t_loop.out"


def _native_loop_usable() -> bool:
    try:
        os.close(os.open("/dev/loop-control", os.O_RDWR))
    except OSError:
        return False
    return True


def fsck(img: Path) -> str:
    r = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def debugfs(img: Path, cmd: str) -> bytes:
    return subprocess.run(["debugfs", "-R", cmd, str(img)], capture_output=True).stdout


def debian_boot(debian: Path, tmp_path: Path, script: str, *params: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(UMLPY), str(IMAGE), "quiet", f"ubd0={tmp_path / 'd.cow'},{debian / 'root.img'}",
                           "rw", *params, "init=/bin/bash", "--", "-c",
                           "export PATH=/usr/sbin:/usr/bin:/sbin:/bin; mount -t proc proc /proc; "
                           "mount -t sysfs sysfs /sys; " + script],
                          capture_output=True, timeout=300)


def test_t_loop_matches_linux(scratch):
    """The ioctls' results and errors as Linux gives them: natively when the
    host lets us use its loop devices, else as recorded from Linux."""
    want = native([str(PROGS / "t_loop"), str(scratch)]) if _native_loop_usable() else EXPECTED.read_bytes()
    got = sh("mkdir -p /tmp/s; /t/bin/t_loop /tmp/s; true")
    assert got.stdout.decode() == want.decode()
    assert want.endswith(b"done\n")


def test_busybox_mke2fs_mount_loop_and_fsck(scratch):
    """An image on tmpfs: losetup, mke2fs, mount -o loop (detached again at
    umount: autoclear), the files' st_dev and st_blksize those of the loop
    device and its 1K blocks; the image copied to the host checks clean."""
    script = ("mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount none /mnt -t hostfs -o "
              f"{scratch}; dd if=/dev/zero of=/tmp/img bs=1M count=8 2>/dev/null; "
              "losetup /dev/loop0 /tmp/img; mke2fs -b 1024 /dev/loop0 >/dev/null; echo mke2fs=$?; "
              "cat /sys/block/loop0/size /sys/block/loop0/loop/backing_file; grep loop0 /proc/partitions; "
              "losetup -d /dev/loop0; grep -c loop0 /proc/partitions; mkdir /m; mount -o loop /tmp/img /m; "
              "losetup -a; mkdir /m/d; echo hello > /m/d/f; cp -r /etc /m/; stat -c '%o %D' /m/d/f; "
              "grep ' /m ' /proc/self/mountinfo | cut -d' ' -f3,5,8-; umount /m; echo umount=$?; "
              "losetup -a; cp /tmp/img /mnt/img; echo end")
    r = sh(script, "hostfs=/")
    assert r.stdout.decode() == ("mke2fs=0\n16384\n/tmp/img\n   7        0       8192 loop0\n0\n"
                                 "/dev/loop0: 0 /tmp/img\n1024 700\n7:0 /m ext2 /dev/loop0 rw\n"
                                 "umount=0\nend\n"), r.stderr.decode()[-2000:]
    fsck(scratch / "img")
    assert debugfs(scratch / "img", "cat /d/f") == b"hello\n"


def test_devices_made_on_demand_and_busy_backing_fs(scratch):
    """All eight bound: losetup -f makes loop8 (LOOP_CTL_GET_FREE adds one);
    a node of a minor nobody made makes its device when opened (loop_probe);
    the filesystem holding a bound device's file cannot be unmounted."""
    script = ("mount -t sysfs sysfs /sys; mkdir /w; mount -t tmpfs tmpfs /w; "
              "for i in 0 1 2 3 4 5 6 7; do truncate -s 1M /w/$i; losetup /dev/loop$i /w/$i; done; "
              "losetup -f; ls /sys/block | tr '\\n' ' '; echo; mknod /dev/loop20 b 7 20; "
              "truncate -s 2M /w/20; losetup /dev/loop20 /w/20; cat /sys/block/loop20/size; "
              "umount /w 2>&1; for i in 0 1 2 3 4 5 6 7 20; do losetup -d /dev/loop$i; done; "
              "umount /w; echo umount=$?")
    r = sh(script)
    assert r.stdout.decode() == ("/dev/loop8\nloop0 loop1 loop2 loop3 loop4 loop5 loop6 loop7 loop8 \n"
                                 "4096\numount: can't unmount /w: Device or resource busy\numount=0\n"), \
        r.stderr.decode()[-2000:]


def test_debian_mkfs_ext2_and_ext3_on_loop(debian, tmp_path, scratch):
    """e2fsprogs in the guest: an ext2 image on hostfs and an ext3 one (its
    journal left alone) on the ext2 root, made, mounted, filled, checked by
    the guest's e2fsck and by the host's."""
    script = (f"mkdir -p /h /m; mount -t hostfs none /h -o {scratch}; truncate -s 32M /h/e2.img; "
              "L=$(losetup -f --show /h/e2.img); mkfs.ext2 -q $L; mount $L /m; cp -a /etc /m/; "
              "echo two > /m/two; umount /m; e2fsck -fn $L >/dev/null 2>&1; echo e2fsck=$?; losetup -d $L; "
              "truncate -s 64M /root/e3.img; mkfs.ext3 -q -F /root/e3.img; mount -t ext3 -o loop /root/e3.img /m; "
              "grep -c ' /m ext3 ' /proc/mounts; mkdir /m/d; echo three > /m/d/three; umount /m; "
              "e2fsck -fn /root/e3.img >/dev/null 2>&1; echo e2fsck3=$?; losetup -a; cp /root/e3.img /h/; echo end")
    r = debian_boot(debian, tmp_path, script, "hostfs=/")
    assert r.stdout.decode() == "e2fsck=0\n1\ne2fsck3=0\nend\n", r.stderr.decode()[-3000:]
    fsck(scratch / "e2.img")
    assert debugfs(scratch / "e2.img", "cat /two") == b"two\n"
    assert "has_journal" in subprocess.run(["dumpe2fs", "-h", str(scratch / "e3.img")],
                                           capture_output=True, text=True).stdout
    fsck(scratch / "e3.img")
    assert debugfs(scratch / "e3.img", "cat /d/three") == b"three\n"


MOUNT_CHECKS = r"""
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def res(what, r):
    print(what, r if r >= 0 else os.strerror(ctypes.get_errno()))
MS_RDONLY, MS_REMOUNT = 1, 32
res("mount no type", libc.mount(b"/dev/loop0", b"/m", None, 0, None))
res("mount no source", libc.mount(None, b"/m", b"ext2", 0, None))
res("mount", libc.mount(b"/dev/loop0", b"/m", b"ext2", 0, None))
f = open("/m/w", "w")
res("remount ro with a writer", libc.mount(None, b"/m", None, MS_REMOUNT | MS_RDONLY, None))
f.close()
res("remount ro", libc.mount(None, b"/m", None, MS_REMOUNT | MS_RDONLY, None))
os.seteuid(65534)
res("chmod by another user", libc.chmod(b"/m/w", 0o600))
res("link a directory", libc.link(b"/m/lost+found", b"/m/l"))
os.seteuid(0)
fd = libc.inotify_init1(0)
wd = libc.inotify_add_watch(fd, b"/m/w", 0x2)
res("umount", libc.umount2(b"/m", 0))
data = os.read(fd, 4096)
print("events", [hex(struct.unpack_from("<iIII", data, i)[1]) for i in range(0, len(data), 16)])
res("rm_watch", libc.inotify_rm_watch(fd, wd))
"""


def test_mount_errors_remount_and_unmount_events(debian, tmp_path):
    """mount(2) without a type or a source is EINVAL; remounting read-only
    while a file is open for writing is EBUSY; on a read-only filesystem
    chmod and link fail EROFS before their permission checks; unmounting
    tells watches IN_UNMOUNT then IN_IGNORED (whatever they asked for), and
    they are gone."""
    script = ("truncate -s 8M /root/img; losetup /dev/loop0 /root/img; mkfs.ext2 -q /dev/loop0; mkdir -p /m; "
              f"python3 -c '{MOUNT_CHECKS}'; losetup -d /dev/loop0")
    r = debian_boot(debian, tmp_path, script)
    assert r.stdout.decode() == ("mount no type Invalid argument\nmount no source Invalid argument\n"
                                 "mount 0\nremount ro with a writer Device or resource busy\nremount ro 0\n"
                                 "chmod by another user Read-only file system\n"
                                 "link a directory Read-only file system\n"
                                 "umount 0\nevents ['0x2000', '0x8000']\nrm_watch Invalid argument\n"), \
        r.stderr.decode()[-3000:]


def test_ubd_read_only_opens_and_write_protection(tmp_path):
    """A read-only ubd opens for writing (UML's ubd_open lets it through)
    and refuses the writes with EPERM (blkdev_write_iter), as BLKROSET
    makes a writable one do."""
    ro, rw = tmp_path / "ro.img", tmp_path / "rw.img"
    ro.write_bytes(bytes(1 << 20))
    rw.write_bytes(bytes(1 << 20))
    script = ("exec 3<>/dev/ubda && echo opened; blockdev --getro /dev/ubda; echo x >&3; "
              "blockdev --getro /dev/ubdb; blockdev --setro /dev/ubdb; blockdev --getro /dev/ubdb; "
              "echo x > /dev/ubdb; blockdev --setrw /dev/ubdb; echo x > /dev/ubdb && echo written")
    r = sh(script, f"ubd0r={ro}", f"ubd1={rw}")
    eperm = "sh: write error: Operation not permitted\n"
    assert r.stdout.decode() == f"opened\n1\n{eperm}0\n1\n{eperm}written\n", r.stderr.decode()[-2000:]
    assert rw.read_bytes()[:2] == b"x\n" and ro.read_bytes() == bytes(1 << 20)


def test_proc_and_sys_list_the_loop_driver():
    text = sh("mount -t proc proc /proc; mount -t sysfs sysfs /sys; grep -E 'misc|loop' /proc/devices; "
              "ls -l /dev/loop-control | cut -c1-10; cat /sys/class/misc/loop-control/dev "
              "/sys/dev/block/7:3/uevent /sys/block/loop3/range /sys/block/loop3/queue/logical_block_size; "
              "ls -1 /sys/block/loop3; zcat /proc/config.gz | grep LOOP").stdout.decode()
    assert text == (" 10 misc\n  7 loop\ncrw-------\n10:237\nMAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\n"
                    "1\n512\nalignment_offset\ndev\ndiscard_alignment\nqueue\nrange\nremovable\nro\nsize\n"
                    "stat\nsubsystem\nuevent\nCONFIG_BLK_DEV_LOOP=y\n")


def test_ext2_block_size_and_device_number_in_stat(tmp_path):
    """st_blksize is the filesystem's block size (ext2 1K here, proc's 1K,
    tmpfs a page), st_dev the disk's number."""
    img = tmp_path / "k.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", str(img), "4M"], check=True)
    r = sh("mount -t proc proc /proc; mkdir /m; mount /dev/ubda /m; stat -c '%o %D' /m; "
           "stat -c %o /proc/self/stat /; grep ' /m ' /proc/self/mountinfo | cut -d' ' -f3", f"ubd0={img}")
    assert r.stdout.decode() == "1024 6200\n1024\n4096\n98:0\n", r.stderr.decode()[-2000:]


def test_partition_tables_are_not_scanned():
    """BLKRRPART: EINVAL on a loop device without LO_FLAGS_PARTSCAN; with it,
    0 for a disk without a partition table and EINVAL (one log line) for one
    with a table, whose partitions are not supported."""
    script = ("dd if=/dev/zero of=/tmp/img bs=1M count=4 2>/dev/null; cp /tmp/img /tmp/blank; "
              "printf '\\203' | dd of=/tmp/img bs=1 seek=450 conv=notrunc 2>/dev/null; "
              "printf '\\125\\252' | dd of=/tmp/img bs=1 seek=510 conv=notrunc 2>/dev/null; "
              "for how in '' -P; do for f in img blank; do losetup $how /dev/loop0 /tmp/$f; "
              "blockdev --rereadpt /dev/loop0 2>/dev/null; echo \"$how $f $?\"; losetup -d /dev/loop0; done; done")
    r = sh(script, "loglevel=6")
    assert r.stdout.decode() == " img 1\n blank 1\n-P img 1\n-P blank 0\n", r.stderr.decode()[-2000:]
    assert r.stderr.count(b"loop0: partition tables are not supported yet") == 2    # at LOOP_SET_STATUS, BLKRRPART


def test_binding_and_unbinding_send_change_uevents():
    """A NETLINK_KOBJECT_UEVENT listener hears a loop device bound and
    unbound (t_uevent): a "change" of the disk each, with its variables as
    Linux 6.1 sends them (LTP uevent01), numbered one after the other as
    /sys/kernel/uevent_seqnum counts them.  (Linux 6.18 sends the second at
    the device's last close, so this is not compared with the host.)"""
    r = sh("mount -t proc p /proc; mount -t sysfs s /sys; mkdir -p /tmp/u; /t/bin/t_uevent /tmp/u")
    event = ("change@/devices/virtual/block/loop0: ACTION=change DEVPATH=/devices/virtual/block/loop0 "
             "SUBSYSTEM=block MAJOR=7 MINOR=0 DEVNAME=loop0 DEVTYPE=disk\n")
    assert r.stdout.decode() == event * 2 + "sequence follows: 1\nuevent_seqnum is the last: 1\ndone\n", \
        r.stderr.decode()[-2000:]
