"""Names made and removed in the union (Linux 6.1's fs/overlayfs/dir.c,
redirect_dir off): everything happens in the upper layer, the parent
copied up first.

A new name over a whiteout is made in the work directory and renamed over
the whiteout (a directory made so is opaque: the lower one stays hidden).
A name still present in a lower layer is removed by putting a whiteout in
its place (made in the work directory, linked to the mount's shared
whiteout, renamed into place).  A directory is removed when it is empty
as the overlay shows it, the whiteouts of its upper directory being
cleared first; else ENOTEMPTY.  rename moves a file (copied up first,
leaving a whiteout where a lower one was) or a directory that is only in
the upper layer; any other directory is EXDEV, for mv to copy.  Linux's
rename with RENAME_WHITEOUT is a rename followed by a whiteout put in
place; the kernel runs one syscall at a time, so nothing sees between.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.fs.overlayfs import layer as R
from umlpy.fs.overlayfs import readdir
from umlpy.fs.overlayfs.copyup import set_impure
from umlpy.fs.overlayfs.lookup import get_inode, lookup, upper_whiteout
from umlpy.fs.overlayfs.marks import OPAQUE, is_whiteout
from umlpy.fs.overlayfs.options import log

if TYPE_CHECKING:
    from umlpy.fs.overlayfs.inode import OvlInode
    from umlpy.fs.overlayfs.super import OvlFs


def create(parent: OvlInode, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0,
           target: bytes | None = None) -> OvlInode:
    """ovl_create_object: a file, directory, node or symlink (target)."""
    if mode & C.S_IFMT == C.S_IFCHR and rdev == 0:
        raise KernelError(E.EPERM)      # ovl_mknod: no whiteouts made through the overlay
    ofs = parent.fs
    ofs.want_write()
    parent.copy_up()

    def make(real_dir, n: bytes):
        return R.create(ofs, real_dir, n, mode, uid, gid, rdev, target)
    real = _over_whiteout(parent, name, make) if upper_whiteout(parent, name) else make(parent.upper, name)
    return get_inode(ofs, real, [], parent, name)


def tmpfile(parent: OvlInode, mode: int, uid: int, gid: int) -> OvlInode:
    """O_TMPFILE: the upper layer's, in the copied-up parent (ovl_tmpfile,
    Linux 6.7; 6.1's overlay had none: EOPNOTSUPP)."""
    ofs = parent.fs
    ofs.want_write()
    parent.copy_up()
    R.may(ofs, parent.upper, C.W_OK | C.X_OK)
    return get_inode(ofs, parent.upper.tmpfile(mode, uid, gid), [], parent, b"")


def link(parent: OvlInode, name: bytes, inode) -> None:
    """ovl_link: the file copied up, then linked in the upper layer."""
    ofs = parent.fs
    ofs.want_write()
    inode.copy_up()
    parent.copy_up()
    if _has_origin(inode):
        set_impure(parent)
    real = inode.upper

    def make(real_dir, n: bytes):
        R.link(ofs, real_dir, n, real)
        return real
    if upper_whiteout(parent, name):
        _over_whiteout(parent, name, make)
    else:
        make(parent.upper, name)


def remove(parent: OvlInode, name: bytes, is_dir: bool) -> None:
    """ovl_do_remove: unlink or rmdir."""
    ofs = parent.fs
    victim = lookup(parent, name)
    if victim is None:
        raise KernelError(E.ENOENT)
    lower = _lower_positive(parent, name, victim)
    whiteouts = readdir.check_empty(victim) if is_dir and (lower or not _pure_upper(victim)) else []
    ofs.want_write()
    parent.copy_up()
    _check_upper(parent, name, victim)
    victim.hold_upper()
    readdir.clear_whiteouts(victim, whiteouts)
    if lower:
        _whiteout_over(parent, name)
    else:
        R.remove(ofs, parent.upper, name)
    if is_dir or victim.upper is None:
        victim.dead = True


def rename(olddir: OvlInode, old: bytes, newdir: OvlInode, new: bytes, flags: int) -> None:
    """ovl_rename; the VFS has checked the names, types and emptiness as
    they show in the overlay."""
    ofs = olddir.fs
    if flags & ~(C.RENAME_EXCHANGE | C.RENAME_NOREPLACE):
        raise KernelError(E.EINVAL)
    src = lookup(olddir, old)
    dst = lookup(newdir, new)
    overwrite = not flags & C.RENAME_EXCHANGE
    if src is None or not overwrite and dst is None:
        raise KernelError(E.ENOENT)
    if not _can_move(src) or not overwrite and not _can_move(dst):
        raise KernelError(E.EXDEV)      # a directory with lower layers: mv copies it
    whiteouts = readdir.check_empty(dst) if overwrite and dst is not None and dst.is_dir \
        and not _pure_upper(dst) else []
    real_flags = flags & C.RENAME_EXCHANGE
    leave_whiteout = cleanup_whiteout = False
    if overwrite:
        new_whiteout = dst is None and upper_whiteout(newdir, new)
        if _lower_positive(olddir, old, src):
            if new_whiteout:
                real_flags |= C.RENAME_EXCHANGE     # the whiteout moves to the old name
            else:
                leave_whiteout = True               # RENAME_WHITEOUT
        elif src.is_dir and new_whiteout:
            real_flags |= C.RENAME_EXCHANGE
            cleanup_whiteout = True
    ofs.want_write()
    src.copy_up()
    newdir.copy_up()
    if not overwrite:
        dst.copy_up()
    readdir.clear_whiteouts(dst, whiteouts)
    if olddir is not newdir:
        if _has_origin(src):
            set_impure(newdir)
        if not overwrite and _has_origin(dst):
            set_impure(olddir)
    _check_upper(olddir, old, src)
    _check_upper(newdir, new, dst)
    if src.is_dir and not src.opaque and newdir.is_merge():
        _set_opaque(src, E.EXDEV)
    if not overwrite and dst.is_dir and not dst.opaque and olddir.is_merge():
        _set_opaque(dst, E.EXDEV)
    if overwrite and dst is not None:
        dst.hold_upper()
    R.rename(ofs, olddir.upper, old, newdir.upper, new, real_flags)
    if leave_whiteout:
        _whiteout_over(olddir, old)
    elif cleanup_whiteout:
        R.cleanup(ofs, olddir.upper, old)
    src.parent, src.name = newdir, new
    if not overwrite:
        dst.parent, dst.name = olddir, old
    elif dst is not None and (dst.is_dir or dst.upper is None):
        dst.dead = True


