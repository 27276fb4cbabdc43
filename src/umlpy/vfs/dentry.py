"""Dentries and mounts.

A dentry names an inode in its parent directory; the tree of dentries gives
`..`, getcwd and /proc/PID/cwd.  Positive lookups are cached in the parent and
dropped when the name goes away.  A mount hangs a filesystem's root dentry
over a mountpoint dentry.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import errno as E
from umlpy.abi.mount import MOUNT_ATTR_RDONLY
from umlpy.kernel.errors import KernelError

if TYPE_CHECKING:
    from umlpy.vfs.inode import Filesystem, Inode


class Mount:
    """A filesystem (or a subtree of one: a bind mount) hung over a mount
    point.  flags are the mount's own (umlpy.abi.mount's MOUNT_ATTR_* bits):
    the same filesystem can be read-only or noexec at one place and not at
    another.  group is the peer group of a shared mount (0: not shared),
    master the mount a slave receives propagation from."""

    def __init__(self, fs: Filesystem, root: Dentry, mountpoint: Dentry | None,
                 source: str, flags: int = 0) -> None:
        self.fs = fs
        self.root = root
        self.mountpoint = mountpoint
        self.source = source
        self.flags = flags
        self.fs_opts = ""       # the filesystem's own options shown after the mount's (hostfs's dir)
        self.root_path = b"/"   # where root is in the filesystem (not / for a bind mount)
        self.fstype = getattr(fs, "name", "none")
        self.mnt_id = 0         # MountTable numbers it
        self.group = 0
        self.master: Mount | None = None
        self.unbindable = False
        self.attached = True    # False: open_tree's clone, or a mount lazily unmounted
        self.expiry_mark = False  # umount2(MNT_EXPIRE) asked once, nobody used it since

    def has(self, bit: int) -> bool:
        return bool(self.flags & bit)


def want_write(d: Dentry) -> None:
    """mnt_want_write: EROFS on a read-only mount or filesystem."""
    if d.inode.fs.read_only or (d.mount is not None and d.mount.has(MOUNT_ATTR_RDONLY)):
        raise KernelError(E.EROFS)


class Dentry:
    __slots__ = ("name", "parent", "inode", "children", "mounted", "mount", "seen", "cache_gen")

    def __init__(self, name: bytes, parent: Dentry | None, inode: Inode, mount: Mount | None) -> None:
        self.name = name
        self.parent = parent
        self.inode = inode
        self.children: dict[bytes, Dentry] = {}
        self.mounted: Mount | None = None   # a mount on top of this dentry
        self.mount = mount                  # the mount this dentry belongs to
        # Names can go through another mount's dentry of the same directory
        # (a bind mount, another namespace's copy): the directory inode's
        # dgen counts removals and renames.  cache_gen: the dgen up to which
        # all of this directory's cached children are known good; seen: the
        # parent's dgen at which this child was last checked.
        self.seen = parent.inode.dgen if parent is not None else 0
        self.cache_gen = inode.dgen

    def child(self, name: bytes) -> Dentry | None:
        d = self.children.get(name)
        if d is not None:
            if d.mounted is not None:
                return d
            gen = self.inode.dgen
            if self.cache_gen != gen and d.seen != gen:
                if self.inode.lookup(name) is not d.inode:
                    del self.children[name]     # gone (or replaced) through another mount
                    d = None
                else:
                    d.seen = gen
            if d is not None:
                ino = d.inode
                if not ino.revalidates or ino.revalidate():
                    return d
                del self.children[name]     # e.g. /proc/PID of a process that is gone
        ino = self.inode.lookup(name)
        if ino is None:
            return None
        return self.instantiate(name, ino)

    def instantiate(self, name: bytes, inode: Inode) -> Dentry:
        """The dentry of an inode found or just made in this directory
        (Linux's d_instantiate): a creator takes the inode it made rather
        than looking again, which a directory changing underneath (hostfs)
        might answer otherwise."""
        d = Dentry(name, self, inode, self.mount)
        self.children[name] = d
        return d

    def unlinked(self) -> bool:
        """d_unlinked: the name this dentry stood for is gone (unlinked,
        renamed over, an O_TMPFILE's `#ino` even once linkat gave the
        inode a name), which d_path shows as " (deleted)"; or the inode
        has no name left, removed through another mount's dentry."""
        p = self.parent
        return self.inode.nlink == 0 or (p is not None and p.children.get(self.name) is not self)

    def forget(self, name: bytes) -> None:
        self.names_changed()
        self.children.pop(name, None)

    def names_changed(self) -> None:
        """A name in this directory goes or is replaced through this dentry
        (which updates its own cache): the directory's other dentries check
        their cached children again before using them."""
        fresh = self.cache_gen == self.inode.dgen
        self.inode.dgen += 1
        if fresh:
            self.cache_gen = self.inode.dgen

    def up(self) -> Dentry:
        """`..` of this dentry, crossing mount roots downwards."""
        d = self
        while d.parent is None and d.mount is not None and d.mount.mountpoint is not None:
            d = d.mount.mountpoint
        return d.parent if d.parent is not None else d

    def _up_to(self, root: Dentry | None) -> tuple[list[bytes], bool]:
        """The names from here up to root (crossing mounts), last first, and
        whether root was met before the top of the tree."""
        parts: list[bytes] = []
        d = self
        while d is not root:
            if d.parent is None:
                if d.mount is not None and d.mount.mountpoint is not None:
                    d = d.mount.mountpoint
                    continue
                return parts, False
            parts.append(d.name)
            d = d.parent
        return parts, True

    def path(self, root: Dentry | None = None) -> bytes:
        return b"/" + b"/".join(reversed(self._up_to(root)[0]))

    def reachable_from(self, root: Dentry) -> bool:
        """Is this dentry under root (getcwd's test for a cwd left outside a chroot)?"""
        return self._up_to(root)[1]
