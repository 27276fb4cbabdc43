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
from umlpy.abi.capability import CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN
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


def checkpoint_restore_capable(creds, ns) -> bool:
    """checkpoint_restore_ns_capable: CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE
    in ns (None: the init namespace)."""
    return ns_capable(creds, ns, CAP_SYS_ADMIN) or ns_capable(creds, ns, CAP_CHECKPOINT_RESTORE)


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


MAX_EXTENTS = 340       # UID_GID_MAP_MAX_EXTENTS


def _parse_map(data: bytes) -> list[Extent]:
    """Lines of "first lower count": each range non-empty, within 32 bits,
    overlapping no other on either side (EINVAL otherwise)."""
    extents: list[Extent] = []
    for line in data.decode("ascii", "replace").split("\n"):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise KernelError(E.EINVAL)
        first, lower, count = (int(f) for f in fields)
        if count == 0 or first + count > 0xFFFFFFFF or lower + count > 0xFFFFFFFF:
            raise KernelError(E.EINVAL)
        for f2, l2, c2 in extents:
            if first < f2 + c2 and f2 < first + count or lower < l2 + c2 and l2 < lower + count:
                raise KernelError(E.EINVAL)
        extents.append((first, lower, count))
        if len(extents) > MAX_EXTENTS:
            raise KernelError(E.EINVAL)
    if not extents:
        raise KernelError(E.EINVAL)
    return extents


def _down(parent, which: str, lower: int, count: int) -> int:
    """map_id_range_down: the kernel ids of a range of the parent's ids,
    which one extent of the parent must map whole (EPERM otherwise)."""
    if level(parent) == 0:
        return lower
    for first, klower, c in _map(parent, which):
        if first <= lower and lower + count <= first + c:
            return klower + lower - first
    raise KernelError(E.EPERM)


def write_map(writer, ns, which: str, data: bytes, setid_cap: int, admin_cap: int) -> None:
    """map_write for /proc/PID/{uid,gid,projid}_map of a process in ns:
    once; by a task in ns or its parent with CAP_SYS_ADMIN over ns; either
    the owner's single line mapping its own effective id (gid: after
    setgroups "deny"), or anything its parent namespace maps, with
    CAP_SETUID/CAP_SETGID there (new_idmap_permitted)."""
    if level(ns) == 0 or getattr(ns, which) is not None:
        raise KernelError(E.EPERM)
    own = writer.user_ns
    parent = ns.parent if level(ns.parent) else None
    if own is not ns and own is not parent or not ns_capable(writer, ns, admin_cap):
        raise KernelError(E.EPERM)
    extents = _parse_map(data)
    kernel = [(first, _down(parent, which, lower, count), count) for first, lower, count in extents]
    if len(kernel) == 1 and kernel[0][2] == 1 and ns.owner_uid == writer.euid:
        kid = kernel[0][1]
        if which == "uid_map" and kid == writer.euid \
                or which == "gid_map" and kid == writer.egid and not ns.setgroups_allowed:
            setattr(ns, which, tuple(kernel))
            return
    if which == "projid_map" or ns_capable(writer, parent, setid_cap):
        setattr(ns, which, tuple(kernel))
        return
    raise KernelError(E.EPERM)


def write_setgroups(writer, ns, allow: bool, admin_cap: int) -> None:
    """proc_setgroups_write: "deny" only before the gid map is written,
    and never back to "allow"."""
    if level(ns) == 0:
        if not allow:
            raise KernelError(E.EPERM)      # the init namespace's gid map is written
        return
    if not ns_capable(writer, ns, admin_cap):
        raise KernelError(E.EPERM)
    if allow and not ns.setgroups_allowed or not allow and ns.gid_map is not None:
        raise KernelError(E.EPERM)
    ns.setgroups_allowed = allow


def show_map(own, ns, which: str) -> bytes:
    """The map as the reader sees it: lower ids in the reader's namespace
    (its parent's, for a reader inside ns), as uid_m_show."""
    if level(ns) == 0:
        return b"%10u %10u %10u\n" % (0, 0, 0xFFFFFFFF)
    base = own if own is not ns else (ns.parent if level(ns.parent) else None)
    out = b""
    for first, lower, count in _map(ns, which):
        shown = from_kernel(base, which, lower)
        out += b"%10u %10u %10u\n" % (first, OVERFLOW_ID if shown is None else shown, count)
    return out
