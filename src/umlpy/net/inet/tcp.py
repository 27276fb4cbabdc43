"""TCP at socket level: a connection is a byte stream between two buffers.

There are no segments, windows or retransmissions: on loopback the far end
is the peer socket itself (LoopEnd), under user-mode NAT a host socket
(net/slirp); net/inet/endpoint.py is the contract.  What a program can
observe is Linux's: the states (shown by TCP_INFO and /proc/net/tcp), the
order of errors, poll's masks (tcp_poll), the listen and accept queues,
half-closes, resets when a socket closes with unread data or SO_LINGER 0,
and SIGPIPE.  A non-blocking connect answers EINPROGRESS even on loopback,
as Linux's does (the handshake completes as soon as the call returns).
"""
from __future__ import annotations

import struct
from collections import deque

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.errors import Block, KernelError
from umlpy.net.bytequeue import ByteQueue
from umlpy.net.inet import addr as A
from umlpy.net.inet.endpoint import Endpoint
from umlpy.net.inet import ports
from umlpy.net.inet.ports import PortTable
from umlpy.net.inet.sock import IPPROTO_TCP, InetSocket
from umlpy.net.netdev import SockInfo
from umlpy.net.socket import (MSG_DONTWAIT, MSG_ERRQUEUE, MSG_MORE, MSG_NOSIGNAL, MSG_OOB, MSG_PEEK, MSG_TRUNC,
                              MSG_WAITALL, RCVSHUTDOWN, SNDSHUTDOWN,
                              Received, int_opt)
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM

POLLRDHUP = 0x2000
SHUTDOWN_MASK = RCVSHUTDOWN | SNDSHUTDOWN

# sk_state, as Linux numbers them (/proc/net/tcp, TCP_INFO)
ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, TIME_WAIT = 1, 2, 3, 4, 5, 6
CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING = 7, 8, 9, 10, 11
# sock->state
SS_UNCONNECTED, SS_CONNECTING, SS_CONNECTED = 1, 2, 3

TCP_RMEM, TCP_WMEM = 131072, 16384      # net.ipv4.tcp_rmem[1], tcp_wmem[1]
AUTOTUNED_WINDOW = 4 << 20              # what receive autotuning reaches on loopback
TCP_MSS_DEFAULT, LOOPBACK_MSS = 536, 65483
CORK_NS = 200_000_000        # the longest Linux holds a corked partial segment
TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = 1, 2, 3, 4, 5, 6
TCP_SYNCNT, TCP_LINGER2, TCP_DEFER_ACCEPT, TCP_WINDOW_CLAMP, TCP_INFO = 7, 8, 9, 10, 11
TCP_QUICKACK, TCP_CONGESTION, TCP_USER_TIMEOUT, TCP_FASTOPEN = 12, 13, 18, 23
TCP_NOTSENT_LOWAT, TCP_FASTOPEN_CONNECT = 25, 30
MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT, MAX_TCP_SYNCNT = 32767, 32767, 127, 127
SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, SIOCATMARK = 0x541B, 0x5411, 0x894B, 0x8905
URG_VALID, URG_READ = 0x100, 0x400      # tp->urg_data's states above the urgent byte

# option name -> (default, low, high); values outside are EINVAL
_TCP_INTS = {TCP_NODELAY: (0, None, None), TCP_CORK: (0, None, None),
             TCP_KEEPIDLE: (7200, 1, MAX_TCP_KEEPIDLE), TCP_KEEPINTVL: (75, 1, MAX_TCP_KEEPINTVL),
             TCP_KEEPCNT: (9, 1, MAX_TCP_KEEPCNT), TCP_SYNCNT: (6, 1, MAX_TCP_SYNCNT),
             TCP_LINGER2: (60, None, None), TCP_DEFER_ACCEPT: (0, None, None),
             TCP_QUICKACK: (1, None, None), TCP_USER_TIMEOUT: (0, 0, 0x7FFFFFFF),
             TCP_NOTSENT_LOWAT: (0, None, None), TCP_FASTOPEN: (0, None, None),
             TCP_FASTOPEN_CONNECT: (0, None, None), TCP_WINDOW_CLAMP: (0, None, None)}


def table(net) -> PortTable:
    return ports.table(net, "tcp")


