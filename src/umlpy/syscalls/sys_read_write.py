"""read/write and their vector and positioned forms; lseek."""
from __future__ import annotations

import struct

from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import bounded
from umlpy.kernel.uaccess import COPY_CHUNK, UserBuf, write_in_pieces
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import MAX_RW_COUNT, access_ok, read_iovecs, s32, s64, scatter, user_data
from umlpy.vfs import directio
from umlpy.vfs.atime import touch_atime
from umlpy.vfs.fanotify import FAN_ACCESS_PERM, file_permission
from umlpy.vfs.fanotify import asking as fanotify_asking
from umlpy.vfs.fsnotify import IN_ACCESS, IN_MODIFY, file_event
from umlpy.vfs.file import max_bytes, verify_area, write_check_limits
from umlpy.vfs.pipe import PipeFile


def _readable(t, fd: int):
    f = t.files.get(s32(fd))
    if not f.readable:
        raise KernelError(E.EBADF)
    return f


def _writable(t, fd: int):
    f = t.files.get(s32(fd))
    if not f.writable:
        raise KernelError(E.EBADF)
    return f


def rw_checks(src, dst) -> None:
    """generic_file_rw_checks: two regular files (EISDIR for a directory,
    EINVAL for anything else), then the source open for reading and the
    destination for writing, not O_APPEND (EBADF)."""
    inodes = (src.inode, dst.inode)
    if any(i is not None and i.is_dir for i in inodes):
        raise KernelError(E.EISDIR)
    if any(i is None or not i.is_reg for i in inodes):
        raise KernelError(E.EINVAL)
    if not src.readable or not dst.writable or dst.flags & C.O_APPEND:
        raise KernelError(E.EBADF)


FICLONE, FICLONERANGE, FIDEDUPERANGE = 0x40049409, 0x4020940D, 0xC0189436
_CLONE_RANGE = struct.Struct("<qQQQ")     # struct file_clone_range
_DEDUPE_HEAD = struct.Struct("<QQHHI")    # struct file_dedupe_range, before its dest_count infos
_DEDUPE_INFO_SIZE = 32                    # struct file_dedupe_range_info


def remap_ioctl(t, dst, req: int, arg: int) -> int:
    """FICLONE, FICLONERANGE and FIDEDUPERANGE (do_vfs_ioctl's): no
    filesystem here shares blocks between files (none has
    remap_file_range), so after Linux's own checks they are EOPNOTSUPP,
    which cp --reflink=auto and the like take for "copy instead"."""
    if req == FIDEDUPERANGE:
        _, _, count, r1, r2 = _DEDUPE_HEAD.unpack(t.mem.read(arg, _DEDUPE_HEAD.size))
        size = _DEDUPE_HEAD.size + _DEDUPE_INFO_SIZE * count
        if size > C.PAGE_SIZE:
            raise KernelError(E.ENOMEM)
        t.mem.read(arg, size)           # memdup_user: all of it readable (EFAULT)
        if r1 or r2:
            raise KernelError(E.EINVAL)
        if dst.inode is None or dst.inode.is_dir:
            raise KernelError(E.EISDIR)
        if not dst.inode.is_reg:
            raise KernelError(E.EINVAL)
        raise KernelError(E.EOPNOTSUPP)
    srcfd = arg if req == FICLONE else _CLONE_RANGE.unpack(t.mem.read(arg, _CLONE_RANGE.size))[0]
    src = t.files.get(s32(srcfd))
    if src.inode is None or dst.inode is None or src.inode.fs is not dst.inode.fs:
        raise KernelError(E.EXDEV)
    rw_checks(src, dst)
    raise KernelError(E.EOPNOTSUPP)


def _user_buffer(buf: int, count: int) -> None:
    """vfs_read/vfs_write's access_ok: the buffer must be user memory
    (EFAULT before the file is asked anything)."""
    if not access_ok(buf, count):
        raise KernelError(E.EFAULT)


