"""Futexes: wait queues keyed by a word of guest memory.

A private futex (FUTEX_PRIVATE_FLAG, or a private page) is keyed by the
address space and the address; a futex in memory shared between processes
by what backs the page (the host's device, inode and offset of the shared
mapping), so waiters and wakers in different processes meet, as Linux's
get_futex_key does.  The kernel is single-threaded, so "compare the word,
then sleep" is atomic with respect to every FUTEX_WAKE.
"""
from __future__ import annotations

from arch_um import procinfo
from umlpy.kernel.wait import WaitQueue

BITSET_MATCH_ANY = 0xFFFFFFFF


class Waiter:
    __slots__ = ("task", "bitset", "woken", "wq", "key")

    def __init__(self, task, bitset: int, key) -> None:
        self.task = task
        self.bitset = bitset
        self.woken = False
        self.wq = WaitQueue("futex")
        self.key = key


class Futexes:
    def __init__(self) -> None:
        self.queues: dict[tuple, list[Waiter]] = {}

    @staticmethod
    def key(t, addr: int, private: bool) -> tuple:
        if not private:
            shared = procinfo.shared_key(t.hpid, addr)
            if shared is not None:
                return ("shared",) + shared
        return ("private", id(t.proc.mm), addr)

    def enqueue(self, key: tuple, task, bitset: int) -> Waiter:
        w = Waiter(task, bitset, key)
        self.queues.setdefault(key, []).append(w)
        return w

    def dequeue(self, w: Waiter) -> None:
        q = self.queues.get(w.key)
        if q is not None and w in q:
            q.remove(w)
            if not q:
                del self.queues[w.key]

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
            self.queues.setdefault(key2, []).append(w)
            moved += 1
        if q is not None and not q:
            self.queues.pop(key, None)
        return done + moved
