"""ICMP echo: ping sockets (SOCK_DGRAM) and raw sockets (SOCK_RAW).

Ping sockets are Linux's (net/ipv4/ping.c): the guest writes an echo
request, the kernel puts the socket's identifier (its "port", chosen at
bind or on the first send) in it and fills in the checksum; replies with
that identifier come back without an IP header.  net.ipv4.ping_group_range
(NetStack.ping_group_range, /proc/sys/net/ipv4/ping_group_range) says
which groups may have one: every group unless the guest changes it (what
systemd's sysctl.d sets on Debian; Linux's own default "1 0" refuses even
root).
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

from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.net.dgram import Datagram, RecvQueue
from umlpy.net.inet import addr as A
from umlpy.net.inet import wire
from umlpy.net.inet import ports
from umlpy.net.inet.ports import PortTable
from umlpy.net.inet.sock import (DEFAULT_TTL, IP_HDRINCL, IP_RECVTTL, IP_TTL, IPPROTO_ICMP,
                                 IPPROTO_ICMPV6, IPPROTO_RAW, IPV6_HOPLIMIT, IPV6_RECVHOPLIMIT,
                                 SOL_IP, SOL_IPV6, InetSocket)
from umlpy.net.netdev import SockInfo, net_of
from umlpy.net.socket import (MSG_DONTWAIT, MSG_ERRQUEUE, MSG_OOB, MSG_PEEK, MSG_TRUNC,
                              RCVSHUTDOWN, SHUT_RD, SHUT_RDWR, SNDSHUTDOWN, SOCK_DGRAM, SOCK_RAW,
                              SOL_SOCKET, Received, int_opt)
from umlpy.vfs.file import POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

ICMP_ECHOREPLY, ICMP_ECHO = 0, 8
ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 128, 129
SOL_RAW, SOL_ICMPV6 = 255, 58
ICMP_FILTER, ICMP6_FILTER = 1, 1
IPV6_CHECKSUM, IPV6_2292HOPLIMIT = 7, 8
MAX_MSG = 0xFFFF
ESTABLISHED, CLOSE = 1, 7
_ip_ids = itertools.count(1)


def table(net) -> PortTable:
    """Ping sockets' identifiers, a port space of their own (ping_table)."""
    return ports.table(net, "ping")


def raw_sockets(net) -> set:
    """The ICMP raw sockets: each sees every ICMP message that arrives."""
    r = getattr(net, "icmp_raw_sockets", None)
    if r is None:
        r = net.icmp_raw_sockets = set()
    return r


def _candidates(net, v6: bool, msg: bytes) -> list:
    """Who may take msg: the raw sockets, and for an echo reply the ping
    sockets holding its identifier (ping_lookup), never every socket."""
    out = list(raw_sockets(net))
    if msg[0] == echo_types(v6)[1] and len(msg) >= 8:
        out += table(net).ports.get(struct.unpack_from("!H", msg, 4)[0], ())
    return out


def echo_types(v6: bool) -> tuple[int, int]:
    return (ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY) if v6 else (ICMP_ECHO, ICMP_ECHOREPLY)


def with_checksum(msg: bytes, v6: bool, src: bytes, dst: bytes) -> bytes:
    """msg with its checksum field filled (ICMPv6's covers the pseudo-header:
    src and dst are then the 16-byte addresses)."""
    msg = msg[:2] + b"\0\0" + msg[4:]
    c = wire.icmp6_checksum(src, dst, msg) if v6 else wire.checksum(msg)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def echo_reply(request: bytes, v6: bool, src: bytes, dst: bytes) -> bytes:
    """The reply to an echo request: the same id, sequence and data (src
    and dst are the reply's, ip16)."""
    return with_checksum(bytes([echo_types(v6)[1], 0]) + request[2:], v6, src, dst)


