"""dnotify: fcntl(dirfd, F_NOTIFY, DN_*) signals changes in a directory.

One mark per watched directory holds every registration, one per (fd
table, open file) as Linux's dnotify_struct: the events asked for (masks
add up across calls), and the fd the signal reports (si_fd).  An event the
registration wants sends the file owner's signal (fown.py) with POLL_MSG;
without DN_MULTISHOT the registration then goes.  Each close of a
descriptor drops the registrations its table made on that file.
"""
from __future__ import annotations

from umlpy.vfs import fsnotify as N
from umlpy.vfs.fown import POLL_MSG, send_sigio

DN_ACCESS, DN_MODIFY, DN_CREATE, DN_DELETE, DN_RENAME, DN_ATTRIB = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
DN_MULTISHOT = 0x80000000

# convert_arg: the fsnotify events each DN_* bit stands for
_EVENTS = ((DN_DELETE, N.IN_DELETE | N.IN_MOVED_FROM), (DN_MODIFY, N.IN_MODIFY), (DN_ACCESS, N.IN_ACCESS),
           (DN_ATTRIB, N.IN_ATTRIB), (DN_RENAME, N.FS_DN_RENAME), (DN_CREATE, N.IN_CREATE | N.IN_MOVED_TO))


class _Registration:
    __slots__ = ("table", "file", "fd", "mask", "multishot")

    def __init__(self, table, file, fd: int) -> None:
        self.table, self.file, self.fd = table, file, fd
        self.mask = 0
        self.multishot = False


class DnotifyMark:
    def __init__(self, inode) -> None:
        self.inode = inode
        self.regs: list[_Registration] = []

    def deliver(self, mask: int, name: bytes, cookie: int, inode_mark: bool, unlinked: bool) -> None:
        for r in list(self.regs):
            if not r.mask & mask:
                continue
            send_sigio(r.file, r.fd, POLL_MSG)
            if not r.multishot:
                self._drop(r)

    def destroy(self) -> None:
        self.regs.clear()
        N.remove_mark(self.inode, self)

    def _drop(self, r: _Registration) -> None:
        self.regs.remove(r)
        if not self.regs:
            self.destroy()


def _mark(inode, create: bool) -> DnotifyMark | None:
    for m in N.marks(inode):
        if isinstance(m, DnotifyMark):
            return m
    if not create:
        return None
    m = DnotifyMark(inode)
    N.add_mark(inode, m)
    return m


def register(table, file, fd: int, arg: int) -> None:
    """fcntl_dirnotify for a directory with some DN_* bit in arg: a new
    registration, or more events (and this fd) for the one there."""
    m = _mark(file.inode, True)
    r = next((r for r in m.regs if r.table is table and r.file is file), None)
    if r is None:
        r = _Registration(table, file, fd)
        m.regs.append(r)
    r.fd = fd
    r.mask |= sum(ev for bit, ev in _EVENTS if arg & bit)
    r.multishot |= bool(arg & DN_MULTISHOT)


def flush(table, file) -> None:
    """dnotify_flush: a close of one of file's descriptors in table."""
    m = _mark(file.inode, False) if file.inode is not None else None
    if m is None:
        return
    for r in [r for r in m.regs if r.table is table and r.file is file]:
        m._drop(r)
