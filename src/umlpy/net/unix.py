"""AF_UNIX sockets: stream, datagram and seqpacket, in the kernel.

A connected pair shares nothing but references: each socket owns its
receive queue (bytes for stream, messages for datagram/seqpacket) and a
writer appends to its peer's.  Names are filesystem sockets (an S_IFSOCK
inode whose `socket` attribute is the bound socket) or abstract names.
Control messages carry open files (SCM_RIGHTS) and credentials
(SCM_CREDENTIALS) as kernel objects, never host fds.
"""
from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN
from umlpy.kernel.cred import NO_ID, capable
from umlpy.kernel.errors import Block, KernelError
from umlpy.net.netdev import net_of
from umlpy.net.socket import (AF_UNIX, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_OOB,
                              MSG_PEEK, MSG_TRUNC, MSG_WAITALL, RCVSHUTDOWN, SHUT_RD, SHUT_RDWR,
                              SHUT_WR, SNDSHUTDOWN, SO, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM,
                              SOL_SOCKET, Received, Socket, register_family)
from umlpy.net.sockios import SIOCATMARK, SIOCINQ, SIOCOUTQ
from umlpy.net.unix_gc import Inflight
from umlpy.security import landlock
from umlpy.vfs import namei
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRBAND, POLLWRNORM
from umlpy.vfs.fown import POLL_HUP, POLL_IN
from umlpy.vfs.perm import new_inode_owner, permission

DEFAULT_BUF = 212992
MAX_BACKLOG = 4096
POLLRDHUP = 0x2000
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
SCM_MAX_FD = 253
_UCRED = struct.Struct("<iII")



@dataclass
class Message:
    data: bytes
    files: list = field(default_factory=list)     # SCM_RIGHTS
    creds: tuple | None = None                    # (pid, uid, gid)
    sender: bytes | None = None                   # sender's address (datagrams)
    charged_to: UnixSocket | None = None          # the sending socket, until received
    size: int = 0                                 # what it costs that socket (truesize)
    span: int | None = None                       # a stream's: bytes of the skb the files ride with
    ledger: Inflight | None = None                # where its files count as in flight, and for whom
    stamp: int = 0                                # arrival (realtime ns) for SO_TIMESTAMP; 0: not stamped
    uid: int = 0

    def charge(self, ledger: Inflight, uid: int) -> None:
        """Its files are in flight, sent by the user uid (unix_attach_fds)."""
        if self.files:
            ledger.attach(uid, self.files)
            self.ledger, self.uid = ledger, uid

    def take_files(self) -> list:
        """Its files leave the queue, received or dropped (unix_detach_fds)."""
        files, self.files = self.files, []
        if self.ledger is not None:
            self.ledger.detach(self.uid, files)
            self.ledger = None
        return files


MAX_DGRAM_QLEN = 10         # net.unix.max_dgram_qlen
SKB_MAX_HEAD = 3776         # SKB_MAX_HEAD(0): a stream skb's bytes in its head, the rest in pages
SKB_STREAM_MAX = SKB_MAX_HEAD + 32768   # + UNIX_SKB_FRAGS_SZ: a stream send's largest skb
SKB_SMALL_HEAD, SKB_HEAD_MAX, SKB_OVERHEAD, SKB_SHINFO = 512, 16384, 256, 320


def _head_cost(head: int) -> int:
    """An skb with a linear head of that many bytes: the head from a
    power-of-two kmalloc cache with the shared info behind it, and the
    sk_buff itself."""
    return max(SKB_SMALL_HEAD, 1 << (head + SKB_SHINFO - 1).bit_length()) + SKB_OVERHEAD


