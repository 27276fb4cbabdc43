"""Pipes and fifos: a kernel buffer between readers and writers.

The buffer is a ring of page slots (vfs/pipebuf.py).  Writes of up to
PIPE_BUF bytes are atomic; larger blocking writes go in pieces and
continue where they stopped (a signal then returns the count
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
from umlpy.vfs.fown import POLL_IN, POLL_OUT
from umlpy.vfs.inode import Filesystem, Inode
from umlpy.vfs.pipebuf import PipeBuffer

PIPE_BUF = 4096
PIPE_DEF_BUFFERS, PIPE_MIN_DEF_BUFFERS = 16, 2


def round_pipe_size(size: int) -> int:
    """A pipe size as Linux keeps it: a power of two from a page; 0 past 2^31."""
    return 0 if size > 1 << 31 else max(PIPE_BUF, 1 << (size - 1).bit_length())


def _over(pages: int, limit: int) -> bool:
    """too_many_pipe_buffers_soft/hard (a limit of 0 is none)."""
    return bool(limit) and pages > limit


def _privileged(creds) -> bool:
    """pipe_is_unprivileged_user, negated: CAP_SYS_RESOURCE or CAP_SYS_ADMIN."""
    return capable(creds, K.CAP_SYS_RESOURCE) or capable(creds, K.CAP_SYS_ADMIN)


class PipeFs(Filesystem):
    """pipefs: where the inodes of anonymous pipes live."""
    name = "pipefs"
    magic = 0x50495045


class PipeInode(Inode):
    def __init__(self, fs: PipeFs, pipe: Pipe) -> None:
        # get_pipe_inode: its creator's (fsuid, fsgid), mode 0600: the
        # owner may open it again through /proc/PID/fd (/dev/stdout)
        super().__init__(fs, C.S_IFIFO | 0o600, *pipe.owner)
        self.pipe = pipe

    def size(self) -> int:
        return 0        # pipefs keeps no size: FIONREAD tells what is queued


_pipefs: PipeFs | None = None


def anon_pipe_inode(pipe: Pipe) -> PipeInode:
    global _pipefs
    if _pipefs is None:
        _pipefs = PipeFs()
    return PipeInode(_pipefs, pipe)


class Pipe:
    def __init__(self, task) -> None:
        """alloc_pipe_info: 16 pages, charged to the creator's real uid; past
        pipe-user-pages-soft an unprivileged user's new pipes get 2."""
        creds = task.proc.creds
        self.tunables = tun = task.kernel.tunables
        self.ledger = task.kernel.pipe_pages     # pages of pipe buffers each (real) user holds
        self.user = creds.uid
        self.owner = (creds.fsuid, creds.fsgid)     # an anonymous pipe's inode's
        pages = PIPE_DEF_BUFFERS
        if pages * PIPE_BUF > tun.pipe_max_size and not capable(creds, K.CAP_SYS_RESOURCE):
            pages = tun.pipe_max_size // PIPE_BUF
        held = self.ledger.get(self.user, 0)
        if _over(held + pages, tun.pipe_user_pages_soft) and not _privileged(creds):
            pages = PIPE_MIN_DEF_BUFFERS
        if _over(held + pages, tun.pipe_user_pages_hard) and not _privileged(creds):
            raise KernelError(E.ENFILE)
        self.charged = 0       # pages on the ledger: the buffer's slots until free()
        self._account(pages)
        self.inode: PipeInode | None = None     # an anonymous pipe's one inode, both ends'
        self.async_files: list[PipeFile] = []   # ends with O_ASYNC on (fasync_readers/writers)
        self.buf = PipeBuffer(pages, task.kernel.mem_budget, self)
        self.readers = 0
        self.writers = 0
        self.r_counter = 0
        self.w_counter = 0
        self.rq = WaitQueue("pipe read")
        self.wq = WaitQueue("pipe write")
        self.open_wq = WaitQueue("fifo open")

    def _account(self, pages: int) -> None:
        """account_pipe_buffers: the user's total follows this pipe's pages."""
        self.ledger[self.user] = self.ledger.get(self.user, 0) + pages - self.charged
        self.charged = pages

    @property
    def capacity(self) -> int:
        return self.buf.slots * PIPE_BUF

    def set_size(self, creds, arg: int) -> int:
        """F_SETPIPE_SZ (pipe_set_size): a power of two of pages from one
        page; past pipe-max-size only with CAP_SYS_RESOURCE, past the soft
        limit only privileged; never below what is queued (EBUSY)."""
        size = round_pipe_size(arg & 0xFFFFFFFF)
        if not size:
            raise KernelError(E.EINVAL)
        pages = size // PIPE_BUF
        tun = self.tunables
        if pages > self.charged and size > tun.pipe_max_size and not capable(creds, K.CAP_SYS_RESOURCE):
            raise KernelError(E.EPERM)
        held = self.ledger.get(self.user, 0) + pages - self.charged
        if pages > self.charged and not _privileged(creds) and \
                (_over(held, tun.pipe_user_pages_soft) or _over(held, tun.pipe_user_pages_hard)):
            raise KernelError(E.EPERM)
        if pages < self.buf.used:
            raise KernelError(E.EBUSY)
        self._account(pages)
        self.buf.slots = pages
        self.wake_all()
        return size

    def free(self) -> None:
        """The last end went (free_pipe_info): the user gets its pages back."""
        self._account(0)
        self.buf.clear()

    def wake_all(self) -> None:
        self.rq.wake_all()
        self.wq.wake_all()

    def kill_fasync(self, readers: bool) -> None:
        """The I/O signal of the reading (POLL_IN) or writing (POLL_OUT) ends."""
        for f in list(self.async_files):
            if f.readable if readers else f.writable:
                f.kill_fasync(POLL_IN if readers else POLL_OUT)


