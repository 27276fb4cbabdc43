"""Linux's native AIO: io_setup, io_submit, io_getevents, io_pgetevents,
io_cancel, io_destroy (libaio's calls, which MariaDB, fio and qemu make).

A context's completion ring is kernel pages the process maps
(kernel/sharedpages.py) at the address that is the context's id, in
Linux's layout (struct aio_ring, then the io_events), so that libaio
reads events without a syscall as on Linux; the head the process writes
there is taken modulo the ring's size before use, as Linux does.

A request runs at submission, on the submitter's behalf, through the code
of the call it stands for (rw_vecs for the reads and writes, the file's
fsync), and its io_event carries that call's result: regular files and
block devices complete at once, as Linux's buffered AIO does.  A request
that must wait (IOCB_CMD_POLL; a read or write of a pipe, a socket, a
tty) waits parked on the file's queues and completes when it can; Linux
makes io_submit itself wait for those reads and writes, here io_submit
returns at once.  Only a waiting POLL can be cancelled (io_cancel), as
Linux's only cancel function is poll's.  The contexts belong to the
address space: a fork's child has none, an exec or the last exit ends
them (Mm.release).
"""
from __future__ import annotations

import struct

from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.parked import Parked
from umlpy.kernel.sharedpages import SharedPages
from umlpy.kernel.task import State
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.sys_eventfd import EventFdFile
from umlpy.syscalls.sys_mmap import _fail, do_mmap, sys_munmap
from umlpy.syscalls.sys_poll import file_revents, read_sigmask, ready_or_block, timespec_end_time, wait_under
from umlpy.syscalls.sys_read_write import RWF_SUPPORTED, rw_vecs
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import MAX_RW_COUNT, access_ok, read_iovecs, result_or_errno, s32, s64, u32
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLERR, POLLHUP, File

AIO_RING_MAGIC = 0xA10A10A1
RING = struct.Struct("<8I")     # id, nr, head, tail, magic, compat_features, incompat_features, header_length
EVENT = struct.Struct("<QQqq")  # struct io_event: data, obj, res, res2
IOCB = struct.Struct("<QIiHhIQQqQII")   # struct iocb (64 bytes)
HEAD_OFF, TAIL_OFF = 8, 12
KIOCB_KEY = 0
(IOCB_CMD_PREAD, IOCB_CMD_PWRITE, IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC,
 _IOCB_CMD_PREADX, IOCB_CMD_POLL, _IOCB_CMD_NOOP, IOCB_CMD_PREADV, IOCB_CMD_PWRITEV) = range(9)
IOCB_FLAG_RESFD = 1
AIO_MAX_NR = 0x10000            # fs.aio-max-nr's default
MAX_NR_EVENTS = 0x10000000 // EVENT.size
POSSIBLE_CPUS = 1               # the guest's (ioctx_alloc sizes rings by them)


class AioRingFile(File):
    """The anonymous file behind a ring's mapping ("[aio]")."""
    kind = "[aio]"
    noexec_fs = True        # aio's pseudo-filesystem is mounted noexec

    def __init__(self, pages: SharedPages) -> None:
        super().__init__(None, anon_inode(), C.O_RDWR)
        self.pages = pages

    def mmap_pages(self, off: int, size: int) -> SharedPages:
        return self.pages