def stream_truesize(n: int) -> int:
    """What a stream skb of n bytes costs its sender (unix_stream_sendmsg's
    head of up to SKB_MAX_HEAD bytes, the rest in whole pages)."""
    paged = min(n, (max(0, n - SKB_MAX_HEAD) + 4095) // 4096 * 4096)
    return _head_cost(n - paged) + paged


def truesize(n: int) -> int:
    """What a datagram of n bytes costs its sender's send buffer, as
    Linux's skb truesize (a head from a power-of-two cache, then pages):
    many small datagrams fill a buffer long before their bytes do, so a
    socket holds a few hundred of them, not hundreds of thousands."""
    if n + SKB_SHINFO <= SKB_HEAD_MAX:
        return _head_cost(n)
    rest = n - (SKB_HEAD_MAX - SKB_SHINFO)
    return SKB_HEAD_MAX + SKB_OVERHEAD + (rest + 4095) // 4096 * 4096


class UnixSocket(Socket):
    """Datagrams are taken whole (_send_message), streams as they fit."""
    family = AF_UNIX
    runs_sk_filter = True   # datagrams and records are filtered; streams never are, as on Linux
    inflight = 0            # messages in queues that carry it (net/unix_gc.py)

    def __init__(self, t, stype: int, flags: int) -> None:
        super().__init__(stype, 0, flags)
        # the stack's registry of live unix sockets (/proc/net/unix)
        self.registry: dict = net_of(t).unix_sockets
        self.registry[self] = None
        self.net = net_of(t)                      # its sk_mem bounds what all sockets queue
        self.ledger: Inflight = t.kernel.unix_inflight
        self.peer: UnixSocket | None = None
        # a stream's far end, kept after it closes: its bytes still queued
        # here are named after it (recvmsg's address)
        self.sent_by: UnixSocket | None = None
        # the name of a stream peer that closed: Linux keeps the pointer to
        # it until this socket goes, so getpeername and accept still see it
        self.gone_peer_name: tuple[bytes | None] | None = None
        self.name: bytes | None = None            # the address bound (sun_path bytes)
        self.backlog = 0
        self.pending: deque[UnixSocket] = deque()
        self.stream = bytearray()                  # SOCK_STREAM receive buffer
        # its skbs: [bytes not read yet, truesize, the sender charged for it]
        self.stream_skbs: deque[list] = deque()
        self.stream_meta: list[tuple[int, Message]] = []   # (offset, message with files/creds)
        self.msgs: deque[Message] = deque()        # DGRAM/SEQPACKET receive queue
        self.shut = 0
        self.peer_shut = 0
        self.passcred = False
        self.peercred: tuple[int, int, int] | None = None
        self.connected_once = False
        self.bound_inode = None
        self.bound_dentry = None    # where bind made bound_inode (a checkpoint finds it by path)
        self.wmem = 0           # truesize of what it sent that is not received yet

    # -- state ------------------------------------------------------------------
    def has_data(self) -> bool:
        return bool(self.stream) if self.stype == SOCK_STREAM else bool(self.msgs)

    def consumed(self, n: int) -> None:
        """n bytes read off the stream: the skbs emptied stop costing their
        senders (their POLLOUT may come back)."""
        q = self.stream_skbs
        while n and q:
            rec = q[0]
            take = min(n, rec[0])
            rec[0] -= take
            n -= take
            if not rec[0]:
                q.popleft()
                rec[2].wmem -= rec[1]
                rec[2].wake()

    def may_send(self, target: UnixSocket) -> bool:
        """A datagram or record may go from here to target: this socket's
        send buffer is not full, and a receiver that is not our peer has
        fewer than max_dgram_qlen waiting (unix_dgram_sendmsg)."""
        return self.wmem < self.sndbuf and (target.peer is self or len(target.msgs) <= MAX_DGRAM_QLEN)

    def _writable(self, target: UnixSocket | None) -> bool:
        """POLLOUT for datagrams and records (unix_writable, unix_dgram_poll)."""
        return self.wmem * 4 <= self.sndbuf and (
            target is None or target.peer is self or len(target.msgs) <= MAX_DGRAM_QLEN)

    def sk_shutdown(self) -> int:
        """Linux's sk_shutdown: what this socket stopped, and for a stream or
        seqpacket socket what its peer's shutdown or close stopped here (the
        peer's sending ends our receiving, and the other way round)."""
        if self.stype == SOCK_DGRAM:
            return self.shut
        mirror = (RCVSHUTDOWN if self.peer_shut & SNDSHUTDOWN else 0) | \
            (SNDSHUTDOWN if self.peer_shut & RCVSHUTDOWN else 0)
        return self.shut | mirror

    def poll(self) -> int:
        """unix_poll and unix_dgram_poll: writable whatever the shutdown state
        ("prevents stuck sockets"), hung up when both ways are shut or a
        stream or seqpacket socket is not connected (TCP_CLOSE)."""
        shut = self.sk_shutdown()
        ev = POLLERR if self.error else 0
        if shut == RCVSHUTDOWN | SNDSHUTDOWN:
            ev |= POLLHUP
        if shut & RCVSHUTDOWN:
            ev |= POLLRDHUP | POLLIN | POLLRDNORM
        if self.has_data() or self.listening and self.pending:
            ev |= POLLIN | POLLRDNORM
        if self.listening:
            return ev
        if self.stype != SOCK_DGRAM and not self.connected_once:
            ev |= POLLHUP
        peer = self.peer
        if self.stype == SOCK_STREAM:
            writable = self.wmem * 4 <= self.sndbuf     # unix_writable
        else:
            writable = self._writable(peer)
        if writable:
            ev |= POLLOUT | POLLWRNORM | POLLWRBAND
        return ev

    def release(self) -> None:
        self.registry.pop(self, None)
        for s in self.pending:
            s.put_unused()
        self.pending.clear()
        peer = self.peer
        if peer is not None:
            if peer.stype != SOCK_DGRAM:
                peer.peer, peer.gone_peer_name = None, (self.name,)
            peer.peer_shut = RCVSHUTDOWN | SNDSHUTDOWN
            if peer.stype != SOCK_DGRAM and (self.has_data()):
                peer.error = E.ECONNRESET
            peer.wake()
            if peer.stype != SOCK_DGRAM:
                peer.kill_fasync(POLL_HUP)
        for m in self.msgs:
            _received(m)
            for f in m.take_files():
                f.put()
        self.msgs.clear()
        for _, m in self.stream_meta:
            for f in m.take_files():
                f.put()
        self.net.sk_mem -= len(self.stream)
        self.consumed(len(self.stream))
        self.stream.clear()
        if self.name is not None and self.name.startswith(b"\0"):
            self.net.unix_abstract.pop(self.name, None)
        if self.bound_inode is not None:
            self.bound_inode.socket = None
        self.wake()
        if self.ledger.sockets:
            self.ledger.collect()


    # -- the proto_ops (net/socket.py) --------------------------------------------
    def bind(self, t, raw: bytes) -> None:
        _bind(t, self, raw)

    def connect(self, t, raw: bytes) -> None:
        connect(t, self, _lookup(t, parse_sockaddr(raw)))

    def listen(self, t, backlog: int) -> None:
        _listen(t, self, backlog)

    def accept(self, t, flags: int) -> UnixSocket:
        return accept(t, self)

    def getname(self, t, peer: int) -> bytes:
        if not peer:
            return sockaddr(self.name)
        if self.peer is None:
            if self.gone_peer_name is None:
                raise KernelError(E.ENOTCONN)
            return sockaddr(self.gone_peer_name[0])
        return sockaddr(self.peer.name)

    def check_size(self, n: int) -> None:
        check_size(self, n)

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        """An address is looked up for datagrams only: a stream refuses one
        (unix_stream_sendmsg), a seqpacket socket ignores it."""
        if self.stype == SOCK_STREAM and addr is not None:
            raise KernelError(E.EISCONN if self.connected_once else E.EOPNOTSUPP)
        dest = _lookup(t, parse_sockaddr(addr)) if addr is not None and self.stype == SOCK_DGRAM else None
        return send(t, self, data, flags, dest, scm_files(t, cmsgs))

    def recvmsg(self, t, n: int, flags: int) -> Received:
        r = recv(t, self, n, flags)
        # an unnamed sender leaves msg_namelen 0 (unix_copy_addr copies nothing)
        r.sender = sockaddr(r.sender) if r.sender is not None else b""
        return r

    def unrecv(self, r: Received) -> None:
        unrecv(self, r)

    def shutdown(self, t, how: int) -> None:
        _shutdown(self, how)

    def ioctl(self, task, req: int, arg: int) -> int:
        """unix_ioctl: what is queued to read (a stream's or seqpacket
        socket's whole queue, a datagram socket's next datagram), what was
        sent and is not read yet, and the OOB mark (none is ever sent here);
        the rest as every socket's."""
        if req == SIOCINQ:
            if self.listening:
                raise KernelError(E.EINVAL)
            if self.stype == SOCK_STREAM:
                v = len(self.stream)
            elif self.stype == SOCK_SEQPACKET:
                v = sum(len(m.data) for m in self.msgs)
            else:
                v = len(self.msgs[0].data) if self.msgs else 0
        elif req == SIOCOUTQ:
            v = self.wmem       # unix_outq_len: what it sent that is not read yet, in truesize
        elif req == SIOCATMARK:
            v = 0
        else:
            return super().ioctl(task, req, arg)
        task.mem.write(arg, struct.pack("<i", v))
        return 0

    def getsockopt(self, t, level: int, opt: int, cap: int, arg) -> bytes:
        if level == SOL_SOCKET and opt == SO["SO_ACCEPTCONN"]:
            return struct.pack("<i", int(self.listening))
        return super().getsockopt(t, level, opt, cap, arg)


def abstract_bind(name: bytes, s: UnixSocket) -> None:
    """Abstract names are the socket's network namespace's."""
    names = s.net.unix_abstract
    if name in names:
        raise KernelError(E.EADDRINUSE)
    names[name] = s



def _creds(task) -> tuple[int, int, int]:
    """A sender's (pid, uid, gid); the pid is the kernel's, each reader sees its own view."""
    c = task.proc.creds
    return task.proc.pid, c.euid, c.egid


def _epipe(task, s: UnixSocket, flags: int):
    """EPIPE; a stream socket also raises SIGPIPE (unix_stream_sendmsg),
    datagram and seqpacket ones never do (unix_dgram_sendmsg)."""
    if s.stype == SOCK_STREAM and not flags & MSG_NOSIGNAL:
        task.kernel.signals.send_sig(task, S.SIGPIPE)
    raise KernelError(E.EPIPE)


def send(task, s: UnixSocket, data: bytes, flags: int, dest: UnixSocket | None, files: list) -> int:
    """Queue data (with files) on the receiving socket; blocks for room."""
    nonblock = s.nonblock or flags & MSG_DONTWAIT
    if s.stype == SOCK_SEQPACKET and not s.connected_once:
        raise KernelError(E.ENOTCONN)       # unix_seqpacket_sendmsg: not established
    if flags & MSG_OOB:
        raise KernelError(E.EOPNOTSUPP)
    if s.stype == SOCK_STREAM and not s.connected_once:
        raise KernelError(E.ENOTCONN)       # before the shutdown state (unix_stream_sendmsg)
    if s.sk_shutdown() & SNDSHUTDOWN:
        _epipe(task, s, flags)
    creds = _creds(task)
    if files:
        s.ledger.before_send(task)
    if s.stype == SOCK_DGRAM:
        target = dest or s.peer
        if target is None:
            raise KernelError(E.ENOTCONN if dest is None else E.ECONNREFUSED)
        if target.refs <= 0 and target.bound_inode is None and target.name is None:
            raise KernelError(E.ECONNREFUSED)
        return _send_message(task, s, target, data, files, creds, nonblock)
    peer = s.peer
    if peer is None or peer.shut & RCVSHUTDOWN:
        _epipe(task, s, flags)
    if s.stype == SOCK_SEQPACKET:
        return _send_message(task, s, peer, data, files, creds, nonblock)
    return _send_stream(task, s, peer, data, flags, files, creds, 0, nonblock)


def check_size(s: UnixSocket, n: int) -> None:
    """A datagram or record bigger than the send buffer is EMSGSIZE, checked
    before its bytes are copied in (unix_dgram_sendmsg)."""
    if s.stype != SOCK_STREAM and n > s.sndbuf - 32:
        raise KernelError(E.EMSGSIZE)


def _send_message(task, s: UnixSocket, target: UnixSocket, data: bytes, files: list, creds, nonblock) -> int:
    """One datagram or seqpacket record, whole, onto the receiver's queue,
    charged to the sender's send buffer until it is received."""
    check_size(s, len(data))
    sent = len(data)
    if target.sk_filter is not None:
        # before the wait for room, and again after it (unix_dgram_sendmsg's restart)
        kept = target.filtered(data[:])
        if kept is None:
            return sent     # tossed by the receiver's filter: the sender is not told
        data = kept
    size = truesize(len(data))
    net = s.net
    if not s.may_send(target) or (net.sk_mem + size > net.sk_mem_limit and target.msgs):
        if nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(s.wq, target.wq)
    data = data[:]          # a UserBuf's bytes, now that the datagram goes
    m = Message(data, [f.get() for f in files], creds, s.name, s, size)
    if target.rcvtstamp:
        m.stamp = clock.realtime_ns()
    m.charge(s.ledger, task.proc.creds.uid)
    s.wmem += m.size
    net.sk_mem += m.size
    target.msgs.append(m)
    target.wake()
    target.kill_fasync(POLL_IN)     # sock_def_readable
    return sent


def _received(m: Message) -> None:
    """A message leaves its receiver's queue: its sender may send again."""
    s = m.charged_to
    if s is not None:
        m.charged_to = None
        s.wmem -= m.size
        s.net.sk_mem -= m.size
        s.wake()


def _send_stream(task, s, peer, data: bytes, flags: int, files: list, creds, done: int, nonblock) -> int:
    if files:
        # the files travel with the first skb of this send (SCM_RIGHTS),
        # which unix_stream_sendmsg cuts at half the send buffer and
        # SKB_MAX_HEAD plus 32 KiB of pages
        span = min(len(data) - done, (s.sndbuf >> 1) - 64, SKB_STREAM_MAX)
        m = Message(b"", [f.get() for f in files], creds, span=span)
        m.charge(s.ledger, task.proc.creds.uid)
        peer.stream_meta.append((len(peer.stream), m))
    while done < len(data):
        if s.peer is not peer or peer.shut & RCVSHUTDOWN:
            if done:
                return done
            _epipe(task, s, flags)
        # an skb at a time, while the sender's skbs not read yet cost less
        # than its send buffer (sock_alloc_send_pskb)
        space = min(len(data) - done, (s.sndbuf >> 1) - 64, SKB_STREAM_MAX)
        net = peer.net
        if peer.stream:     # the kernel-wide bound (net.sk_mem); an empty buffer always takes some
            space = min(space, net.sk_mem_limit - net.sk_mem)
        if space <= 0 or s.wmem >= s.sndbuf:
            if nonblock:
                if done:
                    return done
                raise KernelError(E.EAGAIN)
            d = done
            raise Block(s.wq, peer.wq, retry=lambda: _send_stream(task, s, peer, data, flags, [], creds, d, nonblock),
                        interrupted_result=(d or None))
        chunk = data[done:done + space]
        cost = stream_truesize(len(chunk))
        s.wmem += cost
        peer.stream_skbs.append([len(chunk), cost, s])
        peer.stream += chunk
        net.sk_mem += len(chunk)
        done += len(chunk)
        peer.wake()
        peer.kill_fasync(POLL_IN)
    return done


def recv(task, s: UnixSocket, n: int, flags: int) -> Received:
    nonblock = s.nonblock or flags & MSG_DONTWAIT
    if s.stype == SOCK_SEQPACKET and not s.connected_once:
        raise KernelError(E.ENOTCONN)       # unix_seqpacket_recvmsg: not established
    if flags & MSG_OOB:
        raise KernelError(E.EOPNOTSUPP)
    if s.stype == SOCK_STREAM:
        if not s.connected_once:
            raise KernelError(E.EINVAL)     # unix_stream_read_generic: not established
        return _recv_stream(s, n, flags, nonblock)
    if not s.msgs:
        if s.error:
            err, s.error = s.error, 0
            raise KernelError(err)
        # the end of a shut receiving side: a datagram socket only tells a
        # caller that would wait (__unix_dgram_recvmsg)
        eof = bool(s.sk_shutdown() & RCVSHUTDOWN)
        if eof and s.stype == SOCK_SEQPACKET:
            return Received(b"", [], None, None)
        if nonblock:
            raise KernelError(E.EAGAIN)
        if eof:
            return Received(b"", [], None, None)
        raise Block(s.wq)
    m = s.msgs[0]
    out = Received(m.data[:n], [], m.creds, m.sender, full_len=len(m.data))
    if len(m.data) > n:
        out.flags |= MSG_TRUNC
    if s.rcvtstamp:
        out.cmsgs = [s.timestamp_cmsg(m.stamp)]
    if not flags & MSG_PEEK:
        s.msgs.popleft()
        _received(m)
        out.files = m.take_files()
        s.wake()
    else:       # a peek gets copies of the files (scm_fp_dup)
        out.files = [f.get() for f in m.files]
    return out


def _recv_stream(s, n: int, flags: int, nonblock) -> Received:
    """Blocking waits re-run the whole syscall (a plain Block), so nothing is
    consumed before it can be returned; MSG_WAITALL waits for all n bytes
    (or the end of the stream) before taking any."""
    creds = s.peercred
    peer_gone = s.peer is None or s.sk_shutdown() & RCVSHUTDOWN
    enough = s.stream and (not flags & MSG_WAITALL or len(s.stream) >= n or peer_gone)
    if enough:
        limit = min(n, _glued(s.stream_meta, n))
        chunk = bytes(s.stream[:limit])
        # named as the socket that sent it (unix_copy_addr of skb->sk): the
        # peer, whose name an accepted socket has from its listener
        src = s.sent_by or s.peer
        sender = src.name if src is not None else None
        if flags & MSG_PEEK:        # the files too, as copies (unix_peek_fds)
            peeked = [f.get() for off, m in s.stream_meta if off < len(chunk) for f in m.files]
            return Received(chunk, peeked, creds, sender, full_len=len(chunk))
        del s.stream[:len(chunk)]
        s.net.sk_mem -= len(chunk)
        s.consumed(len(chunk))
        files, keep = [], []
        for off, m in s.stream_meta:
            if off < len(chunk):
                files += m.take_files()
            else:
                keep.append((off - len(chunk), m))
        s.stream_meta = keep
        s.wake()
        if s.peer is not None:
            # the writer's own POLLOUT watchers (epoll, poll): Linux's
            # unix_write_space as the skbs it sent are freed
            s.peer.wake()
        return Received(chunk, files, creds, sender, full_len=len(chunk))
    if s.error:
        err, s.error = s.error, 0
        raise KernelError(err)
    if peer_gone:
        return Received(b"", [], creds, None)
    if nonblock:
        raise KernelError(E.EAGAIN)
    raise Block(s.wq)


def _glued(meta: list, n: int) -> int:
    """How far one read of a stream may go (unix_stream_read_generic):
    bytes are glued across sends, through the send that carries files
    (its first skb), but never past it; a send that carries only
    credentials (SO_PASSCRED) is another writer's, and stops the read
    before it.  A send whose extent is unknown (a restored one) ends at
    the next such mark."""
    for i, (off, m) in enumerate(meta):
        if off >= n:
            break
        if m.files:
            span = m.span if m.span is not None else \
                (meta[i + 1][0] - off if i + 1 < len(meta) and meta[i + 1][0] > off else n)
            return off + max(span, 1)
        if off > 0:
            return off
    return n


def unrecv(s: UnixSocket, r: Received) -> None:
    """A stream receive whose copy to the guest failed: Linux leaves the
    data queued (a datagram is gone, as there)."""
    if s.stype != SOCK_STREAM or not r.data:
        for f in r.files:
            f.put()
        return
    s.stream[:0] = r.data
    s.net.sk_mem += len(r.data)
    s.stream_skbs.appendleft([len(r.data), 0, s])     # back unread, charged to nobody
    s.stream_meta = [(off + len(r.data), m) for off, m in s.stream_meta]
    if r.files:
        s.stream_meta.insert(0, (0, Message(b"", r.files, r.creds)))


def connect_pair(a: UnixSocket, b: UnixSocket) -> None:
    a.peer, b.peer = b, a
    a.sent_by, b.sent_by = b, a
    a.connected_once = b.connected_once = True


def connect(task, s: UnixSocket, target: UnixSocket) -> int:
    if target.stype != s.stype:
        raise KernelError(E.EPROTOTYPE)
    if s.stype == SOCK_DGRAM:
        s.peer = target
        return 0
    if s.peer is not None:
        raise KernelError(E.EISCONN)
    if not target.listening or target.shut & RCVSHUTDOWN:
        raise KernelError(E.ECONNREFUSED)
    if len(target.pending) >= target.backlog:
        if s.nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(target.wq)
    server = UnixSocket(task, s.stype, 0)
    server.name = target.name
    connect_pair(s, server)
    server.peercred = _creds(task)
    s.peercred = target.peercred
    target.pending.append(server)
    target.wake()
    return 0


def accept(task, s: UnixSocket) -> UnixSocket:
    if not s.listening:
        raise KernelError(E.EINVAL)
    if not s.pending:
        if s.nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(s.wq)
    server = s.pending.popleft()
    s.wake()
    return server


# -- the proto_ops ------------------------------------------------------------------

def parse_sockaddr(raw: bytes) -> bytes:
    """sun_path bytes: b"/path" or b"\\0abstract"; b"" for an unnamed (autobind) address."""
    if len(raw) < 2 or len(raw) > 110:
        raise KernelError(E.EINVAL)
    (family,) = struct.unpack_from("<H", raw)
    if family != AF_UNIX:
        raise KernelError(E.EINVAL if family else E.EAFNOSUPPORT)
    path = raw[2:]
    if path[:1] == b"\0":
        return path
    return path.split(b"\0", 1)[0]


def sockaddr(name: bytes | None) -> bytes:
    data = struct.pack("<H", AF_UNIX)
    if name:
        data += name + (b"" if name.startswith(b"\0") else b"\0")
    return data


def _lookup(t, name: bytes) -> UnixSocket:
    if name.startswith(b"\0"):
        s = net_of(t).unix_abstract.get(name)
        if s is None:
            raise KernelError(E.ECONNREFUSED)
        return s
    d = namei.lookup(t, C.AT_FDCWD, name)
    if d.inode.fmt != C.S_IFSOCK:
        raise KernelError(E.ECONNREFUSED)
    permission(d.inode, C.W_OK, t.proc.creds)
    s = getattr(d.inode, "socket", None)
    if s is None:
        raise KernelError(E.ECONNREFUSED)
    return s


def _check_creds(t, pid: int, uid: int, gid: int) -> None:
    """scm_check_creds: one's own pid and ids, or the capability for each."""
    if NO_ID in (uid, gid):
        raise KernelError(E.EINVAL)
    c = t.proc.creds
    if not (pid == t.kernel.procs.vnr(t.proc, t.proc.pid) or capable(c, CAP_SYS_ADMIN)) \
            or not (uid in (c.uid, c.euid, c.suid) or capable(c, CAP_SETUID)) \
            or not (gid in (c.gid, c.egid, c.sgid) or capable(c, CAP_SETGID)):
        raise KernelError(E.EPERM)


def scm_files(t, cmsgs: list) -> list:
    """The files of a sendmsg's control messages, as Linux's __scm_send:
    levels other than SOL_SOCKET skipped, SCM_RIGHTS with at most
    SCM_MAX_FD fds in all, SCM_CREDENTIALS exactly one struct ucred that
    the sender may claim."""
    files = []
    for level, ctype, body in cmsgs:
        if level != SOL_SOCKET:
            continue
        if ctype == SCM_RIGHTS:
            fds = [fd for (fd,) in struct.iter_unpack("<i", body[:len(body) // 4 * 4])]
            if len(files) + len(fds) > SCM_MAX_FD:
                raise KernelError(E.EINVAL)
            files += [t.files.get(fd) for fd in fds]
        elif ctype == SCM_CREDENTIALS:
            if len(body) != _UCRED.size:
                raise KernelError(E.EINVAL)
            _check_creds(t, *_UCRED.unpack(body))
        else:
            raise KernelError(E.EINVAL)
    return files


def _bind(t, s: UnixSocket, raw: bytes) -> None:
    name = parse_sockaddr(raw)
    if not name or name.startswith(b"\0"):
        if s.name is not None:
            raise KernelError(E.EINVAL)
        name = name or b"\0" + f"{id(s) & 0xFFFFF:05x}".encode()   # autobind
        abstract_bind(name, s)
        s.name = name
        return
    # Linux makes the socket's inode first: a taken path is EADDRINUSE even
    # for a socket that is already bound
    parent, last, _ = namei.lookup_parent(t, C.AT_FDCWD, name)
    if parent.child(last) is not None:
        raise KernelError(E.EADDRINUSE)
    if s.name is not None:
        raise KernelError(E.EINVAL)
    landlock.check_make(t, parent, C.S_IFSOCK)      # security_path_mknod
    permission(parent.inode, C.W_OK | C.X_OK, t.proc.creds)
    ino = parent.inode.create(last, *new_inode_owner(t, parent.inode, C.S_IFSOCK | 0o777))
    ino.socket = s
    s.bound_inode, s.bound_dentry = ino, parent.child(last)
    s.name = name


def _listen(t, s: UnixSocket, backlog: int) -> None:
    if s.stype == SOCK_DGRAM:
        raise KernelError(E.EOPNOTSUPP)
    if s.peer is not None or s.name is None:
        raise KernelError(E.EINVAL)
    s.listening = True
    s.backlog = max(1, min(backlog, MAX_BACKLOG)) if backlog > 0 else 1
    s.peercred = _creds(t)


def _shutdown(s: UnixSocket, how: int) -> None:
    """unix_shutdown: connected or not (no ENOTCONN, unlike TCP); a stream
    or seqpacket peer learns what stopped."""
    mask = {SHUT_RD: RCVSHUTDOWN, SHUT_WR: SNDSHUTDOWN, SHUT_RDWR: RCVSHUTDOWN | SNDSHUTDOWN}[how]
    s.shut |= mask
    if s.peer is not None:
        s.peer.peer_shut |= mask      # what the peer's other end stopped doing
        s.peer.wake()
        if s.stype != SOCK_DGRAM and mask & SNDSHUTDOWN:
            s.peer.kill_fasync(POLL_HUP if mask & RCVSHUTDOWN else POLL_IN)
    s.wake()


def _new(t, stype: int, protocol: int, flags: int) -> UnixSocket:
    """unix_create: SOCK_RAW is taken as SOCK_DGRAM."""
    if protocol not in (0, AF_UNIX):
        raise KernelError(E.EPROTONOSUPPORT)
    if stype == 3:
        stype = SOCK_DGRAM
    if stype not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise KernelError(E.ESOCKTNOSUPPORT)
    return UnixSocket(t, stype, flags)


register_family(AF_UNIX, _new)
