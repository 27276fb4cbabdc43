"""fanotify: groups, their marks on inodes, mounts and filesystems, events.

As Linux 6.1's fs/notify/fanotify.  A group (fanotify_init) holds marks;
a mark is a group's masks on one object: an inode, a mount or a
filesystem (its superblock).  Every fsnotify hook (vfs/fsnotify.py) comes
here once with everything the event touches, and each group with a mark
on any of those objects makes at most one event of it, from the union of
its marks' masks less their ignore masks (fsnotify() iterating the object
types: inode, mount, superblock, the watching parent, the new directory
of a rename).  Groups are asked in priority order (the content classes
before notification ones).

An event is reported as struct fanotify_event_metadata with an fd opened
on the object (a path event) or, in the FID modes, with info records that
name the object by file handle (the filesystem's export operations, as
name_to_handle_at makes them) and maybe its directory and name.  Events
merge with a queued one about the same object from the same process.

Permission events (FAN_OPEN_PERM, FAN_ACCESS_PERM, FAN_OPEN_EXEC_PERM)
make the acting task wait on the group's access queue until the listener
writes a response; each group with interest is asked in turn and the
first FAN_DENY makes the operation EPERM.  The wait ends with the answer,
with the group's release (which allows), or with the task's death; a
handled signal makes the call start again (Linux waits killably only),
and the event it left is withdrawn.  The files a listener reads carry
`nonotify` (FMODE_NONOTIFY) and report nothing themselves.

Deviations: events caused by a process killed from outside name the
killer's pid for the closes of its files; mounts lose their marks at
umount rather than when the last file on them closes.
"""
from __future__ import annotations

import struct
from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel import ucount
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.dentry import want_write

# event bits (the same values as fsnotify's FS_*)
FAN_ACCESS = 0x1
FAN_MODIFY = 0x2
FAN_ATTRIB = 0x4
FAN_CLOSE_WRITE = 0x8
FAN_CLOSE_NOWRITE = 0x10
FAN_OPEN = 0x20
FAN_MOVED_FROM = 0x40
FAN_MOVED_TO = 0x80
FAN_CREATE = 0x100
FAN_DELETE = 0x200
FAN_DELETE_SELF = 0x400
FAN_MOVE_SELF = 0x800
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_FS_ERROR = 0x8000
FAN_OPEN_PERM = 0x10000
FAN_ACCESS_PERM = 0x20000
FAN_OPEN_EXEC_PERM = 0x40000
FAN_EVENT_ON_CHILD = 0x08000000
FAN_RENAME = 0x10000000
FAN_ONDIR = 0x40000000

FAN_CLOSE = FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE
FAN_MOVE = FAN_MOVED_FROM | FAN_MOVED_TO
PATH_EVENTS = FAN_ACCESS | FAN_MODIFY | FAN_CLOSE | FAN_OPEN | FAN_OPEN_EXEC
DIRENT_EVENTS = FAN_MOVE | FAN_CREATE | FAN_DELETE | FAN_RENAME
INODE_EVENTS = DIRENT_EVENTS | FAN_ATTRIB | FAN_MOVE_SELF | FAN_DELETE_SELF
EVENTS = PATH_EVENTS | INODE_EVENTS | FAN_FS_ERROR
PERM_EVENTS = FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM
FD_EVENTS = PATH_EVENTS | PERM_EVENTS
EVENT_FLAGS = FAN_EVENT_ON_CHILD | FAN_ONDIR
OUTGOING = EVENTS | PERM_EVENTS | FAN_Q_OVERFLOW | FAN_ONDIR
ALL_EVENTS = EVENTS | PERM_EVENTS          # ALL_FSNOTIFY_EVENTS, as far as fanotify sees them
POSS_ON_CHILD = PERM_EVENTS | FAN_ACCESS | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE | FAN_OPEN | FAN_OPEN_EXEC

