"""fsnotify: the VFS reports changes; inotify and dnotify marks listen.

Marks hang on inodes (a per-inode list, `inode.fsnotify_marks`), so events
follow the inode whatever name reached it, as Linux's.  The entry points
are Linux's fsnotify hooks, and deliver in its order:

- name_event (fsnotify_name): a directory's entry changed (IN_CREATE,
  IN_DELETE, IN_MOVED_FROM/TO): the directory's marks, naming the child;
- inode_event (fsnotify_inode): the inode's own marks only (the link count's
  IN_ATTRIB, IN_MOVE_SELF, IN_DELETE_SELF, IN_UNMOUNT);
- dentry_event / file_event (fsnotify_parent): a change to what a name
  reaches (attributes, truncation; open/read/write/close of a file): first
  the parent directory's marks, naming the child, then the inode's.  Only
  file events carry a path, which IN_EXCL_UNLINK tests for an unlinked name.

A mark is anything with deliver(mask, name, cookie, inode_mark, unlinked):
inotify's watches (syscalls/sys_inotify.py), dnotify's (syscalls/sys_fd.py).
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
IN_MASK_CREATE = 0x10000000
IN_EXCL_UNLINK = 0x04000000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
ALL_EVENTS = 0xFFF
FS_DN_RENAME = 0x10000000     # internal: a rename within one directory (dnotify's DN_RENAME)

_cookie = [0]
_marked: dict[int, object] = {}     # id -> every inode that has marks (unmount finds them)

MAX_QUEUED = 16384   # fs.inotify.max_queued_events: an instance's queue



def next_cookie() -> int:
    _cookie[0] = (_cookie[0] + 1) & 0xFFFFFFFF or 1
    return _cookie[0]


def marks(inode) -> list:
    return getattr(inode, "fsnotify_marks", None) or []


def add_mark(inode, mark) -> None:
    lst = getattr(inode, "fsnotify_marks", None)
    if lst is None:
        lst = inode.fsnotify_marks = []
    lst.append(mark)
    _marked[id(inode)] = inode


def remove_mark(inode, mark) -> None:
    lst = marks(inode)
    if mark in lst:
        lst.remove(mark)
    if not lst:
        _marked.pop(id(inode), None)


def _isdir(inode) -> int:
    return IN_ISDIR if inode is not None and inode.is_dir else 0


def name_event(dir_inode, mask: int, name: bytes, child_is_dir: bool, cookie: int = 0) -> None:
    """fsnotify_name: an entry of dir_inode was made, removed or moved."""
    mask |= IN_ISDIR if child_is_dir else 0
    for m in list(marks(dir_inode)):
        m.deliver(mask, name, cookie, False, False)


def inode_event(inode, mask: int) -> None:
    """fsnotify_inode: the inode's own marks only."""
    mask |= _isdir(inode)
    for m in list(marks(inode)):
        m.deliver(mask, b"", 0, True, False)


def _unlinked(d) -> bool:
    """d_unlinked: the name was removed (the parent no longer holds it)."""
    return d.parent is not None and d.parent.children.get(d.name) is not d


def _parent_then_inode(d, inode, mask: int, unlinked: bool) -> None:
    mask |= _isdir(inode)
    if d is not None and d.parent is not None:
        for m in list(marks(d.parent.inode)):
            m.deliver(mask, d.name, 0, False, unlinked)
    for m in list(marks(inode)):
        m.deliver(mask, b"", 0, True, unlinked)


def dentry_event(d, mask: int, inode=None) -> None:
    """fsnotify_dentry: a change to what the name d reaches (inode, when
    the change came through an open file whose dentry may be None)."""
    if d is not None:
        inode = d.inode
    if inode is not None:
        _parent_then_inode(d, inode, mask, False)


def file_event(file, mask: int) -> None:
    """fsnotify_file: open, read, write or close of an open file."""
    inode = file.inode
    d = file.dentry
    if inode is None or not (marks(inode) or (d is not None and d.parent is not None and marks(d.parent.inode))):
        return
    _parent_then_inode(d, inode, mask, d is not None and _unlinked(d))


def gone(inode) -> None:
    """The inode's last name went and nothing holds it (unlink, rmdir,
    replaced by rename, the last close of an unlinked file): IN_DELETE_SELF,
    then every mark goes."""
    for m in list(marks(inode)):
        m.deliver(IN_DELETE_SELF, b"", 0, True, False)
    for m in list(marks(inode)):
        m.destroy()


def unmount(fs) -> None:
    """The filesystem's last mount went (fsnotify_sb_delete): every watched
    inode of it reports IN_UNMOUNT, then its marks go; newest inode first,
    as the superblock lists them."""
    for inode in sorted((i for i in _marked.values() if i.fs is fs), key=lambda i: -i.ino):
        inode_event(inode, IN_UNMOUNT)
        for m in list(marks(inode)):
            m.destroy()
