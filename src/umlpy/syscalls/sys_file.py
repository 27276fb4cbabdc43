"""Files and directories by name: open, create, link, rename, chmod, ..."""
from __future__ import annotations

import struct

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.abi import structs
from umlpy.kernel import cred, userns
from umlpy.kernel.errors import Block, KernelError
from umlpy.security import landlock
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_path, s32, s64, u32
from umlpy.vfs import fanotify
from umlpy.vfs import fsnotify as N
from umlpy.vfs import directio, lease, namei
from umlpy.vfs.dentry import want_write
from umlpy.vfs.atime import touch_atime
from umlpy.vfs.dentry import Dentry
from umlpy.vfs.file import MAX_LFS_FILESIZE, File, exceed_fsize, file_size_limit, get_write_access, max_bytes
from umlpy.vfs.inode import now_ns
from umlpy.vfs.perm import (check_owner, check_settable, drop_sgid, kill_suid, may_create_in_sticky, may_linkat,
                             new_inode_owner, owner_or_capable, permission)

OPEN_FLAGS_KEPT = ~(C.O_CREAT | C.O_EXCL | C.O_NOCTTY | C.O_TRUNC)


def path_and_at(name: str, do) -> None:
    """Register `name(path, a, b)` and `nameat(dirfd, path, a, b)` over
    do(t, dirfd, path, a, b): the old call is the *at one from the cwd."""
    syscall(name)(lambda t, path, a, b, *_: do(t, C.AT_FDCWD, read_path(t, path), a, b))
    syscall(name + "at")(lambda t, dirfd, path, a, b, *_: do(t, s32(dirfd), read_path(t, path), a, b))


def new_name(t, dirfd: int, path: bytes, mode: int | None, trailing_ok: bool = False):
    """Where a new name goes (Linux's filename_create, the
    security_path_* hook for a new inode of this mode, and may_create):
    the parent dentry and the name, which must not exist yet.  No mode: a
    link, whose hook is Landlock's refer check."""
    parent, name, trailing = namei.lookup_parent(t, dirfd, path)
    if name in (b".", b"..") or parent.child(name) is not None:
        raise KernelError(E.EEXIST)
    if trailing and not trailing_ok:
        raise KernelError(E.ENOENT)
    want_write(parent)
    if mode is not None:
        landlock.check_make(t, parent, mode)
    permission(parent.inode, C.W_OK | C.X_OK, t.proc.creds)
    return parent, name


def do_open(t, dirfd: int, path: bytes, flags: int, mode: int) -> int:
    t.files.reserve()       # EMFILE before the walk creates or truncates anything
    if flags & C.O_TMPFILE == C.O_TMPFILE:
        return _open_tmpfile(t, dirfd, path, flags, mode)
    d, created = open_walk(t, dirfd, path, flags, mode)
    return open_dentry(t, d, flags, created)


def open_walk(t, dirfd: int, path: bytes, flags: int, mode: int) -> tuple[Dentry, bool]:
    """The name's dentry for open (Linux's path walk and lookup_open):
    made now with O_CREAT (then True), O_EXCL refusing one that exists,
    O_NOFOLLOW a symlink."""
    creds = t.proc.creds
    if not flags & C.O_CREAT:
        return namei.lookup(t, dirfd, path, follow=not flags & C.O_NOFOLLOW), False
    parent, name, trailing = namei.lookup_parent(t, dirfd, path)
    d = _lookup_open(t, parent, name, trailing, mode)
    if d is None:
        return parent.child(name), True
    if flags & C.O_EXCL:
        raise KernelError(E.EEXIST)
    holder = parent.inode
    if d.inode.is_symlink:
        if flags & C.O_NOFOLLOW:
            raise KernelError(E.ELOOP)
        try:
            d = namei.lookup(t, dirfd, path, follow=True)
        except KernelError as e:
            if e.errno != E.ENOENT:
                raise
            return _create_through_link(t, parent, d, mode)
        holder = d.up().inode           # the directory the link led to
    while d.mounted is not None:
        d = d.mounted.root
    if d.inode.is_dir:
        raise KernelError(E.EISDIR)
    may_create_in_sticky(t.kernel.tunables, creds, holder, d.inode)
    return d, False


def _lookup_open(t, parent: Dentry, name: bytes, trailing: bool, mode: int) -> Dentry | None:
    """lookup_open with O_CREAT: the name's dentry in parent, or None when
    it was missing and is made now (a regular file, IN_CREATE)."""
    if trailing or name in (b".", b".."):
        raise KernelError(E.EISDIR)
    permission(parent.inode, C.X_OK, t.proc.creds)
    d = parent.child(name)
    if d is not None:
        return d
    want_write(parent)
    landlock.check_make(t, parent, C.S_IFREG)     # may_o_create's security_path_mknod
    permission(parent.inode, C.W_OK, t.proc.creds)
    d = parent.instantiate(name, parent.inode.create(
        name, *new_inode_owner(t, parent.inode, C.S_IFREG | mode & 0o7777)))
    N.name_event(parent.inode, N.IN_CREATE, name, d.inode)
    return None


def _create_through_link(t, parent: Dentry, link: Dentry, mode: int) -> tuple[Dentry, bool]:
    """O_CREAT through a dangling trailing symlink (open_last_lookups on
    the link's body, from the link's directory): the name the last link
    names is made, if its directory exists (else ENOENT)."""
    budget = [namei.MAXSYMLINKS]
    while True:
        if namei.may_step_into(t, parent, link, budget) is not None:
            raise KernelError(E.ENOENT)     # a magic link to nothing
        parent, name, trailing = namei.parent_at(t, parent, link.inode.readlink(), budget)
        link = _lookup_open(t, parent, name, trailing, mode)
        if link is None:
            return parent.child(name), True
        if not link.inode.is_symlink:
            raise KernelError(E.ENOENT)     # made meanwhile: the walk said it was missing


