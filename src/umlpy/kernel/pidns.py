"""PID namespaces (pid_namespaces(7)): the namespaces and every task's
numbers in them.

Inside the kernel a task is known by its global number, the one it has in
the init pid namespace (Process.pid, Task.tid, the Procs tables); that
namespace's numbers are the global ones, so a guest that never makes a pid
namespace sees exactly what it did before they existed.  A task made in a
namespace below init's also has a number in that namespace and in each
ancestor down to level 1: `PidMap` holds them (Linux's struct pid
numbers[]).  A number crosses the syscall boundary only through `vnr`
(a global number as a namespace sees it, 0 if it cannot) and `find`
(a namespace's number -> the global one, 0 if there is none): the
translation's one choke point, which Procs wraps for the syscalls
(`Procs.find_task`, `Procs.find_proc`, `Procs.vnr`).

A process's active namespace (the one its pid was made in) is
Process.pidns; the one its children will be made in (pid_for_children)
is its nsproxy's `pid`, which unshare(CLONE_NEWPID) and setns change.  The
first process made in a namespace is its init (`reaper`): orphans of the
namespace go to it, and when it dies every other process of the namespace
is killed and no process can be made in it again.
"""
from __future__ import annotations

from typing import NamedTuple

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.kernel.nsproxy import PidNamespace
from umlpy.kernel.tunables import RESERVED_PIDS


class Reservation(NamedTuple):
    """A new task's numbers before it exists: (namespace, nr) from level 1
    down to its own, the global number asked for (0: the next free one),
    and how many of the innermost were asked for (clone3's set_tid), which
    leave the namespaces' ns_last_pid alone."""
    upids: list[tuple[PidNamespace, int]]
    gnr: int = 0
    chosen: int = 0


class PidMap:
    """The numbers of the tasks made below the init namespace: global ->
    ((namespace, nr) from level 1 to the task's own), and their reverse in
    each namespace's `globals`."""

    def __init__(self, alive) -> None:
        self._alive = alive         # global number -> whether a task or process still holds it
        self._upids: dict[int, tuple[tuple[PidNamespace, int], ...]] = {}

    def vnr(self, ns: PidNamespace, gnr: int) -> int:
        """The number ns sees for global number gnr; 0 if it cannot see it
        (pid_nr_ns).  Init's namespace sees every number as it is."""
        if ns.level == 0 or gnr <= 0:
            return gnr
        for n, nr in self._upids.get(gnr, ()):
            if n is ns:
                return nr
        return 0

    def namespaces(self, gnr: int) -> list[PidNamespace]:
        """The namespaces below init's that number gnr."""
        return [ns for ns, _ in self._upids.get(gnr, ())]

    def levels(self, ns: PidNamespace, gnr: int) -> list[int]:
        """gnr's numbers from ns down to the task's own namespace (what
        /proc/PID/status's NSpid lists); empty if ns cannot see it."""
        if not self.vnr(ns, gnr):
            return []
        nrs = [nr for n, nr in self._upids.get(gnr, ()) if n.level >= max(ns.level, 1)]
        return [gnr, *nrs] if ns.level == 0 else nrs

    def find(self, ns: PidNamespace, nr: int) -> int:
        """The global number of what ns numbers nr; 0 if none
        (find_pid_ns).  Init's namespace's numbers are the global ones."""
        if ns.level == 0 or nr <= 0:
            return nr
        return ns.globals.get(nr, 0)

    def reserve(self, ns: PidNamespace, pid_max: int, set_tid: tuple[int, ...] = (),
                may_choose: bool = False) -> Reservation:
        """The numbers a new task of ns will have, one per level below
        init's, nothing taken until `attach` (alloc_pid: ENOMEM once the
        namespace's init died, EAGAIN when a namespace is full).  set_tid
        (clone3) names the numbers wanted, ns's first, then its parent's...:
        each within 1..pid_max-1 and not another than 1 before the
        namespace has its init (EINVAL), for a caller that may choose
        (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, else EPERM), and free
        (EEXIST)."""
        if len(set_tid) > ns.level + 1:
            raise KernelError(E.EINVAL)
        upids = []
        gnr = 0
        for i, n in enumerate(self._chain(ns)):
            if i < len(set_tid):
                nr = self._chosen(n, set_tid[i], pid_max, may_choose)
            elif n.level == 0:
                break
            else:
                nr = self._next_free(n, pid_max)
            if n.level == 0:
                gnr = nr
            else:
                if not n.adding:
                    raise KernelError(E.ENOMEM)
                upids.append((n, nr))
        upids.reverse()
        return Reservation(upids, gnr, min(len(set_tid), ns.level))

    @staticmethod
    def _chain(ns: PidNamespace):
        """ns and its ancestors, init's last."""
        while ns is not None:
            yield ns
            ns = ns.parent

    def _chosen(self, ns: PidNamespace, nr: int, pid_max: int, may_choose: bool) -> int:
        """One number of set_tid, checked in alloc_pid's order."""
        if not 1 <= nr < pid_max or (nr != 1 and ns.level and ns.reaper is None):
            raise KernelError(E.EINVAL)
        if not may_choose:
            raise KernelError(E.EPERM)
        if (self._alive(nr) if ns.level == 0 else self.find(ns, nr)):
            raise KernelError(E.EEXIST)
        return nr

    def _next_free(self, ns: PidNamespace, pid_max: int) -> int:
        """idr_alloc_cyclic in one namespace: after the last number given,
        going round to RESERVED_PIDS past pid_max."""
        last = ns.last
        for _ in range(pid_max):
            last = last + 1 if last + 1 < pid_max else RESERVED_PIDS
            if not self.find(ns, last):
                return last
        raise KernelError(E.EAGAIN)

    def release(self, gnr: int) -> None:
        """A global number given back (free_pid): its numbers below go with it."""
        for ns, nr in self._upids.pop(gnr, ()):
            if ns.globals.get(nr) == gnr:
                del ns.globals[nr]

    def attach(self, gnr: int, r: Reservation) -> None:
        """Give global number gnr its reserved numbers (none for a task of
        the init namespace: an old number's stale ones go)."""
        if not r.upids:
            self._upids.pop(gnr, None)
            return
        self._upids[gnr] = tuple(r.upids)
        for i, (ns, nr) in enumerate(reversed(r.upids)):
            ns.globals[nr] = gnr
            if i >= r.chosen:
                ns.last = nr
