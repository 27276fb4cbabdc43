"""splice, tee and vmsplice: moving data into and out of pipes.

umlpy copies where Linux moves page references (SPLICE_F_MOVE and
SPLICE_F_GIFT change nothing but speed there); what each call checks, in
which order, and when it waits follow Linux's fs/splice.c.  Which files
take part says File.splice_read / File.splice_write (Linux's
f_op->splice_read / splice_write): a file without them is EINVAL.
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.uaccess import COPY_CHUNK, UserBuf
from umlpy.syscalls.sys_read_write import modified, settle_source, write_settled
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import MAX_RW_COUNT, read_iovecs, s32
from umlpy.vfs.file import MAX_LFS_FILESIZE
from umlpy.vfs.pipe import PipeFile

SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 1, 2, 4, 8
SPLICE_F_ALL = 0xF


def _pipe_of(f) -> PipeFile | None:
    """get_pipe_info: the file as a pipe end, if it is one."""
    return f if isinstance(f, PipeFile) else None


def _space(p, t, nonblock: bool) -> int:
    """wait_for_space: the room in pipe p, once there is some; no reader is
    SIGPIPE and EPIPE, a full pipe EAGAIN or a wait."""
    if not p.readers:
        t.kernel.signals.send_task(t, S.SIGPIPE)
        raise KernelError(E.EPIPE)
    room = p.buf.room()
    if room > 0:
        return room
    if nonblock:
        raise KernelError(E.EAGAIN)
    raise Block(p.wq)


def _data_waiting(p, nonblock: bool) -> bool:
    """splice_from_pipe_next: False when the pipe is empty with no writer
    (end of data), EAGAIN or a wait when it is empty with one."""
    if p.buf:
        return True
    if not p.writers:
        return False
    if nonblock:
        raise KernelError(E.EAGAIN)
    raise Block(p.rq)


def _offset_arg(t, addr: int) -> int | None:
    """A loff_t the caller passed by address (EFAULT if unreadable)."""
    if not addr:
        return None
    return struct.unpack("<q", t.mem.read(addr, 8))[0]


def _verify_area(off: int, n: int) -> None:
    """rw_verify_area for a splice: a negative offset, or a range passing
    the largest loff_t, is EINVAL."""
    if off < 0 or off + n > MAX_LFS_FILESIZE:
        raise KernelError(E.EINVAL)


@syscall("splice", status=PARTIAL, note="copies through the kernel (no page moves)")
def sys_splice(t, fd_in, offp_in, fd_out, offp_out, n, flags):
    if not n:
        return 0
    flags &= 0xFFFFFFFF
    if flags & ~SPLICE_F_ALL:
        raise KernelError(E.EINVAL)
    fdt = t.files
    src = fdt.get(s32(fd_in))
    dst = fdt.get(s32(fd_out))
    ipipe, opipe = _pipe_of(src), _pipe_of(dst)
    if (ipipe and offp_in) or (opipe and offp_out):
        raise KernelError(E.ESPIPE)
    off_out, off_in = _offset_arg(t, offp_out), _offset_arg(t, offp_in)
    if not src.readable or not dst.writable:
        raise KernelError(E.EBADF)
    n = min(n, COPY_CHUNK)
    if ipipe and opipe:
        if ipipe.pipe is opipe.pipe:
            raise KernelError(E.EINVAL)
        nonblock = bool(flags & SPLICE_F_NONBLOCK or (src.flags | dst.flags) & C.O_NONBLOCK)
        if not _data_waiting(ipipe.pipe, nonblock):
            return 0
        n = min(n, _space(opipe.pipe, t, nonblock))
        return _from_pipe(t, ipipe, dst, n, None, 0)
    if ipipe:
        if off_out is not None and not dst.positional:
            raise KernelError(E.EINVAL)
        if dst.flags & C.O_APPEND:
            raise KernelError(E.EINVAL)
        _verify_area(dst.pos if off_out is None else off_out, n)
        if not dst.splice_write:
            raise KernelError(E.EINVAL)
        if not _data_waiting(ipipe.pipe, bool(flags & SPLICE_F_NONBLOCK or src.nonblock)):
            return 0
        return _from_pipe(t, ipipe, dst, n, off_out, offp_out)
    if opipe:
        if off_in is not None and not src.positional:
            raise KernelError(E.EINVAL)
        n = min(n, _space(opipe.pipe, t, bool(flags & SPLICE_F_NONBLOCK or dst.nonblock)))
        _verify_area(src.pos if off_in is None else off_in, n)
        if not src.splice_read:
            raise KernelError(E.EINVAL)
        n = min(n, MAX_RW_COUNT)
        data = src.read(t, n) if off_in is None else src.pread(t, n, off_in)
        if not data:
            return 0
        # there are slots for all of it (no wait), but their pages may not
        # fit in RAM (ENOMEM, or less written): the source keeps the rest
        return modified(dst, write_settled(t, dst, data,
                                           lambda k: _give_back(t, src, data, k, offp_in, off_in)))
    raise KernelError(E.EINVAL)


def _give_back(t, src, data: bytes, k: int, offp: int, off: int | None) -> int:
    """k bytes of data read from src went into a pipe: src's offset moves by
    k (a file read at its position gets the rest back; a socket's bytes
    cannot go back, as Linux's pages once taken)."""
    if off is None and k < len(data) and not src.positional:
        return k
    return settle_source(t, src, data, k, offp, off)


def _from_pipe(t, ipipe: PipeFile, dst, n: int, off: int | None, offp: int) -> int:
    """Up to n bytes from the pipe to dst (at off, stored back at offp, or
    at dst's position); what dst does not take goes back to the pipe."""
    data = ipipe.read(t, n)
    if off is not None:
        k = dst.pwrite(t, data, off)    # a file: no waiting
        t.mem.write(offp, struct.pack("<q", off + k))
        return modified(dst, settle_source(t, ipipe, data, k, 0, None))

    def settle(k: int) -> int:
        return modified(dst, settle_source(t, ipipe, data, k, 0, None))
    return write_settled(t, dst, data, settle)


@syscall("tee")
def sys_tee(t, fd_in, fd_out, n, flags, *_):
    """The bytes waiting in one pipe copied into another, left in the first."""
    if flags & 0xFFFFFFFF & ~SPLICE_F_ALL:
        raise KernelError(E.EINVAL)
    if not n:
        return 0
    src, dst = t.files.get(s32(fd_in)), t.files.get(s32(fd_out))
    if not src.readable or not dst.writable:
        raise KernelError(E.EBADF)
    ipipe, opipe = _pipe_of(src), _pipe_of(dst)
    if not (ipipe and opipe) or ipipe.pipe is opipe.pipe:
        raise KernelError(E.EINVAL)
    nonblock = bool(flags & SPLICE_F_NONBLOCK or (src.flags | dst.flags) & C.O_NONBLOCK)
    if not _data_waiting(ipipe.pipe, nonblock):
        return 0
    room = _space(opipe.pipe, t, nonblock)
    return opipe.write(t, ipipe.pipe.buf.peek(min(n, room)))


@syscall("vmsplice", status=PARTIAL, note="copies (SPLICE_F_GIFT gives nothing)")
def sys_vmsplice(t, fd, iov, cnt, flags, *_):
    flags &= 0xFFFFFFFF
    if flags & ~SPLICE_F_ALL:
        raise KernelError(E.EINVAL)
    f = t.files.get(s32(fd))
    if not (f.writable or f.readable):
        raise KernelError(E.EBADF)
    vecs = read_iovecs(t, iov, cnt)
    total = sum(k for _, k in vecs)
    if not total:
        return 0
    pf = _pipe_of(f)
    if pf is None:
        raise KernelError(E.EBADF)
    nonblock = bool(flags & SPLICE_F_NONBLOCK)    # the file's O_NONBLOCK does not count
    if f.writable:
        return _vmsplice_to_pipe(t, pf, vecs, total, nonblock)
    return _vmsplice_to_user(t, pf, vecs, total, nonblock)


def _vmsplice_to_pipe(t, pf: PipeFile, vecs: list[tuple[int, int]], total: int, nonblock: bool) -> int:
    """The user's bytes into the pipe, as much as there is room for; what
    lies before a bad page goes in, EFAULT if none does."""
    room = _space(pf.pipe, t, nonblock)
    data = UserBuf(t, vecs).prefix(0, min(total, room, COPY_CHUNK))
    if not data:
        raise KernelError(E.EFAULT)
    return modified(pf, pf.write(t, data))


def _vmsplice_to_user(t, pf: PipeFile, vecs: list[tuple[int, int]], total: int, nonblock: bool) -> int:
    """The pipe's bytes into the user's buffers.  A copy that falls short
    is EFAULT and takes nothing from the pipe (pipe_to_user, for bytes that
    went into the pipe in one piece; what was stored stays stored)."""
    p = pf.pipe
    if not _data_waiting(p, nonblock):
        return 0
    data = p.buf.peek(min(total, COPY_CHUNK))
    done = 0
    for base, k in vecs:
        if done >= len(data):
            break
        piece = data[done:done + k]
        if t.mem.write_prefix(base, piece) < len(piece):
            raise KernelError(E.EFAULT)
        done += len(piece)
    p.buf.take(done)
    p.wq.wake_all()
    return done