def open_dentry(t, d, flags: int, created: bool = False) -> int:
    """do_open after the walk: the file at d (just made, if created) opened
    with flags into a new fd (O_PATH, or dentry_open's)."""
    cloexec = bool(flags & C.O_CLOEXEC)
    fdt = t.files
    if flags & C.O_DIRECTORY and not d.inode.is_dir:
        raise KernelError(E.ENOTDIR)    # the walk's LOOKUP_DIRECTORY: O_PATH and a symlink not followed too
    if flags & C.O_PATH:
        f = File(d, d.inode, flags & (C.O_PATH | C.O_CLOEXEC | C.O_DIRECTORY | C.O_NOFOLLOW))
        return fdt.install(f, cloexec)
    try:
        f = dentry_open(t, d, flags, created)
    except Block as b:
        inner = b.retry
        if inner is not None:       # the inode's open waits (a fifo); a lease break runs the call again
            b.retry = lambda: fdt.install(inner(), cloexec)
        raise
    fd = fdt.install(f, cloexec)
    N.file_event(f, N.IN_OPEN)
    if flags & C.O_TRUNC and f.inode.is_reg and not created:
        N.dentry_event(d, N.IN_MODIFY)      # handle_truncate, after the open (Linux 6.10+)
    return fd


def open_access(flags: int) -> int:
    """What an open of an existing file asks of its mode (may_open's
    MAY_READ and MAY_WRITE, which O_TRUNC wants too): R_OK | W_OK bits."""
    acc = flags & C.O_ACCMODE
    return (C.R_OK if acc in (C.O_RDONLY, C.O_RDWR) else 0) \
        | (C.W_OK if acc in (C.O_WRONLY, C.O_RDWR) or flags & C.O_TRUNC else 0)


def dentry_open(t, d, flags: int, created: bool = False):
    """The open file of d, with no fd (Linux's filp_open after the walk):
    may_open's checks, O_TRUNC, the inode's own open (which may wait)."""
    acc = flags & C.O_ACCMODE
    creds = t.proc.creds
    inode = d.inode
    fmt = inode.mode & C.S_IFMT
    if flags & C.O_DIRECTORY and fmt != C.S_IFDIR:
        raise KernelError(E.ENOTDIR)
    if fmt == C.S_IFLNK:
        raise KernelError(E.ELOOP)
    if fmt == C.S_IFDIR and (acc != C.O_RDONLY or flags & C.O_TRUNC):
        raise KernelError(E.EISDIR)
    if fmt in (C.S_IFBLK, C.S_IFCHR) and (d.mount is not None and d.mount.has(MS.MOUNT_ATTR_NODEV)
                                          or inode.fs.user_ns is not None):
        raise KernelError(E.EACCES)         # may_open_dev (SB_I_NODEV: a user namespace's filesystem)
    if not created:
        want = open_access(flags)
        permission(inode, want, creds)
        if want & C.W_OK and fmt in (C.S_IFREG, C.S_IFDIR):
            want_write(d)
            get_write_access(inode)
            if inode.get_fsflags() & C.FS_APPEND_FL and (not flags & C.O_APPEND or flags & C.O_TRUNC):
                raise KernelError(E.EPERM)      # may_open: append-only without O_APPEND (immutable: permission)
        if flags & C.O_NOATIME and not owner_or_capable(inode, creds):
            raise KernelError(E.EPERM)          # may_open: only the owner may open without atime updates
        lease.break_lease(t, inode, flags)      # do_dentry_open: may wait for the holders
    # security_file_open: Landlock, then fanotify's listeners may say no (and make us wait)
    landlock.check_open(t, d, flags)
    return fanotify.permission(t, d, fanotify.FAN_OPEN_PERM, lambda: _open_allowed(t, d, flags, created))


def _open_allowed(t, d, flags: int, created: bool):
    """dentry_open once the open is allowed: O_TRUNC, then the inode's own
    open (which may wait)."""
    inode = d.inode
    directio.check_open(inode, flags)
    if flags & C.O_TRUNC and inode.is_reg and not created:
        kill_suid(inode, t.proc.creds)
        inode.truncate(0)
    kept = flags & OPEN_FLAGS_KEPT
    if inode.fmt == C.S_IFBLK:
        kept |= flags & C.O_EXCL        # blkdev_open: an exclusive open
    return inode.open_file(d, kept, t)


def _open_tmpfile(t, dirfd: int, path: bytes, flags: int, mode: int) -> int:
    """open(dir, O_TMPFILE|O_RDWR): a file with no name in dir's filesystem;
    without O_EXCL, linkat may name it later (Linux's I_LINKABLE)."""
    if flags & C.O_ACCMODE not in (C.O_WRONLY, C.O_RDWR) or flags & C.O_CREAT:
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, dirfd, path)
    if not d.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    creds = t.proc.creds
    permission(d.inode, C.W_OK | C.X_OK, creds)
    want_write(d)
    inode = d.inode.tmpfile(*new_inode_owner(t, d.inode, mode & 0o7777))
    inode.linkable = not flags & C.O_EXCL
    directio.check_open(inode, flags)
    named = Dentry(b"#%d" % inode.ino, d, inode, d.mount)
    landlock.check_open(t, named, flags)
    f = inode.open_file(named, flags & OPEN_FLAGS_KEPT & ~C.O_TMPFILE, t)
    return t.files.install(f, bool(flags & C.O_CLOEXEC))


@syscall("open")
def sys_open(t, path, flags, mode, *_):
    return do_open(t, C.AT_FDCWD, read_path(t, path), s32(flags), mode)


@syscall("openat")
def sys_openat(t, dirfd, path, flags, mode, *_):
    return do_open(t, s32(dirfd), read_path(t, path), s32(flags), mode)


# build_open_flags: what openat2 accepts (openat ignores unknown bits)
_VALID_OPEN = (C.O_ACCMODE | C.O_CREAT | C.O_EXCL | C.O_NOCTTY | C.O_TRUNC | C.O_APPEND | C.O_NONBLOCK
               | C.O_SYNC | C.O_DSYNC | C.O_ASYNC | C.O_DIRECT | C.O_LARGEFILE | C.O_DIRECTORY
               | C.O_NOFOLLOW | C.O_NOATIME | C.O_CLOEXEC | C.O_PATH | C.O_TMPFILE)
