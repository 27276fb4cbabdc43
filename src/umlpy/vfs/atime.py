"""touch_atime: whether a read moves a file's access time, by its mount's
atime policy (noatime, nodiratime, relatime, strictatime) as Linux's
atime_needs_update decides."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import mount as MS
from umlpy.vfs.inode import now_ns

DAY_NS = 24 * 3600 * 10**9


def _relatime_needs_update(inode, now: int) -> bool:
    """relatime: only when the access time is not after the last change,
    or a day old."""
    return inode.atime <= inode.mtime or inode.atime <= inode.ctime or now - inode.atime >= DAY_NS


def touch_atime(f) -> None:
    """file_accessed: an open file was read (or a directory listed)."""
    inode = f.inode
    if inode is None or f.flags & C.O_NOATIME or inode.fs.read_only:
        return
    m = f.dentry.mount if f.dentry is not None else None
    if m is not None:
        if m.flags & (MS.MOUNT_ATTR_NOATIME | MS.MOUNT_ATTR_RDONLY):
            return
        if inode.is_dir and m.flags & MS.MOUNT_ATTR_NODIRATIME:
            return
        if m.flags & MS.MNT_RELATIME and not _relatime_needs_update(inode, now_ns()):
            return
    if inode.get_fsflags() & C.FS_NOATIME_FL:
        return      # chattr +A (IS_NOATIME)
    inode.touch(m=False, c=False, a=True)
