"""Namespaces: Linux's nsproxy (which namespaces a process is in), the
namespace objects, and nsfs (the files /proc/PID/ns/* open to).

Every type has its init namespace, the one every process starts in; umlpy
makes new ones of the types it builds (UTS: hostname and domain name; IPC:
the System V tables and POSIX message queues; mount: a copy of the mount
tree, private from then on).  The others (user, pid, net, cgroup, time)
have only their init namespace: asking for a new one is EINVAL, as a Linux
built without them answers.  A process holds an NsProxy that fork shares
and unshare/setns replace, so changing it never touches another process's
view.  Namespaces belong to the whole process here (Linux: to each thread).

clone(2) calls `copy_namespaces` and `enter_mounts`; unshare(2) (in
syscalls/sys_process.py, beside its other flags) `unshare`, then gives the
task its own fs context (CLONE_NEWNS implies CLONE_FS) and calls `enter`;
setns(2) calls `setns`.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYS_CHROOT
from umlpy.kernel import ipc, mqueue, printk
from umlpy.kernel.cred import need
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State
from umlpy.vfs.file import File
from umlpy.vfs.inode import Filesystem, Inode
from umlpy.vfs.mounts import translate

ALL_NEW = (C.CLONE_NEWNS | C.CLONE_NEWCGROUP | C.CLONE_NEWUTS | C.CLONE_NEWIPC | C.CLONE_NEWUSER
           | C.CLONE_NEWPID | C.CLONE_NEWNET | C.CLONE_NEWTIME)
BUILT = C.CLONE_NEWUTS | C.CLONE_NEWIPC | C.CLONE_NEWNS     # the types umlpy makes new namespaces of

# kind -> (CLONE_NEW* flag, the init namespace's inode number as Linux's
# PROC_*_INIT_INO; net and mnt get theirs from the dynamic range)
KINDS: dict[str, tuple[int, int | None]] = {
    "net": (C.CLONE_NEWNET, None),
    "uts": (C.CLONE_NEWUTS, 0xEFFFFFFE),
    "ipc": (C.CLONE_NEWIPC, 0xEFFFFFFF),
    "pid": (C.CLONE_NEWPID, 0xEFFFFFFC),
    "user": (C.CLONE_NEWUSER, 0xEFFFFFFD),
    "mnt": (C.CLONE_NEWNS, None),
    "cgroup": (C.CLONE_NEWCGROUP, 0xEFFFFFFB),
    "time": (C.CLONE_NEWTIME, 0xEFFFFFFA),
}
# /proc/PID/ns entries in Linux's order: name -> the kind it shows
PROC_ENTRIES = {"net": "net", "uts": "uts", "ipc": "ipc", "pid": "pid", "pid_for_children": "pid",
                "user": "user", "mnt": "mnt", "cgroup": "cgroup", "time": "time",
                "time_for_children": "time"}

NSIO = 0xB7
NS_GET_USERNS = NSIO << 8 | 1
NS_GET_PARENT = NSIO << 8 | 2
NS_GET_NSTYPE = NSIO << 8 | 3
NS_GET_OWNER_UID = NSIO << 8 | 4
NSFS_MAGIC = 0x6E736673
PROC_DYNAMIC_FIRST = 0xF0000000


class NsFs(Filesystem):
    """nsfs: one inode per namespace, numbered as the namespace is."""
    name = "nsfs"
    magic = NSFS_MAGIC

    def __init__(self) -> None:
        super().__init__()
        self._next_dynamic = PROC_DYNAMIC_FIRST

    def dynamic_ino(self) -> int:
        """proc_alloc_inum: numbers for namespaces made after boot."""
        n = self._next_dynamic
        self._next_dynamic += 1
        return n


class Namespace:
    """One namespace: its type, number and the user namespace owning it
    (None only for the init user namespace, which has no parent)."""

    def __init__(self, fs: NsFs, kind: str, owner: Namespace | None, ino: int | None = None) -> None:
        self.kind = kind
        self.flag = KINDS[kind][0]
        self.owner = owner
        self.inode = NsInode(fs, self, ino if ino is not None else fs.dynamic_ino())

    @property
    def ino(self) -> int:
        return self.inode.ino

    def name(self) -> str:
        """What /proc/PID/ns/X reads: `uts:[4026531838]`."""
        return f"{self.kind}:[{self.ino}]"


class UtsNamespace(Namespace):
    def __init__(self, fs: NsFs, owner: Namespace | None, hostname: str, domainname: str,
                 ino: int | None = None) -> None:
        super().__init__(fs, "uts", owner, ino)
        self.hostname = hostname
        self.domainname = domainname


class IpcNamespace(Namespace):
    """System V IPC's three tables and the POSIX message queues, each with
    their sysctls (a new namespace starts with Linux's defaults)."""

    def __init__(self, fs: NsFs, owner: Namespace | None, signals, ino: int | None = None) -> None:
        super().__init__(fs, "ipc", owner, ino)
        self.sysv = ipc.Ipc()
        self.mq = mqueue.MqNamespace(signals)


class MntNamespace(Namespace):
    """A mount tree: its root dentry (the root mount's), and for a copy the
    mounts it was copied from -> their copies (to move root and cwd over)."""

    def __init__(self, fs: NsFs, owner: Namespace | None) -> None:
        super().__init__(fs, "mnt", owner)
        self.root = None
        self.copies: dict = {}


class NsProxy(NamedTuple):
    """The namespaces of a process, one of each kind; immutable, so fork
    shares it and a change makes a new one (Linux's copy-on-write nsproxy)."""
    uts: UtsNamespace
    ipc: IpcNamespace
    mnt: MntNamespace
    net: Namespace
    pid: Namespace
    user: Namespace
    cgroup: Namespace
    time: Namespace

    def of(self, kind: str) -> Namespace:
        return getattr(self, kind)


def init_nsproxy(hostname: str, signals) -> NsProxy:
    """The boot namespaces, one of each kind, owned by the init user namespace."""
    fs = NsFs()
    user = Namespace(fs, "user", None, KINDS["user"][1])
    return NsProxy(
        uts=UtsNamespace(fs, user, hostname, "(none)", KINDS["uts"][1]),
        ipc=IpcNamespace(fs, user, signals, KINDS["ipc"][1]),
        net=Namespace(fs, "net", user), mnt=MntNamespace(fs, user),
        pid=Namespace(fs, "pid", user, KINDS["pid"][1]), user=user,
        cgroup=Namespace(fs, "cgroup", user, KINDS["cgroup"][1]),
        time=Namespace(fs, "time", user, KINDS["time"][1]))


def _refuse_unbuilt(flags: int) -> None:
    """Types with only their init namespace: EINVAL, as Linux without them."""
    missing = flags & ALL_NEW & ~BUILT
    if missing:
        printk.pr_notice(f"namespaces {missing:#x} not supported (only UTS, IPC and mount)")
        raise KernelError(E.EINVAL)


def _single_threaded(proc) -> None:
    """Namespaces are the process's here, not each thread's as in Linux: a
    thread may not move alone (EINVAL rather than moving its siblings)."""
    if sum(t.state is not State.DEAD for t in proc.threads) > 1:
        printk.pr_notice("namespaces of one thread of a multithreaded process not supported")
        raise KernelError(E.EINVAL)


def copy_namespaces(kernel, proc, flags: int) -> NsProxy:
    """clone/unshare: the nsproxy with new namespaces for the CLONE_NEW*
    flags (copies of the caller's, as copy_utsname, copy_ipcs and
    copy_mnt_ns make).  A new mount namespace's processes are moved into
    it by `enter_mounts`.  Privilege first, then the types not built
    (EPERM before EINVAL, as Linux's create_new_namespaces)."""
    ns: NsProxy = proc.ns
    if not flags & ALL_NEW:
        return ns
    need(proc.creds, CAP_SYS_ADMIN)
    _refuse_unbuilt(flags)
    fs = ns.uts.inode.fs
    if flags & C.CLONE_NEWUTS:
        ns = ns._replace(uts=UtsNamespace(fs, ns.user, ns.uts.hostname, ns.uts.domainname))
    if flags & C.CLONE_NEWIPC:
        ns = ns._replace(ipc=IpcNamespace(fs, ns.user, kernel.signals))
    if flags & C.CLONE_NEWNS:
        mnt = MntNamespace(fs, ns.user)
        mnt.copies = kernel.mounts.copy_tree(ns.mnt.root.mount)
        mnt.root = mnt.copies[ns.mnt.root.mount].root
        ns = ns._replace(mnt=mnt)
    return ns


def enter_mounts(fs_ctx, old: MntNamespace, new: MntNamespace) -> None:
    """A process's root and cwd in a copied mount tree: the copies of
    where they were (copy_mnt_ns moving the fs_struct over)."""
    if new is old:
        return
    fs_ctx.root = translate(fs_ctx.root, new.copies) or new.root
    fs_ctx.cwd = translate(fs_ctx.cwd, new.copies) or fs_ctx.root


def put_mounts(kernel, mnt: MntNamespace, leaving=None) -> None:
    """The mount tree of a namespace the last process left goes (put_mnt_ns)."""
    if mnt is kernel.init_ns.mnt or mnt.root is None:
        return
    if any(p.ns.mnt is mnt for p in kernel.procs.by_pid.values() if p is not leaving and not p.exited):
        return
    kernel.mounts.drop_tree(mnt.root.mount)
    mnt.root = None
    mnt.copies = {}


def _switch(kernel, proc, ns: NsProxy) -> None:
    """Make ns the process's.  Leaving an IPC namespace ends the SEM_UNDO
    adjustments made in it (exit_sem, as unshare and setns do); a mount
    namespace left by its last process goes."""
    old = proc.ns
    if ns.ipc is not old.ipc:
        ipc.exit_sem(proc)
    proc.ns = ns
    if ns.mnt is not old.mnt:
        put_mounts(kernel, old.mnt)


def unshare(kernel, proc, flags: int) -> NsProxy:
    """The CLONE_NEW* part of unshare(2), before anything changes: the
    namespaces the process is to enter (`enter`), made new."""
    if flags & ALL_NEW:
        _single_threaded(proc)
    return copy_namespaces(kernel, proc, flags)


def enter(kernel, t, ns: NsProxy) -> None:
    """unshare(2)'s switch to the namespaces `unshare` made: the task's
    root and cwd (its own by now: CLONE_NEWNS implies CLONE_FS) move into a
    new mount tree, then the process is in them."""
    enter_mounts(t.fs, t.proc.ns.mnt, ns.mnt)
    _switch(kernel, t.proc, ns)


# -- setns and nsfs ---------------------------------------------------------------

def _fs_users(kernel, fs) -> int:
    """The live tasks sharing an fs context (CLONE_FS)."""
    return sum(1 for p in kernel.procs.by_pid.values() if not p.exited
               for x in p.threads if x.fs is fs and x.state is not State.DEAD)


def _may_install(kernel, t, target: Namespace) -> None:
    """Each type's install checks (utsns_install, mntns_install...)."""
    proc = t.proc
    creds = proc.creds
    kind = target.kind
    if kind == "user" and target is proc.ns.user:
        raise KernelError(E.EINVAL)     # re-entering one's own user namespace gains nothing
    if kind == "mnt" and _fs_users(kernel, t.fs) != 1:
        raise KernelError(E.EINVAL)     # the fs context is shared (CLONE_FS)
    if kind == "mnt":
        need(creds, CAP_SYS_CHROOT)
    need(creds, CAP_SYS_ADMIN)


def setns(kernel, t, targets: list[Namespace]) -> None:
    """setns(2): join every target (all checked first: all or none)."""
    proc = t.proc
    _single_threaded(proc)
    for target in targets:
        _may_install(kernel, t, target)
    ns = proc.ns._replace(**{target.kind: target for target in targets})
    if any(target.kind == "mnt" for target in targets):
        t.fs.root = t.fs.cwd = ns.mnt.root     # mntns_install: the namespace's root
    _switch(kernel, proc, ns)


class NsPath(NamedTuple):
    """Where a /proc/PID/ns/X magic link leads: the namespace's inode, no name."""
    dentry: None
    inode: NsInode


class NsInode(Inode):
    """The nsfs inode of a namespace: a read-only regular file (as Linux's)."""

    def __init__(self, fs: NsFs, ns: Namespace, ino: int) -> None:
        super().__init__(fs, C.S_IFREG | 0o444, ino=ino)
        self.ns = ns

    def link_name(self) -> str:
        return self.ns.name()

    def open_file(self, dentry, flags: int, task) -> File:
        return NsFile(dentry, self, flags)

    def path(self) -> NsPath:
        return NsPath(None, self)


class NsFile(File):
    """An open namespace: setns(2)'s argument and the NS_GET_* ioctls."""
    kind = "nsfs"

    @property
    def ns(self) -> Namespace:
        return self.inode.ns

    def ioctl(self, task, req: int, arg: int) -> int:
        ns = self.ns
        if req == NS_GET_NSTYPE:
            return ns.flag
        if req == NS_GET_OWNER_UID:
            if ns.kind != "user":
                raise KernelError(E.EINVAL)
            task.mem.write(arg, struct.pack("<I", 0))   # the init user namespace's owner: root
            return 0
        if req == NS_GET_USERNS:
            return _open_ns(task, ns.owner)
        if req == NS_GET_PARENT:
            if ns.kind not in ("user", "pid"):
                raise KernelError(E.EINVAL)     # no hierarchy
            return _open_ns(task, None)         # the init namespaces' parents are not visible
        raise KernelError(E.ENOTTY)


def _open_ns(task, ns: Namespace | None) -> int:
    """A new O_RDONLY|O_CLOEXEC fd on ns (ns_ioctl's open_related_ns);
    EPERM when there is none to see (the init user namespace's owner)."""
    if ns is None:
        raise KernelError(E.EPERM)
    f = NsFile(None, ns.inode, C.O_RDONLY)
    return task.files.install(f, True)
