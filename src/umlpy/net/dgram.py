"""A datagram socket's receive queue (packet and ICMP sockets).

Datagrams are charged at Linux's skb truesize against the socket's
SO_RCVBUF and dropped when it is full (sock_queue_rcv_skb: a datagram is
taken while the charge is below the buffer), and the whole kernel's
socket memory (net.sk_mem, mem=/8) bounds them all together, so a guest
that never reads costs the kernel at most that, whatever SO_RCVBUFFORCE
asked.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.net.socket import MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, Received
from umlpy.net.unix import truesize


@dataclass
class Datagram:
    data: bytes
    sender: bytes                   # the source as sockaddr bytes
    meta: dict = field(default_factory=dict)   # what control messages are built from
    size: int = 0


class RecvQueue:
    def __init__(self, net) -> None:
        self.net = net
        self.q: deque[Datagram] = deque()
        self.mem = 0
        self.drops = 0

    def __len__(self) -> int:
        return len(self.q)

    def push(self, sock, dg: Datagram) -> bool:
        """Queue dg on sock, or drop it (False) when sock's buffer is full."""
        size = truesize(len(dg.data))
        net = self.net
        if self.mem >= sock.rcvbuf or (net.sk_mem + size > net.sk_mem_limit and self.q):
            self.drops += 1
            return False
        dg.size = size
        if sock.rcvtstamp:
            dg.meta["stamp"] = clock.realtime_ns()
        self.mem += size
        net.sk_mem += size
        self.q.append(dg)
        sock.wake()
        return True

    def take(self, sock, n: int, flags: int) -> tuple[Received, Datagram]:
        """The first datagram, cut to n bytes (MSG_TRUNC when cut); waits
        unless the socket or the call is non-blocking."""
        if not self.q:
            err = sock.take_error()
            if err:
                raise KernelError(err)
            if sock.nonblock or flags & MSG_DONTWAIT:
                raise KernelError(E.EAGAIN)
            raise Block(sock.wq)
        dg = self.q[0]
        r = Received(dg.data[:n], sender=dg.sender, full_len=len(dg.data))
        if len(dg.data) > n:
            r.flags |= MSG_TRUNC
        if sock.rcvtstamp:
            r.cmsgs = [sock.timestamp_cmsg(dg.meta.get("stamp", 0))]
        if not flags & MSG_PEEK:
            self.q.popleft()
            self.mem -= dg.size
            self.net.sk_mem -= dg.size
        return r, dg

    def clear(self) -> None:
        self.q.clear()
        self.net.sk_mem -= self.mem
        self.mem = 0
