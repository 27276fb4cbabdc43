"""POSIX message queues (mq_open family), their checks in Linux's order;
the queues are kernel/mqueue.py's."""
from __future__ import annotations

import struct

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_DAC_OVERRIDE, CAP_FOWNER
from umlpy.kernel import mqueue as M
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.timers import monotonic_for, read_timespec
from umlpy.net.netlink import NetlinkSocket
from umlpy.net.socket import Socket
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import read_cstr, s32
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, POLLOUT, File

_ATTR = struct.Struct("<qqqq32x")
NAME_MAX = 255
MQ_ROOT_UID = 0         # the owner of the mqueue filesystem's root (1777)


class MqFile(File):
    kind = "[mqueue]"

    def __init__(self, q: M.MQueue, flags: int) -> None:
        super().__init__(None, anon_inode(), flags)
        self.q = q
        q.opened += 1

    def poll(self) -> int:
        q = self.q
        return (POLLIN if q.msgs else 0) | (POLLOUT if len(q.msgs) < q.maxmsg else 0)

    def poll_queues(self) -> list:
        return [self.q.pollq]

    def flush(self, fdtable) -> None:
        """The process that asked for notification closes a descriptor of
        the queue (or exits, or execs): the registration goes, as Linux's
        mqueue_flush_file, so a dead process never keeps it."""
        q = self.q
        if q.notify is not None and q.notify.proc.fdtable is fdtable:
            q.unregister()

    def release(self) -> None:
        self.q.closed()


def _getname(t, addr: int) -> bytes:
    """getname: a path-sized string, not empty."""
    name = read_cstr(t, addr)
    if not name:
        raise KernelError(E.ENOENT)
    return name


def _lookup(name: bytes) -> bytes:
    """The queue's name as lookup_one_len takes it: ".", ".." or with a
    slash, never a queue's; at most NAME_MAX bytes."""
    if b"/" in name or name in (b".", b".."):
        raise KernelError(E.EACCES)
    if len(name) > NAME_MAX:
        raise KernelError(E.ENAMETOOLONG)
    return name


def _may(q: M.MQueue, creds, want: int) -> bool:
    """inode_permission on the queue: want 4 read, 2 write."""
    if capable(creds, CAP_DAC_OVERRIDE):
        return True
    bits = q.mode >> 6 if creds.fsuid == q.uid else q.mode >> 3 if creds.fsgid == q.gid else q.mode
    return not want & ~bits & 6


def _create(t, ns: M.MqNamespace, name: bytes, mode: int, uattr: int) -> M.MQueue:
    """A new queue with the attributes at uattr (none: the namespace's
    defaults), its mode less the umask."""
    attr = None
    if uattr:
        _fl, maxmsg, msgsize, _cur = _ATTR.unpack(t.mem.read(uattr, _ATTR.size))
        attr = (maxmsg, msgsize)
    return ns.create(name, t.proc.creds, mode & 0o777 & ~t.fs.umask, attr, t.proc.rlimit(C.RLIMIT_MSGQUEUE)[0])


@syscall("mq_open")
def sys_mq_open(t, uname, flags, mode, uattr, *_):
    flags = s32(flags)
    fdt = t.files
    name = _getname(t, uname)
    fdt.check_room()        # the descriptor before the lookup (EMFILE), as get_unused_fd_flags
    name = _lookup(name)
    ns = M.mq_of(t.proc)
    q = ns.queues.get(name)
    acc = flags & C.O_ACCMODE
    if q is None:
        if not flags & C.O_CREAT:
            raise KernelError(E.ENOENT)
        q = _create(t, ns, name, mode, uattr)
    else:
        if flags & C.O_CREAT and flags & C.O_EXCL:
            raise KernelError(E.EEXIST)
        if acc == C.O_ACCMODE:
            raise KernelError(E.EINVAL)
        if not _may(q, t.proc.creds, {C.O_RDONLY: 4, C.O_WRONLY: 2, C.O_RDWR: 6}[acc]):
            raise KernelError(E.EACCES)
    f = MqFile(q, acc | (flags & C.O_NONBLOCK))
    return fdt.install(f, True)     # mqd_t is close-on-exec, as Linux


@syscall("mq_unlink")
def sys_mq_unlink(t, uname, *_):
    name = _lookup(_getname(t, uname))
    ns = M.mq_of(t.proc)
    q = ns.queues.get(name)
    if q is None:
        raise KernelError(E.ENOENT)
    creds = t.proc.creds
    # the root is sticky (1777): only the queue's owner, the root's
    # (uid 0) or CAP_FOWNER may remove it; mq_unlink says EACCES
    if creds.fsuid not in (q.uid, MQ_ROOT_UID) and not capable(creds, CAP_FOWNER):
        raise KernelError(E.EACCES)
    ns.unlink(name)
    return 0


