"""The netdevice ioctls every socket answers (SIOCGIFCONF, SIOCGIFFLAGS, ...),
and the address and route ioctls of inet sockets, as Linux's
net/core/dev_ioctl.c, devinet_ioctl and ip_rt_ioctl (and addrconf's for
AF_INET6 sockets) do them.

What every socket's ioctl does not know comes here (Socket.ioctl), with
the socket's family: SIOCGIFCONF and the device ioctls work on any
socket; the address ioctls (SIOCGIFADDR, SIOCSIFNETMASK, ...) and
SIOCADDRT/SIOCDELRT only on AF_INET sockets, as on Linux.  Reading or
writing an unreadable struct fails with EFAULT (GuestFault); getters work
for everyone, setters need CAP_NET_ADMIN (EPERM, checked before the
device is looked up, as Linux does).
"""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_ADMIN
from umlpy.kernel.errors import KernelError
from umlpy.net import ethtool, fib
from umlpy.net import rtnetlink
from umlpy.net import sockios as S
from umlpy.net.netdev import (net_capable, AF_INET, AF_INET6, IFF_BROADCAST, IFF_POINTOPOINT, IFF_UP,
                              RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE,
                              RT_TABLE_MAIN, RTN_UNICAST, RTN_UNREACHABLE, RTPROT_BOOT, IfAddr,
                              NetDevice, broadcast, net_of, netmask)
from umlpy.net.netlink_abi import NLM_F_CREATE

AF_UNSPEC = 0
_INET_GET = (S.SIOCGIFADDR, S.SIOCGIFBRDADDR, S.SIOCGIFDSTADDR, S.SIOCGIFNETMASK)
_INET_SET = (S.SIOCSIFADDR, S.SIOCSIFBRDADDR, S.SIOCSIFDSTADDR, S.SIOCSIFNETMASK)
_INET = _INET_GET + _INET_SET + (S.SIOCSIFFLAGS, S.SIOCSIFPFLAGS, S.SIOCGIFPFLAGS)
_DEV_GET = (S.SIOCGIFFLAGS, S.SIOCGIFMETRIC, S.SIOCGIFMTU, S.SIOCGIFSLAVE, S.SIOCGIFMAP,
            S.SIOCGIFINDEX, S.SIOCGIFTXQLEN)
_DEV_SET = (S.SIOCSIFFLAGS, S.SIOCSIFMETRIC, S.SIOCSIFMTU, S.SIOCSIFHWADDR, S.SIOCADDMULTI,
            S.SIOCDELMULTI, S.SIOCSIFHWBROADCAST, S.SIOCSIFMAP, S.SIOCSIFTXQLEN, S.SIOCSIFNAME,
            S.SIOCGMIIPHY, S.SIOCGMIIREG, S.SIOCSMIIREG)


def _admin(t) -> None:
    if not net_capable(t, CAP_NET_ADMIN):
        raise KernelError(E.EPERM)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _name16(name: str) -> bytes:
    return name.encode()[:S.IFNAMSIZ - 1].ljust(S.IFNAMSIZ, b"\0")


def _int(ifr: bytearray) -> int:
    return struct.unpack_from("<i", ifr, S.IFR_DATA)[0]


def _put_int(ifr: bytearray, v: int) -> None:
    """An int of the ifreq union (an unsigned kernel value shows as C's cast does)."""
    struct.pack_into("<I", ifr, S.IFR_DATA, v & 0xFFFFFFFF)


def dev_ioctl(t, req: int, arg: int, family: int = AF_UNSPEC) -> int:
    """sock_ioctl's part after the family's own ioctl: SIOCGIFCONF, the
    inet ioctls (for inet sockets), then dev_ioctl."""
    if req == S.SIOCGIFCONF:
        return _ifconf(t, arg)
    if family == AF_INET and (req in _INET or req in (S.SIOCADDRT, S.SIOCDELRT)):
        return _rt_ioctl(t, req, arg) if req in (S.SIOCADDRT, S.SIOCDELRT) else _devinet(t, req, arg)
    if family == AF_INET6 and req in (S.SIOCSIFADDR, S.SIOCDIFADDR):
        return _inet6_ifaddr(t, req, arg)
    if (req >> 8) & 0xFF != S.SOCK_IOC_TYPE:
        raise KernelError(E.ENOTTY)
    ifr = bytearray(t.mem.read(arg, S.IFREQ_SIZE))
    net = net_of(t)
    if req == S.SIOCGIFNAME:
        dev = net.by_index(_int(ifr))
        ifr[:S.IFNAMSIZ] = _name16(dev.name)
        t.mem.write(arg, bytes(ifr))
        return 0
    ifr[S.IFNAMSIZ - 1] = 0
    name = _cstr(ifr[:S.IFNAMSIZ]).split(":", 1)[0]
    if req == S.SIOCGIFHWADDR or req in _DEV_GET:
        _dev_get(net.by_name(name), req, ifr)
        t.mem.write(arg, bytes(ifr))
        return 0
    if req in _DEV_SET:
        _admin(t)
        _dev_set(t, net, net.by_name(name), req, ifr)
        return 0
    if req == S.SIOCETHTOOL:
        (data,) = struct.unpack_from("<Q", ifr, S.IFR_DATA)
        return ethtool.ethtool(t, net, name, data)
    if req == S.SIOCWANDEV or S.SIOCDEVPRIVATE <= req <= S.SIOCDEVPRIVATE + 15:
        net.by_name(name)
        raise KernelError(E.EOPNOTSUPP)     # no driver with private ioctls
    raise KernelError(E.ENOTTY)


