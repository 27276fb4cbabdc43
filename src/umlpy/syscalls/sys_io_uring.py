"""io_uring_setup, io_uring_enter, io_uring_register (umlpy/io_uring/)."""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.abi import io_uring as U
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.abi import consts as C
from umlpy.io_uring.ops import OPS
from umlpy.io_uring.ring_file import IoUringFile
from umlpy.io_uring.rings import M32, Rings
from umlpy.io_uring.submit import submit_sqes
from umlpy.kernel import mlock, printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import after, read_timespec
from umlpy.syscalls.sys_eventfd import EventFdFile
from umlpy.syscalls.sys_poll import wait_with_sigmask
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import s32

OPCODES = ", ".join(op.name for op in OPS.values())
# setup flags that change nothing here, or that only restrict the ring
ACCEPTED_SETUP = (U.IORING_SETUP_CQSIZE | U.IORING_SETUP_CLAMP | U.IORING_SETUP_SUBMIT_ALL
                  | U.IORING_SETUP_R_DISABLED
                  | U.IORING_SETUP_COOP_TASKRUN | U.IORING_SETUP_TASKRUN_FLAG
                  | U.IORING_SETUP_SINGLE_ISSUER | U.IORING_SETUP_DEFER_TASKRUN)
FEATURES = (U.IORING_FEAT_SINGLE_MMAP | U.IORING_FEAT_NODROP | U.IORING_FEAT_SUBMIT_STABLE
            | U.IORING_FEAT_RW_CUR_POS | U.IORING_FEAT_CUR_PERSONALITY | U.IORING_FEAT_FAST_POLL
            | U.IORING_FEAT_POLL_32BITS | U.IORING_FEAT_SQPOLL_NONFIXED | U.IORING_FEAT_EXT_ARG
            | U.IORING_FEAT_NATIVE_WORKERS | U.IORING_FEAT_RSRC_TAGS | U.IORING_FEAT_CQE_SKIP
            | U.IORING_FEAT_LINKED_FILE)
_IOVEC = struct.Struct("<QQ")
SZ_1G = 1 << 30


def _allowed(t) -> bool:
    """io_uring_allowed: kernel.io_uring_disabled 0 lets everyone, 1 only
    CAP_SYS_ADMIN, 2 nobody."""
    disabled = t.kernel.tunables.io_uring_disabled
    return disabled == 0 or (disabled == 1 and capable(t.creds, CAP_SYS_ADMIN))


def _clamped(n: int, most: int, flags: int) -> int:
    """A ring size: 0 is EINVAL, past most EINVAL unless IORING_SETUP_CLAMP
    (then most); rounded up to a power of two."""
    if not n:
        raise KernelError(E.EINVAL)
    if n > most:
        if not flags & U.IORING_SETUP_CLAMP:
            raise KernelError(E.EINVAL)
        n = most
    return 1 << (n - 1).bit_length()


def _sizes(entries: int, flags: int, cq_entries: int) -> tuple[int, int]:
    """io_uring_create's ring sizes: (sq_entries, cq_entries)."""
    sq = _clamped(entries, U.IORING_MAX_ENTRIES, flags)
    if not flags & U.IORING_SETUP_CQSIZE:
        return sq, 2 * sq
    cq = _clamped(cq_entries, U.IORING_MAX_CQ_ENTRIES, flags)
    if cq < sq:
        raise KernelError(E.EINVAL)
    return sq, cq


@syscall("io_uring_setup", status=PARTIAL,
         note=f"opcodes {OPCODES}; no SQPOLL, IOPOLL, SQE128/CQE32, ATTACH_WQ (EINVAL)")
def sys_io_uring_setup(t, entries, params, *_):
    if not _allowed(t):
        raise KernelError(E.EPERM)
    p = list(U.PARAMS.unpack(t.mem.read(params, U.PARAMS.size)))
    flags = p[2]
    if any(p[U.PARAMS_RESV]) or flags & ~U.IORING_SETUP_KNOWN:
        raise KernelError(E.EINVAL)
    sq, cq = _sizes(entries & M32, flags, p[1])
    if flags & ~ACCEPTED_SETUP:
        printk.pr_notice(f"io_uring_setup: flags {flags & ~ACCEPTED_SETUP:#x} are not supported: EINVAL")
        raise KernelError(E.EINVAL)
    if flags & U.IORING_SETUP_TASKRUN_FLAG and not flags & (U.IORING_SETUP_COOP_TASKRUN
                                                           | U.IORING_SETUP_DEFER_TASKRUN):
        raise KernelError(E.EINVAL)
    if flags & U.IORING_SETUP_DEFER_TASKRUN and not flags & U.IORING_SETUP_SINGLE_ISSUER:
        raise KernelError(E.EINVAL)
    rings = Rings(sq, cq, t.proc.mm.budget)
    p[0], p[1], p[5] = sq, cq, FEATURES
    sq_off, cq_off = rings.sq_offsets(), rings.cq_offsets()
    out = U.PARAMS.pack(*p[:10], *sq_off, 0, 0, *cq_off, 0, 0)
    t.mem.write(params, out)
    return t.files.install(IoUringFile(rings, flags), cloexec=True)


