"""POSIX message queues: the queues and the namespace that holds them.

A queue is a priority list of messages with Linux's limits: the namespace's
sysctls (/proc/sys/fs/mqueue: queues_max, msg_max, msgsize_max and the
defaults), and each user's RLIMIT_MSGQUEUE, charged with what Linux
charges a queue (its messages at full size and their bookkeeping).  A
queue counts until its last descriptor closes after mq_unlink, as Linux's
inode does.

One process may ask to be told when the queue goes from empty to
non-empty while nobody waits in mq_receive (mq_notify): by a signal
(SI_MESGQ, the sender's pid and uid, the registered value), or for
SIGEV_THREAD, by the 32-byte cookie the C library gave, sent to the
netlink socket it named with its last byte NOTIFY_WOKENUP (NOTIFY_REMOVED
when the registration goes without a notification), as Linux does.
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_RESOURCE
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.ipc import msg_cost
from umlpy.kernel.mm import Charge
from umlpy.kernel.wait import WaitQueue

SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD = 0, 1, 2
SI_MESGQ = -3
MQ_PRIO_MAX = 32768
NOTIFY_COOKIE_LEN = 32
NOTIFY_WOKENUP, NOTIFY_REMOVED = 1, 2
# Linux's defaults and hard limits (ipc/mqueue.c, include/linux/ipc_namespace.h)
DFLT_QUEUESMAX = 256
DFLT_MSG = DFLT_MSGMAX = 10
DFLT_MSGSIZE = DFLT_MSGSIZEMAX = 8192
MIN_MSGMAX, HARD_MSGMAX = 1, 65536
MIN_MSGSIZEMAX, HARD_MSGSIZEMAX = 128, 16 * 1024 * 1024
MSG_MSG_SIZE = 48               # sizeof(struct msg_msg)
TREE_NODE_SIZE = 48             # sizeof(struct posix_msg_tree_node)


@dataclass
class Notify:
    """A registration: who (the process), how (SIGEV_*), the signal and
    value, or the netlink socket and cookie of SIGEV_THREAD."""
    proc: object
    how: int
    signo: int = 0
    value: int = 0
    sock: object = None
    cookie: bytes = b""

    def tell(self, what: int) -> None:
        """SIGEV_THREAD: the cookie, its last byte saying what happened, to
        the netlink socket (if a descriptor still has it: else nobody
        could read it)."""
        if self.sock.refs:
            self.sock.deliver(self.cookie[:-1] + bytes([what]))


class Receiver:
    """An mq_timedreceive asleep, its task's priority (normal_prio: lower
    first), and the message a sender handed it."""
    __slots__ = ("wq", "got", "prio")

    def __init__(self, prio: int) -> None:
        self.wq = WaitQueue("mqueue receive")
        self.got: tuple[int, bytes] | None = None
        self.prio = prio


class MQueue:
    def __init__(self, ns: MqNamespace, name: bytes, maxmsg: int, msgsize: int, mode: int,
                 uid: int, gid: int) -> None:
        self.ns = ns
        self.name = name
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self.mode = mode
        self.uid, self.gid = uid, gid
        self.msgs: list[tuple[int, int, bytes]] = []    # (-prio, seq, data): sorted
        self.seq = 0
        # blocked in mq_timedreceive, by priority, each in the order they
        # came: a message goes straight to the first of the highest
        # (wq_add's order, pipelined_send), never to all of them
        self.readers: dict[int, dict[Receiver, None]] = {}
        self.writers = WaitQueue("mqueue send")        # blocked in mq_timedsend
        self.pollq = WaitQueue("mqueue poll")          # poll, select, epoll
        self.notify: Notify | None = None
        self.unlinked = False
        self.opened = 0             # open descriptions (the inode lives while one is)
        self.charged = (uid, self.bytes())
        # its messages in the machine's RAM, as load_msg allocates them: root
        # may raise RLIMIT_MSGQUEUE, the queue count and sizes past any RAM
        self.kmem = Charge(ns.signals.k.mem_budget, self)

    def bytes(self) -> int:
        """What the queue charges its creator's RLIMIT_MSGQUEUE."""
        tree = self.maxmsg * MSG_MSG_SIZE + min(self.maxmsg, MQ_PRIO_MAX) * TREE_NODE_SIZE
        return self.maxmsg * self.msgsize + tree

    def push(self, sender, prio: int, data: bytes) -> None:
        """A message arrives: the first receiver asleep gets it as it is
        (the queue stays empty), or it is queued and (the queue was empty)
        the registered process is told."""
        self.kmem.add(msg_cost(len(data)))      # ENOMEM past RAM, as load_msg's allocation
        if self.readers:
            self.kmem.sub(msg_cost(len(data)))  # the receiver's own from here
            r = next(iter(self.readers[min(self.readers)]))
            self.leave(r)
            r.got = (prio, data)
            r.wq.wake_all()
            return
        self.seq += 1
        bisect.insort(self.msgs, (-prio, self.seq, data))
        if len(self.msgs) == 1 and self.notify is not None:
            self._notify(sender)
        self.pollq.wake_all()

    def sleep(self, r: Receiver) -> None:
        self.readers.setdefault(r.prio, {})[r] = None

    def leave(self, r: Receiver) -> None:
        """r no longer waits (handed a message, woken for nothing, timed
        out or interrupted)."""
        same = self.readers.get(r.prio)
        if same is not None and r in same:
            del same[r]
            if not same:
                del self.readers[r.prio]

    def pop(self) -> tuple[int, bytes]:
        negprio, _, data = self.msgs.pop(0)
        self.kmem.sub(msg_cost(len(data)))
        self.writers.wake_all()
        self.pollq.wake_all()
        return -negprio, data

    def _notify(self, sender) -> None:
        n, self.notify = self.notify, None
        if n.how == SIGEV_SIGNAL and n.signo and not n.proc.exited:
            signals = self.ns.signals
            pid = signals.k.procs.vnr(n.proc, sender.pid)       # as the receiver's pid namespace sees it
            fields = struct.pack("<iIQ", pid, sender.creds.uid, n.value)
            signals.send_proc(n.proc, n.signo, SI_MESGQ, ("raw", fields))
        elif n.how == SIGEV_THREAD:
            n.tell(NOTIFY_WOKENUP)

    def unregister(self) -> None:
        """The registration goes without a notification."""
        n, self.notify = self.notify, None
        if n is not None and n.how == SIGEV_THREAD:
            n.tell(NOTIFY_REMOVED)

    def closed(self) -> None:
        """An open description of the queue went."""
        self.opened -= 1
        self.ns.maybe_free(self)


