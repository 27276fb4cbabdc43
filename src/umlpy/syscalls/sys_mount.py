"""mount(2), umount2(2) and pivot_root(2): new mounts, remounts, bind and
move mounts, propagation types (the mount tree itself is vfs/mounts.py)."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.fs import registry
from umlpy.kernel import printk, userns
from umlpy.kernel.cred import capable, need
from umlpy.kernel.errors import KernelError
from umlpy.security import landlock
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_cstr, read_path, s32
from umlpy.vfs import devices, namei
from umlpy.vfs.file import File
from umlpy.vfs.mounts import DetachedMountFile


def _remount(t, m, flags: int, options: str) -> None:
    """do_remount: the options that change the filesystem (ext4's abort),
    the filesystem read-only or read-write, then the mount's own flags."""
    remount_options = getattr(m.fs, "remount_options", None)
    if remount_options is not None and options:
        remount_options(options)
    reconfigure(t, m.fs, bool(flags & MS.MS_RDONLY))
    _set_mount_flags(t, m, flags)


def reconfigure(t, fs, ro: bool) -> None:
    """reconfigure_super: a filesystem made read-only (not while a file
    is open for writing on it) or read-write (not on a write-protected device)."""
    k = t.kernel
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


def _set_mount_flags(t, m, flags: int) -> None:
    """do_reconfigure_mnt / set_mount_attributes: the per-mount flags of
    MS_*; a remount that names no atime flag keeps the mount's."""
    new = MS.from_ms(flags)
    if not flags & (MS.MS_NOATIME | MS.MS_NODIRATIME | MS.MS_RELATIME | MS.MS_STRICTATIME):
        new = (new & ~MS.MNT_ATIME_MASK) | (m.flags & MS.MNT_ATIME_MASK)
    _change_flags(t, [m], new)


def _change_flags(t, ms, new_of) -> None:
    """Each mount of ms gets its new flags (new_of(m), or one value for all);
    one going read-only with a file open for writing through it is EBUSY
    (mnt_hold_writers) and then none changes."""
    get = new_of if callable(new_of) else (lambda m: new_of)
    for m in ms:
        if get(m) & MS.MOUNT_ATTR_RDONLY and not m.has(MS.MOUNT_ATTR_RDONLY) and any(
                f.writable and f.dentry is not None and f.dentry.mount is m for f in t.kernel.open_files()):
            raise KernelError(E.EBUSY)
    for m in ms:
        m.flags = get(m)
    t.kernel.mounts.touch()     # a remount is a mount event (poll of /proc/PID/mounts)


def mount_root_of(d):
    """The mount d is the root of: EINVAL when d is not a mount's root."""
    if d.parent is not None or d.mount is None:
        raise KernelError(E.EINVAL)
    return d.mount


def _in_ns(t, m) -> bool:
    """check_mnt: m is a mount of the caller's namespace (a pivot_root may
    have hung the namespace's first mount below another: the walk goes up to
    a mount that is on nothing)."""
    if not m.attached:
        return False
    root = t.proc.ns.mnt.root
    return root is None or _topmost(m) is _topmost(root.mount)


def _topmost(m):
    while m.mountpoint is not None and m.mountpoint.mount is not None:
        m = m.mountpoint.mount
    return m


def _bind(t, tgt, src_path: bytes, recursive: bool) -> None:
    """do_loopback: a new mount of the source's subtree (with its submounts
    for MS_REC) on the target."""
    src = namei.lookup(t, C.AT_FDCWD, src_path)
    old = src.mount
    if old is None or old.unbindable:
        raise KernelError(E.EINVAL)
    if not _in_ns(t, old) or tgt.mount is None or not _in_ns(t, tgt.mount):
        raise KernelError(E.EINVAL)
    _graft(t, t.kernel.mounts.clone_tree(old, src, recursive), tgt)


def _graft(t, clones: dict, at) -> None:
    """graft_tree: a bind must match file with file and directory with directory."""
    tree = list(clones.values())
    while at.mounted is not None:
        at = at.mounted.root
    if at.inode.is_dir != tree[0].root.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    t.kernel.mounts.graft(tree, at)


def _move(t, src, at) -> None:
    """do_move_mount: the mount at src (a mount's root: attached in our
    namespace, or a detached tree from open_tree) goes to at."""
    mounts = t.kernel.mounts
    while at.mounted is not None:
        at = at.mounted.root
    old, p = src.mount, at.mount
    if p is None or not _in_ns(t, p) or old is None:
        raise KernelError(E.EINVAL)
    attached = old.attached
    if attached and (not _in_ns(t, old) or old.mountpoint is None):
        raise KernelError(E.EINVAL)
    if not attached and old.mountpoint is not None:
        raise KernelError(E.EINVAL)     # lazily unmounted: not mounted any more
    if src.parent is not None or at.inode.is_dir != src.inode.is_dir:
        raise KernelError(E.EINVAL)
    if attached and old.mountpoint.mount is not None and old.mountpoint.mount.group:
        raise KernelError(E.EINVAL)     # a mount in a shared parent stays
    if p.group and any(x.unbindable for x in [old] + mounts.below(old)):
        raise KernelError(E.EINVAL)
    x = p
    while x is not None:
        if x is old:
            raise KernelError(E.ELOOP)  # under itself
        x = x.mountpoint.mount if x.mountpoint is not None else None
    mounts.move(old, at)


def _change_type(t, tgt, flags: int) -> None:
    m = mount_root_of(tgt)
    kind = flags & ~(MS.MS_REC | MS.MS_SILENT)
    if kind not in (MS.MS_SHARED, MS.MS_PRIVATE, MS.MS_SLAVE, MS.MS_UNBINDABLE):
        raise KernelError(E.EINVAL)
    t.kernel.mounts.set_propagation(m, kind, bool(flags & MS.MS_REC))


def _may_mount(t) -> bool:
    """may_mount: CAP_SYS_ADMIN over the caller's mount namespace (EPERM
    without).  True: in the initial user namespace, for every kind of
    mount; False: only in the user namespace owning the mount namespace,
    where only new mounts of the types that allow it (FS_USERNS_MOUNT,
    overlay alone here) are made and unmade."""
    creds = t.proc.creds
    if capable(creds, CAP_SYS_ADMIN):
        return True
    if not userns.ns_capable(creds, t.proc.ns.mnt.owner, CAP_SYS_ADMIN):
        raise KernelError(E.EPERM)
    return False


@syscall("mount", status=PARTIAL, note="tmpfs (size=, nr_inodes=, mode=, uid=, gid=), ramfs (mode=), devtmpfs, proc, sysfs, hostfs (data: a host dir below hostfs=, refused without it), ext2/ext3/ext4, overlay (lowerdir=, upperdir=, workdir=, userxattr, uuid=, default_permissions; redirect_dir, index, xino, metacopy off; also from a user namespace, the only such mount); remount, remount of a bind; bind (MS_REC), move; shared/slave/private/unbindable, mounts propagate to peers and slaves (a propagated copy is not tucked under a mount already there)")
def sys_mount(t, source, target, fstype, flags, data, *_):
    anything = _may_mount(t)
    flags &= 0xFFFFFFFF
    if flags & 0xFFFF0000 == MS.MS_MGC_VAL:
        flags &= 0xFFFF
    tgt = namei.lookup(t, C.AT_FDCWD, read_path(t, target))
    landlock.check_topology(t)      # security_sb_mount
    if not anything and flags & (MS.MS_REMOUNT | MS.MS_BIND | MS.MS_PROPAGATION | MS.MS_MOVE):
        raise KernelError(E.EPERM)      # Linux allows these too, with mount locking not built here
    if flags & (MS.MS_REMOUNT | MS.MS_BIND) == MS.MS_REMOUNT | MS.MS_BIND:
        m = mount_root_of(tgt)
        if not _in_ns(t, m):
            raise KernelError(E.EINVAL)
        _set_mount_flags(t, m, flags)
        return 0
    if flags & MS.MS_REMOUNT:
        m = mount_root_of(tgt)
        if not _in_ns(t, m):
            raise KernelError(E.EINVAL)
        _remount(t, m, flags, read_cstr(t, data, 4096).decode(errors="replace") if data else "")
        return 0
    if getattr(tgt.inode, "magic_file", None) is not None:
        raise KernelError(E.ENOENT)     # nothing mounts on a /proc/PID/fd/N entry
    if flags & MS.MS_BIND:
        if not source:
            raise KernelError(E.EINVAL)
        _bind(t, tgt, read_path(t, source), bool(flags & MS.MS_REC))
        return 0
    if flags & MS.MS_PROPAGATION:
        _change_type(t, tgt, flags)
        return 0
    if flags & MS.MS_MOVE:
        if not source:
            raise KernelError(E.EINVAL)
        _move(t, namei.lookup(t, C.AT_FDCWD, read_path(t, source)), tgt)
        return 0
    if not tgt.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    if not fstype:
        raise KernelError(E.EINVAL)
    ftype = read_cstr(t, fstype, 256).decode(errors="replace")
    src = read_cstr(t, source, 4096).decode(errors="replace") if source else "none"
    registry.check_known(ftype)
    if not anything and ftype not in registry.USERNS_TYPES:
        raise KernelError(E.EPERM)      # mount_capable
    opts = read_cstr(t, data, 4096).decode(errors="replace") if data else ""
    if tgt.mount is not None and not _in_ns(t, tgt.mount):
        raise KernelError(E.EINVAL)     # do_add_mount: only in the caller's namespace
    fs, fs_opts = new_fs(t, ftype, src if source else None, bool(flags & MS.MS_RDONLY), opts,
                         bool(flags & MS.MS_SILENT))
    if tgt.parent is None and tgt.mount is not None and tgt.mount.fs is fs:
        raise KernelError(E.EBUSY)      # do_add_mount: the same filesystem on the same place
    t.kernel.mounts.mount(fs, tgt, src, ftype, MS.from_ms(flags), fs_opts)
    return 0


def new_fs(t, ftype: str, src: str | None, ro: bool, opts: str, silent: bool = False):
    """vfs_get_tree: a filesystem of a known type from its source and
    options; (fs, the options it shows after the mount's).  silent:
    MS_SILENT (a caller probing types, as busybox mount without -t)."""
    k = t.kernel
    k.mounts.reap()
    if ftype in registry.DISK_TYPES:
        if src is None:
            raise KernelError(E.EINVAL)     # get_tree_bdev: no source specified
        d = namei.lookup(t, C.AT_FDCWD, src.encode())
        if d.inode.fmt != C.S_IFBLK:
            raise KernelError(E.ENOTBLK)
        dev = devices.block_device(d.inode.rdev)
        if dev.mounted_fs is not None and dev.mounted_fs.name == ftype:
            return dev.mounted_fs, ""   # sget: the superblock the device already has
        fs = registry.mount_disk(ftype, dev, ro, opts, k.sched, silent=silent)
    else:
        fs = registry.make_virtual(ftype, k, opts)
        if ro and not getattr(fs, "shared_instance", False):
            fs.read_only = True
    return fs, fs.show_options()


@syscall("umount2")
def sys_umount2(t, target, flags, *_):
    anything = _may_mount(t)
    if flags & ~(MS.MNT_FORCE | MS.MNT_DETACH | MS.MNT_EXPIRE | MS.UMOUNT_NOFOLLOW):
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, target), follow=not flags & MS.UMOUNT_NOFOLLOW,
                     keep_expiry=True)
    m = mount_root_of(d)
    if not _in_ns(t, m):
        raise KernelError(E.EINVAL)
    if not anything and m.fs.user_ns is None:
        raise KernelError(E.EPERM)      # MNT_LOCKED: not mounted from a user namespace
    landlock.check_topology(t)      # security_sb_umount
    if flags & MS.MNT_EXPIRE:
        # the first call marks the mount, a second one with nobody using it in between unmounts it
        if m is t.fs.root.mount or flags & (MS.MNT_FORCE | MS.MNT_DETACH):
            raise KernelError(E.EINVAL)
        if t.kernel.mounts.busy_check(m):
            raise KernelError(E.EBUSY)
        if not m.expiry_mark:
            m.expiry_mark = True
            raise KernelError(E.EAGAIN)
    t.kernel.mounts.umount(m, lazy=bool(flags & MS.MNT_DETACH))
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
    landlock.check_topology(t)      # security_sb_pivotroot
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