class AioContext:
    """One io_setup's context: its ring, the requests still waiting (by
    their iocb's address) and the tasks in io_getevents."""

    def __init__(self, kernel, ident: int, max_reqs: int, nr_events: int, pages: SharedPages,
                 addr: int) -> None:
        self.kernel = kernel
        self.ident, self.max_reqs, self.nr_events = ident, max_reqs, nr_events
        self.pages, self.addr = pages, addr
        self.tail = 0
        self.waiting: dict[int, AioRequest] = {}
        self.wq = WaitQueue("aio")
        self.dead = False
        pages.write(0, RING.pack(ident, nr_events, 0, 0, AIO_RING_MAGIC, 1, 0, RING.size))
        kernel.aio_nr += max_reqs

    def head(self) -> int:
        """The ring's head as the process left it, made an index (untrusted)."""
        return self.pages.u32(HEAD_OFF) % self.nr_events

    def room(self) -> int:
        """Requests that may still be submitted (reqs_available): the ring
        keeps one slot free, and every waiting request holds one."""
        unread = (self.tail - self.head()) % self.nr_events
        return self.nr_events - 1 - unread - len(self.waiting)

    def post(self, obj: int, data: int, res: int, eventfd: EventFdFile | None) -> None:
        """aio_complete: the event at the tail, the tail on, the eventfd
        signalled and io_getevents woken."""
        self.pages.write(RING.size + self.tail * EVENT.size, EVENT.pack(data, obj, res, 0))
        self.tail = (self.tail + 1) % self.nr_events
        self.pages.put_u32(TAIL_OFF, self.tail)
        if eventfd is not None:
            eventfd.signal(1)
        self.wq.wake_all()

    def take(self, limit: int) -> list[bytes]:
        """Up to limit events from the head, which moves past them."""
        head, out = self.head(), []
        while head != self.tail and len(out) < limit:
            out.append(self.pages.read(RING.size + head * EVENT.size, EVENT.size))
            head = (head + 1) % self.nr_events
        if out:
            self.pages.put_u32(HEAD_OFF, head)
        return out

    def kill(self) -> None:
        """kill_ioctx: waiting requests dropped, io_getevents woken (EINVAL)."""
        if self.dead:
            return
        self.dead = True
        for req in list(self.waiting.values()):
            req.drop()
        self.kernel.aio_nr -= self.max_reqs
        self.wq.wake_all()


class AioRequest(Parked):
    """A request, run at once or, if it has to wait, parked until it can."""

    def __init__(self, ctx: AioContext, t, obj: int, data: int, eventfd, attempt, poll: bool) -> None:
        super().__init__(t)
        self.ctx, self.obj, self.data, self.eventfd = ctx, obj, data, eventfd
        self.attempt, self.poll = attempt, poll

    def reissue(self) -> int:
        return self.attempt()

    def finish(self, attempt) -> None:
        if self.ctx.dead:
            return
        if self.t.state is State.DEAD:
            self.drop()         # its submitter went: nobody's table to finish in
            return
        try:
            res = result_or_errno(attempt)
        except Block as b:
            if b.retry is not None:
                self.attempt = b.retry      # what a partial transfer has left to do
            self.ctx.waiting[self.obj] = self
            self.arm(b)
            return
        self.ctx.waiting.pop(self.obj, None)
        self.ctx.post(self.obj, self.data, res, self.eventfd)

    def drop(self) -> None:
        self.disarm()
        self.ctx.waiting.pop(self.obj, None)

    def cancel(self) -> None:
        """aio_poll_cancel: the poll completes with what is ready now
        (nothing, unless a wake-up is on its way)."""
        self.drop()
        try:
            res = result_or_errno(self.attempt)
        except Block:
            res = 0
        self.ctx.post(self.obj, self.data, res, self.eventfd)


def _lookup(t, ctx_id: int) -> AioContext:
    """lookup_ioctx: a live context of the caller's address space, found
    as Linux finds it, by the id in the ring at ctx_id: a ring unmapped
    (or an id overwritten) makes the context unreachable (EINVAL)."""
    ctx = t.proc.mm.aio.get(ctx_id)
    try:
        (ident,) = struct.unpack("<I", t.mem.read(ctx_id, 4))
    except GuestFault:
        ident = None
    if ctx is None or ctx.dead or ident != ctx.ident:
        raise KernelError(E.EINVAL)
    return ctx


