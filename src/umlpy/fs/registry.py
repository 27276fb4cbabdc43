"""Filesystem types by name, as mount(2) and rootfstype= name them."""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

DISK_TYPES = ("ext2", "ext3")
VIRTUAL_TYPES = ("sysfs", "tmpfs", "proc", "devtmpfs", "ramfs", "mqueue", "devpts", "hostfs")
NOT_YET = ("cgroup", "cgroup2", "debugfs", "securityfs")


def types() -> tuple[str, ...]:
    """Every type, in /proc/filesystems' order, which sysfs(2) numbers."""
    return VIRTUAL_TYPES + DISK_TYPES


def make_virtual(fstype: str, kernel, options: str = ""):
    """A filesystem without a device; proc and sysfs show `kernel`; hostfs
    takes its host directory from options, under the kernel's hostfs=."""
    from umlpy.fs.devtmpfs import devtmpfs_instance
    from umlpy.fs.tmpfs import Tmpfs
    if fstype == "tmpfs":
        return Tmpfs.from_options(options, kernel.mem_budget.limit)
    if fstype == "ramfs":
        return Tmpfs(0o755, total=kernel.mem_budget.limit)
    if fstype == "devtmpfs":
        return devtmpfs_instance()
    if fstype == "devpts":
        from umlpy.fs.devpts import devpts_instance
        return devpts_instance()
    if fstype == "proc":
        from umlpy.fs.procfs import procfs_instance
        return procfs_instance(kernel)
    if fstype == "mqueue":
        from umlpy.fs.mqueuefs import mqueue_instance
        return mqueue_instance(kernel)
    if fstype == "hostfs":
        from umlpy.fs.hostfs import mount_hostfs
        p = kernel.params
        return mount_hostfs(options, p.hostfs_root, p.hostfs_append)
    if fstype == "sysfs":
        from umlpy.fs.sysfs import sysfs_instance
        return sysfs_instance(kernel)
    raise KernelError(E.ENODEV)


def mount_disk(fstype: str, dev, read_only: bool):
    """ext2 (ext3 too: a journal that needs recovery is replayed, then left unused).

    The mount holds the device open and claimed (blkdev_get_by_path with
    FMODE_EXCL): EBUSY while mounted or opened O_EXCL, EACCES for a
    read-write mount of a write-protected device; its files' st_dev is the
    device's number."""
    if fstype not in DISK_TYPES:
        raise KernelError(E.ENODEV)
    if dev.mounted_fs is not None:
        raise KernelError(E.EBUSY)
    dev.open(holder=mount_disk)
    try:
        if dev.write_protected and not read_only:
            raise KernelError(E.EACCES)
        from umlpy.fs.ext2 import mount_ext2
        fs = mount_ext2(dev, read_only)
    except BaseException:
        dev.release(holder=mount_disk)
        raise
    fs.dev = structs.makedev(dev.major, dev.minor)
    fs.device = dev
    dev.mounted_fs = fs
    return fs


def release_disk(fs) -> None:
    """The mount of fs is gone: its device is closed (loop's autoclear may
    detach it now)."""
    dev = fs.device
    dev.mounted_fs = None
    dev.release(holder=mount_disk)


def check_known(fstype: str) -> None:
    if fstype in NOT_YET:
        printk.pr_notice(f"mount: filesystem type {fstype} not supported yet")
        raise KernelError(E.ENODEV)
    if fstype not in DISK_TYPES + VIRTUAL_TYPES:
        raise KernelError(E.ENODEV)