# fanotify_init flags
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_CLASS_CONTENT = 0x4
FAN_CLASS_PRE_CONTENT = 0x8
FAN_UNLIMITED_QUEUE = 0x10
FAN_UNLIMITED_MARKS = 0x20
FAN_ENABLE_AUDIT = 0x40
FAN_REPORT_PIDFD = 0x80
FAN_REPORT_TID = 0x100
FAN_REPORT_FID = 0x200
FAN_REPORT_DIR_FID = 0x400
FAN_REPORT_NAME = 0x800
FAN_REPORT_TARGET_FID = 0x1000
CLASS_BITS = FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT
FID_BITS = FAN_REPORT_FID | FAN_REPORT_DIR_FID | FAN_REPORT_NAME | FAN_REPORT_TARGET_FID
FANOTIFY_UNPRIV = 0x80000000        # internal: made without CAP_SYS_ADMIN

# fanotify_mark flags
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_DONT_FOLLOW = 0x4
FAN_MARK_ONLYDIR = 0x8
FAN_MARK_MOUNT = 0x10
FAN_MARK_IGNORED_MASK = 0x20
FAN_MARK_IGNORED_SURV_MODIFY = 0x40
FAN_MARK_FLUSH = 0x80
FAN_MARK_FILESYSTEM = 0x100
FAN_MARK_EVICTABLE = 0x200
FAN_MARK_IGNORE = 0x400
FAN_MARK_INODE = 0x0

FAN_ALLOW, FAN_DENY, FAN_AUDIT = 0x1, 0x2, 0x10
FAN_NOFD = -1
METADATA_VERSION = 3
METADATA = struct.Struct("<IBBHQii")      # struct fanotify_event_metadata
RESPONSE = struct.Struct("<iI")           # struct fanotify_response
_INFO_HDR = struct.Struct("<BBHii")       # info header, then the fsid
_HANDLE = struct.Struct("<Ii")            # struct file_handle: handle_bytes, handle_type
INFO_FID, INFO_DFID_NAME, INFO_DFID, INFO_PIDFD, INFO_ERROR = 1, 2, 3, 4, 5
_ERROR_INFO = struct.Struct("<BBHiI")     # struct fanotify_event_info_error
FILEID_INVALID = 0xFF           # the handle type of an error about no inode
_PIDFD_INFO = struct.Struct("<BBHi")      # struct fanotify_event_info_pidfd
FAN_NOPIDFD, FAN_EPIDFD = -1, -2
INFO_OLD_DFID_NAME, INFO_NEW_DFID_NAME = 10, 12
UNLIMITED_EVENTS = 1 << 18      # FAN_UNLIMITED_QUEUE: Linux's limit is memory; ours a count

# the object types of an event (Linux's FSNOTIFY_ITER_TYPE_*)
T_INODE, T_MOUNT, T_SB, T_PARENT, T_INODE2 = range(5)

# mark flags (FSNOTIFY_MARK_FLAG_*)
MF_SURV_MODIFY, MF_HAS_IGNORE_FLAGS, MF_EVICTABLE = 1, 2, 4

# event states of a permission event
P_QUEUED, P_REPORTED, P_ANSWERED, P_CANCELED = range(4)

_counts = {"marks": 0, "perm": 0}   # live marks, and those asking for permission events
_groups_made = [0]
_live_groups: set = set()


def _marks(obj) -> list:
    return getattr(obj, "fanotify_marks", None) or [] if obj is not None else []