class IcmpSocket(InetSocket):
    """A ping socket (SOCK_DGRAM) or a raw socket (SOCK_RAW), AF_INET or
    AF_INET6.  A ping socket's `local` port is its echo identifier."""

    def __init__(self, net, uid: int, family: int, stype: int, protocol: int, flags: int) -> None:
        super().__init__(net, uid, family, stype, protocol, flags)
        self.proto_name = "raw" if stype == SOCK_RAW else "icmp"
        self.v6 = family == A.AF_INET6
        self.raw = stype == SOCK_RAW
        self.is_icmp = protocol == (IPPROTO_ICMPV6 if self.v6 else IPPROTO_ICMP)
        self.shut = 0
        self.queue = RecvQueue(net)
        self.icmp_filter = 0               # IPv4 raw: bit t set = type t not wanted
        self.icmp6_filter = bytes(32)      # IPv6 raw: the same over 256 types
        self.checksum_offset = -1          # IPV6_CHECKSUM (ICMPv6 is always summed)
        self.rfc2292_hoplimit = 0
        if protocol == IPPROTO_RAW:
            self.ints[(SOL_IP, IP_HDRINCL)] = 1
        if self.raw and self.is_icmp:
            raw_sockets(net).add(self)

    def table(self) -> PortTable:
        return table(self.net)

    # -- state --------------------------------------------------------------------
    def release(self) -> None:
        raw_sockets(self.net).discard(self)
        self.queue.clear()
        if self.net.nat is not None:
            self.net.nat.ping_close(self)
        self.release_addr()

    def poll(self) -> int:
        ev = POLLOUT | POLLWRNORM
        if len(self.queue) or self.shut & RCVSHUTDOWN:
            ev |= POLLIN | POLLRDNORM
        if self.error:
            ev |= POLLERR
        return ev

    def laddr(self) -> bytes:
        return self.local[0] if self.local is not None else A.wildcard(self.family)

    def ident(self) -> int:
        return self.local[1] if self.local is not None and not self.raw else 0

    def _is_broadcast(self, ip16: bytes) -> bool:
        if not A.is_v4(ip16):
            return False
        ip4 = ip16[12:]
        return ip4 == b"\xff" * 4 or any(
            a.broadcast == ip4 for d in self.net.devices.values() for a in d.addrs
            if a.family == A.AF_INET)

    def _addr(self, raw: bytes) -> tuple[bytes, int]:
        """A guest sockaddr: (ip16, port), EINVAL/EAFNOSUPPORT as the inet
        calls check them; an AF_INET6 ICMP socket takes no v4-mapped address."""
        ip, port = self.parse(raw)
        if self.v6 and A.is_v4(ip):
            raise KernelError(E.EINVAL)
        return ip, port

    # -- bind, connect, names -------------------------------------------------------
    def bind(self, t, raw: bytes) -> None:
        """ping_bind / raw_bind: a local, wildcard, multicast or broadcast
        address; a ping socket's port is its identifier (any may be asked
        for), a raw socket has none."""
        ip, port = self._addr(raw)
        if self.local is not None:
            raise KernelError(E.EINVAL)
        if not self._is_broadcast(ip):
            self.check_local(ip)
        if self.raw:
            self.local = (ip, 0)
        else:
            self.table().bind(self, ip, port)
        self.bound_addr = not A.is_any(ip)

    def connect(self, t, raw: bytes) -> None:
        if len(raw) >= 2 and struct.unpack_from("<H", raw)[0] == 0:
            self.remote = None                # AF_UNSPEC: dissolve the association
            return
        ip = self.dest(self._addr(raw)[0])
        self.source_for(ip)
        if self._is_broadcast(ip) and not self.opt("SO_BROADCAST"):
            raise KernelError(E.EACCES)
        self.remote = (ip, 0)

    def getname(self, t, peer: int) -> bytes:
        if peer:
            if self.remote is None:
                raise KernelError(E.ENOTCONN)
            return A.sockaddr(self.family, self.remote)
        return A.sockaddr(self.family, (self.laddr(), self.ident()))

    def shutdown(self, t, how: int) -> None:
        if self.remote is None:
            raise KernelError(E.ENOTCONN)
        self.shut |= {SHUT_RD: RCVSHUTDOWN, SHUT_RDWR: RCVSHUTDOWN | SNDSHUTDOWN}.get(how, SNDSHUTDOWN)
        self.wake()

    # -- sending ----------------------------------------------------------------------
    def check_size(self, n: int) -> None:
        if n > MAX_MSG:
            raise KernelError(E.EMSGSIZE)

    def hop_limit(self) -> int:
        v = self.hops if self.v6 else self.ttl
        return DEFAULT_TTL if v == -1 else v

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if self.shut & SNDSHUTDOWN:
            raise KernelError(E.EPIPE)
        if addr is not None:
            dst = self._addr(addr)[0]
        elif self.remote is not None:
            dst = self.remote[0]
        else:
            raise KernelError(E.EDESTADDRREQ)
        n = len(data)
        self.check_size(n)
        if not self.is_icmp or self.ints.get((SOL_IP, IP_HDRINCL)):
            printk.pr_info_ratelimited(f"raw socket (protocol {self.protocol}): sending is not "
                                       "supported (ICMP echo only)")
            raise KernelError(E.EOPNOTSUPP)
        msg = bytes(data[:n])
        if len(msg) < 8:
            raise KernelError(E.EINVAL)
        if not self.raw and (msg[0] != echo_types(self.v6)[0] or msg[1] != 0):
            raise KernelError(E.EINVAL)       # ping sockets send echo requests only
        if self._is_broadcast(dst) and not self.opt("SO_BROADCAST"):
            raise KernelError(E.EACCES)
        dst = self.dest(dst)
        src = self.source_for(dst)
        if not self.raw:
            if self.local is None:
                self.autobind()
            msg = with_checksum(msg[:4] + struct.pack("!H", self.ident()) + msg[6:], self.v6, src, dst)
        elif self.v6:
            msg = with_checksum(msg, True, src, dst)
        self._transmit(src, dst, msg)
        return n

    def _transmit(self, src: bytes, dst: bytes, msg: bytes) -> None:
        """The message leaves: a local destination sees it at once (raw
        sockets too, as it passes lo) and answers echo requests that are
        whole; anything else is the NAT's (or lost, without one)."""
        request = echo_types(self.v6)[0]
        if self.is_local_dst(dst):
            deliver(self.net, self.v6, dst, src, msg, self.hop_limit())
            if msg[0] == request and msg[1] == 0 and (self.v6 or wire.checksum(msg) == 0):
                deliver(self.net, self.v6, src, dst, echo_reply(msg, self.v6, dst, src), DEFAULT_TTL)
            return
        nat = self.net.nat
        if nat is not None and msg[0] == request and not A.is_multicast(dst) \
                and not self._is_broadcast(dst):
            nat.ping(self, src, dst, msg)

    # -- receiving ----------------------------------------------------------------------
    def accepts(self, v6: bool, dst: bytes, src: bytes, msg: bytes) -> bool:
        """Does an ICMP message from src to dst reach this socket?  Ping
        sockets take echo replies with their identifier; ICMP raw sockets
        every message their filter lets through."""
        if v6 != self.v6 or self.shut & RCVSHUTDOWN:
            return False
        if self.bound_addr and self.laddr() != dst:
            return False
        if not self.raw:
            return msg[0] == echo_types(v6)[1] and self.ident() != 0 and \
                struct.unpack_from("!H", msg, 4)[0] == self.ident()
        if not self.is_icmp or (self.remote is not None and self.remote[0] != src):
            return False
        kind = msg[0]
        if v6:
            return not self.icmp6_filter[kind >> 3] & (1 << (kind & 7))
        return kind >= 32 or not self.icmp_filter & (1 << kind)

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
        ttl = struct.pack("<i", dg.meta["ttl"])
        if self.v6:
            if self.ints.get((SOL_IPV6, IPV6_RECVHOPLIMIT)):
                r.add_cmsg(SOL_IPV6, IPV6_HOPLIMIT, ttl)
            if self.rfc2292_hoplimit:
                r.add_cmsg(SOL_IPV6, IPV6_2292HOPLIMIT, ttl)
        elif self.ints.get((SOL_IP, IP_RECVTTL)):
            r.add_cmsg(SOL_IP, IP_TTL, ttl)
        return r

    # -- options ------------------------------------------------------------------------
    def getsockopt(self, t, level: int, opt: int, cap: int, arg) -> bytes:
        if level == SOL_SOCKET:
            return super().getsockopt(t, level, opt, cap, arg)
        if level == SOL_IPV6 and self.v6 and opt == IPV6_2292HOPLIMIT:
            return struct.pack("<i", self.rfc2292_hoplimit)
        if level in (SOL_IP, SOL_IPV6):
            return self.ip_getsockopt(level, opt)
        if level == SOL_RAW and self.raw:
            if opt == ICMP_FILTER and not self.v6:
                if self.protocol != IPPROTO_ICMP:
                    raise KernelError(E.EOPNOTSUPP)
                return struct.pack("<I", self.icmp_filter)[:max(0, min(cap, 4))]
            if opt == IPV6_CHECKSUM and self.v6:
                return struct.pack("<i", 2 if self.is_icmp else self.checksum_offset)
        if level == SOL_ICMPV6 and self.raw and self.v6 and opt == ICMP6_FILTER:
            return self.icmp6_filter
        raise KernelError(E.ENOPROTOOPT)

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        if level == SOL_SOCKET:
            return super().setsockopt(t, level, opt, raw)
        if level == SOL_IPV6 and self.v6 and opt == IPV6_2292HOPLIMIT:
            self.rfc2292_hoplimit = int(bool(int_opt(raw)))
            return None
        if level == SOL_IPV6 and self.v6 and self.raw and opt == IPV6_CHECKSUM:
            raise KernelError(E.EINVAL)      # ICMPv6 sums itself; others set it at SOL_RAW
        if level in (SOL_IP, SOL_IPV6):
            return self.ip_setsockopt(level, opt, raw)
        if level == SOL_RAW and self.raw and opt == ICMP_FILTER and not self.v6:
            if self.protocol != IPPROTO_ICMP:
                raise KernelError(E.EOPNOTSUPP)
            self.icmp_filter = struct.unpack("<I", raw[:4].ljust(4, b"\0"))[0]
            return None
        if level == SOL_RAW and self.raw and opt == IPV6_CHECKSUM and self.v6:
            v = int_opt(raw)
            if (v > 0 and v & 1) or v < -1:
                raise KernelError(E.EINVAL)
            self.checksum_offset = v
            return None
        if level == SOL_ICMPV6 and self.raw and self.v6 and opt == ICMP6_FILTER:
            self.icmp6_filter = raw[:32] + self.icmp6_filter[len(raw[:32]):]
            return None
        raise KernelError(E.ENOPROTOOPT)

    def info(self) -> SockInfo:
        """/proc/net/raw shows the protocol as the local port, icmp the identifier."""
        remote = self.remote or (A.wildcard(self.family), 0)
        return SockInfo(self.family, self.proto_name, A.packed(self.family, self.laddr()),
                        self.protocol if self.raw else self.ident(),
                        A.packed(self.family, remote[0]), 0,
                        ESTABLISHED if self.remote else CLOSE, 0, self.queue.mem, self.uid,
                        self.inode.ino)