def _setattr_changes(t, uattr: int, size: int) -> tuple[int, int, int]:
    """build_mount_kattr: struct mount_attr as (set, clear, propagation) in
    the mount's own bits.  The atime policy is a value, not bits: changing
    it clears all of MOUNT_ATTR__ATIME and sets one."""
    raw = t.mem.read(uattr, size)
    if any(raw[MS.MOUNT_ATTR_SIZE_VER0:]):
        raise KernelError(E.E2BIG)      # copy_struct_from_user: fields this kernel does not know
    attr_set, attr_clr, prop, userns_fd = MS.MOUNT_ATTR.unpack(raw[:MS.MOUNT_ATTR_SIZE_VER0])
    if prop & ~MS.MS_PROPAGATION or bin(prop).count("1") > 1:
        raise KernelError(E.EINVAL)
    if (attr_set | attr_clr) & ~MS.MOUNT_ATTR_ALL:
        raise KernelError(E.EINVAL)
    atime = MS.MOUNT_ATTR__ATIME
    set_bits, clr_bits = attr_set & ~atime, attr_clr & ~atime
    if attr_clr & atime:
        if attr_clr & atime != atime:
            raise KernelError(E.EINVAL)
        clr_bits |= MS.MNT_RELATIME | MS.MOUNT_ATTR_NOATIME
        policy = attr_set & atime
        if policy == MS.MOUNT_ATTR_RELATIME:
            set_bits |= MS.MNT_RELATIME
        elif policy == MS.MOUNT_ATTR_NOATIME:
            set_bits |= MS.MOUNT_ATTR_NOATIME
        elif policy != MS.MOUNT_ATTR_STRICTATIME:
            raise KernelError(E.EINVAL)
    elif attr_set & atime:
        raise KernelError(E.EINVAL)
    if (attr_set | attr_clr) & MS.MOUNT_ATTR_IDMAP:
        # build_mount_idmapped: userns_fd must be a user namespace, and none is built
        if attr_clr & MS.MOUNT_ATTR_IDMAP or userns_fd > 0x7FFFFFFF:
            raise KernelError(E.EINVAL)
        t.files.get_raw(userns_fd)
        printk.pr_notice("mount_setattr: idmapped mounts need user namespaces, which are not built")
        raise KernelError(E.EINVAL)
    return set_bits, clr_bits, prop