_PATH_FLAGS = C.O_DIRECTORY | C.O_NOFOLLOW | C.O_PATH | C.O_CLOEXEC
OPEN_HOW_SIZE_VER0 = 24


@syscall("openat2")
def sys_openat2(t, dirfd, path, how, size, *_):
    """openat with a struct open_how (copy_struct_from_user: a bigger
    struct from a newer libc is fine if its tail is zero) and RESOLVE_*
    restrictions on the walk."""
    if size < OPEN_HOW_SIZE_VER0:
        raise KernelError(E.EINVAL)
    if size > 4096:
        raise KernelError(E.E2BIG)
    flags, mode, resolve = struct.unpack("<QQQ", t.mem.read(how, OPEN_HOW_SIZE_VER0))
    if size > OPEN_HOW_SIZE_VER0 and any(t.mem.read(how + OPEN_HOW_SIZE_VER0, size - OPEN_HOW_SIZE_VER0)):
        raise KernelError(E.E2BIG)
    creating = flags & C.O_CREAT or flags & C.O_TMPFILE == C.O_TMPFILE
    if flags & ~_VALID_OPEN or resolve & ~namei.RESOLVE_ALL \
            or (resolve & namei.RESOLVE_BENEATH and resolve & namei.RESOLVE_IN_ROOT) \
            or (mode & ~0o7777 if creating else mode) \
            or (flags & C.O_PATH and flags & ~_PATH_FLAGS):
        raise KernelError(E.EINVAL)
    if resolve & namei.RESOLVE_CACHED and flags & (C.O_TRUNC | C.O_CREAT | C.O_TMPFILE):
        raise KernelError(E.EAGAIN)
    p = read_path(t, path)
    dfd = s32(dirfd)
    if not resolve:
        return do_open(t, dfd, p, flags, mode)
    start = t.fs.cwd if dfd == C.AT_FDCWD else t.files.get_raw(dfd).dentry
    if start is None:
        raise KernelError(E.ENOTDIR)
    t.nd = namei.Scope(resolve, start)
    try:
        return do_open(t, dfd, p, flags, mode)
    finally:
        t.nd = None


@syscall("creat")
def sys_creat(t, path, mode, *_):
    return do_open(t, C.AT_FDCWD, read_path(t, path), C.O_CREAT | C.O_WRONLY | C.O_TRUNC, mode)


@syscall("close")
def sys_close(t, fd, *_):
    fdt = t.files
    fdt.close(s32(fd))
    return 0


@syscall("close_range")
def sys_close_range(t, first, last, flags, *_):
    CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise KernelError(E.EINVAL)
    if flags & CLOSE_RANGE_UNSHARE:     # a table shared by CLONE_FILES becomes private first
        t.files = t.files.unshare(t.kernel.tunables.nr_open)
    fdt = t.files
    for fd in [fd for fd in fdt.files if first <= fd <= last]:
        if flags & CLOSE_RANGE_CLOEXEC:
            fdt.cloexec.add(fd)
        else:
            fdt.close(fd)
    return 0


def do_mknod(t, dirfd: int, path: bytes, mode: int, dev: int) -> int:
    fmt = mode & C.S_IFMT or C.S_IFREG
    if fmt == C.S_IFDIR or fmt not in (C.S_IFREG, C.S_IFCHR, C.S_IFBLK, C.S_IFIFO, C.S_IFSOCK):
        raise KernelError(E.EINVAL if fmt != C.S_IFDIR else E.EPERM)
    creds = t.proc.creds
    if fmt in (C.S_IFCHR, C.S_IFBLK):
        cred.need(creds, K.CAP_MKNOD)
    parent, name = new_name(t, dirfd, path, fmt)
    rdev = structs.makedev((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)) \
        if fmt in (C.S_IFCHR, C.S_IFBLK) else 0
    made = parent.inode.create(name, *new_inode_owner(t, parent.inode, fmt | mode & 0o7777), rdev)
    N.name_event(parent.inode, N.IN_CREATE, name, made)
    return 0


path_and_at("mknod", do_mknod)


def do_mkdir(t, dirfd: int, path: bytes, mode: int, _unused: int = 0) -> int:
    parent, name = new_name(t, dirfd, path, C.S_IFDIR, trailing_ok=True)
    made = parent.inode.create(name, *new_inode_owner(t, parent.inode, C.S_IFDIR | mode & 0o1777, 0o1777))
    N.name_event(parent.inode, N.IN_CREATE, name, made)
    return 0


path_and_at("mkdir", do_mkdir)


def _may_delete(t, parent, victim) -> None:
    creds = t.proc.creds
    want_write(parent)
    permission(parent.inode, C.W_OK | C.X_OK, creds)
    if parent.inode.get_fsflags() & C.FS_APPEND_FL:
        raise KernelError(E.EPERM)      # an append-only directory loses no name
    if parent.inode.mode & C.S_ISVTX and creds.fsuid != parent.inode.uid \
            and not owner_or_capable(victim.inode, creds):
        raise KernelError(E.EPERM)      # sticky: only the owners of the name may remove it
    if victim.inode.get_fsflags() & (C.FS_APPEND_FL | C.FS_IMMUTABLE_FL):
        raise KernelError(E.EPERM)
    if victim.mounted is not None or (victim.parent is None and victim.mount is not None):
        raise KernelError(E.EBUSY)


def do_unlink(t, dirfd: int, path: bytes, rmdir: bool) -> int:
    parent, name, trailing = namei.lookup_parent(t, dirfd, path)
    if rmdir:
        if name == b".":
            raise KernelError(E.EINVAL)
        if name == b"..":
            raise KernelError(E.ENOTEMPTY)
    elif name in (b".", b".."):
        raise KernelError(E.EISDIR)
    victim = parent.child(name)
    if victim is None:
        raise KernelError(E.ENOENT)
    if not rmdir and trailing and not victim.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    landlock.check_remove(t, parent, victim)
    _may_delete(t, parent, victim)
    if rmdir:
        if not victim.inode.is_dir:
            raise KernelError(E.ENOTDIR)
        parent.inode.rmdir(name)
    else:
        parent.inode.unlink(name)
    parent.forget(name)
    ino = victim.inode
    if not ino.is_dir:
        N.inode_event(ino, N.IN_ATTRIB)    # its link count changed
    if ino.is_dir or (ino.nlink == 0 and not ino.in_use):
        N.gone(ino)                        # else at its last close
    N.name_event(parent.inode, N.IN_DELETE, name, ino)
    return 0


