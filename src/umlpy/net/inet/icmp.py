"""ICMP echo: ping sockets (SOCK_DGRAM) and raw sockets (SOCK_RAW).

Ping sockets are Linux's (net/ipv4/ping.c): the guest writes an echo
request, the kernel puts the socket's identifier (its "port", chosen at
bind or on the first send) in it and fills in the checksum; replies with
that identifier come back without an IP header.  net.ipv4.ping_group_range
is taken as allowing every group, so any guest user may ping.
Raw sockets need CAP_NET_RAW; an ICMP one sends whole ICMP messages (the
guest's own checksum, for IPv4) and receives every ICMP message that
arrives, with its IPv4 header (ICMPv6: without, as Linux).  Raw sockets
of other protocols exist for their ioctls (udhcpc asks an IPPROTO_RAW
one for eth0's index and address) but send nothing (EOPNOTSUPP).

Who answers an echo request: the kernel itself for its own addresses
(127.0.0.0/8, ::1, eth0's), and, behind eth0=user, the NAT
(net/slirp/nat.py: `ping`) for the gateway, the DNS address and beyond.
"""
from __future__ import annotations

import itertools
import struct
import weakref

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_RAW
from umlpy.kernel import printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.net.dgram import Datagram, RecvQueue
from umlpy.net.inet import addr as A
from umlpy.net.inet import wire
from umlpy.net.socket import (MSG_DONTWAIT, MSG_ERRQUEUE, MSG_OOB, MSG_PEEK, MSG_TRUNC,
                              RCVSHUTDOWN, SHUT_RD, SHUT_RDWR, SNDSHUTDOWN, SOCK_DGRAM, SOCK_RAW,
                              Received, Socket, int_opt)
from umlpy.vfs.file import POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW = 1, 58, 255
ICMP_ECHOREPLY, ICMP_ECHO = 0, 8
ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 128, 129
SOL_IP, SOL_IPV6, SOL_RAW, SOL_ICMPV6 = 0, 41, 255, 58
IP_TTL, IP_HDRINCL, IP_RECVTTL = 2, 3, 12
ICMP_FILTER = 1
IPV6_CHECKSUM, IPV6_2292HOPLIMIT, IPV6_UNICAST_HOPS, IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 7, 8, 16, 51, 52
ICMP6_FILTER = 1
DEFAULT_TTL = 64
MAX_MSG = 0xFFFF

# SOL_IP / SOL_IPV6 int options kept as given: name -> default (Linux's)
_IP_OPTS = {1: 0, IP_TTL: -1, IP_HDRINCL: 0, 8: 0, 10: 1, 11: 0, IP_RECVTTL: 0, 13: 0, 15: 0,
            33: 1, 34: 1}
_IPV6_OPTS = {IPV6_2292HOPLIMIT: 0, IPV6_UNICAST_HOPS: -1, 18: 1, 19: 1, 23: -1, 25: 0, 26: 0,
              49: 0, IPV6_RECVHOPLIMIT: 0, 66: 0, 67: 0}
_TTL_OPTS = {IP_TTL, IPV6_UNICAST_HOPS}

_sockets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # NetStack -> set
_ip_ids = itertools.count(1)


def _registry(net) -> set:
    return _sockets.setdefault(net, set())


def echo_types(v6: bool) -> tuple[int, int]:
    return (ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY) if v6 else (ICMP_ECHO, ICMP_ECHOREPLY)


def with_checksum(msg: bytes, v6: bool, src: bytes, dst: bytes) -> bytes:
    """msg with its checksum field filled (ICMPv6 over the pseudo-header)."""
    msg = msg[:2] + b"\0\0" + msg[4:]
    c = wire.icmp6_checksum(src, dst, msg) if v6 else wire.checksum(msg)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def echo_reply(request: bytes, v6: bool, src: bytes, dst: bytes) -> bytes:
    """The reply to an echo request: the same id, sequence and data (src
    and dst are the reply's, for ICMPv6's checksum)."""
    return with_checksum(bytes([echo_types(v6)[1], 0]) + request[2:], v6, src, dst)