class Mark:
    """A group's interest in one object (fanotify's fsnotify_mark)."""
    __slots__ = ("group", "obj", "kind", "mask", "ignore", "flags")

    def __init__(self, group: Group, obj, kind: int) -> None:
        self.group, self.obj, self.kind = group, obj, kind
        self.mask = self.ignore = self.flags = 0

    def ignore_for(self, ondir: bool, typ: int) -> int:
        """fsnotify_effective_ignore_mask: the ignore mask that applies to
        an event on a directory or reported to a watching parent; without
        FAN_MARK_IGNORE's own flags, directories are always ignored and a
        child only when the mark watches children."""
        ig = self.ignore & ALL_EVENTS
        if not ig or (not ondir and typ != T_PARENT):
            return ig
        full = self.ignore
        if not self.flags & MF_HAS_IGNORE_FLAGS:
            full = (full | FAN_ONDIR) & ~FAN_EVENT_ON_CHILD | self.mask & FAN_EVENT_ON_CHILD
        return full & ALL_EVENTS if _applicable(full, ondir, typ) else 0

    def attach(self) -> None:
        lst = getattr(self.obj, "fanotify_marks", None)
        if lst is None:
            lst = self.obj.fanotify_marks = []
        lst.append(self)
        _counts["marks"] += 1
        self.group.marks.append(self)

    def detach(self) -> None:
        lst = _marks(self.obj)
        if self in lst:
            lst.remove(self)
            _counts["marks"] -= 1
            if self.mask & PERM_EVENTS:
                _counts["perm"] -= 1
        if self in self.group.marks:
            self.group.marks.remove(self)
            if not self.group.flags & FAN_UNLIMITED_MARKS:
                ucount.undo(self.group.chain, "fanotify_marks")

    def set_masks(self, mask: int, ignore: int) -> None:
        """New masks, keeping the count of marks with permission events."""
        _counts["perm"] += bool(mask & PERM_EVENTS) - bool(self.mask & PERM_EVENTS)
        self.mask, self.ignore = mask, ignore


def _applicable(mask: int, ondir: bool, typ: int) -> bool:
    """fsnotify_mask_applicable: directories need FAN_ONDIR, a child seen
    through its parent's mark needs FAN_EVENT_ON_CHILD."""
    return (not ondir or bool(mask & FAN_ONDIR)) and (typ != T_PARENT or bool(mask & FAN_EVENT_ON_CHILD))


class Event:
    """A queued event.  key names the object for merging (None: never
    merged); dentry is what a path event opens for the reader; info the
    FID modes' encoded records."""
    __slots__ = ("mask", "pid", "key", "dentry", "info", "state", "response", "fd")

    def __init__(self, mask: int, pid: int, key, dentry=None, info: bytes = b"") -> None:
        self.mask, self.pid, self.key, self.dentry, self.info = mask, pid, key, dentry, info
        self.state = P_QUEUED
        self.response = 0
        self.fd = FAN_NOFD

    def size(self) -> int:
        return METADATA.size + len(self.info)

    def merge(self, new: Event) -> None:
        self.mask |= new.mask

    def record(self) -> bytes:
        """The info record that comes last (an error's)."""
        return b""


class ErrorEvent(Event):
    """FAN_FS_ERROR (fanotify_error_event): the first error's code and
    object, and how many errors came while it waited to be read."""
    __slots__ = ("error", "count")

    def __init__(self, pid: int, key, info: bytes, error: int) -> None:
        super().__init__(FAN_FS_ERROR, pid, key, None, info)
        self.error, self.count = error, 1

    def size(self) -> int:
        return super().size() + _ERROR_INFO.size

    def merge(self, new: Event) -> None:
        self.count += 1

    def record(self) -> bytes:
        return _ERROR_INFO.pack(INFO_ERROR, 0, _ERROR_INFO.size, self.error, self.count)


