"""mount(2), umount2(2) and pivot_root(2)."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.fs import registry
from umlpy.kernel import printk
from umlpy.kernel.cred import need
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_cstr, read_path, s32
from umlpy.vfs import devices, namei

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_MGC_VAL = 0xC0ED0000
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8


def _flag_words(flags: int) -> str:
    words = ["ro" if flags & MS_RDONLY else "rw"]
    for bit, w in ((MS_NOSUID, "nosuid"), (MS_NODEV, "nodev"), (MS_NOEXEC, "noexec"),
                   (MS_NOATIME, "noatime"), (MS_RELATIME, "relatime")):
        if flags & bit:
            words.append(w)
    return ",".join(words)


def _remount(t, target, flags: int) -> int:
    k = t.kernel
    m = k.mounts.mount_of_root(target)
    if m is None:
        raise KernelError(E.EINVAL)
    ro = bool(flags & MS_RDONLY)
    fs = m.fs
    dev = getattr(fs, "device", None)
    if not ro and dev is not None and dev.write_protected:
        raise KernelError(E.EACCES)
    if ro and not fs.read_only and any(f.writable and f.inode is not None and f.inode.fs is fs
                                       for f in k.open_files()):
        raise KernelError(E.EBUSY)      # sb_prepare_remount_readonly: a writer holds it
    set_ro = getattr(fs, "set_read_only", None)
    if set_ro is not None:
        set_ro(ro)
    else:
        fs.read_only = ro
    m.flags = _flag_words(flags)
    return 0


@syscall("mount", status=PARTIAL, note="tmpfs (size=, nr_inodes=, mode=, uid=, gid=), devtmpfs, proc, sysfs, hostfs (data: a host dir below hostfs=, refused without it), ext2/ext3/ext4; remount ro/rw; no bind/move mounts yet")
def sys_mount(t, source, target, fstype, flags, data, *_):
    need(t.proc.creds, CAP_SYS_ADMIN)
    flags &= 0xFFFFFFFF
    if flags & 0xFFFF0000 == MS_MGC_VAL:
        flags &= 0xFFFF
    tgt = namei.lookup(t, C.AT_FDCWD, read_path(t, target))
    if flags & MS_REMOUNT:
        return _remount(t, tgt, flags)
    if flags & (MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE) and not flags & ~(
            MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE | MS_REC | MS_SILENT):
        return 0   # every mount is already private: there is no propagation
    if getattr(tgt.inode, "magic_file", None) is not None:
        raise KernelError(E.ENOENT)     # nothing mounts on a /proc/PID/fd/N entry
    if flags & (MS_BIND | MS_MOVE | MS_SHARED):
        printk.pr_notice("mount: bind, move and shared mounts are not supported yet")
        raise KernelError(E.EINVAL)
    if not tgt.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    if not fstype:
        raise KernelError(E.EINVAL)
    ftype = read_cstr(t, fstype, 256).decode(errors="replace")
    src = read_cstr(t, source, 4096).decode(errors="replace") if source else "none"
    registry.check_known(ftype)
    ro = bool(flags & MS_RDONLY)
    k = t.kernel
    opts = read_cstr(t, data, 4096).decode(errors="replace") if data else ""
    if ftype in registry.DISK_TYPES:
        if not source:
            raise KernelError(E.EINVAL)     # get_tree_bdev: no source specified
        d = namei.lookup(t, C.AT_FDCWD, src.encode())
        if d.inode.fmt != C.S_IFBLK:
            raise KernelError(E.ENOTBLK)
        fs = registry.mount_disk(ftype, devices.block_device(d.inode.rdev), ro, opts, k.sched)
    else:
        fs = registry.make_virtual(ftype, k, opts)
        if ro and not getattr(fs, "shared_instance", False):
            fs.read_only = True
    words = _flag_words(flags)
    if ftype == "hostfs":
        words += "," + fs.host_root.decode(errors="replace")   # as Linux's hostfs_show_options
    k.mounts.mount(fs, tgt, src, ftype, words)
    return 0


@syscall("umount2")
def sys_umount2(t, target, flags, *_):
    need(t.proc.creds, CAP_SYS_ADMIN)
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW):
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, target), follow=not flags & UMOUNT_NOFOLLOW)
    m = t.kernel.mounts.mount_of_root(d)
    if m is None:
        raise KernelError(E.EINVAL)
    t.kernel.mounts.umount(m, lazy=bool(flags & MNT_DETACH))
    return 0


def _reachable(d, target) -> bool:
    """is_path_reachable: target is d or one of its ancestors, across mounts."""
    while d is not target:
        up = d.up()
        if up is d:
            return False
        d = up
    return True


@syscall("pivot_root", status=PARTIAL, note="not from the root of a mount namespace (as from an initramfs): chroot into a mount first")
def sys_pivot_root(t, new_root, put_old, *_):
    """The caller's root mount goes to put_old, the mount at new_root takes
    its place, and every process rooted (or working) at the old root moves
    to the new one (chroot_fs_refs)."""
    need(t.proc.creds, CAP_SYS_ADMIN)
    new = namei.lookup(t, C.AT_FDCWD, read_path(t, new_root))
    old = namei.lookup(t, C.AT_FDCWD, read_path(t, put_old))
    if not new.inode.is_dir or not old.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    root = t.fs.root
    root_mnt, new_mnt = root.mount, new.mount
    if new_mnt is root_mnt or old.mount is root_mnt:
        raise KernelError(E.EBUSY)      # the same filesystem: a loop
    if root.parent is not None or root_mnt.mountpoint is None:
        raise KernelError(E.EINVAL)     # the root is not a mount point, or is the namespace's
    if new.parent is not None or new_mnt.mountpoint is None:
        raise KernelError(E.EINVAL)     # new_root is not a mount point
    if not _reachable(old, new) or not _reachable(new, root):
        raise KernelError(E.EINVAL)     # put_old not under new_root, or new_root not under /
    root_mp = root_mnt.mountpoint
    new_mnt.mountpoint.mounted = None
    root_mp.mounted = None
    old.mounted, root_mnt.mountpoint = root_mnt, old
    root_mp.mounted, new_mnt.mountpoint = new_mnt, root_mp
    for p in t.kernel.procs.by_pid.values():
        if p.exited:
            continue
        for x in p.threads:     # each thread's fs context (shared ones twice, harmlessly)
            if x.fs.root is root:
                x.fs.root = new
            if x.fs.cwd is root:
                x.fs.cwd = new
    return 0


@syscall("sysfs")
def sys_sysfs(t, option, arg1, arg2, *_):
    """The old way to list filesystem types: 1 name -> index, 2 index ->
    name (into a buffer), 3 how many; in /proc/filesystems' order."""
    names = registry.types()
    option = s32(option)
    if option == 1:
        name = read_cstr(t, arg1).decode(errors="replace")
        if name not in names:
            raise KernelError(E.EINVAL)
        return names.index(name)
    if option == 2:
        index = arg1 & 0xFFFFFFFF
        if index >= len(names):
            raise KernelError(E.EINVAL)
        t.mem.write(arg2, names[index].encode() + b"\0")
        return 0
    if option == 3:
        return len(names)
    raise KernelError(E.EINVAL)
