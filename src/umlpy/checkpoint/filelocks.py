"""File locks in a checkpoint (vfs/locks.py): flock locks and OFD locks,
which belong to an open file description, and POSIX record locks, which
belong to a process's fd table; leases (vfs/lease.py), which belong to a
description too.

Each saved description of a file carries `locks`: `["flock", type]` and
`["ofd", start, end, type]` for those it holds, and, on the first saved
description of each inode only, `["posix", table, pid, start, end, type]`
for the record locks the saved processes' fd tables hold on it: the fd
table named by the tid of the first task the image saves with it (a
process's own table by its pid), pid the process that took the lock, as
F_GETLK reports it; `["lease", fd, pid, type]` for the lease it holds (fd
the one its break signal reports, pid its taker's; one being broken is
refused at the checkpoint).  The restore
gives them back to the description made again and to the restored
process's fd table, and refuses a set of locks that could not coexist (a
write lock overlapping another owner's lock).  A lock held by anything
the image does not carry is refused at the checkpoint; leases stay
refused (checkpoint/dump.py).
"""
from __future__ import annotations

from umlpy.checkpoint import image
from umlpy.vfs import lease
from umlpy.vfs import locks as L

KINDS = {"flock": 2, "ofd": 4, "posix": 6, "lease": 4}      # kind -> entry length
MAX_ID = 1 << 22        # PID_MAX_LIMIT: a table's tid, a lock's pid


def save(f, seen: set[int], table_of: dict[int, int]) -> list | None:
    """f's locks as entries (None: none); seen: the inodes whose POSIX
    locks were saved already; table_of: id(fd table) -> the tid that
    names it.  KeyError: a record lock whose fd table is no saved task's."""
    le = lease.held(f)
    out: list = [["lease", le.fd, le.pid, le.type]] if le is not None else []
    st = getattr(f.inode, "locks_state", None)
    if not st or not (st["flock"] or st["posix"]):
        return out or None
    out += [["flock", lk.type] for lk in st["flock"] if lk.owner is f]
    out += [["ofd", lk.start, lk.end, lk.type] for lk in st["posix"].of(f)]
    if id(f.inode) not in seen:
        seen.add(id(f.inode))
        out += [["posix", table_of[id(lk.owner)], lk.pid, lk.start, lk.end, lk.type]
                for lk in st["posix"].all() if not lk.ofd]
    return out or None


def restore(f, o: image.Reader, tables: dict) -> None:
    """The locks of the entry o given back: to f (flock, OFD), or to the
    fd table each POSIX one names (tables: tid -> fd table)."""
    v = o.doc.get("locks")
    if v is None:
        return
    bad = image.ImageError(f"manifest: {o.where}.locks: not a list of locks")
    if not isinstance(v, list):
        raise bad
    st = L._state(f.inode)
    for e in v:
        if not isinstance(e, list) or not e or KINDS.get(e[0]) != len(e) \
                or not all(type(x) is int for x in e[1:]) or e[-1] not in (L.F_RDLCK, L.F_WRLCK):
            raise bad
        if e[0] == "lease":
            if not 0 <= e[1] < 1 << 31 or not 0 < e[2] < MAX_ID or not lease.adopt(f, e[3], e[1], e[2]):
                raise image.ImageError(f"manifest: {o.where}.locks: a lease no setlease could have given")
            continue
        if e[0] == "flock":
            st["flock"].append(L.Lock(f, 0, L.OFFSET_MAX, e[1], 0))
            L._release_with(f)
            continue
        start, end = e[-3], e[-2]
        if not 0 <= start <= end <= L.OFFSET_MAX:
            raise bad
        if e[0] == "ofd":
            st["posix"].add(L.Lock(f, start, end, e[3], 0))
            L._release_with(f)
        else:
            owner = tables.get(e[1])
            if owner is None or not 0 < e[2] < MAX_ID:
                raise image.ImageError(f"manifest: {o.where}.locks: a record lock of no restored process")
            st["posix"].add(L.Lock(owner, start, end, e[5], e[2]))
    _check(f.inode, o.where)


def _check(inode, where: str) -> None:
    """No two owners' locks on the inode conflict (as no lock call would
    have let them be)."""
    st = inode.locks_state
    for kind, overlap in (("flock", lambda a, b: True), ("posix", lambda a, b: a.start <= b.end and b.start <= a.end)):
        held = st[kind] if kind == "flock" else st[kind].all()
        for i, a in enumerate(held):
            for b in held[i + 1:]:
                if a.owner is not b.owner and L._conflicts(a.type, b.type) and overlap(a, b):
                    raise image.ImageError(f"manifest: {where}.locks: locks that conflict")