def _apply_setattr(t, m, changes: tuple[int, int, int], recursive: bool) -> None:
    """do_mount_setattr on a mount root: propagation first, then the flags
    of the mount (and of those below it with AT_RECURSIVE), all or none."""
    set_bits, clr_bits, prop = changes
    mounts = t.kernel.mounts
    if prop:
        mounts.set_propagation(m, prop, recursive)
    ms = [m] + (mounts.below(m) if recursive else [])
    _change_flags(t, ms, lambda x: (x.flags & ~clr_bits) | set_bits)


def _at_path(t, dirfd: int, path: int, flags: int, empty_flag: int, nofollow_flag: int):
    """The dentry of a *at path argument with AT_EMPTY_PATH-like and
    AT_SYMLINK_NOFOLLOW-like flags."""
    return namei.lookup(t, s32(dirfd), read_path(t, path),
                        follow=not flags & nofollow_flag, empty_ok=bool(flags & empty_flag))


@syscall("mount_setattr", status=PARTIAL, note="every attribute and propagation type; MOUNT_ATTR_IDMAP is EINVAL (no user namespaces)")
def sys_mount_setattr(t, dirfd, path, flags, uattr, size, *_):
    flags &= 0xFFFFFFFF
    if flags & ~(C.AT_EMPTY_PATH | MS.AT_RECURSIVE | C.AT_SYMLINK_NOFOLLOW | C.AT_NO_AUTOMOUNT):
        raise KernelError(E.EINVAL)
    if size > 4096:
        raise KernelError(E.E2BIG)
    if size < MS.MOUNT_ATTR_SIZE_VER0:
        raise KernelError(E.EINVAL)
    need(t.proc.creds, CAP_SYS_ADMIN)
    changes = _setattr_changes(t, uattr, size)
    if changes == (0, 0, 0):
        return 0
    d = _at_path(t, dirfd, path, flags, C.AT_EMPTY_PATH, C.AT_SYMLINK_NOFOLLOW)
    m = mount_root_of(d)
    if m.attached and not _in_ns(t, m):
        raise KernelError(E.EINVAL)
    _apply_setattr(t, m, changes, bool(flags & MS.AT_RECURSIVE))
    return 0


