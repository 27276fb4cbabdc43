"""eventfd: a counter to wait on, in the kernel."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.table import syscall
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, POLLOUT, File

EFD_SEMAPHORE = 1
MAX = 0xFFFFFFFFFFFFFFFE
ULLONG_MAX = MAX + 1


class EventFdFile(File):
    kind = "[eventfd]"

    def __init__(self, value: int, flags: int, semaphore: bool) -> None:
        super().__init__(None, anon_inode(), flags)
        self.count = value
        self.semaphore = semaphore
        self.wq = WaitQueue("eventfd")

    def read(self, task, n: int) -> bytes:
        if n < 8:
            raise KernelError(E.EINVAL)
        if not self.count:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        v = 1 if self.semaphore else self.count
        self.count -= v
        self.wq.wake_all()
        return struct.pack("<Q", v)

    def write(self, task, data: bytes) -> int:
        if len(data) < 8:
            raise KernelError(E.EINVAL)
        (v,) = struct.unpack("<Q", data[:8])
        if v > MAX:
            raise KernelError(E.EINVAL)
        if self.count + v > MAX:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        self.count += v
        if v:
            self.wq.wake_all()
        return 8

    def signal(self, n: int) -> None:
        """eventfd_signal: the kernel adds n (saturating at ULLONG_MAX),
        readers wake (io_uring's registered eventfd)."""
        self.count = min(self.count + n, ULLONG_MAX)
        self.wq.wake_all()

    def poll(self) -> int:
        return (POLLIN if self.count else 0) | (POLLOUT if self.count < MAX else 0)

    def poll_queues(self) -> list:
        return [self.wq]


def do_eventfd(t, value: int, flags: int) -> int:
    if flags & ~(C.O_CLOEXEC | C.O_NONBLOCK | EFD_SEMAPHORE):
        raise KernelError(E.EINVAL)
    f = EventFdFile(value & 0xFFFFFFFF, C.O_RDWR | (flags & C.O_NONBLOCK), bool(flags & EFD_SEMAPHORE))
    return t.files.install(f, bool(flags & C.O_CLOEXEC))


@syscall("eventfd")
def sys_eventfd(t, value, *_):
    return do_eventfd(t, value, 0)


@syscall("eventfd2")
def sys_eventfd2(t, value, flags, *_):
    return do_eventfd(t, value, flags)
