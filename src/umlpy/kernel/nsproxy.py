"""Namespaces: Linux's nsproxy (which namespaces a process is in), the
namespace objects (their files, nsfs, are vfs/nsfs.py).

Every type has its init namespace, the one every process starts in; umlpy
makes new ones of the types it builds (UTS: hostname and domain name; IPC:
the System V tables and POSIX message queues; mount: a copy of the mount
tree, private from then on; user: kernel/userns.py's id maps, the
creator's capabilities there and none outside).  cgroup has only its init
namespace: asking for a new one is EINVAL, as a Linux built without them
answers.  A network namespace is a whole network
stack (net/netdev.NetStack), which the kernel object makes for it
(`new_net_stack`: this layer does not build stacks).  PID namespaces (kernel/pidns.py numbers the
tasks in them) are made here too: an nsproxy's `pid` is the namespace the
process's children are made in (pid_for_children); its own is
Process.pidns.  Time namespaces (kernel/timens.py: the clock offsets)
have both in the nsproxy, as Linux's: `time`, the process's own, and
`time_for_children`, which unshare(CLONE_NEWTIME) makes new and which a
child enters when forked (`copy_namespaces`) or the process itself when
it execs (`exec_namespaces`).  A process holds an NsProxy that fork shares
and unshare/setns replace, so changing it never touches another process's
view.  Namespaces belong to the whole process here (Linux: to each thread).

clone(2) calls `copy_namespaces` and the mount table's `enter`; unshare(2) (in
syscalls/sys_process.py, beside its other flags) `unshare`, then gives the
task its own fs context (CLONE_NEWNS implies CLONE_FS) and calls `enter`;
setns(2) calls `setns`; execve `exec_namespaces`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_FULL_SET, CAP_SYS_ADMIN, CAP_SYS_CHROOT
from umlpy.kernel import ipc, mqueue, printk, timens, ucount, userns
from umlpy.kernel.cred import commit, need
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State

ALL_NEW = (C.CLONE_NEWNS | C.CLONE_NEWCGROUP | C.CLONE_NEWUTS | C.CLONE_NEWIPC | C.CLONE_NEWUSER
           | C.CLONE_NEWPID | C.CLONE_NEWNET | C.CLONE_NEWTIME)
BUILT = ALL_NEW & ~C.CLONE_NEWCGROUP     # the types umlpy makes new namespaces of

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
# /proc/PID/ns entries in Linux's order: name -> the NsProxy field it shows
# (but "pid": the process's own, Process.pidns)
PROC_ENTRIES = {"net": "net", "uts": "uts", "ipc": "ipc", "pid": "pid", "pid_for_children": "pid",
                "user": "user", "mnt": "mnt", "cgroup": "cgroup", "time": "time",
                "time_for_children": "time_for_children"}

PROC_DYNAMIC_FIRST = 0xF0000000


class InodeNumbers:
    """proc_alloc_inum: numbers for namespaces made after boot (the init
    namespaces have Linux's fixed PROC_*_INIT_INO)."""

    def __init__(self) -> None:
        self._next = PROC_DYNAMIC_FIRST

    def take(self) -> int:
        n = self._next
        self._next += 1
        return n

    def given(self, n: int) -> bool:
        """A number a restore gives again (in increasing order): whether
        it is still free; the next new namespace's comes after it."""
        if n < self._next:
            return False
        self._next = n + 1
        return True


class Namespace:
    """One namespace: its type, number and the user namespace owning it
    (None only for the init user namespace, which has no parent)."""

    def __init__(self, inums: InodeNumbers, kind: str, owner: Namespace | None, ino: int | None = None) -> None:
        self.kind = kind
        self.flag = KINDS[kind][0]
        self.owner = owner
        self.inums = inums
        self.ino = ino if ino is not None else inums.take()
        self.inode = None       # its nsfs inode, made when first opened (vfs/nsfs.py)
        self.maker: int | None = None   # the euid it counts for in its owner's ucounts (a restore counts it again)

    def name(self) -> str:
        """What /proc/PID/ns/X reads: `uts:[4026531838]`."""
        return f"{self.kind}:[{self.ino}]"


class UtsNamespace(Namespace):
    def __init__(self, inums: InodeNumbers, owner: Namespace | None, hostname: str, domainname: str,
                 ino: int | None = None) -> None:
        super().__init__(inums, "uts", owner, ino)
        self.hostname = hostname
        self.domainname = domainname


class IpcNamespace(Namespace):
    """System V IPC's three tables and the POSIX message queues, each with
    their sysctls (a new namespace starts with Linux's defaults)."""

    def __init__(self, inums: InodeNumbers, owner: Namespace | None, signals, ino: int | None = None) -> None:
        super().__init__(inums, "ipc", owner, ino)
        self.sysv = ipc.Ipc()
        self.mq = mqueue.MqNamespace(signals)
        self.mqueuefs = None        # its mqueue superblock (fs/mqueuefs.py), once mounted


MAX_PID_NS_LEVEL = 32


class PidNamespace(Namespace):
    """One pid namespace: its parent and level, the numbers it gave that
    are in use (nr -> global, kernel/pidns.PidMap keeps them), the last
    number given (ns_last_pid) and its init."""

    def __init__(self, inums: InodeNumbers, owner: Namespace | None, parent: PidNamespace | None,
                 ino: int | None = None) -> None:
        super().__init__(inums, "pid", owner, ino)
        self.parent = parent
        self.level = 0 if parent is None else parent.level + 1
        self.last = 0
        self.globals: dict[int, int] = {}
        self.reaper = None          # its init: the Process numbered 1 here (child_reaper)
        self.adding = True          # PIDNS_ADDING: cleared when its init dies
        self.procfs = None          # the procfs mounted in it (fs/procfs), once mounted
        self.acct = None            # its process accounting (syscalls/sys_acct.Accounting), once acct(2) on

    def contains(self, other: PidNamespace) -> bool:
        """Whether other is this namespace or one below it (what it sees)."""
        while other is not None and other.level > self.level:
            other = other.parent
        return other is self


MAX_USER_NS_LEVEL = 32


class UserNamespace(Namespace):
    """A user namespace made after boot: its parent (also its owner, as
    NS_GET_USERNS answers), level, the creator's effective ids (kernel
    ids) and its id maps, unwritten (None) until /proc/PID/uid_map is
    (kernel/userns.py translates through them)."""

    def __init__(self, inums: InodeNumbers, parent: Namespace, creds) -> None:
        super().__init__(inums, "user", parent)
        self.parent = parent
        self.level = getattr(parent, "level", 0) + 1
        self.owner_uid, self.owner_gid = creds.euid, creds.egid
        self.uid_map: tuple | None = None
        self.gid_map: tuple | None = None
        self.projid_map: tuple | None = None
        self.setgroups_allowed = True
        ucount.setup(self)      # /proc/sys/user here: no limit until its root sets one


def user_creds(creds, ns: Namespace):
    """set_cred_user_ns: creds in ns with every capability there (and,
    ns not being init's, none in the init namespace: kernel/cred.capable)."""
    new = creds.copy()
    new.user_ns = ns if isinstance(ns, UserNamespace) else None
    new.cap_inheritable = new.cap_ambient = 0
    new.cap_permitted = new.cap_effective = new.cap_bset = CAP_FULL_SET
    new.securebits = 0
    return new


def _new_user_ns(proc, ns: NsProxy) -> UserNamespace:
    """create_user_ns: made in a namespace at most MAX_USER_NS_LEVEL deep
    (ENOSPC: Linux's `parent_ns->level > 32`, so the deepest is 33 below the
    init namespace), by a task whose effective ids its namespace maps
    (EPERM).  No privilege needed."""
    creds = proc.creds
    if userns.level(creds.user_ns) > MAX_USER_NS_LEVEL:
        raise KernelError(E.ENOSPC)
    chain = ucount.charge(ns.user, creds.euid, "user_namespaces")     # ENOSPC
    if userns.from_kernel(creds.user_ns, "uid_map", creds.euid) is None \
            or userns.from_kernel(creds.user_ns, "gid_map", creds.egid) is None:
        ucount.undo(chain, "user_namespaces")
        raise KernelError(E.EPERM)
    made = UserNamespace(ns.uts.inums, ns.user, creds)
    ucount.held(made, chain, "user_namespaces")
    return made


class NetNamespace(Namespace):
    """A network namespace: its stack (devices, routes, sockets, the
    /proc/sys/net values), set at boot for the init namespace."""

    def __init__(self, inums: InodeNumbers, owner: Namespace | None, stack) -> None:
        super().__init__(inums, "net", owner)
        self.stack = stack


class MntNamespace(Namespace):
    """A mount tree: its root dentry (the root mount's), and for a copy the
    mounts it was copied from -> their copies (to move root and cwd over)."""

    def __init__(self, inums: InodeNumbers, owner: Namespace | None) -> None:
        super().__init__(inums, "mnt", owner)
        self.root = None
        self.copies: dict = {}


class TimeNamespace(Namespace):
    """A time namespace: how far its processes' monotonic and boot clocks
    read ahead of the machine's, each as (seconds, nanoseconds) the way
    /proc/PID/timens_offsets took it (kernel/timens.py), a new one's
    copied from the namespace it was made from; fixed (frozen) once a
    process is in it, the init namespace's (0) from the start."""

    def __init__(self, inums: InodeNumbers, owner: Namespace | None, copy_of: TimeNamespace | None = None,
                 ino: int | None = None) -> None:
        super().__init__(inums, "time", owner, ino)
        self.monotonic, self.boottime = (copy_of.monotonic, copy_of.boottime) if copy_of else ((0, 0), (0, 0))
        self.frozen = copy_of is None


class NsProxy(NamedTuple):
    """The namespaces of a process, one of each kind; immutable, so fork
    shares it and a change makes a new one (Linux's copy-on-write nsproxy)."""
    uts: UtsNamespace
    ipc: IpcNamespace
    mnt: MntNamespace
    net: NetNamespace
    pid: PidNamespace
    user: Namespace
    cgroup: Namespace
    time: TimeNamespace
    time_for_children: TimeNamespace

    def of(self, kind: str) -> Namespace:
        return getattr(self, kind)


def init_nsproxy(hostname: str, signals, tunables) -> NsProxy:
    """The boot namespaces, one of each kind, owned by the init user
    namespace (whose /proc/sys/user limits are half of threads-max, as
    fork_init sets them)."""
    fs = InodeNumbers()
    user = Namespace(fs, "user", None, KINDS["user"][1])
    ucount.setup(user, tunables)
    time = TimeNamespace(fs, user, ino=KINDS["time"][1])
    return NsProxy(
        uts=UtsNamespace(fs, user, hostname, "(none)", KINDS["uts"][1]),
        ipc=IpcNamespace(fs, user, signals, KINDS["ipc"][1]),
        net=NetNamespace(fs, user, None), mnt=MntNamespace(fs, user),
        pid=PidNamespace(fs, user, None, KINDS["pid"][1]), user=user,
        cgroup=Namespace(fs, "cgroup", user, KINDS["cgroup"][1]),
        time=time, time_for_children=time)


def _refuse_unbuilt(flags: int) -> None:
    """Types with only their init namespace: EINVAL, as Linux without them."""
    missing = flags & ALL_NEW & ~BUILT
    if missing:
        printk.pr_notice(f"namespaces {missing:#x} not supported (only UTS, IPC, mount, PID, network, user and time)")
        raise KernelError(E.EINVAL)


def _live_threads(proc) -> int:
    return sum(t.state is not State.DEAD for t in proc.threads)


def _single_threaded(proc) -> None:
    """Namespaces are the process's here, not each thread's as in Linux: a
    thread may not move alone (EINVAL rather than moving its siblings)."""
    if _live_threads(proc) > 1:
        printk.pr_notice("namespaces of one thread of a multithreaded process not supported")
        raise KernelError(E.EINVAL)


def copy_namespaces(kernel, proc, flags: int) -> NsProxy:
    """clone: the child's nsproxy (`create_namespaces`), in which a child
    that does not share the caller's address space is in the caller's
    time_for_children (timens_on_fork); one that does (its vDSO too) stays
    in the caller's time namespace until it execs (`exec_namespaces`), as
    current Linux has it, where vfork, posix_spawn and threads work after
    unshare(CLONE_NEWTIME) (6.1 refused them with EINVAL)."""
    ns = create_namespaces(kernel, proc, flags)
    return ns if flags & C.CLONE_VM else _timens_on_fork(ns)


def _timens_on_fork(ns: NsProxy) -> NsProxy:
    """timens_on_fork: the nsproxy's own time namespace becomes its
    time_for_children, whose offsets are fixed from now on (the vDSO of
    the process entering it is the caller's to set: timens.commit)."""
    if ns.time is ns.time_for_children:
        return ns
    ns.time_for_children.frozen = True
    return ns._replace(time=ns.time_for_children)


def exec_namespaces(proc) -> None:
    """exec_task_namespaces: a process exec'ing after unshare(CLONE_NEWTIME),
    or a CLONE_VM child (vfork) of such a one, enters its time_for_children;
    the new image's vDSO is made for it (fs/exec.py)."""
    proc.ns = _timens_on_fork(proc.ns)


def create_namespaces(kernel, proc, flags: int) -> NsProxy:
    """clone/unshare: the nsproxy with new namespaces for the CLONE_NEW*
    flags (copies of the caller's, as copy_utsname, copy_ipcs and
    copy_mnt_ns make; a new time namespace is the time_for_children, a copy
    of the one before).  A new mount namespace's processes are moved into
    it by the mount table's `enter`.  Privilege first, then the types not built
    (EPERM before EINVAL, as Linux's create_new_namespaces)."""
    ns: NsProxy = proc.ns
    if not flags & ALL_NEW:
        return ns
    if flags & C.CLONE_NEWUSER:     # first: the others are then owned by it, and its creator may make them
        ns = ns._replace(user=_new_user_ns(proc, ns))
    elif not userns.ns_capable(proc.creds, proc.creds.user_ns, CAP_SYS_ADMIN):
        raise KernelError(E.EPERM)      # the others: CAP_SYS_ADMIN in the user namespace they belong to
    _refuse_unbuilt(flags)
    fs = ns.uts.inums
    euid = proc.creds.euid
    if flags & C.CLONE_NEWUTS:
        ns = ns._replace(uts=_counted(ns.user, euid, "uts", lambda: UtsNamespace(fs, ns.user, ns.uts.hostname,
                                                                                 ns.uts.domainname)))
    if flags & C.CLONE_NEWIPC:
        ns = ns._replace(ipc=_counted(ns.user, euid, "ipc", lambda: IpcNamespace(fs, ns.user, kernel.signals)))
    if flags & C.CLONE_NEWPID:
        _check_new_pid_ns(proc, ns)
        ns = ns._replace(pid=_counted(ns.user, euid, "pid", lambda: PidNamespace(fs, ns.user, ns.pid)))
    if flags & C.CLONE_NEWNET:
        ns = ns._replace(net=_counted(ns.user, euid, "net",
                                      lambda: NetNamespace(fs, ns.user, kernel.new_net_stack())))
    if flags & C.CLONE_NEWTIME:
        ns = ns._replace(time_for_children=_counted(ns.user, euid, "time",
                                                    lambda: TimeNamespace(fs, ns.user, ns.time_for_children)))
    if flags & C.CLONE_NEWNS:      # last: the only one with something to undo
        mnt = _counted(ns.user, euid, "mnt", lambda: MntNamespace(fs, ns.user))
        mnt.copies = kernel.mounts.copy_tree(ns.mnt.root.mount, to_slave=mnt.owner is not ns.mnt.owner)
        mnt.root = mnt.copies[ns.mnt.root.mount].root
        ns = ns._replace(mnt=mnt)
    return ns


def _counted(owner: Namespace, euid: int, kind: str, make: Callable[[], Namespace]) -> Namespace:
    """A new namespace, counted for its maker in the user namespace owning
    it before it is made (inc_<kind>_namespaces: ENOSPC past
    /proc/sys/user's limit)."""
    kind += "_namespaces"
    chain = ucount.charge(owner, euid, kind)
    try:
        ns = make()
    except BaseException:
        ucount.undo(chain, kind)
        raise
    ucount.held(ns, chain, kind)
    ns.maker = euid
    return ns


def _check_new_pid_ns(proc, ns: NsProxy) -> None:
    """copy_pid_ns: a child of the process's own namespace (EINVAL if an
    unshare or setns already chose another for its children), at most
    MAX_PID_NS_LEVEL deep (ENOSPC)."""
    if ns.pid is not proc.pidns:
        raise KernelError(E.EINVAL)
    if ns.pid.level >= MAX_PID_NS_LEVEL:
        raise KernelError(E.ENOSPC)




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
    namespace left by its last process goes; entering a time namespace
    fixes its offsets and sets the process's vDSO for it."""
    old = proc.ns
    if ns.ipc is not old.ipc:
        ipc.exit_sem(proc)
    proc.ns = ns
    if ns.mnt is not old.mnt:
        put_mounts(kernel, old.mnt)
    if ns.time is not old.time:
        timens.commit(kernel, proc)


def unshare(kernel, proc, flags: int) -> NsProxy:
    """The CLONE_NEW* part of unshare(2), before anything changes: the
    namespaces the process is to enter (`enter`), made new (a time
    namespace only for its children)."""
    if flags & ALL_NEW:
        _single_threaded(proc)
    return create_namespaces(kernel, proc, flags)


def enter(kernel, t, ns: NsProxy) -> None:
    """unshare(2)'s switch to the namespaces `unshare` made: the task's
    root and cwd (its own by now: CLONE_NEWNS implies CLONE_FS) move into a
    new mount tree, then the process is in them."""
    kernel.mounts.enter(t.fs, t.proc.ns.mnt, ns.mnt)
    if ns.user is not t.proc.ns.user:
        commit(t.proc, user_creds(t.proc.creds, ns.user))
    _switch(kernel, t.proc, ns)


# -- setns ---------------------------------------------------------------------

def _fs_users(kernel, fs) -> int:
    """The live tasks sharing an fs context (CLONE_FS)."""
    return sum(1 for p in kernel.procs.by_pid.values() if not p.exited
               for x in p.threads if x.fs is fs and x.state is not State.DEAD)


def _may_install(kernel, t, target: Namespace) -> None:
    """Each type's install checks (utsns_install, mntns_install...)."""
    proc = t.proc
    creds = proc.creds
    kind = target.kind
    if kind == "user":
        if target is proc.ns.user:
            raise KernelError(E.EINVAL)     # re-entering one's own user namespace gains nothing
        if _fs_users(kernel, t.fs) != 1:
            raise KernelError(E.EINVAL)
        if not userns.ns_capable(creds, target if isinstance(target, UserNamespace) else None, CAP_SYS_ADMIN):
            raise KernelError(E.EPERM)      # userns_install: CAP_SYS_ADMIN in the target
        return
    if kind == "mnt" and _fs_users(kernel, t.fs) != 1:
        raise KernelError(E.EINVAL)     # the fs context is shared (CLONE_FS)
    if kind == "mnt":
        need(creds, CAP_SYS_CHROOT)
    if kind == "pid" and not proc.pidns.contains(target):
        raise KernelError(E.EINVAL)     # pidns_install: only one's own namespace or one below it
    if kind == "time":
        if _live_threads(proc) > 1 or proc.mm.users > 1:
            raise KernelError(E.EUSERS)     # timens_install: !current_is_single_threaded()
        if not userns.ns_capable(creds, target.owner, CAP_SYS_ADMIN) \
                or not userns.ns_capable(creds, creds.user_ns, CAP_SYS_ADMIN):
            raise KernelError(E.EPERM)
        return
    need(creds, CAP_SYS_ADMIN)


def setns(kernel, t, targets: list[Namespace]) -> None:
    """setns(2): join every target (all checked first: all or none).  A
    time namespace becomes the process's own and its children's."""
    proc = t.proc
    if any(target.kind != "time" for target in targets):
        _single_threaded(proc)      # the time namespace's own check is Linux's (EUSERS)
    for target in targets:
        _may_install(kernel, t, target)
    ns = proc.ns._replace(**{target.kind: target for target in targets})
    if any(target.kind == "time" for target in targets):
        ns = ns._replace(time_for_children=ns.time)
    if any(target.kind == "mnt" for target in targets):
        t.fs.root = t.fs.cwd = ns.mnt.root     # mntns_install: the namespace's root
    if ns.user is not proc.ns.user:
        commit(proc, user_creds(proc.creds, ns.user))
    _switch(kernel, proc, ns)


