"""procfs: the kernel's state as files, in the shapes proc(5) documents.

The root lists the machine-wide files (misc), /proc/sys (sysctl), `self`
and `thread-self` (links to the caller's directories, read from the
scheduler's current task) and one directory per live or zombie process
(pid).  One instance per pid namespace, shared by every mount of "proc"
made in it: its directories are named by the pids that namespace gives
(and list only the processes it sees), while every file inside finds its
process by the kernel's global number.
"""
from __future__ import annotations


from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Dir, Link, VirtFs, build_nodes, build_tree, number, static_table
from umlpy.fs.procfs.misc import global_files
from umlpy.fs.procfs.net import net_files
from umlpy.fs.procfs.pid import pid_dir
from umlpy.fs.procfs.sysctl import new_uuid, sys_tree
from umlpy.kernel.errors import KernelError

PROC_SUPER_MAGIC = 0x9FA0


class ProcFs(VirtFs):
    name = "proc"
    magic = PROC_SUPER_MAGIC
    blksize = 1024      # proc_fill_super's s_blocksize
    notify_perm = False     # FS_DISALLOW_NOTIFY_PERM: opens here take locks a listener could need

    def __init__(self, kernel, pidns) -> None:
        super().__init__(kernel)
        self.pidns = pidns
        self._pid_inos: dict[int, dict] = {}      # pid -> tid (or None) -> key -> ino
        # one network namespace: every /proc/PID/net is this directory
        self.net_dir = build_tree(self, "/net", net_files(kernel))
        nodes = build_nodes(self, "", global_files(kernel))
        nodes[b"sys"] = build_tree(self, "/sys", sys_tree(kernel, new_uuid()))
        nodes[b"self"] = Link(self, "/self", self._self)
        nodes[b"thread-self"] = Link(self, "/thread-self", self._thread_self)
        self._fixed = static_table(nodes)()
        self.root = Dir(self, "/", self._table, find=self._find)

    def ino_for(self, key: object) -> int:
        """Inode numbers of /proc/PID files are kept per pid and thread, so
        that they go with the process (flush)."""
        if type(key) is tuple and key[0] == "pid":
            inos = self._pid_inos.setdefault(key[1], {}).setdefault(key[2], {})
            ino = inos.get(key)
            if ino is None:
                ino = inos[key] = self.new_ino()
            return ino
        return super().ino_for(key)

    def flush(self, mounts, pid: int, tid: int | None = None) -> None:
        """Linux's proc_flush_pid: a process reaped (tid None) or a thread
        ended: its /proc dentries, inodes and inode numbers go, or /proc
        would keep some for every process that was ever looked at."""
        name = str(self.vnr(pid)).encode()
        tname = str(self.vnr(tid)).encode() if tid is not None else b""
        node = self.root.made(name)
        if tid is None:
            self.root.forget(name)
            self._pid_inos.pop(pid, None)
        else:
            task = node.made(b"task") if node is not None else None
            if task is not None:
                task.forget(tname)
            self.root.forget(tname)      # /proc/TID
            inos = self._pid_inos.get(pid, {})
            inos.pop(tid, None)
            inos.pop(("tgid", tid), None)
        for m in mounts:
            if m.fs is self:
                d = m.root.children.get(name)
                if tid is None:
                    m.root.forget(name)
                else:
                    m.root.forget(tname)
                    if d is not None and (task := d.children.get(b"task")) is not None:
                        task.forget(tname)

    def _caller(self):
        t = self.current()
        if t is None:
            raise KernelError(E.ENOENT)
        return t

    def vnr(self, nr: int) -> int:
        """A global pid as this instance's pid namespace numbers it (0: not there)."""
        return self.kernel.procs.pidmap.vnr(self.pidns, nr)

    def _self(self) -> bytes:
        t = self._caller()
        return str(self.vnr(t.pid)).encode()

    def _thread_self(self) -> bytes:
        t = self._caller()
        return f"{self.vnr(t.pid)}/task/{self.vnr(t.tid)}".encode()

    def global_of(self, name: bytes) -> int:
        """The global pid (or tid) a directory name of this instance
        numbers, 0 if it names none its pid namespace sees."""
        nr = number(name)
        g = self.kernel.procs.pidmap.find(self.pidns, nr) if nr else 0
        return g if g and self.vnr(g) == nr else 0

    def _find(self, name: bytes):
        make = self._fixed.get(name)
        if make is not None:
            return make
        pid = self.global_of(name)
        procs = self.kernel.procs
        if pid in procs.by_pid:
            return lambda: pid_dir(self, pid)
        t = procs.by_tid.get(pid)       # a thread's own number: found, never listed
        if t is not None and not t.proc.exited:
            return lambda: pid_dir(self, t.proc.pid, pid, whole=True)
        return None

    def _table(self) -> dict:
        table = dict(self._fixed)
        shown = ((self.vnr(pid), pid) for pid in self.kernel.procs.by_pid)
        for nr, pid in sorted(x for x in shown if x[0]):
            table[str(nr).encode()] = lambda pid=pid: pid_dir(self, pid)
        return table


def procfs_instance(kernel, pidns=None) -> ProcFs:
    """The procfs of a pid namespace (init's when None), made at its first
    mount; every instance but init's is kept by its namespace."""
    fs = kernel.mounts.singletons.get("proc")
    if fs is None:
        fs = kernel.mounts.singletons["proc"] = ProcFs(kernel, kernel.init_ns.pid)
    if pidns is None or pidns is fs.pidns:
        return fs
    if pidns.procfs is None:
        pidns.procfs = ProcFs(kernel, pidns)
    return pidns.procfs

