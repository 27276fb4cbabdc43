"""nsfs: the files a namespace opens as (/proc/PID/ns/* and what
setns(2) takes), with the NS_GET_* ioctls.  The namespaces themselves are
kernel/nsproxy.py's."""
from __future__ import annotations

import struct
from typing import NamedTuple

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import userns
from umlpy.kernel.errors import KernelError
from umlpy.kernel.nsproxy import Namespace, PidNamespace
from umlpy.vfs.file import File
from umlpy.vfs.inode import Filesystem, Inode

NSIO = 0xB7
NS_GET_USERNS = NSIO << 8 | 1
NS_GET_PARENT = NSIO << 8 | 2
NS_GET_NSTYPE = NSIO << 8 | 3
NS_GET_OWNER_UID = NSIO << 8 | 4
NSFS_MAGIC = 0x6E736673

class NsFs(Filesystem):
    """nsfs: one inode per namespace, numbered as the namespace is."""
    name = "nsfs"
    magic = NSFS_MAGIC


_nsfs: NsFs | None = None


def inode_of(ns: Namespace) -> NsInode:
    """The namespace's one nsfs inode (made when first needed)."""
    global _nsfs
    if ns.inode is None:
        if _nsfs is None:
            _nsfs = NsFs()
        ns.inode = NsInode(_nsfs, ns, ns.ino)
    return ns.inode


class NsPath(NamedTuple):
    """Where a /proc/PID/ns/X magic link leads: the namespace's inode, no name."""
    dentry: None
    inode: NsInode


class NsInode(Inode):
    """The nsfs inode of a namespace: a read-only regular file (as Linux's)."""

    def __init__(self, fs: NsFs, ns: Namespace, ino: int) -> None:
        super().__init__(fs, C.S_IFREG | 0o444, ino=ino)
        self.ns = ns

    def link_name(self) -> str:
        return self.ns.name()

    def open_file(self, dentry, flags: int, task) -> File:
        return NsFile(dentry, self, flags)

    def path(self) -> NsPath:
        return NsPath(None, self)


class NsFile(File):
    """An open namespace: setns(2)'s argument and the NS_GET_* ioctls."""
    kind = "nsfs"

    @property
    def ns(self) -> Namespace:
        return self.inode.ns

    def ioctl(self, task, req: int, arg: int) -> int:
        ns = self.ns
        if req == NS_GET_NSTYPE:
            return ns.flag
        if req == NS_GET_OWNER_UID:
            if ns.kind != "user":
                raise KernelError(E.EINVAL)
            uid = userns.munged(task.proc.creds.user_ns, "uid_map", getattr(ns, "owner_uid", 0))
            task.mem.write(arg, struct.pack("<I", uid))     # the init namespace's owner: root
            return 0
        if req == NS_GET_USERNS:
            return _open_ns(task, _visible_user_ns(task, ns.owner))
        if req == NS_GET_PARENT:
            if ns.kind == "pid":
                return _open_ns(task, _visible_parent(task, ns))
            if ns.kind != "user":
                raise KernelError(E.EINVAL)     # no hierarchy
            return _open_ns(task, _visible_user_ns(task, getattr(ns, "parent", None)))
        raise KernelError(E.ENOTTY)


def _visible_parent(task, ns: PidNamespace) -> PidNamespace | None:
    """pidns_get_parent: a pid namespace's parent, if it is the caller's
    own pid namespace or one below it (None: EPERM, as for init's)."""
    parent = ns.parent
    return parent if parent is not None and task.proc.pidns.contains(parent) else None


def _visible_user_ns(task, ns: Namespace | None) -> Namespace | None:
    """A user namespace the caller may see: its own or one below it
    (current_in_userns; None: EPERM, as for the init namespace's parent)."""
    own = task.proc.creds.user_ns
    probe = ns
    while probe is not None and userns.level(probe) > userns.level(own):
        probe = probe.parent
    seen = probe is own or (own is None and probe is not None and userns.level(probe) == 0)
    return ns if seen else None


def _open_ns(task, ns: Namespace | None) -> int:
    """A new O_RDONLY|O_CLOEXEC fd on ns (ns_ioctl's open_related_ns);
    EPERM when there is none to see (the init user namespace's owner)."""
    if ns is None:
        raise KernelError(E.EPERM)
    f = NsFile(None, inode_of(ns), C.O_RDONLY)
    return task.files.install(f, True)
