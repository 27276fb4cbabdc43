"""inotify: watches on inodes, events read as struct inotify_event."""
from __future__ import annotations

import struct
from collections import deque

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_path, s32
from umlpy.vfs import fsnotify as N
from umlpy.vfs import namei
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, File
from umlpy.vfs.perm import permission

MAX_QUEUED = 16384
_EVENT = struct.Struct("<iIII")


class Watch:
    def __init__(self, inst: "InotifyFile", wd: int, inode, mask: int) -> None:
        self.inst = inst
        self.wd = wd
        self.inode = inode
        self.mask = mask

    def deliver(self, mask: int, name: bytes, cookie: int) -> None:
        if mask & ~(N.IN_ISDIR) & self.mask & N.ALL_EVENTS or mask & (N.IN_IGNORED | N.IN_DELETE_SELF):
            if mask & N.IN_DELETE_SELF and not self.mask & N.IN_DELETE_SELF:
                return
            self.inst.queue(self.wd, mask, cookie, name)
            if self.mask & N.IN_ONESHOT:
                self.inst.remove(self)


class InotifyFile(File):
    kind = "inotify"

    def __init__(self, flags: int) -> None:
        super().__init__(None, anon_inode("inotify"), C.O_RDONLY | (flags & C.O_NONBLOCK))
        self.watches: dict[int, Watch] = {}
        self.events: deque[bytes] = deque()
        self.next_wd = 1
        self.wq = WaitQueue("inotify")

    def queue(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        if len(self.events) >= MAX_QUEUED:
            if not self.events or _EVENT.unpack_from(self.events[-1])[1] != N.IN_Q_OVERFLOW:
                self.events.append(_EVENT.pack(-1, N.IN_Q_OVERFLOW, 0, 0))
            return
        if name:
            name = name + b"\0" * (16 - len(name) % 16)
        ev = _EVENT.pack(wd, mask, cookie, len(name)) + name
        if self.events and self.events[-1] == ev:
            return                  # Linux merges an identical event at the tail
        self.events.append(ev)
        self.wq.wake_all()

    def remove(self, w: Watch) -> None:
        self.watches.pop(w.wd, None)
        lst = getattr(w.inode, "inotify_watches", [])
        if w in lst:
            lst.remove(w)
        self.queue(w.wd, N.IN_IGNORED, 0, b"")

    def read(self, task, n: int) -> bytes:
        if not self.events:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        if len(self.events[0]) > n:
            raise KernelError(E.EINVAL)
        out = []
        used = 0
        while self.events and used + len(self.events[0]) <= n:
            ev = self.events.popleft()
            out.append(ev)
            used += len(ev)
        return b"".join(out)

    def poll(self) -> int:
        return POLLIN if self.events else 0

    def poll_queues(self) -> list:
        return [self.wq]

    def ioctl(self, task, req: int, arg: int) -> int:
        if req == 0x541B:   # FIONREAD
            task.mem.write(arg, struct.pack("<i", sum(len(e) for e in self.events)))
            return 0
        raise KernelError(E.ENOTTY)

    def release(self) -> None:
        for w in list(self.watches.values()):
            lst = getattr(w.inode, "inotify_watches", [])
            if w in lst:
                lst.remove(w)
        self.watches.clear()


def _inst(t, fd: int) -> InotifyFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, InotifyFile):
        raise KernelError(E.EINVAL)
    return f


@syscall("inotify_init1")
def sys_inotify_init1(t, flags, *_):
    if flags & ~(C.O_CLOEXEC | C.O_NONBLOCK):
        raise KernelError(E.EINVAL)
    return t.files.install(InotifyFile(flags), bool(flags & C.O_CLOEXEC))


@syscall("inotify_init")
def sys_inotify_init(t, *_):
    return sys_inotify_init1(t, 0)


@syscall("inotify_add_watch")
def sys_inotify_add_watch(t, fd, path, mask, *_):
    inst = _inst(t, fd)
    mask &= 0xFFFFFFFF
    if not mask & N.ALL_EVENTS:
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path), follow=not mask & N.IN_DONT_FOLLOW)
    if mask & N.IN_ONLYDIR and not d.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    permission(d.inode, C.R_OK, t.proc.creds)
    inode = d.inode
    lst = getattr(inode, "inotify_watches", None)
    if lst is None:
        lst = inode.inotify_watches = []
        N.watched(inode)
    for w in lst:
        if w.inst is inst:
            w.mask = (w.mask | mask) if mask & N.IN_MASK_ADD else mask
            return w.wd
    w = Watch(inst, inst.next_wd, inode, mask)
    inst.next_wd += 1
    inst.watches[w.wd] = w
    lst.append(w)
    return w.wd


@syscall("inotify_rm_watch")
def sys_inotify_rm_watch(t, fd, wd, *_):
    inst = _inst(t, fd)
    w = inst.watches.get(s32(wd))
    if w is None:
        raise KernelError(E.EINVAL)
    inst.remove(w)
    return 0
