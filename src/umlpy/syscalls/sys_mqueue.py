"""POSIX message queues (mq_open family): priority queues in the kernel."""
from __future__ import annotations

import bisect
import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_DAC_OVERRIDE
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import monotonic_for, read_timespec
from umlpy.kernel.wait import WaitQueue
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import read_cstr, s32
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, POLLOUT, File

DFLT_MAXMSG, DFLT_MSGSIZE = 10, 8192
HARD_MAXMSG, HARD_MSGSIZE = 65536, 1 << 20
_ATTR = struct.Struct("<qqqq32x")
SIGEV_SIGNAL, SIGEV_NONE = 0, 1
SI_MESGQ = -3
MQ_PRIO_MAX = 32768


class MQueue:
    def __init__(self, name: bytes, maxmsg: int, msgsize: int, mode: int, uid: int, gid: int) -> None:
        self.name = name
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self.mode = mode
        self.uid, self.gid = uid, gid
        self.msgs: list[tuple[int, int, bytes]] = []    # (-prio, seq, data): sorted
        self.seq = 0
        self.wq = WaitQueue("mqueue")
        self.notify: tuple | None = None      # (signals, proc, signo, value)
        self.unlinked = False

    def push(self, prio: int, data: bytes) -> None:
        was_empty = not self.msgs
        self.seq += 1
        bisect.insort(self.msgs, (-prio, self.seq, data))
        self.wq.wake_all()
        if was_empty and self.notify is not None and not self.wq.waiters:
            signals, proc, signo, value = self.notify
            self.notify = None
            if signo and not proc.exited:
                signals.send_proc(proc, signo, SI_MESGQ, ("raw", struct.pack("<iIQ", 0, 0, value)))


def _queues(t) -> dict[bytes, MQueue]:
    """The caller's IPC namespace's queues."""
    return t.proc.ns.ipc.mqueues


class MqFile(File):
    kind = "mqueue"

    def __init__(self, q: MQueue, flags: int) -> None:
        super().__init__(None, anon_inode("mqueue"), flags)
        self.q = q

    def poll(self) -> int:
        q = self.q
        return (POLLIN if q.msgs else 0) | (POLLOUT if len(q.msgs) < q.maxmsg else 0)

    def poll_queues(self) -> list:
        return [self.q.wq]

    def flush(self, fdtable) -> None:
        """The process that asked for notification closes a descriptor of
        the queue (or exits, or execs): the registration goes, as Linux's
        mqueue_flush_file, so a dead process never keeps it."""
        q = self.q
        if q.notify is not None and q.notify[1].fdtable is fdtable:
            q.notify = None


def _name(t, addr: int) -> bytes:
    name = read_cstr(t, addr, 256)
    if not name or b"/" in name or name in (b".", b".."):
        raise KernelError(E.EACCES if b"/" in name else E.EINVAL)
    if len(name) > 255:
        raise KernelError(E.ENAMETOOLONG)
    return name


@syscall("mq_open", status=PARTIAL, note="no mqueue filesystem to mount")
def sys_mq_open(t, uname, flags, mode, uattr, *_):
    name = _name(t, uname)
    qs = _queues(t)
    q = qs.get(name)
    creds = t.proc.creds
    if q is None:
        if not flags & C.O_CREAT:
            raise KernelError(E.ENOENT)
        maxmsg, msgsize = DFLT_MAXMSG, DFLT_MSGSIZE
        if uattr:
            _fl, maxmsg, msgsize, _cur = _ATTR.unpack(t.mem.read(uattr, _ATTR.size))
            if not 0 < maxmsg <= HARD_MAXMSG or not 0 < msgsize <= HARD_MSGSIZE:
                raise KernelError(E.EINVAL)
        q = qs[name] = MQueue(name, maxmsg, msgsize, mode & 0o777 & ~t.proc.fs.umask, creds.euid, creds.egid)
    elif flags & C.O_CREAT and flags & C.O_EXCL:
        raise KernelError(E.EEXIST)
    acc = flags & C.O_ACCMODE
    want = {C.O_RDONLY: 4, C.O_WRONLY: 2, C.O_RDWR: 6}.get(acc, 6)
    if not capable(creds, CAP_DAC_OVERRIDE):
        bits = q.mode >> 6 if creds.euid == q.uid else q.mode >> 3 if creds.egid == q.gid else q.mode
        if want & ~bits & 6:
            raise KernelError(E.EACCES)
    f = MqFile(q, acc | (flags & C.O_NONBLOCK))
    return t.proc.fdtable.install(f, True)     # mqd_t is close-on-exec, as Linux