def _pure_upper(inode: OvlInode) -> bool:
    """ovl_pure_upper: only in the upper layer, and cannot hold whiteouts."""
    return not inode.lowers and not inode.whiteouts


def _can_move(inode: OvlInode) -> bool:
    """ovl_can_move with redirect_dir off: a file, or a directory of the upper layer alone."""
    return not inode.is_dir or inode.upper is not None and not inode.lowers


def _has_origin(inode: OvlInode) -> bool:
    """OVL_TYPE_ORIGIN: an upper file that keeps its lower one's number."""
    return inode.upper is not None and bool(inode.lowers) and inode.bylower


def _lower_positive(parent: OvlInode, name: bytes, inode: OvlInode) -> bool:
    """ovl_lower_positive: the name is in a lower layer, so removing it
    needs a whiteout."""
    if inode.upper is None:
        return True
    for lp in parent.lowers:
        real = lp.inode.lookup(name)
        if real is not None:
            return not is_whiteout(real)
    return False


def _check_upper(parent: OvlInode, name: bytes, inode: OvlInode | None) -> None:
    """ovl_matches_upper: the upper layer still has what the overlay thinks
    is there, its upper inode or nothing (a whiteout); ESTALE when the
    layer was changed behind the overlay's back."""
    real = parent.upper.lookup(name)
    want = inode.upper if inode is not None else None
    if real is not want and not (want is None and is_whiteout(real)):
        raise KernelError(E.ESTALE)


def _set_opaque(inode: OvlInode, xerr: int) -> None:
    """ovl_set_opaque_xerr: the directory hides the lower ones (xerr when
    the upper layer has no xattrs)."""
    inode.fs.xattrs.check_set(inode.upper, OPAQUE, b"y", xerr)
    inode.opaque = True


def _over_whiteout(parent: OvlInode, name: bytes, make: Callable) -> object:
    """ovl_create_over_whiteout: made in the work directory, then renamed
    over the whiteout; a directory made so is opaque, and trades places
    with the whiteout, which is then removed."""
    ofs = parent.fs
    work = ofs.workdir
    tmp = R.temp_name(work)
    real = make(work, tmp)
    try:
        if real.is_dir:
            ofs.xattrs.check_set(real, OPAQUE, b"y", E.EIO)
            R.rename(ofs, work, tmp, parent.upper, name, C.RENAME_EXCHANGE)
            R.cleanup(ofs, work, tmp)
        else:
            R.rename(ofs, work, tmp, parent.upper, name)
    except KernelError:
        R.cleanup(ofs, work, tmp)
        raise
    return real


def _whiteout_over(parent: OvlInode, name: bytes) -> None:
    """ovl_cleanup_and_whiteout: a whiteout renamed onto the name (what
    the upper layer had there goes: a directory trades places with it and
    is removed from the work directory)."""
    ofs = parent.fs
    work = ofs.workdir
    udir = parent.upper
    wname = _whiteout(ofs)
    cur = udir.lookup(name)
    try:
        if cur is not None and cur.is_dir:
            R.rename(ofs, work, wname, udir, name, C.RENAME_EXCHANGE)
            R.cleanup(ofs, work, wname)
        else:
            R.rename(ofs, work, wname, udir, name)
    except KernelError:
        R.cleanup(ofs, work, wname)
        raise


def _whiteout(ofs: OvlFs) -> bytes:
    """ovl_whiteout: the name of a new whiteout in the work directory, a
    link to the mount's shared one (a fresh inode when it has too many
    links, and for every whiteout once linking failed otherwise)."""
    work = ofs.workdir
    if ofs.whiteout_name is None:
        name = R.temp_name(work)
        R.create(ofs, work, name, C.S_IFCHR, ofs.creds.fsuid, ofs.creds.fsgid)
        ofs.whiteout_name = name
    if ofs.share_whiteout:
        name = R.temp_name(work)
        shared = work.lookup(ofs.whiteout_name)
        try:
            R.link(ofs, work, name, shared)
            return name
        except KernelError as e:
            if e.errno != E.EMLINK:
                log(printk.pr_warn, f"Failed to link whiteout - disabling whiteout inode sharing"
                                    f"(nlink={shared.nlink}, err={-e.errno})")
                ofs.share_whiteout = False
    name, ofs.whiteout_name = ofs.whiteout_name, None
    return name
