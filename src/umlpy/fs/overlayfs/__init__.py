"""overlayfs: a union of directories, as Linux 6.1's fs/overlayfs.

`mount -t overlay overlay -o lowerdir=L1:L2,upperdir=U,workdir=W MNT`
shows the upper directory U over the lower ones L1 (top) to Ln; changes
go to U, copying lower files up first; removals leave whiteouts.
Modules: options (the mount options), super (the filesystem, its layers
and the work directory), marks (whiteouts and the overlay's xattrs),
layer (changes to the layers' directories), lookup, inode, copyup,
dirops (names made, removed, renamed), readdir and file.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.fs.overlayfs import options
from umlpy.fs.overlayfs.inode import OvlInode
from umlpy.fs.overlayfs.options import refuse
from umlpy.fs.overlayfs.super import Lower, OvlFs


def mount_overlay(kernel, data: str) -> OvlFs:
    """ovl_fill_super: the layers named in data, as the mounting task
    resolves them."""
    t = kernel.sched.current
    if t is None:
        raise KernelError(E.EINVAL)
    cfg = options.parse(data)
    if cfg.lowerdir is None:
        raise refuse("missing 'lowerdir'")
    names = options.split_lowerdirs(cfg.lowerdir)
    fs = OvlFs(cfg, kernel.mounts, t.proc.creds, lambda: kernel.sched.current)
    try:
        if cfg.upperdir is not None:
            if cfg.workdir is None:
                raise refuse("missing 'workdir'")
            fs.get_upper(t)
            fs.get_workdir(t)
        fs.get_lowers(t, names)
    except BaseException:
        fs.unmount()
        raise
    fs.read_only = fs.upper is None or fs.workdir is None
    fs.root = OvlInode(fs, fs.upper.root if fs.upper is not None else None,
                       [Lower(lay.root, lay) for lay in fs.lowers], None, b"", False)
    return fs
