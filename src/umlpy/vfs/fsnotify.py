"""fsnotify: the VFS reports changes; inotify instances listen.

Watches hang on inodes (a per-inode list), so events follow the inode
whatever name reached it, as Linux's.  A directory watch also hears about
its children by name (IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO, and the
children's IN_MODIFY, IN_ATTRIB, IN_CLOSE_*, IN_OPEN).
"""
from __future__ import annotations

IN_ACCESS = 0x1
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_CLOSE_NOWRITE = 0x10
IN_OPEN = 0x20
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_ONESHOT = 0x80000000
IN_MASK_ADD = 0x20000000
IN_EXCL_UNLINK = 0x04000000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
ALL_EVENTS = 0xFFF
CHILD_EVENTS = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_OPEN

_cookie = [0]


def next_cookie() -> int:
    _cookie[0] = (_cookie[0] + 1) & 0xFFFFFFFF or 1
    return _cookie[0]


def _watches(inode) -> list:
    return getattr(inode, "inotify_watches", None) or []


def event(inode, mask: int, name: bytes = b"", cookie: int = 0) -> None:
    """Report mask on inode (a directory event names the child)."""
    for w in list(_watches(inode)):
        w.deliver(mask, name, cookie)


def child_event(parent_inode, child_inode, name: bytes, mask: int) -> None:
    """A change to a child: its own watches, then its directory's."""
    isdir = IN_ISDIR if child_inode is not None and child_inode.is_dir else 0
    if child_inode is not None:
        event(child_inode, mask | isdir)
    if parent_inode is not None and mask & (CHILD_EVENTS | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO):
        event(parent_inode, mask | isdir, name)


def dentry_event(d, mask: int) -> None:
    """An event on what a name reaches: its inode and its directory."""
    if d is None:
        return
    child_event(d.parent.inode if d.parent is not None else None, d.inode, d.name, mask)


def file_event(file, mask: int) -> None:
    """An event on an open file: its inode and its directory (by name)."""
    inode = file.inode
    if inode is None or not (getattr(inode, "inotify_watches", None) or
                             (file.dentry is not None and file.dentry.parent is not None and
                              getattr(file.dentry.parent.inode, "inotify_watches", None))):
        return
    d = file.dentry
    parent = d.parent.inode if d is not None and d.parent is not None else None
    child_event(parent, inode, d.name if d is not None else b"", mask)


def gone(inode) -> None:
    """The inode's last name went (unlink, rmdir, replaced by rename)."""
    for w in list(_watches(inode)):
        w.deliver(IN_DELETE_SELF, b"", 0)
        w.inst.remove(w)


def watched(inode) -> None:
    """A first watch on inode: its filesystem remembers it for unmount."""
    fs = inode.fs
    if getattr(fs, "watched_inodes", None) is None:
        fs.watched_inodes = set()
    fs.watched_inodes.add(inode)


def unmount(fs) -> None:
    """The filesystem is going (fsnotify_unmount_inodes): every watch on it
    hears IN_UNMOUNT, whatever its mask, then IN_IGNORED as it goes."""
    for inode in list(getattr(fs, "watched_inodes", None) or ()):
        for w in list(_watches(inode)):
            w.inst.queue(w.wd, IN_UNMOUNT, 0, b"")
            w.inst.remove(w)
    fs.watched_inodes = None

