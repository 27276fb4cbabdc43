"""/proc/sysvipc and the IPC sysctls: /proc/sys/kernel/{shmmax, shmall,
shmmni, msgmax, msgmnb, msgmni, sem, msg_next_id, sem_next_id,
shm_next_id} and /proc/sys/fs/mqueue.

The sysctls show and set the IPC namespace (kernel/ipc.py,
kernel/mqueue.py) of the task reading or writing them, as Linux's ipc
sysctls do; the namespace honours them and the ranges are Linux's.  The
sysvipc files list every object of the reader's namespace in Linux's
columns.
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import errno as E
from umlpy.fs.procfs.base import GenFile, Spec, ints, parse_ints, ro
from umlpy.kernel import ipc as I
from umlpy.kernel import userns
from umlpy.kernel import mqueue as M
from umlpy.kernel.errors import KernelError
from umlpy.kernel.tunables import INT_MAX



_SHM_HEAD = ("       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid"
             "      atime      dtime      ctime                   rss                  swap\n")
_MSG_HEAD = ("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid"
             "      stime      rtime      ctime\n")
_SEM_HEAD = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"


def _s(ns: int) -> int:
    return ns // 10**9


def _objects(space: I.IpcSpace) -> list:
    return [space.by_index[i] for i in sorted(space.by_index)]


def shm_text(ns: I.Ipc) -> str:
    return _SHM_HEAD + "".join(
        f"{o.key:10d} {o.id:10d}  {o.mode:4o} {o.size:21d} {o.cpid:5d} {o.lpid:5d}  {o.nattch:5d} "
        f"{o.uid:5d} {o.gid:5d} {o.cuid:5d} {o.cgid:5d} {_s(o.atime):10d} {_s(o.dtime):10d} "
        f"{_s(o.ctime):10d} {o.rss_pages() * 4096:21d} {0:21d}\n" for o in _objects(ns.shm))


def msg_text(ns: I.Ipc) -> str:
    return _MSG_HEAD + "".join(
        f"{o.key:10d} {o.id:10d}  {o.mode:4o}  {o.cbytes:10d} {len(o.msgs):10d} {o.lspid:5d} "
        f"{o.lrpid:5d} {o.uid:5d} {o.gid:5d} {o.cuid:5d} {o.cgid:5d} {_s(o.stime):10d} "
        f"{_s(o.rtime):10d} {_s(o.ctime):10d}\n" for o in _objects(ns.msg))


def sem_text(ns: I.Ipc) -> str:
    return _SEM_HEAD + "".join(
        f"{o.key:10d} {o.id:10d}  {o.mode:4o} {len(o.values):10d} {o.uid:5d} {o.gid:5d} "
        f"{o.cuid:5d} {o.cgid:5d} {_s(o.otime):10d} {_s(o.ctime):10d}\n" for o in _objects(ns.sem))


def _ipc_ns(kernel, task=None):
    """The IPC namespace of the task reading or writing (the one whose
    syscall runs, for the sysctls); the init namespace's for the host."""
    task = task or kernel.sched.current
    return task.proc.ns.ipc if task is not None else kernel.init_ns.ipc


def sysvipc_files(kernel) -> Spec:
    def listing(fmt):
        return ro(lambda task: fmt(_ipc_ns(kernel, task).sysv).encode())
    return {"msg": listing(msg_text), "sem": listing(sem_text), "shm": listing(shm_text)}


def _attr(get_obj, name: str, lo: int, hi: int):
    """One integer attribute of a namespace as a sysctl."""
    return ints(lambda: [getattr(get_obj(), name)], lambda v: setattr(get_obj(), name, v[0]), lo, hi)


class _NextIdFile(GenFile):
    """/proc/sys/kernel/{msg,sem,shm}_next_id: mode 0444, writable with
    CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the user namespace owning
    the writer's IPC namespace (ipc_permissions)."""

    user_ns: Callable[[], object]     # the user namespace owning the writer's IPC namespace

    def grants(self, creds) -> bool:
        return userns.checkpoint_restore_capable(creds, self.user_ns())


def _next_id(kernel, kind: str):
    """The id the next object of a kind gets (0..INT_MAX; -1 once used)."""
    def space():
        return getattr(_ipc_ns(kernel).sysv, kind)

    def store(task, data: bytes) -> None:
        vals = parse_ints(data)
        if not vals or not 0 <= vals[0] <= INT_MAX:
            raise KernelError(E.EINVAL)
        space().next_id = vals[0]
    def make(fs, key) -> _NextIdFile:
        f = _NextIdFile(fs, key, lambda task: f"{space().next_id}\n".encode(), store, mode=0o444)
        f.user_ns = lambda: _ipc_ns(kernel).owner
        return f
    return make


def kernel_sysctls(kernel) -> Spec:
    """The SysV IPC entries of /proc/sys/kernel."""
    ns = lambda: _ipc_ns(kernel).sysv      # noqa: E731

    def set_sem(v: list[int]) -> None:
        """proc_ipc_sem_dointvec: the values are written, then a semmni
        beyond IPCMNI is put back (ERANGE, sem_check_semmni)."""
        if not 0 <= v[3] <= I.IPCMNI:
            ns().sem_ctls = v[:3] + ns().sem_ctls[3:]
            raise KernelError(E.ERANGE)
        ns().sem_ctls = v
    return {
        "msgmax": _attr(ns, "msg_ctlmax", 0, INT_MAX),
        "msgmnb": _attr(ns, "msg_ctlmnb", 0, INT_MAX),
        "msgmni": _attr(lambda: ns().msg, "limit", 0, I.IPCMNI),
        "sem": ints(lambda: ns().sem_ctls, set_sem, -INT_MAX - 1, INT_MAX),
        "shmall": _attr(ns, "shm_ctlall", 0, I.ULONG_MAX),
        "shmmax": _attr(ns, "shm_ctlmax", 0, I.ULONG_MAX),
        "shmmni": _attr(lambda: ns().shm, "limit", 0, I.IPCMNI),
        "msg_next_id": _next_id(kernel, "msg"),
        "sem_next_id": _next_id(kernel, "sem"),
        "shm_next_id": _next_id(kernel, "shm"),
    }


def mqueue_sysctls(kernel) -> Spec:
    """/proc/sys/fs/mqueue."""
    ns = lambda: _ipc_ns(kernel).mq      # noqa: E731
    return {
        "msg_default": _attr(ns, "msg_default", M.MIN_MSGMAX, M.HARD_MSGMAX),
        "msg_max": _attr(ns, "msg_max", M.MIN_MSGMAX, M.HARD_MSGMAX),
        "msgsize_default": _attr(ns, "msgsize_default", M.MIN_MSGSIZEMAX, M.HARD_MSGSIZEMAX),
        "msgsize_max": _attr(ns, "msgsize_max", M.MIN_MSGSIZEMAX, M.HARD_MSGSIZEMAX),
        "queues_max": _attr(ns, "queues_max", -INT_MAX - 1, INT_MAX),
    }
