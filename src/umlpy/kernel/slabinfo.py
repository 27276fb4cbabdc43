"""What the kernel holds, counted: live objects by class (as the active
objects of /proc/slabinfo) and the sizes of its tables.

A leak in a kernel that runs for ever shows as a count that grows with the
work done rather than with what is alive; SysRq-m (mconsole `sysrq m`)
reports these, so a long run can be compared with a fresh boot.
"""
from __future__ import annotations

import gc
from collections import Counter

from umlpy.kernel.task import State
from umlpy.kernel.wait import WaitQueue


def objects() -> Counter:
    """Live kernel objects by class (every class of umlpy and of the host
    port, arch_um, which holds host resources: named by module),
    after a collection, so only what is still reachable counts."""
    gc.collect()
    c: Counter = Counter()
    for o in gc.get_objects():
        cls = type(o)
        if cls.__module__.startswith(("umlpy.", "arch_um.")):
            c[f"{cls.__module__.removeprefix('umlpy.')}.{cls.__qualname__}"] += 1
    return c


def tables(k) -> dict[str, int]:
    """The kernel's tables and queues: what must shrink back when the
    processes that filled them are gone."""
    procs = k.procs.by_pid.values()
    queues = [o for o in gc.get_objects() if type(o) is WaitQueue]
    return {
        "tasks": len(k.sched.tasks),
        "processes": len(procs),
        "zombies": sum(1 for p in procs if p.zombie),
        "threads": len(k.procs.by_tid),
        "timers": len(k.sched.timer_heap()),
        "futex-keys": len(k.futexes.queues) + len(k.futexes.pi),
        "wait-queue-waiters": sum(len(q.waiters) for q in queues),
        "dead-waiters": sum(1 for q in queues for t in q.waiters if t.state is State.DEAD),
        "wait-queue-watchers": sum(len(q.watchers) + len(q.xwatchers) for q in queues),
    }


def report(k) -> list[str]:
    """SysRq-m's lines: the tables, then each class with live objects, most first."""
    counts = objects()
    lines = ["Kernel tables: " + " ".join(f"{name} {n}" for name, n in tables(k).items())]
    lines += [f"slab {name} {n}" for name, n in counts.most_common()]
    return lines
