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
        if any(c.mountpoint is not None and c.mountpoint.mount is m for c in self.mounts):
            raise KernelError(E.EBUSY)
        if not lazy and self.busy_check(m):
            raise KernelError(E.EBUSY)
        m.mountpoint.mounted = None
        self.mounts.remove(m)
        if not any(other.fs is m.fs for other in self.mounts) and not getattr(m.fs, "shared_instance", False):
            fsnotify.unmount(m.fs)
        self._release(m)

    @staticmethod
    def _release(m: Mount) -> None:
        if getattr(m.fs, "shared_instance", False):
            return
        fsnotify.unmount(m.fs)
        unmount = getattr(m.fs, "unmount", None)
        if unmount is not None:
            unmount()
        if getattr(m.fs, "device", None) is not None:
            from umlpy.fs.registry import release_disk
            release_disk(m.fs)

    def unmount_all(self) -> None:
        for m in reversed(list(self.mounts)):
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
