"""Network devices, their addresses and the routing table: kernel state.

The inet sockets ask it two questions (is this address ours? which device
and gateway reach that one?); netlink, the netdevice ioctls and /proc/net
show and change it.  Addresses are packed bytes: 4 for IPv4, 16 for IPv6.
`lo` exists from boot, up, with 127.0.0.1/8 and ::1/128; `eth0=user` adds
an eth0 (net/slirp) that starts down and unconfigured, as Linux's does.

Routes are kept as Linux's FIB keeps them: an IPv4 address brings a local
route for itself and broadcast routes (table local) and a route to its
network (table main; table local, type local, on a loopback device, which
is why `ip route` shows nothing for lo); an IPv6 address brings a local
route and a prefix route of metric 256.  Bringing a device down drops its
routes and its IPv6 addresses (keep_addr_on_down=0); bringing it up gives
it its IPv6 link-local address back (::1 on lo, fe80::EUI-64 on ethernet),
as addrconf does.  Whoever watches (netlink's multicast groups) hears of
every change through `watch`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.kernel import userns
from umlpy.kernel.errors import KernelError
from umlpy.kernel.wait import WaitQueue

AF_INET, AF_INET6 = 2, 10
IFF_UP, IFF_BROADCAST, IFF_DEBUG, IFF_LOOPBACK = 0x1, 0x2, 0x4, 0x8
IFF_POINTOPOINT, IFF_NOTRAILERS, IFF_RUNNING, IFF_NOARP = 0x10, 0x20, 0x40, 0x80
IFF_PROMISC, IFF_ALLMULTI, IFF_MULTICAST, IFF_LOWER_UP = 0x100, 0x200, 0x1000, 0x10000
IFF_PORTSEL, IFF_AUTOMEDIA, IFF_DYNAMIC = 0x2000, 0x4000, 0x8000
# what a user may change (dev_change_flags); the rest is the device's own
IFF_USER = (IFF_UP | IFF_DEBUG | IFF_NOTRAILERS | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI
            | IFF_MULTICAST | IFF_PORTSEL | IFF_AUTOMEDIA | IFF_DYNAMIC)
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
IF_OPER_UNKNOWN, IF_OPER_DOWN, IF_OPER_UP = 0, 2, 6
RT_SCOPE_UNIVERSE, RT_SCOPE_SITE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 200, 253, 254
RT_SCOPE_NOWHERE = 255
RT_TABLE_UNSPEC, RT_TABLE_DEFAULT, RT_TABLE_MAIN, RT_TABLE_LOCAL = 0, 253, 254, 255
RTPROT_KERNEL, RTPROT_BOOT, RTPROT_STATIC, RTPROT_DHCP = 2, 3, 4, 16
RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST = 1, 2, 3, 4, 5
RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW = 6, 7, 8, 9
RTN_MAX = 11
IFA_F_SECONDARY, IFA_F_NODAD, IFA_F_PERMANENT, IFA_F_NOPREFIXROUTE = 0x01, 0x02, 0x80, 0x200
IP6_RT_PRIO_ADDRCONF, IP6_RT_PRIO_USER = 256, 1024
LOOP4, LOOP6 = bytes([127, 0, 0, 1]), bytes(15) + b"\1"
LINK_LOCAL6, MCAST6 = b"\xfe\x80" + bytes(14), b"\xff" + bytes(15)
BCAST4 = b"\xff" * 4

# what a lookup that ends on a route of these types fails with (fib_props)
_REJECT = {RTN_BLACKHOLE: E.EINVAL, RTN_UNREACHABLE: E.EHOSTUNREACH,
           RTN_PROHIBIT: E.EACCES, RTN_THROW: E.EAGAIN}


@dataclass
class IfAddr:
    family: int
    addr: bytes
    prefixlen: int
    scope: int = RT_SCOPE_UNIVERSE
    label: str = ""
    broadcast: bytes | None = None
    flags: int = IFA_F_PERMANENT    # IFA_F_*; SECONDARY is set by add_addr
    cstamp: int = 0                 # added at, in centiseconds since boot (IFA_CACHEINFO)
    tstamp: int = 0                 # last changed at, likewise
    prefix_route: bool = True       # lo's ::1 brings none (init_loopback adds the address only)


@dataclass
class Route:
    family: int
    dst: bytes                     # the network (all zero bytes for a default route)
    prefixlen: int
    ifindex: int
    gateway: bytes | None = None
    metric: int = 0
    table: int = RT_TABLE_MAIN
    protocol: int = RTPROT_KERNEL
    scope: int = RT_SCOPE_UNIVERSE
    prefsrc: bytes | None = None
    type: int = RTN_UNICAST        # RTN_*: local and broadcast routes live in table local


@dataclass
class DevStats:
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0


@dataclass
class NetDevice:
    name: str
    index: int
    type: int = ARPHRD_ETHER
    hwaddr: bytes = b"\0" * 6
    mtu: int = 1500
    flags: int = IFF_BROADCAST | IFF_MULTICAST
    addrs: list[IfAddr] = field(default_factory=list)
    stats: DevStats = field(default_factory=DevStats)
    txqlen: int = 1000
    min_mtu: int = 68              # 0/0 on lo: no bounds
    max_mtu: int = 65535
    qdisc: str = "noop"            # the root qdisc: noop until the device is first up
    group: int = 0
    conf: dict[str, int] = field(default_factory=dict)     # /proc/sys/net/ipv4/conf/NAME (DEVCONF)

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    def has_addr(self, family: int, addr: bytes) -> bool:
        return any(a.family == family and a.addr == addr for a in self.addrs)

    @property
    def hw_broadcast(self) -> bytes:
        return bytes(len(self.hwaddr)) if self.type == ARPHRD_LOOPBACK else b"\xff" * len(self.hwaddr)

    @property
    def operstate(self) -> int:
        """RFC 2863 state: lo never reports carrier changes, so UNKNOWN."""
        if not self.up:
            return IF_OPER_DOWN
        return IF_OPER_UNKNOWN if self.type == ARPHRD_LOOPBACK else IF_OPER_UP


def prefix_match(a: bytes, b: bytes, prefixlen: int) -> bool:
    if len(a) != len(b) or not 0 <= prefixlen <= len(a) * 8:
        return False
    full, rest = divmod(prefixlen, 8)
    if a[:full] != b[:full]:
        return False
    if rest:
        mask = (0xFF << (8 - rest)) & 0xFF
        return a[full] & mask == b[full] & mask
    return True


def netmask(nbytes: int, prefixlen: int) -> bytes:
    bits = nbytes * 8
    return (((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1)).to_bytes(nbytes, "big")


def network(addr: bytes, prefixlen: int) -> bytes:
    return bytes(a & m for a, m in zip(addr, netmask(len(addr), prefixlen)))


def broadcast(addr: bytes, prefixlen: int) -> bytes:
    return bytes(a | (m ^ 0xFF) for a, m in zip(addr, netmask(len(addr), prefixlen)))


def eui64_link_local(hwaddr: bytes) -> bytes:
    """fe80::/64 with the modified EUI-64 of a 48-bit MAC (addrconf_ifid_eui48)."""
    m = hwaddr
    return LINK_LOCAL6[:8] + bytes([m[0] ^ 2, m[1], m[2], 0xFF, 0xFE, m[3], m[4], m[5]])


def ipv6_scope(addr: bytes) -> int:
    """The rt scope of an IPv6 address (ipv6_addr_scope)."""
    if addr == LOOP6:
        return RT_SCOPE_HOST
    if addr[0] == 0xFE and addr[1] & 0xC0 == 0x80:
        return RT_SCOPE_LINK
    if addr[0] == 0xFE and addr[1] & 0xC0 == 0xC0:
        return RT_SCOPE_SITE
    return RT_SCOPE_UNIVERSE


_SCOPE_WIDTH = {RT_SCOPE_UNIVERSE: 14, RT_SCOPE_SITE: 5, RT_SCOPE_LINK: 2, RT_SCOPE_HOST: 1}


@dataclass
class SockInfo:
    """One inet socket as /proc/net/{tcp,udp,raw,icmp}{,6} and netlink's
    sock_diag show it.  tx_queue and rx_queue are the bytes waiting to go
    and to be read; for a listener, 0 and the accept queue's length (as
    /proc/net/tcp shows them), its backlog in `backlog` (sock_diag's).
    For raw and icmp sockets lport is the protocol number or echo id."""
    family: int
    proto: str                     # "tcp", "udp", "udplite", "raw", "icmp"
    laddr: bytes
    lport: int
    raddr: bytes
    rport: int
    state: int                     # TCP_ESTABLISHED=1 ... TCP_LISTEN=10; UDP: 7 (CLOSE) or 1
    tx_queue: int
    rx_queue: int
    uid: int
    inode: int
    refs: int = 2
    backlog: int = 0


# watchers are called as fn(event, *objects): ("link", dev, changed_flags),
# ("newaddr"|"deladdr", dev, ifaddr), ("newroute"|"delroute", route)
Watcher = Callable[..., None]


# the per-device IPv4 settings kept (/proc/sys/net/ipv4/conf/*): name ->
# Linux's default.  "tag" is the one of no effect on routing (as Linux's)
DEVCONF = {"tag": 0}


class SockMem:
    """Bytes queued in sockets and the most there may be (Linux's
    tcp_mem/udp_mem): one budget for every network namespace, so that
    making namespaces gives a guest no more kernel memory."""

    def __init__(self, limit: int = 32 << 20) -> None:
        self.used = 0
        self.limit = limit


class _InBudget:
    """A NetStack attribute kept in its (shared) SockMem."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __get__(self, net, owner=None) -> int:
        return getattr(net.budget, self.field)

    def __set__(self, net, n: int) -> None:
        setattr(net.budget, self.field, n)


class NetStack:
    """A network namespace's state: devices, routes, and who listens
    where.  The boot stack's loopback is up with 127.0.0.1; a new
    namespace's (budget: the boot stack's) starts down, as Linux's, and
    gets 127.0.0.1 when brought up."""

    sk_mem = _InBudget("used")
    sk_mem_limit = _InBudget("limit")

    def __init__(self, budget: SockMem | None = None) -> None:
        self.devices: dict[int, NetDevice] = {}
        self.routes: list[Route] = []
        self.changed = WaitQueue("netdev change")   # netlink listeners wait here
        self.nat = None                 # net/slirp's user-mode NAT when eth0=user
        self.inet_sockets: set = set()  # every live inet socket (for /proc/net)
        self.port_tables: dict = {}     # "tcp", "udp" -> net/inet/ports.PortTable
        self.unix_sockets: dict = {}    # every live AF_UNIX socket, oldest first (/proc/net/unix)
        self.unix_abstract: dict = {}   # abstract AF_UNIX names -> their sockets (per namespace)
        # ipv4/conf/all and conf/default; a new device starts with default's
        self.conf_all = dict(DEVCONF)
        self.conf_default = dict(DEVCONF)
        self.netlink = None             # net/netlink's table of bound sockets, made at first use
        self.watchers: list[Watcher] = []
        # bytes queued in sockets' receive buffers, and the most there may
        # be: no guest fills the kernel's memory through many big buffers
        self.budget = budget or SockMem()
        self.gen = 0                    # bumped by every change: caches of routes check it
        self._local: dict[int, frozenset] = {}
        self.boot_ns = clock.monotonic_ns()
        # /proc/sys/net/ipv4: ephemeral ports, and who may open ICMP echo
        # sockets (Linux's default "1 0" is nobody; here everybody, so ping
        # works for unprivileged users as on distributions that widen it)
        self.local_port_range = (32768, 60999)
        self.ping_group_range = (0, 2147483647)
        self.prot_sock = 1024           # ip_unprivileged_port_start: ports below need CAP_NET_BIND_SERVICE
        # the key that hashes kernel object addresses (%pK) in /proc/net
        self.ptr_key = int.from_bytes(clock.random_bytes(4), "little")
        self.next_index = 1
        lo = self.add_device(NetDevice("lo", 0, ARPHRD_LOOPBACK, mtu=65536,
                                       flags=IFF_LOOPBACK, txqlen=1000, min_mtu=0, max_mtu=0))
        if budget is None:
            self.add_addr(lo, IfAddr(AF_INET, LOOP4, 8, RT_SCOPE_HOST, "lo"))
            self.set_flags(lo, lo.flags | IFF_UP)       # ::1 comes with it

    def watch(self, fn: Watcher) -> None:
        self.watchers.append(fn)

    def notify(self, event: str, *objs) -> None:
        """Something changed: drop what was derived from the old state,
        tell the watchers (netlink's groups) and whoever waits."""
        for fn in self.watchers:
            fn(event, *objs)
        self.touch()

    def touch(self) -> None:
        """Something changed outside these methods (a device's own field):
        drop what was derived from the old state.  Netlink's groups hear
        only of changes made through the methods (notify)."""
        self.gen += 1
        self._local.clear()
        self.changed.wake_all()

    def centisecs(self) -> int:
        """Time since boot in the unit IFA_CACHEINFO counts (jiffies * 100 / HZ)."""
        return (clock.monotonic_ns() - self.boot_ns) // 10**7

    # -- devices ----------------------------------------------------------------
    def add_device(self, dev: NetDevice) -> NetDevice:
        dev.conf = dict(self.conf_default)
        dev.index = self.next_index
        self.next_index += 1
        self.devices[dev.index] = dev
        self.notify("link", dev, 0xFFFFFFFF)
        return dev

    def by_name(self, name: str) -> NetDevice:
        for d in self.devices.values():
            if d.name == name:
                return d
        raise KernelError(E.ENODEV)

    def device_option(self, raw: bytes, by_name: bool) -> int:
        """The device index a SO_BINDTODEVICE (a name: ENODEV for no such
        device) or SO_BINDTOIFINDEX (an int, taken as it is, as
        sock_bindtoindex takes it) value names; 0 for none."""
        if by_name:
            name = raw[:15].split(b"\0", 1)[0].decode(errors="replace")     # IFNAMSIZ - 1
            return self.by_name(name).index if name else 0
        if len(raw) < 4:
            raise KernelError(E.EINVAL)
        return int.from_bytes(raw[:4], "little", signed=True)

    def by_index(self, index: int) -> NetDevice:
        d = self.devices.get(index)
        if d is None:
            raise KernelError(E.ENODEV)
        return d

    def set_flags(self, dev: NetDevice, flags: int) -> None:
        """ifconfig up/down: IFF_RUNNING and IFF_LOWER_UP follow IFF_UP (the
        carrier is always there); the device's routes come and go with it,
        and so do its IPv6 addresses (addrconf)."""
        was, old = dev.up, dev.flags
        dev.flags = flags & ~(IFF_RUNNING | IFF_LOWER_UP)
        if dev.up:
            dev.flags |= IFF_RUNNING | IFF_LOWER_UP
        if dev.up != was:
            if dev.up:
                self._dev_up(dev)
            else:
                self._dev_down(dev)
        self.notify("link", dev, old ^ dev.flags)

    def change_flags(self, dev: NetDevice, flags: int) -> None:
        """A user's SIOCSIFFLAGS or RTM_NEWLINK (dev_change_flags): only
        IFF_UP and the administrative flags are theirs to change."""
        self.set_flags(dev, (dev.flags & ~IFF_USER) | (flags & IFF_USER))

    def _dev_up(self, dev: NetDevice) -> None:
        if dev.qdisc == "noop":
            dev.qdisc = "noqueue" if dev.type == ARPHRD_LOOPBACK else "pfifo_fast"
        for a in dev.addrs:
            self._add_kernel_routes(dev, a)
        if dev.type == ARPHRD_LOOPBACK:
            # inetdev_event's and addrconf's NETDEV_UP: 127.0.0.1/8 and ::1,
            # whose EEXIST they ignore (systemd adds both before the up)
            for new in (IfAddr(AF_INET, LOOP4, 8, RT_SCOPE_HOST, "lo"),
                        IfAddr(AF_INET6, LOOP6, 128, RT_SCOPE_HOST, prefix_route=False)):
                if not any(x.family == new.family and x.addr == new.addr and x.prefixlen == new.prefixlen
                           for x in dev.addrs):
                    self.add_addr(dev, new)
        elif dev.type == ARPHRD_ETHER and len(dev.hwaddr) == 6:
            self.insert_route(Route(AF_INET6, MCAST6, 8, dev.index, metric=IP6_RT_PRIO_ADDRCONF,
                                  table=RT_TABLE_LOCAL, type=RTN_MULTICAST))
            self.add_addr(dev, IfAddr(AF_INET6, eui64_link_local(dev.hwaddr), 64, RT_SCOPE_LINK))

    def _dev_down(self, dev: NetDevice) -> None:
        """fib_sync_down_dev: the device's routes die but those of host
        scope (its IPv4 addresses' local routes, whose nexthop scope is
        "nowhere"); rt6_sync_down_dev: all its IPv6 routes."""
        for r in [r for r in self.routes if r.ifindex == dev.index
                  and not (r.family == AF_INET and r.scope == RT_SCOPE_HOST)]:
            self.remove_route(r)
        for a in [a for a in dev.addrs if a.family == AF_INET6]:
            dev.addrs.remove(a)
            self.notify("deladdr", dev, a)

    def set_mtu(self, dev: NetDevice, mtu: int) -> None:
        """dev_set_mtu: within the device's bounds (none when they are 0)."""
        if mtu < 0 or mtu < dev.min_mtu or (dev.max_mtu and mtu > dev.max_mtu):
            raise KernelError(E.EINVAL)
        if mtu != dev.mtu:
            dev.mtu = mtu
            self.notify("link", dev, 0)

    def set_txqlen(self, dev: NetDevice, qlen: int) -> None:
        if qlen < 0:
            raise KernelError(E.EINVAL)
        if qlen != dev.txqlen:
            dev.txqlen = qlen
            self.notify("link", dev, 0)

    def rename(self, dev: NetDevice, name: str) -> None:
        """dev_change_name: not while up, not to a taken or bad name."""
        if not name or len(name.encode()) > 15 or name in (".", "..") \
                or any(c in name for c in "/: \t\n"):
            raise KernelError(E.EINVAL)
        if name == dev.name:
            return
        if dev.up:
            raise KernelError(E.EBUSY)
        if any(d.name == name for d in self.devices.values()):
            raise KernelError(E.EEXIST)
        for a in dev.addrs:
            if a.family == AF_INET and (a.label == dev.name or a.label.startswith(dev.name + ":")):
                a.label = name + a.label[len(dev.name):]
        dev.name = name
        self.notify("link", dev, 0)

    # -- addresses --------------------------------------------------------------
    def add_addr(self, dev: NetDevice, a: IfAddr) -> None:
        """As __inet_insert_ifa and ipv6_add_addr: an IPv4 address in the
        network of another one of the same prefix is its secondary (listed
        after the primaries); IPv6 addresses are kept widest scope first."""
        if a.family == AF_INET:
            self._insert_v4(dev, a)
        else:
            if any(x.family == AF_INET6 and x.addr == a.addr for x in dev.addrs):
                raise KernelError(E.EEXIST)
            width = _SCOPE_WIDTH.get(a.scope, 14)
            at = next((i for i, x in enumerate(dev.addrs) if x.family == AF_INET6
                       and width >= _SCOPE_WIDTH.get(x.scope, 14)), len(dev.addrs))
            dev.addrs.insert(at, a)
        a.cstamp = a.tstamp = self.centisecs()
        if dev.up:
            self._add_kernel_routes(dev, a)
        self.notify("newaddr", dev, a)

    def _insert_v4(self, dev: NetDevice, a: IfAddr) -> None:
        a.flags &= ~IFA_F_SECONDARY
        for x in dev.addrs:
            if x.family != AF_INET or x.prefixlen != a.prefixlen \
                    or not prefix_match(x.addr, a.addr, a.prefixlen):
                continue
            if x.addr == a.addr:
                raise KernelError(E.EEXIST)
            if x.scope != a.scope:
                raise KernelError(E.EINVAL)
            a.flags |= IFA_F_SECONDARY
        if not a.label:
            a.label = dev.name
        if a.flags & IFA_F_SECONDARY:
            dev.addrs.append(a)
            return
        last = max((i for i, x in enumerate(dev.addrs)
                    if x.family == AF_INET and not x.flags & IFA_F_SECONDARY), default=-1)
        dev.addrs.insert(last + 1, a)

    def del_addr(self, dev: NetDevice, family: int, addr: bytes, prefixlen: int | None = None) -> IfAddr:
        """Remove an address (of that prefix length, if given).  A primary
        IPv4 address takes its secondaries with it (promote_secondaries=0)."""
        for a in dev.addrs:
            if a.family == family and a.addr == addr and prefixlen in (None, a.prefixlen):
                break
        else:
            raise KernelError(E.EADDRNOTAVAIL)
        gone = [a]
        if family == AF_INET and not a.flags & IFA_F_SECONDARY:
            gone += [x for x in dev.addrs if x.family == AF_INET and x.flags & IFA_F_SECONDARY
                     and x.prefixlen == a.prefixlen and prefix_match(x.addr, a.addr, a.prefixlen)]
        for x in reversed(gone):
            dev.addrs.remove(x)
            self._drop_kernel_routes(dev, x)
            self.notify("deladdr", dev, x)
        return a

    def _kernel_routes(self, dev: NetDevice, a: IfAddr) -> list[Route]:
        """The routes an address brings (fib_add_ifaddr, addrconf)."""
        def mk(dst: bytes, plen: int, table: int, rtype: int, **kw) -> Route:
            return Route(a.family, dst, plen, dev.index, table=table, type=rtype, **kw)
        if a.family == AF_INET6:
            out = [mk(a.addr, 128, RT_TABLE_LOCAL, RTN_LOCAL)]
            if a.prefix_route and not a.flags & IFA_F_NOPREFIXROUTE:
                out.append(mk(network(a.addr, a.prefixlen), a.prefixlen, RT_TABLE_MAIN, RTN_UNICAST,
                              metric=IP6_RT_PRIO_ADDRCONF))
            return out
        # a secondary's routes prefer its primary as source
        prim = a
        if a.flags & IFA_F_SECONDARY:
            prim = next((x for x in dev.addrs if x.family == AF_INET and not x.flags & IFA_F_SECONDARY
                         and x.prefixlen == a.prefixlen and prefix_match(x.addr, a.addr, a.prefixlen)), a)
        local = dict(prefsrc=prim.addr)
        out = [mk(a.addr, 32, RT_TABLE_LOCAL, RTN_LOCAL, scope=RT_SCOPE_HOST, **local)]
        if a.broadcast and a.broadcast != BCAST4:
            out.append(mk(a.broadcast, 32, RT_TABLE_LOCAL, RTN_BROADCAST, scope=RT_SCOPE_LINK, **local))
        prefix = network(a.addr, a.prefixlen)
        if prefix[0] and not a.flags & IFA_F_SECONDARY and (prefix != a.addr or a.prefixlen < 32):
            if not a.flags & IFA_F_NOPREFIXROUTE:
                if dev.type == ARPHRD_LOOPBACK:
                    out.append(mk(prefix, a.prefixlen, RT_TABLE_LOCAL, RTN_LOCAL, scope=RT_SCOPE_HOST, **local))
                else:
                    out.append(mk(prefix, a.prefixlen, RT_TABLE_MAIN, RTN_UNICAST, scope=RT_SCOPE_LINK, **local))
            if a.prefixlen < 31:
                out.append(mk(broadcast(a.addr, a.prefixlen), 32, RT_TABLE_LOCAL, RTN_BROADCAST,
                              scope=RT_SCOPE_LINK, **local))
        return out

    def _add_kernel_routes(self, dev: NetDevice, a: IfAddr) -> None:
        for r in self._kernel_routes(dev, a):
            if r not in self.routes:
                self.insert_route(r)

    def _drop_kernel_routes(self, dev: NetDevice, a: IfAddr) -> None:
        """Routes only this address needed, and any that prefer it as source."""
        still = [r for x in dev.addrs for r in self._kernel_routes(dev, x)]
        mine = self._kernel_routes(dev, a)
        for r in [r for r in self.routes if r.ifindex == dev.index and
                  ((r in mine and r not in still) or (r.prefsrc == a.addr and r not in still))]:
            self.remove_route(r)

    def local_addrs(self, family: int) -> frozenset:
        got = self._local.get(family)
        if got is None:
            got = self._local[family] = frozenset(
                a.addr for d in self.devices.values() if d.up for a in d.addrs if a.family == family)
        return got

    def device_with(self, family: int, addr: bytes) -> NetDevice | None:
        """The device that has this address, if one has."""
        return next((d for d in self.devices.values() if d.has_addr(family, addr)), None)

    def is_local(self, family: int, addr: bytes) -> bool:
        """An address of this machine: one a local route covers (127/8, and
        a whole network given to lo), or an address of an up device."""
        if family == AF_INET:
            r = self.lookup_table(AF_INET, addr, RT_TABLE_LOCAL)
            return r is not None and r.type == RTN_LOCAL
        return addr in self.local_addrs(family)

    # -- routes -----------------------------------------------------------------
    def insert_route(self, r: Route) -> None:
        """Add a route already checked (net/fib.py checks what users ask for)."""
        self.routes.append(r)
        self.notify("newroute", r)

    def add_route(self, r: Route) -> None:
        if any(x.family == r.family and x.dst == r.dst and x.prefixlen == r.prefixlen
               and x.table == r.table and x.metric == r.metric for x in self.routes):
            raise KernelError(E.EEXIST)
        self.by_index(r.ifindex)
        self.insert_route(r)

    def remove_route(self, r: Route) -> None:
        self.routes.remove(r)
        self.notify("delroute", r)

    def del_route(self, family: int, dst: bytes, prefixlen: int, table: int = RT_TABLE_MAIN) -> None:
        for r in self.routes:
            if r.family == family and r.dst == dst and r.prefixlen == prefixlen and r.table == table:
                self.remove_route(r)
                return
        raise KernelError(E.ESRCH)

    def lookup_table(self, family: int, dst: bytes, table: int) -> Route | None:
        """The longest matching prefix (then the lowest metric) of one table,
        among routes whose device is up (reject routes have none)."""
        best = None
        for r in self.routes:
            if r.family != family or r.table != table or not prefix_match(r.dst, dst, r.prefixlen):
                continue
            dev = self.devices.get(r.ifindex)
            if r.type not in _REJECT and (dev is None or not dev.up):
                continue
            if best is None or (r.prefixlen, -r.metric) > (best.prefixlen, -best.metric):
                best = r
        return best

    def lookup(self, family: int, dst: bytes) -> Route:
        """The route to dst: table local first, then main (Linux's default
        rules); ENETUNREACH when none, the route type's error for reject
        routes."""
        r = self.lookup_table(family, dst, RT_TABLE_LOCAL) or self.lookup_table(family, dst, RT_TABLE_MAIN)
        if r is None:
            raise KernelError(E.ENETUNREACH)
        if r.type in _REJECT or self.via_loopback(r):
            raise KernelError(_REJECT.get(r.type, E.ENETUNREACH))
        return r

    def via_loopback(self, r: Route) -> bool:
        """An IPv6 route to other than ::1 through a loopback device, not a
        local one: ip6_route_info_create makes it a reject route."""
        dev = self.devices.get(r.ifindex)
        return (r.family == AF_INET6 and dev is not None and bool(dev.flags & IFF_LOOPBACK)
                and r.dst != LOOP6 and r.type not in (RTN_LOCAL, RTN_ANYCAST))

    def route(self, family: int, dst: bytes) -> tuple[NetDevice, bytes | None, bytes | None]:
        """(device, gateway or None, preferred source) for dst, or ENETUNREACH."""
        r = self.lookup(family, dst)
        dev = self.devices[r.ifindex]
        src = r.prefsrc
        if src is None:
            src = self.select_addr(dev, family, r.gateway, dst)
        return dev, r.gateway, src

    def select_addr(self, dev: NetDevice, family: int, gateway: bytes | None, dst: bytes) -> bytes | None:
        """A source address for a route without one.  IPv4 as
        inet_select_addr: a primary address of the device in the gateway's
        network, else its first primary of a wide enough scope (a route
        through a gateway wants one beyond the host), else one of another
        device; IPv6: one in the destination's prefix, else the first
        global one, else the first."""
        if family == AF_INET6:
            mine = [a for a in dev.addrs if a.family == AF_INET6]
            pick = next((a for a in mine if prefix_match(a.addr, dst, a.prefixlen)), None) or \
                next((a for a in mine if a.scope == RT_SCOPE_UNIVERSE), None) or (mine[0] if mine else None)
            return pick.addr if pick else None
        scope = RT_SCOPE_HOST
        if gateway is not None:
            via = self.lookup_table(AF_INET, gateway, RT_TABLE_LOCAL) or \
                self.lookup_table(AF_INET, gateway, RT_TABLE_MAIN)
            scope = via.scope if via is not None else RT_SCOPE_LINK
        first = None
        for a in dev.addrs:
            if a.family != AF_INET or a.flags & IFA_F_SECONDARY or a.scope > scope:
                continue
            if gateway is None or prefix_match(a.addr, gateway, a.prefixlen):
                return a.addr
            first = first or a.addr
        if first is not None:
            return first
        return next((a.addr for d in self.devices.values() for a in d.addrs if a.family == AF_INET
                     and a.scope != RT_SCOPE_LINK and a.scope <= scope), None)


def net_of(t) -> NetStack:
    """The stack of the task's network namespace: where its new sockets
    live and what its device, route and sysctl calls see."""
    return t.proc.ns.net.stack


def net_capable(t, cap: int) -> bool:
    """ns_capable(net->user_ns, cap): a capability over the task's network
    namespace, which the user namespace owning it grants (root of a user
    namespace that made its own network namespace may open packet and raw
    sockets and configure its devices there, as on Linux)."""
    return userns.ns_capable(t.proc.creds, t.proc.ns.net.owner, cap)
