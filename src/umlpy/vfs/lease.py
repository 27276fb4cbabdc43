"""File leases: F_SETLEASE and F_GETLEASE (Linux's fs/locks.c leases).

A lease belongs to an open file description of a regular file its owner
(or CAP_LEASE) holds.  A read lease needs the file open for writing
nowhere; a write lease needs it open nowhere but through the lease's own
file.  Another open of the file (any open for a write lease, one for
writing for a read lease) and truncate(2) break the lease: its holder gets
SIGIO, and the opener waits until the holder gives the lease up (or
downgrades a write lease, for a reader), or until fs.lease-break-time
seconds pass and the kernel takes the lease away; O_NONBLOCK opens fail
with EWOULDBLOCK instead of waiting.

The break signal is the file's I/O signal (vfs/fown.py: SIGIO, or
F_SETSIG's with POLL_MSG and the fd) to its owner, which setting a lease
makes the setting process when the file has none (lease_setup); removing
the lease forgets the owner and the signal (lease_modify).  The sysctls
are kernel.tunables' lease_break_time and leases_enable.
"""
from __future__ import annotations

from weakref import WeakKeyDictionary

from arch_um import clock
from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.fown import F_OWNER_PID, POLL_MSG, owner_of
from umlpy.vfs.locks import F_RDLCK, F_UNLCK, F_WRLCK, serials

F_SETLEASE, F_GETLEASE = 1024, 1025
NS = 10**9


class Lease:
    __slots__ = ("file", "type", "fd", "pid", "serial", "unlock_pending", "downgrade_pending", "deadline")

    def __init__(self, file, ltype: int, fd: int, pid: int) -> None:
        self.file = file
        self.type = ltype
        self.pid = pid                  # the taker's (fl_pid), for /proc/locks
        self.serial = next(serials)
        self.fd = fd                    # what the break signal reports (fasync's fa_fd)
        self.unlock_pending = False     # a writer waits: the lease must go
        self.downgrade_pending = False  # a reader waits: a write lease must become a read lease
        self.deadline: int | None = None    # monotonic ns when the kernel takes the lease away

    @property
    def breaking(self) -> bool:
        return self.unlock_pending or self.downgrade_pending

    def target_type(self) -> int:
        """What F_GETLEASE reports: the type the holder must go to, while breaking."""
        if self.unlock_pending:
            return F_UNLCK
        if self.downgrade_pending:
            return F_RDLCK
        return self.type


class _Leases:
    """One inode's leases and the openers waiting for them to break."""

    def __init__(self) -> None:
        self.leases: list[Lease] = []
        self.wq = WaitQueue("lease break")
        # tasks waiting to open for writing (or truncate): Linux counts them
        # in i_writecount before they wait, so no lease is granted meanwhile
        self.waiting_writers: set = set()


_ctx: WeakKeyDictionary = WeakKeyDictionary()     # inode -> _Leases


def _leases(inode) -> _Leases:
    c = _ctx.get(inode)
    if c is None:
        c = _ctx[inode] = _Leases()
    return c


def listing() -> list[tuple[object, Lease]]:
    """Every lease held, as (inode, lease)."""
    return [(inode, lease) for inode, c in list(_ctx.items()) for lease in c.leases]


def _modify(c: _Leases, lease: Lease, ltype: int) -> None:
    """lease_modify: the new type clears what was pending for it; F_UNLCK
    removes the lease; waiting openers look again."""
    lease.downgrade_pending = False
    if ltype == F_UNLCK:
        lease.unlock_pending = False
        c.leases.remove(lease)
        owner = lease.file.owner        # f_delown, and the signal back to SIGIO
        if owner is not None:
            owner.type, owner.nr, owner.signum = F_OWNER_PID, 0, 0
    lease.type = ltype
    c.wq.wake_all()


def _time_out(c: _Leases) -> None:
    """time_out_leases: leases whose break time passed are downgraded or removed."""
    now = clock.monotonic_ns()
    for lease in list(c.leases):
        if lease.deadline is not None and now >= lease.deadline:
            _modify(c, lease, F_UNLCK if lease.unlock_pending else F_RDLCK)


def _conflicts(lease: Lease, want_write: bool) -> bool:
    """An opener for writing conflicts with every lease, a reader with write leases."""
    return want_write or lease.type == F_WRLCK


def getlease(f) -> int:
    c = _ctx.get(f.inode)
    if c is None:
        return F_UNLCK
    _time_out(c)
    return next((lease.target_type() for lease in c.leases if lease.file is f), F_UNLCK)


def _open_conflict(f, c: _Leases, ltype: int) -> bool:
    """check_conflicting_open: a read lease needs no writer; a write lease
    no other open at all (counts of opens for writing, with the writers
    waiting for a break, and for reading only)."""
    inode = f.inode
    writers = inode.writecount + len(c.waiting_writers)     # < 0: a running program
    if ltype == F_RDLCK:
        return writers > 0
    mine_w, mine_r = (1, 0) if f.writable else (0, 1)
    return writers != mine_w or inode.readcount != mine_r