@syscall("open_tree")
def sys_open_tree(t, dirfd, path, flags, *_):
    """An O_PATH file of a path, or with OPEN_TREE_CLONE of a detached
    copy of its mount (AT_RECURSIVE: with the mounts below) that
    move_mount can attach."""
    flags &= 0xFFFFFFFF
    if flags & ~(C.AT_EMPTY_PATH | MS.AT_RECURSIVE | C.AT_SYMLINK_NOFOLLOW | C.AT_NO_AUTOMOUNT
                 | MS.OPEN_TREE_CLONE | MS.OPEN_TREE_CLOEXEC):
        raise KernelError(E.EINVAL)
    if flags & (MS.AT_RECURSIVE | MS.OPEN_TREE_CLONE) == MS.AT_RECURSIVE:     # only a clone recurses
        raise KernelError(E.EINVAL)
    if flags & MS.OPEN_TREE_CLONE:
        need(t.proc.creds, CAP_SYS_ADMIN)
    d = _at_path(t, dirfd, path, flags, C.AT_EMPTY_PATH, C.AT_SYMLINK_NOFOLLOW)
    if flags & MS.OPEN_TREE_CLONE:
        old = d.mount
        if old is None or old.unbindable or not _in_ns(t, old):
            raise KernelError(E.EINVAL)
        clones = t.kernel.mounts.clone_tree(old, d, bool(flags & MS.AT_RECURSIVE))
        d = next(iter(clones.values())).root
        f: File = DetachedMountFile(t.kernel.mounts, d.mount)
    else:
        f = File(d, d.inode, C.O_PATH)
    return t.files.install(f, bool(flags & MS.OPEN_TREE_CLOEXEC))


