"""stat family: stat, lstat, fstat, newfstatat, statx."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.block.device import DMA_ALIGN
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_path, s32
from umlpy.kernel import userns
from umlpy.vfs import directio, namei


def dev_of(inode) -> int:
    return inode.fs.dev


def stat_bytes(t, inode) -> bytes:
    """struct stat, the owner as the caller's user namespace sees it."""
    c = t.proc.creds
    uid, gid = inode.uid, inode.gid
    if c.user_ns is not None:       # the initial namespace's ids are as they are
        uid, gid = userns.uid_of(c, uid), userns.gid_of(c, gid)
    dev, blksize = inode.stat_fs()
    return structs.pack_stat(dev, inode.ino, inode.nlink, inode.mode, uid, gid, inode.rdev, inode.size(),
                             blksize, inode.blocks(), inode.atime, inode.mtime, inode.ctime)


def _target(t, dirfd: int, path: int, flags: int):
    """(inode, dentry) a *stat*at call names; an fd's dentry may be None."""
    if flags & ~(C.AT_SYMLINK_NOFOLLOW | C.AT_EMPTY_PATH | C.AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE):
        raise KernelError(E.EINVAL)
    p = read_path(t, path) if path or not flags & C.AT_EMPTY_PATH else b""
    if not p and flags & C.AT_EMPTY_PATH:
        dfd = s32(dirfd)
        if dfd != C.AT_FDCWD:
            f = t.files.get_raw(dfd)
            return f.inode, f.dentry
    d = namei.lookup(t, s32(dirfd), p, follow=not flags & C.AT_SYMLINK_NOFOLLOW,
                     empty_ok=bool(flags & C.AT_EMPTY_PATH))
    return d.inode, d


@syscall("stat")
def sys_stat(t, path, buf, *_):
    t.mem.write(buf, stat_bytes(t, namei.lookup(t, C.AT_FDCWD, read_path(t, path)).inode))
    return 0


@syscall("lstat")
def sys_lstat(t, path, buf, *_):
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path), follow=False)
    t.mem.write(buf, stat_bytes(t, d.inode))
    return 0


@syscall("fstat")
def sys_fstat(t, fd, buf, *_):
    f = t.files.get_raw(s32(fd))
    t.mem.write(buf, stat_bytes(t, f.inode))
    return 0


@syscall("newfstatat")
def sys_newfstatat(t, dirfd, path, buf, flags, *_):
    t.mem.write(buf, stat_bytes(t, _target(t, dirfd, path, flags)[0]))
    return 0


AT_STATX_SYNC_TYPE = 0x6000
STATX_MTIME, STATX_CTIME, STATX_MNT_ID, STATX__RESERVED = 0x40, 0x80, 0x1000, 0x80000000
STATX_ATTR_AUTOMOUNT, STATX_ATTR_MOUNT_ROOT, STATX_ATTR_DAX = 0x1000, 0x2000, 0x200000


@syscall("statx", note="btime where the filesystem keeps one (ext4); STATX_DIOALIGN for ext4 files and block devices")
def sys_statx(t, dirfd, path, flags, mask, buf, *_):
    """vfs_statx: the basic fields and the mount id whatever was asked; the
    birth time when asked and the filesystem has it (ext4_getattr); the
    attributes the filesystem knows, and whether this is a mount's root."""
    if mask & STATX__RESERVED or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        raise KernelError(E.EINVAL)
    ino, d = _target(t, dirfd, path, flags)
    # STATX_ATTR_COMPRESSED/IMMUTABLE/APPEND/NODUMP/ENCRYPTED are the FS_*_FL bits' values
    attrs = ino.get_fsflags() & ino.fs.statx_attributes
    mnt = d.mount if d is not None else None
    if mnt is not None and mnt.root is d:
        attrs |= STATX_ATTR_MOUNT_ROOT
    got = structs.STATX_BASIC_STATS | STATX_MNT_ID
    ctime, mtime = ino.ctime, ino.mtime
    if ino.fs.mgtime and not mask & (STATX_MTIME | STATX_CTIME):
        got &= ~(STATX_MTIME | STATX_CTIME)     # fill_mg_cmtime: not asked, not reported
        ctime = mtime = 0
    btime = ino.btime() if mask & structs.STATX_BTIME else None
    if btime is not None:
        got |= structs.STATX_BTIME
    dio = _dio_alignment(ino) if mask & structs.STATX_DIOALIGN else None
    if dio is not None:
        got |= structs.STATX_DIOALIGN
    dev, blksize = ino.stat_fs()
    t.mem.write(buf, structs.pack_statx(
        got, dev, ino.ino, ino.nlink, ino.mode, userns.uid_of(t.proc.creds, ino.uid),
        userns.gid_of(t.proc.creds, ino.gid), ino.rdev, ino.size(),
        blksize, ino.blocks(), ino.atime, btime or 0, ctime, mtime,
        attrs, ino.fs.statx_attributes | STATX_ATTR_AUTOMOUNT | STATX_ATTR_MOUNT_ROOT | STATX_ATTR_DAX,
        mnt.mnt_id if mnt is not None else 0, dio or (0, 0)))
    return 0


def _dio_alignment(ino) -> tuple[int, int] | None:
    """STATX_DIOALIGN: the filesystem's answer for its files; a block
    device's own queue for a device node (bdev_statx_dioalign)."""
    if ino.fmt == C.S_IFBLK:
        align = directio.alignment(ino)
        return None if align is None else (DMA_ALIGN, align)
    return ino.dio_alignment()