def _ring(t, fd: int) -> IoUringFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, IoUringFile):
        raise KernelError(E.EOPNOTSUPP)
    return f


def _wait(t, ring: IoUringFile, min_events: int, sig: int, sigsz: int, ts: int, submitted: int) -> int:
    """io_cqring_wait: until min_events CQEs are there counting from the CQ
    head as it is now, the timeout (ETIME) or a signal (EINTR, never a
    restart); with the guest's sigmask meanwhile.  Ending with CQEs in the
    ring is 0 however it ended.  The call returns what it submitted, if
    anything, whatever the wait gave (also when it is resumed)."""
    rings = ring.rings
    rings.flush_overflow()
    if rings.cq_ready() >= min_events:
        return submitted
    end = after(read_timespec(t, ts)) if ts else None
    target = (rings.cq_head() + min_events) & M32

    def ended(res: int) -> int:
        return submitted or (0 if rings.cq_ready() else res)

    def check() -> int:
        rings.flush_overflow()
        if s32(rings.cached_cq_tail - target) >= 0:
            return submitted
        if rings.dropped:
            rings.dropped = False
            return ended(-E.EBADR)
        raise Block(ring.cq_wait, deadline=end, retry=check, on_timeout=lambda: ended(-E.ETIME),
                    restart=E.EINTR, interrupted_result=ended(-E.EINTR) if submitted or rings.cq_ready() else None)
    return wait_with_sigmask(t, sig, sigsz, check)


@syscall("io_uring_enter", status=PARTIAL, note="see io_uring_setup; no registered ring fds")
def sys_io_uring_enter(t, fd, to_submit, min_complete, flags, argp, argsz):
    to_submit, min_complete, flags = to_submit & M32, min_complete & M32, flags & M32
    if flags & ~U.IORING_ENTER_KNOWN:
        raise KernelError(E.EINVAL)
    if flags & U.IORING_ENTER_REGISTERED_RING:
        raise KernelError(E.EINVAL)         # no ring fd is ever registered
    ring = _ring(t, fd)
    if ring.setup_flags & U.IORING_SETUP_R_DISABLED:
        raise KernelError(E.EBADFD)         # until IORING_REGISTER_ENABLE_RINGS
    submitted = 0
    if to_submit:
        submitted = submit_sqes(t, ring, to_submit)
        if submitted != to_submit:
            return submitted
    if not flags & U.IORING_ENTER_GETEVENTS:
        return submitted
    sig, sigsz, ts = argp, argsz, 0
    if flags & U.IORING_ENTER_EXT_ARG:
        if argsz != U.GETEVENTS_ARG.size:
            raise KernelError(E.EINVAL)
        sig, sigsz, pad, ts = U.GETEVENTS_ARG.unpack(t.mem.read(argp, U.GETEVENTS_ARG.size))
        if pad:
            raise KernelError(E.EINVAL)
    try:
        return _wait(t, ring, min(min_complete, ring.rings.cq_entries), sig, sigsz, ts, submitted)
    except KernelError:
        if submitted:
            return submitted
        raise


# -- io_uring_register -------------------------------------------------------------
def _mapped(t, start: int, end: int) -> bool:
    """Whether [start, end) is all mapped (what pinning the pages needs)."""
    pos = start
    for s, e, _perms, _special in mlock.guest_vmas(t):
        if s > pos:
            break
        if e > pos:
            pos = e
            if pos >= end:
                return True
    return pos >= end


