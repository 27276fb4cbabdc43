"""Pipes and fifos: a kernel buffer between readers and writers.

Writes of up to PIPE_BUF bytes are atomic; larger blocking writes go in
pieces and continue where they stopped (a signal then returns the count
written so far, as Linux).  A write with no reader raises SIGPIPE and fails
with EPIPE.
"""
from __future__ import annotations

from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, File
from umlpy.vfs.inode import Filesystem, Inode

PIPE_BUF = 4096
PIPE_SIZE = 65536


class PipeFs(Filesystem):
    """pipefs: where the inodes of anonymous pipes live."""
    name = "pipefs"
    magic = 0x50495045


class PipeInode(Inode):
    def __init__(self, fs: PipeFs, pipe: Pipe) -> None:
        super().__init__(fs, C.S_IFIFO | 0o600)
        self.pipe = pipe

    def size(self) -> int:
        return len(self.pipe.buf) if self.pipe is not None else 0


_pipefs: PipeFs | None = None


def anon_pipe_inode(pipe: Pipe) -> PipeInode:
    global _pipefs
    if _pipefs is None:
        _pipefs = PipeFs()
    return PipeInode(_pipefs, pipe)


class Pipe:
    # set by new_pipe: whose pages these are and how many (pipe->user, nr_accounted)
    limits: PipeLimits | None = None
    user = 0
    accounted = 0

    def __init__(self) -> None:
        self.buf = bytearray()
        self.capacity = PIPE_SIZE
        self.readers = 0
        self.writers = 0
        self.r_counter = 0
        self.w_counter = 0
        self.rq = WaitQueue("pipe read")
        self.wq = WaitQueue("pipe write")
        self.open_wq = WaitQueue("fifo open")

    def wake_all(self) -> None:
        self.rq.wake_all()
        self.wq.wake_all()


class PipeFile(File):
    kind = "pipe"
    lazy_write = True

    def __init__(self, pipe: Pipe, flags: int, dentry=None, inode=None) -> None:
        super().__init__(dentry, inode if inode is not None else anon_pipe_inode(pipe), flags)
        self.pipe = pipe
        if self.readable:
            pipe.readers += 1
        if self.writable:
            pipe.writers += 1

    @property
    def nowait_ok(self) -> bool:
        """Anonymous pipes take RWF_NOWAIT; fifos opened by name do not."""
        return isinstance(self.inode, PipeInode)

    def read(self, task, n: int) -> bytes:
        p = self.pipe
        if not self.readable:
            raise KernelError(E.EBADF)
        if n == 0:
            return b""
        if not p.buf:
            if p.writers == 0:
                return b""
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(p.rq)
        data = bytes(p.buf[:n])
        del p.buf[:n]
        p.wq.wake_all()
        return data

    def unread(self, data: bytes) -> None:
        self.pipe.buf[:0] = data

    def write(self, task, data: bytes) -> int:
        if not self.writable:
            raise KernelError(E.EBADF)
        return self._write(task, data, 0)

    def _write(self, task, data: bytes, done: int) -> int:
        p = self.pipe
        while True:
            if p.readers == 0:
                task.kernel.signals.send_sig(task, S.SIGPIPE)
                if done:
                    return done
                raise KernelError(E.EPIPE)
            left = len(data) - done
            if left == 0:
                return done
            space = p.capacity - len(p.buf)
            if space >= left or (space > 0 and len(data) > PIPE_BUF):
                chunk = min(space, left)
                p.buf += data[done:done + chunk]
                done += chunk
                p.rq.wake_all()
                continue
            if self.nonblock:
                if done:
                    return done
                raise KernelError(E.EAGAIN)
            d = done
            raise Block(p.wq, retry=lambda: self._write(task, data, d),
                        interrupted_result=(d or None))

    def poll(self) -> int:
        p = self.pipe
        ev = 0
        if self.readable:
            if p.buf:
                ev |= POLLIN
            if p.writers == 0:
                ev |= POLLHUP
        if self.writable:
            if p.capacity - len(p.buf) >= PIPE_BUF:   # a free page, as Linux's slots
                ev |= POLLOUT
            if p.readers == 0:
                ev |= POLLERR
        return ev

    def poll_queues(self) -> list:
        return [self.pipe.rq, self.pipe.wq]

    def ioctl(self, task, req: int, arg: int) -> int:
        FIONREAD = 0x541B
        if req == FIONREAD:
            task.mem.write(arg, len(self.pipe.buf).to_bytes(4, "little"))
            return 0
        raise KernelError(E.ENOTTY)

    def release(self) -> None:
        p = self.pipe
        if self.readable:
            p.readers -= 1
        if self.writable:
            p.writers -= 1
        p.wake_all()
        if p.readers == 0 and p.writers == 0 and not isinstance(self.inode, PipeInode):
            self.inode.pipe = None
        if p.readers == 0 and p.writers == 0 and p.limits is not None:
            p.limits.account(p, 0)      # free_pipe_info
            p.limits = None