def setlease(task, f, fd: int, ltype: int) -> int:
    """fcntl_setlease and generic_setlease."""
    if ltype not in (F_RDLCK, F_WRLCK, F_UNLCK):
        raise KernelError(E.EINVAL)
    inode = f.inode
    if inode is None:
        raise KernelError(E.EINVAL)
    creds = task.proc.creds
    if creds.fsuid != inode.uid and not capable(creds, K.CAP_LEASE):
        raise KernelError(E.EACCES)
    if not inode.is_reg:
        raise KernelError(E.EINVAL)
    c = _leases(inode)
    mine = next((lease for lease in c.leases if lease.file is f), None)
    if ltype == F_UNLCK:
        if mine is None:
            raise KernelError(E.EAGAIN)
        _modify(c, mine, F_UNLCK)
        return 0
    _time_out(c)
    if _open_conflict(f, c, ltype):
        raise KernelError(E.EAGAIN)
    for lease in c.leases:
        if lease is not mine and (ltype == F_WRLCK or lease.unlock_pending):
            raise KernelError(E.EAGAIN)
    if mine is not None:
        _modify(c, mine, ltype)
        mine.fd = fd
    else:
        if not task.kernel.tunables.leases_enable:
            raise KernelError(E.EINVAL)
        c.leases.append(Lease(f, ltype, fd, task.proc.pid))
        _drop_at_last_close(f, c)
    owner = owner_of(f, task.kernel)    # lease_setup: __f_setown(current, force=0)
    if not owner.nr:
        owner.set(task, F_OWNER_PID, task.proc.pid)
    return 0


def held(f) -> Lease | None:
    """The lease f holds, if any."""
    c = _ctx.get(f.inode)
    return None if c is None else next((lease for lease in c.leases if lease.file is f), None)


def adopt(f, ltype: int, fd: int, pid: int) -> bool:
    """A lease given back to f as a checkpoint's restore does (type, the fd
    its break signal reports, the taker's pid), once every open of the
    file is made again; False if no setlease could have given it (an open
    or a lease it conflicts with)."""
    c = _leases(f.inode)
    if ltype not in (F_RDLCK, F_WRLCK) or held(f) is not None or _open_conflict(f, c, ltype) \
            or any(ltype == F_WRLCK or lease.type == F_WRLCK for lease in c.leases):
        return False
    c.leases.append(Lease(f, ltype, fd, pid))
    _drop_at_last_close(f, c)
    return True


def _drop_at_last_close(f, c: _Leases) -> None:
    """locks_remove_lease: the lease goes with the file's last close."""
    if getattr(f, "lease_hooked", False):
        return
    f.lease_hooked = True
    if not hasattr(f, "on_last_close"):
        f.on_last_close = []

    def drop() -> None:
        for lease in [x for x in c.leases if x.file is f]:
            _modify(c, lease, F_UNLCK)
    f.on_last_close.append(drop)


def _signal(lease: Lease) -> None:
    """lease_break_callback: kill_fasync(SIGIO, POLL_MSG) to the file's owner."""
    if lease.file.owner is not None:
        lease.file.owner.send(lease.fd, POLL_MSG)


def break_lease(task, inode, flags: int) -> None:
    """__break_lease, for an open with flags or a truncate (O_WRONLY):
    mark the conflicting leases (their holders get SIGIO once), then wait
    while any conflicts (EWOULDBLOCK with O_NONBLOCK); the wait ends
    early when a lease changes and at the first break time."""
    c = _ctx.get(inode) if _ctx else None     # every open: no inode has leases, nothing to look up
    if c is None:
        return
    c.waiting_writers.discard(task)     # a wait ended: this is the call again
    if not c.leases:
        return
    want_write = flags & C.O_ACCMODE != C.O_RDONLY
    _time_out(c)
    conflicting = [lease for lease in c.leases if _conflicts(lease, want_write)]
    if not conflicting:
        return
    secs = task.kernel.tunables.lease_break_time
    deadline = clock.monotonic_ns() + secs * NS if secs > 0 else None
    for lease in conflicting:
        if want_write:
            if lease.unlock_pending:
                continue
            lease.unlock_pending = True
        else:
            if lease.breaking:
                continue
            lease.downgrade_pending = True
        lease.deadline = deadline
        _signal(lease)
    if flags & C.O_NONBLOCK:
        raise KernelError(E.EWOULDBLOCK)
    deadlines = [lease.deadline for lease in conflicting if lease.deadline is not None]
    if want_write:
        c.waiting_writers.add(task)
    # woken by a lease change or the first break time: the call runs again
    raise Block(c.wq, deadline=min(deadlines) if deadlines else None,
                on_interrupt=lambda: c.waiting_writers.discard(task))


def fcntl_lease(task, f, fd: int, cmd: int, arg: int) -> int:
    """F_SETLEASE and F_GETLEASE, for sys_fcntl."""
    if cmd == F_GETLEASE:
        return getlease(f) if f.inode is not None else F_UNLCK
    return setlease(task, f, fd, arg)