def deliver(net, v6: bool, dst: bytes, src: bytes, msg: bytes, ttl: int) -> int:
    """An ICMP message (ip16 addresses) arriving for this machine: a copy
    for each socket that takes it.  Returns how many took it."""
    n = 0
    for s in _candidates(net, v6, msg):
        if s.accepts(v6, dst, src, msg):
            s.take(src, dst, msg, ttl)
            n += 1
    return n


def _may_ping(t) -> bool:
    """ping_init_sock: the caller's egid or a supplementary group in the range."""
    low, high = net_of(t).ping_group_range
    creds = t.proc.creds
    return any(low <= g <= high for g in (creds.egid, *creds.groups))


def new(t, family: int, stype: int, protocol: int, flags: int) -> IcmpSocket:
    """socket(AF_INET/AF_INET6, SOCK_DGRAM, ICMP/ICMPv6) and SOCK_RAW
    sockets, made for net/inet/family.py once it has checked CAP_NET_RAW
    (raw) and the protocol.  Ping sockets are for the groups in
    net.ipv4.ping_group_range (EACCES otherwise, root included)."""
    if stype not in (SOCK_DGRAM, SOCK_RAW):
        raise KernelError(E.ESOCKTNOSUPPORT)
    if stype == SOCK_DGRAM and not _may_ping(t):
        raise KernelError(E.EACCES)
    return IcmpSocket(net_of(t), t.proc.creds.euid, family, stype, protocol, flags)
