"""mqueue: the filesystem view of POSIX message queues (mount -t mqueue).

The queues live in the kernel (kernel/mqueue.py) whether or not this
is mounted; a mount shows one file per queue with Linux's status line, and
unlinking a file is mq_unlink.
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Dir, GenFile, VirtFs
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mqueue import mq_of, status_line

MQUEUE_MAGIC = 0x19800202


class MqueueFs(VirtFs):
    blksize = 4096          # mqueue_fill_super: a page
    name = "mqueue"
    magic = MQUEUE_MAGIC

    def __init__(self, kernel) -> None:
        super().__init__(kernel)
        self.root = MqueueDir(self, "root", self._table, 0o1777)

    def queues(self) -> dict:
        return mq_of(self.kernel).queues

    def _table(self) -> dict:
        return {name: (lambda q=q, name=name: GenFile(self, ("mq", name), lambda task, q=q: status_line(q),
                                                      mode=q.mode, owner=lambda q=q: (q.uid, q.gid)))
                for name, q in self.queues().items()}


class MqueueDir(Dir):
    def unlink(self, name: bytes) -> None:
        if mq_of(self.fs.kernel).unlink(name) is None:
            raise KernelError(E.ENOENT)

    def create(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0):
        raise KernelError(E.EPERM if mode & C.S_IFMT != C.S_IFREG else E.EACCES)


_instances: dict[int, MqueueFs] = {}


def mqueue_instance(kernel) -> MqueueFs:
    fs = _instances.get(id(kernel))
    if fs is None or fs.kernel is not kernel:
        fs = _instances[id(kernel)] = MqueueFs(kernel)
    return fs
