"""Futexes: wait queues keyed by a word of guest memory.

A private futex (FUTEX_PRIVATE_FLAG, or a private page) is keyed by the
address space and the address; a futex in memory shared between processes
by what backs the page (the host's device, inode and offset of the shared
mapping), so waiters and wakers in different processes meet, as Linux's
get_futex_key does.  The kernel is single-threaded, so "compare the word,
then sleep" is atomic with respect to every FUTEX_WAKE.

A queue serves its waiters in priority order, first come first served
among equals, as Linux's: a FUTEX_WAIT queue is a plist ordered by
min(normal_prio, MAX_RT_PRIO) (futex_queue), so real-time waiters go first,
the higher priority first, and the others in arrival order; a PI futex's
waiters are an rt_mutex's, ordered by priority, nice included.  POSIX asks
it of semaphores and mutexes under SCHED_FIFO/SCHED_RR (sem_post, the
Open POSIX suite's sem_post 8-1).
"""
from __future__ import annotations

import struct

from arch_um import procinfo, ptrace
from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.kernel.task import MAX_RT_PRIO
from umlpy.kernel.wait import WaitQueue

BITSET_MATCH_ANY = 0xFFFFFFFF


class Waiter:
    __slots__ = ("task", "bitset", "woken", "wq", "key", "addr", "prio")

    def __init__(self, task, bitset: int, key, prio: int, addr: int = 0) -> None:
        self.task = task
        self.bitset = bitset
        self.woken = False
        self.wq = WaitQueue("futex")
        self.key = key
        self.prio = prio        # its place in the queue, fixed when it queued, as Linux's plist node
        self.addr = addr        # the word in the waiter's own address space (PI)


def _insert(q: list[Waiter], w: Waiter) -> None:
    """w behind every waiter of its priority or a higher one (a lower
    number): plist_add's place."""
    i = len(q)
    while i and q[i - 1].prio > w.prio:
        i -= 1
    q.insert(i, w)


def _unqueue(table: dict, w: Waiter) -> None:
    q = table.get(w.key)
    if q is not None and w in q:
        q.remove(w)
        if not q:
            del table[w.key]


class Futexes:
    def __init__(self) -> None:
        self.queues: dict[tuple, list[Waiter]] = {}
        self.pi: dict[tuple, list[Waiter]] = {}     # FUTEX_LOCK_PI waiters, the next owner first

    @staticmethod
    def key(t, addr: int, private: bool) -> tuple:
        if not private:
            shared = procinfo.shared_key(t.hpid, addr)
            if shared is not None:
                return ("shared",) + shared
        return ("private", id(t.proc.mm), addr)

    def forget(self, task) -> None:
        """A dying task waits no more: a wake or a PI handover must not be
        spent on it."""
        for table in (self.queues, self.pi):
            for key, q in list(table.items()):
                q[:] = [w for w in q if w.task is not task]
                if not q:
                    del table[key]

    def enqueue(self, key: tuple, task, bitset: int) -> Waiter:
        w = Waiter(task, bitset, key, min(task.sched.normal_prio(), MAX_RT_PRIO))
        _insert(self.queues.setdefault(key, []), w)
        return w

    def enqueue_pi(self, key: tuple, task, addr: int) -> Waiter:
        w = Waiter(task, BITSET_MATCH_ANY, key, task.sched.normal_prio(), addr)
        _insert(self.pi.setdefault(key, []), w)
        return w

    def dequeue(self, w: Waiter) -> None:
        _unqueue(self.queues, w)

    def dequeue_pi(self, w: Waiter | None) -> None:
        if w is not None:
            _unqueue(self.pi, w)

    def wake(self, key: tuple, n: int, bitset: int = BITSET_MATCH_ANY) -> int:
        q = self.queues.get(key)
        if not q:
            return 0
        woken = 0
        for w in list(q):
            if woken >= n:
                break
            if w.bitset & bitset:
                q.remove(w)
                w.woken = True
                w.wq.wake_all()
                woken += 1
        if not q:
            self.queues.pop(key, None)
        return woken

    def requeue(self, key: tuple, key2: tuple, nwake: int, nmove: int) -> int:
        done = self.wake(key, nwake)
        q = self.queues.get(key)
        moved = 0
        while q and moved < nmove:
            w = q.pop(0)
            w.key = key2
            _insert(self.queues.setdefault(key2, []), w)
            moved += 1
        if q is not None and not q:
            self.queues.pop(key, None)
        return done + moved


