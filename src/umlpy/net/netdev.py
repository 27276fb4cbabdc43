"""Network devices, their addresses and the routing table: kernel state.

The inet sockets ask it two questions (is this address ours? which device
and gateway reach that one?); netlink, the netdevice ioctls and /proc/net
show and change it.  Addresses are packed bytes: 4 for IPv4, 16 for IPv6.
`lo` exists from boot, up, with 127.0.0.1/8 and ::1/128; `eth0=user` adds
an eth0 (net/slirp) that starts down and unconfigured, as Linux's does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.kernel.wait import WaitQueue

AF_INET, AF_INET6 = 2, 10
IFF_UP, IFF_BROADCAST, IFF_DEBUG, IFF_LOOPBACK = 0x1, 0x2, 0x4, 0x8
IFF_POINTOPOINT, IFF_NOTRAILERS, IFF_RUNNING, IFF_NOARP = 0x10, 0x20, 0x40, 0x80
IFF_PROMISC, IFF_ALLMULTI, IFF_MULTICAST, IFF_LOWER_UP = 0x100, 0x200, 0x1000, 0x10000
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
RTPROT_KERNEL, RTPROT_BOOT, RTPROT_STATIC, RTPROT_DHCP = 2, 3, 4, 16


@dataclass
class IfAddr:
    family: int
    addr: bytes
    prefixlen: int
    scope: int = RT_SCOPE_UNIVERSE
    label: str = ""
    broadcast: bytes | None = None


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

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


def prefix_match(a: bytes, b: bytes, prefixlen: int) -> bool:
    if len(a) != len(b):
        return False
    full, rest = divmod(prefixlen, 8)
    if a[:full] != b[:full]:
        return False
    if rest:
        mask = (0xFF << (8 - rest)) & 0xFF
        return a[full] & mask == b[full] & mask
    return True


def network(addr: bytes, prefixlen: int) -> bytes:
    n = int.from_bytes(addr, "big")
    bits = len(addr) * 8
    mask = ((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1) if prefixlen else 0
    return (n & mask).to_bytes(len(addr), "big")


@dataclass
class SockInfo:
    """One inet socket as /proc/net/{tcp,udp}{,6} and netlink's sock_diag show it."""
    family: int
    proto: str                     # "tcp", "udp", "raw", "icmp"
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


