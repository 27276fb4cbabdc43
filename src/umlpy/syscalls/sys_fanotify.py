"""fanotify_init and fanotify_mark, and the fanotify file (Linux 6.1).

The group, its marks and events are vfs/fanotify.py; here are the checks
of the two syscalls in Linux's order and the file a listener reads
events from and writes permission answers to.  Without CAP_SYS_ADMIN a
group may only be a notification group in a FID mode (no fds, no pids
but the reader's own, inode marks only), as 6.1 allows.  FAN_REPORT_PIDFD
adds a pidfd record to each event (not with FAN_REPORT_TID).  No
FAN_ENABLE_AUDIT (EINVAL, as a kernel without CONFIG_AUDITSYSCALL).  execve does not report its opens yet, so
marks for FAN_OPEN_EXEC and FAN_OPEN_EXEC_PERM are taken and never fire.
"""
from __future__ import annotations

import struct

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import ucount
from umlpy.kernel.mm import kmalloc_size
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_inotify import kdev
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_path, s32
from umlpy.vfs import fanotify as F
from umlpy.vfs import fsnotify as N
from umlpy.vfs import namei
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, File
from umlpy.vfs.fown import POLL_IN
from umlpy.vfs.perm import permission

# fanotify_init flags that need CAP_SYS_ADMIN, and those anyone may give
ADMIN_INIT_FLAGS = (F.FAN_CLASS_CONTENT | F.FAN_CLASS_PRE_CONTENT | F.FAN_REPORT_TID
                    | F.FAN_REPORT_PIDFD | F.FAN_UNLIMITED_QUEUE | F.FAN_UNLIMITED_MARKS)
USER_INIT_FLAGS = F.FID_BITS | F.FAN_CLOEXEC | F.FAN_NONBLOCK
EVENT_F_BITS = (C.O_ACCMODE | C.O_APPEND | C.O_NONBLOCK | C.O_SYNC | C.O_DSYNC | C.O_CLOEXEC
                | C.O_LARGEFILE | C.O_NOATIME)
MARK_TYPE_BITS = F.FAN_MARK_MOUNT | F.FAN_MARK_FILESYSTEM
MARK_CMD_BITS = F.FAN_MARK_ADD | F.FAN_MARK_REMOVE | F.FAN_MARK_FLUSH
MARK_IGNORE_BITS = F.FAN_MARK_IGNORED_MASK | F.FAN_MARK_IGNORE
MARK_FLAGS = (MARK_TYPE_BITS | MARK_CMD_BITS | MARK_IGNORE_BITS | F.FAN_MARK_DONT_FOLLOW
              | F.FAN_MARK_ONLYDIR | F.FAN_MARK_IGNORED_SURV_MODIFY | F.FAN_MARK_EVICTABLE)
DIRONLY_BITS = F.DIRENT_EVENTS | F.EVENT_FLAGS


