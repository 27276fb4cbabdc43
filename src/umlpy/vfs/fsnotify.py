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
fanotify (vfs/fanotify.py) keeps marks of its own on inodes, mounts and
filesystems and hears every hook as one event for all of them (Linux's
fsnotify() with its iterator over the object types); each hook calls it
after the inode marks, and files opened for fanotify's listeners
(FMODE_NONOTIFY) report nothing.  EventQueue is the notification queue
both inotify and fanotify instances read from.
"""
from __future__ import annotations

import struct
from collections import deque
from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.mm import Charge
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs import fanotify

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
FIONREAD = 0x541B

_cookie = [0]
_marked: dict[int, object] = {}     # id -> every inode that has marks (unmount finds them)

MAX_QUEUED = 16384   # fs.inotify.max_queued_events: an instance's queue


class EventQueue:
    """A group's notification list (fsnotify_add_event and the read loop
    around it): events wait in order; a full queue takes one overflow
    event, counted in the queue, and drops the rest until a reader takes
    the overflow event; readers wait on wq, and on_ready (the file's
    O_ASYNC signal) runs for each event queued.  Queued events are kernel
    memory: each is charged to the machine's RAM at cost(event)
    (kernel/mm.Charge), and one that does not fit is lost as the queue's
    overflow, as an event Linux cannot allocate (fanotify's unlimited
    queue, root raising the limits)."""

    def __init__(self, name: str, on_ready: Callable[[], None], budget, cost: Callable[[object], int]) -> None:
        self.events: deque = deque()
        self.overflow = None        # the overflow event while it is queued
        self.wq = WaitQueue(name)
        self.on_ready = on_ready
        self.charge = Charge(budget, self)
        self.cost = cost

    def add(self, ev, limit: int, make_overflow: Callable[[], object],
            merge: Callable[[object], bool] | None = None) -> int:
        """Queue ev: 0 queued, 1 merged into a queued event, 2 dropped
        (the queue is full; its one overflow event is queued)."""
        if len(self.events) < limit:
            if self.events and merge is not None and merge(ev):
                return 1
            try:
                self.charge.add(self.cost(ev))
            except KernelError:
                pass            # ENOMEM: lost, as past the limit
            else:
                self._append(ev)
                return 0
        if self.overflow is None:
            self.overflow = make_overflow()     # preallocated, as the group's: never charged
            self._append(self.overflow)
        return 2

    def _append(self, ev) -> None:
        self.events.append(ev)
        self.wq.wake_all()
        self.on_ready()

    def pop(self):
        ev = self.events.popleft()
        if ev is self.overflow:
            self.overflow = None
        else:
            self.charge.sub(self.cost(ev))
        return ev

    def remove(self, ev) -> None:
        """An event leaves the queue unread (a cancelled permission event)."""
        self.events.remove(ev)
        self.charge.sub(self.cost(ev))

    def adopt(self, events: list, overflow: int) -> None:
        """A restore's queue: events in order, the one at index overflow
        (-1: none) the overflow event; charged as queued ones (ENOMEM)."""
        for i, ev in enumerate(events):
            if i != overflow:
                self.charge.add(self.cost(ev))
            self.events.append(ev)
        self.overflow = events[overflow] if overflow >= 0 else None

    def nbytes(self, size_of: Callable[[object], int]) -> int:
        """FIONREAD: what reading every queued event would return."""
        return sum(size_of(ev) for ev in self.events)

    def read(self, nonblock: bool, n: int, size_of: Callable[[object], int],
             report: Callable[[object], bytes]) -> bytes:
        """read(2): whole events while they fit in n bytes; EINVAL when the
        first does not, EAGAIN or a wait when there is none.  An event whose
        report fails is gone; the error is the call's unless something was
        read before it."""
        if not self.events:
            if nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        if size_of(self.events[0]) > n:
            raise KernelError(E.EINVAL)
        out: list[bytes] = []
        used = 0
        while self.events and used + size_of(self.events[0]) <= n:
            try:
                data = report(self.pop())
            except KernelError:
                if out:
                    break
                raise
            out.append(data)
            used += len(data)
        return b"".join(out)


def next_cookie() -> int:
    _cookie[0] = (_cookie[0] + 1) & 0xFFFFFFFF or 1
    return _cookie[0]


def mark_fhandle(inode) -> str:
    """show_mark_fhandle: the file handle an inode mark's fdinfo line ends
    with; a filesystem without export operations of its own gets 6.1's
    default encoding (export_encode_fh: the inode number and generation)."""
    fh = inode.fs.encode_fh(inode)
    if fh is None:
        fh = C.FILEID_INO32_GEN, struct.pack("<II", inode.ino & 0xFFFFFFFF, getattr(inode, "generation", 0))
    typ, raw = fh
    return f"fhandle-bytes:{len(raw):x} fhandle-type:{typ:x} f_handle:{raw.hex()}"


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


def name_event(dir_inode, mask: int, name: bytes, child, cookie: int = 0) -> None:
    """fsnotify_name: an entry of dir_inode was made, removed or moved;
    child is the inode the name reaches (or reached)."""
    mask |= _isdir(child)
    for m in list(marks(dir_inode)):
        m.deliver(mask, name, cookie, False, False)
    fanotify.name_event(dir_inode, mask & ~FS_DN_RENAME, name, child)


def rename_event(old_dir, old_name: bytes, new_dir, new_name: bytes, moved) -> None:
    """fsnotify_move's first event, with both names (fanotify's FAN_RENAME):
    before the pair of IN_MOVED_FROM and IN_MOVED_TO."""
    fanotify.rename_event(old_dir, old_name, new_dir, new_name, moved)


def inode_event(inode, mask: int) -> None:
    """fsnotify_inode: the inode's own marks only."""
    mask |= _isdir(inode)
    for m in list(marks(inode)):
        m.deliver(mask, b"", 0, True, False)
    fanotify.inode_event(inode, mask)


