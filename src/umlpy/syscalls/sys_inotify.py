"""inotify: watches on inodes, events read as struct inotify_event."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.kernel import ucount
from umlpy.kernel.mm import kmalloc_size
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_stat import dev_of
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_path, s32
from umlpy.vfs import fsnotify as N
from umlpy.vfs import namei
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, File
from umlpy.vfs.fown import POLL_IN
from umlpy.vfs.perm import permission

_EVENT = struct.Struct("<iIII")
ALL_INOTIFY_BITS = (N.ALL_EVENTS | N.IN_UNMOUNT | N.IN_Q_OVERFLOW | N.IN_IGNORED | N.IN_ONLYDIR
                    | N.IN_DONT_FOLLOW | N.IN_EXCL_UNLINK | N.IN_MASK_ADD | N.IN_MASK_CREATE
                    | N.IN_ISDIR | N.IN_ONESHOT)


def kdev(inode) -> int:
    """The filesystem's device as the kernel holds it (MKDEV: major << 20)."""
    d = dev_of(inode)
    return structs.major(d) << 20 | structs.minor(d)


def pack_event(wd: int, mask: int, cookie: int, name: bytes) -> bytes:
    """struct inotify_event, its name padded with NULs to a multiple of 16."""
    if name:
        name = name + b"\0" * (16 - len(name) % 16)
    return _EVENT.pack(wd, mask, cookie, len(name)) + name


def unpack_event(ev: bytes) -> tuple[int, int, int, bytes]:
    """(wd, mask, cookie, name without its padding) of a queued event."""
    wd, mask, cookie, n = _EVENT.unpack_from(ev)
    return wd, mask, cookie, ev[_EVENT.size:_EVENT.size + n].rstrip(b"\0")


def overflow_event() -> bytes:
    return _EVENT.pack(-1, N.IN_Q_OVERFLOW, 0, 0)


class Watch:
    """An inotify mark: the events of mask on one inode, for one instance."""

    def __init__(self, inst: "InotifyFile", wd: int, inode) -> None:
        self.inst = inst
        self.wd = wd
        self.inode = inode
        self.mask = 0
        self.oneshot = self.excl_unlink = False

    def set(self, arg: int, add: bool) -> None:
        """inotify_update_existing_watch: replace or (IN_MASK_ADD) widen the
        events, and the flags with them."""
        if not add:
            self.mask, self.oneshot, self.excl_unlink = 0, False, False
        self.mask |= arg & N.ALL_EVENTS
        self.oneshot |= bool(arg & N.IN_ONESHOT)
        self.excl_unlink |= bool(arg & N.IN_EXCL_UNLINK)

    def user_mask(self) -> int:
        """The mask as the user gave it (/proc/PID/fdinfo)."""
        return self.mask | (N.IN_ONESHOT if self.oneshot else 0) | (N.IN_EXCL_UNLINK if self.excl_unlink else 0)

    def deliver(self, mask: int, name: bytes, cookie: int, inode_mark: bool, unlinked: bool) -> None:
        if self.excl_unlink and unlinked or not mask & (self.mask | N.IN_UNMOUNT) & (N.ALL_EVENTS | N.IN_UNMOUNT):
            return      # every watch hears of its filesystem's unmount
        mask &= N.ALL_EVENTS | N.IN_ISDIR | N.IN_UNMOUNT    # inotify_mask_to_arg: no internal bits
        if mask & (N.IN_MOVE_SELF | N.IN_DELETE_SELF):
            mask &= ~N.IN_ISDIR     # inotify never reported IN_ISDIR with these
        self.inst.queue(self.wd, mask, cookie, name)
        if self.oneshot:
            self.destroy()

    def destroy(self) -> None:
        """The mark goes (rm_watch, IN_ONESHOT, the inode's end): IN_IGNORED."""
        if self.inst.watches.pop(self.wd, None) is not None:
            ucount.undo(self.inst.chain, "inotify_watches")
        N.remove_mark(self.inode, self)
        self.inst.queue(self.wd, N.IN_IGNORED, 0, b"")


