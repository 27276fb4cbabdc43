"""io_uring's opcodes: each one's prep (the SQE's fields checked, as
Linux's io_op_defs[op].prep) and issue (the work, done by the same code as
the syscall it stands for, on behalf of the submitting task: its fd table,
credentials, root and cwd).

An issue that must wait raises Block as the syscall would; submit.py parks
the request until the file is ready.  Opcodes and flags Linux has and
umlpy does not are EINVAL in their CQE, with one kernel log line
(`unsupported`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import io_uring as U
from umlpy.abi.syscall_nr import NUMBERS
from umlpy.io_uring.ring_file import IoUringFile
from umlpy.kernel import printk
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import KTIME_MAX, NS, after, monotonic_for
from umlpy.net.socket import MSG_NOSIGNAL
from umlpy.syscalls.sys_file import OPEN_HOW_SIZE_VER0, sys_fsync
from umlpy.syscalls.sys_poll import ready_or_block
from umlpy.syscalls.sys_read_write import rw_vecs
from umlpy.syscalls.sys_socket import SOCK_CLOEXEC, SOCK_NONBLOCK, sys_recvfrom, sys_recvmsg, sys_sendmsg, sys_sendto
from umlpy.syscalls.table import Table
from umlpy.syscalls.util import MAX_RW_COUNT, access_ok, read_iovecs, read_path, s32, s64


@dataclass
class Req:
    """One request: its SQE's fields, read once (IORING_FEAT_SUBMIT_STABLE)."""
    opcode: int
    flags: int
    ioprio: int
    fd: int
    off: int
    addr: int
    len: int
    op_flags: int
    user_data: int
    buf_index: int
    personality: int
    splice_fd_in: int
    addr3: int
    error: int = 0          # what its prep failed with (0: it did not)
    timeout_ns: int = 0     # TIMEOUT: its timespec, read at prep
    target: int | None = None   # TIMEOUT with a count: the CQ sequence it waits for
    fixed_buf: tuple[int, int] = (0, 0)     # READ/WRITE_FIXED: the registered buffer, taken at prep


@dataclass(frozen=True)
class Op:
    name: str
    prep: Callable[[object, object, Req], None]
    issue: Callable[[object, object, Req], int]
    ioprio: bool = False    # io_op_defs' ioprio: sqe->ioprio means something to it
    short_fails: bool = False   # a transfer short of sqe->len fails the link (read, write)


_logged: set[str] = set()


def unsupported(what: str) -> KernelError:
    """EINVAL for what umlpy lacks, with one kernel log line per kind."""
    if what not in _logged:
        _logged.add(what)
        printk.pr_notice(f"io_uring: {what} is not supported: EINVAL")
    return KernelError(E.EINVAL)


def _no_prep(t, ring, req: Req) -> None:
    pass


def _nop(t, ring, req: Req) -> int:
    return 0


# -- read and write ------------------------------------------------------------
def _rw_prep(t, ring, req: Req) -> None:
    """The fixed ones take their registered buffer now: unregistering it
    later does not pull it from under a waiting request (Linux's rsrc node)."""
    if req.opcode in (U.IORING_OP_READ_FIXED, U.IORING_OP_WRITE_FIXED):
        if req.buf_index >= len(ring.bufs or ()):
            raise KernelError(E.EFAULT)
        req.fixed_buf = ring.bufs[req.buf_index]


def _file(t, req: Req):
    """io_file_get_normal: the request's fd in the submitter's table; no
    file is registered, so a fixed one is never there."""
    if req.flags & U.IOSQE_FIXED_FILE:
        raise KernelError(E.EBADF)
    return t.files.get(s32(req.fd))


