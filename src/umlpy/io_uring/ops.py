"""io_uring's opcodes: each one's prep (the SQE's fields checked, as
Linux's io_op_defs[op].prep) and issue (the work, done by the same code as
the syscall it stands for, on behalf of the submitting task: its fd table,
credentials, root and cwd).

An issue that must wait raises Block as the syscall would; submit.py parks
the request until the file is ready.  Opcodes Linux has and umlpy does not
are EINVAL in their CQE, with one kernel log line (submit.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from umlpy.abi import errno as E
from umlpy.abi import io_uring as U
from umlpy.kernel.errors import KernelError
from umlpy.net.socket import MSG_NOSIGNAL
from umlpy.syscalls.sys_file import sys_fsync
from umlpy.syscalls.sys_read_write import rw_vecs
from umlpy.syscalls.sys_socket import sys_recvfrom, sys_recvmsg, sys_sendmsg, sys_sendto
from umlpy.syscalls.util import MAX_RW_COUNT, access_ok, read_iovecs, s32, s64


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


@dataclass(frozen=True)
class Op:
    name: str
    prep: Callable[[object, Req], None]
    issue: Callable[[object, object, Req], int]
    ioprio: bool = False    # io_op_defs' ioprio: sqe->ioprio means something to it
    short_fails: bool = False   # a transfer short of sqe->len fails the link (read, write)


def _no_prep(ring, req: Req) -> None:
    pass


def _nop(t, ring, req: Req) -> int:
    return 0


# -- read and write ------------------------------------------------------------
def _rw_prep(ring, req: Req) -> None:
    if req.opcode in (U.IORING_OP_READ_FIXED, U.IORING_OP_WRITE_FIXED):
        if req.buf_index >= len(ring.bufs or ()):
            raise KernelError(E.EFAULT)


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
                start, end = ring.bufs[req.buf_index]
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
def _fsync_prep(ring, req: Req) -> None:
    if req.addr or req.buf_index or req.splice_fd_in or req.op_flags & ~U.IORING_FSYNC_DATASYNC:
        raise KernelError(E.EINVAL)


def _fsync(t, ring, req: Req) -> int:
    _file(t, req)
    return sys_fsync(t, req.fd)


# -- sockets -----------------------------------------------------------------------
def _net_prep(ring, req: Req) -> None:
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


OPS: dict[int, Op] = {
    U.IORING_OP_NOP: Op("NOP", _no_prep, _nop),
    U.IORING_OP_READV: Op("READV", _rw_prep, _rw_issue(False, True, False), ioprio=True),
    U.IORING_OP_WRITEV: Op("WRITEV", _rw_prep, _rw_issue(True, True, False), ioprio=True),
    U.IORING_OP_FSYNC: Op("FSYNC", _fsync_prep, _fsync),
    U.IORING_OP_READ_FIXED: Op("READ_FIXED", _rw_prep, _rw_issue(False, False, True),
                               ioprio=True, short_fails=True),
    U.IORING_OP_WRITE_FIXED: Op("WRITE_FIXED", _rw_prep, _rw_issue(True, False, True),
                                ioprio=True, short_fails=True),
    U.IORING_OP_SENDMSG: Op("SENDMSG", _net_prep, _sendmsg, ioprio=True),
    U.IORING_OP_RECVMSG: Op("RECVMSG", _net_prep, _recvmsg, ioprio=True),
    U.IORING_OP_READ: Op("READ", _rw_prep, _rw_issue(False, False, False), ioprio=True, short_fails=True),
    U.IORING_OP_WRITE: Op("WRITE", _rw_prep, _rw_issue(True, False, False), ioprio=True, short_fails=True),
    U.IORING_OP_SEND: Op("SEND", _net_prep, _send, ioprio=True),
    U.IORING_OP_RECV: Op("RECV", _net_prep, _recv, ioprio=True),
}