@syscall("unlink")
def sys_unlink(t, path, *_):
    return do_unlink(t, C.AT_FDCWD, read_path(t, path), False)


@syscall("rmdir")
def sys_rmdir(t, path, *_):
    return do_unlink(t, C.AT_FDCWD, read_path(t, path), True)


@syscall("unlinkat")
def sys_unlinkat(t, dirfd, path, flags, *_):
    if flags & ~C.AT_REMOVEDIR:
        raise KernelError(E.EINVAL)
    return do_unlink(t, s32(dirfd), read_path(t, path), bool(flags & C.AT_REMOVEDIR))


def _notify_move(old_dir, old_name: bytes, new_dir, new_name: bytes, moved, target) -> None:
    """fsnotify_move: the pair of named events with one cookie, the
    replaced target's link count, then the moved inode's IN_MOVE_SELF."""
    cookie = N.next_cookie()
    same = N.FS_DN_RENAME if old_dir is new_dir else 0
    N.rename_event(old_dir, old_name, new_dir, new_name, moved)
    N.name_event(old_dir, N.IN_MOVED_FROM | same, old_name, moved, cookie)
    N.name_event(new_dir, N.IN_MOVED_TO, new_name, moved, cookie)
    if target is not None:
        N.inode_event(target, N.IN_ATTRIB)
    N.inode_event(moved, N.IN_MOVE_SELF)


def do_rename(t, olddir: int, oldpath: bytes, newdir: int, newpath: bytes, flags: int) -> int:
    if flags & ~(C.RENAME_NOREPLACE | C.RENAME_EXCHANGE) or \
            (flags & C.RENAME_NOREPLACE and flags & C.RENAME_EXCHANGE):
        raise KernelError(E.EINVAL)
    op, on, _ = namei.lookup_parent(t, olddir, oldpath)
    np, nn, _ = namei.lookup_parent(t, newdir, newpath)
    if on in (b".", b"..") or nn in (b".", b".."):
        raise KernelError(E.EBUSY if on in (b".", b"..") else E.EEXIST)
    src = op.child(on)
    if src is None:
        raise KernelError(E.ENOENT)
    if op.inode.fs is not np.inode.fs or op.mount is not np.mount:
        raise KernelError(E.EXDEV)
    dst = np.child(nn)
    landlock.check_refer(t, src, op, np, dst, True, bool(flags & C.RENAME_EXCHANGE))
    _may_delete(t, op, src)
    # the name replaced is deleted (may_delete), a new one created (may_create)
    if dst is None:
        permission(np.inode, C.W_OK | C.X_OK, t.proc.creds)
    elif dst.inode is src.inode:
        return 0
    else:
        _may_delete(t, np, dst)
    if src.inode.is_dir:
        a = np
        while a is not None:
            if a is src:
                raise KernelError(E.EINVAL)
            a = a.parent
    if dst is not None and not flags & C.RENAME_EXCHANGE:
        # what replacing a name needs, for every filesystem (Linux's vfs_rename)
        if flags & C.RENAME_NOREPLACE:
            raise KernelError(E.EEXIST)
        if src.inode.is_dir != dst.inode.is_dir:
            raise KernelError(E.ENOTDIR if src.inode.is_dir else E.EISDIR)
        if dst.inode.is_dir:
            a = op
            while a is not None:
                if a is dst:
                    raise KernelError(E.ENOTEMPTY)
                a = a.parent
            if dst.inode.entries():
                raise KernelError(E.ENOTEMPTY)
        if dst.mounted is not None:
            raise KernelError(E.EBUSY)
    op.inode.rename(on, np.inode, nn, flags)
    exchange = dst is not None and flags & C.RENAME_EXCHANGE
    _notify_move(op.inode, on, np.inode, nn, src.inode, dst.inode if dst is not None and not exchange else None)
    if exchange:
        _notify_move(np.inode, nn, op.inode, on, dst.inode, None)
    if dst is not None and not exchange and (dst.inode.nlink == 0 or dst.inode.is_dir):
        N.gone(dst.inode)
    op.names_changed()
    np.names_changed()
    moved = op.children.pop(on, None)
    other = np.children.pop(nn, None)
    if moved is not None:
        moved.name, moved.parent = nn, np
        np.children[nn] = moved
    if flags & C.RENAME_EXCHANGE and other is not None:
        other.name, other.parent = on, op
        op.children[on] = other
    return 0


@syscall("rename")
def sys_rename(t, old, new, *_):
    return do_rename(t, C.AT_FDCWD, read_path(t, old), C.AT_FDCWD, read_path(t, new), 0)


@syscall("renameat")
def sys_renameat(t, od, old, nd, new, *_):
    return do_rename(t, s32(od), read_path(t, old), s32(nd), read_path(t, new), 0)


@syscall("renameat2")
def sys_renameat2(t, od, old, nd, new, flags, *_):
    return do_rename(t, s32(od), read_path(t, old), s32(nd), read_path(t, new), flags)


