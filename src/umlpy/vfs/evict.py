"""Inode eviction, as far as anyone can see it.

On a disk, dentries and inodes are a cache of what the disk holds, and
letting one go changes nothing a program could notice but one thing,
fanotify's evictable marks (FAN_MARK_EVICTABLE), which do not hold their
inode and go with it.  So vm.drop_caches' 2 (drop_slab) evicts in that
sense: every inode of a filesystem whose inodes can be read again that
nothing holds loses its evictable marks; then the caches shrink.

What holds an inode, as Linux's reference counts would: an open file (a
loop device's backing file too), a
mapping or a running program, a cwd or root, a mount or mount point, a
mark that is not evictable (inotify's, dnotify's, fanotify's), a queued
fanotify event; and a directory is held by any held dentry below it.

The caches themselves are let go too (shrink_caches), for the disk
filesystems that can read their inodes again (those with a
shrink_icache): a dentry and inode cost the kernel some KiB each, so a
guest walking a disk of millions of files would grow the kernel by GiBs,
where Linux's shrinkers give them back under memory pressure.  Past a
bound set from mem= (inodes cached on one filesystem), the kernel prunes
every dentry of such a filesystem that nothing references (Python's own
count: a file, a cwd, a mount, a mapping, a child dentry, a syscall in
progress...), leaves first, then evicts every clean inode that nothing
but the cache holds.  The next lookup reads them again.
"""
from __future__ import annotations

from typing import Callable

from arch_um.host import refcount
from umlpy.vfs import fanotify, fsnotify


def _held(kernel) -> set[int]:
    """The ids of the inodes something holds."""
    held: set[int] = set()
    dentries = []
    for p in kernel.procs.by_pid.values():
        if p.exited:
            continue            # a zombie let go of its files, cwd and memory
        mm = p.mm
        if mm is not None:
            if mm.exe is not None:
                held.add(id(mm.exe))
            for _s, _e, fm in mm.files.items:
                held.add(id(fm.obj))
                dentries.append(getattr(fm, "dentry", None))
        for t in p.threads:
            dentries += (t.fs.root, t.fs.cwd)
    dentries += (f.dentry for f in kernel.open_files())
    for m in kernel.mounts.mounts:
        dentries += (m.root, m.mountpoint)
    dentries += fanotify.queued_dentries()
    seen: set[int] = set()
    for d in dentries:
        while d is not None and id(d) not in seen:
            seen.add(id(d))
            held.add(id(d.inode))
            d = d.parent
    return held


def drop_unused_inodes(kernel) -> None:
    """drop_slab: the unused inodes of reclaimable filesystems evicted."""
    held = _held(kernel)

    def evictable(inode) -> bool:
        return (inode.fs.inodes_reclaimable and id(inode) not in held
                and not fsnotify.marks(inode) and not fanotify.pins(inode))
    fanotify.evict_marks(evictable)
    shrink_caches(kernel)


# the inodes one filesystem may cache before a shrink (set at boot from mem=)
icache_limit = 1 << 62
# set at boot: runs shrink_caches soon, outside any syscall
schedule: Callable[[], None] = lambda: None
_pending = [False]


def pressure() -> None:
    """A filesystem's inode cache passed icache_limit: a shrink is due
    (one at a time)."""
    if not _pending[0]:
        _pending[0] = True
        schedule()


def _prunable(d) -> bool:
    """d is referenced by its parent's table, the caller's variable and
    this call's argument only."""
    return not d.children and d.mounted is None and refcount(d) == 3


def _prune(root, alive: set[int]) -> None:
    """Every dentry below root that nothing references goes, leaves first
    (a directory once its children are done); the inodes of those that
    stay are added to alive.  No variable here outlives its step, so the
    counts _prunable sees are the world's."""
    stack = [[root, list(root.children)]]
    while stack:
        names = stack[-1][1]
        if names:
            parent = stack[-1][0]
            c = parent.children.get(names.pop())
            if c is not None:
                if c.children and c.mounted is None:
                    stack.append([c, list(c.children)])     # its children first
                elif _prunable(c):
                    del parent.children[c.name]
                else:
                    alive.add(id(c.inode))
            c = parent = None
            continue
        d = stack.pop()[0]
        if stack:
            parent = stack[-1][0]
            if parent.children.get(d.name) is d and _prunable(d):
                del parent.children[d.name]
            else:
                alive.add(id(d.inode))
            parent = None
        d = None


def shrink_caches(kernel) -> None:
    """Prune the dentries and evict the inodes of the disk filesystems
    that nothing holds (see the module's docstring)."""
    _pending[0] = False
    alive: set[int] = set()
    shrinkable = {}
    for m in kernel.mounts.mounts:
        if getattr(m.fs, "shrink_icache", None) is not None:
            shrinkable[id(m.fs)] = m.fs
            _prune(m.root, alive)
            alive.add(id(m.root.inode))
    if shrinkable:
        alive |= _held(kernel)
        for fs in shrinkable.values():
            fs.shrink_icache(alive)


def cache_counts(kernel) -> tuple[int, int]:
    """(dentries, inodes) in the kernel's caches, as fs.dentry-state and
    fs.inode-nr show them: every mount's dentries, and the inodes they
    name together with those the disk filesystems cache."""
    dentries = 0
    inodes: set[int] = set()
    for m in kernel.mounts.mounts:
        stack = [m.root]
        while stack:
            d = stack.pop()
            dentries += 1
            inodes.add(id(d.inode))
            stack.extend(d.children.values())
        for inode in getattr(m.fs, "icache", {}).values():
            inodes.add(id(inode))
    return dentries, len(inodes)
