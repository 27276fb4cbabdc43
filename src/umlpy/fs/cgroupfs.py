"""cgroup2: the files of the control-group hierarchy (kernel/cgroup.py).

A directory per group; mkdir makes a child group, rmdir removes an empty
one.  Each group has the core files of Linux's cgroup v2 that concern
membership: cgroup.procs (its processes' pids, as the reader's pid
namespace numbers them; writing a pid moves that process here),
cgroup.threads, cgroup.controllers and cgroup.subtree_control (empty: no
controllers are built, enabling one is EINVAL), cgroup.stat, and for a
group below the root cgroup.events and cgroup.type.  One instance, shared
by every mount (one hierarchy).
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Dir, GenFile, VirtFs, parse_ints
from umlpy.kernel import cgroup as cgroups
from umlpy.kernel.errors import KernelError

CGROUP2_SUPER_MAGIC = 0x63677270


class CgroupFs(VirtFs):
    name = "cgroup2"
    magic = CGROUP2_SUPER_MAGIC
    blksize = 4096

    def __init__(self, kernel) -> None:
        super().__init__(kernel)
        self.root = CgroupDir(self, kernel.procs.cgroup_root)


class CgroupDir(Dir):
    """A group's directory: its files, then its children."""

    def __init__(self, fs: CgroupFs, cg: cgroups.Cgroup) -> None:
        super().__init__(fs, ("cgroup", id(cg)), self._table, 0o755, alive=lambda: not cg.dead)
        self.cg = cg

    def _table(self) -> dict:
        fs, cg = self.fs, self.cg
        files = _files(fs, cg)
        table = {name.encode(): (lambda name=name, f=f: GenFile(fs, ("cgroup", id(cg), name), *f))
                 for name, f in files.items()}
        for name, child in cg.children.items():
            table[name.encode(errors="surrogateescape")] = lambda child=child: CgroupDir(fs, child)
        return table

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0):
        """mkdir makes a group; nothing else can be made here (as kernfs: EACCES)."""
        if mode & C.S_IFMT != C.S_IFDIR:
            raise KernelError(E.EACCES)
        child = self.cg.mkdir(name.decode(errors="surrogateescape"))
        node = CgroupDir(self.fs, child)
        node.mode = C.S_IFDIR | mode & 0o7777       # kernfs_create_dir keeps mkdir's mode (umask applied)
        node.own(uid, gid)
        self._made[name] = node
        return node

    def own(self, uid: int, gid: int) -> None:
        """cgroup_kn_set_ugid: a group made by anyone but root belongs to
        its maker, its files too, so a user a subtree was delegated to
        manages the groups they make in it.  The files are made now, and
        kept (a checkpoint carries them as chown's)."""
        if uid == 0 and gid == 0:
            return
        self.uid, self.gid = uid, gid
        for name, _, _ in self.entries():
            f = self.made(name)
            if f is not None:
                f.uid, f.gid = uid, gid

    def rmdir(self, name: bytes) -> None:
        self.cg.rmdir(name.decode(errors="surrogateescape"), self.fs.kernel.procs)
        self.forget(name)


def _files(fs: CgroupFs, cg: cgroups.Cgroup) -> dict[str, tuple]:
    """name -> (show, store, mode) of a group's files."""
    procs = fs.kernel.procs

    def pids(threads: bool):
        def show(task) -> bytes:
            viewer = task.proc if task is not None else None
            nrs = [t.tid if threads else p.pid for p in cg.members(procs)
                   for t in (p.threads if threads else p.threads[:1])]
            shown = sorted(procs.vnr(viewer, n) if viewer is not None else n for n in nrs)
            return b"".join(f"{n}\n".encode() for n in shown if n)
        return show

    def move(task, data: bytes) -> None:
        """cgroup_procs_write: a pid of the writer's pid namespace (0: itself)."""
        vals = parse_ints(data.strip())
        if len(vals) != 1 or vals[0] < 0:
            raise KernelError(E.EINVAL)
        p = task.proc if vals[0] == 0 else procs.find_proc(task.proc, vals[0])
        if p is None or p.exited:
            raise KernelError(E.ESRCH)
        cgroups.attach(p, cg)

    def subtree_control(task, data: bytes) -> None:
        """No controller is available to enable or disable (EINVAL, as an unknown one)."""
        if data.split():
            raise KernelError(E.EINVAL)

    files = {
        "cgroup.controllers": (lambda task: b"", None, 0o444),      # no names: not even the newline
        "cgroup.procs": (pids(False), move, 0o644),
        "cgroup.stat": (lambda task: f"nr_descendants {cg.descendants()}\nnr_dying_descendants 0\n".encode(),
                        None, 0o444),
        "cgroup.subtree_control": (lambda task: b"", subtree_control, 0o644),
        "cgroup.threads": (pids(True), None, 0o444),
    }
    if cg.parent is not None:
        files["cgroup.events"] = (lambda task: f"populated {int(_populated(cg, procs))}\nfrozen 0\n".encode(),
                                  None, 0o444)
        files["cgroup.type"] = (lambda task: b"domain\n", None, 0o444)
    return dict(sorted(files.items()))


def _populated(cg: cgroups.Cgroup, procs) -> bool:
    return bool(cg.members(procs)) or any(_populated(c, procs) for c in cg.children.values())


def cgroupfs_instance(kernel) -> CgroupFs:
    """The hierarchy's filesystem (made at its first mount)."""
    fs = kernel.mounts.singletons.get("cgroup2")
    if fs is None:
        fs = kernel.mounts.singletons["cgroup2"] = CgroupFs(kernel)
    return fs


def cgroup_of_fd(t, fd: int) -> cgroups.Cgroup:
    """The group a directory fd of cgroup2 names (clone3's CLONE_INTO_CGROUP):
    EBADF for another file, ENOENT for a removed group."""
    node = t.files.get_raw(fd).inode     # fget_raw: an O_PATH fd names it too
    if not isinstance(node, CgroupDir):
        raise KernelError(E.EBADF)
    if node.cg.dead:
        raise KernelError(E.ENOENT)
    return node.cg