def _mq(t, fd: int) -> MqFile:
    f = t.files.get(s32(fd))
    if not isinstance(f, MqFile):
        raise KernelError(E.EBADF)
    return f


def _wait(wq, f: MqFile, deadline: int | None, attempt, receiver: M.Receiver | None = None):
    """The queue is full (send) or empty (receive): fail or park (a
    receiver among its queue's receivers while it sleeps)."""
    if f.nonblock:
        raise KernelError(E.EAGAIN)
    if deadline is not None and clock.monotonic_ns() >= deadline:
        raise KernelError(E.ETIMEDOUT)
    leave = None
    if receiver is not None:
        f.q.sleep(receiver)
        leave = lambda: f.q.leave(receiver)     # noqa: E731
    # wq_sleep's ERESTARTSYS: SA_RESTART makes it again (signal(7)); its end time is absolute
    raise Block(wq, deadline=deadline, retry=attempt, on_timeout=attempt, restart=E.ERESTARTSYS,
                on_interrupt=leave)


def _deadline(t, uts: int) -> int | None:
    """The absolute CLOCK_REALTIME timeout (prepare_timeout: checked
    before anything else) as a monotonic deadline."""
    if not uts:
        return None
    return monotonic_for(C.CLOCK_REALTIME, read_timespec(t, uts), True)


@syscall("mq_timedsend")
def sys_mq_timedsend(t, fd, ptr, n, prio, uts, *_):
    deadline = _deadline(t, uts)
    if prio & 0xFFFFFFFF >= M.MQ_PRIO_MAX:
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
            q.push(t.proc, prio & 0xFFFFFFFF, data)
            return 0
        return _wait(q.writers, f, deadline, attempt)
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

    me = M.Receiver(t.sched.normal_prio())

    def attempt() -> int:
        q.leave(me)                 # (a timeout, or a wake-up for nothing)
        if me.got is not None:      # a sender handed it over while it slept
            prio, data = me.got
        elif not q.msgs:
            return _wait(me.wq, f, deadline, attempt, me)
        else:
            prio, data = q.pop()    # a copy that faults loses it, as Linux's
        t.mem.write(ptr, data)
        if uprio:
            t.mem.write(uprio, struct.pack("<I", prio))
        return len(data)
    return attempt()


@syscall("mq_notify", note="SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD (the cookie to the C library's netlink socket)")
def sys_mq_notify(t, fd, usev, *_):
    n = None
    if usev:
        value, signo, how = struct.unpack("<Qii", t.mem.read(usev, 16))
        if how not in (M.SIGEV_SIGNAL, M.SIGEV_NONE, M.SIGEV_THREAD):
            raise KernelError(E.EINVAL)
        if how == M.SIGEV_SIGNAL and not 0 <= signo <= S.NSIG:
            raise KernelError(E.EINVAL)
        n = M.Notify(t.proc, how, signo, value)
        if how == M.SIGEV_THREAD:
            # the cookie, then the netlink socket sigev_signo names
            n.cookie = t.mem.read(value, M.NOTIFY_COOKIE_LEN)
            sock = t.files.get(signo)
            if not isinstance(sock, Socket):
                raise KernelError(E.ENOTSOCK)
            if not isinstance(sock, NetlinkSocket):
                raise KernelError(E.EINVAL)
            n.sock = sock
    q = _mq(t, fd).q
    if n is None:
        if q.notify is not None and q.notify.proc is t.proc:
            q.unregister()
    elif q.notify is not None:
        raise KernelError(E.EBUSY)
    else:
        q.notify = n
    return 0


@syscall("mq_getsetattr")
def sys_mq_getsetattr(t, fd, unew, uold, *_):
    new = _ATTR.unpack(t.mem.read(unew, _ATTR.size)) if unew else None
    if new is not None and new[0] & ~C.O_NONBLOCK:
        raise KernelError(E.EINVAL)
    f = _mq(t, fd)
    q = f.q
    if uold:
        t.mem.write(uold, _ATTR.pack(f.flags & C.O_NONBLOCK, q.maxmsg, q.msgsize, len(q.msgs)))
    if new is not None:
        f.flags = (f.flags & ~C.O_NONBLOCK) | (new[0] & C.O_NONBLOCK)
    return 0