def cas(t, addr: int, expected: int, new: int) -> int:
    """Compare-and-swap a futex word in t's address space (t stopped), as
    Linux's futex_atomic_cmpxchg_inatomic: the value found there."""
    found = ptrace.cmpxchg(t.hpid, t.regs, addr, expected, new)
    if found is None:
        raise GuestFault(addr)
    return found


# -- priority-inheritance futexes --------------------------------------------------
# The word holds the owner's tid, FUTEX_WAITERS while the kernel queues
# waiters, FUTEX_OWNER_DIED after an owner died holding it.  The kernel hands
# the lock to its first waiter at FUTEX_UNLOCK_PI or when the owner dies.
# There is no priority to inherit (the host schedules guest threads), so
# PI futexes here are fair mutexes with Linux's word protocol.

def pi_handover(k, w: Waiter, word: int, owner_died: bool) -> bool:
    """Make waiter w the owner (word: what the word holds now); False if
    the word changed under us (the caller reads it again)."""
    new = k.procs.vnr(w.task.proc, w.task.tid) | C.FUTEX_WAITERS | (C.FUTEX_OWNER_DIED if owner_died else 0)
    if cas(w.task, w.addr, word, new) != word:
        return False
    k.futexes.dequeue_pi(w)
    w.woken = True
    w.wq.wake_all()
    return True


def exit_pi(k, t) -> None:
    """t dies: every PI futex it owns with waiters goes to the first waiter,
    marked OWNER_DIED (Linux's exit_pi_state_list and fixup_pi_state_owner)."""
    for q in list(k.futexes.pi.values()):
        w = q[0]
        try:
            while True:
                word = struct.unpack("<I", w.task.mem.read(w.addr, 4))[0]
                if word & C.FUTEX_TID_MASK != k.procs.vnr(t.proc, t.tid) or pi_handover(k, w, word, True):
                    break
        except GuestFault:
            continue


def task_exit(k, t) -> None:
    """What futexes owe a thread that dies or execs (and has left every
    queue: Futexes.forget): its PI futexes with waiters are handed on (while
    their words still name it), then its robust list is walked (marking
    what nobody waited for)."""
    exit_pi(k, t)
    exit_robust_list(k, t)


def exit_robust_list(k, t) -> None:
    """A thread dies or execs: mark the robust futexes it still holds as
    OWNER_DIED and wake one waiter of each, as Linux's exit_robust_list.

    The list lives in guest memory (set_robust_list); a broken or hostile
    list only ends the walk, bounded by ROBUST_LIST_LIMIT entries.
    """
    head, t.robust_list = t.robust_list, 0
    if not head:
        return
    mem = t.mem
    try:
        first, offset, pending = struct.unpack("<QqQ", mem.read(head, C.ROBUST_LIST_HEAD_SIZE))
        entry = first
        for _ in range(C.ROBUST_LIST_LIMIT):
            addr = entry & ~1
            if addr == head:
                break
            nxt = struct.unpack("<Q", mem.read(addr, 8))[0]
            if addr != pending & ~1:
                _futex_death(k, t, addr + offset, bool(entry & 1), False)
            entry = nxt
        if pending & ~1:
            _futex_death(k, t, (pending & ~1) + offset, bool(pending & 1), True)
    except GuestFault:
        return


def _futex_death(k, t, uaddr: int, pi: bool, pending_op: bool) -> None:
    uaddr &= (1 << 64) - 1
    if uaddr & 3:
        return
    uval = struct.unpack("<I", t.mem.read(uaddr, 4))[0]
    wake = False
    if pending_op and not pi and uval == 0:
        wake = True         # died between taking the lock and listing it
    elif uval & C.FUTEX_TID_MASK == k.procs.vnr(t.proc, t.tid):
        t.mem.write(uaddr, struct.pack("<I", (uval & C.FUTEX_WAITERS) | C.FUTEX_OWNER_DIED))
        wake = not pi and bool(uval & C.FUTEX_WAITERS)
    if wake:
        k.futexes.wake(k.futexes.key(t, uaddr, False), 1)
