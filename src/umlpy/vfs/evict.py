"""Inode eviction, as far as anyone can see it.

The VFS keeps a dentry and its inode for as long as the kernel runs: on a
disk they are a cache of what the disk holds, and letting one go changes
nothing a program could notice but one thing, fanotify's evictable marks
(FAN_MARK_EVICTABLE), which do not hold their inode and go with it.  So
vm.drop_caches' 2 (drop_slab) evicts in that sense: every inode of a
filesystem whose inodes can be read again that nothing holds loses its
evictable marks.

What holds an inode, as Linux's reference counts would: an open file (a
loop device's backing file too), a
mapping or a running program, a cwd or root, a mount or mount point, a
mark that is not evictable (inotify's, dnotify's, fanotify's), a queued
fanotify event; and a directory is held by any held dentry below it.
"""
from __future__ import annotations

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
