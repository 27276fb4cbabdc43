"""Landlock's three syscalls (Linux's security/landlock/syscalls.c): a
ruleset fd is made, given rules, then merged into the caller's domain.
The checks themselves are in security/landlock.py."""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import landlock as L
from umlpy.kernel.errors import KernelError
from umlpy.security import landlock
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import s32
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import File, files_stat

PAGE_SIZE = 4096


class RulesetFile(File):
    """anon_inode:[landlock-ruleset]; read and write are EINVAL."""
    kind = "[landlock-ruleset]"

    def __init__(self, ruleset: landlock.Ruleset) -> None:
        super().__init__(None, anon_inode(), C.O_RDWR)
        self.ruleset = ruleset

    def write(self, task, data: bytes) -> int:
        raise KernelError(E.EINVAL)


def _enabled(t) -> None:
    """landlock_initialized: EOPNOTSUPP when lsm= left Landlock out."""
    if not t.kernel.params.lsm_enabled("landlock"):
        raise KernelError(E.EOPNOTSUPP)


def _ruleset_of(t, fd: int) -> landlock.Ruleset:
    """get_ruleset_from_fd: EBADF for no fd (or an O_PATH one), EBADFD
    for another kind of file."""
    f = t.files.get(s32(fd))
    if not isinstance(f, RulesetFile):
        raise KernelError(E.EBADFD)
    return f.ruleset


@syscall("landlock_create_ruleset", note="ABI 2 (Linux 6.1): filesystem rights, REFER")
def sys_landlock_create_ruleset(t, attr, size, flags, *_):
    _enabled(t)
    flags &= 0xFFFFFFFF
    if flags:
        if flags == L.CREATE_RULESET_VERSION and not attr and not size:
            return L.ABI_VERSION
        raise KernelError(E.EINVAL)
    # copy_min_struct_from_user: a bigger struct from newer headers is
    # fine if what this ABI does not know is zero
    if not attr:
        raise KernelError(E.EFAULT)
    if size < L.RULESET_ATTR.size:
        raise KernelError(E.EINVAL)
    if size > PAGE_SIZE:
        raise KernelError(E.E2BIG)
    raw = t.mem.read(attr, size)
    if any(raw[L.RULESET_ATTR.size:]):
        raise KernelError(E.E2BIG)
    (handled,) = L.RULESET_ATTR.unpack_from(raw)
    if handled & ~L.MASK_ACCESS_FS:
        raise KernelError(E.EINVAL)
    if not handled:
        raise KernelError(E.ENOMSG)
    return t.files.install(RulesetFile(landlock.Ruleset(handled)), True)


@syscall("landlock_add_rule", note="LANDLOCK_RULE_PATH_BENEATH")
def sys_landlock_add_rule(t, fd, rule_type, rule_attr, flags, *_):
    _enabled(t)
    if flags & 0xFFFFFFFF:
        raise KernelError(E.EINVAL)
    rs = _ruleset_of(t, fd)
    if rule_type & 0xFFFFFFFF != L.RULE_PATH_BENEATH:
        raise KernelError(E.EINVAL)
    allowed, parent_fd = L.PATH_BENEATH_ATTR.unpack(t.mem.read(rule_attr, L.PATH_BENEATH_ATTR.size))
    if not allowed:
        raise KernelError(E.ENOMSG)     # a rule granting nothing would change nothing
    if allowed & ~rs.handled:
        raise KernelError(E.EINVAL)
    # get_path_from_fd: any fd, O_PATH too, of a file in a mount
    f = t.files.get_raw(parent_fd)
    d = f.dentry
    if isinstance(f, RulesetFile) or d is None or d.mount is None:
        raise KernelError(E.EBADFD)
    if not d.inode.is_dir and allowed & ~L.ACCESS_FILE:
        raise KernelError(E.EINVAL)     # a file's rule grants only what files have
    rs.add(d.inode, allowed, files_stat.max)
    return 0


@syscall("landlock_restrict_self")
def sys_landlock_restrict_self(t, fd, flags, *_):
    _enabled(t)
    if flags & 0xFFFFFFFF:
        raise KernelError(E.EINVAL)
    # as seccomp(2): no gaining privileges past the sandbox, unless admin
    # (in the caller's own user namespace)
    if not t.proc.no_new_privs and not t.proc.creds.cap_effective >> K.CAP_SYS_ADMIN & 1:
        raise KernelError(E.EPERM)
    t.landlock = landlock.merge(t.landlock, _ruleset_of(t, fd), files_stat.max)
    return 0
