"""The mount table: mount, remount and unmount filesystems on dentries.

Filesystem types are made by fs/registry.py from their names.  A filesystem that has state to save (ext2) has an
`unmount()`; every mount is unmounted, in reverse order, when the machine
stops.
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E
from umlpy.abi.consts import O_PATH
from umlpy.abi import mount as MS
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs import fsnotify
from umlpy.vfs.dentry import Dentry, Mount
from umlpy.vfs.file import File


MOUNT_MAX = 100000      # Linux's fs.mount-max default: propagation can double a tree per bind


class _Propagation:
    """The peer groups and slaves of the table at one moment, built once
    per operation so that a big tree costs O(n), not O(n²)."""

    def __init__(self, mounts: list[Mount]) -> None:
        self.groups: dict[int, dict[int, Mount]] = {}
        self.slaves: dict[int, dict[int, Mount]] = {}
        for m in mounts:
            if m.group:
                self.groups.setdefault(m.group, {})[id(m)] = m
            if m.master is not None:
                self.slaves.setdefault(id(m.master), {})[id(m)] = m
        self._next = 1

    def peers(self, m: Mount) -> list[Mount]:
        return list(self.groups.get(m.group, {}).values()) if m.group else [m]

    def new_group(self) -> int:
        """The lowest peer group id not in use (Linux's mnt_group_ida)."""
        while self._next in self.groups:
            self._next += 1
        self.groups[self._next] = {}
        return self._next

    def make_slave(self, x: Mount) -> None:
        """do_make_slave: x leaves its peer group for a slave of it (or
        stays a slave of its master); its own slaves go to that master."""
        group = self.groups.get(x.group, {}) if x.group else {}
        group.pop(id(x), None)
        master = next(iter(group.values()), None) or x.master
        moved = self.slaves.pop(id(x), {})
        for o in moved.values():
            o.master = master
        if x.master is not None:
            self.slaves.get(id(x.master), {}).pop(id(x), None)
        if master is not None:
            self.slaves.setdefault(id(master), {}).update(moved)
            self.slaves[id(master)][id(x)] = x
        x.group, x.master = 0, master

    def make_private(self, x: Mount) -> None:
        self.make_slave(x)
        if x.master is not None:
            self.slaves.get(id(x.master), {}).pop(id(x), None)
        x.master = None


class MountTable:
    def __init__(self) -> None:
        self.mounts: list[Mount] = []
        self.next_id = 1        # Linux's mnt_id: a number per mount, never reused here
        self.singletons: dict[str, object] = {}    # devtmpfs: one instance
        self.busy_check: Callable[[Mount], bool] = lambda m: False
        self.orphans: list[Mount] = []     # detached, their filesystem still in use
        self.held: dict[int, int] = {}     # id(fs) -> kernel users holding it besides its mounts
        self.mount_max = MOUNT_MAX      # fs.mount-max (root may change it)
        # mount events (touch_mnt_namespace): a poll of /proc/PID/mounts or
        # mountinfo says POLLPRI|POLLERR once after each (one count for all
        # namespaces: a reader may hear of another namespace's mount too)
        self.event = 0
        self.changed = WaitQueue("mount table")

    def hold(self, fs) -> None:
        """A kernel user of fs besides its mounts (an overlay's layers,
        which Linux holds through private clones of their mounts): the
        filesystem outlives its last umount, as after a lazy one, until
        every hold is released."""
        self.held[id(fs)] = self.held.get(id(fs), 0) + 1

    def release(self, fs) -> None:
        n = self.held.pop(id(fs)) - 1
        if n:
            self.held[id(fs)] = n
        else:
            self.reap()

    def touch(self) -> None:
        """A mount, unmount, move or remount happened."""
        self.event += 1
        self.changed.wake_all()

    def _new(self, fs, inode, source: str, fstype: str, flags: int, name: bytes = b"") -> Mount:
        m = Mount(fs, None, None, source, flags)
        m.fstype = fstype
        m.mnt_id, self.next_id = self.next_id, self.next_id + 1
        m.root = Dentry(name, None, inode, m)
        return m

    def mount(self, fs, at: Dentry | None, source: str, fstype: str, flags: int = 0,
              fs_opts: str = "") -> Mount:
        """A new mount of fs on at (None: a namespace's root); under a
        shared mount it is shared too (attach_recursive_mnt)."""
        m = self._new(fs, fs.root, source, fstype, flags, b"/" if at is None else b"")
        m.fs_opts = fs_opts
        if at is None:
            self.mounts.append(m)
        else:
            self.graft([m], at)
        return m

    def detached(self, fs, source: str, fstype: str, flags: int, fs_opts: str) -> Mount:
        """fsmount's new mount: hung nowhere until move_mount attaches it."""
        m = self._new(fs, fs.root, source, fstype, flags)
        m.fs_opts, m.attached = fs_opts, False
        return m

    def graft(self, tree: list[Mount], at: Dentry) -> None:
        """attach_recursive_mnt: hang tree (a mount and its submounts, top
        first, already hung below it) on the mount topmost at at, and a copy
        of it at the same place in every mount the parent propagates to
        (propagate_mnt): its peers get peers of the new mounts, its slaves
        slaves of them."""
        while at.mounted is not None:
            at = at.mounted.root
        index = _Propagation(self.mounts + tree)
        new = {id(m) for m in tree}
        receivers = [(r, p) for r, p in self._receivers(at.mount, index) if id(r) not in new] \
            if at.mount is not None else []
        if len(self.mounts) + len(tree) * (1 + len(receivers)) > self.mount_max:
            raise KernelError(E.ENOSPC)     # count_mounts: fs.mount-max
        self._hang(tree, at, index)
        for r, as_peer in receivers:
            there = self._counterpart(at, r)
            if there is None or there.mounted is not None:
                continue        # not inside the part of the filesystem r shows; taken
            copies = self.clone_tree(tree[0], tree[0].root, True, only=tree)
            if not as_peer:
                for o, c in copies.items():
                    c.group, c.master = 0, (o if o.group else o.master)
            self._hang(list(copies.values()), there, index)

    def _hang(self, tree: list[Mount], at: Dentry, index: _Propagation) -> None:
        """Hang tree on at; a shared parent makes the new mounts shared
        (invent_group_ids)."""
        while at.mounted is not None:
            at = at.mounted.root
        top = tree[0]
        top.mountpoint, at.mounted = at, top
        parent = at.mount
        for m in tree:
            m.attached = True
            if parent is not None and parent.group and not m.group:
                m.group = index.new_group()
            self.mounts.append(m)
        self.touch()

    def _receivers(self, dest: Mount, index: _Propagation) -> list[tuple[Mount, bool]]:
        """The mounts a mount event in dest propagates to: its peers (True),
        then its slaves, theirs... and their peers (False)."""
        peers = index.peers(dest)
        out = [(p, True) for p in peers if p is not dest]
        seen, todo = {id(p) for p in peers}, list(peers)
        while todo:
            x = todo.pop()
            for s in list(index.slaves.get(id(x), {}).values()):
                for g in index.peers(s):
                    if id(g) not in seen:
                        seen.add(id(g))
                        out.append((g, False))
                        todo.append(g)
        return out

    def _counterpart(self, d: Dentry, r: Mount) -> Dentry | None:
        """The dentry of r at the place of the filesystem d is (None when r
        shows another part of it)."""
        if d.mount is None or r.fs is not d.mount.fs:
            return None
        path = self.fs_path(d)
        base = r.root_path.rstrip(b"/") + b"/"
        if path != r.root_path and not (path + b"/").startswith(base):
            return None
        out = r.root
        for name in path[len(base):].split(b"/") if path != r.root_path else []:
            if not name:
                continue
            out = out.child(name)
            if out is None:
                return None
        return out

    def mount_of_root(self, d: Dentry) -> Mount | None:
        """The mount whose root is d (d must be a mount's root dentry)."""
        if d.parent is None and d.mount is not None:
            return d.mount
        return None

    def fs_path(self, d: Dentry) -> bytes:
        """Where d is in its filesystem (mountinfo's root field of a bind)."""
        names = names_below(d, None) or []
        base = d.mount.root_path if d.mount is not None else b"/"
        if not names:
            return base
        return base.rstrip(b"/") + b"/" + b"/".join(names)

    def clone(self, m: Mount, root: Dentry, peer: bool = True) -> Mount:
        """clone_mnt: a new mount of m's filesystem rooted at root (a dentry
        of m), with m's flags; a clone of a shared mount is its peer, of a
        slave a slave of the same master.  Not hung anywhere yet."""
        c = self._new(m.fs, root.inode, m.source, m.fstype, m.flags, m.root.name if root is m.root else b"")
        c.fs_opts = m.fs_opts
        c.root_path = self.fs_path(root)
        if peer:
            c.group, c.master = m.group, m.master
        c.attached = False
        return c

    def clone_tree(self, m: Mount, root: Dentry, recursive: bool, copy_all: bool = False,
                   only: list[Mount] | None = None) -> dict[Mount, Mount]:
        """copy_tree: a clone of m rooted at root and, recursive, of every
        mount below root (unbindable ones only for a new namespace,
        copy_all), each hung on its mount point's counterpart; old -> new,
        the top first (only: the mounts of a tree just hung, which
        propagation copies).  Nothing is in the table yet."""
        top = self.clone(m, root)
        new: dict[Mount, Mount] = {m: top}
        tops: dict[Mount, Dentry] = {m: root}
        if not recursive:
            return new
        for s in self.tree(m)[1:] if only is None else only[1:]:
            if s.unbindable and not copy_all:
                continue
            mp, parent = s.mountpoint, s.mountpoint.mount
            if parent not in new:
                continue
            names = names_below(mp, tops[parent])
            if names is None:
                continue        # outside the bound subtree
            at = new[parent].root
            for name in names:
                at = at.child(name)
                if at is None:
                    break
            if at is None:
                continue        # its mount point is gone
            c = self.clone(s, s.root)
            c.mountpoint, at.mounted = at, c
            new[s], tops[s] = c, s.root
        return new

    def umount(self, m: Mount, lazy: bool = False) -> None:
        if m.mountpoint is None:
            raise KernelError(E.EBUSY if m.attached else E.EINVAL)    # the root; a detached tree
        if lazy:
            self._propagate_umount(m)
            self.drop_tree(m)       # MNT_DETACH: with everything mounted below it
            return
        if any(c.mountpoint is not None and c.mountpoint.mount is m for c in self.mounts):
            raise KernelError(E.EBUSY)
        if self.busy_check(m):
            raise KernelError(E.EBUSY)
        self._propagate_umount(m)
        self._detach(m)

    def _propagate_umount(self, m: Mount) -> None:
        """propagate_umount: the copies of m its parent's peers and slaves
        got go with it, those with nothing mounted below them."""
        mp = m.mountpoint
        if mp is None or mp.mount is None:
            return
        for r, _ in self._receivers(mp.mount, _Propagation(self.mounts)):
            there = self._counterpart(mp, r)
            c = there.mounted if there is not None else None
            if c is not None and c.fs is m.fs and c.root_path == m.root_path and not any(
                    x.mountpoint is not None and x.mountpoint.mount is c for x in self.mounts):
                self._detach(c)

    def _detach(self, m: Mount, index: _Propagation | None = None) -> None:
        """m leaves the tree: its slaves go to its peers or master (umount_tree)."""
        (index or _Propagation(self.mounts)).make_private(m)
        if m.mountpoint is not None:
            m.mountpoint.mounted = None
        m.attached = False
        self.mounts.remove(m)
        self.touch()
        self._release_unless_mounted(m)

    def move(self, m: Mount, at: Dentry) -> None:
        """do_move_mount's change, checked by the caller: m (with what is
        below it) leaves its mount point for at; a detached tree (open_tree's)
        is attached."""
        if m.mountpoint is not None:
            m.mountpoint.mounted = None
        tree = self.tree(m) if m.attached else [m] + self._detached_below(m)
        for x in tree:
            if x in self.mounts:
                self.mounts.remove(x)
        self.graft(tree, at)

    def _detached_below(self, top: Mount) -> list[Mount]:
        """The mounts hung below a detached clone, found through its dentries."""
        out: list[Mount] = []
        todo = [top.root]
        while todo:
            d = todo.pop()
            for c in list(d.children.values()):
                if c.mounted is not None:
                    out.append(c.mounted)
                    todo.append(c.mounted.root)
                todo.append(c)
        return out

    def set_propagation(self, m: Mount, kind: int, recursive: bool) -> None:
        """do_change_type: m (and what is below it) made shared, slave,
        private or unbindable; kind is one of MS_SHARED... ."""
        ms = [m] + (self.below(m) if recursive else [])
        index = _Propagation(self.mounts + ms)
        for x in ms:
            if kind == MS.MS_SHARED:
                if not x.group:
                    x.group = index.new_group()
            elif kind == MS.MS_SLAVE:
                index.make_slave(x)
            else:
                index.make_private(x)
            x.unbindable = kind == MS.MS_UNBINDABLE

    def below(self, m: Mount) -> list[Mount]:
        """The mounts under m, attached or in its detached tree."""
        return self.tree(m)[1:] if m.attached else self._detached_below(m)

    def dissolve(self, m: Mount) -> None:
        """A detached tree nobody can attach any more (its last fd went,
        dissolve_on_fput): its filesystems go unless mounted elsewhere."""
        if m.attached:
            return
        for x in [m] + self._detached_below(m):
            self._release_unless_mounted(x)

    def release_unmounted(self, fs) -> None:
        """A filesystem made (fsconfig's CMD_CREATE) and never mounted goes."""
        if not any(o.fs is fs for o in self.mounts):
            self._release(Mount(fs, None, None, ""))

    def _release_unless_mounted(self, m: Mount) -> None:
        """A filesystem is given up with its last mount (mount namespaces
        hold copies of a mount): its inotify watches hear IN_UNMOUNT.
        fanotify's marks on the mount itself go with it."""
        fsnotify.fanotify.forget(m)
        if any(o.fs is m.fs for o in self.mounts):
            return
        if self.busy_check(m) or id(m.fs) in self.held:
            self.orphans.append(m)      # a lazy umount, or an overlay's layer: kept while in use
            return
        if not getattr(m.fs, "shared_instance", False):
            fsnotify.unmount(m.fs)
        self._release(m)

    def reap(self) -> None:
        """The filesystems of lazily unmounted mounts go once nothing holds
        them (the last file closed); one mounted again stays (deactivate_super)."""
        for m in list(self.orphans):
            if any(o.fs is m.fs for o in self.mounts):
                self.orphans.remove(m)
            elif not self.busy_check(m) and id(m.fs) not in self.held:
                self.orphans.remove(m)
                self._release_unless_mounted(m)

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

    def copy_tree(self, top: Mount, to_slave: bool = False) -> dict[Mount, Mount]:
        """copy_tree for a new mount namespace: a copy of every mount under
        top, on copies of their mount points; old mount -> copy.  Copies of
        shared mounts are their peers (CL_COPY_ALL), or, for a namespace of
        a new user namespace (to_slave: CL_SHARED_TO_SLAVE), their slaves:
        what is mounted there never propagates back."""
        new = self.clone_tree(top, top.root, True, copy_all=True)
        for old, c in new.items():
            c.attached, c.unbindable = True, old.unbindable
            if to_slave and old.group:
                c.group, c.master = 0, old
            self.mounts.append(c)
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
        index = _Propagation(self.mounts)
        for m in reversed(self.tree(top)):
            self._detach(m, index)

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
        for m in reversed(self.orphans + self.mounts):
            if id(m.fs) in released or m not in self.orphans and m not in self.mounts:
                continue        # another namespace's copy of a mount; a layer its overlay let go
            released.add(id(m.fs))
            try:
                self._release(m)
            except Exception as exc:   # keep unmounting the others
                printk.oops(f"unmounting {m.source}", exc)
        self.mounts.clear()
        self.orphans.clear()

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


class DetachedMountFile(File):
    """The O_PATH fd of open_tree's clone or fsmount's mount: closing the
    last one before move_mount attached the tree dissolves it."""

    def __init__(self, table: MountTable, m: Mount) -> None:
        super().__init__(m.root, m.root.inode, O_PATH)
        self.table, self.mnt = table, m

    def release(self) -> None:
        self.table.dissolve(self.mnt)


def names_below(d: Dentry, top: Dentry | None) -> list[bytes] | None:
    """The names from top down to d inside one mount (top None: from the
    mount's root); None when d is not below top."""
    names: list[bytes] = []
    while d is not top:
        if d.parent is None:
            if top is not None:
                return None
            break
        names.append(d.name)
        d = d.parent
    return names[::-1]


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
