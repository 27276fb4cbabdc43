"""The DNS forwarder behind 10.0.2.3:53 (UDP).

Each guest query goes to the resolver (hostdns=, else the first
`nameserver` of the host's /etc/resolv.conf) from one host UDP socket,
under a fresh random query id, so answers cannot be confused between
guest sockets nor guessed by a third party more easily than the
resolver allows; the answer goes back to the asking socket with its own
id, from 10.0.2.3:53.  Nothing waits: the host socket is watched by the
event loop, and queries unanswered after QUERY_TTL_NS are forgotten.
(TCP to 10.0.2.3:53 is an ordinary NAT connection to the resolver.)
"""
from __future__ import annotations

import secrets
from collections import OrderedDict

from arch_um import clock
from arch_um.events import EPOLLIN
from arch_um.hostnet import Udp
from umlpy.kernel import printk
from umlpy.net.slirp import vnet

QUERY_TTL_NS = 10 * 10**9
MAX_PENDING = 512
READS_PER_EVENT = 64
DNS_HEADER = 12


class DnsForwarder:
    def __init__(self, nat, server: tuple[bytes, int] | None) -> None:
        self.nat = nat
        self.server = server
        self.host: Udp | None = None
        self.pending: OrderedDict[int, tuple[object, bytes, int]] = OrderedDict()
        self.warned = False

    def query(self, sock, data: bytes) -> None:
        """A guest's query: forwarded, or dropped (logged once) when there
        is no resolver or the host will not send it."""
        if len(data) < DNS_HEADER:
            return
        if self.server is None:
            self._warn("no resolver (no nameserver in the host's /etc/resolv.conf, no hostdns=)")
            return
        now = clock.monotonic_ns()
        while self.pending and (len(self.pending) >= MAX_PENDING or
                                next(iter(self.pending.values()))[2] < now):
            self.pending.popitem(last=False)
        try:
            if self.host is None:
                self.host = Udp(self.server[0])
                self.nat.k.sched.watch_fd(self.host.fd, EPOLLIN, self._readable)
            qid = self._new_id()
            self.host.sendto(qid.to_bytes(2, "big") + data[2:], *self.server)
        except OSError as e:
            self._warn(f"cannot reach the resolver: {e.strerror}")
            return
        self.pending[qid] = (sock, data[:2], now + QUERY_TTL_NS)

    def _new_id(self) -> int:
        while True:
            qid = secrets.randbelow(1 << 16)
            if qid not in self.pending:
                return qid

    def _warn(self, why: str) -> None:
        if not self.warned:
            self.warned = True
            printk.pr_warn(f"slirp: DNS queries to 10.0.2.3 dropped: {why}")

    def _readable(self, events: int) -> None:
        for _ in range(READS_PER_EVENT):
            if self.host is None:
                return
            got = self.host.recvfrom()
            if got is None:
                return
            data, ip, port = got
            if (ip, port) != self.server or len(data) < DNS_HEADER:
                continue
            entry = self.pending.pop(int.from_bytes(data[:2], "big"), None)
            if entry is not None:
                sock, qid, _ = entry
                sock.deliver_datagram(qid + data[2:], (vnet.m(vnet.DNS), 53))

    def forget(self, sock) -> None:
        """The guest socket is gone: its answers have nowhere to go."""
        for qid in [q for q, e in self.pending.items() if e[0] is sock]:
            del self.pending[qid]

    def close(self) -> None:
        self.pending.clear()
        if self.host is not None:
            self.nat.k.sched.unwatch_fd(self.host.fd)
            self.host.close()
            self.host = None
