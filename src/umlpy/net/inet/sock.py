"""What TCP and UDP sockets share: addresses, binding, IP-level options.

The option defaults and errors are Linux's (ip_setsockopt,
do_ipv6_setsockopt): values out of range are EINVAL, unknown options
ENOPROTOOPT, IPv6 options on an AF_INET socket ENOPROTOOPT.
"""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_BIND_SERVICE
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.net.inet import addr as A
from umlpy.net.netdev import net_capable
from umlpy.net.socket import SOCK_RAW, SOL_SOCKET, Socket, int_opt

IPPROTO_IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 0, 1, 6, 17
IPPROTO_IPV6, IPPROTO_ICMPV6, IPPROTO_RAW = 41, 58, 255
SOL_IP, SOL_IPV6 = IPPROTO_IP, IPPROTO_IPV6
DEFAULT_TTL = 64                    # net.ipv4.ip_default_ttl, net.ipv6.conf.all.hop_limit

# IPPROTO_IP
IP_TOS, IP_TTL, IP_HDRINCL, IP_OPTIONS, IP_RECVOPTS = 1, 2, 3, 4, 6
IP_PKTINFO, IP_MTU_DISCOVER, IP_RECVERR, IP_RECVTTL, IP_RECVTOS, IP_MTU = 8, 10, 11, 12, 13, 14
IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT = 15, 19, 24
IP_MULTICAST_IF, IP_MULTICAST_TTL, IP_MULTICAST_LOOP = 32, 33, 34
IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP, IP_MULTICAST_ALL = 35, 36, 49
MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP = 42, 45      # both levels
GROUP_REQ_SIZE = 136                # struct group_req: gr_interface, padding, sockaddr_storage
IGMP_MAX_MEMBERSHIPS = 20           # net.ipv4.igmp_max_memberships (ENOBUFS past it)
IP_PMTUDISC_WANT, IP_PMTUDISC_PROBE, IP_PMTUDISC_OMIT = 1, 3, 5
# IPPROTO_IPV6
IPV6_ADDRFORM, IPV6_UNICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_HOPS = 1, 16, 17, 18
IPV6_MULTICAST_LOOP, IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP = 19, 20, 21
IPV6_MTU_DISCOVER, IPV6_MTU, IPV6_RECVERR, IPV6_V6ONLY = 23, 24, 25, 26
IPV6_RECVPKTINFO, IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 49, 50, 51, 52
IPV6_RTHDR, IPV6_RECVTCLASS, IPV6_TCLASS, IPV6_FREEBIND = 57, 66, 67, 78

_said_multicast = False
_said_rthdr = False

# options that are plain ints: (level, name) -> (default, low, high)
_IP_INTS = {
    (SOL_IP, IP_RECVOPTS): (0, 0, 1), (SOL_IP, IP_PKTINFO): (0, 0, 1),
    (SOL_IP, IP_RECVERR): (0, 0, 1), (SOL_IP, IP_RECVTTL): (0, 0, 1),
    (SOL_IP, IP_RECVTOS): (0, 0, 1), (SOL_IP, IP_FREEBIND): (0, 0, 1),
    (SOL_IP, IP_TRANSPARENT): (0, 0, 1), (SOL_IP, IP_BIND_ADDRESS_NO_PORT): (0, 0, 1),
    (SOL_IP, IP_MULTICAST_LOOP): (1, 0, 1), (SOL_IP, IP_MULTICAST_ALL): (1, 0, 1),
    (SOL_IP, IP_MTU_DISCOVER): (IP_PMTUDISC_WANT, 0, IP_PMTUDISC_OMIT),
    (SOL_IP, IP_HDRINCL): (0, 0, 1),
    (SOL_IPV6, IPV6_RECVPKTINFO): (0, 0, 1), (SOL_IPV6, IPV6_RECVHOPLIMIT): (0, 0, 1),
    (SOL_IPV6, IPV6_RECVTCLASS): (0, 0, 1), (SOL_IPV6, IPV6_RECVERR): (0, 0, 1),
    (SOL_IPV6, IPV6_MULTICAST_LOOP): (1, 0, 1), (SOL_IPV6, IPV6_FREEBIND): (0, 0, 1),
    (SOL_IPV6, IPV6_MTU_DISCOVER): (IP_PMTUDISC_WANT, 0, IP_PMTUDISC_OMIT),
    (SOL_IPV6, IPV6_MULTICAST_IF): (0, 0, 0x7FFFFFFF),
}


