"""How many namespaces each user made, per user namespace (Linux's
ucounts, kernel/ucount.c), against the limits of /proc/sys/user.

Every user namespace has its own limits (max_user_namespaces,
max_mnt_namespaces, ...): the initial one's are half of threads-max, a new
one's INT_MAX, and its root (CAP_SYS_RESOURCE there) may lower them.  A new
namespace counts for the user that makes it in the user namespace that
owns it, then for that namespace's creator in its parent, and so on up to
the initial one (inc_ucount); past any level's limit it is ENOSPC.  A
namespace gives its counts back when it goes (here: when nothing holds
its object any more).  fanotify's groups and marks and inotify's
instances and watches are counted the same way (max_fanotify_groups,
max_fanotify_marks, max_inotify_instances, max_inotify_watches).
Without this a guest's users made namespaces without end, each a copy of
a mount tree or a network stack in the kernel's memory.
"""
from __future__ import annotations

import weakref

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.kernel.tunables import INT_MAX

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
# /proc/sys/user/max_<kind>; the fanotify and inotify ones of the initial
# namespace are /proc/sys/fs's max_user_* (one value each)
KINDS = tuple(f"{n}_namespaces" for n in NAMESPACES) + \
    ("fanotify_groups", "fanotify_marks", "inotify_instances", "inotify_watches")
_FS = {"fanotify_groups": "fanotify_max_user_groups", "fanotify_marks": "fanotify_max_user_marks",
       "inotify_instances": "inotify_max_user_instances", "inotify_watches": "inotify_max_user_watches"}


class _InitLimits(dict):
    """The initial user namespace's limits: half of threads-max for
    namespaces, the fs tunables' for fanotify and inotify."""

    def __init__(self, limit: int, tunables) -> None:
        super().__init__((k, limit) for k in KINDS if k not in _FS)
        self.tunables = tunables

    def __getitem__(self, kind: str) -> int:
        return getattr(self.tunables, _FS[kind]) if kind in _FS else super().__getitem__(kind)

    def __setitem__(self, kind: str, value: int) -> None:
        if kind in _FS:
            setattr(self.tunables, _FS[kind], value)
        else:
            super().__setitem__(kind, value)


def user_ns(kernel, creds):
    """The user namespace of creds (theirs is None for the initial one),
    where what they make is counted."""
    return creds.user_ns if creds.user_ns is not None else kernel.init_ns.user


def setup(userns, tunables=None) -> None:
    """A user namespace's limits (the initial one's, given the tunables;
    else INT_MAX) and counts (none yet)."""
    userns.ucount_max = _InitLimits(tunables.threads_max // 2, tunables) if tunables is not None \
        else dict.fromkeys(KINDS, INT_MAX)
    userns.ucounts = {}


def charge(userns, uid: int, kind: str) -> list[dict]:
    """Count a namespace about to be made for uid in userns and up the
    chain of creators (ENOSPC past a limit, nothing counted); give the
    result to `held` once it is made, or to `undo` if it is not."""
    done: list[dict] = []
    ns = userns
    while ns is not None:
        counts = ns.ucounts.setdefault(uid, {})
        if counts.get(kind, 0) >= ns.ucount_max[kind]:
            undo(done, kind)
            raise KernelError(E.ENOSPC)
        counts[kind] = counts.get(kind, 0) + 1
        done.append(counts)
        uid, ns = getattr(ns, "owner_uid", 0), getattr(ns, "parent", None)
    return done


def undo(chain: list[dict], kind: str) -> None:
    for counts in chain:
        counts[kind] -= 1


def held(ns, chain: list[dict], kind: str) -> None:
    """ns is made: its counts go with it."""
    weakref.finalize(ns, undo, chain, kind)
