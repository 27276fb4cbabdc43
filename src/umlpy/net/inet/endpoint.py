"""The far end of a connected TCP socket, and how traffic enters from outside.

A connected TcpSocket (net/inet/tcp.py) writes into an Endpoint and is fed
by it.  On loopback the endpoint is the peer TcpSocket itself, so a
connection is two kernel buffers; under user-mode NAT (net/slirp) it is a
host TCP socket the kernel opened.  Both keep this contract, which is what
lets TCP's semantics (readiness, shutdown, reset, flow control) live in one
place.

What a socket calls on its endpoint:
  room() -> int            bytes push() may take now; 0: wait on `wq`
  push(data)               send len(data) <= room() bytes
  mark_urgent()            the last byte pushed is urgent (send with MSG_OOB)
  fin()                    no more data from this side (SHUT_WR or close)
  close(reset)             the socket is gone; reset=True sends RST (SO_LINGER
                           of 0, or closing with unread data)
  rx_drained()             the socket's receive buffer has room again
  outq() -> int            bytes pushed and not yet taken by the far side (SIOCOUTQ)
  wq                       a WaitQueue woken when room() grows

When room() grows, the endpoint must also wake the socket (sock.wake()):
poll, select and epoll watch only the socket's own queue.

What an endpoint calls on its socket (TcpSocket methods):
  rx_room() -> int         how much deliver() may hand over now
  deliver(data)            bytes arrived (len(data) <= rx_room())
  deliver_urgent()         the last byte delivered is urgent data
  deliver_fin()            the far side sent FIN
  deliver_reset()          the far side reset the connection (ECONNRESET)
  connect_done(err)        a pending connect finished: 0, or ECONNREFUSED,
                           ETIMEDOUT, ENETUNREACH, EHOSTUNREACH...

Traffic from outside (net/slirp's hostfwd):
  tcp.incoming(net, dst, src, endpoint) -> TcpSocket | None
      a connection for the guest listener on dst (an (ip16, port)) from src;
      None when nobody listens there or its backlog is full (refuse it).
  udp.incoming(net, dst, src, data) -> UdpSocket | None
      a datagram for the guest socket bound to dst; None when none is.

What net/inet asks of the NAT (kernel.net.nat, None without eth0=user):
  nat.tcp_connect(sock, src, dst) -> Endpoint
      start a connection to the outside address dst; the endpoint reports
      with sock.connect_done() later (never from inside this call).  A
      refusal known at once (EPERM under restrict=on, as a local firewall's
      OUTPUT rule gives it; ENETUNREACH; ENOBUFS) is raised as KernelError
      instead, and the socket is unconnected again.
  nat.udp_send(sock, src, dst, data) -> None
      send a datagram outside (raise KernelError for EPERM under restrict=on,
      ENETUNREACH...); replies come back with sock.deliver_datagram(data, src).
  nat.udp_close(sock)
      the guest socket is gone: close whatever host socket served it.
"""
from __future__ import annotations

from umlpy.kernel.wait import WaitQueue


class Endpoint:
    """Base of the far ends; see the module docstring for the contract."""

    def __init__(self) -> None:
        self.wq = WaitQueue("tcp endpoint")

    def room(self) -> int:
        raise NotImplementedError

    def push(self, data: bytes) -> None:
        raise NotImplementedError

    def mark_urgent(self) -> None:
        """The last byte pushed is urgent data (MSG_OOB)."""
        raise NotImplementedError

    def fin(self) -> None:
        raise NotImplementedError

    def close(self, reset: bool) -> None:
        raise NotImplementedError

    def rx_drained(self) -> None:
        """Flow control: loopback needs none (the peer looks at our buffer)."""

    def outq(self) -> int:
        return 0