class Group:
    """An fanotify instance: its flags, marks, notification queue and the
    permission events its listener has read and not yet answered."""

    def __init__(self, kernel, flags: int, f_flags: int, owner: tuple, chain: list, queue,
                 max_events: int) -> None:
        self.kernel = kernel
        self.flags = flags
        self.f_flags = f_flags
        self.priority = 2 if flags & FAN_CLASS_PRE_CONTENT else 1 if flags & FAN_CLASS_CONTENT else 0
        self.creator = owner            # (user namespace, euid) of its maker: its marks count there
        self.chain = chain              # their counts, up the user namespaces (kernel/ucount.py)
        self.queue = queue              # fsnotify.EventQueue
        self.max_events = max_events
        self.marks: list[Mark] = []
        self.access: list[Event] = []   # reported permission events awaiting the answer
        self.access_wq = WaitQueue("fanotify access")
        self.merge_index: dict = {}     # merge key -> the queued event it merges into
        self.shutdown = False
        _groups_made[0] += 1
        self.seq = _groups_made[0]
        _live_groups.add(self)

    # -- marks --------------------------------------------------------------
    def find_mark(self, obj) -> Mark | None:
        return next((m for m in _marks(obj) if m.group is self), None)

    def flush(self, kind: int) -> None:
        for m in [m for m in self.marks if m.kind == kind]:
            m.detach()

    # -- events ---------------------------------------------------------------
    def current_pid(self) -> int:
        t = self.kernel.sched.current
        if t is None:
            return 0
        return t.tid if self.flags & FAN_REPORT_TID else t.proc.pid

    def insert(self, ev: Event) -> int:
        """fsnotify_insert_event with fanotify's merge: 0 queued, 1
        merged, 2 dropped (overflow, or the group is going)."""
        if self.shutdown:
            return 2
        k = _merge_key(ev)

        def merge(new: Event) -> bool:
            old = self.merge_index.get(k)
            if old is None:
                return False
            old.merge(new)
            return True
        r = self.queue.add(ev, self.max_events, lambda: Event(FAN_Q_OVERFLOW, 0, None),
                           merge if k is not None else None)
        if r == 0 and k is not None:
            self.merge_index[k] = ev
        return r

    def take(self, ev: Event) -> None:
        """An event leaves the queue: it merges with nothing any more."""
        k = _merge_key(ev)
        if k is not None and self.merge_index.get(k) is ev:
            del self.merge_index[k]

    def finish(self, ev: Event, response: int) -> None:
        """finish_permission_event: the answer is in; the waiter looks."""
        if ev in self.access:
            self.access.remove(ev)
        ev.response = response
        ev.state = P_ANSWERED
        self.access_wq.wake_all()

    def cancel(self, ev: Event) -> None:
        """The waiting task is gone or interrupted: a queued event is
        withdrawn; one the listener read stays until it answers."""
        if ev.state == P_QUEUED and ev in self.queue.events:
            self.queue.remove(ev)
        elif ev.state == P_REPORTED:
            ev.state = P_CANCELED

    def respond(self, fd: int, response: int) -> None:
        """process_access_response for a written struct fanotify_response."""
        if response & ~FAN_AUDIT not in (FAN_ALLOW, FAN_DENY):
            raise KernelError(E.EINVAL)
        if response & FAN_AUDIT and not self.flags & FAN_ENABLE_AUDIT:
            raise KernelError(E.EINVAL)
        if fd < 0:
            raise KernelError(E.EINVAL)
        ev = next((e for e in self.access if e.fd == fd), None)
        if ev is None:
            raise KernelError(E.ENOENT)
        self.finish(ev, response)

    def release(self) -> None:
        """fanotify_release: no more events; every permission event,
        read or not, is allowed; the marks go (once: the counts go back once)."""
        if self.shutdown:
            return
        self.shutdown = True
        for ev in list(self.access):
            self.finish(ev, FAN_ALLOW)
        while self.queue.events:
            ev = self.queue.pop()
            if ev.mask & PERM_EVENTS:
                self.finish(ev, FAN_ALLOW)
        self.merge_index.clear()
        for m in list(self.marks):
            m.detach()
        ucount.undo(self.chain, "fanotify_groups")
        _live_groups.discard(self)

    # -- reading --------------------------------------------------------------
    def report(self, task, ev: Event) -> bytes:
        """copy_event_to_user: the metadata with an fd opened on the object
        for path events (the event's, with the group's event_f_flags) and
        the info records; a permission event then waits for its answer
        (or is denied if it could not be reported)."""
        self.take(ev)
        fd = FAN_NOFD
        try:
            if ev.dentry is not None and not self.flags & FANOTIFY_UNPRIV:
                fd = _open_for_listener(task, ev.dentry, self.f_flags)
        except KernelError:
            if ev.mask & PERM_EVENTS:
                self.finish(ev, FAN_DENY)
            raise
        pid = self.kernel.procs.vnr(task.proc, ev.pid)     # as the reader's pid namespace sees it
        if self.flags & FANOTIFY_UNPRIV and ev.pid != task.proc.pid:
            pid = 0     # an unprivileged listener learns only its own pid
        info = ev.info + (self._pidfd_record(task, ev.pid, pid) if self.flags & FAN_REPORT_PIDFD else b"")
        info += ev.record()
        out = METADATA.pack(METADATA.size + len(info), METADATA_VERSION, 0, METADATA.size, ev.mask & OUTGOING,
                            fd, pid) + info
        if ev.mask & PERM_EVENTS:
            ev.fd = fd
            ev.state = P_REPORTED
            self.access.append(ev)
        return out


    def event_size(self, ev: Event) -> int:
        """fanotify_event_len: what reading ev takes (a pidfd record with it
        in FAN_REPORT_PIDFD mode)."""
        return ev.size() + (_PIDFD_INFO.size if self.flags & FAN_REPORT_PIDFD else 0)

    def _pidfd_record(self, task, gpid: int, pid: int) -> bytes:
        """The last info record of a FAN_REPORT_PIDFD group: a pidfd for the
        event's process, opened in the reader's table, FAN_NOPIDFD when the
        reader does not see the pid or the process was reaped already."""
        from umlpy.vfs import pidfd as pidfds     # (pidfd's file imports fsnotify, which imports this)
        proc = self.kernel.procs.by_pid.get(gpid)
        pidfd = FAN_NOPIDFD
        if pid and proc is not None:
            try:
                pidfd = pidfds.install(task, proc)
            except KernelError:
                pidfd = FAN_EPIDFD
        return _PIDFD_INFO.pack(INFO_PIDFD, 0, _PIDFD_INFO.size, pidfd)


