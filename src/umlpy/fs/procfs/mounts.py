"""/proc/PID/mounts and mountinfo: the mount table as one process sees it.

Mount points are paths from the reader's root (mounts outside a chroot are
not shown); names are escaped as Linux's mangle() does, so getmntent(3)
reads them back.  Mount ids are given in mount order and kept for a
mount's lifetime.
"""
from __future__ import annotations

from umlpy.abi import mount as MS
from umlpy.abi import structs
from umlpy.fs.procfs.base import GenFile, SeqFile
from umlpy.fs.procfs.target import Target
from umlpy.vfs.file import POLLERR, POLLIN, POLLPRI, POLLRDNORM

_MANGLE = {ord(" "): b"\\040", ord("\t"): b"\\011", ord("\n"): b"\\012", ord("\\"): b"\\134"}


def mangle(s: bytes) -> bytes:
    return b"".join(_MANGLE.get(c, bytes((c,))) for c in s)


def _mount_path(m, root) -> bytes | None:
    """m's mount point as a path from root, None if it is not below root."""
    d = m.root
    parts: list[bytes] = []
    while d is not root:
        if d.parent is None:
            if d.mount is None or d.mount.mountpoint is None:
                return None
            d = d.mount.mountpoint
            continue
        parts.append(d.name)
        d = d.parent
    return b"/" + b"/".join(reversed(parts))


def _visible(kernel, reader_proc):
    root = reader_proc.fs.root
    for m in kernel.mounts.mounts:
        path = _mount_path(m, root)
        if path is None and m is root.mount:
            path = b"/"
        if path is not None:
            yield m, path


def _options(m) -> bytes:
    """show_vfsmnt's options: the mount's own words (ro when the mount or
    the filesystem is), then the filesystem's."""
    flags = m.flags | (MS.MOUNT_ATTR_RDONLY if m.fs.read_only else 0)
    words = MS.option_words(flags)
    return (words + "," + m.fs_opts if m.fs_opts else words).encode()


def _propagation(m) -> bytes:
    """mountinfo's optional fields: shared:N, master:N, unbindable."""
    out = b""
    if m.group:
        out += b" shared:%d" % m.group
    if m.master is not None:
        out += b" master:%d" % m.master.group
    if m.unbindable:
        out += b" unbindable"
    return out


def mounts_text(tg: Target) -> bytes:
    """`source mountpoint type options 0 0`, /proc/mounts' fstab shape."""
    out = []
    for m, path in _visible(tg.kernel, tg.proc()):
        out.append(b"%s %s %s %s 0 0\n" % (mangle(m.source.encode()), mangle(path),
                                          m.fstype.encode(), _options(m)))
    return b"".join(out)


def dev_numbers(fs) -> tuple[int, int]:
    """The st_dev of a filesystem's files as major, minor (stat's rule)."""
    return structs.major(fs.dev), structs.minor(fs.dev)


def mountinfo_text(tg: Target) -> bytes:
    """proc(5) mountinfo: id parent maj:min root point options - type source super."""
    k = tg.kernel
    out = []
    for m, path in _visible(k, tg.proc()):
        mid = m.mnt_id
        parent = m.mountpoint.mount.mnt_id if m.mountpoint is not None \
            and m.mountpoint.mount is not None else mid
        ma, mi = dev_numbers(m.fs)
        sb = ("ro" if m.fs.read_only else "rw") + ("," + m.fs_opts if m.fs_opts else "")
        out.append(b"%d %d %d:%d %s %s %s%s - %s %s %s\n" % (
            mid, parent, ma, mi, mangle(m.root_path), mangle(path), MS.option_words(m.flags).encode(), _propagation(m),
            m.fstype.encode(), mangle(m.source.encode()), sb.encode()))
    return b"".join(out)


class MountsFile(GenFile):
    """/proc/PID/mounts and mountinfo: generated files that poll can watch
    for mount events (mounts_poll)."""

    def __init__(self, *args, table, **kw) -> None:
        super().__init__(*args, **kw)
        self.table = table

    @property
    def seq_class(self) -> type:
        return MountsSeqFile


class MountsSeqFile(SeqFile):
    """An open mounts file: readable always, and POLLERR|POLLPRI once
    after each mount event since it last said so (or since its open)."""
    pollable = True

    def __init__(self, dentry, inode: MountsFile, flags: int, task) -> None:
        super().__init__(dentry, inode, flags, task)
        self.seen = inode.table.event

    def poll(self) -> int:
        table = self.inode.table
        mask = POLLIN | POLLRDNORM
        if self.seen != table.event:
            self.seen = table.event
            mask |= POLLERR | POLLPRI
        return mask

    def poll_queues(self) -> list:
        return [self.inode.table.changed]