def do_link(t, olddir: int, oldpath: bytes, newdir: int, newpath: bytes, flags: int) -> int:
    if flags & ~(C.AT_SYMLINK_FOLLOW | C.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    if flags & C.AT_EMPTY_PATH and not oldpath and not cred.capable(t.proc.creds, K.CAP_DAC_READ_SEARCH):
        raise KernelError(E.ENOENT)
    src = namei.lookup(t, olddir, oldpath, follow=bool(flags & C.AT_SYMLINK_FOLLOW),
                       empty_ok=bool(flags & C.AT_EMPTY_PATH))
    # the new name first (filename_create: EEXIST, EROFS...), then vfs_link's checks
    parent, name = new_name(t, newdir, newpath, None)
    if parent.inode.fs is not src.inode.fs or parent.mount is not src.mount:
        raise KernelError(E.EXDEV)
    may_linkat(t.kernel.tunables, src.inode, t.proc.creds)
    landlock.check_refer(t, src, src.parent, parent, None, False, False)
    if src.inode.get_fsflags() & (C.FS_APPEND_FL | C.FS_IMMUTABLE_FL) or src.inode.is_dir:
        raise KernelError(E.EPERM)
    if src.inode.nlink == 0 and not getattr(src.inode, "linkable", False):
        raise KernelError(E.ENOENT)     # unlinked, or O_TMPFILE|O_EXCL: never named again
    parent.inode.link(name, src.inode)
    src.inode.linkable = False
    N.inode_event(src.inode, N.IN_ATTRIB)
    N.name_event(parent.inode, N.IN_CREATE, name, src.inode)
    return 0


@syscall("link")
def sys_link(t, old, new, *_):
    return do_link(t, C.AT_FDCWD, read_path(t, old), C.AT_FDCWD, read_path(t, new), 0)


@syscall("linkat")
def sys_linkat(t, od, old, nd, new, flags, *_):
    return do_link(t, s32(od), read_path(t, old), s32(nd), read_path(t, new), flags)


def do_symlink(t, target: bytes, dirfd: int, path: bytes) -> int:
    if not target:
        raise KernelError(E.ENOENT)
    parent, name = new_name(t, dirfd, path, C.S_IFLNK)
    _, uid, gid = new_inode_owner(t, parent.inode, C.S_IFLNK | 0o777)
    made = parent.inode.symlink(name, target, uid, gid)
    N.name_event(parent.inode, N.IN_CREATE, name, made)
    return 0


@syscall("symlink")
def sys_symlink(t, target, path, *_):
    return do_symlink(t, read_path(t, target), C.AT_FDCWD, read_path(t, path))


@syscall("symlinkat")
def sys_symlinkat(t, target, dirfd, path, *_):
    return do_symlink(t, read_path(t, target), s32(dirfd), read_path(t, path))


def do_readlink(t, dirfd: int, path: bytes, buf: int, size: int) -> int:
    if s32(size) <= 0:
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, dirfd, path, follow=False, empty_ok=True)
    if not path and not d.inode.is_symlink:
        raise KernelError(E.ENOENT)     # an empty path names dirfd's file: only a symlink is read
    data = d.inode.readlink()[:size]
    t.mem.write(buf, data)
    return len(data)


path_and_at("readlink", do_readlink)


def _target(x):
    """(inode, dentry) of a dentry or an open file (whose dentry may be None)."""
    return (x.inode, x) if not isinstance(x, File) else (x.inode, x.dentry)


def _writable_target(target) -> None:
    """mnt_want_write(_file): EROFS on a read-only mount or filesystem,
    before any check of who may change the inode (notify_change)."""
    inode, d = _target(target)
    if d is not None:
        want_write(d)
    elif inode.fs.read_only:
        raise KernelError(E.EROFS)


def do_chmod(t, target, mode: int) -> int:
    inode, d = _target(target)
    creds = t.proc.creds
    _writable_target(target)
    check_settable(inode)
    check_owner(inode, creds)
    mode &= 0o7777
    if mode & C.S_ISGID and not cred.in_group(creds, inode.gid) and not cred.capable(creds, K.CAP_FSETID):
        mode &= ~C.S_ISGID
    inode.check_chmod(mode)
    inode.mode = (inode.mode & C.S_IFMT) | mode
    inode.touch(m=False)
    N.dentry_event(d, N.IN_ATTRIB, inode)
    return 0


@syscall("chmod")
def sys_chmod(t, path, mode, *_):
    return do_chmod(t, namei.lookup(t, C.AT_FDCWD, read_path(t, path)), mode)


@syscall("fchmod")
def sys_fchmod(t, fd, mode, *_):
    return do_chmod(t, t.files.get(s32(fd)), mode)


@syscall("fchmodat")
def sys_fchmodat(t, dirfd, path, mode, *_):
    return do_chmod(t, namei.lookup(t, s32(dirfd), read_path(t, path)), mode)


def do_chown(t, target, uid: int, gid: int) -> int:
    inode, d = _target(target)
    creds = t.proc.creds
    uid, gid = (userns.need_kernel(creds.user_ns, which, v) if v != cred.NO_ID else v
                for which, v in (("uid_map", cred.id_arg(uid)), ("gid_map", cred.id_arg(gid))))
    _writable_target(target)
    if (uid, gid) != (cred.NO_ID, cred.NO_ID):
        check_settable(inode)
    if not cred.capable(creds, K.CAP_CHOWN):
        # the owner may only give the file to one of its own groups
        owner = creds.fsuid == inode.uid
        if uid != cred.NO_ID and not (owner and uid == inode.uid):
            raise KernelError(E.EPERM)
        if gid != cred.NO_ID and not (owner and (gid == inode.gid or cred.in_group(creds, gid))):
            raise KernelError(E.EPERM)
    # chown_common: every chown of a non-directory, even to (-1, -1), kills
    # set-user-ID, and set-group-ID as setattr_should_drop_sgid says; the
    # mode change that makes needs the owner (setattr_prepare)
    kill = 0 if inode.is_dir else \
        inode.mode & C.S_ISUID | (C.S_ISGID if drop_sgid(inode, creds) else 0)
    if kill and not owner_or_capable(inode, creds):
        raise KernelError(E.EPERM)
    if uid != cred.NO_ID:
        inode.uid = uid
    if gid != cred.NO_ID:
        inode.gid = gid
    inode.mode &= ~kill
    inode.touch(m=False)
    if kill or (uid, gid) != (cred.NO_ID, cred.NO_ID):
        N.dentry_event(d, N.IN_ATTRIB, inode)
    return 0


@syscall("chown")
def sys_chown(t, path, uid, gid, *_):
    return do_chown(t, namei.lookup(t, C.AT_FDCWD, read_path(t, path)), uid, gid)