class InotifyFile(File):
    kind = "inotify"
    has_fasync = True

    def __init__(self, flags: int, owner: tuple, chain: list, budget) -> None:
        super().__init__(None, anon_inode(), C.O_RDONLY | (flags & C.O_NONBLOCK))
        self.creator = owner        # (user namespace, euid) of its maker: its watches count there
        self.chain = chain          # their counts up the user namespaces (kernel/ucount.py)
        self.watches: dict[int, Watch] = {}
        # an event as inotify_event_info holds it, with its name
        self.events = N.EventQueue("inotify", lambda: self.kill_fasync(POLL_IN), budget,
                                   lambda ev: kmalloc_size(24 + len(ev)))
        self.next_wd = 1

    def queue(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        """fsnotify_add_event: an event equal to the last queued (but for
        the cookie) merges with it, an IN_IGNORED never does."""
        ev = pack_event(wd, mask, cookie, name)

        def same_as_last(ev: bytes) -> bool:
            last = self.events.events[-1]
            return not mask & N.IN_IGNORED and last is not self.events.overflow \
                and last[:8] == ev[:8] and last[12:] == ev[12:]
        self.events.add(ev, N.MAX_QUEUED, overflow_event, same_as_last)

    def read(self, task, n: int) -> bytes:
        return self.events.read(self.nonblock, n, len, lambda ev: ev)

    def poll(self) -> int:
        return POLLIN if self.events.events else 0

    def poll_queues(self) -> list:
        return [self.events.wq]

    def ioctl(self, task, req: int, arg: int) -> int:
        if req == N.FIONREAD:
            task.mem.write(arg, struct.pack("<i", self.events.nbytes(len)))
            return 0
        raise KernelError(E.ENOTTY)

    def release(self) -> None:
        if self.chain is None:
            return          # given back already
        for w in self.watches.values():
            N.remove_mark(w.inode, w)
            ucount.undo(self.chain, "inotify_watches")
        self.watches.clear()
        ucount.undo(self.chain, "inotify_instances")
        self.chain = None

    def fdinfo(self) -> bytes:
        """One line per watch, as Linux's inotify_fdinfo."""
        return b"".join(f"inotify wd:{w.wd:x} ino:{w.inode.ino:x} sdev:{kdev(w.inode):x} "
                        f"mask:{w.user_mask():x} ignored_mask:0 {N.mark_fhandle(w.inode)}\n".encode()
                        for w in reversed(self.watches.values()))    # newest first, as the group's list


def _inst(t, fd: int) -> InotifyFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, InotifyFile):
        raise KernelError(E.EINVAL)
    return f


@syscall("inotify_init1")
def sys_inotify_init1(t, flags, *_):
    if flags & ~(C.O_CLOEXEC | C.O_NONBLOCK):
        raise KernelError(E.EINVAL)
    # max_inotify_instances of the caller's user namespace and those above
    # (/proc/sys/fs/inotify/max_user_instances the initial one's)
    owner = (ucount.user_ns(t.kernel, t.proc.creds), t.proc.creds.euid)
    try:
        chain = ucount.charge(*owner, "inotify_instances")
    except KernelError:
        raise KernelError(E.EMFILE) from None
    f = InotifyFile(flags, owner, chain, t.kernel.mem_budget)
    try:
        return t.files.install(f, bool(flags & C.O_CLOEXEC))
    except KernelError:
        f.release()
        raise


@syscall("inotify_init")
def sys_inotify_init(t, *_):
    return sys_inotify_init1(t, 0)


@syscall("inotify_add_watch")
def sys_inotify_add_watch(t, fd, path, mask, *_):
    mask &= 0xFFFFFFFF
    if mask & N.IN_MASK_ADD and mask & N.IN_MASK_CREATE or not mask & ALL_INOTIFY_BITS:
        raise KernelError(E.EINVAL)
    inst = _inst(t, fd)
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, path), follow=not mask & N.IN_DONT_FOLLOW)
    if mask & N.IN_ONLYDIR and not d.inode.is_dir:
        raise KernelError(E.ENOTDIR)
    permission(d.inode, C.R_OK, t.proc.creds)
    inode = d.inode
    for w in N.marks(inode):
        if getattr(w, "inst", None) is inst:
            if mask & N.IN_MASK_CREATE:
                raise KernelError(E.EEXIST)
            w.set(mask, bool(mask & N.IN_MASK_ADD))
            return w.wd
    ucount.charge(*inst.creator, "inotify_watches")     # max_inotify_watches: ENOSPC
    w = Watch(inst, inst.next_wd, inode)
    w.set(mask, False)
    inst.next_wd += 1
    inst.watches[w.wd] = w
    N.add_mark(inode, w)
    return w.wd


@syscall("inotify_rm_watch")
def sys_inotify_rm_watch(t, fd, wd, *_):
    inst = _inst(t, fd)
    w = inst.watches.get(s32(wd))
    if w is None:
        raise KernelError(E.EINVAL)
    w.destroy()
    return 0
