"""The filesystem context API: fsopen, fsconfig, fsmount and fspick.

A context file collects a filesystem's source and options (fsconfig),
makes the filesystem (FSCONFIG_CMD_CREATE) or changes a mounted one's
(fspick + FSCONFIG_CMD_RECONFIGURE); fsmount gives a detached mount of it
that move_mount attaches.  Filesystems Linux 6.1 still mounts the legacy
way (ext2, hostfs) take only flags and strings, as there."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.fs import registry
from umlpy.kernel.cred import need
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_mount import mount_root_of, new_fs, reconfigure
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_cstr, read_path, s32
from umlpy.vfs import namei
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import File
from umlpy.vfs.mounts import DetachedMountFile

FSOPEN_CLOEXEC = 1
FSPICK_CLOEXEC, FSPICK_SYMLINK_NOFOLLOW, FSPICK_NO_AUTOMOUNT, FSPICK_EMPTY_PATH = 1, 2, 4, 8
FSMOUNT_CLOEXEC = 1
(SET_FLAG, SET_STRING, SET_BINARY, SET_PATH, SET_PATH_EMPTY, SET_FD,
 CMD_CREATE, CMD_RECONFIGURE) = range(8)
LEGACY = ("ext2", "hostfs")
# vfs_parse_sb_flag: keys every filesystem takes (True: sets, False: clears)
SB_FLAG_KEYS = {"dirsync": True, "lazytime": True, "mand": True, "posixacl": True, "ro": True,
                "sync": True, "async": False, "nolazytime": False, "nomand": False, "rw": False}
KEY_MAX = 256
PAGE_SIZE = 4096

# fs_context phases
CREATE_PARAMS, AWAITING_MOUNT, RECONF_PARAMS, AWAITING_RECONF, FAILED = range(5)


class FsContextFile(File):
    """An fs_context behind an fd (anon_inode:fscontext)."""
    kind = "fscontext"
    pollable = False        # fscontext_fops has no poll: epoll_ctl answers EPERM

    def __init__(self, table, fstype: str, phase: int, fs=None) -> None:
        super().__init__(None, anon_inode(), C.O_RDWR)
        self.table = table
        self.fstype = fstype
        self.phase = phase
        self.fs = fs                    # made by CMD_CREATE, or fspick's
        self.fs_opts = ""
        self.source: str | None = None
        self.options: list[str] = []
        self.read_only = False

    def read(self, task, n: int) -> bytes:
        raise KernelError(E.ENODATA)    # no messages are kept

    def release(self) -> None:
        if self.phase == AWAITING_MOUNT:
            self.table.release_unmounted(self.fs)   # made, never mounted


@syscall("fsopen")
def sys_fsopen(t, name, flags, *_):
    need(t.proc.creds, CAP_SYS_ADMIN)
    if flags & 0xFFFFFFFF & ~FSOPEN_CLOEXEC:
        raise KernelError(E.EINVAL)
    fstype = read_cstr(t, name, 4096).decode(errors="replace")
    registry.check_known(fstype)
    return t.files.install(FsContextFile(t.kernel.mounts, fstype, CREATE_PARAMS), bool(flags & FSOPEN_CLOEXEC))


@syscall("fspick")
def sys_fspick(t, dirfd, path, flags, *_):
    """A context to reconfigure the filesystem mounted at path (its root)."""
    need(t.proc.creds, CAP_SYS_ADMIN)
    flags &= 0xFFFFFFFF
    if flags & ~(FSPICK_CLOEXEC | FSPICK_SYMLINK_NOFOLLOW | FSPICK_NO_AUTOMOUNT | FSPICK_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    d = namei.lookup(t, s32(dirfd), read_path(t, path), follow=not flags & FSPICK_SYMLINK_NOFOLLOW,
                     empty_ok=bool(flags & FSPICK_EMPTY_PATH))
    m = mount_root_of(d)
    f = FsContextFile(t.kernel.mounts, m.fstype, RECONF_PARAMS, m.fs)
    f.read_only = m.fs.read_only
    return t.files.install(f, bool(flags & FSPICK_CLOEXEC))


def _check_args(cmd: int, key: int, value: int, aux: int) -> None:
    """fsconfig's argument rules per command, before the fd is looked at."""
    if cmd == SET_FLAG:
        bad = not key or value or aux
    elif cmd == SET_STRING:
        bad = not key or not value or aux
    elif cmd == SET_BINARY:
        bad = not key or not value or aux <= 0 or aux > 1 << 20
    elif cmd in (SET_PATH, SET_PATH_EMPTY):
        bad = not key or not value or (aux != C.AT_FDCWD and aux < 0)
    elif cmd == SET_FD:
        bad = not key or value or aux < 0
    elif cmd in (CMD_CREATE, CMD_RECONFIGURE):
        bad = key or value or aux
    else:
        raise KernelError(E.EOPNOTSUPP)
    if bad:
        raise KernelError(E.EINVAL)


