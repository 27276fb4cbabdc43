"""name_to_handle_at and open_by_handle_at: files named by handles.

A handle is what the filesystem's export operations make of an inode
(Filesystem.encode_fh: ext2 the inode number and generation, tmpfs the
generation and the 64-bit number); filesystems without them (proc, sysfs,
hostfs, pipes, sockets) are EOPNOTSUPP.  Opening by handle needs
CAP_DAC_READ_SEARCH, looks in the filesystem of the mount given, and is
ESTALE when the inode is gone.  As Linux 6.1: no AT_HANDLE_FID.
"""
from __future__ import annotations

import struct

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cred import need
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_file import open_dentry
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_path, s32
from umlpy.vfs import namei
from umlpy.vfs.dentry import Dentry

MAX_HANDLE_SZ = 128
_HEAD = struct.Struct("<Ii")        # struct file_handle: handle_bytes, handle_type


@syscall("name_to_handle_at", note="ext2 and tmpfs handles (tmpfs: of inodes a handle was made for); others EOPNOTSUPP; no AT_HANDLE_FID (6.1)")
def sys_name_to_handle_at(t, dirfd, path, handle, mnt_id, flags, *_):
    flags = s32(flags)
    if flags & ~(C.AT_SYMLINK_FOLLOW | C.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    dirfd = s32(dirfd)
    name = read_path(t, path)
    if not name and flags & C.AT_EMPTY_PATH and dirfd != C.AT_FDCWD:
        f = t.files.get_raw(dirfd)       # a pipe or socket too: no dentry needed
        inode, mount = f.inode, f.dentry.mount if f.dentry is not None else None
    else:
        d = namei.lookup(t, dirfd, name, follow=bool(flags & C.AT_SYMLINK_FOLLOW),
                         empty_ok=bool(flags & C.AT_EMPTY_PATH))
        inode, mount = d.inode, d.mount
    encoded = inode.fs.encode_fh(inode) if inode is not None and mount is not None else None
    if encoded is None:
        raise KernelError(E.EOPNOTSUPP)
    room, _ = _HEAD.unpack(t.mem.read(handle, _HEAD.size))
    if room > MAX_HANDLE_SZ:
        raise KernelError(E.EINVAL)
    fh_type, fh = encoded
    t.mem.write(mnt_id, struct.pack("<i", mount.mnt_id))     # mountinfo's and statx's number
    if len(fh) > room:
        # the size it takes, so that the caller can ask again (only the header is stored)
        t.mem.write(handle, _HEAD.pack(len(fh), C.FILEID_INVALID))
        raise KernelError(E.EOVERFLOW)
    t.mem.write(handle, _HEAD.pack(len(fh), fh_type) + fh)
    return 0


def _dentry_of(mount, inode) -> Dentry:
    """A cached dentry of inode in mount, or a disconnected one for it (as
    Linux's d_obtain_alias: the name is not looked for)."""
    todo = [mount.root]
    while todo:
        d = todo.pop()
        if d.inode is inode:
            return d
        todo.extend(c for c in d.children.values() if c.mounted is None)
    return Dentry(b"/", None, inode, mount)


@syscall("open_by_handle_at", note="a directory found by handle keeps its cached name; an uncached file is opened disconnected")
def sys_open_by_handle_at(t, mountdirfd, handle, flags, *_):
    need(t.proc.creds, K.CAP_DAC_READ_SEARCH)
    size, fh_type = _HEAD.unpack(t.mem.read(handle, _HEAD.size))
    if not 0 < size <= MAX_HANDLE_SZ:
        raise KernelError(E.EINVAL)
    fh = t.mem.read(handle + _HEAD.size, size)
    mountdirfd = s32(mountdirfd)
    if mountdirfd == C.AT_FDCWD:
        mount = t.fs.cwd.mount
    else:
        f = t.files.get(mountdirfd)
        mount = f.dentry.mount if f.dentry is not None else None
    if mount is None:
        raise KernelError(E.ESTALE)
    inode = mount.fs.fh_to_inode(fh_type, fh[:size & ~3])
    d = _dentry_of(mount, inode)
    t.files.reserve()       # do_handle_open: the handle's errors first, then EMFILE
    return open_dentry(t, d, s32(flags))