class IcmpSocket(Socket):
    """A ping socket (SOCK_DGRAM) or a raw socket (SOCK_RAW) of AF_INET or AF_INET6."""

    def __init__(self, net, family: int, stype: int, protocol: int, flags: int) -> None:
        super().__init__(stype, protocol, flags)
        self.family = family
        self.net = net
        self.v6 = family == A.AF_INET6
        self.raw = stype == SOCK_RAW
        self.is_icmp = protocol == (IPPROTO_ICMPV6 if self.v6 else IPPROTO_ICMP)
        self.laddr = A.ANY6 if self.v6 else A.ANY4
        self.ident = 0                     # a ping socket's echo identifier ("port")
        self.peer: bytes | None = None
        self.scope = 0
        self.shut = 0
        self.queue = RecvQueue()
        self.ipopts: dict[int, int] = {}
        self.icmp_filter = 0               # IPv4 raw: bit t set = type t not wanted
        self.icmp6_filter = bytes(32)      # IPv6 raw: the same over 256 types
        self.checksum_offset = -1          # IPV6_CHECKSUM (ICMPv6 is always summed)
        if protocol == IPPROTO_RAW:
            self.ipopts[IP_HDRINCL] = 1
        self.host_ping = None              # the NAT's host ping socket, while one serves us
        _registry(net).add(self)

    # -- state --------------------------------------------------------------------
    def release(self) -> None:
        _registry(self.net).discard(self)
        self.queue.clear()
        if self.net.nat is not None:
            self.net.nat.ping_close(self)

    def poll(self) -> int:
        ev = POLLOUT | POLLWRNORM
        if len(self.queue) or self.shut & RCVSHUTDOWN:
            ev |= POLLIN | POLLRDNORM
        if self.error:
            ev |= POLLERR
        return ev

    def _is_local(self, ip16: bytes) -> bool:
        fam, raw = A.family_bytes(ip16)
        return self.net.is_local(fam, raw)

    def _is_broadcast(self, ip16: bytes) -> bool:
        if not A.is_v4(ip16):
            return False
        ip4 = ip16[12:]
        if ip4 == b"\xff" * 4:
            return True
        return any(a.broadcast == ip4 for d in self.net.devices.values() for a in d.addrs
                   if a.family == A.AF_INET)

    def _addr(self, raw: bytes) -> tuple[bytes, int, int]:
        """A guest sockaddr for this socket: (ip16, port, scope), EINVAL or
        EAFNOSUPPORT as the inet calls check them; AF_INET6 ICMP sockets
        take no v4-mapped address."""
        (ip, port), scope = A.parse_sockaddr(self.family, raw)
        if self.v6 and A.is_v4(ip):
            raise KernelError(E.EINVAL)
        return ip, port, scope

    # -- bind, connect, names -------------------------------------------------------
    def bind(self, t, raw: bytes) -> None:
        ip, port, _ = self._addr(raw)
        if self.ident or not A.is_any(self.laddr):
            raise KernelError(E.EINVAL)
        if not (A.is_any(ip) or self._is_local(ip) or A.is_multicast(ip) or self._is_broadcast(ip)):
            raise KernelError(E.EADDRNOTAVAIL)
        if not self.raw:
            self._set_ident(port)
        self.laddr = ip

    def _set_ident(self, want: int) -> None:
        """ping_get_port: the identifier asked for, or the first free one."""
        used = {s.ident: s for s in _registry(self.net)
                if s is not self and not s.raw and s.v6 == self.v6 and s.ident}
        if want:
            other = used.get(want)
            if other is not None and not (self.opt("SO_REUSEADDR") and other.opt("SO_REUSEADDR")):
                raise KernelError(E.EADDRINUSE)
            self.ident = want
            return
        for ident in range(1, 65536):
            if ident not in used:
                self.ident = ident
                return
        raise KernelError(E.EAGAIN)

    def connect(self, t, raw: bytes) -> None:
        if len(raw) >= 2 and struct.unpack_from("<H", raw)[0] == 0:
            self.peer = None                  # AF_UNSPEC: dissolve the association
            return
        ip, _, scope = self._addr(raw)
        self._route(ip)
        if self._is_broadcast(ip) and not self.opt("SO_BROADCAST"):
            raise KernelError(E.EACCES)
        self.peer, self.scope = ip, scope

    def getname(self, t, peer: bool) -> bytes:
        if peer:
            if self.peer is None:
                raise KernelError(E.ENOTCONN)
            return A.sockaddr(self.family, (self.peer, 0), self.scope)
        return A.sockaddr(self.family, (self.laddr, 0 if self.raw else self.ident))

    def shutdown(self, t, how: int) -> None:
        if self.peer is None:
            raise KernelError(E.ENOTCONN)
        self.shut |= {SHUT_RD: RCVSHUTDOWN, SHUT_RDWR: RCVSHUTDOWN | SNDSHUTDOWN}.get(how, SNDSHUTDOWN)
        self.wake()

    # -- sending ----------------------------------------------------------------------
    def _route(self, dst: bytes) -> bytes:
        """The source address for dst (ENETUNREACH when no route reaches it)."""
        fam, raw = A.family_bytes(dst)
        _dev, _gw, src = self.net.route(fam, raw)
        if src is None:
            raise KernelError(E.EADDRNOTAVAIL)
        return A.from_family(fam, src)

    def check_size(self, n: int) -> None:
        if n > MAX_MSG:
            raise KernelError(E.EMSGSIZE)

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if self.shut & SNDSHUTDOWN:
            raise KernelError(E.EPIPE)
        if addr is not None:
            dst = self._addr(addr)[0]
        elif self.peer is not None:
            dst = self.peer
        else:
            raise KernelError(E.EDESTADDRREQ)
        n = len(data)
        self.check_size(n)
        if not self.is_icmp or self.ipopts.get(IP_HDRINCL):
            printk.pr_info_ratelimited(f"raw socket (protocol {self.protocol}): sending is not "
                                       "supported (ICMP echo only)")
            raise KernelError(E.EOPNOTSUPP)
        msg = bytes(data[:n])
        request, reply_type = echo_types(self.v6)
        if len(msg) < 8:
            raise KernelError(E.EINVAL)
        if not self.raw and (msg[0] != request or msg[1] != 0):
            raise KernelError(E.EINVAL)       # ping sockets send echo requests only
        if self._is_broadcast(dst) and not self.opt("SO_BROADCAST"):
            raise KernelError(E.EACCES)
        if A.is_any(dst):           # Linux sends to "any" over lo, to itself
            dst = A.LOOP6 if self.v6 else A.LOOP4
        src = self.laddr if not A.is_any(self.laddr) else self._route(dst)
        if not self.raw:
            if not self.ident:
                self._set_ident(0)
            msg = msg[:4] + struct.pack("!H", self.ident) + msg[6:]
            msg = with_checksum(msg, self.v6, *self._pair(src, dst))
        elif self.v6:
            msg = with_checksum(msg, True, src, dst)
        self._transmit(src, dst, msg)
        return n

    def _transmit(self, src: bytes, dst: bytes, msg: bytes) -> None:
        """The message leaves: a local destination sees it at once (raw
        sockets too, as it passes lo) and answers echo requests; anything
        else is the NAT's (or lost, without one)."""
        request = echo_types(self.v6)[0]
        ttl = self.ttl()
        if self._is_local(dst):
            deliver(self.net, self.v6, dst, src, msg, ttl)
            if msg[0] == request and msg[1] == 0 and (self.v6 or wire.checksum(msg) == 0):
                deliver(self.net, self.v6, src, dst, echo_reply(msg, self.v6, *self._pair(dst, src)),
                        DEFAULT_TTL)
            return
        nat = self.net.nat
        if nat is not None and not A.is_multicast(dst) and not self._is_broadcast(dst) \
                and msg[0] == request:
            nat.ping(self, src, dst, msg)

    def _pair(self, src: bytes, dst: bytes) -> tuple[bytes, bytes]:
        return (src, dst) if self.v6 else (src[12:], dst[12:])

    def ttl(self) -> int:
        v = self.ipopts.get(IPV6_UNICAST_HOPS if self.v6 else IP_TTL, -1)
        return DEFAULT_TTL if v < 0 else v

    # -- receiving ----------------------------------------------------------------------
    def accepts(self, v6: bool, dst: bytes, src: bytes, msg: bytes) -> bool:
        """Does an ICMP message from src to dst reach this socket?  Ping
        sockets take echo replies with their identifier; raw sockets every
        message their filter lets through."""
        if v6 != self.v6 or self.shut & RCVSHUTDOWN:
            return False
        if not A.is_any(self.laddr) and self.laddr != dst:
            return False
        if not self.raw:
            return msg[0] == echo_types(v6)[1] and struct.unpack_from("!H", msg, 4)[0] == self.ident \
                and self.ident != 0
        if not self.is_icmp:
            return False
        if self.peer is not None and self.peer != src:
            return False
        t = msg[0]
        if v6:
            return not self.icmp6_filter[t >> 3] & (1 << (t & 7))
        return t >= 32 or not self.icmp_filter & (1 << t)

    def take(self, src: bytes, dst: bytes, msg: bytes, ttl: int) -> None:
        """Queue what arrived: IPv4 raw sockets get the IPv4 header too."""
        data = msg
        if self.raw and not self.v6:
            data = wire.ipv4_header(src[12:], dst[12:], wire.IPPROTO_ICMP, len(msg), ttl=ttl,
                                    ident=next(_ip_ids)) + msg
        self.queue.push(self, Datagram(data, A.sockaddr(self.family, (src, 0)), {"ttl": ttl}))

    def recvmsg(self, t, n: int, flags: int) -> Received:
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if flags & MSG_ERRQUEUE:
            raise KernelError(E.EAGAIN)       # no ICMP errors are queued
        if not len(self.queue) and self.shut & RCVSHUTDOWN:
            return Received(b"")
        r, dg = self.queue.take(self, n, flags & (MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC))
        ttl = dg.meta["ttl"]
        if self.v6:
            if self.ipopts.get(IPV6_RECVHOPLIMIT):
                r.cmsgs.append((SOL_IPV6, IPV6_HOPLIMIT, struct.pack("<i", ttl)))
            if self.ipopts.get(IPV6_2292HOPLIMIT):
                r.cmsgs.append((SOL_IPV6, IPV6_2292HOPLIMIT, struct.pack("<i", ttl)))
        elif self.ipopts.get(IP_RECVTTL):
            r.cmsgs.append((SOL_IP, IP_TTL, struct.pack("<i", ttl)))
        return r

    # -- options ------------------------------------------------------------------------
    def _opts(self, level: int) -> dict[int, int] | None:
        if level == SOL_IP and not self.v6:
            return _IP_OPTS
        if level == SOL_IPV6 and self.v6:
            return _IPV6_OPTS
        return None

    def getsockopt(self, t, level: int, opt: int, cap: int) -> bytes:
        table = self._opts(level)
        if table is not None:
            if opt not in table:
                raise KernelError(E.ENOPROTOOPT)
            v = self.ipopts.get(opt, table[opt])
            return struct.pack("<i", self.ttl() if opt in _TTL_OPTS else v)
        if level == SOL_RAW and self.raw:
            if opt == ICMP_FILTER and not self.v6:
                if self.protocol != IPPROTO_ICMP:
                    raise KernelError(E.EOPNOTSUPP)
                return struct.pack("<I", self.icmp_filter)[:max(0, min(cap, 4))]
            if opt == IPV6_CHECKSUM and self.v6:
                return struct.pack("<i", 2 if self.is_icmp else self.checksum_offset)
            raise KernelError(E.ENOPROTOOPT)
        if level == SOL_ICMPV6 and self.raw and self.v6 and opt == ICMP6_FILTER:
            return self.icmp6_filter
        if level in (SOL_IP, SOL_IPV6, SOL_RAW, SOL_ICMPV6):
            raise KernelError(E.ENOPROTOOPT)
        return super().getsockopt(t, level, opt, cap)

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        table = self._opts(level)
        if table is not None:
            if opt == IPV6_CHECKSUM and self.v6 and self.raw:
                raise KernelError(E.EINVAL)  # ICMPv6 sums itself; the level for others is SOL_RAW
            if opt not in table:
                raise KernelError(E.ENOPROTOOPT)
            v = int_opt(raw)
            if opt in _TTL_OPTS and not (v == -1 or 1 <= v <= 255):
                raise KernelError(E.EINVAL)
            self.ipopts[opt] = v
            return
        if level == SOL_RAW and self.raw:
            if opt == ICMP_FILTER and not self.v6:
                if self.protocol != IPPROTO_ICMP:
                    raise KernelError(E.EOPNOTSUPP)
                self.icmp_filter = struct.unpack("<I", raw[:4].ljust(4, b"\0"))[0]
            elif opt == IPV6_CHECKSUM and self.v6:
                v = int_opt(raw)
                if v > 0 and v & 1 or v < -1:
                    raise KernelError(E.EINVAL)
                self.checksum_offset = v
            else:
                raise KernelError(E.ENOPROTOOPT)
            return
        if level == SOL_ICMPV6 and self.raw and self.v6 and opt == ICMP6_FILTER:
            self.icmp6_filter = raw[:32] + self.icmp6_filter[len(raw[:32]):]
            return
        if level in (SOL_IP, SOL_IPV6, SOL_RAW, SOL_ICMPV6):
            raise KernelError(E.ENOPROTOOPT)
        super().setsockopt(t, level, opt, raw)