def _rw_issue(write: bool, vectored: bool, fixed: bool):
    def issue(t, ring, req: Req) -> int:
        f = _file(t, req)
        if not (f.writable if write else f.readable):
            raise KernelError(E.EBADF)
        off = s64(req.off)
        if off < -1:
            raise KernelError(E.EINVAL)          # rw_verify_area
        if vectored:
            vecs = read_iovecs(t, req.addr, req.len)
        else:
            n = min(req.len, MAX_RW_COUNT)
            if fixed:
                start, end = req.fixed_buf
                if not (start <= req.addr and req.addr + req.len <= end):
                    raise KernelError(E.EFAULT)      # io_import_fixed
            elif not access_ok(req.addr, n):
                raise KernelError(E.EFAULT)
            vecs = [(req.addr, n)]
        # -1 is the file position (IORING_FEAT_RW_CUR_POS); a stream has none
        pos = off if off != -1 and f.positional else None
        return rw_vecs(t, f, vecs, pos, req.op_flags, write)
    return issue


# -- fsync -----------------------------------------------------------------------
def _fsync_prep(t, ring, req: Req) -> None:
    if req.addr or req.buf_index or req.splice_fd_in or req.op_flags & ~U.IORING_FSYNC_DATASYNC:
        raise KernelError(E.EINVAL)


def _fsync(t, ring, req: Req) -> int:
    _file(t, req)
    return sys_fsync(t, req.fd)


# -- sockets -----------------------------------------------------------------------
def _net_prep(t, ring, req: Req) -> None:
    if req.splice_fd_in or req.off or req.ioprio & ~U.IORING_RECVSEND_POLL_FIRST:
        raise KernelError(E.EINVAL)


def _sendmsg(t, ring, req: Req) -> int:
    _file(t, req)
    return sys_sendmsg(t, req.fd, req.addr, req.op_flags | MSG_NOSIGNAL)


def _recvmsg(t, ring, req: Req) -> int:
    _file(t, req)
    return sys_recvmsg(t, req.fd, req.addr, req.op_flags)


def _send(t, ring, req: Req) -> int:
    _file(t, req)
    return sys_sendto(t, req.fd, req.addr, req.len, req.op_flags | MSG_NOSIGNAL, 0, 0)


def _recv(t, ring, req: Req) -> int:
    _file(t, req)
    return sys_recvfrom(t, req.fd, req.addr, req.len, req.op_flags, 0, 0)


# -- file and path operations: each is its syscall ---------------------------------
@cache
def _sys(name: str) -> Callable[..., int]:
    """The table's handler of syscall name."""
    return Table().get(NUMBERS[name]).fn


def _zero(*fields: int) -> None:
    """Fields this opcode has no use for must be 0 (EINVAL)."""
    if any(fields):
        raise KernelError(E.EINVAL)


def _no_fixed(req: Req) -> None:
    """Opcodes that name a path, not a file, cannot take a fixed file."""
    if req.flags & U.IOSQE_FIXED_FILE:
        raise KernelError(E.EBADF)


def _getname(t, addr: int, empty_ok: bool = False) -> None:
    """getname at prep time: a bad or overlong path fails the request there
    (and so ends the submission), an empty one is ENOENT."""
    if not read_path(t, addr) and not empty_ok:
        raise KernelError(E.ENOENT)


def _no_slot(req: Req) -> None:
    """A file_index asks for the fixed-file table, which no ring has (ENXIO)."""
    if req.splice_fd_in:
        raise KernelError(E.ENXIO)


def _openat_prep(t, ring, req: Req) -> None:
    _zero(req.buf_index)
    _no_fixed(req)
    _getname(t, req.addr)
    if req.splice_fd_in and req.op_flags & C.O_CLOEXEC:
        raise KernelError(E.EINVAL)


def _openat(t, ring, req: Req) -> int:
    _no_slot(req)
    return _sys("openat")(t, req.fd, req.addr, req.op_flags, req.len)


def _openat2_prep(t, ring, req: Req) -> None:
    if req.len < OPEN_HOW_SIZE_VER0:
        raise KernelError(E.EINVAL)
    _openat_prep(t, ring, req)