class FanotifyFile(File):
    """The group's file ("[fanotify]"): read events, write answers."""
    kind = "[fanotify]"
    has_fasync = True

    def __init__(self, kernel, flags: int, f_flags: int, owner: tuple, chain: list) -> None:
        super().__init__(None, anon_inode(), C.O_RDWR | (C.O_NONBLOCK if flags & F.FAN_NONBLOCK else 0))
        limit = F.UNLIMITED_EVENTS if flags & F.FAN_UNLIMITED_QUEUE else kernel.tunables.fanotify_max_queued_events
        # an event as fanotify_event holds it, with its info records
        queue = N.EventQueue("fanotify", lambda: self.kill_fasync(POLL_IN), kernel.mem_budget,
                             lambda ev: kmalloc_size(32 + ev.size()))
        self.group = F.Group(kernel, flags, f_flags, owner, chain, queue, limit)

    def read(self, task, n: int) -> bytes:
        return self.group.queue.read(self.nonblock, n, self.group.event_size, lambda ev: self.group.report(task, ev))

    def write(self, task, data: bytes) -> int:
        """fanotify_write: one struct fanotify_response answers the
        permission event read with that fd."""
        if len(data) < F.RESPONSE.size:
            raise KernelError(E.EINVAL)
        fd, response = F.RESPONSE.unpack(bytes(data[:F.RESPONSE.size]))
        self.group.respond(fd, response)
        return F.RESPONSE.size

    def poll(self) -> int:
        return POLLIN if self.group.queue.events else 0

    def poll_queues(self) -> list:
        return [self.group.queue.wq]

    def ioctl(self, task, req: int, arg: int) -> int:
        if req == N.FIONREAD:
            task.mem.write(arg, struct.pack("<i", self.group.queue.nbytes(self.group.event_size)))
            return 0
        raise KernelError(E.ENOTTY)

    def release(self) -> None:
        self.group.release()

    def fdinfo(self) -> bytes:
        """fanotify_show_fdinfo: the group's flags, then one line per mark
        (an inode mark's ends with its file handle)."""
        g = self.group
        out = [f"fanotify flags:{g.flags & (ADMIN_INIT_FLAGS | USER_INIT_FLAGS):x} event-flags:{g.f_flags:x}\n"]
        for m in reversed(g.marks):
            mflags = (F.FAN_MARK_IGNORED_SURV_MODIFY if m.flags & F.MF_SURV_MODIFY else 0) | \
                (F.FAN_MARK_EVICTABLE if m.flags & F.MF_EVICTABLE else 0)
            tail = f"mflags:{mflags:x} mask:{m.mask:x} ignored_mask:{m.ignore:x}\n"
            if m.kind == F.T_INODE:
                out.append(f"fanotify ino:{m.obj.ino:x} sdev:{kdev(m.obj):x} {tail[:-1]} {N.mark_fhandle(m.obj)}\n")
            elif m.kind == F.T_MOUNT:
                out.append(f"fanotify mnt_id:{m.obj.mnt_id:x} {tail}")
            else:
                out.append(f"fanotify sdev:{kdev(m.obj.root):x} {tail}")
        return "".join(out).encode()


@syscall("fanotify_init", status=PARTIAL,
         note="6.1's classes, FID modes, FAN_REPORT_PIDFD and limits (fs.fanotify.*); no FAN_ENABLE_AUDIT")
def sys_fanotify_init(t, flags, event_f_flags, *_):
    flags &= 0xFFFFFFFF
    event_f_flags &= 0xFFFFFFFF
    fid_mode = flags & F.FID_BITS
    if not capable(t.proc.creds, K.CAP_SYS_ADMIN):
        if flags & ADMIN_INIT_FLAGS or not fid_mode:
            raise KernelError(E.EPERM)
        flags |= F.FANOTIFY_UNPRIV
    if flags & ~(ADMIN_INIT_FLAGS | USER_INIT_FLAGS | F.FANOTIFY_UNPRIV):
        raise KernelError(E.EINVAL)
    if flags & F.FAN_REPORT_PIDFD and flags & F.FAN_REPORT_TID:
        raise KernelError(E.EINVAL)     # pidfds name processes, not threads
    if event_f_flags & ~EVENT_F_BITS or event_f_flags & C.O_ACCMODE == C.O_ACCMODE:
        raise KernelError(E.EINVAL)
    if fid_mode and flags & F.CLASS_BITS:
        raise KernelError(E.EINVAL)     # FID modes are for notification groups
    if fid_mode & F.FAN_REPORT_NAME and not fid_mode & F.FAN_REPORT_DIR_FID:
        raise KernelError(E.EINVAL)     # the name comes with its directory
    if fid_mode & F.FAN_REPORT_TARGET_FID and fid_mode & (F.FAN_REPORT_NAME | F.FAN_REPORT_FID) != \
            F.FAN_REPORT_NAME | F.FAN_REPORT_FID:
        raise KernelError(E.EINVAL)
    # max_fanotify_groups of the caller's user namespace and those above
    # (/proc/sys/fs/fanotify/max_user_groups the initial one's)
    owner = (ucount.user_ns(t.kernel, t.proc.creds), t.proc.creds.euid)
    try:
        chain = ucount.charge(*owner, "fanotify_groups")
    except KernelError:
        raise KernelError(E.EMFILE) from None
    if flags & F.CLASS_BITS == F.CLASS_BITS:
        ucount.undo(chain, "fanotify_groups")
        raise KernelError(E.EINVAL)
    f = FanotifyFile(t.kernel, flags, event_f_flags | C.O_LARGEFILE, owner, chain)
    try:
        return t.files.install(f, bool(flags & F.FAN_CLOEXEC))
    except KernelError:
        f.release()
        raise