@syscall("mq_unlink")
def sys_mq_unlink(t, uname, *_):
    name = _name(t, uname)
    q = _queues(t).pop(name, None)
    if q is None:
        raise KernelError(E.ENOENT)
    q.unlinked = True
    return 0


def _mq(t, fd: int) -> MqFile:
    f = t.proc.fdtable.get(s32(fd))
    if not isinstance(f, MqFile):
        raise KernelError(E.EBADF)
    return f


def _wait(q: MQueue, f: MqFile, deadline: int | None, attempt):
    """The queue is full (send) or empty (receive): fail or park."""
    if f.nonblock:
        raise KernelError(E.EAGAIN)
    if deadline is not None and clock.monotonic_ns() >= deadline:
        raise KernelError(E.ETIMEDOUT)
    raise Block(q.wq, deadline=deadline, retry=attempt, on_timeout=attempt, restart=E.ERESTARTNOHAND)


def _deadline(t, uts: int) -> int | None:
    """The absolute CLOCK_REALTIME timeout (prepare_timeout: checked
    before anything else) as a monotonic deadline."""
    if not uts:
        return None
    return monotonic_for(C.CLOCK_REALTIME, read_timespec(t, uts), True)


@syscall("mq_timedsend")
def sys_mq_timedsend(t, fd, ptr, n, prio, uts, *_):
    deadline = _deadline(t, uts)
    if prio & 0xFFFFFFFF >= MQ_PRIO_MAX:
        raise KernelError(E.EINVAL)
    f = _mq(t, fd)
    if not f.writable:
        raise KernelError(E.EBADF)
    q = f.q
    if n > q.msgsize:
        raise KernelError(E.EMSGSIZE)
    data = t.mem.read(ptr, n)

    def attempt() -> int:
        if len(q.msgs) < q.maxmsg:
            q.push(prio & 0xFFFFFFFF, data)
            return 0
        return _wait(q, f, deadline, attempt)
    return attempt()


@syscall("mq_timedreceive")
def sys_mq_timedreceive(t, fd, ptr, n, uprio, uts, *_):
    deadline = _deadline(t, uts)
    f = _mq(t, fd)
    if not f.readable:
        raise KernelError(E.EBADF)
    q = f.q
    if n < q.msgsize:
        raise KernelError(E.EMSGSIZE)

    def attempt() -> int:
        if q.msgs:
            negprio, _, data = q.msgs.pop(0)
            t.mem.write(ptr, data)
            if uprio:
                t.mem.write(uprio, struct.pack("<I", -negprio))
            q.wq.wake_all()
            return len(data)
        return _wait(q, f, deadline, attempt)
    return attempt()


@syscall("mq_notify", status=PARTIAL, note="SIGEV_SIGNAL and SIGEV_NONE; no SIGEV_THREAD")
def sys_mq_notify(t, fd, usev, *_):
    q = _mq(t, fd).q
    if not usev:
        if q.notify is not None and q.notify[1] is t.proc:
            q.notify = None
        return 0
    value, signo, notify = struct.unpack("<Qii", t.mem.read(usev, 16))
    if notify not in (SIGEV_SIGNAL, SIGEV_NONE):
        raise KernelError(E.EINVAL)
    if q.notify is not None:
        raise KernelError(E.EBUSY)
    if notify == SIGEV_SIGNAL and not 1 <= signo <= S.NSIG:
        raise KernelError(E.EINVAL)
    q.notify = (t.kernel.signals, t.proc, signo if notify == SIGEV_SIGNAL else 0, value)
    return 0


@syscall("mq_getsetattr")
def sys_mq_getsetattr(t, fd, unew, uold, *_):
    f = _mq(t, fd)
    q = f.q
    if uold:
        t.mem.write(uold, _ATTR.pack(f.flags & C.O_NONBLOCK, q.maxmsg, q.msgsize, len(q.msgs)))
    if unew:
        flags, *_rest = _ATTR.unpack(t.mem.read(unew, _ATTR.size))
        f.flags = (f.flags & ~C.O_NONBLOCK) | (flags & C.O_NONBLOCK)
    return 0
