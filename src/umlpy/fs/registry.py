"""Filesystem types by name, as mount(2) and rootfstype= name them."""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.block.device import MOUNT_HOLDER
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

DISK_TYPES = ("ext2", "ext3", "ext4")
VIRTUAL_TYPES = ("sysfs", "tmpfs", "proc", "cgroup2", "devtmpfs", "ramfs", "mqueue", "devpts", "hostfs", "overlay")
NOT_YET = ("cgroup", "debugfs", "securityfs")
# FS_USERNS_MOUNT types a user namespace's root may mount here (Linux has
# more: tmpfs, ramfs, proc, sysfs, ... need CAP_SYS_ADMIN in the initial
# namespace here)
USERNS_TYPES = ("overlay",)


def types() -> tuple[str, ...]:
    """Every type, in /proc/filesystems' order, which sysfs(2) numbers."""
    return VIRTUAL_TYPES + DISK_TYPES


def make_virtual(fstype: str, kernel, options: str = ""):
    """A filesystem without a device; proc and sysfs show `kernel`; hostfs
    takes its host directory from options, under the kernel's hostfs=;
    mqueue shows the mounting task's IPC namespace's queues;
    overlay its layers, as the mounting task names them."""
    from umlpy.fs.devtmpfs import devtmpfs_instance
    from umlpy.fs.tmpfs import Tmpfs
    if fstype == "tmpfs":
        return Tmpfs.from_options(options, kernel.mem_budget.shmem)
    if fstype == "ramfs":
        from umlpy.fs.ramfs import Ramfs
        return Ramfs.from_options(options, kernel.mem_budget.shmem)
    if fstype == "devtmpfs":
        return devtmpfs_instance(kernel.mem_budget.shmem)
    if fstype == "devpts":
        from umlpy.fs.devpts import devpts_instance
        return devpts_instance()
    if fstype == "proc":
        from umlpy.fs.procfs import procfs_instance
        t = kernel.sched.current     # the mounter: its pid namespace's instance
        return procfs_instance(kernel, t.proc.pidns if t is not None else None)
    if fstype == "mqueue":
        from umlpy.fs.mqueuefs import mqueue_instance
        t = kernel.sched.current     # the mounter: its IPC namespace's queues
        return mqueue_instance(kernel, t.proc.ns.ipc if t is not None else kernel.init_ns.ipc)
    if fstype == "hostfs":
        from umlpy.fs.hostfs import mount_hostfs
        p = kernel.params
        return mount_hostfs(options, p.hostfs_root, p.hostfs_append)
    if fstype == "overlay":
        from umlpy.fs.overlayfs import mount_overlay
        return mount_overlay(kernel, options)
    if fstype == "sysfs":
        from umlpy.fs.sysfs import sysfs_instance
        return sysfs_instance(kernel)
    if fstype == "cgroup2":
        from umlpy.fs.cgroupfs import cgroupfs_instance
        return cgroupfs_instance(kernel)
    raise KernelError(E.ENODEV)


def ext4_options(options: str) -> tuple[int, bool]:
    """ext3/ext4's commit=N (seconds between the journal's commits; 0 or
    absent: jbd2's default 5) and delalloc/nodelalloc (the last one
    given counts); other options are ignored here."""
    from umlpy.fs.ext4.journal import DEFAULT_COMMIT_S
    secs, delalloc = DEFAULT_COMMIT_S, True
    for opt in options.split(","):
        key, _, val = opt.partition("=")
        if key == "commit":
            if not val.isdigit():
                raise KernelError(E.EINVAL, f"ext4: bad commit= value {val!r}")
            secs = int(val) or DEFAULT_COMMIT_S
        elif key in ("delalloc", "nodelalloc"):
            delalloc = key == "delalloc"
    return secs, delalloc


def mount_disk(fstype: str, dev, read_only: bool, options: str = "", sched=None, silent: bool = False):
    """ext2 by fs/ext2's driver; ext3 and ext4 by fs/ext4's, which also
    mounts ext2 images, as Linux's ext4 driver does.  A journal that needs
    recovery is replayed at mount (either driver); ext3/ext4 journal their
    metadata while mounted read-write, committing every commit= seconds
    on sched's timers (none: only at fsync, sync and unmount).

    The mount holds the device open and claimed (blkdev_get_by_path with
    FMODE_EXCL): EBUSY while mounted or opened O_EXCL, EACCES for a
    read-write mount of a write-protected device; its files' st_dev is the
    device's number.  silent: MS_SILENT, a probe's refusals not logged
    where another type is to take the image."""
    if fstype not in DISK_TYPES:
        raise KernelError(E.ENODEV)
    if dev.mounted_fs is not None:
        raise KernelError(E.EBUSY)
    dev.open(holder=MOUNT_HOLDER)
    try:
        if dev.write_protected and not read_only:
            raise KernelError(E.EACCES)
        if fstype == "ext2":
            from umlpy.fs.ext2 import mount_ext2
            fs = mount_ext2(dev, read_only)
        else:
            from umlpy.fs.ext4 import mount_ext4
            fs = mount_ext4(dev, read_only, fstype, sched, *ext4_options(options), silent=silent)
    except BaseException:
        dev.release(holder=MOUNT_HOLDER)
        raise
    fs.dev = structs.makedev(dev.major, dev.minor)
    fs.device = dev
    dev.mounted_fs = fs
    return fs




# the root mount's order: Linux's fs/Makefile builds ext4 (which registers
# ext3 first) before ext2 "so that clean ext3 root fs's do NOT mount using
# the ext2 driver, which doesn't know about journalling"; ext2 images stay
# with ext2's driver, ahead of ext4's
ROOT_PROBE = ("ext3", "ext2", "ext4")


def mount_root(fstype: str | None, dev, read_only: bool, sched=None, options: str = ""):
    """(type, filesystem) of the root: rootfstype= if given, else each disk
    type in turn, as Linux's mount_block_root tries every block filesystem
    (MS_SILENT) and goes on past the ones that refuse the image with
    EINVAL; options are rootflags=."""
    if fstype:
        check_known(fstype)
        return fstype, mount_disk(fstype, dev, read_only, options, sched=sched)
    for i, name in enumerate(ROOT_PROBE):
        try:
            return name, mount_disk(name, dev, read_only, options, sched=sched, silent=True)
        except KernelError as e:
            if e.errno != E.EINVAL or i == len(ROOT_PROBE) - 1:
                raise
    raise KernelError(E.ENODEV)


def check_known(fstype: str) -> None:
    if fstype in NOT_YET:
        printk.pr_notice(f"mount: filesystem type {fstype} not supported yet")
        raise KernelError(E.ENODEV)
    if fstype not in DISK_TYPES + VIRTUAL_TYPES:
        raise KernelError(E.ENODEV)