def _openat2(t, ring, req: Req) -> int:
    _no_slot(req)
    return _sys("openat2")(t, req.fd, req.addr, req.off, req.len)


def _close_prep(t, ring, req: Req) -> None:
    _zero(req.off, req.addr, req.len, req.op_flags, req.buf_index)
    _no_fixed(req)
    if req.splice_fd_in and req.fd:
        raise KernelError(E.EINVAL)


def _close(t, ring, req: Req) -> int:
    _no_slot(req)
    if isinstance(t.files.get_raw(s32(req.fd)), IoUringFile):
        raise KernelError(E.EBADF)          # a ring cannot close itself (or another)
    return _sys("close")(t, req.fd)


def _statx_prep(t, ring, req: Req) -> None:
    _zero(req.buf_index, req.splice_fd_in)
    _no_fixed(req)
    _getname(t, req.addr, bool(req.op_flags & C.AT_EMPTY_PATH))


def _statx(t, ring, req: Req) -> int:
    return _sys("statx")(t, req.fd, req.addr, req.op_flags, req.len, req.off)


def _unlinkat_prep(t, ring, req: Req) -> None:
    _zero(req.off, req.len, req.buf_index, req.splice_fd_in)
    _no_fixed(req)
    if req.op_flags & ~C.AT_REMOVEDIR:
        raise KernelError(E.EINVAL)
    _getname(t, req.addr)


def _renameat_prep(t, ring, req: Req) -> None:
    _zero(req.buf_index, req.splice_fd_in)
    _no_fixed(req)
    _getname(t, req.addr)
    _getname(t, req.off)


def _mkdirat_prep(t, ring, req: Req) -> None:
    _zero(req.off, req.op_flags, req.buf_index, req.splice_fd_in)
    _no_fixed(req)
    _getname(t, req.addr)


def _symlinkat_prep(t, ring, req: Req) -> None:
    _zero(req.len, req.op_flags, req.buf_index, req.splice_fd_in)
    _no_fixed(req)
    _getname(t, req.addr)
    _getname(t, req.off)


def _linkat_prep(t, ring, req: Req) -> None:
    _zero(req.buf_index, req.splice_fd_in)
    _no_fixed(req)
    _getname(t, req.addr, bool(req.op_flags & C.AT_EMPTY_PATH))
    _getname(t, req.off)


def _on_file(name: str, args: Callable[[Req], tuple]):
    """An opcode that is syscall name on the request's file."""
    def issue(t, ring, req: Req) -> int:
        _file(t, req)
        return _sys(name)(t, req.fd, *args(req))
    return issue


def _fields_prep(*names: str):
    """A prep that only wants the named SQE fields to be 0."""
    def prep(t, ring, req: Req) -> None:
        _zero(*(getattr(req, n) for n in names))
    return prep


def _accept_prep(t, ring, req: Req) -> None:
    _zero(req.len, req.buf_index)
    if req.op_flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise KernelError(E.EINVAL)
    if req.splice_fd_in and req.op_flags & SOCK_CLOEXEC:
        raise KernelError(E.EINVAL)
    if req.ioprio & ~U.IORING_ACCEPT_MULTISHOT:
        raise KernelError(E.EINVAL)
    if req.ioprio:
        raise unsupported("multishot ACCEPT")


def _accept(t, ring, req: Req) -> int:
    _file(t, req)
    _no_slot(req)
    return _sys("accept4")(t, req.fd, req.addr, req.off, req.op_flags)


# -- poll and cancel -----------------------------------------------------------------
def _poll_add_prep(t, ring, req: Req) -> None:
    _zero(req.buf_index, req.off, req.addr)
    if req.len & ~(U.IORING_POLL_ADD_MULTI | U.IORING_POLL_ADD_LEVEL):
        raise KernelError(E.EINVAL)
    if req.len & U.IORING_POLL_ADD_MULTI:
        raise unsupported("POLL_ADD with IORING_POLL_ADD_MULTI")