@syscall("move_mount", status=PARTIAL, note="no MOVE_MOUNT_SET_GROUP, MOVE_MOUNT_BENEATH (EINVAL)")
def sys_move_mount(t, from_dfd, from_path, to_dfd, to_path, flags, *_):
    """do_move_mount between two *at paths (the source a detached tree from
    open_tree, or a mount root of the caller's namespace)."""
    flags &= 0xFFFFFFFF
    if flags & ~MS.MOVE_MOUNT__MASK:
        raise KernelError(E.EINVAL)
    if flags & (MS.MOVE_MOUNT_SET_GROUP | MS.MOVE_MOUNT_BENEATH):
        printk.pr_notice("move_mount: MOVE_MOUNT_SET_GROUP and MOVE_MOUNT_BENEATH are not supported")
        raise KernelError(E.EINVAL)
    need(t.proc.creds, CAP_SYS_ADMIN)
    src = namei.lookup(t, s32(from_dfd), read_path(t, from_path),
                       follow=bool(flags & MS.MOVE_MOUNT_F_SYMLINKS),
                       empty_ok=bool(flags & MS.MOVE_MOUNT_F_EMPTY_PATH))
    dst = namei.lookup(t, s32(to_dfd), read_path(t, to_path),
                       follow=bool(flags & MS.MOVE_MOUNT_T_SYMLINKS),
                       empty_ok=bool(flags & MS.MOVE_MOUNT_T_EMPTY_PATH))
    landlock.check_topology(t)      # security_move_mount
    _move(t, src, dst)
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