@syscall("io_setup")
def sys_io_setup(t, nr_events, ctxp, *_):
    (current,) = struct.unpack("<Q", t.mem.read(ctxp, 8))
    max_reqs = u32(nr_events)
    if current or max_reqs == 0:
        raise KernelError(E.EINVAL)
    nr = max(max_reqs, POSSIBLE_CPUS * 4) * 2
    if nr > MAX_NR_EVENTS:
        raise KernelError(E.EINVAL)
    k = t.kernel
    if max_reqs > k.tunables.aio_max_nr or k.aio_nr + max_reqs > k.tunables.aio_max_nr:
        raise KernelError(E.EAGAIN)
    size = C.page_up(RING.size + EVENT.size * nr)
    pages = SharedPages("[aio]", size, b"/[aio] (deleted)")
    addr = do_mmap(t, 0, size, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, AioRingFile(pages), 0)
    if _fail(addr):
        raise KernelError(-addr)
    mm = t.proc.mm
    ident, mm.aio_next = mm.aio_next, (mm.aio_next + 1) & 0xFFFFFFFF
    ctx = mm.aio[addr] = AioContext(k, ident, max_reqs, (size - RING.size) // EVENT.size, pages, addr)
    try:
        t.mem.write(ctxp, struct.pack("<Q", addr))
    except GuestFault:
        _destroy(t, ctx)
        raise
    return 0


def _destroy(t, ctx: AioContext) -> None:
    """kill_ioctx: the context ends and its ring is unmapped (if the
    process has not unmapped it already)."""
    ctx.kill()
    del t.proc.mm.aio[ctx.addr]
    at = t.proc.mm.files.overlapping(ctx.addr, ctx.addr + 1)
    if any(getattr(fm, "obj", None) is ctx.pages for _s, _e, fm in at):
        sys_munmap(t, ctx.addr, ctx.pages.size)


@syscall("io_destroy")
def sys_io_destroy(t, ctx_id, *_):
    _destroy(t, _lookup(t, ctx_id))
    return 0


@syscall("io_submit", status=PARTIAL, note="PREAD, PWRITE, PREADV, PWRITEV, FSYNC, FDSYNC, POLL; a read or write "
         "that must wait (a pipe, a socket) completes later, where Linux waits in io_submit")
def sys_io_submit(t, ctx_id, nr, iocbpp, *_):
    nr = s64(nr)
    if nr < 0:
        raise KernelError(E.EINVAL)
    ctx = _lookup(t, ctx_id)
    done = 0
    for i in range(min(nr, ctx.nr_events)):
        try:
            (obj,) = struct.unpack("<Q", t.mem.read(iocbpp + 8 * i, 8))
            _submit_one(t, ctx, obj)
        except (KernelError, GuestFault):
            if done:
                return done
            raise
        done += 1
    return done


def _submit_one(t, ctx: AioContext, obj: int) -> None:
    """io_submit_one: the iocb's checks (errors for io_submit), then the
    request, whose own result goes into its io_event."""
    (data, _key, rw_flags, opcode, _prio, fd, buf, nbytes, off, reserved2, flags,
     resfd) = IOCB.unpack(t.mem.read(obj, IOCB.size))
    if reserved2 or nbytes >= 1 << 63:
        raise KernelError(E.EINVAL)
    if ctx.room() <= 0:
        raise KernelError(E.EAGAIN)
    eventfd = None
    if flags & IOCB_FLAG_RESFD:
        eventfd = t.files.get(s32(resfd))
        if not isinstance(eventfd, EventFdFile):
            raise KernelError(E.EINVAL)
    t.mem.write(obj + 8, struct.pack("<I", KIOCB_KEY))
    f = t.files.get(s32(fd))
    attempt = _prepare(t, f, opcode, rw_flags, buf, nbytes, s64(off))
    AioRequest(ctx, t, obj, data, eventfd, attempt, opcode == IOCB_CMD_POLL).finish(attempt)


def _prepare(t, f, opcode: int, rw_flags: int, buf: int, nbytes: int, off: int):
    """The request's work as a callable, after the checks Linux makes at
    submission (aio_read/aio_write, aio_fsync, aio_poll)."""
    if opcode in (IOCB_CMD_PREAD, IOCB_CMD_PWRITE, IOCB_CMD_PREADV, IOCB_CMD_PWRITEV):
        write = opcode in (IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV)
        if rw_flags & ~RWF_SUPPORTED:
            raise KernelError(E.EOPNOTSUPP)
        if not (f.writable if write else f.readable):
            raise KernelError(E.EBADF)
        if opcode in (IOCB_CMD_PREADV, IOCB_CMD_PWRITEV):
            vecs = read_iovecs(t, buf, nbytes)
        else:
            if not access_ok(buf, min(nbytes, MAX_RW_COUNT)):
                raise KernelError(E.EFAULT)
            vecs = [(buf, min(nbytes, MAX_RW_COUNT))]
        if off < 0:
            raise KernelError(E.EINVAL)         # rw_verify_area
        pos = off if f.positional else None     # a stream has no position to read at
        return lambda: rw_vecs(t, f, vecs, pos, rw_flags, write)
    if opcode in (IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC):
        if buf or off or nbytes or rw_flags or not f.has_fsync:
            raise KernelError(E.EINVAL)
        return lambda: f.fsync() or 0
    if opcode == IOCB_CMD_POLL:
        if buf > 0xFFFF or off or nbytes or rw_flags:
            raise KernelError(E.EINVAL)
        events = buf | POLLERR | POLLHUP

        def woken() -> int:
            """After a wait, the whole of what the wake says (aio_poll_wake's
            key), once it includes one of the events asked."""
            if file_revents(f, events):
                return file_revents(f, 0xFFFF)
            raise Block(*f.poll_queues(), retry=woken)
        return lambda: ready_or_block(f, events, retry=woken)
    raise KernelError(E.EINVAL)


def _getevents(t, ctx_id: int, min_nr: int, nr: int, events: int, timeout: int, mask: int | None) -> int:
    """read_events: events copied out as they come until min_nr, or the
    timeout (NULL: none; zero: no wait); a signal ends the wait with what
    was copied, EINTR if nothing (not restarted)."""
    end = timespec_end_time(t, timeout) if timeout else None
    ctx = _lookup(t, ctx_id)
    min_nr, nr = s64(min_nr), s64(nr)
    if not 0 <= min_nr <= nr:
        raise KernelError(E.EINVAL)
    return wait_under(t, mask, lambda: _collect(t, ctx, events, min_nr, nr, end))


def _collect(t, ctx: AioContext, events: int, min_nr: int, nr: int, end: int | None) -> int:
    got = 0

    def attempt() -> int:
        nonlocal got
        if ctx.dead:
            raise KernelError(E.EINVAL)
        taken = ctx.take(nr - got)
        if taken:
            t.mem.write(events + got * EVENT.size, b"".join(taken))
            got += len(taken)
        if got >= min_nr or end == 0:
            return got
        raise Block(ctx.wq, deadline=end, retry=attempt, on_timeout=lambda: got, restart=E.EINTR,
                    interrupted_result=got or None)
    return attempt()


@syscall("io_getevents")
def sys_io_getevents(t, ctx_id, min_nr, nr, events, timeout, *_):
    return _getevents(t, ctx_id, min_nr, nr, events, timeout, None)


@syscall("io_pgetevents")
def sys_io_pgetevents(t, ctx_id, min_nr, nr, events, timeout, usig):
    mask = None
    if usig:
        sigmask, size = struct.unpack("<QQ", t.mem.read(usig, 16))   # struct __aio_sigset
        mask = read_sigmask(t, sigmask, size)
    return _getevents(t, ctx_id, min_nr, nr, events, timeout, mask)


@syscall("io_cancel")
def sys_io_cancel(t, ctx_id, iocb, result, *_):
    (key,) = struct.unpack("<I", t.mem.read(iocb + 8, 4))
    if key != KIOCB_KEY:
        raise KernelError(E.EINVAL)
    ctx = _lookup(t, ctx_id)
    req = ctx.waiting.get(iocb)
    if req is None or not req.poll:
        raise KernelError(E.EINVAL)
    req.cancel()
    raise KernelError(E.EINPROGRESS)    # the event comes through the ring