@syscall("read")
def sys_read(t, fd, buf, count, *_):
    f = _readable(t, fd)
    _user_buffer(buf, count)

    def read() -> int:
        try:
            if f.flags & C.O_DIRECT:
                directio.check_transfer(f, None, ((buf, count),), False)
            n = f.read_into(t, buf, min(count, MAX_RW_COUNT))
        except KernelError:
            t.ioac.syscr += 1       # vfs_read counts a call its file failed
            raise
        return _read_done(t, f, n)
    if f.rcvtimeo is None and not fanotify_asking():
        return read()       # the common case, without the wrappers' calls
    return file_permission(t, f, FAN_ACCESS_PERM, lambda: bounded(read, f.rcvtimeo))


def modified(f, n: int) -> int:
    """fsnotify_modify after a write that wrote something."""
    if n > 0:
        file_event(f, IN_MODIFY)
    return n


def _count(t, write: bool, n: int) -> None:
    """A read or write call of the file API and the n bytes it moved,
    counted as the task's (kernel/ioac.py: syscr, rchar or syscw, wchar)."""
    ac = t.ioac
    if write:
        ac.syscw += 1
        ac.wchar += n
    else:
        ac.syscr += 1
        ac.rchar += n


def _written(t, f, n: int) -> int:
    """vfs_write's end: the call counted, fsnotify."""
    _count(t, True, n)
    return modified(f, n)


def _read_done(t, f, n: int) -> int:
    """vfs_read's end: the call counted, _accessed."""
    _count(t, False, n)
    return _accessed(f, n)


def _vector_counted(t, write: bool, io) -> int:
    """do_readv/do_writev and their positioned twins count every call,
    refused ones too (a bad fd, a bad iovec), and what it moved
    (kernel/ioac.py); a call that waits is counted when it is done."""
    n = None
    try:
        n = io()
    except (KernelError, GuestFault):
        n = 0
        raise
    finally:
        if n is not None:       # (None: it waits)
            _count(t, write, n)
    return n


def _write_source(t, f, vecs: list[tuple[int, int]]) -> bytes | UserBuf:
    """What write and writev take from the guest (util.user_data); a file
    that never waits stores what could be copied before a bad page, as
    Linux's page-by-page copy does (EFAULT only if that is nothing)."""
    try:
        return user_data(t, vecs)
    except GuestFault:
        data = UserBuf(t, vecs).prefix(0, COPY_CHUNK) if f.chunked_write else b""
        if not data:
            raise
        return data


def write_vecs(t, f, data: bytes | UserBuf) -> int:
    """write/writev: bytes to write(), a UserBuf to write_from()."""
    return f.write(t, data) if isinstance(data, bytes) else f.write_from(t, data)


def _accessed(f, n: int) -> int:
    """fsnotify_access after a read that read something; a regular file's
    access time as its mount's policy says, even at its end (filemap_read's
    file_accessed)."""
    if f.inode is not None and f.inode.is_reg:
        touch_atime(f)
    if n > 0:
        file_event(f, IN_ACCESS)
    return n


@syscall("write")
def sys_write(t, fd, buf, count, *_):
    f = _writable(t, fd)
    _user_buffer(buf, count)
    if f.flags & C.O_DIRECT:
        directio.check_transfer(f, None, ((buf, count),), True)
    data = _write_source(t, f, [(buf, min(count, MAX_RW_COUNT))])

    def write() -> int:
        try:
            n = write_vecs(t, f, data)
        except KernelError:
            t.ioac.syscw += 1       # vfs_write counts a call its file failed
            raise
        return _written(t, f, n)
    if f.sndtimeo is None:
        return write()      # the common case, without the wrapper
    return bounded(write, f.sndtimeo)


U64_MASK = (1 << 64) - 1
RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT, RWF_APPEND = 1, 2, 4, 8, 16
RWF_SUPPORTED = 0x1F


