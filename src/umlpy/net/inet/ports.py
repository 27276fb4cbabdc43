"""Who is bound where: one table per protocol (TCP, UDP), per kernel.

Lookups follow Linux's: a bound address matches a destination exactly
or as a wildcard; an AF_INET6 socket on :: also takes IPv4 unless it is
IPV6_V6ONLY; among matches the exact address wins; SO_REUSEPORT groups
share the traffic.
"""
from __future__ import annotations

import itertools
import random

from arch_um import clock
from umlpy.net.netdev import SockInfo

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.net.inet.addr import ANY4, ANY6, is_v4, packed

TIME_WAIT_NS = 60 * 10**9                         # TCP_TIMEWAIT_LEN
TIME_WAIT = 6


class TimeWait:
    """What is left of a connection closed actively: its port, held for
    60 s (Linux's inet_timewait_sock).  A bind there needs SO_REUSEADDR,
    and the closed socket must have had it too."""
    listening = False
    state = TIME_WAIT

    def __init__(self, sock) -> None:
        self.family = sock.family
        self.local = sock.local
        self.remote = sock.remote
        self.v6only = sock.v6only
        self.uid = sock.uid
        self.reuse = sock.opt("SO_REUSEADDR")
        self.inode = sock.inode
        self.expires = clock.monotonic_ns() + TIME_WAIT_NS

    def opt(self, name: str) -> int:
        return self.reuse if name == "SO_REUSEADDR" else 0

    def info(self) -> SockInfo:
        return SockInfo(self.family, "tcp", packed(self.family, self.local[0]), self.local[1],
                        packed(self.family, self.remote[0]), self.remote[1], TIME_WAIT, 0, 0,
                        0, 0, refs=3)


def covers(sock, ip16: bytes) -> bool:
    """Does a socket bound to sock.local take traffic for ip16?"""
    bound = sock.local[0]
    if bound == ip16:
        return True
    if bound == ANY6:
        return not (sock.v6only and is_v4(ip16))
    if bound == ANY4:
        return is_v4(ip16)
    return False


def _overlap(a, b) -> bool:
    """Could two bindings on one port receive the same traffic?"""
    ia, ib = a.local[0], b.local[0]
    if ia == ib:
        return True
    for x, y in ((a, ib), (b, ia)):
        if x.local[0] in (ANY4, ANY6) and covers(x, y):
            return True
    # both wildcards of different families: :: (dual) and 0.0.0.0
    return {ia, ib} == {ANY4, ANY6} and not (a.v6only if ia == ANY6 else b.v6only)


class PortTable:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ports: dict[int, list] = {}        # port -> the sockets bound there
        # port -> its TIME_WAIT entries, apart: only a bind asks about them,
        # and a server that closes first leaves one per connection on its
        # listening port (a lookup there once went through thousands)
        self.waits: dict[int, list[TimeWait]] = {}
        self.rr = 0
        self.gen = 0            # bumped by every bind and unbind: lookups cached against it
        self._last: tuple | None = None

    def hold(self, sock) -> None:
        """A connection on sock's port was closed actively: TIME_WAIT."""
        if sock.local is not None and sock.remote is not None:
            self.waits.setdefault(sock.local[1], []).append(TimeWait(sock))

    def _expire(self, port: int) -> None:
        lst = self.waits.get(port)
        if lst:
            now = clock.monotonic_ns()
            lst[:] = [o for o in lst if o.expires > now]
            if not lst:
                del self.waits[port]

    def time_waits(self) -> list:
        """The live TIME_WAIT entries (for /proc/net/tcp)."""
        now = clock.monotonic_ns()
        return [o for lst in self.waits.values() for o in lst if o.expires > now]

    def _conflict(self, sock, port: int) -> bool:
        self._expire(port)
        for o in itertools.chain(self.ports.get(port, ()), self.waits.get(port, ())):
            if o is sock or not _overlap(o, sock):
                continue
            if sock.opt("SO_REUSEPORT") and o.opt("SO_REUSEPORT") and sock.uid == o.uid:
                continue
            if sock.opt("SO_REUSEADDR") and o.opt("SO_REUSEADDR") and \
                    not (sock.listening or o.listening):
                continue
            return True
        return False

    def bind(self, sock, ip16: bytes, port: int) -> int:
        """Take (ip16, port) for sock (port 0: an ephemeral one)."""
        sock.local = (ip16, port)
        if port == 0:
            low, high = sock.net.local_port_range
            span = high - low + 1
            start = random.randrange(span)
            for i in range(span):
                p = low + (start + i) % span
                if not (self.ports.get(p) or self.waits.get(p)) or not self._conflict(sock, p):
                    port = p
                    break
            else:
                sock.local = None
                raise KernelError(E.EADDRINUSE if self.name == "tcp" else E.EAGAIN)
        elif self._conflict(sock, port):
            sock.local = None
            raise KernelError(E.EADDRINUSE)
        sock.local = (ip16, port)
        self.ports.setdefault(port, []).append(sock)
        self.gen += 1
        return port

    def unbind(self, sock) -> None:
        if sock.local is None:
            return
        lst = self.ports.get(sock.local[1])
        if lst and sock in lst:
            lst.remove(sock)
            self.gen += 1
            if not lst:
                del self.ports[sock.local[1]]

    def can_listen(self, sock) -> bool:
        """A listen on a port another socket shares by SO_REUSEADDR alone
        is EADDRINUSE (inet_csk_get_port's check at listen time)."""
        for o in self.ports.get(sock.local[1], ()):
            if o is not sock and o.listening and _overlap(o, sock) and not (
                    sock.opt("SO_REUSEPORT") and o.opt("SO_REUSEPORT") and sock.uid == o.uid):
                return False
        return True

    def deliver_to(self, ip16: bytes, port: int, src):
        """lookup() for datagrams, remembered for the last (destination,
        source) until a socket binds, unbinds or connects (gen)."""
        last = self._last
        key = (ip16, port, src)
        if last is not None and last[0] == self.gen and last[1] == key:
            return last[2]
        s = self.lookup(ip16, port, src=src)
        if s is not None and s.opt("SO_REUSEPORT"):
            return s            # a group shares the traffic: no caching
        self._last = (self.gen, key, s)
        return s

    def lookup(self, ip16: bytes, port: int, want=None, src=None):
        """The socket that takes traffic for (ip16, port): exact binding
        before wildcard; `want` filters (e.g. listening); a connected
        datagram socket takes only its peer's traffic (src)."""
        best, best_score, group = None, -1, []
        for s in self.ports.get(port, ()):
            if not covers(s, ip16) or (want is not None and not want(s)):
                continue
            if src is not None and s.remote is not None and s.remote != src:
                continue
            score = (2 if s.local[0] == ip16 else 0) + (1 if s.remote is not None else 0)
            if score > best_score:
                best, best_score, group = s, score, [s]
            elif score == best_score:
                group.append(s)
        if len(group) > 1 and best.opt("SO_REUSEPORT"):
            self.rr += 1
            return group[self.rr % len(group)]
        return group[-1] if group else None


def table(net, proto: str) -> PortTable:
    """The kernel's port table for proto ("tcp", "udp", "udplite"), made on first use."""
    tables = net.port_tables
    t = tables.get(proto)
    if t is None:
        t = tables[proto] = PortTable(proto)
    return t