def _poll_add(t, ring, req: Req) -> int:
    """One-shot poll: the file's ready events among those asked (ERR and
    HUP always), or a wait on the file's queues until there are some."""
    return ready_or_block(_file(t, req), req.op_flags & 0xFFFF)


def _poll_remove_prep(t, ring, req: Req) -> None:
    _zero(req.buf_index, req.splice_fd_in)
    if req.len & ~(U.IORING_POLL_UPDATE_EVENTS | U.IORING_POLL_UPDATE_USER_DATA | U.IORING_POLL_ADD_MULTI) \
            or req.len == U.IORING_POLL_ADD_MULTI:
        raise KernelError(E.EINVAL)
    if not req.len & U.IORING_POLL_UPDATE_USER_DATA and req.off:
        raise KernelError(E.EINVAL)
    if req.len:
        raise unsupported("POLL_REMOVE updating a poll")
    if req.op_flags:
        raise KernelError(E.EINVAL)


def _poll_remove(t, ring, req: Req) -> int:
    """The poll request whose user_data is addr goes, -ECANCELED."""
    if not ring.cancel(ring.waiting.with_data(req.addr, U.IORING_OP_POLL_ADD, False)):
        raise KernelError(E.ENOENT)
    return 0


# -- timeouts --------------------------------------------------------------------------
def _timespec_ns(t, addr: int) -> int:
    """get_timespec64, and a negative field is EINVAL."""
    sec, nsec = struct.unpack("<qq", t.mem.read(addr, 16))
    if sec < 0 or nsec < 0:
        raise KernelError(E.EINVAL)
    return min(sec * NS + nsec, KTIME_MAX)


def _clock_flags_ok(flags: int) -> None:
    if (flags & U.IORING_TIMEOUT_CLOCK_MASK) == U.IORING_TIMEOUT_CLOCK_MASK:
        raise KernelError(E.EINVAL)         # one clock at most


def _timeout_prep(t, ring, req: Req) -> None:
    if req.buf_index or req.len != 1 or req.splice_fd_in:
        raise KernelError(E.EINVAL)
    if req.op_flags & ~(U.IORING_TIMEOUT_ABS | U.IORING_TIMEOUT_CLOCK_MASK | U.IORING_TIMEOUT_ETIME_SUCCESS):
        raise KernelError(E.EINVAL)
    _clock_flags_ok(req.op_flags)
    req.timeout_ns = _timespec_ns(t, req.addr)


def timeout_block(timeout_ns: int, flags: int) -> Block:
    """The wait of a TIMEOUT: until its time (relative, or absolute on
    the clock it names, as a monotonic deadline), then -ETIME."""
    if not flags & U.IORING_TIMEOUT_ABS:
        deadline = after(timeout_ns)
    else:
        clk = C.CLOCK_REALTIME if flags & U.IORING_TIMEOUT_REALTIME else \
            C.CLOCK_BOOTTIME if flags & U.IORING_TIMEOUT_BOOTTIME else C.CLOCK_MONOTONIC
        deadline = monotonic_for(clk, timeout_ns, True)
    return Block(deadline=deadline, on_timeout=lambda: -E.ETIME)


def _timeout(t, ring, req: Req) -> int:
    """A timer, and with off > 0 also a count: it completes 0 once off
    more CQEs (timeouts' own not counted) have been posted."""
    if req.off:
        req.target = ring.cq_sequence() + req.off
    raise timeout_block(req.timeout_ns, req.op_flags)


def _timeout_remove_prep(t, ring, req: Req) -> None:
    if req.flags & (U.IOSQE_FIXED_FILE | U.IOSQE_BUFFER_SELECT):
        raise KernelError(E.EINVAL)
    _zero(req.buf_index, req.len, req.splice_fd_in)
    flags = req.op_flags
    if flags & U.IORING_TIMEOUT_UPDATE_MASK:
        _clock_flags_ok(flags)
        if flags & ~(U.IORING_TIMEOUT_UPDATE_MASK | U.IORING_TIMEOUT_ABS | U.IORING_TIMEOUT_CLOCK_MASK):
            raise KernelError(E.EINVAL)
        if flags & U.IORING_LINK_TIMEOUT_UPDATE:
            raise unsupported("LINK_TIMEOUT")
        req.timeout_ns = _timespec_ns(t, req.off)
    elif flags:
        raise KernelError(E.EINVAL)