def _rw_flags(f, flags: int) -> int:
    """kiocb_set_rw_flags: the O_ flags preadv2/pwritev2's RWF_ flags stand
    for during the call.  An unknown flag is EOPNOTSUPP, and so is NOWAIT
    on a file that cannot promise it (FMODE_NOWAIT: regular files, pipes,
    sockets; there it is O_NONBLOCK for the call).  HIPRI asks for polled
    I/O, which nothing here has; SYNC and DSYNC are done after the write."""
    if flags & ~RWF_SUPPORTED:
        raise KernelError(E.EOPNOTSUPP)
    extra = 0
    if flags & RWF_NOWAIT:
        if not f.nowait_ok:
            raise KernelError(E.EOPNOTSUPP)
        extra |= C.O_NONBLOCK
    if flags & RWF_APPEND:
        extra |= C.O_APPEND
    return extra


def _vectored(t, f, iov: int, cnt: int, off: int | None, flags: int, write: bool) -> int:
    """vfs_readv/vfs_writev after the fd checks: the iovecs (import_iovec),
    then rw_vecs."""
    return rw_vecs(t, f, read_iovecs(t, iov, cnt), off, flags, write)


def rw_vecs(t, f, vecs: list[tuple[int, int]], off: int | None, flags: int, write: bool) -> int:
    """A transfer between f and the guest's buffers vecs (checked by the
    caller): the RWF_ flags, then the I/O at off (None: at the file
    position).  readv/writev and io_uring's read and write requests."""
    extra = _rw_flags(f, flags)
    directio.check_transfer(f, off, vecs, write)
    total = sum(n for _, n in vecs)
    if write:
        data = _write_source(t, f, vecs) if off is None else b""

        def io() -> int:
            n = write_vecs(t, f, data) if off is None else _pwrite_vecs(t, f, vecs, off)
            if n > 0 and flags & (RWF_SYNC | RWF_DSYNC) and f.inode is not None:
                f.inode.fs.sync()
            return modified(f, n)
    else:
        def io() -> int:
            return _accessed(f, scatter(t, vecs, f.read(t, total) if off is None else f.pread(t, total, off)))

    def run() -> int:
        if not extra:
            return bounded(io, f.sndtimeo if write else f.rcvtimeo)
        saved = f.flags
        f.flags |= extra
        try:
            return io()
        finally:
            f.flags = saved
    return run() if write else file_permission(t, f, FAN_ACCESS_PERM, run)


@syscall("readv")
def sys_readv(t, fd, iov, cnt, *_):
    return _vector_counted(t, False, lambda: _vectored(t, _readable(t, fd), iov, cnt, None, 0, False))


@syscall("writev")
def sys_writev(t, fd, iov, cnt, *_):
    return _vector_counted(t, True, lambda: _vectored(t, _writable(t, fd), iov, cnt, None, 0, True))


def _positioned(t, fd: int, off: int, write: bool):
    """ksys_pread64, do_preadv and their write twins: a negative offset is
    EINVAL before the fd is looked up, a file without positional I/O
    (a stream) ESPIPE before its open mode is checked."""
    if s64(off) < 0:
        raise KernelError(E.EINVAL)
    f = t.files.get(s32(fd))
    if not f.positional:
        raise KernelError(E.ESPIPE)
    if not (f.writable if write else f.readable):
        raise KernelError(E.EBADF)
    return f


@syscall("pread64")
def sys_pread64(t, fd, buf, count, off, *_):
    f = _positioned(t, fd, off, False)
    _user_buffer(buf, count)

    def io() -> int:
        directio.check_transfer(f, off, ((buf, count),), False)
        data = f.pread(t, min(count, MAX_RW_COUNT), off)
        t.mem.write(buf, data)
        return _read_done(t, f, len(data))
    return file_permission(t, f, FAN_ACCESS_PERM, io)


