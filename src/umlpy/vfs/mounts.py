"""The mount table: mount, remount and unmount filesystems on dentries.

Filesystem types are made by fs/registry.py from their names.  A filesystem that has state to save (ext2) has an
`unmount()`; every mount is unmounted, in reverse order, when the machine
stops.
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.vfs import fsnotify
from umlpy.vfs.dentry import Dentry, Mount


class MountTable:
    def __init__(self) -> None:
        self.mounts: list[Mount] = []
        self.next_id = 1        # Linux's mnt_id: a number per mount, never reused here
        self.singletons: dict[str, object] = {}    # devtmpfs: one instance
        self.busy_check: Callable[[Mount], bool] = lambda m: False

    def mount(self, fs, at: Dentry | None, source: str, fstype: str, flags: str = "rw") -> Mount:
        if at is not None:
            while at.mounted is not None:
                at = at.mounted.root
        m = Mount(fs, None, at, source, flags)
        m.fstype = fstype
        m.mnt_id, self.next_id = self.next_id, self.next_id + 1
        m.root = Dentry(b"/" if at is None else b"", None, fs.root, m)
        if at is not None:
            at.mounted = m
        self.mounts.append(m)
        return m

    def mount_of_root(self, d: Dentry) -> Mount | None:
        """The mount whose root is d (d must be a mount's root dentry)."""
        if d.parent is None and d.mount is not None:
            return d.mount
        return None

    def umount(self, m: Mount, lazy: bool = False) -> None:
        if m.mountpoint is None:
            raise KernelError(E.EBUSY)    # the root
        if lazy:
            self.drop_tree(m)       # MNT_DETACH: with everything mounted below it
            return
        if any(c.mountpoint is not None and c.mountpoint.mount is m for c in self.mounts):
            raise KernelError(E.EBUSY)
        if self.busy_check(m):
            raise KernelError(E.EBUSY)
        m.mountpoint.mounted = None
        self.mounts.remove(m)
        self._release_unless_mounted(m)

    def _release_unless_mounted(self, m: Mount) -> None:
        """A filesystem is given up with its last mount (mount namespaces
        hold copies of a mount): its inotify watches hear IN_UNMOUNT.
        fanotify's marks on the mount itself go with it."""
        fsnotify.fanotify.forget(m)
        if not any(o.fs is m.fs for o in self.mounts):
            if not getattr(m.fs, "shared_instance", False):
                fsnotify.unmount(m.fs)
            self._release(m)

    def tree(self, top: Mount) -> list[Mount]:
        """top and the mounts under it (a namespace's whole tree when top is
        its root mount), each after the mount it is on (in mount order among equals)."""
        out = []
        for m in self.mounts:
            r, depth = m, 0
            while r is not top and r.mountpoint is not None and r.mountpoint.mount is not None:
                r, depth = r.mountpoint.mount, depth + 1
            if r is top:
                out.append((depth, m))
        # parents first: pivot_root hangs an older mount below a newer one
        return [m for _, m in sorted(out, key=lambda dm: dm[0])]

    def copy_tree(self, top: Mount) -> dict[Mount, Mount]:
        """copy_tree for a new mount namespace: a copy of every mount under
        top, on copies of their mount points; old mount -> copy."""
        new: dict[Mount, Mount] = {}
        for m in self.tree(top):
            at = None
            if m.mountpoint is not None:
                at = translate(m.mountpoint, new)
                if at is None:
                    continue        # its mount point is gone
            c = Mount(m.fs, None, at, m.source, m.flags)
            c.fstype = m.fstype
            c.root = Dentry(m.root.name, None, m.root.inode, c)
            if at is not None:
                at.mounted = c
            self.mounts.append(c)
            new[m] = c
        return new

    def enter(self, fs_ctx, old, new) -> None:
        """A process's root and cwd in a copied mount tree: the copies of
        where they were (copy_mnt_ns moving the fs_struct over)."""
        if new is old:
            return
        fs_ctx.root = translate(fs_ctx.root, new.copies) or new.root
        fs_ctx.cwd = translate(fs_ctx.cwd, new.copies) or fs_ctx.root

    def drop_tree(self, top: Mount) -> None:
        """top and everything below it go: a lazy umount, or a mount
        namespace nobody is in any more (files still open there keep working)."""
        for m in reversed(self.tree(top)):
            if m.mountpoint is not None:
                m.mountpoint.mounted = None
            self.mounts.remove(m)
            self._release_unless_mounted(m)

    @staticmethod
    def _release(m: Mount) -> None:
        if getattr(m.fs, "shared_instance", False):
            return
        fsnotify.unmount(m.fs)
        unmount = getattr(m.fs, "unmount", None)
        if unmount is not None:
            unmount()
        if getattr(m.fs, "device", None) is not None:
            m.fs.device.unmounted()

    def unmount_all(self) -> None:
        released: set[int] = set()
        for m in reversed(list(self.mounts)):
            if id(m.fs) in released:
                continue        # another namespace's copy of a mount
            released.add(id(m.fs))
            try:
                self._release(m)
            except Exception as exc:   # keep unmounting the others
                printk.oops(f"unmounting {m.source}", exc)
        self.mounts.clear()

    def remount_all_read_only(self) -> None:
        """sysrq u: every filesystem synced and made read-only."""
        for m in self.mounts:
            set_ro = getattr(m.fs, "set_read_only", None)
            if set_ro is not None:
                set_ro(True)
            else:
                m.fs.sync()

    def sync_all(self) -> None:
        for m in self.mounts:
            m.fs.sync()


def translate(d: Dentry, copies: dict[Mount, Mount]) -> Dentry | None:
    """d's counterpart in a copied mount tree: the same names below the
    copy of its mount (None when its mount was not copied or the name is gone)."""
    names: list[bytes] = []
    top = d
    while top.parent is not None:
        names.append(top.name)
        top = top.parent
    c = copies.get(top.mount) if top.mount is not None else None
    if c is None:
        return None
    out = c.root
    for name in reversed(names):
        nxt = out.child(name)
        if nxt is None:
            return None
        out = nxt
    return out