def _timeout_remove(t, ring, req: Req) -> int:
    """Cancel (-ECANCELED) or re-arm the timeout whose user_data is addr."""
    found = ring.waiting.with_data(req.addr, U.IORING_OP_TIMEOUT, False)
    if not found:
        raise KernelError(E.ENOENT)
    if req.op_flags & U.IORING_TIMEOUT_UPDATE:
        found[0].rearm(timeout_block(req.timeout_ns, req.op_flags))
    else:
        ring.cancel(found)
    return 0


CANCEL_FLAGS = (U.IORING_ASYNC_CANCEL_ALL | U.IORING_ASYNC_CANCEL_FD | U.IORING_ASYNC_CANCEL_ANY
                | U.IORING_ASYNC_CANCEL_FD_FIXED)


def _cancel_prep(t, ring, req: Req) -> None:
    if req.flags & U.IOSQE_BUFFER_SELECT:
        raise KernelError(E.EINVAL)
    _zero(req.off, req.len, req.splice_fd_in)
    if req.op_flags & ~CANCEL_FLAGS:
        raise KernelError(E.EINVAL)
    if req.op_flags & U.IORING_ASYNC_CANCEL_FD and req.op_flags & U.IORING_ASYNC_CANCEL_ANY:
        raise KernelError(E.EINVAL)


def _cancel(t, ring, req: Req) -> int:
    """ASYNC_CANCEL: the waiting request with this user_data (or on this
    fd, or any); with ALL or ANY every match, the count the result."""
    flags = req.op_flags
    if flags & U.IORING_ASYNC_CANCEL_FD_FIXED:
        raise KernelError(E.ENOENT)         # no fixed file is ever registered
    every = bool(flags & (U.IORING_ASYNC_CANCEL_ALL | U.IORING_ASYNC_CANCEL_ANY))
    if flags & U.IORING_ASYNC_CANCEL_ANY:
        found = ring.waiting.all()
    elif flags & U.IORING_ASYNC_CANCEL_FD:
        found = ring.waiting.on_fd(req.fd, every)      # a fixed-file request never waits
    else:
        found = ring.waiting.with_data(req.addr, None, every)
    n = ring.cancel(found)
    if not n:
        raise KernelError(E.ENOENT)
    return n if every else 0


