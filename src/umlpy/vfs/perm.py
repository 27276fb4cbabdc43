"""Permission checks on inodes (generic_permission and inode_owner_or_capable in Linux)."""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cred import capable, in_group, setid_bits
from umlpy.kernel.errors import KernelError


def permission(inode, mask: int, creds) -> None:
    """Raise EACCES unless creds may access inode with mask (R_OK|W_OK|X_OK);
    EPERM for a write to an immutable inode (chattr +i), whatever the bits.

    The owner, group or other bits by fsuid and fsgid; failing those,
    CAP_DAC_READ_SEARCH reads files and reads or searches directories, and
    CAP_DAC_OVERRIDE does anything but execute a file without any x bit.
    """
    if mask == 0:
        return
    if mask & C.W_OK and inode.get_fsflags() & C.FS_IMMUTABLE_FL:
        raise KernelError(E.EPERM)      # inode_permission: immutable, before the mode bits
    mode = inode.mode
    if creds.fsuid == inode.uid:
        bits = mode >> 6
    elif in_group(creds, inode.gid):
        bits = mode >> 3
    else:
        bits = mode
    if not mask & ~bits & 7:
        return
    if inode.is_dir:
        read_search, override = not mask & C.W_OK, True
    else:
        read_search, override = mask == C.R_OK, not mask & C.X_OK or bool(mode & C.S_IXUGO)
    if read_search and capable(creds, K.CAP_DAC_READ_SEARCH) or override and capable(creds, K.CAP_DAC_OVERRIDE):
        return
    if inode.grants(creds):
        return
    raise KernelError(E.EACCES)


def owner_or_capable(inode, creds) -> bool:
    """The fsuid owns the inode, or CAP_FOWNER stands in for owning it."""
    return creds.fsuid == inode.uid or capable(creds, K.CAP_FOWNER)


def check_settable(inode) -> None:
    """may_setattr: an immutable or append-only inode keeps its mode, owner
    and times (EPERM, before any check of who asks)."""
    if inode.get_fsflags() & (C.FS_IMMUTABLE_FL | C.FS_APPEND_FL):
        raise KernelError(E.EPERM)


def check_owner(inode, creds) -> None:
    if not owner_or_capable(inode, creds):
        raise KernelError(E.EPERM)


def new_inode_owner(task, dir_inode, mode: int, perms: int = 0o7777) -> tuple[int, int, int]:
    """(mode, uid, gid) of an inode made in dir_inode (vfs_prepare_mode, then
    inode_init_owner): in a set-group-ID directory the inode takes the
    directory's group and a directory its S_ISGID too, while a
    group-executable S_ISGID file made by someone neither in that group nor
    holding CAP_FSETID loses S_ISGID (mode_strip_sgid, before the umask);
    then the umask and the permission bits the call may set."""
    creds = task.proc.creds
    fmt = mode & C.S_IFMT
    bits = mode & 0o7777
    gid = creds.fsgid
    if dir_inode.mode & C.S_ISGID:
        gid = dir_inode.gid
        if fmt != C.S_IFDIR and setid_bits(bits) & C.S_ISGID \
                and not (in_group(creds, gid) or capable(creds, K.CAP_FSETID)):
            bits &= ~C.S_ISGID
    bits = bits & ~task.fs.umask & perms
    if fmt == C.S_IFDIR and dir_inode.mode & C.S_ISGID:
        bits |= C.S_ISGID
    return fmt | bits, creds.fsuid, gid


def drop_sgid(inode, creds) -> bool:
    """setattr_should_drop_sgid: set-group-ID goes with a change of owner or
    contents when it marks a group-executable file, or when creds are
    neither in the file's group nor hold CAP_FSETID."""
    return bool(inode.mode & C.S_ISGID) and bool(
        inode.mode & C.S_IXGRP or not (in_group(creds, inode.gid) or capable(creds, K.CAP_FSETID)))


def kill_suid(inode, creds) -> None:
    """A write or truncate by someone without CAP_FSETID clears set-user-ID,
    and set-group-ID as drop_sgid says (Linux's file_remove_privs), so a
    privileged program cannot be replaced under its bits."""
    if not inode.is_reg or capable(creds, K.CAP_FSETID):
        return
    kill = (inode.mode & C.S_ISUID) | (C.S_ISGID if drop_sgid(inode, creds) else 0)
    if kill:
        inode.mode &= ~kill
        inode.touch(m=False)


# fs.protected_* (fs/namei.c): the checks of a sticky world-writable
# directory such as /tmp against links and files planted by another user

_STICKY_OTHER_W = C.S_ISVTX | C.S_IWOTH


def may_follow_link(tunables, creds, dir_inode, link) -> None:
    """may_follow_link: with protected_symlinks, a symlink in a sticky
    world-writable directory is followed only by its owner or when the
    directory's owner owns it too (EACCES)."""
    if not tunables.protected_symlinks or creds.fsuid == link.uid:
        return
    if dir_inode.mode & _STICKY_OTHER_W != _STICKY_OTHER_W or dir_inode.uid == link.uid:
        return
    raise KernelError(E.EACCES)


def may_linkat(tunables, inode, creds) -> None:
    """may_linkat: with protected_hardlinks, only the owner (or CAP_FOWNER)
    links a file that is not a safe source: a regular file, neither
    setuid nor setgid-executable, that the linker may read and write (EPERM)."""
    if not tunables.protected_hardlinks or owner_or_capable(inode, creds):
        return
    if inode.mode & C.S_IFMT == C.S_IFREG and not setid_bits(inode.mode):
        try:
            permission(inode, C.R_OK | C.W_OK, creds)
            return
        except KernelError:
            pass
    raise KernelError(E.EPERM)


def may_create_in_sticky(tunables, creds, dir_inode, inode) -> None:
    """may_create_in_sticky: with protected_fifos or protected_regular, an
    O_CREAT open of an existing fifo or regular file in a sticky directory
    that neither the opener nor the directory's owner owns is refused when
    the directory is world-writable (or, at level 2, group-writable): EACCES."""
    kind = inode.mode & C.S_IFMT
    level = tunables.protected_fifos if kind == C.S_IFIFO else \
        tunables.protected_regular if kind == C.S_IFREG else 0
    if not level or not dir_inode.mode & C.S_ISVTX or inode.uid in (dir_inode.uid, creds.fsuid):
        return
    if dir_inode.mode & C.S_IWOTH or dir_inode.mode & C.S_IWGRP and level >= 2:
        raise KernelError(E.EACCES)
