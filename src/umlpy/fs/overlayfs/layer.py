"""What overlay does to its layers' own inodes (Linux's ovl_do_* wrappers
around the VFS): each under the mounter's credentials, as
ovl_override_creds has them, and the holds that keep a layer's inode
alive.

The mounter's rights are checked on the layer's directories and files as
the VFS would check them for it: search to look a name up, read to list
or open, write and search to change names.  A mounter of the initial
user namespace has its capabilities (only an immutable inode stops it);
a user namespace's root overrides the mode bits only of inodes whose
owner and group its namespace maps, so an overlay it mounts cannot reach
what its own ids could not.

A name removed or replaced in a layer's directory bumps that directory's
dgen, as the VFS does for a name removed through another mount, so the
dentries the layer's own mounts cached there are looked up again.  The
layers' operations report no fsnotify events (Linux 6.1's vfs_* calls on
the upper layer do report name events on its directories).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk, userns
from umlpy.kernel.errors import KernelError
from umlpy.vfs.file import free_unused
from umlpy.vfs.perm import permission
from umlpy.fs.overlayfs.options import log

if TYPE_CHECKING:
    from umlpy.fs.overlayfs.super import OvlFs

_temp_id = [0]


def may(ofs: OvlFs, real, mask: int) -> None:
    """inode_permission of a layer inode with the mounter's credentials."""
    ns = ofs.user_ns
    if ns is not None and userns.from_kernel(ns, "uid_map", real.uid) is not None \
            and userns.from_kernel(ns, "gid_map", real.gid) is not None:
        if mask & C.W_OK and real.get_fsflags() & C.FS_IMMUTABLE_FL:
            raise KernelError(E.EPERM)
        return
    permission(real, mask, ofs.creds)


def lookup(ofs: OvlFs, real_dir, name: bytes):
    may(ofs, real_dir, C.X_OK)
    return real_dir.lookup(name)


def entries(ofs: OvlFs, real_dir) -> list[tuple[bytes, int, int]]:
    may(ofs, real_dir, C.R_OK)
    return real_dir.entries()


def temp_name(workdir) -> bytes:
    """ovl_lookup_temp: a fresh "#N" in the work directory (EIO if taken)."""
    _temp_id[0] = (_temp_id[0] + 1) & 0xFFFFFFFF
    name = b"#%x" % _temp_id[0]
    if workdir.lookup(name) is not None:
        log(printk.pr_err, f"workdir/{name.decode()} already exists")
        raise KernelError(E.EIO)
    return name


def create(ofs: OvlFs, real_dir, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0,
           target: bytes | None = None):
    """ovl_create_real: a file, directory, node, or a symlink to target."""
    may(ofs, real_dir, C.W_OK | C.X_OK)
    if target is not None:
        return real_dir.symlink(name, target, uid, gid)
    return real_dir.create(name, mode, uid, gid, rdev)


def link(ofs: OvlFs, real_dir, name: bytes, real) -> None:
    may(ofs, real_dir, C.W_OK | C.X_OK)
    real_dir.link(name, real)


def names_changed(real_dir) -> None:
    """A name of real_dir went or was replaced behind its dentries' backs."""
    real_dir.dgen += 1


def remove(ofs: OvlFs, real_dir, name: bytes) -> None:
    """ovl_cleanup's unlink or rmdir of one entry."""
    may(ofs, real_dir, C.W_OK | C.X_OK)
    child = real_dir.lookup(name)
    if child is None:
        raise KernelError(E.ENOENT)
    if child.is_dir:
        real_dir.rmdir(name)
    else:
        real_dir.unlink(name)
    names_changed(real_dir)


def cleanup(ofs: OvlFs, real_dir, name: bytes) -> None:
    """ovl_cleanup: remove, logging a failure rather than raising it."""
    try:
        remove(ofs, real_dir, name)
    except KernelError as e:
        log(printk.pr_err, f"cleanup of '{name.decode(errors='replace')}' failed ({-e.errno})")


def rename(ofs: OvlFs, old_dir, old: bytes, new_dir, new: bytes, flags: int = 0) -> None:
    may(ofs, old_dir, C.W_OK | C.X_OK)
    may(ofs, new_dir, C.W_OK | C.X_OK)
    old_dir.rename(old, new_dir, new, flags)
    names_changed(old_dir)
    names_changed(new_dir)


def hold(real) -> None:
    """Keep a layer's inode (and its data) alive though its last name goes:
    the overlay inode standing for it still does (Linux's ovl inode holds
    its real dentries until it is itself freed)."""
    real.open_count += 1


def let_go(real) -> None:
    """The hold's end: an inode left without names is freed now, as at
    the last close of a file (File.put)."""
    real.open_count -= 1
    free_unused(real)