def _dev_get(dev: NetDevice, req: int, ifr: bytearray) -> None:
    """dev_ifsioc_locked and dev_get_mac_address."""
    if req == S.SIOCGIFHWADDR:
        S.SOCKADDR.pack_into(ifr, S.IFR_DATA, dev.type, dev.hwaddr[:14])
    elif req == S.SIOCGIFFLAGS:
        struct.pack_into("<H", ifr, S.IFR_DATA, dev.flags & 0xFFFF)
    elif req == S.SIOCGIFMETRIC:
        _put_int(ifr, 0)
    elif req == S.SIOCGIFMTU:
        _put_int(ifr, dev.mtu)
    elif req == S.SIOCGIFMAP:
        ifr[S.IFR_DATA:] = bytes(S.IFREQ_SIZE - S.IFR_DATA)
    elif req == S.SIOCGIFINDEX:
        _put_int(ifr, dev.index)
    elif req == S.SIOCGIFTXQLEN:
        _put_int(ifr, dev.txqlen)
    else:
        raise KernelError(E.EINVAL)     # SIOCGIFSLAVE: not a bonding slave


def _dev_set(t, net, dev: NetDevice, req: int, ifr: bytearray) -> None:
    """dev_ifsioc."""
    if req == S.SIOCSIFFLAGS:
        net.change_flags(dev, struct.unpack_from("<H", ifr, S.IFR_DATA)[0])
    elif req == S.SIOCSIFMTU:
        net.set_mtu(dev, _int(ifr))
    elif req == S.SIOCSIFHWADDR:
        family, data = S.SOCKADDR.unpack_from(ifr, S.IFR_DATA)
        rtnetlink.set_hwaddr(net, dev, family, data[:len(dev.hwaddr)])
    elif req == S.SIOCSIFTXQLEN:
        net.set_txqlen(dev, _int(ifr))
    elif req == S.SIOCSIFNAME:
        net.rename(dev, _cstr(ifr[S.IFR_DATA:S.IFR_DATA + S.IFNAMSIZ - 1]))
    elif req in (S.SIOCADDMULTI, S.SIOCDELMULTI, S.SIOCSIFHWBROADCAST):
        raise KernelError(E.EINVAL)     # no receive filter to program
    else:
        raise KernelError(E.EOPNOTSUPP)  # metric, map, MII: no driver support


def _ifconf(t, arg: int) -> int:
    """dev_ifconf + inet_gifconf: an ifreq per IPv4 address (named by its
    label) of every device, up or not, as many as fit; a NULL buffer asks
    for the length only."""
    length, buf = S.IFCONF.unpack(t.mem.read(arg, S.IFCONF.size))
    total = 0
    for dev in (net_of(t).devices[i] for i in sorted(net_of(t).devices)):
        for a in dev.addrs:
            if a.family != AF_INET:
                continue
            if buf:
                if length - total < S.IFREQ_SIZE:
                    break
                ifr = _name16(a.label) + S.SOCKADDR_IN.pack(AF_INET, 0, a.addr) + bytes(8)
                t.mem.write(buf + total, ifr)
            total += S.IFREQ_SIZE
    t.mem.write(arg, struct.pack("<i", total))
    return 0


# -- AF_INET: addresses (devinet_ioctl) -----------------------------------------------

def abc_len(addr: bytes) -> int:
    """inet_abc_len: the classful prefix length of an address (0 for
    0.0.0.0 and 255.255.255.255, -1 for multicast)."""
    if not addr[0] or addr == b"\xff" * 4:
        return 0
    top = addr[0]
    if top < 0x80:
        return 8
    if top < 0xC0:
        return 16
    if top < 0xE0:
        return 24
    return 32 if top >= 0xF0 else -1