class LoopEnd(Endpoint):
    """The far end of a loopback connection: the peer socket's buffer."""

    def __init__(self, peer: TcpSocket) -> None:
        self.peer = peer
        self.wq = peer.wq

    def room(self) -> int:
        return self.peer.rx_room()

    def push(self, data: bytes) -> None:
        self.peer.deliver(data)

    def mark_urgent(self) -> None:
        self.peer.deliver_urgent()

    def fin(self) -> None:
        self.peer.deliver_fin()

    def rx_drained(self) -> None:
        """Our socket read: the peer may write again (and its pollers see POLLOUT)."""
        self.peer.wake()

    def close(self, reset: bool) -> None:
        p = self.peer
        if reset:
            p.deliver_reset()
        else:
            p.deliver_fin()
            p.far_closed = True


class TcpSocket(InetSocket):
    default_sndbuf, default_rcvbuf = TCP_WMEM, TCP_RMEM
    proto_name = "tcp"

    def __init__(self, net, uid: int, family: int, flags: int) -> None:
        super().__init__(net, uid, family, 1, IPPROTO_TCP, flags)
        self.state = CLOSE
        self.sock_state = SS_UNCONNECTED
        self.shut = 0                      # sk_shutdown
        self.rx = ByteQueue()
        self.ep: Endpoint | None = None
        self.far_closed = False            # the peer socket is gone: data we send is reset
        self.fin_received = False          # SOCK_DONE: reads end at 0 before any error
        self.accept_q: deque[TcpSocket] = deque()
        self.syn_q: deque[TcpSocket] = deque()     # connects waiting for accept-queue room
        self.listener: TcpSocket | None = None     # while in the listener's syn queue
        self.backlog = 0
        self.tcp_ints: dict[int, int] = {}
        self.maxseg = 0
        self.corked: bytearray | None = None    # data MSG_MORE/TCP_CORK holds back
        self.corking = False                    # TCP_CORK on or data held: no fast path
        self._cork_timer = None
        self.congestion = b"cubic"
        self.bytes_received = self.bytes_acked = 0
        self.urg_data = 0           # URG_VALID | the urgent byte, URG_READ once read, 0: none
        self.urg_seq = 0            # where the urgent byte is, counted as bytes_received

    def table(self) -> PortTable:
        return table(self.net)

    # -- the far end's calls (endpoint contract) --------------------------------
    def rx_room(self) -> int:
        """What the buffer takes: our receive buffer plus what the sender's
        send buffer would hold on Linux, so a writer blocks about where
        Linux's does; without a SO_RCVBUF of its own the window grows as
        Linux's autotuning grows it."""
        mem = self.net.budget          # net.sk_mem, sk_mem_limit, without their descriptors
        if mem.used >= mem.limit and self.rx:
            return 0            # over the limit: only an empty buffer takes more
        cap = self.rcvbuf + TCP_WMEM if self.rcvbuf_locked or \
            mem.used > mem.limit // 2 else AUTOTUNED_WINDOW
        return max(0, cap - len(self.rx))

    def deliver(self, data: bytes) -> None:
        if self.state == CLOSE or self.state == LISTEN:
            return
        if self.shut & RCVSHUTDOWN and self.ep is None:
            return
        self.rx.append(data)
        self.net.budget.used += len(data)
        self.bytes_received += len(data)
        self.wake()

    @property
    def copied(self) -> int:
        """Bytes of the stream read so far (Linux's copied_seq): where a
        read stands, against which urgent data's place is measured."""
        return self.bytes_received - len(self.rx)

    def deliver_urgent(self) -> None:
        """tcp_check_urg and tcp_urg: the last byte delivered is urgent
        data.  An urgent byte not read yet that a read stands at goes (it
        was never in the stream; a newer one takes its place), one farther
        on stays as plain data; the socket's owner gets SIGURG (poll's
        POLLPRI, select's exceptional condition)."""
        if not self.rx:
            return
        copied = self.copied
        new_seq = self.bytes_received - 1
        if self.urg_data and self.urg_seq == copied and copied != new_seq and not self.opt("SO_OOBINLINE"):
            self.rx.discard(1)
            self.net.budget.used -= 1
        self.urg_seq = new_seq
        self.urg_data = URG_VALID | self.rx.chunks[-1][-1]
        if self.owner is not None:
            self.owner.send_urg()
        self.wake()

    def _mark(self, n: int, flags: int) -> tuple[int, int]:
        """tcp_recvmsg at urgent data: (how much this read may take, bytes
        a peek skips).  A read stops at the urgent byte; one that starts
        there passes over it (unless SO_OOBINLINE), which ends the urgent
        data (recv MSG_OOB then says EINVAL)."""
        off = self.urg_seq - self.copied
        if not 0 <= off < len(self.rx):
            return n, 0
        if off:
            return min(n, off), 0
        if self.opt("SO_OOBINLINE"):
            return n, 0
        if flags & MSG_PEEK:
            return n, 1
        self.rx.discard(1)
        self.net.budget.used -= 1
        self.urg_data = 0
        return n, 0

    def _recv_urgent(self, n: int, flags: int) -> Received:
        """tcp_recv_urg: the urgent byte, once, never waiting."""
        if self.opt("SO_OOBINLINE") or not self.urg_data & URG_VALID:
            raise KernelError(E.EINVAL)
        if self.state == CLOSE and not self.fin_received:
            raise KernelError(E.ENOTCONN)
        byte = bytes((self.urg_data & 0xFF,))
        if not flags & MSG_PEEK:
            self.urg_data = URG_READ
        if n <= 0:
            return Received(b"", flags=MSG_OOB | MSG_TRUNC)
        return Received(b"" if flags & MSG_TRUNC else byte, flags=MSG_OOB, full_len=1)

    def deliver_fin(self) -> None:
        """The far side's FIN: CLOSE_WAIT, or for a socket that sent its
        own FIN first the end (tcp_time_wait: the socket is closed, a
        TIME_WAIT entry keeps its port)."""
        self.shut |= RCVSHUTDOWN
        self.fin_received = True                # SOCK_DONE
        if self.state == ESTABLISHED:
            self.state = CLOSE_WAIT
        elif self.state in (FIN_WAIT1, FIN_WAIT2):
            self.table().hold(self)
            self._done()
            return
        self.wake()

    def deliver_reset(self) -> None:
        """tcp_reset: the error by state, then the socket is done."""
        if self.state in (CLOSE, LISTEN, TIME_WAIT):
            return
        if self.state == SYN_SENT:
            self.error = E.ECONNREFUSED
        elif self.state == CLOSE_WAIT:
            self.error = E.EPIPE
        else:
            self.error = E.ECONNRESET
        self._done()

    def connect_done(self, err: int) -> None:
        if self.state != SYN_SENT:
            return
        if err:
            self.error = err
            self._done()
            return
        self.state = ESTABLISHED
        self.wake()

    def _done(self) -> None:
        """tcp_done: closed, both directions shut, the far end dropped."""
        self.state = CLOSE
        self.shut = SHUTDOWN_MASK
        self.ep = None
        self.wake()

    # -- readiness ----------------------------------------------------------------
    def writable(self) -> bool:
        ep = self.ep
        if ep is None:
            return not self.far_closed and self.state != SYN_SENT
        return ep.room() >= max(1, self.sndbuf // 3)

    def poll(self) -> int:
        """tcp_poll."""
        st = self.state
        if st == LISTEN:
            return POLLIN | POLLRDNORM if self.accept_q else 0
        ev = 0
        if self.shut == SHUTDOWN_MASK or st == CLOSE:
            ev |= POLLHUP
        if self.shut & RCVSHUTDOWN:
            ev |= POLLIN | POLLRDNORM | POLLRDHUP
        if st != SYN_SENT:
            target = self.rcvlowat
            if self.urg_data:
                if self.urg_data & URG_VALID:
                    ev |= POLLPRI
                if self.urg_seq == self.copied and not self.opt("SO_OOBINLINE"):
                    target += 1     # the urgent byte a read would pass over is not data
            if self.rx and len(self.rx) >= target:   # tcp_stream_is_readable
                ev |= POLLIN | POLLRDNORM
            if self.shut & SNDSHUTDOWN or self.ep is None or self.writable():
                ev |= POLLOUT | POLLWRNORM
        if self.error:
            ev |= POLLERR
        return ev

    # -- connecting -----------------------------------------------------------------
    def connect(self, t, raw: bytes) -> None:
        """__inet_stream_connect, its states and its errors."""
        if len(raw) >= 2 and struct.unpack_from("<H", raw)[0] == 0:
            return self._disconnect()
        if self.sock_state == SS_CONNECTED:
            raise KernelError(E.EISCONN)
        if self.sock_state == SS_CONNECTING:
            return self._wait_connect(E.EALREADY)
        if self.state != CLOSE:
            raise KernelError(E.EISCONN if self.state != LISTEN else E.EINVAL)
        dst_ip, port = self.parse_connect(raw)
        dst = (self.dest(dst_ip), port)
        src_ip = self.source_for(dst[0])
        self.autobind()
        self.local = (src_ip, self.local[1])
        self.remote = dst
        self.state = SYN_SENT
        self.sock_state = SS_CONNECTING
        if self.is_local_dst(dst[0]):
            self._loop_connect(t, dst)
        elif self.net.nat is not None:
            try:
                self.ep = self.net.nat.tcp_connect(self, self.local, dst)
            except KernelError:         # refused before it began (restrict=on: EPERM)
                self.state, self.sock_state = CLOSE, SS_UNCONNECTED
                self._unbind_if_auto()
                raise
        else:
            self.error = E.ENETUNREACH
            self._done()
        if self.nonblock:
            raise KernelError(E.EINPROGRESS)
        return self._wait_connect(E.EINPROGRESS)

    def _wait_connect(self, pending_err: int) -> int:
        """0 once connected: a retry's result is the syscall's own (None
        would leave rax at the entry's -ENOSYS)."""
        if self.state == SYN_SENT:
            if self.nonblock:
                raise KernelError(pending_err)
            raise Block(self.wq, retry=lambda: self._wait_connect(pending_err))
        if self.state == CLOSE:
            err = self.take_error() or E.ECONNABORTED
            self._disconnect()
            raise KernelError(err)
        self.sock_state = SS_CONNECTED
        return 0

    def _unbind_if_auto(self) -> None:
        """A failed connect gives back the port and address it was given
        (tcp_disconnect)."""
        if not self.bound_port:
            self.table().unbind(self)
            self.local = None
        elif not self.bound_addr:
            self.local = (A.wildcard(self.family), self.local[1])
        self.remote = None

    def _disconnect(self) -> None:
        """connect(AF_UNSPEC) or a failed connect: drop the connection
        (tcp_disconnect: a live one is reset, with ECONNRESET kept here)."""
        if self.state == LISTEN:
            self._close_listener()
        elif self.ep is not None:
            self.ep.close(reset=True)
        if self.state in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2, SYN_RECV):
            self.error = E.ECONNRESET
        self.ep = None
        self._rx_clear()
        self.state = CLOSE
        self.sock_state = SS_UNCONNECTED
        self.shut = 0
        self.fin_received = self.far_closed = False
        self._unbind_if_auto()
        self.wake()

    def _loop_connect(self, t, dst: A.Endpoint) -> None:
        lst = self.table().lookup(dst[0], dst[1], want=lambda s: s.state == LISTEN)
        if lst is None:
            self.error = E.ECONNREFUSED
            self._done()
            return
        if len(lst.accept_q) > lst.backlog:
            self.listener = lst
            lst.syn_q.append(self)
            return
        lst._establish(self)

    def _establish(self, client: TcpSocket) -> None:
        """The handshake on loopback: a new socket for the listener's accept
        queue, joined to the client through two LoopEnds."""
        server = self._child()
        if not server.bound_dev and A.needs_scope(client.local[0]):
            server.bound_dev = client.bound_dev     # tcp_v6_init_req: the SYN's interface
        server.local = (client.remote[0], self.local[1])
        server.remote = client.local
        client.ep, server.ep = LoopEnd(server), LoopEnd(client)
        client.state = server.state = ESTABLISHED
        client.listener = None
        self.accept_q.append(server)
        client.wake()
        self.wake()

    def _child(self) -> TcpSocket:
        """A connection's socket inherits the listener's options (inet_csk_clone),
        its SO_RCVBUF's lock too (sk_userlocks): a listener's SO_RCVBUF
        bounds its connections' windows, where autotuning would grow them."""
        s = TcpSocket(self.net, self.uid, self.family, 0)
        s.opts = dict(self.opts)
        s.tcp_ints = dict(self.tcp_ints)
        s.ints = dict(self.ints)
        s.sndbuf, s.rcvbuf, s.rcvbuf_locked = self.sndbuf, self.rcvbuf, self.rcvbuf_locked
        s.linger, s.ttl, s.tos, s.hops, s.v6only = self.linger, self.ttl, self.tos, self.hops, self.v6only
        s.rcvtimeo, s.sndtimeo = self.rcvtimeo, self.sndtimeo
        s.bound_dev = self.bound_dev
        s.sock_state = SS_CONNECTED
        return s

    def incoming(self, src: A.Endpoint, dst: A.Endpoint, ep: Endpoint) -> TcpSocket | None:
        """A connection from outside for this listener (hostfwd)."""
        if len(self.accept_q) > self.backlog:
            return None
        s = self._child()
        s.local = dst
        s.remote = src
        s.ep = ep
        s.state = ESTABLISHED
        self.accept_q.append(s)
        self.wake()
        return s

    # -- listening ------------------------------------------------------------------
    def listen(self, t, backlog: int) -> None:
        if self.sock_state != SS_UNCONNECTED or self.state not in (CLOSE, LISTEN):
            raise KernelError(E.EINVAL)
        if self.state != LISTEN:
            if self.local is None:
                self.autobind()
            self.listening = True
            if not self.table().can_listen(self):
                self.listening = False
                raise KernelError(E.EADDRINUSE)
            self.state = LISTEN
        self.backlog = backlog
        self._admit()

    def _admit(self) -> None:
        while self.syn_q and len(self.accept_q) <= self.backlog:
            c = self.syn_q.popleft()
            if c.state == SYN_SENT and c.listener is self:
                self._establish(c)

    def accept(self, t, flags: int) -> TcpSocket:
        if self.state != LISTEN:
            raise KernelError(E.EINVAL)
        if not self.accept_q:
            if self.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.wq)
        s = self.accept_q.popleft()
        self._admit()
        self.wake()
        return s

    def _close_listener(self) -> None:
        """Connections not yet accepted are reset; waiting connects refused."""
        while self.accept_q:
            child = self.accept_q.popleft()
            child.abort()
            child.put_unused()
        while self.syn_q:
            c = self.syn_q.popleft()
            c.listener = None
            c.deliver_reset()
        self.listening = False
        self.state = CLOSE

    # -- data -------------------------------------------------------------------------
    def _epipe(self, t, flags: int) -> KernelError:
        err = self.take_error() or E.EPIPE
        if err == E.EPIPE and not flags & MSG_NOSIGNAL:
            t.kernel.signals.send_sig(t, S.SIGPIPE)
        return KernelError(err)

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        ep = self.ep
        n = len(data)
        if not flags and ep is not None and 0 < n <= ep.room() and self.state == ESTABLISHED \
                and not (self.error or self.shut or self.far_closed or self.corking):
            # the common case: a connection with room for all of it
            ep.push(data if type(data) is bytes else data[0:n])
            self.bytes_acked += n
            return n
        if n == 0 and not flags & MSG_MORE:
            self.uncork()
        return self._send(t, data, flags, 0)

    def _send(self, t, data, flags: int, done: int) -> int:
        """_send_loop, then for MSG_OOB the last byte sent marked urgent
        (tcp_push's tcp_mark_urg), what was held pushed first."""
        n = self._send_loop(t, data, flags, done)
        if flags & MSG_OOB and n > 0 and self.ep is not None:
            self.uncork()
            self.ep.mark_urgent()
        return n

    def _send_loop(self, t, data, flags: int, done: int) -> int:
        nonblock = self.nonblock or flags & MSG_DONTWAIT
        while True:
            if self.state == SYN_SENT:
                if nonblock:
                    if done:
                        return done
                    raise KernelError(E.EAGAIN)
                raise Block(self.wq, retry=lambda: self._send(t, data, flags, done))
            if self.error:
                if done:
                    return done
                raise self._epipe(t, flags)
            if self.shut & SNDSHUTDOWN or self.state not in (ESTABLISHED, CLOSE_WAIT):
                if done:
                    return done
                raise self._epipe(t, flags)
            ep = self.ep
            if ep is None or self.far_closed:   # the far socket is gone: this data meets a reset
                if done:
                    return done
                self.error = E.EPIPE if self.state == CLOSE_WAIT else E.ECONNRESET
                # what the send buffer takes before the reset comes back
                # (tcp_sendmsg stops at sk_err): not a whole big write, so
                # a sender learns of the reset before it thinks it is done
                n = min(len(data) - done, self.sndbuf)
                self._done()
                self.far_closed = False
                return n
            left = len(data) - done
            if left == 0:
                return done
            room = ep.room()
            if room <= 0:
                if nonblock:
                    if done:
                        return done
                    raise KernelError(E.EAGAIN)
                d = done
                raise Block(ep.wq, self.wq, retry=lambda: self._send(t, data, flags, d),
                            interrupted_result=(d or None))
            if self._hold(t, flags, data[done:] if left <= room else b""):
                return len(data)
            chunk = data[done:done + min(room, left)]
            ep.push(bytes(chunk))
            done += len(chunk)
            self.bytes_acked += len(chunk)

    # -- corking: MSG_MORE and TCP_CORK hold a partial segment -------------------
    def _hold(self, t, flags: int, rest) -> bool:
        """Keep `rest` back while the sender says more is coming and it is
        less than a segment, as tcp_push with TCP_NAGLE_CORK does; Linux
        sends a held segment after 200 ms at the latest, and so do we.
        Otherwise push what was held, so `rest` follows it in order."""
        held = self.corked
        if rest and (flags & MSG_MORE or self.tcp_ints.get(TCP_CORK)) and \
                len(rest) + (len(held) if held is not None else 0) < LOOPBACK_MSS:
            if held is None:
                self.corked = held = bytearray()
                self.corking = True
                sched = t.kernel.sched
                self._cork_timer = sched.add_timer(clock.monotonic_ns() + CORK_NS, self._cork_expired)
            held += bytes(rest)
            self.bytes_acked += len(rest)
            return True
        self.uncork()
        return False

    def _cork_expired(self) -> None:
        self._cork_timer = None
        self.uncork()

    def uncork(self) -> None:
        held, self.corked = self.corked, None
        self.corking = bool(self.tcp_ints.get(TCP_CORK))
        if held is None:
            return
        if self._cork_timer is not None:
            self._cork_timer.cancel()
            self._cork_timer = None
        if self.ep is not None and not self.far_closed:
            self.ep.push(bytes(held))

    def recvmsg(self, t, n: int, flags: int) -> Received:
        rx = self.rx
        if not flags and rx.size >= self.rcvlowat and n > 0 and not self.urg_data:
            return self._take(n, 0)     # the common case: data waiting for a plain read
        if flags & MSG_ERRQUEUE:
            raise KernelError(E.EAGAIN)         # inet_recv_error: nothing is ever queued
        if self.state == LISTEN:
            raise KernelError(E.ENOTCONN)
        if flags & MSG_OOB:
            return self._recv_urgent(n, flags)
        skip = 0
        if self.urg_data:
            n, skip = self._mark(n, flags)
        nonblock = self.nonblock or flags & MSG_DONTWAIT
        gone = self.shut & RCVSHUTDOWN or self.state == CLOSE
        target = n if flags & MSG_WAITALL else min(n, self.rcvlowat)   # sock_rcvlowat
        avail = len(rx) - skip
        if avail > 0 and n > 0 and (avail >= target or gone or self.error or nonblock):
            return self._take(n, flags, skip)
        if n == 0 and rx or self.fin_received:
            return Received(b"")
        if self.error:
            raise KernelError(self.take_error())
        if gone:
            if self.state == CLOSE and self.sock_state == SS_UNCONNECTED and \
                    not self.shut & RCVSHUTDOWN:
                raise KernelError(E.ENOTCONN)
            return Received(b"")
        if nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(self.wq)

    def read(self, task, n: int) -> bytes:
        if self.rx.size >= self.rcvlowat and n > 0 and not self.urg_data:
            return self._consume(n)     # read(2) with data waiting: recvmsg's fast path, no Received
        return self.recvmsg(task, n, 0).data

    def _take(self, n: int, flags: int, skip: int = 0) -> Received:
        """Up to n queued bytes (after skip, an urgent byte a peek passes
        over): left queued by MSG_PEEK, thrown away by MSG_TRUNC (its
        length returned), otherwise read."""
        if flags & MSG_PEEK:
            chunk = self.rx.take(n + skip, True)[skip:]
            r = Received(chunk, full_len=len(chunk))
        else:
            chunk = self._consume(n)
            if self.urg_data and self.copied > self.urg_seq:
                self.urg_data = 0       # read past it (SO_OOBINLINE)
            r = Received(b"" if flags & MSG_TRUNC else chunk, full_len=len(chunk))
        if self.rcvtstamp:          # tcp_recv_timestamp (the data's arrival is not kept: the read's time)
            r.cmsgs = [self.timestamp_cmsg(0)]
        return r

    def _consume(self, n: int) -> bytes:
        chunk = self.rx.take(n)
        self.net.budget.used -= len(chunk)
        self._drained()
        return chunk

    def _rx_clear(self) -> None:
        self.net.budget.used -= len(self.rx)
        self.rx.clear()

    def _drained(self) -> None:
        """A read made room: the far end hears of it once the free space is
        at least half of what is still queued, or all of it is read (as
        sk_stream_write_space wakes a writer), not after every read."""
        ep = self.ep
        if ep is not None:
            left = len(self.rx)
            if not left or self.rx_room() >= left // 2:
                ep.rx_drained()
        self.wake()

    def unrecv(self, r: Received) -> None:
        self.unread(r.data)

    def unread(self, data: bytes) -> None:
        """A copy to the guest failed: tcp_recvmsg consumes nothing then."""
        self.rx.unread(data)
        self.net.budget.used += len(data)

    # -- shutdown and close -------------------------------------------------------
    def shutdown(self, t, how: int) -> None:
        """inet_shutdown: ENOTCONN on a closed socket (its flags set all
        the same); a listener's SHUT_RD closes it."""
        mask = how + 1
        if self.sock_state == SS_CONNECTING and self.state == SYN_SENT:
            self.sock_state = SS_UNCONNECTED
        err = 0
        if self.state == CLOSE:
            err = E.ENOTCONN
            self.shut |= mask
        elif self.state == LISTEN:
            if mask & RCVSHUTDOWN:
                self._close_listener()
                self.table().unbind(self)
                self.local = None
            self.shut |= mask
        elif self.state == SYN_SENT:
            self._disconnect()
        else:
            self.shut |= mask
            if mask & SNDSHUTDOWN and self.ep is not None:
                self.uncork()
                self.ep.fin()
                if self.state == ESTABLISHED:
                    self.state = FIN_WAIT2
                elif self.state == CLOSE_WAIT:
                    self.state = CLOSE          # LAST_ACK, acked at once
                    self.shut = SHUTDOWN_MASK
                    self.ep = None
        self.wake()
        if err:
            raise KernelError(err)

    def abort(self) -> None:
        """Reset the connection (a listener closing with it unaccepted)."""
        ep, self.ep = self.ep, None
        if ep is not None:
            ep.close(reset=True)
        self.state = CLOSE

    def release(self) -> None:
        self.uncork()
        reset = bool(self.rx) or (self.linger[0] and self.linger[1] == 0)
        if self.state in (ESTABLISHED, FIN_WAIT1, FIN_WAIT2) and self.ep is not None and not reset:
            self.table().hold(self)     # the active closer keeps its port (FIN_WAIT2, TIME_WAIT)
        if self.state == LISTEN:
            self._close_listener()
        elif self.listener is not None:
            if self in self.listener.syn_q:
                self.listener.syn_q.remove(self)
            self.listener = None
        ep, self.ep = self.ep, None
        if ep is not None:
            ep.close(reset)
        self._rx_clear()
        self.state = CLOSE
        self.release_addr()
        self.wake()

    # -- ioctls and options -------------------------------------------------------
    def ioctl(self, task, req: int, arg: int) -> int:
        if req in (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD):
            if self.state == LISTEN:
                raise KernelError(E.EINVAL)
            if req == SIOCINQ:
                v = len(self.rx)
            else:
                v = self.ep.outq() if self.ep is not None else 0
            task.mem.write(arg, struct.pack("<i", v))
            return 0
        if req == SIOCATMARK:
            at = bool(self.urg_data) and self.urg_seq == self.copied
            task.mem.write(arg, struct.pack("<i", int(at)))
            return 0
        return super().ioctl(task, req, arg)

    proto_levels = (IPPROTO_TCP,)

    def proto_getsockopt(self, opt: int, cap: int) -> bytes:
        if opt in _TCP_INTS:
            return struct.pack("<i", self.tcp_ints.get(opt, _TCP_INTS[opt][0]))
        if opt == TCP_MAXSEG:
            mss = self.maxseg or (LOOPBACK_MSS if self.state in (ESTABLISHED, CLOSE_WAIT)
                                  else TCP_MSS_DEFAULT)
            return struct.pack("<i", mss)
        if opt == TCP_INFO:
            return self._info()
        if opt == TCP_CONGESTION:
            return self.congestion.ljust(16, b"\0")[:max(cap, 0)]
        raise KernelError(E.ENOPROTOOPT)

    def proto_setsockopt(self, opt: int, raw: bytes) -> None:
        if opt == TCP_CONGESTION:
            name = raw.split(b"\0", 1)[0]
            if name not in (b"cubic", b"reno"):
                raise KernelError(E.ENOENT)
            self.congestion = name
            return
        v = int_opt(raw)
        if opt == TCP_MAXSEG:
            if v and not 88 <= v <= 65535 - 40:
                raise KernelError(E.EINVAL)
            self.maxseg = v
            return
        if opt not in _TCP_INTS:
            raise KernelError(E.ENOPROTOOPT)
        _d, lo, hi = _TCP_INTS[opt]
        if lo is not None and not lo <= v <= hi:
            raise KernelError(E.EINVAL)
        if opt in (TCP_NODELAY, TCP_CORK, TCP_QUICKACK):
            v = int(bool(v))
        elif opt == TCP_DEFER_ACCEPT:
            v = max(v, 0)
        self.tcp_ints[opt] = v
        if (opt == TCP_CORK and not v) or (opt == TCP_NODELAY and v):
            self.uncork()               # tcp_push_pending_frames
        self.corking = self.corked is not None or bool(self.tcp_ints.get(TCP_CORK))

    def _info(self) -> bytes:
        """struct tcp_info: the state and what a loopback connection shows."""
        est = self.state in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT2)
        mss = LOOPBACK_MSS if est else TCP_MSS_DEFAULT
        head = struct.pack("<8B", self.state, 0, 0, 0, 0, 0, 0, 0)
        body = struct.pack("<24I", 200000 if est else 1000000, 40000 if est else 0, mss, mss,
                           0, 0, 0, 0, 0, 0, 0, 0, 0, 65535 if est else 0, 64076,
                           0, 0, 0x7FFFFFFF, 10, mss, 3, 0, 65483, 0)
        tail = struct.pack("<QQQQ", 0, 0xFFFFFFFFFFFFFFFF, self.bytes_acked, self.bytes_received)
        out = head + body + tail
        return out + bytes(232 - len(out))

    def connected_for_peer(self) -> bool:
        """getpeername: ENOTCONN unless connected (tcp's inet_getname)."""
        return self.state not in (CLOSE, LISTEN, SYN_SENT)

    def established(self) -> bool:
        return self.state == ESTABLISHED

    def info(self) -> SockInfo:
        listening = self.state == LISTEN
        local = self.local or (A.wildcard(self.family), 0)
        remote = self.remote if self.remote and not listening else (A.wildcard(self.family), 0)
        return SockInfo(self.family, "tcp", A.packed(self.family, local[0]), local[1],
                        A.packed(self.family, remote[0]), remote[1],
                        self.state, 0, len(self.accept_q) if listening else len(self.rx),
                        self.uid, self.inode.ino, backlog=self.backlog if listening else 0)


def incoming(net, dst: A.Endpoint, src: A.Endpoint, ep: Endpoint) -> TcpSocket | None:
    """A connection from outside (hostfwd) for the guest listener on dst."""
    lst = table(net).lookup(dst[0], dst[1], want=lambda s: s.state == LISTEN)
    if lst is None:
        return None
    return lst.incoming(src, dst, ep)
