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

The break signal goes to the process that set the lease, as SIGIO
(Linux's lease_setup names it the file's owner when it had none; a file
owner set by F_SETOWN or a signal by F_SETSIG are not part of this yet).
"""
from __future__ import annotations

from weakref import WeakKeyDictionary

from arch_um import clock
from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.locks import F_RDLCK, F_UNLCK, F_WRLCK

F_SETLEASE, F_GETLEASE = 1024, 1025
NS = 10**9


class LeaseConfig:
    """fs.lease-break-time (seconds; 0: a breaker waits for good) and
    fs.leases-enable (0: no new leases, EINVAL)."""

    def __init__(self) -> None:
        self.break_time = 45
        self.enable = 1


class Lease:
    __slots__ = ("file", "type", "holder", "unlock_pending", "downgrade_pending", "deadline")

    def __init__(self, file, ltype: int, holder) -> None:
        self.file = file
        self.type = ltype
        self.holder = holder            # the process the break signal goes to
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


def _modify(c: _Leases, lease: Lease, ltype: int) -> None:
    """lease_modify: the new type clears what was pending for it; F_UNLCK
    removes the lease; waiting openers look again."""
    lease.downgrade_pending = False
    if ltype == F_UNLCK:
        lease.unlock_pending = False
        c.leases.remove(lease)
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


def setlease(task, f, ltype: int) -> int:
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
        return 0
    if not task.kernel.leases.enable:
        raise KernelError(E.EINVAL)
    c.leases.append(Lease(f, ltype, task.proc))
    _drop_at_last_close(f, c)
    return 0


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


def _signal(task, lease: Lease) -> None:
    """lease_break_callback: SIGIO (si_code SI_KERNEL) to the holder."""
    if not lease.holder.exited:
        task.kernel.signals.send_proc(lease.holder, S.SIGIO, C.SI_KERNEL)


def break_lease(task, inode, flags: int) -> None:
    """__break_lease, for an open with flags or a truncate (O_WRONLY):
    mark the conflicting leases (their holders get SIGIO once), then wait
    while any conflicts (EWOULDBLOCK with O_NONBLOCK); the wait ends
    early when a lease changes and at the first break time."""
    c = _ctx.get(inode)
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
    secs = task.kernel.leases.break_time
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
        _signal(task, lease)
    if flags & C.O_NONBLOCK:
        raise KernelError(E.EWOULDBLOCK)
    deadlines = [lease.deadline for lease in conflicting if lease.deadline is not None]
    if want_write:
        c.waiting_writers.add(task)
    # woken by a lease change or the first break time: the call runs again
    raise Block(c.wq, deadline=min(deadlines) if deadlines else None,
                on_interrupt=lambda: c.waiting_writers.discard(task))


def fcntl_lease(task, f, cmd: int, arg: int) -> int:
    """F_SETLEASE and F_GETLEASE, for sys_fcntl."""
    if cmd == F_GETLEASE:
        return getlease(f) if f.inode is not None else F_UNLCK
    return setlease(task, f, arg)