def _unlinked(d) -> bool:
    """d_unlinked: the name was removed (the parent no longer holds it)."""
    return d.parent is not None and d.parent.children.get(d.name) is not d


def _parent_then_inode(d, inode, mask: int, unlinked: bool) -> None:
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
        mask |= _isdir(inode)
        _parent_then_inode(d, inode, mask, False)
        fanotify.child_event(d, inode, mask, False)


def file_event(file, mask: int) -> None:
    """fsnotify_file: open, read, write or close of an open file (none for
    the files fanotify opens for its listeners)."""
    inode = file.inode
    if inode is None or file.nonotify or not _marked and not fanotify.marking():
        return      # every open, read, write and close: no mark anywhere, nothing to do
    d = file.dentry
    mask |= _isdir(inode)
    if marks(inode) or (d is not None and d.parent is not None and marks(d.parent.inode)):
        _parent_then_inode(d, inode, mask, d is not None and _unlinked(d))
    fanotify.child_event(d, inode, mask, True)


def gone(inode) -> None:
    """The inode's last name went and nothing holds it (unlink, rmdir,
    replaced by rename, the last close of an unlinked file): IN_DELETE_SELF,
    then every mark goes."""
    for m in list(marks(inode)):
        m.deliver(IN_DELETE_SELF, b"", 0, True, False)
    fanotify.inode_event(inode, IN_DELETE_SELF | _isdir(inode))
    for m in list(marks(inode)):
        m.destroy()
    fanotify.forget(inode)


def sb_error(fs, inode, error: int) -> None:
    """fsnotify_sb_error: the filesystem reports an error (its own
    corruption, an abort), about inode or about no inode in particular."""
    fanotify.error_event(fs, inode, error)


def unmount(fs) -> None:
    """The filesystem's last mount went (fsnotify_sb_delete): every watched
    inode of it reports IN_UNMOUNT, then its marks go; newest inode first,
    as the superblock lists them."""
    for inode in sorted((i for i in _marked.values() if i.fs is fs), key=lambda i: -i.ino):
        inode_event(inode, IN_UNMOUNT)
        for m in list(marks(inode)):
            m.destroy()
    fanotify.unmount(fs)
