"""Memory locking: mlock, mlock2, munlock, mlockall, munlockall, MAP_LOCKED.

The guest's memory is its host process's, so locking it is bookkeeping:
the host never locks a page (the host's own RLIMIT_MEMLOCK and its pressure
are not the guest's business), but everything the guest can see follows
Linux: the locked ranges (vmas split where they begin and end, VmLck,
smaps' Locked and `lo`), RLIMIT_MEMLOCK and CAP_IPC_LOCK, the errors, and
the population of a range when it is locked (faulted in on the host with
MADV_POPULATE_READ/WRITE, as Linux's mlock faults it in; not for
MLOCK_ONFAULT).

Which ranges are mapped is the host's knowledge (its maps of the task's
process, the stub page left out); the vvar pages are Linux's VM_PFNMAP
mappings, which mlock passes over without locking.
"""
from __future__ import annotations

from arch_um import procinfo
from arch_um.memory import TASK_SIZE
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_IPC_LOCK
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel import oom
from umlpy.kernel.mm import VM_LOCKED, VM_LOCKONFAULT

MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
MLOCK_ONFAULT = 1
_SPECIAL = (b"[vvar",)      # VM_PFNMAP: never locked, never populated


def guest_vmas(t) -> list[tuple[int, int, str, bool]]:
    """(start, end, perms, special) of the task's mappings, in order."""
    host = procinfo.task_vmas(t.hpid) or []
    return [(s, e, perms, name.startswith(_SPECIAL)) for s, e, perms, _off, _ino, name in host
            if e <= TASK_SIZE and not (s < STUB_END and e > STUB_BASE)]


def can_do_mlock(proc) -> bool:
    return proc.rlimit(C.RLIMIT_MEMLOCK)[0] != 0 or capable(proc.creds, CAP_IPC_LOCK)


def _limit_pages(proc) -> int:
    return proc.rlimit(C.RLIMIT_MEMLOCK)[0] >> C.PAGE_SHIFT


def future_check(proc, flags: int, length: int) -> None:
    """mlock_future_check: a new mapping that comes locked must fit the
    limit (EAGAIN), unless the caller has CAP_IPC_LOCK."""
    if flags & VM_LOCKED and not capable(proc.creds, CAP_IPC_LOCK):
        if proc.mm.locked_pages + (length >> C.PAGE_SHIFT) > _limit_pages(proc):
            raise KernelError(E.EAGAIN)


def populate(t, start: int, end: int) -> bool:
    """Fault in the locked (not on-fault) pages of [start, end), writable
    ones for writing as Linux breaks COW; False if a page could not be: a
    PROT_NONE mapping (which stays locked, as Linux's), a page beyond the
    end of a mapped file."""
    mm = t.proc.mm
    ok = True
    for s, e, perms, special in guest_vmas(t):
        lo, hi = max(s, start), min(e, end)
        if lo >= hi or special:
            continue
        for a, b, flags in mm.locked.overlapping(lo, hi):
            if flags & VM_LOCKONFAULT:
                continue
            if perms[:3] == "---":
                ok = False
                continue
            # Linux faults a private writable range for writing (COW broken),
            # others for reading with FOLL_FORCE, which the host's populate
            # lacks: a write-only shared range is faulted for writing
            write = perms[1] == "w" and (perms[3] == "p" or perms[0] != "r")
            advice = C.MADV_POPULATE_WRITE if write else C.MADV_POPULATE_READ
            if oom.populate(t, a, b - a, advice) == -E.EFAULT:
                ok = False
    return ok


def after_map(t, start: int, end: int, flags: int) -> None:
    """A new mapping [start, end) comes locked (MAP_LOCKED, mlockall's
    MCL_FUTURE): count it and fault it in."""
    flags |= t.proc.mm.def_locked
    if not flags & VM_LOCKED:
        return
    apply(t, start, end, flags, guest_vmas(t))
    populate(t, start, end)


def apply(t, start: int, end: int, flags: int, vmas) -> None:
    """apply_vma_lock_flags: set (or with 0 clear) the lock of [start,
    end), which must be mapped throughout: at the first hole, ENOMEM, what
    came before it staying done, as Linux's."""
    mm = t.proc.mm
    pos = start
    for s, e, _perms, special in vmas:
        if e <= pos:
            continue
        if s > pos:
            break
        stop = min(e, end)
        if special:
            pass
        elif flags:
            mm.locked.set(pos, stop, flags)
        else:
            mm.locked.clear(pos, stop)
        pos = stop
        if pos >= end:
            return
    raise KernelError(E.ENOMEM)


def _range(addr: int, length: int) -> tuple[int, int]:
    """The pages addr..addr+length touch, as Linux rounds them; a range
    that wraps is EINVAL."""
    start = C.page_down(addr)
    size = (length + (addr - start) + C.PAGE_SIZE - 1) & ~(C.PAGE_SIZE - 1) & ((1 << 64) - 1)
    end = start + size
    if end >= 1 << 64:
        raise KernelError(E.EINVAL)
    return start, end


def do_mlock(t, addr: int, length: int, flags: int) -> int:
    proc = t.proc
    if not can_do_mlock(proc):
        raise KernelError(E.EPERM)
    start, end = _range(addr, length)
    if start == end:
        return 0
    mm = proc.mm
    if not capable(proc.creds, CAP_IPC_LOCK):
        locked = (end - start) // C.PAGE_SIZE + mm.locked_pages
        if locked > _limit_pages(proc):
            locked -= mm.locked.size(start, end) // C.PAGE_SIZE
        if locked > _limit_pages(proc):
            raise KernelError(E.ENOMEM)
    apply(t, start, end, flags, guest_vmas(t))
    if not populate(t, start, end):
        raise KernelError(E.ENOMEM)     # __mlock_posix_error_return(EFAULT)
    return 0


def do_munlock(t, addr: int, length: int) -> int:
    start, end = _range(addr, length)
    if start != end:
        apply(t, start, end, 0, guest_vmas(t))
    return 0


def do_mlockall(t, flags: int) -> int:
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise KernelError(E.EINVAL)
    proc = t.proc
    if not can_do_mlock(proc):
        raise KernelError(E.EPERM)
    vmas = guest_vmas(t)
    if flags & MCL_CURRENT and not capable(proc.creds, CAP_IPC_LOCK):
        total = sum(e - s for s, e, _p, _sp in vmas) // C.PAGE_SIZE
        if total > _limit_pages(proc):
            raise KernelError(E.ENOMEM)
    lock = VM_LOCKED | (VM_LOCKONFAULT if flags & MCL_ONFAULT else 0)
    _lock_all(t, flags, lock, vmas)
    if flags & MCL_CURRENT:
        populate(t, 0, TASK_SIZE)
    return 0


def do_munlockall(t) -> int:
    _lock_all(t, 0, 0, guest_vmas(t))
    return 0


def _lock_all(t, flags: int, lock: int, vmas) -> None:
    """apply_mlockall_flags: MCL_FUTURE sets what new mappings get; every
    mapping is relocked with MCL_CURRENT's flags (unlocked without it),
    unless only MCL_FUTURE was asked for."""
    mm = t.proc.mm
    mm.def_locked = lock if flags & MCL_FUTURE else 0
    if flags & MCL_FUTURE and not flags & MCL_CURRENT:
        return
    for s, e, _perms, special in vmas:
        if special:
            continue
        if flags & MCL_CURRENT:
            mm.locked.set(s, e, lock)
        else:
            mm.locked.clear(s, e)