class NetStack:
    """The kernel's network state: devices, routes, and who listens where."""

    def __init__(self) -> None:
        self.devices: dict[int, NetDevice] = {}
        self.routes: list[Route] = []
        self.changed = WaitQueue("netdev change")   # netlink listeners wait here
        self.nat = None                 # net/slirp's user-mode NAT when eth0=user
        self.inet_sockets: set = set()  # every live inet socket (for /proc/net)
        self.port_tables: dict = {}     # "tcp", "udp" -> net/inet/ports.PortTable
        self.next_index = 1
        self.gen = 0                    # bumped by every change: caches of routes check it
        self._local: dict[int, frozenset] = {}
        lo = self.add_device(NetDevice("lo", 0, ARPHRD_LOOPBACK, mtu=65536,
                                       flags=IFF_LOOPBACK, txqlen=1000))
        self.add_addr(lo, IfAddr(AF_INET, bytes([127, 0, 0, 1]), 8, RT_SCOPE_HOST, "lo"))
        self.add_addr(lo, IfAddr(AF_INET6, bytes(15) + b"\1", 128, RT_SCOPE_HOST))
        self.set_flags(lo, lo.flags | IFF_UP)

    def touch(self) -> None:
        """Something changed: drop what was derived from the old state,
        tell netlink listeners."""
        self.gen += 1
        self._local.clear()
        self.changed.wake_all()

    # -- devices ----------------------------------------------------------------
    def add_device(self, dev: NetDevice) -> NetDevice:
        dev.index = self.next_index
        self.next_index += 1
        self.devices[dev.index] = dev
        self.touch()
        return dev

    def by_name(self, name: str) -> NetDevice:
        for d in self.devices.values():
            if d.name == name:
                return d
        raise KernelError(E.ENODEV)

    def by_index(self, index: int) -> NetDevice:
        d = self.devices.get(index)
        if d is None:
            raise KernelError(E.ENODEV)
        return d

    def set_flags(self, dev: NetDevice, flags: int) -> None:
        """ifconfig up/down: IFF_RUNNING and IFF_LOWER_UP follow IFF_UP (the
        carrier is always there); the device's routes come and go with it."""
        was = dev.up
        dev.flags = flags & ~(IFF_RUNNING | IFF_LOWER_UP)
        if dev.up:
            dev.flags |= IFF_RUNNING | IFF_LOWER_UP
        if dev.up != was:
            if dev.up:
                for a in dev.addrs:
                    self._addr_routes(dev, a)
            else:
                self.routes = [r for r in self.routes if r.ifindex != dev.index]
        self.touch()

    # -- addresses --------------------------------------------------------------
    def add_addr(self, dev: NetDevice, a: IfAddr) -> None:
        if any(x.family == a.family and x.addr == a.addr for x in dev.addrs):
            raise KernelError(E.EEXIST)
        if not a.label and a.family == AF_INET:
            a.label = dev.name
        dev.addrs.append(a)
        if dev.up:
            self._addr_routes(dev, a)
        self.touch()

    def del_addr(self, dev: NetDevice, family: int, addr: bytes) -> IfAddr:
        for a in dev.addrs:
            if a.family == family and a.addr == addr:
                dev.addrs.remove(a)
                self.routes = [r for r in self.routes
                               if not (r.ifindex == dev.index and r.prefsrc == addr)]
                self.touch()
                return a
        raise KernelError(E.EADDRNOTAVAIL)

    def _addr_routes(self, dev: NetDevice, a: IfAddr) -> None:
        """The routes Linux adds for an address: its network (main table,
        scope link) and the address itself (local table)."""
        full = len(a.addr) * 8
        self.routes.append(Route(a.family, a.addr, full, dev.index, table=RT_TABLE_LOCAL,
                                 scope=RT_SCOPE_HOST, prefsrc=a.addr))
        if a.prefixlen < full or a.family == AF_INET6:
            # a loopback device's network is local too (fib_add_ifaddr: RTN_LOCAL)
            loop = dev.flags & IFF_LOOPBACK and a.family == AF_INET
            self.routes.append(Route(a.family, network(a.addr, a.prefixlen), a.prefixlen,
                                     dev.index, table=RT_TABLE_LOCAL if loop else RT_TABLE_MAIN,
                                     scope=RT_SCOPE_HOST if loop else RT_SCOPE_LINK
                                     if a.family == AF_INET else RT_SCOPE_UNIVERSE,
                                     prefsrc=a.addr if a.family == AF_INET else None,
                                     metric=0 if a.family == AF_INET else 256))

    def local_addrs(self, family: int) -> frozenset:
        got = self._local.get(family)
        if got is None:
            got = self._local[family] = frozenset(
                a.addr for d in self.devices.values() if d.up for a in d.addrs if a.family == family)
        return got

    def is_local(self, family: int, addr: bytes) -> bool:
        """An address of this machine: 127/8, ::1, or one on an up device."""
        if family == AF_INET and addr[0] == 127:
            return self.devices[1].up
        return addr in self.local_addrs(family)

    # -- routes -----------------------------------------------------------------
    def add_route(self, r: Route) -> None:
        if any(x.family == r.family and x.dst == r.dst and x.prefixlen == r.prefixlen
               and x.table == r.table and x.metric == r.metric for x in self.routes):
            raise KernelError(E.EEXIST)
        self.by_index(r.ifindex)
        self.routes.append(r)
        self.touch()

    def del_route(self, family: int, dst: bytes, prefixlen: int, table: int = RT_TABLE_MAIN) -> None:
        for r in self.routes:
            if r.family == family and r.dst == dst and r.prefixlen == prefixlen and r.table == table:
                self.routes.remove(r)
                self.touch()
                return
        raise KernelError(E.ESRCH)

    def route(self, family: int, dst: bytes) -> tuple[NetDevice, bytes | None, bytes | None]:
        """(device, gateway or None, preferred source) for dst: the longest
        matching prefix among up devices' routes, or ENETUNREACH."""
        best = None
        for r in self.routes:
            if r.family != family or not prefix_match(r.dst, dst, r.prefixlen):
                continue
            dev = self.devices.get(r.ifindex)
            if dev is None or not dev.up:
                continue
            if best is None or (r.prefixlen, -r.metric) > (best.prefixlen, -best.metric):
                best = r
        if best is None:
            raise KernelError(E.ENETUNREACH)
        dev = self.devices[best.ifindex]
        src = best.prefsrc
        if src is None:
            src = next((a.addr for a in dev.addrs if a.family == family), None)
        return dev, best.gateway, src