class PipeFile(File):
    kind = "pipe"
    lazy_write = True

    has_fasync = True

    def __init__(self, pipe: Pipe, flags: int, dentry=None, inode=None) -> None:
        if inode is None:
            if pipe.inode is None:
                pipe.inode = anon_pipe_inode(pipe)
            inode = pipe.inode
        super().__init__(dentry, inode, flags)
        self.pipe = pipe
        self.hup_after: int | None = None     # f_version: no POLLHUP until the writers' count passes it
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
        was_full = p.buf.full
        data = p.buf.take(n)
        if was_full:        # pipe_read wakes writers only then (no spurious EPOLLET edges)
            p.wq.wake_all()
        p.kill_fasync(readers=False)        # but signals async writers on every read
        return data

    def unread(self, data: bytes) -> None:
        self.pipe.buf.unread(data)

    def write(self, task, data: bytes) -> int:
        if not self.writable:
            raise KernelError(E.EBADF)
        return self._write(task, data, 0)

    def fasync(self, fd: int, on: bool) -> None:
        super().fasync(fd, on)
        lst = self.pipe.async_files
        if on and self not in lst:
            lst.append(self)
        elif not on and self in lst:
            lst.remove(self)

    def _write(self, task, data: bytes, done: int) -> int:
        p = self.pipe
        while True:
            if p.readers == 0:
                task.kernel.signals.send_sig(task, S.SIGPIPE)
                if done:
                    return done
                raise KernelError(E.EPIPE)
            if done == len(data):
                return done
            # a continuing write takes new slots only: copy no more of a
            # big guest buffer (a UserBuf) than they hold
            try:
                n = p.buf.write(data[done:done + p.buf.room()] if done else data, first=not done)
            except KernelError:     # ENOMEM: no page for the next slot
                if done:
                    return done
                raise
            if n:
                done += n
                p.rq.wake_all()
                p.kill_fasync(readers=True)
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
            if p.writers == 0 and self.hup_after != p.w_counter:
                ev |= POLLHUP
        if self.writable:
            if not p.buf.full:
                ev |= POLLOUT
            if p.readers == 0:
                ev |= POLLERR
        return ev

    def poll_queues(self) -> list:
        """pipe_poll waits on the reader queue for a reading end and the
        writer queue for a writing end, so a write end's epoll item is not
        woken by reads it cannot see, nor a read end's by writes' room."""
        p = self.pipe
        return [q for q, mine in ((p.rq, self.readable), (p.wq, self.writable)) if mine]

    def ioctl(self, task, req: int, arg: int) -> int:
        if req == C.FIONREAD:
            task.mem.write(arg, len(self.pipe.buf).to_bytes(4, "little"))
            return 0
        raise KernelError(E.ENOTTY)

    def release(self) -> None:
        p = self.pipe
        if self in p.async_files:
            p.async_files.remove(self)
        if self.readable:
            p.readers -= 1
        if self.writable:
            p.writers -= 1
        p.wake_all()
        if (p.readers == 0) != (p.writers == 0):
            p.kill_fasync(readers=True)     # pipe_release: one side is gone, the other is told
            p.kill_fasync(readers=False)
        if p.readers == 0 and p.writers == 0:
            p.free()
            if not isinstance(self.inode, PipeInode):
                self.inode.pipe = None


def open_fifo(dentry, inode, flags: int, task) -> File:
    """Linux's fifo open: readers wait for a writer and writers for a reader."""
    p = inode.pipe
    if p is None:
        p = inode.pipe = Pipe(task)
    acc = flags & C.O_ACCMODE
    nonblock = bool(flags & C.O_NONBLOCK)
    if isinstance(inode, PipeInode):
        # an anonymous pipe reopened through /proc/PID/fd: no fifo waits (Linux's is_pipe)
        return PipeFile(p, flags, dentry, inode)
    if acc == C.O_WRONLY and nonblock and p.readers == 0:
        raise KernelError(E.ENXIO)
    f = PipeFile(p, flags, dentry, inode)
    if acc != C.O_WRONLY:
        p.r_counter += 1
    if acc != C.O_RDONLY:
        p.w_counter += 1
    p.open_wq.wake_all()
    p.rq.wake_all()
    if acc == C.O_RDONLY and nonblock and p.writers == 0:
        f.hup_after = p.w_counter   # fifo_open: no hang-up before a writer has come and gone
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