def open_fifo(dentry, inode, flags: int, task) -> File:
    """Linux's fifo open: readers wait for a writer and writers for a reader."""
    p = inode.pipe
    if p is None:
        p = inode.pipe = new_pipe(task, E.ENOMEM)
    acc = flags & C.O_ACCMODE
    nonblock = bool(flags & C.O_NONBLOCK)
    if isinstance(inode, PipeInode):
        # an anonymous pipe reopened through /proc/PID/fd: no fifo waits (Linux's is_pipe)
        return PipeFile(p, flags, dentry, inode)
    if acc == C.O_WRONLY and nonblock and p.readers == 0:
        raise KernelError(E.ENXIO)
    f = PipeFile(p, flags, dentry, inode)
    if acc == C.O_RDONLY:
        p.r_counter += 1
    elif acc == C.O_WRONLY:
        p.w_counter += 1
    p.open_wq.wake_all()
    p.rq.wake_all()
    if nonblock or acc == C.O_RDWR:
        return f
    if acc == C.O_RDONLY and p.writers == 0:
        start, peer = p.w_counter, "w_counter"
    elif acc == C.O_WRONLY and p.readers == 0:
        start, peer = p.r_counter, "r_counter"
    else:
        return f

    def wait():
        if getattr(p, peer) != start:
            return f
        raise Block(p.open_wq, retry=wait, on_interrupt=lambda: f.put_unused())
    return wait()


def _put_unused(self) -> None:
    self.refs = 1
    self.put()


PipeFile.put_unused = _put_unused


# -- pipe sizes: F_SETPIPE_SZ, fs.pipe-max-size, fs.pipe-user-pages-soft/hard ----------

PAGE_SIZE = 4096
PIPE_DEF_BUFFERS = 16           # a new pipe's pages (PIPE_SIZE)
PIPE_MIN_DEF_BUFFERS = 2        # what a user past the soft limit gets


class PipeLimits:
    """The pipe sysctls and each user's pages in pipes (Linux's
    user->pipe_bufs): a user without CAP_SYS_RESOURCE or CAP_SYS_ADMIN gets
    small pipes past the soft limit and none past the hard one (0: none)."""

    def __init__(self) -> None:
        self.max_size = 1 << 20
        self.user_pages_soft = PIPE_DEF_BUFFERS * 1024
        self.user_pages_hard = 0
        self.pages: dict[int, int] = {}

    def account(self, p: Pipe, pages: int) -> int:
        """account_pipe_buffers: p's user holds pages for it now; the user's total."""
        total = self.pages.get(p.user, 0) - p.accounted + pages
        p.accounted = pages
        if total:
            self.pages[p.user] = total
        else:
            self.pages.pop(p.user, None)
        return total

    def too_many(self, total: int) -> bool:
        """too_many_pipe_buffers_soft || _hard."""
        return any(limit and total > limit for limit in (self.user_pages_soft, self.user_pages_hard))


def _unprivileged(creds) -> bool:
    return not capable(creds, K.CAP_SYS_RESOURCE) and not capable(creds, K.CAP_SYS_ADMIN)


def new_pipe(task, errno: int = E.ENFILE) -> Pipe:
    """alloc_pipe_info: PIPE_DEF_BUFFERS pages, fewer when pipe-max-size is
    smaller (unless CAP_SYS_RESOURCE), two past the user's soft limit, and
    errno (ENFILE for pipe(2), ENOMEM for a fifo) past the hard one."""
    limits: PipeLimits = task.kernel.pipes
    creds = task.proc.creds
    p = Pipe()
    p.limits, p.user = limits, creds.uid
    pages = PIPE_DEF_BUFFERS
    if pages * PAGE_SIZE > limits.max_size and not capable(creds, K.CAP_SYS_RESOURCE):
        pages = limits.max_size // PAGE_SIZE
    total = limits.account(p, pages)
    unprivileged = _unprivileged(creds)
    if unprivileged and limits.user_pages_soft and total > limits.user_pages_soft:
        pages = PIPE_MIN_DEF_BUFFERS
        total = limits.account(p, pages)
    if unprivileged and limits.user_pages_hard and total > limits.user_pages_hard:
        limits.account(p, 0)
        raise KernelError(errno)
    p.capacity = pages * PAGE_SIZE
    return p


def round_pipe_size(size: int) -> int:
    """A size as whole pages, a power of two of them; 0 past 2 GiB."""
    if size > 1 << 31:
        return 0
    return PAGE_SIZE if size < PAGE_SIZE else 1 << (size - 1).bit_length()


def pipe_fcntl(task, f: File, cmd: int, arg: int) -> int:
    """F_GETPIPE_SZ and F_SETPIPE_SZ (pipe_fcntl): EBADF on anything but a
    pipe; a new size is EINVAL past 2 GiB, EPERM growing past pipe-max-size
    without CAP_SYS_RESOURCE or past the user's limits, EBUSY below what the
    pipe holds (in pages)."""
    if not isinstance(f, PipeFile):
        raise KernelError(E.EBADF)
    p = f.pipe
    if cmd == C.F_GETPIPE_SZ:
        return p.capacity
    size = round_pipe_size(arg & 0xFFFFFFFF)
    pages = size // PAGE_SIZE
    if not pages:
        raise KernelError(E.EINVAL)
    creds = task.proc.creds
    limits = p.limits
    grows = size > p.capacity
    if grows and size > limits.max_size and not capable(creds, K.CAP_SYS_RESOURCE):
        raise KernelError(E.EPERM)
    was = p.accounted
    total = limits.account(p, pages)
    if grows and limits.too_many(total) and _unprivileged(creds):
        limits.account(p, was)
        raise KernelError(E.EPERM)
    if pages < -(-len(p.buf) // PAGE_SIZE):
        limits.account(p, was)
        raise KernelError(E.EBUSY)
    p.capacity = size
    p.wq.wake_all()
    return size