def _find_path(t, dirfd: int, path: int, flags: int):
    """fanotify_find_path: the object named by dirfd and path (dirfd's own
    file when path is NULL), which the caller must be able to read."""
    if path == 0:
        f = t.files.get(dirfd)
        if flags & F.FAN_MARK_ONLYDIR and not f.inode.is_dir:
            raise KernelError(E.ENOTDIR)
        d, inode = f.dentry, f.inode
    else:
        d = namei.lookup(t, dirfd, read_path(t, path), follow=not flags & F.FAN_MARK_DONT_FOLLOW)
        if flags & F.FAN_MARK_ONLYDIR and not d.inode.is_dir:
            raise KernelError(E.ENOTDIR)
        inode = d.inode
    permission(inode, C.R_OK, t.proc.creds)
    return d, inode


def _check_object(group: F.Group, d, inode, mask: int, flags: int, mark_type: int, adding: bool) -> None:
    """fanotify_events_supported (for an add) and the FID modes' needs:
    a filesystem fsid and file handles."""
    fs = inode.fs
    mount = d.mount if d is not None else None
    if adding:
        if mask & F.PERM_EVENTS and not fs.notify_perm:
            raise KernelError(E.EINVAL)
        if mark_type != F.FAN_MARK_INODE and mount is None:
            raise KernelError(E.EINVAL)     # SB_NOUSER: pipes, sockets, anonymous files
        strict = group.flags & F.FAN_REPORT_TARGET_FID or mask & F.FAN_RENAME or flags & F.FAN_MARK_IGNORE
        if strict and mark_type == F.FAN_MARK_INODE and not inode.is_dir and mask & DIRONLY_BITS:
            raise KernelError(E.ENOTDIR)
    if group.flags & F.FID_BITS:
        if fs.fsid() == (0, 0):
            raise KernelError(E.ENODEV)
        if fs.encode_fh(inode) is None:
            raise KernelError(E.EOPNOTSUPP)


def _add_mark(t, group: F.Group, obj, kind: int, mask: int, flags: int) -> None:
    """fanotify_add_mark: a new mark (counted against max_fanotify_marks,
    as the group's maker) or more bits in the one there."""
    ignore = flags & MARK_IGNORE_BITS
    m = group.find_mark(obj)
    if m is None:
        if not group.flags & F.FAN_UNLIMITED_MARKS:
            ucount.charge(*group.creator, "fanotify_marks")      # max_fanotify_marks: ENOSPC
        m = F.Mark(group, obj, kind)
        if flags & F.FAN_MARK_EVICTABLE:
            m.flags |= F.MF_EVICTABLE
        m.attach()
    # fanotify_may_update_existing_mark
    if flags & F.FAN_MARK_EVICTABLE and not m.flags & F.MF_EVICTABLE:
        raise KernelError(E.EEXIST)     # a pinned mark does not become evictable
    if flags & F.FAN_MARK_IGNORED_MASK and m.flags & F.MF_HAS_IGNORE_FLAGS:
        raise KernelError(E.EEXIST)
    if flags & F.FAN_MARK_IGNORE and not flags & F.FAN_MARK_IGNORED_SURV_MODIFY \
            and m.flags & F.MF_SURV_MODIFY:
        raise KernelError(E.EEXIST)
    if not flags & F.FAN_MARK_EVICTABLE:
        m.flags &= ~F.MF_EVICTABLE
    if ignore == F.FAN_MARK_IGNORE:
        m.flags |= F.MF_HAS_IGNORE_FLAGS
    if ignore and flags & F.FAN_MARK_IGNORED_SURV_MODIFY:
        m.flags |= F.MF_SURV_MODIFY
    if ignore:
        m.set_masks(m.mask, m.ignore | mask)
    else:
        m.set_masks(m.mask | mask, m.ignore)


def _remove_mark(group: F.Group, obj, mask: int, flags: int, umask: int) -> None:
    """fanotify_remove_mark: the bits go; the mark with them once only
    bits the user cannot remove are left."""
    m = group.find_mark(obj)
    if m is None:
        raise KernelError(E.ENOENT)
    mask &= ~umask
    if flags & MARK_IGNORE_BITS:
        m.set_masks(m.mask, m.ignore & ~mask)
    else:
        m.set_masks(m.mask & ~mask, m.ignore)
    if not (m.mask | m.ignore) & ~umask:
        m.detach()


