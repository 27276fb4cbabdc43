"""User namespaces' id maps: the translation between the ids a task sees
(in its user namespace) and the kernel's ids (kuid/kgid: the init
namespace's), as Linux's make_kuid/from_kuid.  Creds keep kernel ids and
their user namespace (None: the init namespace, whose map is the
identity); every id crossing the syscall boundary goes through here.

A map is a tuple of extents (first inside, first kernel id, count); a
namespace whose map is not written yet maps nothing.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

OVERFLOW_ID = 65534     # /proc/sys/kernel/overflow{u,g}id: what an unmapped id shows as

Extent = tuple[int, int, int]


def _map(ns, which: str) -> tuple[Extent, ...]:
    return getattr(ns, which) or ()


def to_kernel(ns, which: str, id_: int) -> int | None:
    """make_kuid: the kernel id of id_ as ns sees it (None: unmapped)."""
    if ns is None or not getattr(ns, "level", 0):
        return id_
    for first, lower, count in _map(ns, which):     # lower: kernel ids (map_write converted them)
        if first <= id_ < first + count:
            return lower + id_ - first
    return None


def from_kernel(ns, which: str, kid: int) -> int | None:
    """from_kuid: what ns calls kernel id kid (None: unmapped there)."""
    if ns is None or not getattr(ns, "level", 0):
        return kid
    for first, lower, count in _map(ns, which):
        if lower <= kid < lower + count:
            return first + kid - lower
    return None


def munged(ns, which: str, kid: int) -> int:
    """from_kuid_munged: unmapped ids read as the overflow id."""
    v = from_kernel(ns, which, kid)
    return OVERFLOW_ID if v is None else v


def need_kernel(ns, which: str, id_: int) -> int:
    """An id a caller names (setuid, chown...): EINVAL if ns does not map it."""
    v = to_kernel(ns, which, id_)
    if v is None:
        raise KernelError(E.EINVAL)
    return v


def uid_of(creds, kid: int) -> int:
    return munged(creds.user_ns, "uid_map", kid)


def gid_of(creds, kid: int) -> int:
    return munged(creds.user_ns, "gid_map", kid)


def level(ns) -> int:
    return getattr(ns, "level", 0) if ns is not None else 0


def ns_capable(creds, ns, cap: int) -> bool:
    """cap_capable: cap in ns (None: the init namespace) -- in the task's
    own namespace by its effective set; in one below it made by a task
    with its euid (the owner of the namespace whose parent is the
    task's), fully; never in an ancestor or a sibling."""
    own = creds.user_ns
    while True:
        if ns is own or (level(ns) == 0 and level(own) == 0):
            return bool(creds.cap_effective >> cap & 1)
        if level(ns) <= level(own):
            return False
        parent = ns.parent if level(ns.parent) else None
        if parent is own and ns.owner_uid == creds.euid:
            return True
        ns = parent