def _register_buffers(t, ring: IoUringFile, arg: int, nr: int) -> int:
    """io_sqe_buffers_register: every iovec checked and its pages there,
    or nothing registered."""
    if ring.bufs is not None:
        raise KernelError(E.EBUSY)
    if not nr or nr > U.IORING_MAX_REG_BUFFERS:
        raise KernelError(E.EINVAL)
    bufs = []
    for i in range(nr):
        base, n = _IOVEC.unpack(t.mem.read(arg + i * _IOVEC.size, _IOVEC.size))
        if not base:
            if n:
                raise KernelError(E.EFAULT)
        elif not n or n > SZ_1G:
            raise KernelError(E.EFAULT)
        elif base + n + C.PAGE_SIZE - 1 >= 1 << 64:
            raise KernelError(E.EOVERFLOW)
        elif not _mapped(t, C.page_down(base), C.page_up(base + n)):
            raise KernelError(E.EFAULT)
        bufs.append((base, base + n))
    ring.bufs = bufs
    return 0


def _probe(t, arg: int, nr: int) -> int:
    """io_probe: a zeroed struct io_uring_probe filled with what is supported."""
    if not arg or nr > U.PROBE_MAX_OPS:
        raise KernelError(E.EINVAL)
    size = U.PROBE_HDR.size + nr * U.PROBE_OP.size
    if any(t.mem.read(arg, size)):
        raise KernelError(E.EINVAL)
    n = min(nr, U.IORING_OP_LAST)
    ops = b"".join(U.PROBE_OP.pack(i, 0, U.IO_URING_OP_SUPPORTED if i in OPS else 0, 0)
                   for i in range(n))
    t.mem.write(arg, U.PROBE_HDR.pack(U.IORING_OP_LAST - 1, n) + ops)
    return 0


def _register_eventfd(t, ring: IoUringFile, arg: int, only_async: bool) -> int:
    """io_eventfd_register: the eventfd whose fd is the int at arg."""
    if ring.eventfd is not None:
        raise KernelError(E.EBUSY)
    (fd,) = struct.unpack("<i", t.mem.read(arg, 4))
    f = t.files.get(fd)
    if not isinstance(f, EventFdFile):
        raise KernelError(E.EINVAL)
    ring.set_eventfd(f, only_async)
    return 0


@syscall("io_uring_register", status=PARTIAL,
         note="BUFFERS, EVENTFD, EVENTFD_ASYNC (and their UNREGISTER), PROBE, ENABLE_RINGS; others EINVAL")
def sys_io_uring_register(t, fd, opcode, arg, nr_args, *_):
    opcode, nr_args = opcode & M32, nr_args & M32
    registered = opcode & U.IORING_REGISTER_USE_REGISTERED_RING
    opcode &= ~U.IORING_REGISTER_USE_REGISTERED_RING
    if opcode >= U.IORING_REGISTER_LAST or registered:
        raise KernelError(E.EINVAL)
    ring = _ring(t, fd)
    if opcode == U.IORING_REGISTER_BUFFERS:
        if not arg:
            raise KernelError(E.EFAULT)
        return _register_buffers(t, ring, arg, nr_args)
    if opcode == U.IORING_UNREGISTER_BUFFERS:
        if arg or nr_args:
            raise KernelError(E.EINVAL)
        if ring.bufs is None:
            raise KernelError(E.ENXIO)
        ring.bufs = None
        return 0
    if opcode == U.IORING_REGISTER_PROBE:
        return _probe(t, arg, nr_args)
    if opcode in (U.IORING_REGISTER_EVENTFD, U.IORING_REGISTER_EVENTFD_ASYNC):
        if nr_args != 1:
            raise KernelError(E.EINVAL)
        return _register_eventfd(t, ring, arg, opcode == U.IORING_REGISTER_EVENTFD_ASYNC)
    if opcode == U.IORING_UNREGISTER_EVENTFD:
        if arg or nr_args:
            raise KernelError(E.EINVAL)
        if ring.eventfd is None:
            raise KernelError(E.ENXIO)
        ring.set_eventfd(None, False)
        return 0
    if opcode == U.IORING_REGISTER_ENABLE_RINGS:
        if arg or nr_args:
            raise KernelError(E.EINVAL)
        if not ring.setup_flags & U.IORING_SETUP_R_DISABLED:
            raise KernelError(E.EBADFD)
        ring.setup_flags &= ~U.IORING_SETUP_R_DISABLED
        return 0
    printk.pr_notice(f"io_uring_register: opcode {opcode} is not supported: EINVAL")
    raise KernelError(E.EINVAL)
