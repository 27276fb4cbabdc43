"""mqueue: the filesystem view of POSIX message queues (mount -t mqueue).

The queues live in the IPC namespaces (kernel/mqueue.py) whether or not
this is mounted; each namespace has one superblock (Linux's
mqueue_get_tree, keyed by the mounter's IPC namespace), so a mount shows
the mounter's namespace's queues, one file per queue with Linux's status
line, wherever it is seen from.  Unlinking a file is mq_unlink, making
one is mq_open(O_CREAT) with the default attributes (mqueue_create).
"""
from __future__ import annotations

import gc
import weakref

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Dir, GenFile, SeqFile, VirtFs
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mqueue import MQueue, MqNamespace, status_line
from umlpy.vfs.file import File

MQUEUE_MAGIC = 0x19800202
GC_INTERVAL_NS = 1_000_000_000


class MqueueFs(VirtFs):
    blksize = 4096          # mqueue_fill_super: a page
    name = "mqueue"
    magic = MQUEUE_MAGIC

    def __init__(self, kernel, ipc) -> None:
        super().__init__(kernel)
        self.mq: MqNamespace = ipc.mq
        # s_fs_info: the namespace, not kept alive by a mount of it (free_ipc_ns
        # clears it; the queues' files stay, none can be made)
        self.ipc = weakref.ref(ipc)
        self._collected = -GC_INTERVAL_NS     # when namespace_gone last ran the cycle collector
        self.root = MqueueDir(self, "root", self._table, 0o1777)

    def namespace_gone(self) -> bool:
        """Whether the IPC namespace went (free_ipc_ns cleared s_fs_info).
        Its life is its Python object's (ucount's finalizers count on that
        too); without a live process in it, what still holds it may be
        reference cycles (a reaped process and its tasks) that only the
        cycle collector frees, so it runs first: at most once a second, as
        a guest may ask in a loop and a collection stalls every guest."""
        ipc = self.ipc()
        if ipc is None:
            return True
        if any(p.ns.ipc is ipc for p in self.kernel.procs.by_pid.values() if not p.exited):
            return False
        del ipc
        now = clock.monotonic_ns()
        if now - self._collected >= GC_INTERVAL_NS:
            self._collected = now
            gc.collect()
        return self.ipc() is None

    def _table(self) -> dict:
        return {name: (lambda q=q: QueueFile(self, q)) for name, q in self.mq.queues.items()}


class QueueFile(GenFile):
    """A queue's file: its status line; gone with the name (mq_unlink
    drops the dentry), opened for writing too, as Linux's
    mqueue_file_operations (which has no write: EINVAL)."""

    def __init__(self, fs: MqueueFs, q: MQueue) -> None:
        super().__init__(fs, ("mq", q.name), lambda task: status_line(q), mode=q.mode,
                         owner=lambda: (q.uid, q.gid), alive=lambda: fs.mq.queues.get(q.name) is q)

    def open_file(self, dentry, flags: int, task) -> File:
        self.check_alive()
        return QueueStatus(dentry, self, flags, task)


class QueueStatus(SeqFile):
    """An open queue file: read shows the status line; there is no write."""
    write = File.write

    def pwrite(self, task, data: bytes, off: int) -> int:
        raise KernelError(E.EINVAL)


class MqueueDir(Dir):
    def unlink(self, name: bytes) -> None:
        if self.fs.mq.unlink(name) is None:
            raise KernelError(E.ENOENT)

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0):
        """mqueue_create: a regular file is a new queue of the namespace
        (EACCES once the namespace is gone); nothing else can be made."""
        if mode & C.S_IFMT != C.S_IFREG:
            raise KernelError(E.EPERM)
        if self.fs.namespace_gone():
            raise KernelError(E.EACCES)
        proc = self.fs.kernel.sched.current.proc
        self.fs.mq.create(name, proc.creds, mode & 0o777, None, proc.rlimit(C.RLIMIT_MSGQUEUE)[0])
        return self.lookup(name)


def mqueue_instance(kernel, ipc) -> MqueueFs:
    """The superblock of ipc's queues, made at its first mount."""
    if ipc.mqueuefs is None:
        ipc.mqueuefs = MqueueFs(kernel, ipc)
    return ipc.mqueuefs
