"""Control groups, version 2's single hierarchy: a tree of groups, each
process in exactly one (Process.cgroup; fork inherits it, clone3's
CLONE_INTO_CGROUP and a write to cgroup.procs move it).

No controllers are built: a group limits and accounts nothing, it only
groups (what cgroup.procs, /proc/PID/cgroup and systemd-style supervisors
use).  The files are fs/cgroupfs.py's.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

MAX_NAME = 255


class Cgroup:
    """One group: its name under its parent and its children by name."""

    def __init__(self, name: str, parent: Cgroup | None) -> None:
        self.name = name
        self.parent = parent
        self.children: dict[str, Cgroup] = {}
        self.dead = False       # removed (rmdir): nothing may join it

    def path(self) -> str:
        """Its path from the root, as /proc/PID/cgroup shows it."""
        if self.parent is None:
            return "/"
        up = self.parent.path()
        return f"{up.rstrip('/')}/{self.name}"

    def members(self, procs) -> list:
        """The live processes in this group."""
        return [p for p in procs.by_pid.values() if p.cgroup is self and not p.exited]

    def descendants(self) -> int:
        return sum(1 + c.descendants() for c in self.children.values())

    def mkdir(self, name: str) -> Cgroup:
        """cgroup_mkdir: a new empty child (the VFS has refused taken names)."""
        if "\n" in name or len(name.encode(errors="surrogateescape")) > MAX_NAME:
            raise KernelError(E.EINVAL)
        child = self.children[name] = Cgroup(name, self)
        return child

    def rmdir(self, name: str, procs) -> None:
        """cgroup_destroy_locked: only a group without processes or children (EBUSY)."""
        child = self.children.get(name)
        if child is None:
            raise KernelError(E.ENOENT)
        if child.children or child.members(procs):
            raise KernelError(E.EBUSY)
        del self.children[name]
        child.dead = True


def attach(proc, cg: Cgroup) -> None:
    """Move a process (all its threads) into cg; a removed group is ENOENT."""
    if cg.dead:
        raise KernelError(E.ENOENT)
    proc.cgroup = cg