class MqNamespace:
    """An IPC namespace's message queues by name, and the limits on them."""

    def __init__(self, signals) -> None:
        self.signals = signals
        self.queues: dict[bytes, MQueue] = {}
        self.count = 0              # queues alive, named or not (mq_queues_count)
        self.user_bytes: dict[int, int] = {}     # uid -> RLIMIT_MSGQUEUE charge
        self.queues_max = DFLT_QUEUESMAX
        self.msg_max = DFLT_MSGMAX
        self.msgsize_max = DFLT_MSGSIZEMAX
        self.msg_default = DFLT_MSG
        self.msgsize_default = DFLT_MSGSIZE

    def create(self, name: bytes, creds, mode: int, attr: tuple[int, int] | None, rlimit: int) -> MQueue:
        """mqueue_create_attr and mqueue_get_inode, for mq_open(O_CREAT) and
        for a file made in a mounted mqueue (no attributes: the defaults):
        room among queues_max (ENOSPC, unless CAP_SYS_RESOURCE), maxmsg and
        msgsize within the sysctls (the hard limits for CAP_SYS_RESOURCE),
        the creator's RLIMIT_MSGQUEUE (EMFILE); owned by its fsuid and fsgid."""
        if self.count >= self.queues_max and not capable(creds, CAP_SYS_RESOURCE):
            raise KernelError(E.ENOSPC)
        maxmsg, msgsize = attr if attr is not None else (self.msg_default, self.msgsize_default)
        if maxmsg <= 0 or msgsize <= 0:
            raise KernelError(E.EINVAL)
        if capable(creds, CAP_SYS_RESOURCE):
            if maxmsg > HARD_MSGMAX or msgsize > HARD_MSGSIZEMAX:
                raise KernelError(E.EINVAL)
        elif maxmsg > self.msg_max or msgsize > self.msgsize_max:
            raise KernelError(E.EINVAL)
        q = MQueue(self, name, maxmsg, msgsize, mode, creds.fsuid, creds.fsgid)
        if not self.charge(q, rlimit):
            raise KernelError(E.EMFILE)
        self.queues[name] = q
        return q

    def charge(self, q: MQueue, limit: int) -> bool:
        uid, n = q.charged
        total = self.user_bytes.get(uid, 0) + n
        if total > limit:
            return False
        self.user_bytes[uid] = total
        self.count += 1
        return True

    def unlink(self, name: bytes) -> MQueue | None:
        q = self.queues.pop(name, None)
        if q is not None:
            q.unlinked = True
            self.maybe_free(q)
        return q

    def maybe_free(self, q: MQueue) -> None:
        """Unlinked and closed: the queue's charge and count go."""
        if q.unlinked and q.opened == 0 and q.charged[1]:
            uid, n = q.charged
            self.user_bytes[uid] -= n
            self.count -= 1
            q.charged = (uid, 0)
            q.unregister()
            q.msgs.clear()
            q.kmem.drop()


def mq_of(proc) -> MqNamespace:
    """The queues of the process's IPC namespace."""
    return proc.ns.ipc.mq


def status_line(q: MQueue) -> bytes:
    """What reading the queue's file in a mounted mqueue shows."""
    n = q.notify
    qsize = sum(len(m[2]) for m in q.msgs)
    return (f"QSIZE:{qsize:<10} NOTIFY:{n.how if n else 0:<5} "
            f"SIGNO:{n.signo if n and n.how == SIGEV_SIGNAL else 0:<5} "
            f"NOTIFY_PID:{n.proc.pid if n else 0:<6}\n").encode()