def deliver(net, v6: bool, dst: bytes, src: bytes, msg: bytes, ttl: int) -> int:
    """An ICMP message (ip16 addresses) arriving for this machine: a copy
    for each socket that takes it.  Returns how many took it."""
    n = 0
    for s in list(_registry(net)):
        if s.accepts(v6, dst, src, msg):
            s.take(src, dst, msg, ttl)
            n += 1
    return n


def new(t, family: int, stype: int, protocol: int, flags: int) -> IcmpSocket:
    """socket(AF_INET/AF_INET6, SOCK_DGRAM/SOCK_RAW, proto) for net/inet.
    Raw sockets need CAP_NET_RAW (checked first, as inet_create); a ping
    socket's protocol must be its family's ICMP."""
    if stype == SOCK_RAW:
        if not capable(t.proc.creds, CAP_NET_RAW):
            raise KernelError(E.EPERM)
        if not 0 <= protocol <= 255:
            raise KernelError(E.EINVAL)
    elif stype == SOCK_DGRAM:
        if protocol != (IPPROTO_ICMPV6 if family == A.AF_INET6 else IPPROTO_ICMP):
            raise KernelError(E.EPROTONOSUPPORT)
    else:
        raise KernelError(E.ESOCKTNOSUPPORT)
    return IcmpSocket(t.kernel.net, family, stype, protocol, flags)
