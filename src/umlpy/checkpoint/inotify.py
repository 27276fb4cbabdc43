"""inotify instances in a checkpoint: their watches (each by the path of
the watched inode, its watch descriptor and mask as stored: events,
IN_ONESHOT, IN_EXCL_UNLINK), the next watch descriptor to give, and the
events queued and not yet read (the overflow event among them).

Watches name inodes, and an image can only name an inode by a path: the
path is found in the dentry cache (the one inotify_add_watch looked up,
or another name of the inode since), checked name by name against the
directories, and a restore looks it up again.  A watched inode that has
no name left, or that lives on a filesystem a restore does not make
again with its inodes (proc, sysfs), is refused; so is fanotify.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.checkpoint import image
from umlpy.kernel import ucount
from umlpy.kernel.errors import KernelError
from umlpy.syscalls import sys_inotify as I
from umlpy.vfs import fsnotify as N
from umlpy.vfs import namei

WATCH_BITS = N.ALL_EVENTS | N.IN_ONESHOT | N.IN_EXCL_UNLINK     # a Watch's user_mask()
EVENT_BITS = N.ALL_EVENTS | N.IN_ISDIR | N.IN_UNMOUNT | N.IN_IGNORED | N.IN_Q_OVERFLOW
NAME_MAX = 255
WD_TOP = 1 << 31
U32 = 1 << 32
# where a watched inode is found again by its path: the root, /dev, a tmpfs
FOUND_AGAIN = ("rootfs", "ext2", "ext3", "ext4", "devtmpfs", "tmpfs")


def handles(f) -> bool:
    return isinstance(f, I.InotifyFile)


def _named(d) -> bool:
    """Whether every name from d up to its filesystem's root, and every
    mount crossed, still leads to d's inode."""
    while True:
        if d.parent is None:
            m = d.mount
            if m is None or m.mountpoint is None:
                return True
            if not m.attached or m.mountpoint.mounted is not m:
                return False
            d = m.mountpoint
            continue
        if d.parent.inode.lookup(d.name) is not d.inode:
            return False
        d = d.parent


def _dentry(k, inode):
    """A dentry of the machine's tree naming inode now, or None: the
    dentry cache searched from the root, across mounts."""
    todo = [k.root]
    while todo:
        d = todo.pop()
        if d.inode is inode and d.mount is not None and d.mount.fstype in FOUND_AGAIN and _named(d):
            return d
        todo.extend(d.children.values())
        if d.mounted is not None:
            todo.append(d.mounted.root)
    return None


def unsaved_file(k, f) -> str | None:
    """Why this instance cannot be saved, or None."""
    for w in f.watches.values():
        if _dentry(k, w.inode) is None:
            return f"inotify watch {w.wd} on an inode with no name (or on proc or sysfs)"
    return None


def save(k, f) -> dict:
    """What one instance holds (checked by unsaved first)."""
    uid = f.creator[1]
    events, overflow = [], -1
    for i, ev in enumerate(f.events.events):
        wd, mask, cookie, name = I.unpack_event(ev)
        events.append([wd, mask, cookie, name.hex()])
        if ev is f.events.overflow:
            overflow = i
    return {"kind": "inotify", "uid": uid, "next_wd": f.next_wd,
            "watches": [{"wd": w.wd, "mask": w.user_mask(),
                         "path": _dentry(k, w.inode).path(k.root).decode("utf-8", "surrogateescape")}
                        for w in f.watches.values()],
            "events": events, "overflow": overflow}


def _event(o: image.Reader, e) -> bytes:
    """One queued event [wd, mask, cookie, name hex], checked."""
    bad = image.ImageError(f"manifest: {o.where}.events: a bad event {e!r:.80}")
    if not (isinstance(e, list) and len(e) == 4 and all(type(x) is int for x in e[:3]) and isinstance(e[3], str)):
        raise bad
    wd, mask, cookie, name = e
    if not (-1 <= wd < WD_TOP and 0 < mask < U32 and not mask & ~EVENT_BITS and 0 <= cookie < U32):
        raise bad
    try:
        name = bytes.fromhex(name)
    except ValueError:
        raise bad from None
    if len(name) > NAME_MAX or b"\0" in name or b"/" in name:
        raise bad
    return I.pack_event(wd, mask, cookie, name)


def make(k, t, o: image.Reader, flags: int) -> I.InotifyFile:
    """The instance again: its watches on the inodes found by their paths
    (with their numbers), the next number, the unread events."""
    owner = (k.init_ns.user, o.int("uid", 0, U32))
    try:
        chain = ucount.charge(*owner, "inotify_instances")
    except KernelError:
        raise image.ImageError(f"manifest: {o.where}: past max_inotify_instances") from None
    f = I.InotifyFile(flags & C.O_NONBLOCK, owner, chain, k.mem_budget)
    f.next_wd = o.int("next_wd", 1, WD_TOP)
    for e in o.list("watches"):
        wd, mask = e.int("wd", 1, f.next_wd), e.int("mask", 0, U32)
        if mask & ~WATCH_BITS or wd in f.watches:
            raise image.ImageError(f"manifest: {e.where}: a bad watch (wd {wd}, mask {mask:#x})")
        path = e.path("path")
        try:
            inode = namei.lookup(t, C.AT_FDCWD, path, follow=False).inode
        except KernelError as err:
            raise image.ImageError(f"manifest: {e.where}.path: {path.decode(errors='replace')}: cannot look "
                                   f"it up again (errno {err.errno})") from None
        if any(getattr(m, "inst", None) is f for m in N.marks(inode)):
            raise image.ImageError(f"manifest: {e.where}: a second watch on one inode")
        try:
            ucount.charge(*owner, "inotify_watches")
        except KernelError:
            raise image.ImageError(f"manifest: {e.where}: past max_inotify_watches") from None
        w = f.watches[wd] = I.Watch(f, wd, inode)
        w.set(mask, False)
        N.add_mark(inode, w)
    events = o.doc.get("events")
    if not isinstance(events, list) or len(events) > N.MAX_QUEUED + 1:
        raise image.ImageError(f"manifest: {o.where}.events: not a list of at most {N.MAX_QUEUED + 1} events")
    queued = [_event(o, e) for e in events]
    at = o.int("overflow", -1, len(events))
    if at >= 0 and queued[at] != I.overflow_event():
        raise image.ImageError(f"manifest: {o.where}.overflow: not an overflow event")
    try:
        f.events.adopt(queued, at)
    except KernelError:
        raise image.ImageError(f"manifest: {o.where}.events: more than the machine's memory") from None
    return f