@syscall("fanotify_mark", status=PARTIAL,
         note="inode, mount and filesystem marks with 6.1's checks; FAN_MARK_EVICTABLE marks go at drop_caches' inode eviction; "
              "exec reports no FAN_OPEN_EXEC(_PERM) yet")
def sys_fanotify_mark(t, fanotify_fd, flags, mask, dirfd, path, *_):
    flags &= 0xFFFFFFFF
    if mask >> 32:
        raise KernelError(E.EINVAL)
    mark_type = flags & MARK_TYPE_BITS
    mark_cmd = flags & MARK_CMD_BITS
    ignore = flags & MARK_IGNORE_BITS
    if flags & ~MARK_FLAGS or mark_type == MARK_TYPE_BITS:
        raise KernelError(E.EINVAL)
    if mark_cmd in (F.FAN_MARK_ADD, F.FAN_MARK_REMOVE):
        if not mask:
            raise KernelError(E.EINVAL)
    elif mark_cmd != F.FAN_MARK_FLUSH or flags & ~(MARK_TYPE_BITS | F.FAN_MARK_FLUSH):
        raise KernelError(E.EINVAL)
    if mask & ~(F.EVENTS | F.EVENT_FLAGS | F.PERM_EVENTS) or ignore == MARK_IGNORE_BITS:
        raise KernelError(E.EINVAL)
    umask = 0
    if ignore == F.FAN_MARK_IGNORED_MASK:
        mask &= ~F.EVENT_FLAGS      # no meaning in the old ignore mask
        umask = F.EVENT_FLAGS
    f = t.files.get(s32(fanotify_fd))
    if not isinstance(f, FanotifyFile):
        raise KernelError(E.EINVAL)
    group = f.group
    if mark_type != F.FAN_MARK_INODE and (group.flags & F.FANOTIFY_UNPRIV
                                          or not capable(t.proc.creds, K.CAP_SYS_ADMIN)):
        raise KernelError(E.EPERM)
    fid_mode = group.flags & F.FID_BITS
    if mask & F.PERM_EVENTS and group.priority < 1 \
            or mask & F.FAN_FS_ERROR and mark_type != F.FAN_MARK_FILESYSTEM \
            or flags & F.FAN_MARK_EVICTABLE and mark_type != F.FAN_MARK_INODE \
            or mask & ~(F.FD_EVENTS | F.EVENT_FLAGS) and (not fid_mode or mark_type == F.FAN_MARK_MOUNT) \
            or mask & F.FAN_RENAME and not fid_mode & F.FAN_REPORT_NAME:
        raise KernelError(E.EINVAL)
    kind = {F.FAN_MARK_INODE: F.T_INODE, F.FAN_MARK_MOUNT: F.T_MOUNT, F.FAN_MARK_FILESYSTEM: F.T_SB}[mark_type]
    if mark_cmd == F.FAN_MARK_FLUSH:
        group.flush(kind)
        return 0
    d, inode = _find_path(t, s32(dirfd), path, flags)
    _check_object(group, d, inode, mask, flags, mark_type, mark_cmd == F.FAN_MARK_ADD)
    obj = inode if kind == F.T_INODE else d.mount if kind == F.T_MOUNT else inode.fs
    adding = mark_cmd == F.FAN_MARK_ADD
    if adding and ignore == F.FAN_MARK_IGNORE and (kind != F.T_INODE or inode.is_dir) \
            and not flags & F.FAN_MARK_IGNORED_SURV_MODIFY:
        raise KernelError(E.EISDIR if kind == F.T_INODE else E.EINVAL)
    if kind != F.T_INODE or not inode.is_dir:
        mask &= ~F.FAN_EVENT_ON_CHILD       # only a directory has children
        umask = F.FAN_EVENT_ON_CHILD
        if fid_mode & F.FAN_REPORT_DIR_FID and adding and not ignore:
            mask |= F.FAN_EVENT_ON_CHILD    # events with the parent's fid and the name
    if adding:
        _add_mark(t, group, obj, kind, mask, flags)
    else:
        _remove_mark(group, obj, mask, flags, umask)
    return 0