@syscall("lchown")
def sys_lchown(t, path, uid, gid, *_):
    return do_chown(t, namei.lookup(t, C.AT_FDCWD, read_path(t, path), follow=False), uid, gid)


@syscall("fchown")
def sys_fchown(t, fd, uid, gid, *_):
    return do_chown(t, t.files.get(s32(fd)), uid, gid)


@syscall("fchownat")
def sys_fchownat(t, dirfd, path, uid, gid, flags, *_):
    if flags & ~(C.AT_SYMLINK_NOFOLLOW | C.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, s32(dirfd), read_path(t, path) if path else b"",
                     follow=not flags & C.AT_SYMLINK_NOFOLLOW, empty_ok=bool(flags & C.AT_EMPTY_PATH))
    return do_chown(t, d, uid, gid)


def _check_new_size(t, inode, size: int) -> None:
    """inode_newsize_ok: growing a file past the caller's RLIMIT_FSIZE is
    SIGXFSZ and EFBIG."""
    limit = file_size_limit(t)
    if size > inode.size() and limit != C.RLIM_INFINITY and size > limit:
        raise exceed_fsize(t)


def _truncate(t, inode, d, length: int) -> int:
    """do_truncate: the size checks of notify_change (inode_newsize_ok:
    RLIMIT_FSIZE), then the filesystem's."""
    _check_new_size(t, inode, length)
    kill_suid(inode, t.proc.creds)
    inode.truncate(length)
    N.dentry_event(d, N.IN_MODIFY, inode)
    return 0


@syscall("truncate")
def sys_truncate(t, path, length, *_):
    """vfs_truncate's order: a negative length before the name, then the
    type (EISDIR, EINVAL), a read-only mount, an immutable file (EPERM),
    write permission, an append-only file (EPERM), a running program
    (ETXTBSY); then the leases are broken."""
    length = s64(length)
    if length < 0:
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path))
    inode = d.inode
    if inode.is_dir:
        raise KernelError(E.EISDIR)
    if not inode.is_reg:
        raise KernelError(E.EINVAL)
    want_write(d)
    permission(inode, C.W_OK, t.proc.creds)     # immutable: EPERM, before the mode bits
    if inode.get_fsflags() & C.FS_APPEND_FL:
        raise KernelError(E.EPERM)
    get_write_access(inode)
    lease.break_lease(t, inode, C.O_WRONLY)
    return _truncate(t, inode, d, length)


@syscall("ftruncate")
def sys_ftruncate(t, fd, length, *_):
    """do_sys_ftruncate: a negative length before the fd; a file that is not
    regular or not open for writing is EINVAL."""
    length = s64(length)
    if length < 0:
        raise KernelError(E.EINVAL)
    f = t.files.get(s32(fd))
    if f.inode is None or not f.inode.is_reg or not f.writable:
        raise KernelError(E.EINVAL)
    if f.inode.get_fsflags() & C.FS_APPEND_FL:
        raise KernelError(E.EPERM)
    return _truncate(t, f.inode, f.dentry, length)


_NS = 10**9


def do_utimes(t, dirfd: int, path: int, times: tuple[tuple[int, int], tuple[int, int]] | None,
              flags: int) -> int:
    """do_utimes: a NULL path with a dirfd other than AT_FDCWD changes that
    open file (no flags allowed), otherwise the path names the file.
    times: (seconds, nanoseconds) for atime and mtime, or None for now."""
    if not path and dirfd != C.AT_FDCWD:
        if flags:
            raise KernelError(E.EINVAL)
        target = t.files.get(dirfd)
    else:
        if flags & ~(C.AT_SYMLINK_NOFOLLOW | C.AT_EMPTY_PATH):
            raise KernelError(E.EINVAL)
        target = namei.lookup(t, dirfd, read_path(t, path), follow=not flags & C.AT_SYMLINK_NOFOLLOW,
                              empty_ok=bool(flags & C.AT_EMPTY_PATH))
    return _vfs_utimes(t, target, times)


def _vfs_utimes(t, target, times) -> int:
    """vfs_utimes and notify_change: nanoseconds in range (or UTIME_NOW,
    UTIME_OMIT), a writable mount, then explicit times need the owner (or
    CAP_FOWNER) and the file neither immutable nor append-only; "now" needs
    the owner or write permission, and the file not immutable."""
    inode, d = _target(target)
    if times is not None:
        for _, ns in times:
            if ns not in (C.UTIME_NOW, C.UTIME_OMIT) and not 0 <= ns < _NS:
                raise KernelError(E.EINVAL)
        if times[0][1] == times[1][1] == C.UTIME_NOW:
            times = None
    _writable_target(target)
    creds = t.proc.creds
    if times is not None:
        check_settable(inode)
        check_owner(inode, creds)
    else:
        if inode.get_fsflags() & C.FS_IMMUTABLE_FL:
            raise KernelError(E.EPERM)
        if not owner_or_capable(inode, creds):
            permission(inode, C.W_OK, creds)
    now = now_ns()
    changed = []
    for i, attr in enumerate(("atime", "mtime")):
        s, ns = times[i] if times is not None else (0, C.UTIME_NOW)
        changed.append(ns != C.UTIME_OMIT)
        if changed[-1]:
            setattr(inode, attr, now if ns == C.UTIME_NOW else s * _NS + ns)
    inode.ctime = now
    # fsnotify_change: both times are a utime, one alone an access or a modification
    N.dentry_event(d, N.IN_ATTRIB if all(changed) else N.IN_ACCESS if changed[0] else N.IN_MODIFY, inode)
    return 0