def mask_len(mask: bytes) -> int | None:
    """The prefix length of a contiguous netmask, else None (bad_mask)."""
    m = int.from_bytes(mask, "big")
    inv = m ^ 0xFFFFFFFF
    if inv & (inv + 1):
        return None
    return 32 - inv.bit_length()


def _devinet(t, req: int, arg: int) -> int:
    """devinet_ioctl: the address whose label is the ifreq's name (with
    SIOCGIF*, the one whose address is also the one given, if any)."""
    ifr = bytearray(t.mem.read(arg, S.IFREQ_SIZE))
    ifr[S.IFNAMSIZ - 1] = 0
    label = _cstr(ifr[:S.IFNAMSIZ])
    sin_family, _, sin_addr = S.SOCKADDR_IN.unpack_from(ifr, S.IFR_DATA)
    if req in _INET_GET:
        S.SOCKADDR_IN.pack_into(ifr, S.IFR_DATA, AF_INET, 0, bytes(4))
    elif req == S.SIOCSIFFLAGS:
        _admin(t)
    elif req in _INET_SET:
        _admin(t)
        if sin_family != AF_INET:
            raise KernelError(E.EINVAL)
    else:
        raise KernelError(E.EINVAL)
    net = net_of(t)
    dev = net.by_name(label.split(":", 1)[0])
    mine = [a for a in dev.addrs if a.family == AF_INET and a.label == label]
    ifa = next((a for a in mine if req in _INET_GET and sin_family == AF_INET and a.addr == sin_addr),
               mine[0] if mine else None)
    if ifa is None and req not in (S.SIOCSIFADDR, S.SIOCSIFFLAGS):
        raise KernelError(E.EADDRNOTAVAIL)
    if req in _INET_GET:
        value = {S.SIOCGIFADDR: ifa.addr, S.SIOCGIFDSTADDR: ifa.addr,
                 S.SIOCGIFBRDADDR: ifa.broadcast or bytes(4),
                 S.SIOCGIFNETMASK: netmask(4, ifa.prefixlen)}[req]
        S.SOCKADDR_IN.pack_into(ifr, S.IFR_DATA, AF_INET, 0, value)
        t.mem.write(arg, bytes(ifr))
    elif req == S.SIOCSIFFLAGS:
        flags = struct.unpack_from("<H", ifr, S.IFR_DATA)[0]
        if ":" not in label:
            net.change_flags(dev, flags)
        elif ifa is None:
            raise KernelError(E.EADDRNOTAVAIL)
        elif not flags & IFF_UP:
            net.del_addr(dev, AF_INET, ifa.addr, ifa.prefixlen)    # an alias taken down is gone
    elif req == S.SIOCSIFADDR:
        _set_addr(net, dev, label, ifa, sin_addr)
    elif req == S.SIOCSIFBRDADDR:
        if ifa.broadcast != sin_addr:
            _replace(net, dev, ifa, broadcast=sin_addr)
    elif req == S.SIOCSIFDSTADDR:
        if ifa.addr != sin_addr:
            raise KernelError(E.EOPNOTSUPP)     # point-to-point peers are not kept
    else:
        _set_netmask(net, dev, ifa, sin_addr)
    return 0


def _replace(net, dev: NetDevice, ifa: IfAddr, **change) -> None:
    """inet_del_ifa + inet_insert_ifa of a changed address."""
    net.del_addr(dev, AF_INET, ifa.addr, ifa.prefixlen)
    fields = dict(scope=ifa.scope, label=ifa.label, broadcast=ifa.broadcast)
    fields.update(change)
    addr, plen = fields.pop("addr", ifa.addr), fields.pop("prefixlen", ifa.prefixlen)
    net.add_addr(dev, IfAddr(AF_INET, addr, plen, **fields))


def _set_addr(net, dev: NetDevice, label: str, ifa: IfAddr | None, addr: bytes) -> None:
    """SIOCSIFADDR: the address with its class's netmask and, on a
    broadcast device, its broadcast address; 0.0.0.0 removes it."""
    plen = abc_len(addr)
    if plen < 0:
        raise KernelError(E.EINVAL)
    if ifa is not None:
        if ifa.addr == addr:
            return
        net.del_addr(dev, AF_INET, ifa.addr, ifa.prefixlen)
        label = ifa.label
    elif ":" not in label:
        label = dev.name
    if not any(addr):
        return
    bcast = None
    if dev.flags & IFF_POINTOPOINT:
        plen = 32
    elif dev.flags & IFF_BROADCAST and plen < 31:
        bcast = broadcast(addr, plen)
    scope = RT_SCOPE_HOST if addr[0] == 127 else RT_SCOPE_UNIVERSE
    net.add_addr(dev, IfAddr(AF_INET, addr, plen, scope, label, bcast))


