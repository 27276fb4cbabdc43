"""Time namespaces in a checkpoint (kernel/timens.py, nsproxy.TimeNamespace).

The image's top-level `time_namespaces` holds each namespace but the
initial one that a saved process is in or makes its children in, in
increasing order of their numbers: {ino (kept: /proc/PID/ns shows it),
monotonic and boottime ([seconds, nanoseconds] as written), frozen,
maker (the euid it counts for in max_time_namespaces)}; a process's
`timens` (absent: the initial one, twice) is [its own's ino, its
time_for_children's].  The offsets are against the machine's clocks,
which a restore keeps going from where they stopped (checkpoint/
machine.py), so a namespace's clocks do too; a process's vDSO comes back
with its memory, trapping as its namespace needs, and machine.finish
sets every one again.  Only namespaces of the initial user namespace are
saved, as no other user namespace is (checkpoint/dump.py refuses them).
"""
from __future__ import annotations

from umlpy.checkpoint import image
from umlpy.kernel import ucount
from umlpy.kernel.errors import KernelError
from umlpy.kernel.nsproxy import PROC_DYNAMIC_FIRST, NsProxy, TimeNamespace
from umlpy.kernel.timekeeping import KTIME_SEC_MAX, NS

U32 = 1 << 32
I64 = 1 << 63
KIND = "time_namespaces"


def without(k, ns: NsProxy) -> NsProxy:
    """ns with the initial time namespaces: what the rest of the image
    must find to be the initial namespaces."""
    return ns._replace(time=k.init_ns.time, time_for_children=k.init_ns.time)


def unsaved(k, p) -> str | None:
    """Why a process's time namespaces cannot be saved, if they cannot."""
    if any(ns.owner is not k.init_ns.user for ns in (p.ns.time, p.ns.time_for_children)):
        return "a time namespace of another user namespace"
    return None


def save(k) -> list[dict]:
    found = {ns.ino: ns for p in k.procs.by_pid.values() for ns in (p.ns.time, p.ns.time_for_children)
             if ns is not k.init_ns.time}
    return [{"ino": ino, "monotonic": list(ns.monotonic), "boottime": list(ns.boottime), "frozen": ns.frozen,
             "maker": ns.maker} for ino, ns in sorted(found.items())]


def save_process(k, p) -> dict:
    ns = p.ns
    if ns.time is k.init_ns.time and ns.time_for_children is k.init_ns.time:
        return {}
    return {"timens": [ns.time.ino, ns.time_for_children.ino]}


def _offset(e: image.Reader, key: str) -> tuple[int, int]:
    """An offset as /proc/PID/timens_offsets can have written it."""
    sec, nsec = e.ints(key, -I64, I64, 2)
    if not -KTIME_SEC_MAX <= sec <= KTIME_SEC_MAX or nsec >= NS:
        raise image.ImageError(f"manifest: {e.where}.{key}: not an offset")
    return sec, nsec


def make(k, r: image.Reader) -> dict[int, TimeNamespace]:
    """The image's namespaces (and the initial one) by number, each counted
    for its maker again."""
    made = {k.init_ns.time.ino: k.init_ns.time}
    inums = k.init_ns.uts.inums
    for e in r.list(KIND):
        ino = e.int("ino", PROC_DYNAMIC_FIRST, U32)
        if not inums.given(ino):
            raise image.ImageError(f"manifest: {e.where}.ino: out of order, or a number this boot gave")
        ns = TimeNamespace(inums, k.init_ns.user, ino=ino)
        ns.monotonic, ns.boottime = _offset(e, "monotonic"), _offset(e, "boottime")
        ns.frozen, ns.maker = e.bool("frozen"), e.int("maker", 0, U32)
        try:
            chain = ucount.charge(k.init_ns.user, ns.maker, KIND)
        except KernelError:
            raise image.ImageError(f"manifest: {e.where}: past max_time_namespaces") from None
        ucount.held(ns, chain, KIND)
        made[ino] = ns
    return made


def restore_process(proc, p: image.Reader, made: dict[int, TimeNamespace]) -> None:
    """The process's namespaces; one it is in has its offsets frozen."""
    if not p.has("timens"):
        return
    own, children = (made.get(ino) for ino in p.ints("timens", 0, U32, 2))
    if own is None or children is None or not own.frozen:
        raise image.ImageError(f"manifest: {p.where}.timens: no such namespace, or one not frozen")
    proc.ns = proc.ns._replace(time=own, time_for_children=children)
