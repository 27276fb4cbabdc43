"""File locks: flock(2), POSIX record locks and OFD locks, per inode.

flock locks belong to an open file description; POSIX record locks to a
file descriptor table, as Linux's fl_owner (any close of the inode through
that table drops them, as POSIX says, and so does close-on-exec); OFD locks to an open file description.  A waiter parks on the
inode's lock queue and re-checks when any lock on the inode goes away.
"""
from __future__ import annotations

import bisect
import itertools
from weakref import WeakSet

from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
OFFSET_MAX = (1 << 63) - 1


# the order locks were taken in (/proc/locks lists the newest first, as
# Linux's global list), shared with leases
serials = itertools.count(1)
# every inode that has held a lock (for /proc/locks; it goes with the inode)
_holders: WeakSet = WeakSet()


class Lock:
    __slots__ = ("owner", "start", "end", "type", "pid", "serial")

    def __init__(self, owner, start: int, end: int, ltype: int, pid: int) -> None:
        self.owner, self.start, self.end, self.type, self.pid = owner, start, end, ltype, pid
        self.serial = next(serials)

    @property
    def ofd(self) -> bool:
        """An OFD lock: a record lock owned by an open file description."""
        return hasattr(self.owner, "inode")


def _start(lk: Lock) -> int:
    return lk.start


def _end(lk: Lock) -> int:
    return lk.end


class PosixLocks:
    """An inode's record locks (POSIX and OFD), by owner: each owner's are
    disjoint and kept in order, so that what a range touches is found by
    bisection, and a lock call costs what it touches, not what the inode
    holds (Linux walks the inode's whole list)."""

    __slots__ = ("owners",)

    def __init__(self) -> None:
        self.owners: dict[int, list[Lock]] = {}     # id(owner) -> its locks by start

    def __bool__(self) -> bool:
        return bool(self.owners)

    def all(self) -> list[Lock]:
        """Every lock, in order of start."""
        return sorted((lk for held in self.owners.values() for lk in held), key=_start)

    def of(self, owner) -> list[Lock]:
        return self.owners.get(id(owner), [])

    @staticmethod
    def _touching(held: list[Lock], s: int, e: int) -> tuple[int, int]:
        """The slice of held (disjoint, in order) that meets [s, e]."""
        return bisect.bisect_left(held, s, key=_end), bisect.bisect_right(held, e, key=_start)

    def add(self, lk: Lock) -> None:
        """Take lk as it is (a restored image's, checked apart)."""
        held = self.owners.setdefault(id(lk.owner), [])
        held.insert(bisect.bisect_right(held, lk.start, key=_start), lk)

    def holds(self, lk: Lock) -> bool:
        held = self.of(lk.owner)
        i = bisect.bisect_left(held, lk.start, key=_start)
        return i < len(held) and held[i] is lk

    def drop(self, owner) -> bool:
        """The owner's locks go; whether it had any."""
        return self.owners.pop(id(owner), None) is not None

    def blocker(self, owner, s: int, e: int, ltype: int) -> Lock | None:
        """The lock of another owner that conflicts with [s, e] of ltype
        and starts first, or None."""
        found = None
        for key, held in self.owners.items():
            if key == id(owner):
                continue
            i, j = self._touching(held, s, e)
            for lk in held[i:j]:
                if _conflicts(lk.type, ltype):
                    if found is None or lk.start < found.start:
                        found = lk
                    break
        return found

    def set(self, owner, pid: int, s: int, e: int, ltype: int) -> None:
        """posix_lock_inode's change of the owner's locks: [s, e] becomes
        ltype (F_UNLCK: none), locks of the same type it overlaps or
        borders merged into one, the parts of others outside it kept."""
        held = self.owners.setdefault(id(owner), [])
        # a same-type neighbour may end right before s or start right after e
        i, j = self._touching(held, s - 1, e + 1)
        out: list[Lock] = []
        merged: Lock | None = None
        for lk in held[i:j]:
            if lk.type == ltype:            # overlapping or adjacent: one lock
                s, e = min(s, lk.start), max(e, lk.end)
                if merged is None:
                    merged = lk     # the first keeps its place in /proc/locks, as Linux's
            elif lk.end < s or lk.start > e:
                out.append(lk)      # another type only bordering: untouched
            else:
                if lk.start < s:    # the parts of the old lock outside the new range stay
                    out.append(Lock(owner, lk.start, s - 1, lk.type, lk.pid))
                if lk.end > e:
                    out.append(Lock(owner, e + 1, lk.end, lk.type, lk.pid))
        if ltype != F_UNLCK:
            if merged is None:
                merged = Lock(owner, s, e, ltype, pid)
            merged.start, merged.end = s, e
            out.append(merged)
        out.sort(key=_start)
        held[i:j] = out
        if not held:
            del self.owners[id(owner)]


def _state(inode):
    st = getattr(inode, "locks_state", None)
    if st is None:
        st = inode.locks_state = {"flock": [], "posix": PosixLocks(), "wq": WaitQueue("file lock")}
        _holders.add(inode)
    return st


def listing() -> list[tuple[int, object, str, Lock]]:
    """Every lock held, as (serial, inode, kind, lock): kind FLOCK, POSIX
    or OFDLCK (Linux's /proc/locks names)."""
    out = []
    for inode in list(_holders):
        st = inode.locks_state
        out += [(lk.serial, inode, "FLOCK", lk) for lk in st["flock"]]
        out += [(lk.serial, inode, "OFDLCK" if lk.ofd else "POSIX", lk) for lk in st["posix"].all()]
    return out