def _set_netmask(net, dev: NetDevice, ifa: IfAddr, mask: bytes) -> None:
    """SIOCSIFNETMASK: a contiguous mask; a broadcast address that was the
    old network's follows the new one."""
    plen = mask_len(mask)
    if plen is None:
        raise KernelError(E.EINVAL)
    if plen == ifa.prefixlen:
        return
    bcast = ifa.broadcast
    if dev.flags & IFF_BROADCAST and plen < 31 and bcast == broadcast(ifa.addr, ifa.prefixlen):
        bcast = broadcast(ifa.addr, plen)
    _replace(net, dev, ifa, prefixlen=plen, broadcast=bcast)


# -- AF_INET: routes (ip_rt_ioctl) ----------------------------------------------------------

def _sin(raw: bytes) -> tuple[int, bytes]:
    family, _, addr = S.SOCKADDR_IN.unpack(raw)
    return family, addr


def _rt_ioctl(t, req: int, arg: int) -> int:
    """SIOCADDRT/SIOCDELRT with a struct rtentry (rtentry_to_fib_config)."""
    raw = t.mem.read(arg, S.RTENTRY_SIZE)
    _admin(t)
    dst_raw, gw_raw, mask_raw, flags, metric, devp = S.RTENTRY.unpack_from(raw)
    dst_family, dst = _sin(dst_raw)
    if dst_family != AF_INET:
        raise KernelError(E.EAFNOSUPPORT)
    plen = 32
    if not flags & S.RTF_HOST:
        mask_family, mask = _sin(mask_raw)
        if mask_family != AF_INET and (any(mask) or mask_family):
            raise KernelError(E.EAFNOSUPPORT)
        plen = mask_len(mask)
        if plen is None or any(d & ~m & 0xFF for d, m in zip(dst, mask)):
            raise KernelError(E.EINVAL)
    cfg = fib.FibConfig(AF_INET, dst, plen, RT_TABLE_MAIN, scope=RT_SCOPE_NOWHERE)
    if req == S.SIOCADDRT:
        cfg.nlflags, cfg.protocol = NLM_F_CREATE, RTPROT_BOOT
    if metric:
        cfg.priority = (metric - 1) & 0xFFFFFFFF
    if flags & S.RTF_REJECT:
        cfg.scope, cfg.type = RT_SCOPE_HOST, RTN_UNREACHABLE
    else:
        cfg.type = RTN_UNICAST
        if devp:
            name = _cstr(t.mem.read(devp, S.IFNAMSIZ - 1))
            dev = net_of(t).by_name(name.split(":", 1)[0])
            cfg.oif = dev.index
            if ":" in name:
                alias = next((a for a in dev.addrs if a.family == AF_INET and a.label == name), None)
                if alias is None:
                    raise KernelError(E.ENODEV)
                cfg.prefsrc = alias.addr
        gw_family, gw = _sin(gw_raw)
        if gw_family == AF_INET and any(gw):
            cfg.gateway = gw
            if flags & S.RTF_GATEWAY and _addr_type(net_of(t), gw) == RTN_UNICAST:
                cfg.scope = RT_SCOPE_UNIVERSE
        if req == S.SIOCADDRT:
            if flags & S.RTF_GATEWAY and cfg.gateway is None:
                raise KernelError(E.EINVAL)
            if cfg.scope == RT_SCOPE_NOWHERE:
                cfg.scope = RT_SCOPE_LINK
    if req == S.SIOCDELRT:
        fib.delete(net_of(t), cfg)
    else:
        fib.insert(net_of(t), cfg)
    return 0


def _addr_type(net, addr: bytes) -> int:
    """inet_addr_type_table for table main: the type of the route to addr
    (unicast when none matches)."""
    r = net.lookup_table(AF_INET, addr, RT_TABLE_MAIN)
    return RTN_UNICAST if r is None else r.type


# -- AF_INET6: addresses (addrconf_add_ifaddr, addrconf_del_ifaddr) ---------------------

def _inet6_ifaddr(t, req: int, arg: int) -> int:
    _admin(t)
    addr, plen, index = S.IN6_IFREQ.unpack(t.mem.read(arg, S.IN6_IFREQ.size))
    if req == S.SIOCSIFADDR:
        rtnetlink.add_addr6(net_of(t), index, addr, plen, 0)
    else:
        rtnetlink.del_addr6(net_of(t), index, addr, plen)
    return 0