def _pair(t, addr: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Two (seconds, fraction) times at addr (timespec or timeval pairs), or
    None for a NULL pointer."""
    if not addr:
        return None
    a_s, a_f, m_s, m_f = struct.unpack("<qqqq", t.mem.read(addr, 32))
    return (a_s, a_f), (m_s, m_f)


@syscall("utimensat")
def sys_utimensat(t, dirfd, path, times, flags, *_):
    ts = _pair(t, times)
    if ts is not None and ts[0][1] == ts[1][1] == C.UTIME_OMIT:
        return 0        # nothing to do: the path is not even looked at
    return do_utimes(t, s32(dirfd), path, ts, flags)


def _timevals(t, addr: int):
    """utimes/futimesat's struct timeval pair: microseconds out of range
    are EINVAL here, so that UTIME_NOW and UTIME_OMIT cannot be passed."""
    tv = _pair(t, addr)
    if tv is None:
        return None
    if not all(0 <= us < 10**6 for _, us in tv):
        raise KernelError(E.EINVAL)
    return tuple((s, us * 1000) for s, us in tv)


@syscall("utimes")
def sys_utimes(t, path, times, *_):
    return do_utimes(t, C.AT_FDCWD, path, _timevals(t, times), 0)


@syscall("futimesat")
def sys_futimesat(t, dirfd, path, times, *_):
    return do_utimes(t, s32(dirfd), path, _timevals(t, times), 0)


@syscall("utime")
def sys_utime(t, path, times, *_):
    """struct utimbuf: whole seconds for atime and mtime."""
    ts = None
    if times:
        a, m = struct.unpack("<qq", t.mem.read(times, 16))
        ts = ((a, 0), (m, 0))
    return do_utimes(t, C.AT_FDCWD, path, ts, 0)


def do_access(t, dirfd: int, path: bytes, mode: int, flags: int) -> int:
    if mode & ~7 or flags & ~(C.AT_EACCESS | C.AT_SYMLINK_NOFOLLOW | C.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    creds = t.proc.creds
    if not flags & C.AT_EACCESS:
        creds = cred.access_creds(creds)
    d = namei.lookup(t, dirfd, path, follow=not flags & C.AT_SYMLINK_NOFOLLOW,
                     empty_ok=bool(flags & C.AT_EMPTY_PATH))
    if mode & C.W_OK and d.inode.fs.read_only and (d.inode.is_reg or d.inode.is_dir):
        raise KernelError(E.EROFS)
    permission(d.inode, mode, creds)
    return 0


@syscall("access")
def sys_access(t, path, mode, *_):
    return do_access(t, C.AT_FDCWD, read_path(t, path), mode, 0)


@syscall("faccessat")
def sys_faccessat(t, dirfd, path, mode, *_):
    return do_access(t, s32(dirfd), read_path(t, path), mode, 0)


@syscall("faccessat2")
def sys_faccessat2(t, dirfd, path, mode, flags, *_):
    return do_access(t, s32(dirfd), read_path(t, path), mode, flags)


@syscall("getdents64")
def sys_getdents64(t, fd, buf, count, *_):
    return do_getdents(t, fd, buf, count, structs.pack_dirent64)


@syscall("getdents")
def sys_getdents(t, fd, buf, count, *_):
    """The old getdents (struct linux_dirent), which x86-64 still has."""
    return do_getdents(t, fd, buf, count, structs.pack_dirent)


def do_getdents(t, fd: int, buf: int, count: int, pack) -> int:
    f = t.files.get(s32(fd))
    if f.inode is None or not f.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    if f.inode.nlink == 0:
        raise KernelError(E.ENOENT)     # iterate_dir: IS_DEADDIR, a directory removed while open
    data = f.getdents(u32(count), pack)
    t.mem.write(buf, data)
    if data:
        touch_atime(f)
    N.file_event(f, N.IN_ACCESS)     # iterate_dir: even at the end of the directory
    return len(data)


def _searchable_dir(t, path: int):
    """The directory at path, which the caller may search (chdir, chroot)."""
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path))
    if not d.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    permission(d.inode, C.X_OK, t.proc.creds)
    return d


@syscall("chdir")
def sys_chdir(t, path, *_):
    t.fs.cwd = _searchable_dir(t, path)
    return 0


@syscall("fchdir")
def sys_fchdir(t, fd, *_):
    f = t.files.get_raw(s32(fd))
    if f.dentry is None or not f.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    permission(f.inode, C.X_OK, t.proc.creds)
    t.fs.cwd = f.dentry
    return 0


@syscall("chroot")
def sys_chroot(t, path, *_):
    d = _searchable_dir(t, path)
    cred.need(t.proc.creds, K.CAP_SYS_CHROOT)
    t.fs.root = d
    return 0


@syscall("getcwd")
def sys_getcwd(t, buf, size, *_):
    fs = t.fs
    if fs.cwd.inode.nlink == 0:
        raise KernelError(E.ENOENT)     # d_unlinked: the directory was removed
    path = fs.cwd.path(fs.root) + b"\0"
    if not fs.cwd.reachable_from(fs.root):
        path = b"(unreachable)" + path  # outside the root (chroot): not an absolute path
    if len(path) > C.PATH_MAX:
        raise KernelError(E.ENAMETOOLONG)   # it does not fit the kernel's one-page buffer
    if len(path) > size:
        raise KernelError(E.ERANGE)
    t.mem.write(buf, path)
    return len(path)


@syscall("umask")
def sys_umask(t, mask, *_):
    old = t.fs.umask
    t.fs.umask = mask & 0o777
    return old


def _statfs(fs, mount) -> bytes:
    """struct statfs; f_flags are the mount's and the filesystem's (ST_VALID always)."""
    st = fs.statfs()
    mnt_flags = mount.flags if mount is not None else 0
    return struct.pack("<qqQQQQQiiqqq4q", st["type"], st["bsize"], st["blocks"], st["bfree"],
                       st["bavail"], st["files"], st["ffree"], *fs.fsid(),
                       st["namelen"], st["bsize"], MS.statfs_flags(mnt_flags, fs.read_only), 0, 0, 0, 0)


@syscall("statfs")
def sys_statfs(t, path, buf, *_):
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path))
    t.mem.write(buf, _statfs(d.inode.fs, d.mount))
    return 0


@syscall("fstatfs")
def sys_fstatfs(t, fd, buf, *_):
    f = t.files.get_raw(s32(fd))
    if f.inode is None:
        raise KernelError(E.EINVAL)
    t.mem.write(buf, _statfs(f.inode.fs, f.dentry.mount if f.dentry is not None else None))
    return 0


@syscall("ustat")
def sys_ustat(t, dev, buf, *_):
    """Free blocks and inodes of the mounted filesystem on dev (an old
    32-bit dev_t, decoded as new_decode_dev): EINVAL when none is."""
    dev &= 0xFFFFFFFF
    want = ((dev & 0xFFF00) >> 8, (dev & 0xFF) | ((dev >> 12) & 0xFFF00))
    for m in t.kernel.mounts.mounts:
        d = m.fs.dev
        if (structs.major(d), structs.minor(d)) == want:
            st = m.fs.statfs()
            t.mem.write(buf, struct.pack("<iiQ6s6s4x", st["bfree"] & 0x7FFFFFFF, 0, st["ffree"], b"", b""))
            return 0
    raise KernelError(E.EINVAL)


@syscall("sync")
def sys_sync(t, *_):
    t.kernel.sync_all()
    return 0


@syscall("syncfs")
def sys_syncfs(t, fd, *_):
    t.files.get(s32(fd)).fsync()        # the filesystem of any file, a pipe's too
    return 0


@syscall("fsync", "fdatasync")
def sys_fsync(t, fd, *_):
    """vfs_fsync_range: a file without an fsync (a pipe, a socket, a tty,
    a procfs file) is EINVAL."""
    f = t.files.get(s32(fd))
    if not f.has_fsync:
        raise KernelError(E.EINVAL)
    f.fsync()
    return 0




SYNC_FILE_RANGE_FLAGS = 0x7      # WAIT_BEFORE | WRITE | WAIT_AFTER


@syscall("sync_file_range")
def sys_sync_file_range(t, fd, offset, nbytes, flags, *_):
    """Write back part of a file: the range is checked as Linux does, then
    the file is written back whole (its fsync: umlpy keeps no per-range
    dirty state)."""
    f = t.files.get(s32(fd))
    offset, nbytes = s64(offset), s64(nbytes)
    if flags & 0xFFFFFFFF & ~SYNC_FILE_RANGE_FLAGS or offset < 0 or nbytes < 0 \
            or offset + nbytes > MAX_LFS_FILESIZE:
        raise KernelError(E.EINVAL)
    inode = f.inode
    if inode is None or not (inode.is_reg or inode.is_dir or inode.is_symlink or inode.fmt == C.S_IFBLK):
        raise KernelError(E.ESPIPE)
    if flags & SYNC_FILE_RANGE_FLAGS:
        f.fsync()
    return 0


@syscall("fadvise64")
def sys_fadvise64(t, fd, off, length, advice, *_):
    f = t.files.get(s32(fd))
    if f.inode is not None and f.inode.fmt == C.S_IFIFO:
        raise KernelError(E.ESPIPE)
    if not 0 <= s32(advice) <= 5:
        raise KernelError(E.EINVAL)
    return 0      # advice only: the kernel's page cache has nothing to tune


@syscall("readahead", note="checks only: the page cache is the kernel's memory, nothing to read ahead")
def sys_readahead(t, fd, off, count, *_):
    """ksys_readahead: a file open for reading (O_PATH ones are not: EBADF),
    regular (else EINVAL), then fadvise(WILLNEED)'s length check."""
    f = t.files.get(s32(fd))
    if not f.readable:
        raise KernelError(E.EBADF)
    if f.inode is None or not f.inode.is_reg or s64(count) < 0:
        raise KernelError(E.EINVAL)
    return 0


_SHIFTS = (C.FALLOC_FL_COLLAPSE_RANGE, C.FALLOC_FL_INSERT_RANGE)    # modes that stand alone


@syscall("fallocate", status=PARTIAL, note="ext4: every mode ext4 has (allocate unwritten extents, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE, COLLAPSE_RANGE, INSERT_RANGE; extent files only but punching, as Linux's); tmpfs: allocate, KEEP_SIZE, PUNCH_HOLE (as shmem); ext2 and hostfs have none (EOPNOTSUPP, as Linux's)")
def sys_fallocate(t, fd, mode, off, length, *_):
    """vfs_fallocate's checks, then the filesystem's (inode.fallocate)."""
    f = t.files.get(s32(fd))
    off, length, mode = s64(off), s64(length), s32(mode)
    if off < 0 or length <= 0:
        raise KernelError(E.EINVAL)
    punch = mode & C.FALLOC_FL_PUNCH_HOLE
    if mode & ~C.FALLOC_FL_SUPPORTED_MASK or punch and mode & C.FALLOC_FL_ZERO_RANGE \
            or punch and not mode & C.FALLOC_FL_KEEP_SIZE:
        raise KernelError(E.EOPNOTSUPP)
    if any(mode & m and mode & ~m for m in _SHIFTS) or mode & C.FALLOC_FL_UNSHARE_RANGE \
            and mode & ~(C.FALLOC_FL_UNSHARE_RANGE | C.FALLOC_FL_KEEP_SIZE):
        raise KernelError(E.EINVAL)
    if not f.writable:
        raise KernelError(E.EBADF)
    inode = f.inode
    if inode is not None:
        fl = inode.get_fsflags()
        if fl & C.FS_IMMUTABLE_FL or fl & C.FS_APPEND_FL and mode & ~C.FALLOC_FL_KEEP_SIZE:
            raise KernelError(E.EPERM)
    if inode is None or not inode.is_reg:
        raise KernelError(E.ESPIPE if inode is not None and inode.fmt == C.S_IFIFO else
                          E.EISDIR if inode is not None and inode.is_dir else E.ENODEV)
    if off + length > max_bytes(inode):
        raise KernelError(E.EFBIG)
    # inode_newsize_ok, where the filesystems call it: growing allocations
    if not mode & (C.FALLOC_FL_KEEP_SIZE | C.FALLOC_FL_COLLAPSE_RANGE | C.FALLOC_FL_INSERT_RANGE):
        _check_new_size(t, inode, off + length)
    inode.fallocate(mode, off, length)
    N.file_event(f, N.IN_MODIFY)
    return 0