@syscall("fsconfig", status=PARTIAL, note="flags and strings; path and fd values only for sb flag keys; no message log (read is ENODATA)")
def sys_fsconfig(t, fd, cmd, key, value, aux, *_):
    fd, cmd, aux = s32(fd), cmd & 0xFFFFFFFF, s32(aux)
    if fd < 0:
        raise KernelError(E.EINVAL)
    _check_args(cmd, key, value, aux)
    f = t.files.get_raw(fd)
    if not isinstance(f, FsContextFile):
        raise KernelError(E.EINVAL)
    if f.fstype in LEGACY and cmd in (SET_BINARY, SET_PATH, SET_PATH_EMPTY, SET_FD):
        raise KernelError(E.EOPNOTSUPP)
    if f.phase == AWAITING_RECONF:
        f.phase = RECONF_PARAMS         # finish_clean_context
    if cmd == CMD_CREATE:
        _create(t, f)
    elif cmd == CMD_RECONFIGURE:
        if f.phase != RECONF_PARAMS:
            raise KernelError(E.EBUSY)
        reconfigure(t, f.fs, f.read_only)
        f.phase = AWAITING_RECONF
    else:
        if f.phase not in (CREATE_PARAMS, RECONF_PARAMS):
            raise KernelError(E.EBUSY)
        name = read_cstr(t, key, KEY_MAX).decode(errors="replace")
        if cmd == SET_FD:
            t.files.get_raw(aux)
        text = read_cstr(t, value, KEY_MAX).decode(errors="replace") if value else None
        _param(f, cmd, name, text)
    return 0


def _param(f: FsContextFile, cmd: int, name: str, text: str | None) -> None:
    """vfs_parse_fs_param: sb flags, the source, then the filesystem's own options."""
    if name in SB_FLAG_KEYS:
        f.read_only = SB_FLAG_KEYS[name] if name in ("ro", "rw") else f.read_only
        return
    if cmd != SET_STRING and cmd != SET_FLAG:
        raise KernelError(E.EINVAL)
    if name == "source":
        if cmd != SET_STRING or f.source is not None:
            raise KernelError(E.EINVAL)     # one source
        f.source = text
        return
    if f.phase == RECONF_PARAMS:
        return      # a reconfiguration changes sb flags only here
    option = name if text is None else f"{name}={text}"
    if f.fstype in LEGACY:
        # legacy_parse_param: the options go in one page, as mount(2)'s data
        used = len(",".join(f.options))
        if len(option) > PAGE_SIZE - 2 - used:
            raise KernelError(E.EINVAL)
    elif not name:
        raise KernelError(E.EINVAL)     # no filesystem's parameter has an empty name
    f.options.append(option)


def _create(t, f: FsContextFile) -> None:
    if f.phase != CREATE_PARAMS:
        raise KernelError(E.EBUSY)
    try:
        f.fs, f.fs_opts = new_fs(t, f.fstype, f.source, f.read_only, ",".join(f.options))
    except KernelError:
        f.phase = FAILED
        raise
    f.phase = AWAITING_MOUNT


@syscall("fsmount")
def sys_fsmount(t, fd, flags, attr_flags, *_):
    """A detached mount of the context's new filesystem, as an O_PATH fd."""
    need(t.proc.creds, CAP_SYS_ADMIN)
    flags &= 0xFFFFFFFF
    attr_flags &= 0xFFFFFFFF
    if flags & ~FSMOUNT_CLOEXEC:
        raise KernelError(E.EINVAL)
    if attr_flags & ~(MS.MOUNT_ATTR_ALL & ~MS.MOUNT_ATTR_IDMAP):
        raise KernelError(E.EINVAL)
    atime = attr_flags & MS.MOUNT_ATTR__ATIME
    if atime not in (MS.MOUNT_ATTR_RELATIME, MS.MOUNT_ATTR_NOATIME, MS.MOUNT_ATTR_STRICTATIME):
        raise KernelError(E.EINVAL)
    mnt_flags = attr_flags & ~MS.MOUNT_ATTR__ATIME
    mnt_flags |= MS.MNT_RELATIME if atime == MS.MOUNT_ATTR_RELATIME else \
        MS.MOUNT_ATTR_NOATIME if atime == MS.MOUNT_ATTR_NOATIME else 0
    f = t.files.get_raw(s32(fd))
    if not isinstance(f, FsContextFile) or f.fs is None:
        raise KernelError(E.EINVAL)
    if f.phase != AWAITING_MOUNT:
        raise KernelError(E.EBUSY)
    m = t.kernel.mounts.detached(f.fs, f.source or "none", f.fstype, mnt_flags, f.fs_opts)
    f.phase = AWAITING_RECONF       # vfs_clean_context
    return t.files.install(DetachedMountFile(t.kernel.mounts, m), bool(flags & FSMOUNT_CLOEXEC))


