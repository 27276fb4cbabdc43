"""mqueue: the filesystem view of POSIX message queues (mount -t mqueue).

The queues live in the kernel (syscalls/sys_mqueue.py) whether or not this
is mounted; a mount shows one file per queue with Linux's status line, and
unlinking a file is mq_unlink.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Dir, GenFile, VirtFs
from umlpy.kernel.errors import KernelError

MQUEUE_MAGIC = 0x19800202


class MqueueFs(VirtFs):
    name = "mqueue"
    magic = MQUEUE_MAGIC

    def __init__(self, kernel) -> None:
        super().__init__(kernel)
        self.root = MqueueDir(self, "root", self._table, 0o1777)

    def queues(self) -> dict:
        """The init IPC namespace's queues (a mount does not follow the
        mounter's namespace here)."""
        return self.kernel.init_ns.ipc.mqueues

    def _table(self) -> dict:
        def status(q):
            pid = q.notify[1].pid if q.notify else 0
            signo = q.notify[2] if q.notify else 0
            return (f"QSIZE:{sum(len(m[2]) for m in q.msgs):<10} NOTIFY:{0:<5} "
                    f"SIGNO:{signo:<5} NOTIFY_PID:{pid:<6}\n").encode()
        return {name: (lambda q=q, name=name: GenFile(self, ("mq", name), lambda task, q=q: status(q),
                                                      mode=q.mode, owner=lambda q=q: (q.uid, q.gid)))
                for name, q in self.queues().items()}


class MqueueDir(Dir):
    def unlink(self, name: bytes) -> None:
        q = self.fs.queues().pop(name, None)
        if q is None:
            raise KernelError(E.ENOENT)
        q.unlinked = True

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0):
        raise KernelError(E.EPERM if mode & C.S_IFMT != C.S_IFREG else E.EACCES)


_instances: dict[int, MqueueFs] = {}


def mqueue_instance(kernel) -> MqueueFs:
    fs = _instances.get(id(kernel))
    if fs is None or fs.kernel is not kernel:
        fs = _instances[id(kernel)] = MqueueFs(kernel)
    return fs