def _pwrite_vecs(t, f, vecs: list[tuple[int, int]], off: int) -> int:
    """pwrite/pwritev: at most COPY_CHUNK bytes read at once; a file that
    never waits takes a big write in pieces (what was written counts when a
    later piece faults)."""
    src = UserBuf(t, vecs)
    if not f.chunked_write:
        return f.pwrite(t, src[0:COPY_CHUNK], off)
    return write_in_pieces(src, lambda piece, done: f.pwrite(t, piece, off + done))


@syscall("pwrite64")
def sys_pwrite64(t, fd, buf, count, off, *_):
    f = _positioned(t, fd, off, True)
    _user_buffer(buf, count)
    directio.check_transfer(f, off, ((buf, count),), True)
    return _written(t, f, _pwrite_vecs(t, f, [(buf, min(count, MAX_RW_COUNT))], off))


@syscall("preadv")
def sys_preadv(t, fd, iov, cnt, off, *_):
    return _vector_counted(t, False, lambda: _vectored(t, _positioned(t, fd, off, False), iov, cnt, off, 0, False))


@syscall("pwritev")
def sys_pwritev(t, fd, iov, cnt, off, *_):
    return _vector_counted(t, True, lambda: _vectored(t, _positioned(t, fd, off, True), iov, cnt, off, 0, True))


@syscall("preadv2", note="RWF_NOWAIT on regular files, anonymous pipes and sockets; RWF_HIPRI has no polled I/O to ask for")
def sys_preadv2(t, fd, iov, cnt, off, _off_high, flags):
    """preadv with RWF_ flags; offset -1 reads at the file position (readv)."""
    if s64(off) == -1:
        return _vector_counted(t, False, lambda: _vectored(t, _readable(t, fd), iov, cnt, None, flags, False))
    return _vector_counted(t, False, lambda: _vectored(t, _positioned(t, fd, off, False), iov, cnt, off, flags, False))


@syscall("pwritev2", note="as preadv2; RWF_APPEND, RWF_SYNC/RWF_DSYNC (the filesystem synced after the write)")
def sys_pwritev2(t, fd, iov, cnt, off, _off_high, flags):
    if s64(off) == -1:
        return _vector_counted(t, True, lambda: _vectored(t, _writable(t, fd), iov, cnt, None, flags, True))
    return _vector_counted(t, True, lambda: _vectored(t, _positioned(t, fd, off, True), iov, cnt, off, flags, True))


@syscall("lseek")
def sys_lseek(t, fd, off, whence, *_):
    f = t.files.get(s32(fd))
    if whence > 4:
        raise KernelError(E.EINVAL)
    return f.lseek(s64(off), whence)


@syscall("sendfile", status=PARTIAL, note="copies through the kernel; in_fd must allow pread when offset is given")
def sys_sendfile(t, out_fd, in_fd, offp, count, *_):
    src = _readable(t, in_fd)
    dst = _writable(t, out_fd)
    if dst.flags & 0o2000 and dst.inode is not None and dst.inode.is_reg:   # O_APPEND
        raise KernelError(E.EINVAL)
    if not src.splice_read or not (dst.splice_write or isinstance(dst, PipeFile)):
        # do_splice_read / do_splice_from: a pipe, an eventfd or a
        # directory has no f_op to move data with (splice into a pipe
        # needs none)
        raise KernelError(E.EINVAL)
    count = min(count, MAX_RW_COUNT, 1 << 20)
    data, off = _read_at(t, src, count, offp)
    return write_settled(t, dst, data, lambda n: _transferred(t, src, dst, settle_source(t, src, data, n, offp, off)))


def _transferred(t, src, dst, n: int) -> int:
    """sendfile, copy_file_range: the source was read, the destination written."""
    return _written(t, dst, _read_done(t, src, n))


