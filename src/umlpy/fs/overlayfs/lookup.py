"""Lookup in a directory of the union (Linux 6.1's ovl_lookup with
redirect_dir, index and metacopy off): the name in each layer of the
directory, top down.

A whiteout hides the name and everything below it; a non-directory hides
what is below it; directories merge with the directories below them until
one of them is opaque.  The inode found is the one cached for the same
layer inode (ovl_get_inode: by the lower inode, unless it is a hard link
a copy-up would break, else by the upper one), so that marks, locks and
numbers stay with a file across copy-up and across evictions of the
overlay's dentries; an upper file's origin is decoded to find its lower
inode again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.fs.overlayfs import inode as I
from umlpy.fs.overlayfs import layer as R
from umlpy.fs.overlayfs.marks import NULL_UUID, ORIGIN, REDIRECT, decode_origin, is_whiteout
from umlpy.fs.overlayfs.options import log
from umlpy.fs.overlayfs.super import Lower

if TYPE_CHECKING:
    from umlpy.fs.overlayfs.inode import OvlInode
    from umlpy.fs.overlayfs.super import OvlFs


def lookup(parent: OvlInode, name: bytes) -> OvlInode | None:
    found = find(parent, name)
    if found is None:
        return None
    upper, lowers = found
    return get_inode(parent.fs, upper, lowers, parent, name)


def find(parent: OvlInode, name: bytes) -> tuple[object, list[Lower]] | None:
    """(upper inode or None, lower entries) of name in parent's layers,
    or None: nothing there, or a whiteout."""
    ofs = parent.fs
    if len(name) > ofs.namelen:
        raise KernelError(E.ENAMETOOLONG)
    xa = ofs.xattrs
    upper = None
    lowers: list[Lower] = []
    is_dir = stop = False
    redirect = None
    if parent.upper is not None:
        u = R.lookup(ofs, parent.upper, name)
        if u is not None:
            if is_whiteout(u):
                return None
            upper = u
            if u.is_dir:
                _check_trap(ofs, u)
                is_dir = True
                stop = xa.is_opaque(u)
                redirect = xa.get(u, REDIRECT)
            else:
                stop = True
    last = len(parent.lowers) - 1
    for i, lp in enumerate([] if stop else parent.lowers):
        real = R.lookup(ofs, lp.inode, name)
        if real is None:
            continue
        if is_whiteout(real):
            break
        if not real.is_dir:
            if not is_dir:
                lowers.append(Lower(real, lp.layer))
            break
        _check_trap(ofs, real)
        if upper is None and not lowers:
            is_dir = True
        lowers.append(Lower(real, lp.layer))
        if i < last and redirect is None:
            redirect = xa.get(real, REDIRECT)
        if redirect is not None:
            # redirect_dir=off (as built without REDIRECT_ALWAYS_FOLLOW) or nofollow
            log(printk.pr_warn_ratelimited, f"refusing to follow redirect for ({_name(parent, name)})")
            raise KernelError(E.EPERM)
        if i < last and xa.is_opaque(real):
            break
    if upper is None and not lowers:
        return None
    if upper is not None and not upper.is_dir:
        origin = origin_of(ofs, upper)
        if origin is not None:
            lowers = [origin]
    return upper, lowers


def _check_trap(ofs: OvlFs, real) -> None:
    """A layer's own directory met again: overlapping layers (ELOOP)."""
    if id(real) in ofs.traps:
        raise KernelError(E.ELOOP)


def _name(parent: OvlInode, name: bytes) -> str:
    """%pd2: the parent's name and this one."""
    return (parent.name + b"/" + name).decode(errors="replace")


def upper_whiteout(parent: OvlInode, name: bytes) -> bool:
    """ovl_dentry_is_whiteout: the name is hidden by a whiteout in the
    parent's upper directory."""
    if parent.upper is None:
        return False
    real = parent.upper.lookup(name)
    return real is not None and is_whiteout(real)


def origin_of(ofs: OvlFs, upper) -> Lower | None:
    """ovl_check_origin: the lower inode an upper file was copied up from,
    by its origin handle, decoded in the first lower layer whose
    filesystem it names (and not of an ambiguous uuid); None when
    unknown, stale, or of another type ("invalid origin")."""
    if not ofs.can_decode:
        return None
    value = ofs.xattrs.get(upper, ORIGIN)
    fh = decode_origin(value) if value is not None else None
    if fh is None:
        return None
    ftype, uuid, fid = fh
    for lay in ofs.lowers:
        if lay.fsid in ofs.bad_uuid or uuid != (lay.fs.uuid if ofs.cfg.uuid else NULL_UUID):
            continue
        try:
            real = lay.fs.fh_to_inode(ftype, fid)
        except KernelError:
            continue
        if (real.mode ^ upper.mode) & C.S_IFMT:
            log(printk.pr_warn_ratelimited, f"invalid origin (ftype={upper.mode & C.S_IFMT:x}, "
                                            f"origin ftype={real.mode & C.S_IFMT:x}).")
            return None
        return Lower(real, lay)
    return None


def get_inode(ofs: OvlFs, upper, lowers: list[Lower], parent: OvlInode | None, name: bytes) -> OvlInode:
    """ovl_get_inode: the cached inode of these layer inodes, or a new one.
    A lower hard link a copy-up would break gets an inode per name."""
    lower = lowers[0].inode if lowers else None
    bylower = lower is not None and (ofs.upper is None or lower.is_dir or lower.nlink <= 1)
    key = lower if bylower else upper
    if key is not None:
        cached = ofs.icache.get(key)
        if cached is not None:
            if not _matches(cached, upper, lower):
                log(printk.pr_warn_ratelimited, f"failed to get inode ({-E.ESTALE})")
                raise KernelError(E.ESTALE)
            return cached
    inode = I.OvlInode(ofs, upper, lowers, parent, name, bylower)
    for k in (key, upper):
        if k is not None:
            ofs.icache.setdefault(k, inode)
    return inode


def _matches(cached: OvlInode, upper, lower) -> bool:
    """ovl_verify_inode: the layers found are those the inode stands for
    (a directory's upper and lower exactly, a file's where found)."""
    if cached.real().is_dir:
        if lower is None and cached.lowers or upper is None and cached.upper is not None:
            return False
    if lower is not None and (not cached.lowers or cached.lowers[0].inode is not lower):
        return False
    return upper is None or cached.upper is upper
