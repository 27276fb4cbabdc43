"""Control groups in a checkpoint (kernel/cgroup.py): cgroup2's single
hierarchy, a tree of named groups, each process (a zombie too, as
/proc/PID/cgroup shows it until the reap) in one.

This kernel builds no controllers (cgroup.controllers is empty), so a
group has no limits nor accounting to carry: the tree is its groups'
paths, parents first (the manifest's `cgroups`, each path's bytes in
hex), and a process's `cgroup` is the path of its group.  What chmod and
chown changed in the hierarchy (a group delegated to a user: its
directory and its cgroup.procs given to that user) is
`cgroup_attrs`: `[path (hex), mode, uid, gid]` of each directory or file
whose permission bits or owner are not those it is made with.  A cgroup2 mount
is a view of that one tree, made again as such (checkpoint/restore.py's
mounts).

A restore makes the groups as mkdir makes them: under a group made
before, a name that mkdir takes (no '/', not '.' or '..', no newline, at
most 255 bytes) that no group or file of that directory has.  A process
in a group that was removed (a zombie can be) is refused at the
checkpoint: nothing could put it there again.
"""
from __future__ import annotations

from umlpy.checkpoint import image
from umlpy.fs import cgroupfs
from umlpy.kernel import cgroup as CG
from umlpy.kernel.errors import KernelError


def _enc(cg: CG.Cgroup) -> str:
    return cg.path().encode("utf-8", "surrogateescape").hex()


def unsaved(k) -> str | None:
    """Why the groups cannot be saved (a process in a removed group), or None."""
    for p in k.procs.by_pid.values():
        if p.cgroup.dead:
            return f"process {p.pid} in a removed control group"
    return None


def save(k) -> list[str]:
    """Every group but the root, parents before their children."""
    out: list[str] = []
    todo = [k.procs.cgroup_root]
    while todo:
        cg = todo.pop(0)
        for child in cg.children.values():
            out.append(_enc(child))
            todo.append(child)
    return out


def save_process(p) -> str:
    return _enc(p.cgroup)


def _changed(d, path: bytes, out: list) -> None:
    """The nodes under the hierarchy's directory d (at path) whose
    permission bits or owner differ from a fresh one's (each node is kept
    by its directory once made, so what chmod and chown set stays)."""
    table = d.table()
    for name, node in list(d._made.items()):
        make = table.get(name)
        if make is None:
            continue
        fresh = make()
        where = path.rstrip(b"/") + b"/" + name
        if (node.mode, node.uid, node.gid) != (fresh.mode, fresh.uid, fresh.gid):
            out.append([where.hex(), node.mode & 0o7777, node.uid, node.gid])
        if isinstance(node, cgroupfs.CgroupDir):
            _changed(node, where, out)


def save_attrs(k) -> list:
    """What chmod and chown changed in the hierarchy, the root too."""
    fs = k.mounts.singletons.get("cgroup2")
    if fs is None:
        return []
    root = fs.root
    out = [] if (root.mode & 0o7777, root.uid, root.gid) == (0o755, 0, 0) else \
        [[b"/".hex(), root.mode & 0o7777, root.uid, root.gid]]
    _changed(root, b"/", out)
    return out


def restore_attrs(k, r: image.Reader) -> None:
    """chmod and chown again on the nodes `cgroup_attrs` names (which the
    groups, made first, must have)."""
    fs = cgroupfs.cgroupfs_instance(k)
    v = r.doc.get("cgroup_attrs")
    if not isinstance(v, list):
        raise image.ImageError("manifest: cgroup_attrs: not a list")
    for i, x in enumerate(v):
        e = image.Reader(dict(zip(("path", "mode", "uid", "gid"), x)) if isinstance(x, list) and len(x) == 4
                         else {}, f"cgroup_attrs[{i}]")
        node = fs.root
        for name in filter(None, e.hex("path", 1 << 20).split(b"/")):
            node = node.lookup(name) if node.is_dir else None
            if node is None:
                raise image.ImageError(f"manifest: cgroup_attrs[{i}].path: nothing there")
        node.mode = node.mode & ~0o7777 | e.int("mode", 0, 0o10000)
        node.uid, node.gid = e.int("uid", 0, 1 << 32), e.int("gid", 0, 1 << 32)


def make(k, r: image.Reader) -> dict[bytes, CG.Cgroup]:
    """The saved tree under the boot's root group; the groups by path."""
    root = k.procs.cgroup_root
    groups = {b"/": root}
    fs = cgroupfs.cgroupfs_instance(k)
    v = r.doc.get("cgroups")
    if not isinstance(v, list):
        raise image.ImageError("manifest: cgroups: not a list")
    for i, _ in enumerate(v):
        path = image.Reader({"p": v[i]}, f"cgroups[{i}]").hex("p", 4096)
        up, _slash, name = path.rpartition(b"/")
        parent = groups.get(up or b"/")
        text = name.decode("utf-8", "surrogateescape")
        if parent is None or not path.startswith(b"/") or name in (b"", b".", b"..") or b"\0" in name \
                or text in parent.children or text in cgroupfs._files(fs, parent):
            raise image.ImageError(f"manifest: cgroups[{i}]: not a group mkdir makes there")
        try:
            groups[path] = parent.mkdir(text)
        except KernelError:
            raise image.ImageError(f"manifest: cgroups[{i}]: a name mkdir refuses") from None
    return groups


def restore_process(proc, p: image.Reader, groups: dict[bytes, CG.Cgroup]) -> None:
    cg = groups.get(p.hex("cgroup", 1 << 20))
    if cg is None:
        raise image.ImageError(f"manifest: {p.where}.cgroup: no such group")
    proc.cgroup = cg
