"""Copy-up (Linux 6.1's copy_up.c with metacopy and index off): before a
lower file or directory changes, a copy of it goes into the upper layer,
its missing parent directories first.

The copy is made in the work directory under a temporary name (with no
permission bits, owned by the mounter), filled (data, then the
extended attributes but the overlay's own, chattr's sync and noatime
flags, the origin handle, the size, mode, owner and times) and renamed
into place, so that the upper directory never shows half a copy; the
upper parent keeps its times.  Data holes found with SEEK_DATA stay holes.
A lower hard link is copied alone, breaking the link (index=off), and
records no origin.  A copy is refused (EOVERFLOW) when the caller's user
namespace cannot name the file's owner (CVE-2023-0386's fix, in 6.1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk, userns
from umlpy.kernel.errors import KernelError
from umlpy.fs.overlayfs import layer as R
from umlpy.fs.overlayfs.marks import IMPURE, NULL_UUID, ORIGIN, encode_origin
from umlpy.fs.overlayfs.options import log

if TYPE_CHECKING:
    from umlpy.fs.overlayfs.inode import OvlInode

CHUNK = 1 << 20                                 # OVL_COPY_UP_CHUNK_SIZE
COPY_FLAGS = C.FS_SYNC_FL | C.FS_NOATIME_FL     # OVL_COPY_FS_FLAGS_MASK


def copy_up(inode: OvlInode, size: int | None = None) -> None:
    """ovl_copy_up_flags: the topmost ancestor not yet copied up first,
    down to inode; size: how much of its data a truncate keeps."""
    ofs = inode.fs
    ofs.want_write()
    if inode.dead:
        raise KernelError(E.ENOENT)
    while inode.upper is None:
        top = inode
        while top.parent.upper is None:
            top = top.parent
        _copy_up_one(top, size if top is inode else None)


def set_impure(dir_inode: OvlInode) -> None:
    """ovl_set_impure: the directory holds entries with an origin, whose
    d_ino readdir must look up (an optimisation: no xattrs, no mark)."""
    if not dir_inode.impure:
        dir_inode.fs.xattrs.check_set(dir_inode.upper, IMPURE, b"y", 0)
        dir_inode.impure = not dir_inode.fs.xattrs.noxattr


def _copy_up_one(inode: OvlInode, size: int | None) -> None:
    ofs = inode.fs
    lower = inode.lowers[0].inode
    _check_owner_mapped(ofs, lower)
    parent = inode.parent
    udir = parent.upper
    times = udir.atime, udir.mtime
    set_impure(parent)
    fmt = lower.mode & C.S_IFMT
    length = lower.size() if fmt == C.S_IFREG else 0
    if size is not None:
        length = min(length, size)
    work = ofs.workdir
    tmp = R.temp_name(work)
    uid, gid = ofs.creds.fsuid, ofs.creds.fsgid
    if fmt == C.S_IFREG:
        R.may(ofs, lower, C.R_OK)      # ovl_path_open of the lower file
    temp = R.create(ofs, work, tmp, fmt, uid, gid, lower.rdev,
                    lower.readlink() if fmt == C.S_IFLNK else None)
    try:
        if length:
            _copy_data(lower, temp, length)
        _copy_metadata(inode, lower, temp, length if size is not None else None)
        R.rename(ofs, work, tmp, udir, inode.name)
    except KernelError:
        R.cleanup(ofs, work, tmp)
        raise
    inode.upper = temp
    ofs.icache.setdefault(temp, inode)
    if temp.is_dir:
        inode.whiteouts = True
    udir.atime, udir.mtime = times       # ovl_set_timestamps on the parent, best effort
    for f in list(inode.files):
        f.follow_copy_up()


def _check_owner_mapped(ofs, lower) -> None:
    """ovl_copy_up_one: EOVERFLOW unless the caller's user namespace maps
    the file's owner and group (else a copy would carry ids, setuid bits
    with them, the caller could not have made)."""
    task = ofs.current()
    ns = task.proc.creds.user_ns if task is not None else None
    if ns is not None and (userns.from_kernel(ns, "uid_map", lower.uid) is None
                           or userns.from_kernel(ns, "gid_map", lower.gid) is None):
        raise KernelError(E.EOVERFLOW)


def _copy_data(lower, temp, length: int) -> None:
    """ovl_copy_up_file: the data in chunks, skipping the holes SEEK_DATA
    finds where the lower filesystem knows them."""
    seek = getattr(lower, "seek_data", None)
    pos, data_pos = 0, -1
    while pos < length:
        if seek is not None and data_pos < pos:
            try:
                data_pos = seek(pos, C.SEEK_DATA)
            except KernelError as e:
                if e.errno == E.ENXIO:
                    break
                seek = None
            if data_pos > pos:
                pos = data_pos
                continue
        data = lower.read(pos, min(CHUNK, length - pos))
        if not data:
            break
        temp.write(pos, data)
        pos += len(data)


def _copy_metadata(inode: OvlInode, lower, temp, size: int | None) -> None:
    """ovl_copy_up_metadata, then ovl_set_attr."""
    ofs = inode.fs
    _copy_xattrs(ofs, lower, temp)
    flags = lower.get_fsflags() & COPY_FLAGS
    if flags:
        try:
            temp.set_fsflags(temp.get_fsflags() & ~COPY_FLAGS | flags, lambda cap: True)
        except KernelError as e:
            if e.errno not in (E.ENOTTY, E.EINVAL):
                raise
            log(printk.pr_warn, "copying fileattr: no support on upper")
    if lower.is_dir or lower.nlink == 1:
        uuid = lower.fs.uuid if ofs.cfg.uuid else NULL_UUID
        try:
            ofs.xattrs.check_set(temp, ORIGIN, encode_origin(lower, uuid), 0)
        except KernelError as e:
            if e.errno != E.EPERM:      # user.* on a symlink or a device: no origin
                raise
    if temp.is_reg:
        temp.truncate(lower.size() if size is None else size)
    if not temp.is_symlink:
        temp.mode = temp.mode & C.S_IFMT | lower.mode & 0o7777
    temp.uid, temp.gid = lower.uid, lower.gid
    temp.atime, temp.mtime = lower.atime, lower.mtime


def _must_copy(name: bytes) -> bool:
    """ovl_must_copy_xattr: ACLs and security labels."""
    return name.startswith((b"security.", b"system.posix_acl_"))


def _copy_xattrs(ofs, lower, temp) -> None:
    """ovl_copy_xattr: every xattr but the overlay's own, when both layers
    have xattrs; one the upper layer does not know is dropped, unless it
    is a label or an ACL."""
    try:
        names = lower.listxattr()
        temp.listxattr()
    except KernelError as e:
        if e.errno == E.EOPNOTSUPP:
            return
        raise
    for name in names:
        if ofs.xattrs.is_private(name):
            continue
        try:
            temp.setxattr(name, lower.getxattr(name), 0)
        except KernelError as e:
            if e.errno != E.EOPNOTSUPP or _must_copy(name):
                raise