OPS: dict[int, Op] = {
    U.IORING_OP_NOP: Op("NOP", _no_prep, _nop),
    U.IORING_OP_READV: Op("READV", _rw_prep, _rw_issue(False, True, False), ioprio=True),
    U.IORING_OP_WRITEV: Op("WRITEV", _rw_prep, _rw_issue(True, True, False), ioprio=True),
    U.IORING_OP_FSYNC: Op("FSYNC", _fsync_prep, _fsync),
    U.IORING_OP_READ_FIXED: Op("READ_FIXED", _rw_prep, _rw_issue(False, False, True),
                               ioprio=True, short_fails=True),
    U.IORING_OP_WRITE_FIXED: Op("WRITE_FIXED", _rw_prep, _rw_issue(True, False, True),
                                ioprio=True, short_fails=True),
    U.IORING_OP_POLL_ADD: Op("POLL_ADD", _poll_add_prep, _poll_add),
    U.IORING_OP_POLL_REMOVE: Op("POLL_REMOVE", _poll_remove_prep, _poll_remove),
    U.IORING_OP_SYNC_FILE_RANGE: Op("SYNC_FILE_RANGE", _fields_prep("addr", "buf_index", "splice_fd_in"),
                                    _on_file("sync_file_range", lambda r: (r.off, r.len, r.op_flags))),
    U.IORING_OP_SENDMSG: Op("SENDMSG", _net_prep, _sendmsg, ioprio=True),
    U.IORING_OP_RECVMSG: Op("RECVMSG", _net_prep, _recvmsg, ioprio=True),
    U.IORING_OP_TIMEOUT: Op("TIMEOUT", _timeout_prep, _timeout),
    U.IORING_OP_TIMEOUT_REMOVE: Op("TIMEOUT_REMOVE", _timeout_remove_prep, _timeout_remove),
    U.IORING_OP_ACCEPT: Op("ACCEPT", _accept_prep, _accept, ioprio=True),
    U.IORING_OP_CONNECT: Op("CONNECT", _fields_prep("len", "buf_index", "op_flags", "splice_fd_in"),
                            _on_file("connect", lambda r: (r.addr, r.off))),
    U.IORING_OP_ASYNC_CANCEL: Op("ASYNC_CANCEL", _cancel_prep, _cancel),
    U.IORING_OP_FALLOCATE: Op("FALLOCATE", _fields_prep("buf_index", "op_flags", "splice_fd_in"),
                              _on_file("fallocate", lambda r: (r.len, r.off, r.addr))),
    U.IORING_OP_OPENAT: Op("OPENAT", _openat_prep, _openat),
    U.IORING_OP_CLOSE: Op("CLOSE", _close_prep, _close),
    U.IORING_OP_STATX: Op("STATX", _statx_prep, _statx),
    U.IORING_OP_READ: Op("READ", _rw_prep, _rw_issue(False, False, False), ioprio=True, short_fails=True),
    U.IORING_OP_WRITE: Op("WRITE", _rw_prep, _rw_issue(True, False, False), ioprio=True, short_fails=True),
    U.IORING_OP_FADVISE: Op("FADVISE", _fields_prep("buf_index", "addr", "splice_fd_in"),
                            _on_file("fadvise64", lambda r: (r.off, r.len, r.op_flags))),
    U.IORING_OP_MADVISE: Op("MADVISE", _fields_prep("buf_index", "off", "splice_fd_in"),
                            lambda t, ring, r: _sys("madvise")(t, r.addr, r.len, r.op_flags)),
    U.IORING_OP_SEND: Op("SEND", _net_prep, _send, ioprio=True),
    U.IORING_OP_RECV: Op("RECV", _net_prep, _recv, ioprio=True),
    U.IORING_OP_OPENAT2: Op("OPENAT2", _openat2_prep, _openat2),
    U.IORING_OP_SHUTDOWN: Op("SHUTDOWN", _fields_prep("off", "addr", "op_flags", "buf_index", "splice_fd_in"),
                             _on_file("shutdown", lambda r: (r.len,))),
    U.IORING_OP_RENAMEAT: Op("RENAMEAT", _renameat_prep,
                             lambda t, ring, r: _sys("renameat2")(t, r.fd, r.addr, r.len, r.off, r.op_flags)),
    U.IORING_OP_UNLINKAT: Op("UNLINKAT", _unlinkat_prep,
                             lambda t, ring, r: _sys("unlinkat")(t, r.fd, r.addr, r.op_flags)),
    U.IORING_OP_MKDIRAT: Op("MKDIRAT", _mkdirat_prep,
                            lambda t, ring, r: _sys("mkdirat")(t, r.fd, r.addr, r.len, 0)),
    U.IORING_OP_SYMLINKAT: Op("SYMLINKAT", _symlinkat_prep,
                              lambda t, ring, r: _sys("symlinkat")(t, r.addr, r.fd, r.off)),
    U.IORING_OP_LINKAT: Op("LINKAT", _linkat_prep,
                           lambda t, ring, r: _sys("linkat")(t, r.fd, r.addr, r.len, r.off, r.op_flags)),
}