def _merge_key(ev: Event):
    """fanotify_should_merge: the same object from the same pid, alike in
    FAN_ONDIR and FAN_RENAME (permission events never merge); an error
    with the one queued for its filesystem, whoever caused them."""
    if ev.key is None:
        return None
    if isinstance(ev, ErrorEvent):
        return ev.key
    return ev.key, ev.pid, ev.mask & FAN_ONDIR, ev.mask & FAN_RENAME


def _open_for_listener(task, d, f_flags: int) -> int:
    """create_fd: the object opened as dentry_open does (no permission
    check, no events of its own), installed in the reader's table."""
    if f_flags & C.O_ACCMODE != C.O_RDONLY and d.inode.mode & C.S_IFMT in (C.S_IFREG, C.S_IFDIR, C.S_IFLNK):
        want_write(d)       # do_dentry_open's mnt_want_write: EROFS on a read-only mount
    f = d.inode.open_file(d, f_flags & ~C.O_CLOEXEC, task)
    f.nonotify = True
    return task.files.install(f, bool(f_flags & C.O_CLOEXEC))


# -- file handles and info records ------------------------------------------
def _fh(inode) -> tuple[int, bytes] | None:
    return inode.fs.encode_fh(inode) if inode is not None else None


def _record(typ: int, fsid: tuple[int, int], fh: tuple[int, bytes], name: bytes = b"") -> bytes:
    """struct fanotify_event_info_fid: header, fsid, the file handle, then
    the name (NUL-terminated) and padding to 4 bytes."""
    body = _HANDLE.pack(len(fh[1]), fh[0]) + fh[1] + (name + b"\0" if name else b"")
    size = -(-(_INFO_HDR.size + len(body)) // 4) * 4
    return _INFO_HDR.pack(typ, 0, size, *fsid) + body + b"\0" * (size - _INFO_HDR.size - len(body))


def _fid_event(group: Group, mask: int, obj, dirid=None, name: bytes = b"", moved=None,
               named: bool = False) -> Event:
    """fanotify_alloc_event's FID kinds: a name event (named: the
    directory, maybe the name, the new directory and name of a rename,
    maybe the child) or a fid event (obj alone), its records encoded now
    in the order copy_info_records_to_user gives them."""
    fid_mode = group.flags & FID_BITS
    fsid = next(i for i in (dirid, obj, moved and moved[0]) if i is not None).fs.fsid()
    info = b""
    dtype = 0
    dfh = _fh(dirid)
    if dfh is not None:
        dtype = INFO_OLD_DFID_NAME if mask & FAN_RENAME else INFO_DFID_NAME if name else INFO_DFID
        info += _record(dtype, fsid, dfh, name)
    if moved is not None:
        mfh = _fh(moved[0])
        if mfh is not None:
            dtype = INFO_NEW_DFID_NAME
            info += _record(dtype, fsid, mfh, moved[1])
    ofh = _fh(obj)
    if ofh is not None:
        dot = b""
        if fid_mode == FAN_REPORT_FID or dtype:
            otype = INFO_FID
        elif fid_mode & FAN_REPORT_NAME and mask & FAN_ONDIR:
            otype, dot = INFO_DFID_NAME, b"."
        elif mask & (DIRENT_EVENTS | FAN_ONDIR):
            otype = INFO_DFID
        else:
            otype = INFO_FID
        info += _record(otype, fsid, ofh, dot)
    # events without the handle they are about never merge
    mergeable = dfh is not None if named else ofh is not None
    return Event(mask, group.current_pid(), ("fid", info) if mergeable else None, None, info)


def _make_event(group: Group, mask: int, match: int, data, dentry, dir_inode, name: bytes, moved) -> Event:
    """fanotify_alloc_event: what the event reports depends on the group's
    FID mode; data is the inode the event is about."""
    fid_mode = group.flags & FID_BITS
    if mask & PERM_EVENTS:
        return Event(mask, group.current_pid(), None, dentry)
    if not fid_mode:
        return Event(mask, group.current_pid(), ("path", dentry, dentry.mount), dentry)
    dirent = mask & DIRENT_EVENTS
    obj = dir_inode if dirent and not fid_mode & FAN_REPORT_TARGET_FID else data
    dirid = dir_inode if dirent or not (data is not None and data.is_dir) else data
    if not fid_mode & FAN_REPORT_DIR_FID or dirid is None:
        return _fid_event(group, mask, obj)
    report_child = fid_mode & FAN_REPORT_TARGET_FID if dirent else \
        fid_mode & FAN_REPORT_FID and not mask & FAN_ONDIR
    child = obj if report_child and obj is not dirid else None
    if not fid_mode & FAN_REPORT_NAME:
        name = b""
        named = child is not None
    else:
        named = bool(dirent or not mask & FAN_ONDIR)
    new = None
    if mask & FAN_RENAME:
        # the old directory and name if its mark (or the filesystem's)
        # matched, the new ones if the new directory's did
        report_old = report_new = bool(match & 1 << T_SB)
        report_old |= bool(match & 1 << T_INODE)
        report_new |= bool(match & 1 << T_INODE2)
        if not report_old:
            dirid, name = None, b""
        if report_new:
            new = moved
    if named and (name or new or child is not None):
        return _fid_event(group, mask, child, dirid, name, new, named=True)
    return _fid_event(group, mask, dirid)


# -- delivery -----------------------------------------------------------------
def _group_mask(group: Group, mask: int, marks: list[tuple[int, Mark]], dentry, dir_inode) -> tuple[int, int]:
    """fanotify_group_event_mask: what of mask this group reports, and
    which object types matched."""
    fid_mode = group.flags & FID_BITS
    ondir = bool(mask & FAN_ONDIR)
    if not fid_mode:
        if dentry is None or not (dentry.inode.is_reg or dentry.inode.is_dir):
            return 0, 0
    elif not fid_mode & FAN_REPORT_FID and dir_inode is None and not ondir:
        return 0, 0
    marks_mask = ignore = match = 0
    for typ, m in marks:
        ignore |= m.ignore_for(ondir, typ)
        if _applicable(m.mask, ondir, typ):
            marks_mask |= m.mask
            match |= 1 << typ
    test = mask & marks_mask & ~ignore
    if fid_mode:
        if not test & ~EVENT_FLAGS:
            return 0, 0
        return test & (OUTGOING | EVENT_FLAGS), match
    return test & OUTGOING & ~EVENT_FLAGS, match     # no FAN_ONDIR without a FID mode


def _watches_children(m: Mark) -> bool:
    """fsnotify_iter_select_report_types: a mark on the parent of the
    event's object takes part only if it watches children, in its mask
    or (with FAN_MARK_IGNORE's flags) in its ignore mask."""
    return bool(m.mask & FAN_EVENT_ON_CHILD or m.flags & MF_HAS_IGNORE_FLAGS and m.ignore & FAN_EVENT_ON_CHILD)


def _deliver(mask: int, objs: list[tuple[int, object]], data, dentry=None, dir_inode=None,
             name: bytes = b"", moved=None) -> list[tuple[Group, Event]]:
    """fsnotify(): every group with marks on these objects, highest
    priority first, makes at most one event.  A modify clears the ignore
    masks that do not survive it.  Returns the permission events queued."""
    by_group: dict[Group, list[tuple[int, Mark]]] = {}
    for typ, obj in objs:
        for m in _marks(obj):
            if typ == T_PARENT and not _watches_children(m):
                continue        # not this event's mark at all: its ignore mask stays
            by_group.setdefault(m.group, []).append((typ, m))
    pending = []
    for group in sorted(by_group, key=lambda g: (-g.priority, g.seq)):
        marks = by_group[group]
        if mask & FAN_MODIFY:
            for _, m in marks:
                if not m.flags & MF_SURV_MODIFY:
                    m.ignore = 0
        emask, match = _group_mask(group, mask, marks, dentry, dir_inode)
        if not emask:
            continue
        ev = _make_event(group, emask, match, data, dentry, dir_inode, name, moved)
        if group.insert(ev) == 0 and emask & PERM_EVENTS:
            pending.append((group, ev))
    return pending


def name_event(dir_inode, mask: int, name: bytes, child) -> None:
    """fsnotify_name: a directory entry changed (the directory's marks
    and its filesystem's)."""
    if _counts["marks"]:
        _deliver(mask, [(T_INODE, dir_inode), (T_SB, dir_inode.fs)], child, None, dir_inode, name)


def rename_event(old_dir, old_name: bytes, new_dir, new_name: bytes, moved) -> None:
    """FAN_RENAME: one event with the old and the new directory and name."""
    if _counts["marks"]:
        mask = FAN_RENAME | (FAN_ONDIR if moved.is_dir else 0)
        _deliver(mask, [(T_INODE, old_dir), (T_SB, old_dir.fs), (T_INODE2, new_dir)],
                 moved, None, old_dir, old_name, (new_dir, new_name))


def inode_event(inode, mask: int) -> None:
    """fsnotify_inode: the inode's own marks and its filesystem's."""
    if _counts["marks"]:
        _deliver(mask, [(T_INODE, inode), (T_SB, inode.fs)], inode)


def _child_objs(d, inode, mask: int, path: bool):
    """fsnotify_parent: the objects an event on inode (reached by d) goes
    to, and the directory and name to report.  The parent is told (and
    its name passed) when its marks watch children for this event, or
    when a mark on the inode, mount or filesystem wants the parent's
    identity (FAN_EVENT_ON_CHILD on a non-directory's mark)."""
    mount = d.mount if path and d is not None else None
    objs = [(T_INODE, inode), (T_SB, inode.fs)]
    if mount is not None:
        objs.append((T_MOUNT, mount))
    parent = d.parent.inode if d is not None and d.parent is not None else None
    if parent is None:
        return mask, objs, None, b""
    p_mask = 0
    for m in _marks(parent):     # fsnotify_calc_mask: ignoring children counts as interest
        p_mask |= m.mask | m.ignore | (FAN_MODIFY if m.ignore and not m.flags & MF_SURV_MODIFY else 0)
    interested = mask & p_mask & POSS_ON_CHILD if p_mask & FAN_EVENT_ON_CHILD else 0
    needed = not mask & FAN_ONDIR and any(
        m.mask & FAN_EVENT_ON_CHILD and m.mask & mask & POSS_ON_CHILD
        for _, obj in objs for m in _marks(obj))
    if interested:
        mask |= FAN_EVENT_ON_CHILD
        objs.append((T_PARENT, parent))
    if interested or needed:
        return mask, objs, parent, d.name
    return mask, objs, None, b""


def error_event(fs, inode, error: int) -> None:
    """fsnotify_sb_error: a filesystem found itself corrupt (or was
    aborted): FAN_FS_ERROR to the groups with a filesystem mark on it
    asking for it, naming the inode it is about, or no inode (a handle of
    type FILEID_INVALID and no bytes)."""
    if not _counts["marks"]:
        return
    fh = fs.encode_fh(inode) if inode is not None else None
    info = _record(INFO_FID, fs.fsid(), fh or (FILEID_INVALID, b""))
    for m in list(_marks(fs)):
        if m.mask & FAN_FS_ERROR and not m.ignore & FAN_FS_ERROR:
            m.group.insert(ErrorEvent(m.group.current_pid(), ("error", fs), info, error))


def marking() -> bool:
    """Has any group a mark anywhere (else no event can reach one)?"""
    return bool(_counts["marks"])


def child_event(d, inode, mask: int, path: bool) -> None:
    """fsnotify_dentry / fsnotify_file: an event on what d reaches; path
    events (those of open files) reach mount marks and can carry an fd."""
    if _counts["marks"]:
        mask, objs, parent, name = _child_objs(d, inode, mask, path)
        _deliver(mask, objs, inode, d if path else None, parent, name)


def permission(t, d, mask: int, then: Callable[[], int]) -> int:
    """fsnotify_perm: ask each group with interest (in priority order)
    about an open or read of what d reaches; then() runs the operation
    once all allowed.  The task waits (killably, in effect) for each
    answer; FAN_DENY is EPERM."""
    if not _counts["perm"] or d is None or d.inode is None:
        return then()
    mask, objs, parent, name = _child_objs(d, d.inode, mask | (FAN_ONDIR if d.inode.is_dir else 0), True)
    pending = _deliver(mask, objs, d.inode, d, parent, name)
    return _await(t, pending, then)


def asking() -> bool:
    """Has any group a permission mark (else no read need ask)?"""
    return bool(_counts["perm"])


def file_permission(t, f, mask: int, then: Callable[[], int]) -> int:
    """fsnotify_perm for an open file (a read's FAN_ACCESS_PERM): none for
    the files fanotify opened for its listeners."""
    if f.nonotify:
        return then()
    return permission(t, f.dentry, mask, then)


def _await(t, pending: list[tuple[Group, Event]], then: Callable[[], int]) -> int:
    while pending:
        group, ev = pending[0]
        if ev.state != P_ANSWERED:
            raise Block(group.access_wq, retry=lambda: _await(t, pending, then),
                        on_interrupt=lambda: [g.cancel(e) for g, e in pending],
                        restart=E.ERESTARTNOINTR)
        pending.pop(0)
        if ev.response & ~FAN_AUDIT == FAN_DENY:
            for g, e in pending:
                g.cancel(e)
            raise KernelError(E.EPERM)
    return then()


# -- objects going away -------------------------------------------------------
def forget(obj) -> None:
    """The object's marks go (an inode's end, a mount's umount)."""
    for m in list(_marks(obj)):
        m.detach()


def unmount(fs) -> None:
    """fsnotify_sb_delete: the filesystem's marks and its inodes' go."""
    forget(fs)
    for g in list(_live_groups):
        for m in [m for m in g.marks if m.kind == T_INODE and m.obj.fs is fs]:
            m.detach()


def queued_dentries() -> list:
    """What the events waiting to be read, or to be answered, will open:
    each holds its object (vfs/evict.py)."""
    return [ev.dentry for g in _live_groups for ev in (*g.queue.events, *g.access)
            if getattr(ev, "dentry", None) is not None]


def pins(inode) -> bool:
    """Does a mark on inode hold it (any mark not FAN_MARK_EVICTABLE)?"""
    return any(not m.flags & MF_EVICTABLE for m in _marks(inode))


def evict_marks(evictable) -> None:
    """The evictable inode marks of the inodes evicted (evictable(inode))
    go with them, as fsnotify_inode_delete at an inode's eviction."""
    for g in list(_live_groups):
        for m in [m for m in g.marks if m.kind == T_INODE and m.flags & MF_EVICTABLE]:
            if evictable(m.obj):
                m.detach()