class InetSocket(Socket):
    """An AF_INET or AF_INET6 socket: local and remote endpoints are
    (ip16, port) with IPv4 v4-mapped (net/inet/addr.py)."""
    proto_name = ""

    def __init__(self, net, uid: int, family: int, stype: int, protocol: int, flags: int) -> None:
        super().__init__(stype, protocol, flags)
        self.family = family
        self.net = net
        self.uid = uid
        self.bound_port = False
        self.bound_addr = False
        self.saddr: bytes | None = None       # an address kept without a port (UDP disconnect)
        self.local: A.Endpoint | None = None
        self.remote: A.Endpoint | None = None
        self.v6only = False
        self.ttl = -1
        self.tos = 0
        self.mcast_ttl = 1
        self.hops = -1
        self.mcast_hops = -1
        self.ints: dict[tuple[int, int], int] = {}
        self.mc_index, self.mc_addr = 0, bytes(4)   # IP_MULTICAST_IF: the interface, its address
        self.groups: set[tuple[bytes, int]] = set()     # multicast (group ip16, ifindex) joined
        self._route: tuple | None = None
        self.net.inet_sockets.add(self)

    # -- addresses --------------------------------------------------------------
    def table(self):
        raise NotImplementedError

    def parse(self, raw: bytes) -> A.Endpoint:
        """A connect or send to a v4-mapped address from a v6-only socket
        is ENETUNREACH (dest())."""
        return A.parse_sockaddr(self.family, raw)[0]

    def parse_connect(self, raw: bytes) -> A.Endpoint:
        """A connect's address; one that needs an interface (link-local)
        binds the socket to its sin6_scope_id, which must agree with a
        device it is bound to already (EINVAL), and without either is
        EINVAL (tcp_v6_connect, __ip6_datagram_connect)."""
        ep, scope = A.parse_sockaddr(self.family, raw)
        if self.family == A.AF_INET6 and A.needs_scope(ep[0]):
            if scope:
                if self.bound_dev and self.bound_dev != scope:
                    raise KernelError(E.EINVAL)
                self.bound_dev = scope
            if not self.bound_dev:
                raise KernelError(E.EINVAL)
        return ep

    def scope_of(self, ip16: bytes) -> int:
        """The sin6_scope_id a name of this socket shows: its device, for
        an address that needs one (ipv6_iface_scope_id)."""
        return self.bound_dev if self.family == A.AF_INET6 and A.needs_scope(ip16) else 0

    def other_level(self, getting: bool) -> KernelError:
        """A level neither IP nor this protocol's: ip_getsockopt answers
        EOPNOTSUPP, ip_setsockopt and IPv6 both ways ENOPROTOOPT."""
        return KernelError(E.EOPNOTSUPP if getting and self.family == A.AF_INET else E.ENOPROTOOPT)

    def is_broadcast(self, ip16: bytes) -> bool:
        """255.255.255.255 or a configured IPv4 subnet's broadcast address."""
        if not A.is_v4(ip16):
            return False
        ip = ip16[12:]
        if ip == b"\xff\xff\xff\xff":
            return True
        for d in self.net.devices.values():
            for a in d.addrs:
                if a.family == A.AF_INET and a.prefixlen < 31:
                    host = (1 << (32 - a.prefixlen)) - 1
                    if int.from_bytes(ip, "big") == int.from_bytes(a.addr, "big") | host:
                        return True
        return False

    def _freebind(self) -> bool:
        """IP_FREEBIND, IPV6_FREEBIND or IP_TRANSPARENT: any address binds."""
        return bool(self.ints.get((SOL_IP, IP_FREEBIND)) or self.ints.get((SOL_IPV6, IPV6_FREEBIND))
                    or self.ints.get((SOL_IP, IP_TRANSPARENT)))

    def check_local(self, ip16: bytes) -> None:
        """A bind address must be ours (or a wildcard, or multicast for datagrams)."""
        if A.is_any(ip16) or self._freebind():
            return
        fam, ip = A.family_bytes(ip16)
        if self.net.is_local(fam, ip) or (A.is_multicast(ip16) and self.stype != 1):
            return
        raise KernelError(E.EADDRNOTAVAIL)

    def bind(self, t, raw: bytes) -> None:
        if self.family == A.AF_INET and len(raw) >= 2 and struct.unpack_from("<H", raw)[0] == 0 \
                and len(raw) >= A.SIN_LEN:
            # AF_UNSPEC with INADDR_ANY is accepted as AF_INET (inet_bind's compatibility case)
            if raw[4:8] != bytes(4):
                raise KernelError(E.EAFNOSUPPORT)
            raw = struct.pack("<H", A.AF_INET) + raw[2:]
        (ip16, port), scope = A.parse_sockaddr(self.family, raw)
        if self.family == A.AF_INET6 and self.stype == 1 and A.is_multicast(ip16) and not A.is_v4(ip16):
            raise KernelError(E.EINVAL)     # __inet6_bind: no stream socket on a group
        if self.family == A.AF_INET:
            self.check_local(ip16)      # __inet_bind: the address first
        if 0 < port < self.net.prot_sock and not _may_bind_low(t):
            raise KernelError(E.EACCES)
        if self.local is not None:
            raise KernelError(E.EINVAL)
        if self.family == A.AF_INET6:   # __inet6_bind: the address after the double bind
            if self.v6only and A.is_v4(ip16):
                raise KernelError(E.EINVAL)     # a v4-mapped address on a v6-only socket
            self._bind_scope(ip16, scope)
            self.check_local(ip16)
        if self.family == A.AF_INET and ip16 == A.ANY6:
            ip16 = A.ANY4
        self.table().bind(self, ip16, port)
        self.bound_port = port != 0
        self.bound_addr = not A.is_any(ip16)

    def _bind_scope(self, ip16: bytes, scope: int) -> None:
        """__inet6_bind: a link-local address binds the socket to the device
        its sin6_scope_id names (EINVAL with none given nor bound), a bound
        device must exist (ENODEV), and a link-local address must be that
        device's (EADDRNOTAVAIL)."""
        if A.is_any(ip16) or A.is_v4(ip16):
            return
        if A.needs_scope(ip16):
            if scope:
                self.bound_dev = scope
            if not self.bound_dev:
                raise KernelError(E.EINVAL)
        if self.bound_dev:
            dev = self.net.by_index(self.bound_dev)
            if A.needs_scope(ip16) and not A.is_multicast(ip16) and not self._freebind() \
                    and not dev.has_addr(A.AF_INET6, ip16):
                raise KernelError(E.EADDRNOTAVAIL)

    def autobind(self) -> None:
        """An unbound socket that sends or connects gets an ephemeral port
        (on the address it was bound to, if a disconnect kept one)."""
        if self.local is not None:
            return
        self.table().bind(self, self.saddr or A.wildcard(self.family), 0)
        self.bound_port = False

    def source_for(self, dst: bytes) -> bytes:
        """The local address a connection to dst uses: the bound one, else
        the route's preferred source."""
        if self.local is not None and not A.is_any(self.local[0]):
            return self.local[0]
        return self.route_to(dst)[0]

    def route_to(self, dst: bytes) -> tuple[bytes, bool]:
        """(the route's source address for dst, is dst this machine's),
        remembered for the last destination until the routes change."""
        net = self.net
        cached = self._route
        if cached is not None and cached[0] == net.gen and cached[1] == dst:
            return cached[2]
        fam, ip = A.family_bytes(dst)
        _dev, _gw, src = net.route(fam, ip)
        if src is None:
            raise KernelError(E.EADDRNOTAVAIL)
        got = (A.from_family(fam, src), net.is_local(fam, ip))
        self._route = (net.gen, dst, got)
        return got

    def dest(self, ip16: bytes) -> bytes:
        """connect/sendto to a wildcard address means this machine."""
        if ip16 == A.ANY4:
            return A.LOOP4
        if ip16 == A.ANY6:
            return A.LOOP6
        if self.family == A.AF_INET6 and self.v6only and A.is_v4(ip16):
            raise KernelError(E.ENETUNREACH)
        return ip16

    def is_local_dst(self, ip16: bytes) -> bool:
        return self.route_to(ip16)[1]

    def getname(self, t, peer: int) -> bytes:
        """peer 2 is accept's question: the address even of a connection
        that is already closed again (inet_getname)."""
        if peer:
            if self.remote is None or (peer == 1 and not self.connected_for_peer()):
                raise KernelError(E.ENOTCONN)
            return A.sockaddr(self.family, self.remote, self.scope_of(self.remote[0]))
        if self.local is None and self.saddr is not None:
            return A.sockaddr(self.family, (self.saddr, 0), self.scope_of(self.saddr))
        ep = self.local
        return A.sockaddr(self.family, ep, self.scope_of(ep[0]) if ep is not None else 0)

    def connected_for_peer(self) -> bool:
        return True

    def established(self) -> bool | None:
        """sk_state == TCP_ESTABLISHED, as IPV6_ADDRFORM asks it; None for a
        protocol the option does not apply to (ping sockets)."""
        return None

    def addrform_busy(self) -> bool:
        """Something of the IPv6 form is in flight (a corked datagram)."""
        return False

    def _addrform(self, raw: bytes) -> None:
        """IPV6_ADDRFORM (do_ipv6_setsockopt): a connected TCP or UDP socket
        whose peer is a v4-mapped address becomes an AF_INET socket (its
        IPv6 multicast groups left); its addresses are kept as they are,
        v4-mapped inside, and shown as sockaddr_in from then on."""
        if len(raw) < 4 or int_opt(raw) != A.AF_INET:
            raise KernelError(E.EINVAL)
        up = self.established()
        if up is None or self.stype == SOCK_RAW:
            raise KernelError(E.ENOPROTOOPT)
        if self.addrform_busy():
            raise KernelError(E.EBUSY)
        if not up:
            raise KernelError(E.ENOTCONN)
        if self.v6only or self.remote is None or not A.is_v4(self.remote[0]):
            raise KernelError(E.EADDRNOTAVAIL)
        self.groups = {g for g in self.groups if A.is_v4(g[0])}
        self.family = A.AF_INET

    # -- options ------------------------------------------------------------------
    proto_levels: tuple[int, ...] = ()      # the levels of the protocol's own options

    def getsockopt(self, t, level: int, opt: int, cap: int, arg) -> bytes:
        """The levels as tcp_getsockopt/udp_getsockopt route them: socket,
        IP/IPv6, the protocol's own; anything else is the IP layer's
        answer (other_level)."""
        if level == SOL_SOCKET:
            return super().getsockopt(t, level, opt, cap, arg)
        if level in (SOL_IP, SOL_IPV6):
            return self.ip_getsockopt(level, opt)
        if level in self.proto_levels:
            return self.proto_getsockopt(opt, cap)
        raise self.other_level(True)

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        if level == SOL_SOCKET:
            return super().setsockopt(t, level, opt, raw)
        if level in (SOL_IP, SOL_IPV6):
            return self.ip_setsockopt(level, opt, raw)
        if level in self.proto_levels:
            return self.proto_setsockopt(opt, raw)
        raise self.other_level(False)

    def proto_getsockopt(self, opt: int, cap: int) -> bytes:
        raise KernelError(E.ENOPROTOOPT)

    def proto_setsockopt(self, opt: int, raw: bytes) -> None:
        raise KernelError(E.ENOPROTOOPT)

    def ip_getsockopt(self, level: int, opt: int) -> bytes:
        if level == SOL_IPV6 and self.family != A.AF_INET6:
            raise self.other_level(True)
        key = (level, opt)
        if key in _IP_INTS:
            return struct.pack("<i", self.ints.get(key, _IP_INTS[key][0]))
        v = None
        if level == SOL_IP:
            if opt == IP_TTL:
                v = DEFAULT_TTL if self.ttl == -1 else self.ttl
            elif opt == IP_TOS:
                v = self.tos
            elif opt == IP_MULTICAST_TTL:
                v = self.mcast_ttl
            elif opt == IP_MULTICAST_IF:
                return self.mc_addr
            elif opt == IP_OPTIONS:
                return b""
            elif opt == IP_MTU:
                v = self.path_mtu()
        else:
            if opt == IPV6_V6ONLY:
                v = int(self.v6only)
            elif opt == IPV6_UNICAST_HOPS:
                v = DEFAULT_TTL if self.hops == -1 else self.hops
            elif opt == IPV6_MULTICAST_HOPS:
                v = 1 if self.mcast_hops == -1 else self.mcast_hops
            elif opt == IPV6_TCLASS:
                v = self.tos
            elif opt == IPV6_MTU:
                v = self.path_mtu()
            elif opt == IPV6_RTHDR:
                return b""          # no sticky routing header: none can be set
            elif opt == IPV6_ADDRFORM:
                up = self.established()
                if up is None:
                    raise KernelError(E.ENOPROTOOPT)
                if not up:
                    raise KernelError(E.ENOTCONN)
                v = self.family
        if v is None:
            raise KernelError(E.ENOPROTOOPT)
        return struct.pack("<i", v)

    def _membership(self, level: int, opt: int, raw: bytes) -> None:
        """The multicast groups the socket joined, per interface, as
        ip_mc_join_group and ipv6_sock_mc_join keep them: EINVAL for what
        is not a multicast group, ENODEV for no such interface, EADDRINUSE
        for a group joined already, ENOBUFS past igmp_max_memberships,
        EADDRNOTAVAIL to leave one not joined; an accepted socket joined
        none.  What the machine's own sockets send to a group is delivered
        to its sockets (udp.py, multicast loopback); nothing comes from
        outside: the first join says so in the log."""
        join = opt in (IP_ADD_MEMBERSHIP, MCAST_JOIN_GROUP, IPV6_JOIN_GROUP)
        if opt in (MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP):
            if len(raw) < GROUP_REQ_SIZE:
                raise KernelError(E.EINVAL)
            ifindex, fam = struct.unpack_from("<I4xH", raw)
            if fam != (A.AF_INET if level == SOL_IP else A.AF_INET6):
                raise KernelError(E.EINVAL if level == SOL_IP else E.EADDRNOTAVAIL)
            group = A.MAPPED + raw[12:16] if level == SOL_IP else bytes(raw[16:32])
        elif level == SOL_IP:               # struct ip_mreq, or ip_mreqn with an ifindex
            if len(raw) < 8:
                raise KernelError(E.EINVAL)
            group = A.MAPPED + raw[0:4]
            ifindex = struct.unpack_from("<i", raw, 8)[0] if len(raw) >= 12 else 0
        else:                               # struct ipv6_mreq
            if len(raw) < 20:
                raise KernelError(E.EINVAL)
            group, ifindex = bytes(raw[0:16]), struct.unpack_from("<i", raw, 16)[0]
        if not A.is_multicast(group):
            raise KernelError(E.EINVAL)
        if ifindex:
            self.net.by_index(ifindex)      # ENODEV
        else:                               # the device the group's route leaves by
            try:
                ifindex = self.net.lookup(*A.family_bytes(group)).ifindex
            except KernelError:
                raise KernelError(E.ENODEV) from None
        key = (group, ifindex)
        if not join:
            if key not in self.groups:
                raise KernelError(E.EADDRNOTAVAIL)
            self.groups.discard(key)
            return
        if key in self.groups:
            raise KernelError(E.EADDRINUSE)
        if len(self.groups) >= IGMP_MAX_MEMBERSHIPS:
            raise KernelError(E.ENOBUFS)
        self.groups.add(key)
        global _said_multicast
        if not _said_multicast:
            _said_multicast = True
            printk.pr_notice("inet: multicast groups are joined; only the guest's own datagrams reach them")

    def _multicast_if(self, raw: bytes) -> None:
        """IP_MULTICAST_IF (do_ip_setsockopt): where the socket's multicast
        leaves, from a struct ip_mreqn (an index, else the address), an
        ip_mreq (its interface address) or an in_addr; INADDR_ANY with no
        index undoes it.  Not for stream sockets (EINVAL); an address or
        index of no device is EADDRNOTAVAIL, one other than a bound
        device's EINVAL."""
        if self.stype == 1 or len(raw) < 4:
            raise KernelError(E.EINVAL)
        if len(raw) >= 12:
            addr, index = bytes(raw[4:8]), struct.unpack_from("<i", raw, 8)[0]
        else:
            addr, index = bytes(raw[4:8] if len(raw) >= 8 else raw[:4]), 0
        if not index:
            if addr == bytes(4):
                self.mc_index, self.mc_addr = 0, addr
                return
            dev = self.net.device_with(A.AF_INET, addr)
        else:
            dev = self.net.devices.get(index)
        if dev is None:
            raise KernelError(E.EADDRNOTAVAIL)
        if self.bound_dev and dev.index != self.bound_dev:
            raise KernelError(E.EINVAL)
        self.mc_index, self.mc_addr = dev.index, addr

    def _multicast_if6(self, raw: bytes) -> None:
        """IPV6_MULTICAST_IF (do_ipv6_setsockopt): not for stream sockets
        (ENOPROTOOPT); an index of no device is ENODEV, one other than a
        bound device's EINVAL."""
        if self.stype == 1:
            raise KernelError(E.ENOPROTOOPT)
        if len(raw) < 4:
            raise KernelError(E.EINVAL)
        index = int_opt(raw)
        if index:
            self.net.by_index(index)
            if self.bound_dev and self.bound_dev != index:
                raise KernelError(E.EINVAL)

    def multicast_out(self, group: bytes) -> int:
        """The interface a datagram to a group leaves by: IP_MULTICAST_IF's
        (IPV6_MULTICAST_IF's), the bound device, else the group's route's
        (ENETUNREACH without one)."""
        if A.is_v4(group):
            index = self.mc_index
        else:
            index = self.ints.get((SOL_IPV6, IPV6_MULTICAST_IF), 0)
        if index or self.bound_dev:
            return index or self.bound_dev
        try:
            return self.net.lookup(*A.family_bytes(group)).ifindex
        except KernelError:
            raise KernelError(E.ENETUNREACH) from None

    def takes_multicast(self, group: bytes, ifindex: int) -> bool:
        """ip_mc_sf_allow: a socket that joined the group on that interface
        takes it, any other only with IP_MULTICAST_ALL (the default, and
        always for IPv6 here)."""
        return (group, ifindex) in self.groups or not A.is_v4(group) or \
            bool(self.ints.get((SOL_IP, IP_MULTICAST_ALL), 1))

    def path_mtu(self) -> int:
        if self.remote is None:
            raise KernelError(E.ENOTCONN)
        fam, ip = A.family_bytes(self.remote[0])
        return self.net.route(fam, ip)[0].mtu

    def ip_setsockopt(self, level: int, opt: int, raw: bytes) -> None:
        if level == SOL_IPV6 and self.family != A.AF_INET6:
            raise self.other_level(False)
        key = (level, opt)
        if opt in (MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP) or (level == SOL_IP and opt in (
                IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP)) or (level == SOL_IPV6 and opt in (
                IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP)):
            return self._membership(level, opt, raw)
        if level == SOL_IPV6 and opt == IPV6_RTHDR:
            return _routing_header(raw)
        if level == SOL_IPV6 and opt == IPV6_ADDRFORM:
            return self._addrform(raw)
        if level == SOL_IP and opt == IP_MULTICAST_IF:
            return self._multicast_if(raw)
        if level == SOL_IPV6 and opt == IPV6_MULTICAST_IF:
            self._multicast_if6(raw)        # then kept as a plain int
        if level == SOL_IP and opt == IP_OPTIONS:
            if raw:
                raise KernelError(E.EINVAL)
            return
        if not raw:
            raise KernelError(E.EINVAL)
        v = int_opt(raw) if len(raw) >= 4 else raw[0]
        if key in _IP_INTS:
            _d, lo, hi = _IP_INTS[key]
            if not lo <= v <= hi:
                if hi == 1:
                    v = 1       # booleans take any non-zero value
                else:
                    raise KernelError(E.EINVAL)
            self.ints[key] = v
            return
        if level == SOL_IP:
            if opt == IP_TTL:
                if v != -1 and not 1 <= v <= 255:
                    raise KernelError(E.EINVAL)
                self.ttl = v
            elif opt == IP_TOS:
                self.tos = v & 0xFF & ~3 if self.stype == 1 else v & 0xFF
            elif opt == IP_MULTICAST_TTL:
                if v == -1:
                    v = 1
                if not 0 <= v <= 255:
                    raise KernelError(E.EINVAL)
                self.mcast_ttl = v
            else:
                raise KernelError(E.ENOPROTOOPT)
            return
        if opt == IPV6_V6ONLY:
            if self.local is not None:
                raise KernelError(E.EINVAL)
            self.v6only = bool(v)
        elif opt in (IPV6_UNICAST_HOPS, IPV6_MULTICAST_HOPS):
            if not -1 <= v <= 255:
                raise KernelError(E.EINVAL)
            if opt == IPV6_UNICAST_HOPS:
                self.hops = v
            else:
                self.mcast_hops = v
        elif opt == IPV6_TCLASS:
            if not -1 <= v <= 0xFF:
                raise KernelError(E.EINVAL)
            self.tos = 0 if v == -1 else v
        else:
            raise KernelError(E.ENOPROTOOPT)

    def send_ctl(self, cmsgs: list, v4: bool) -> tuple[int, int]:
        """The hop limit and traffic class one datagram leaves with: the
        socket's, or what its sendmsg's control messages ask.  An IPv4
        destination reads SOL_IP's as ip_cmsg_send (IP_TTL 1..255, IP_TOS
        an int or a byte, 0..255), an IPv6 one SOL_IPV6's as
        ip6_datagram_send_ctl (IPV6_HOPLIMIT and IPV6_TCLASS each exactly
        one int, -1..255, -1 the socket's own): any other length or value is
        EINVAL.  Other levels, and the types not handled here (PKTINFO, the
        IPv6 extension headers), are let through as before."""
        hops = self.ttl if v4 else self.hops
        tos = self.tos
        for level, ctype, body in cmsgs:
            if v4 and level == SOL_IP and ctype in (IP_TTL, IP_TOS):
                if ctype == IP_TOS and len(body) == 1:
                    val = body[0]
                elif len(body) == 4:
                    val = struct.unpack("<i", body)[0]
                else:
                    raise KernelError(E.EINVAL)
                if not (1 if ctype == IP_TTL else 0) <= val <= 255:
                    raise KernelError(E.EINVAL)
                if ctype == IP_TTL:
                    hops = val
                else:
                    tos = val
            elif not v4 and level == SOL_IPV6 and ctype in (IPV6_HOPLIMIT, IPV6_TCLASS):
                if len(body) != 4:
                    raise KernelError(E.EINVAL)
                val = struct.unpack("<i", body)[0]
                if not -1 <= val <= 255:
                    raise KernelError(E.EINVAL)
                if ctype == IPV6_HOPLIMIT:
                    hops = val if val != -1 else self.hops
                elif val != -1:
                    tos = val
        return (hops if hops != -1 else DEFAULT_TTL), tos

    def release_addr(self) -> None:
        self.table().unbind(self)
        self.net.inet_sockets.discard(self)


def _routing_header(raw: bytes) -> None:
    """IPV6_RTHDR (ipv6_set_opt_hdr): an empty one removes none; one of a
    bad length is EINVAL, and so is every routing type, as in a Linux
    without MIP6 and RPL (6.1 takes no other): the stack here sends no
    IPv6 extension headers (one log line)."""
    global _said_rthdr
    if not raw:
        return
    if len(raw) < 8 or len(raw) & 7 or len(raw) > 8 * 255 or (raw[1] + 1) * 8 > len(raw):
        raise KernelError(E.EINVAL)
    if not _said_rthdr:
        _said_rthdr = True
        printk.pr_notice(f"inet6: IPV6_RTHDR type {raw[2]} not supported (no routing headers)")
    raise KernelError(E.EINVAL)


def _may_bind_low(t) -> bool:
    """Ports below ip_unprivileged_port_start need CAP_NET_BIND_SERVICE."""
    return net_capable(t, CAP_NET_BIND_SERVICE)