def settle_source(t, src, data: bytes, n: int, offp: int, off: int | None) -> int:
    """n bytes of data taken from src were written: the caller's offset
    moves by n, or src gets back what was not written (its position, or
    the front of its pipe)."""
    if off is not None:
        t.mem.write(offp, struct.pack("<q", off + n))
    elif n < len(data):
        if isinstance(src, PipeFile):
            src.pipe.buf.unread(data[n:])
        else:
            src.lseek(n - len(data), 1)
    return n


def write_settled(t, dst, data: bytes, settle) -> int:
    """Write data taken from a source (sendfile, splice); settle(n) squares
    the source with the n bytes written, however the write ends: at once,
    after waiting for room, refused (EAGAIN from a full non-blocking
    socket, EPIPE), or cut short by a signal or by death.  Nothing taken
    is lost: what was not written goes back, and a later call copies it."""
    again = lambda: dst.write(t, data)      # noqa: E731
    return _write_then_settle(again if data else (lambda: 0), settle, again)


def _write_then_settle(write, settle, again) -> int:
    try:
        n = write()
    except Block as b:
        inner = b.retry or again        # a plain block: the write again, not the whole call
        done = b.interrupted_result
        b.retry = lambda: _write_then_settle(inner, settle, again)
        b.on_interrupt = lambda: settle(done or 0)
        raise
    except KernelError:
        settle(0)
        raise
    return settle(n)


def _read_at(t, f, n: int, offp: int) -> tuple[bytes, int | None]:
    """Read n bytes at *offp (pread, offset not moved) or at the file position."""
    if offp:
        (off,) = struct.unpack("<q", t.mem.read(offp, 8))
        if off < 0:
            raise KernelError(E.EINVAL)
        return f.pread(t, n, off), off
    return f.read(t, n), None


def _copy_checks(t, src, dst, pos_in: int, pos_out: int, count: int) -> int:
    """generic_copy_file_checks after the files' own: ranges whose end
    would wrap are EOVERFLOW; the count is cut to the source's end, then
    to the writer's RLIMIT_FSIZE and the destination filesystem's largest
    file (EFBIG at or past them, SIGXFSZ for the limit); a copy within one
    file whose ranges overlap is EINVAL."""
    if (pos_in & U64_MASK) + count > U64_MASK or (pos_out & U64_MASK) + count > U64_MASK:
        raise KernelError(E.EOVERFLOW)
    size = src.inode.size()
    count = 0 if pos_in >= size else min(count, size - pos_in)
    count = write_check_limits(t, pos_out, count, max_bytes(dst.inode))
    if src.inode is dst.inode and pos_out + count > pos_in and pos_out < pos_in + count:
        raise KernelError(E.EINVAL)
    return count


def _offset(t, offp: int, f) -> int:
    """A copy's position: *offp, or the file's own."""
    return struct.unpack("<q", t.mem.read(offp, 8))[0] if offp else f.pos


@syscall("copy_file_range", status=PARTIAL, note="copies through the kernel")
def sys_copy_file_range(t, fd_in, offp_in, fd_out, offp_out, n, flags):
    if flags:
        raise KernelError(E.EINVAL)
    src, dst = t.files.get(s32(fd_in)), t.files.get(s32(fd_out))
    rw_checks(src, dst)
    pos_in, pos_out = _offset(t, offp_in, src), _offset(t, offp_out, dst)
    count = _copy_checks(t, src, dst, pos_in, pos_out, n & U64_MASK)
    verify_area(pos_in, count)
    verify_area(pos_out, count)
    data = src.pread(t, min(count, COPY_CHUNK), pos_in) if count else b""
    if not data:
        return 0
    written = _transferred(t, src, dst, dst.pwrite(t, data, pos_out))
    for offp, f, pos in ((offp_in, src, pos_in), (offp_out, dst, pos_out)):
        if offp:
            t.mem.write(offp, struct.pack("<q", pos + written))
        else:
            f.pos = pos + written
    return written