def _conflicts(a_type: int, b_type: int) -> bool:
    return a_type == F_WRLCK or b_type == F_WRLCK


# -- flock --------------------------------------------------------------------------

def flock(file, op: int, block_ok: bool, pid: int) -> int:
    st = _state(file.inode)
    mine = [lk for lk in st["flock"] if lk.owner is file]
    if op & LOCK_UN:
        for lk in mine:
            st["flock"].remove(lk)
        st["wq"].wake_all()
        return 0
    want = F_WRLCK if op & LOCK_EX else F_RDLCK
    for lk in mine:     # converting a lock drops the old one first, as Linux
        st["flock"].remove(lk)
    if mine:
        st["wq"].wake_all()

    def attempt() -> int:
        if any(lk.owner is not file and _conflicts(lk.type, want) for lk in st["flock"]):
            if op & LOCK_NB or not block_ok:
                raise KernelError(E.EWOULDBLOCK)
            raise Block(st["wq"], retry=attempt)
        st["flock"].append(Lock(file, 0, OFFSET_MAX, want, pid))
        _release_with(file)
        return 0
    return attempt()


def _release_with(file) -> None:
    """flock and OFD locks go when their open file description does."""
    if getattr(file, "locks_hooked", False):
        return
    file.locks_hooked = True
    if not hasattr(file, "on_last_close"):
        file.on_last_close = []
    file.on_last_close.append(lambda: _drop_file_locks(file))


def _drop_file_locks(file) -> None:
    st = getattr(file.inode, "locks_state", None)
    if st is None:
        return
    st["flock"] = [lk for lk in st["flock"] if lk.owner is not file]
    st["posix"].drop(file)
    st["wq"].wake_all()


# -- record locks -----------------------------------------------------------------------

def _range(file, whence: int, start: int, length: int) -> tuple[int, int]:
    base = {0: 0, 1: file.pos, 2: file.inode.size()}.get(whence)
    if base is None:
        raise KernelError(E.EINVAL)
    s = base + start
    if length > 0:
        e = s + length - 1
    elif length < 0:
        s, e = s + length, s - 1
    else:
        e = OFFSET_MAX
    if s < 0:
        raise KernelError(E.EINVAL)
    return s, e


def getlk(file, owner, ltype: int, whence: int, start: int, length: int):
    """The first lock that would block this one, or None."""
    s, e = _range(file, whence, start, length)
    return _state(file.inode)["posix"].blocker(owner, s, e, ltype)


# POSIX lock owners (fd tables) waiting in F_SETLKW: owner -> (the lock it
# waits behind, that lock's inode), Linux's blocked_hash for the deadlock check
_waiting: dict[int, tuple[object, Lock, object]] = {}
MAX_DEADLK_ITERATIONS = 10


def _waits_for(lk: Lock) -> Lock | None:
    """what_owner_is_waiting_for: the lock lk's owner waits behind, if it
    waits (and the lock is still held: else the waiter is about to wake)."""
    entry = _waiting.get(id(lk.owner))
    if entry is None or entry[0] is not lk.owner:
        return None
    blocker, inode = entry[1], entry[2]
    return blocker if _state(inode)["posix"].holds(blocker) else None


def _deadlock(owner, blocker: Lock) -> bool:
    """posix_locks_deadlock: waiting behind blocker would close a circle of
    POSIX lock owners each waiting for the next (OFD locks are not checked)."""
    lk: Lock | None = blocker
    for _ in range(MAX_DEADLK_ITERATIONS + 1):
        lk = _waits_for(lk)
        if lk is None:
            return False
        if lk.owner is owner:
            return True
    return False


def _stop_waiting(owner) -> None:
    entry = _waiting.get(id(owner))
    if entry is not None and entry[0] is owner:
        del _waiting[id(owner)]


def setlk(file, owner, pid: int, ltype: int, whence: int, start: int, length: int, wait: bool) -> int:
    if ltype not in (F_RDLCK, F_WRLCK, F_UNLCK):
        raise KernelError(E.EINVAL)
    if ltype == F_RDLCK and not file.readable or ltype == F_WRLCK and not file.writable:
        raise KernelError(E.EBADF)
    s, e = _range(file, whence, start, length)
    st = _state(file.inode)
    posix = owner is not file

    def attempt() -> int:
        blocker = st["posix"].blocker(owner, s, e, ltype) if ltype != F_UNLCK else None
        if posix:
            _stop_waiting(owner)
        if blocker is not None:
            if not wait:
                raise KernelError(E.EAGAIN)
            if posix:
                if _deadlock(owner, blocker):
                    raise KernelError(E.EDEADLK)
                _waiting[id(owner)] = (owner, blocker, file.inode)
            raise Block(st["wq"], retry=attempt, on_interrupt=lambda: _stop_waiting(owner) if posix else None)
        st["posix"].set(owner, pid, s, e, ltype)
        st["wq"].wake_all()
        if owner is file:
            _release_with(file)
        return 0
    return attempt()


def release_posix(owner, inode) -> None:
    """A descriptor of inode was closed in the fd table owner: the table's
    record locks on it go (POSIX: any close, even of another descriptor)."""
    st = getattr(inode, "locks_state", None)
    if st is None:
        return
    if st["posix"].drop(owner):
        st["wq"].wake_all()
