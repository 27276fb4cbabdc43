"""Permission checks on inodes (generic_permission in Linux)."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError


def permission(inode, mask: int, creds, ) -> None:
    """Raise EACCES unless creds may access inode with mask (R_OK|W_OK|X_OK)."""
    if mask == 0:
        return
    mode = inode.mode
    if creds.fsuid == 0:
        # root may do anything but execute a file without any x bit
        if mask & C.X_OK and not inode.is_dir and not mode & 0o111:
            raise KernelError(E.EACCES)
        return
    if creds.fsuid == inode.uid:
        bits = (mode >> 6) & 7
    elif inode.gid == creds.fsgid or inode.gid in creds.groups:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    if mask & ~bits & 7:
        raise KernelError(E.EACCES)


def owner_or_root(inode, creds) -> None:
    if creds.fsuid != 0 and creds.fsuid != inode.uid:
        raise KernelError(E.EPERM)
