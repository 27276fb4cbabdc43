"""Extended attributes: get/set/list/remove, by path, link or fd."""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cred import capable, need
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_cstr, read_path, s32
from umlpy.vfs import fsnotify as N
from umlpy.vfs import namei
from umlpy.vfs.perm import owner_or_capable, permission

XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
# namespaces whose handler takes the rest; system.* (POSIX ACLs) is
# EOPNOTSUPP everywhere, so cp -a and tar fall back to chmod, as on a
# kernel without ACL support
PREFIXED = (b"user.", b"trusted.", b"security.")
NOTE = ("tmpfs in memory; ext2 on disk (user., trusted., security. in EA blocks as Linux's ext2 "
        "writes them; ext4 in-inode xattrs read too); no POSIX ACLs")


def _target(t, how: str, target: int):
    """(inode, dentry) a path or an open file names (whose dentry may be None)."""
    if how == "f":
        f = t.files.get(s32(target))
        if f.inode is None:
            raise KernelError(E.EBADF)
        return f.inode, f.dentry
    d = namei.lookup(t, C.AT_FDCWD, read_path(t, target), follow=how == "")
    return d.inode, d


def _inode(t, how: str, target: int):
    return _target(t, how, target)[0]


def _name(t, addr: int) -> bytes:
    try:
        name = read_cstr(t, addr, XATTR_NAME_MAX + 1)
    except KernelError as e:
        if e.errno != E.ENAMETOOLONG:
            raise
        raise KernelError(E.ERANGE) from None     # too long: ERANGE, as Linux says
    if not name:
        raise KernelError(E.ERANGE)
    if not name.startswith(PREFIXED):
        raise KernelError(E.EOPNOTSUPP)
    return name


def _resolve(t, inode, addr: int, write: bool) -> bytes:
    """The name at addr, once the caller may use it on inode."""
    name = _name(t, addr)
    _may(t, inode, name, write)
    if name in PREFIXED:        # a bare prefix: Linux's xattr_resolve_name refuses it
        raise KernelError(E.EINVAL)
    return name


def _may(t, inode, name: bytes, write: bool) -> None:
    """xattr_permission, and the capability rules for security.* writes."""
    creds = t.proc.creds
    if write and inode.get_fsflags() & (C.FS_IMMUTABLE_FL | C.FS_APPEND_FL):
        raise KernelError(E.EPERM)
    if name.startswith(b"trusted.") and not capable(creds, K.CAP_SYS_ADMIN):
        raise KernelError(E.EPERM if write else E.ENODATA)
    if name.startswith(b"user."):
        if not (inode.is_reg or inode.is_dir):
            raise KernelError(E.EPERM if write else E.ENODATA)
        if write and inode.is_dir and inode.mode & C.S_ISVTX and not owner_or_capable(inode, creds):
            raise KernelError(E.EPERM)
        permission(inode, C.W_OK if write else C.R_OK, creds)
    elif write and name.startswith(b"security."):
        need(creds, K.CAP_SETFCAP if name == b"security.capability" else K.CAP_SYS_ADMIN)


def _get(t, how: str, target: int, uname: int, value: int, size: int) -> int:
    inode = _inode(t, how, target)
    name = _resolve(t, inode, uname, False)
    return _copy_out(t, value, size, inode.getxattr(name))


def _copy_out(t, addr: int, size: int, data: bytes) -> int:
    """A value or name list to the caller: size 0 asks for the length, a
    smaller buffer is ERANGE."""
    if size == 0:
        return len(data)
    if size < len(data):
        raise KernelError(E.ERANGE)
    t.mem.write(addr, data)
    return len(data)


def _set(t, how: str, target: int, uname: int, value: int, size: int, flags: int) -> int:
    bad_flags = flags & ~(C.XATTR_CREATE | C.XATTR_REPLACE)
    if bad_flags or size > XATTR_SIZE_MAX:
        raise KernelError(E.EINVAL if bad_flags else E.E2BIG)
    inode, d = _target(t, how, target)
    name = _resolve(t, inode, uname, True)
    if inode.fs.read_only:
        raise KernelError(E.EROFS)
    inode.setxattr(name, t.mem.read(value, size) if size else b"", flags)
    N.dentry_event(d, N.IN_ATTRIB, inode)
    return 0


def _list(t, how: str, target: int, buf: int, size: int) -> int:
    inode = _inode(t, how, target)
    creds = t.proc.creds
    trusted = capable(creds, K.CAP_SYS_ADMIN)
    names = [n for n in inode.listxattr() if trusted or not n.startswith(b"trusted.")]
    return _copy_out(t, buf, size, b"".join(n + b"\0" for n in names))


def _remove(t, how: str, target: int, uname: int) -> int:
    inode, d = _target(t, how, target)
    name = _resolve(t, inode, uname, True)
    if inode.fs.read_only:
        raise KernelError(E.EROFS)
    inode.removexattr(name)
    N.dentry_event(d, N.IN_ATTRIB, inode)
    return 0


for _prefix, _how in (("", ""), ("l", "l"), ("f", "f")):
    syscall(_prefix + "getxattr", status=PARTIAL, note=NOTE)(
        lambda t, a, n, v, s, *_, h=_how: _get(t, h, a, n, v, s))
    syscall(_prefix + "setxattr", status=PARTIAL, note=NOTE)(
        lambda t, a, n, v, s, fl, *_, h=_how: _set(t, h, a, n, v, s, fl))
    syscall(_prefix + "listxattr", status=PARTIAL, note=NOTE)(
        lambda t, a, b, s, *_, h=_how: _list(t, h, a, b, s))
    syscall(_prefix + "removexattr", status=PARTIAL, note=NOTE)(
        lambda t, a, n, *_, h=_how: _remove(t, h, a, n))
