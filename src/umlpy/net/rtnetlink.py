"""NETLINK_ROUTE: links, addresses, routes and rules as Linux's rtnetlink
shows and changes them (net/core/rtnetlink.c, net/ipv4/devinet.c and
fib_frontend.c, net/ipv6/addrconf.c and route.c).

A request is dispatched as rtnetlink_rcv_msg does: by (family, type),
falling back to AF_UNSPEC's handler; changes (every type but RTM_GET*)
need CAP_NET_ADMIN; a GET with NLM_F_DUMP is a dump, answered in
NLM_F_MULTI messages and NLMSG_DONE (net/netlink.py chunks them).  Message
contents and attribute order are Linux 6.1's; device attributes that
umlpy's devices do not have (VF, XDP programs, IFLA_AF_SPEC devconf
arrays, IPv6 statistics) are left out or zero.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.net import fib
from umlpy.net import netlink_abi as NL
from umlpy.net.netdev import (AF_INET, AF_INET6, ARPHRD_LOOPBACK, IFA_F_NODAD,
                              IFA_F_NOPREFIXROUTE, IFA_F_PERMANENT, IFA_F_SECONDARY, IFF_LOOPBACK, IFF_PROMISC,
                              RT_SCOPE_HOST, RT_SCOPE_UNIVERSE, RT_TABLE_DEFAULT, RT_TABLE_LOCAL,
                              RT_TABLE_MAIN, RTN_BROADCAST, RTN_LOCAL, RTPROT_KERNEL, IfAddr,
                              NetDevice, Route, ipv6_scope, prefix_match)
from umlpy.net.netlink import ExtAck, broadcast
from umlpy.net.socket import AF_UNSPEC

# the IPv6 flags a request may set (inet6_rtm_newaddr): NODAD, HOMEADDRESS,
# MANAGETEMPADDR, NOPREFIXROUTE, MCAUTOJOIN, OPTIMISTIC
IFA_F_V6_SETTABLE = IFA_F_NODAD | 0x10 | 0x100 | IFA_F_NOPREFIXROUTE | 0x400 | NL.IFA_F_OPTIMISTIC
GSO_MAX_SEGS, GSO_MAX_SIZE, LO_TSO_MAX_SIZE = 65535, 65536, 524280


@dataclass
class Request:
    sock: object            # the NetlinkSocket that asked
    t: object               # the task that sent it
    type: int
    flags: int
    seq: int
    family: int
    body: bytes             # the message after its nlmsghdr

    @property
    def net(self):
        return self.sock.net

    @property
    def strict(self) -> bool:
        return "strict_chk" in self.sock.opt_flags

    def header(self, st: struct.Struct) -> tuple:
        """The family header (ifinfomsg, ifaddrmsg, rtmsg); a short one is EINVAL."""
        if len(self.body) < st.size:
            raise KernelError(E.EINVAL)
        return st.unpack_from(self.body)

    def attrs(self, st: struct.Struct) -> dict[int, bytes]:
        return NL.parse_attrs(self.body[NL.align(st.size):]) if len(self.body) >= st.size else {}

    def reply(self, data: bytes) -> None:
        self.sock.reply(data)


# -- attribute values --------------------------------------------------------------

def _u32(attrs: dict[int, bytes], key: int) -> int | None:
    v = attrs.get(key)
    if v is None:
        return None
    if len(v) < 4:
        raise KernelError(E.EINVAL)
    return struct.unpack_from("<I", v)[0]


def _addr(attrs: dict[int, bytes], key: int, n: int) -> bytes | None:
    v = attrs.get(key)
    if v is None:
        return None
    if len(v) < n:
        raise KernelError(E.EINVAL)
    return v[:n]


def _name(attrs: dict[int, bytes], key: int) -> str | None:
    """A name attribute: at most IFNAMSIZ-1 bytes before its NUL."""
    v = attrs.get(key)
    if v is None:
        return None
    v = v.split(b"\0", 1)[0]
    if len(v) >= NL.IFNAMSIZ:
        raise KernelError(E.EINVAL)
    return v.decode(errors="replace")


def _alen(family: int) -> int:
    return 4 if family == AF_INET else 16


# -- links -----------------------------------------------------------------------------

def link_msg(dev: NetDevice, mtype: int, flags: int, seq: int, pid: int, change: int = 0) -> bytes:
    """rtnl_fill_ifinfo."""
    lo = dev.type == ARPHRD_LOOPBACK
    st = dev.stats
    counts = (st.rx_packets, st.tx_packets, st.rx_bytes, st.tx_bytes)
    body = NL.IFINFOMSG.pack(AF_UNSPEC, dev.type, dev.index, dev.flags, change & 0xFFFFFFFF) + b"".join([
        NL.string(NL.IFLA_IFNAME, dev.name),
        NL.u32(NL.IFLA_TXQLEN, dev.txqlen),
        NL.u8(NL.IFLA_OPERSTATE, dev.operstate),
        NL.u8(NL.IFLA_LINKMODE, 0),
        NL.u32(NL.IFLA_MTU, dev.mtu),
        NL.u32(NL.IFLA_MIN_MTU, dev.min_mtu),
        NL.u32(NL.IFLA_MAX_MTU, dev.max_mtu),
        NL.u32(NL.IFLA_GROUP, dev.group),
        NL.u32(NL.IFLA_PROMISCUITY, int(bool(dev.flags & IFF_PROMISC))),
        NL.u32(NL.IFLA_NUM_TX_QUEUES, 1),
        NL.u32(NL.IFLA_GSO_MAX_SEGS, GSO_MAX_SEGS),
        NL.u32(NL.IFLA_GSO_MAX_SIZE, GSO_MAX_SIZE),
        NL.u32(NL.IFLA_GRO_MAX_SIZE, GSO_MAX_SIZE),
        NL.u32(NL.IFLA_TSO_MAX_SIZE, LO_TSO_MAX_SIZE if lo else GSO_MAX_SIZE),
        NL.u32(NL.IFLA_TSO_MAX_SEGS, GSO_MAX_SEGS),
        NL.u32(NL.IFLA_NUM_RX_QUEUES, 1),
        NL.u8(NL.IFLA_CARRIER, 1),
        NL.string(NL.IFLA_QDISC, dev.qdisc),
        NL.u32(NL.IFLA_CARRIER_CHANGES, 0),
        NL.u32(NL.IFLA_CARRIER_UP_COUNT, 0),
        NL.u32(NL.IFLA_CARRIER_DOWN_COUNT, 0),
        NL.u8(NL.IFLA_PROTO_DOWN, 0),
        NL.attr(NL.IFLA_MAP, NL.RTNL_LINK_IFMAP.pack(0, 0, 0, 0, 0, 0)),
        NL.attr(NL.IFLA_ADDRESS, dev.hwaddr),
        NL.attr(NL.IFLA_BROADCAST, dev.hw_broadcast),
        NL.attr(NL.IFLA_STATS64, struct.pack(f"<{NL.RTNL_LINK_STATS64}Q", *counts,
                                              *[0] * (NL.RTNL_LINK_STATS64 - 4))),
        NL.attr(NL.IFLA_STATS, struct.pack(f"<{NL.RTNL_LINK_STATS}I", *(c & 0xFFFFFFFF for c in counts),
                                           *[0] * (NL.RTNL_LINK_STATS - 4))),
        NL.nested(NL.IFLA_XDP, NL.u8(NL.IFLA_XDP_ATTACHED, 0)),
        NL.nested(NL.IFLA_AF_SPEC, NL.nested(AF_INET6, *_inet6_link_attrs(dev))),
    ])
    return NL.message(mtype, flags, seq, pid, body)


def _inet6_link_attrs(dev: NetDevice) -> list[bytes]:
    """inet6_fill_ifla6_attrs, in part: readiness, timers, address generation mode."""
    return [NL.u32(NL.IFLA_INET6_FLAGS, NL.IF_READY if dev.up else 0),
            NL.attr(NL.IFLA_INET6_CACHEINFO, struct.pack("<IIII", 65535, 0, 30000, 1000)),
            NL.u8(NL.IFLA_INET6_ADDR_GEN_MODE, 0)]


def link6_msg(dev: NetDevice, flags: int, seq: int, pid: int) -> bytes:
    """inet6_fill_ifinfo: what `ip -6` asks of a link (its IPv6 state)."""
    info = NL.nested(NL.IFLA_PROTINFO, *_inet6_link_attrs(dev))
    body = NL.IFINFOMSG.pack(AF_INET6, dev.type, dev.index, dev.flags, 0) + b"".join([
        NL.string(NL.IFLA_IFNAME, dev.name),
        NL.attr(NL.IFLA_ADDRESS, dev.hwaddr),
        NL.u32(NL.IFLA_MTU, dev.mtu),
        NL.u8(NL.IFLA_OPERSTATE, dev.operstate),
        info,
    ])
    return NL.message(NL.RTM_NEWLINK, flags, seq, pid, body)


def _devices(net) -> list[NetDevice]:
    return [net.devices[i] for i in sorted(net.devices)]


def dump_links(req: Request) -> list[bytes]:
    return [link_msg(d, NL.RTM_NEWLINK, NL.NLM_F_MULTI, req.seq, req.sock.portid) for d in _devices(req.net)]


def dump_links6(req: Request) -> list[bytes]:
    return [link6_msg(d, NL.NLM_F_MULTI, req.seq, req.sock.portid) for d in _devices(req.net)]


def _find_link(req: Request, index: int, attrs: dict[int, bytes]) -> NetDevice | None:
    """By ifi_index, else by IFLA_IFNAME (None when neither is given)."""
    if index > 0:
        return req.net.by_index(index)
    if index < 0:
        raise ExtAck(E.EINVAL, "ifindex can't be negative")
    name = _name(attrs, NL.IFLA_IFNAME) or _name(attrs, NL.IFLA_ALT_IFNAME)
    return req.net.by_name(name) if name else None


def get_link(req: Request) -> None:
    _, _, index, _, _ = req.header(NL.IFINFOMSG)
    dev = _find_link(req, index, req.attrs(NL.IFINFOMSG))
    if dev is None:
        raise KernelError(E.EINVAL)
    req.reply(link_msg(dev, NL.RTM_NEWLINK, 0, req.seq, req.sock.portid))


def _setlink(req: Request, dev: NetDevice, flags: int, change: int, attrs: dict[int, bytes]) -> None:
    """do_setlink, in its order: map, address, mtu, group, name, flags, queue length."""
    net = req.net
    for key in (NL.IFLA_ADDRESS, NL.IFLA_BROADCAST):
        if key in attrs and len(attrs[key]) < len(dev.hwaddr):
            raise KernelError(E.EINVAL)
    if NL.IFLA_MAP in attrs:
        raise KernelError(E.EOPNOTSUPP)
    if NL.IFLA_ADDRESS in attrs:
        set_hwaddr(net, dev, dev.type, attrs[NL.IFLA_ADDRESS][:len(dev.hwaddr)])
    mtu = _u32(attrs, NL.IFLA_MTU)
    if mtu is not None:
        net.set_mtu(dev, mtu - (1 << 32) if mtu >> 31 else mtu)    # dev_set_mtu takes an int
    group = _u32(attrs, NL.IFLA_GROUP)
    if group is not None:
        dev.group = group
    name = _name(attrs, NL.IFLA_IFNAME)
    if name is not None and name != dev.name:
        net.rename(dev, name)
    if flags or change:
        if change:
            flags = (flags & change) | (dev.flags & ~change)
        net.change_flags(dev, flags)
    qlen = _u32(attrs, NL.IFLA_TXQLEN)
    if qlen is not None:
        net.set_txqlen(dev, qlen)


def set_hwaddr(net, dev: NetDevice, family: int, addr: bytes) -> None:
    """dev_set_mac_address + eth_mac_addr: the family must be the device's;
    the same address is no change; a multicast or all-zero MAC is
    EADDRNOTAVAIL.  lo and eth0 take a new one while up
    (IFF_LIVE_ADDR_CHANGE)."""
    if family != dev.type:
        raise KernelError(E.EINVAL)
    if addr == dev.hwaddr:
        return
    if addr[0] & 1 or not any(addr):
        raise KernelError(E.EADDRNOTAVAIL)
    dev.hwaddr = addr
    net.notify("link", dev, 0)


def new_link(req: Request) -> None:
    """__rtnl_newlink: an existing device is changed; devices are not made
    here (there is no kind of virtual device to make)."""
    _, _, index, flags, change = req.header(NL.IFINFOMSG)
    attrs = req.attrs(NL.IFINFOMSG)
    try:
        dev = _find_link(req, index, attrs)
    except KernelError as e:
        if e.errno != E.ENODEV:
            raise
        dev = None
    if dev is not None:
        if req.flags & NL.NLM_F_EXCL:
            raise KernelError(E.EEXIST)
        if req.flags & NL.NLM_F_REPLACE:
            raise KernelError(E.EOPNOTSUPP)
        _setlink(req, dev, flags, change, attrs)
        return
    if not req.flags & NL.NLM_F_CREATE:
        raise KernelError(E.ENODEV)
    raise ExtAck(E.EOPNOTSUPP, "Unknown device type")


def set_link(req: Request) -> None:
    _, _, index, flags, change = req.header(NL.IFINFOMSG)
    attrs = req.attrs(NL.IFINFOMSG)
    dev = _find_link(req, index, attrs)
    if dev is None:
        raise KernelError(E.EINVAL)
    _setlink(req, dev, flags, change, attrs)


def del_link(req: Request) -> None:
    """rtnl_dellink: lo and eth0 are not virtual devices (EOPNOTSUPP)."""
    _, _, index, _, _ = req.header(NL.IFINFOMSG)
    if _find_link(req, index, req.attrs(NL.IFINFOMSG)) is None:
        raise KernelError(E.EINVAL)
    raise KernelError(E.EOPNOTSUPP)


# -- addresses ---------------------------------------------------------------------------

def addr_msg(dev: NetDevice, a: IfAddr, mtype: int, flags: int, seq: int, pid: int) -> bytes:
    """inet_fill_ifaddr / inet6_fill_ifaddr; lifetimes are forever."""
    cache = NL.attr(NL.IFA_CACHEINFO, NL.IFA_CACHEINFO_S.pack(
        NL.INFINITY_LIFE_TIME, NL.INFINITY_LIFE_TIME, a.cstamp, a.tstamp))
    body = NL.IFADDRMSG.pack(a.family, a.prefixlen, a.flags & 0xFF, a.scope, dev.index)
    if a.family == AF_INET:
        parts = [NL.attr(NL.IFA_ADDRESS, a.addr), NL.attr(NL.IFA_LOCAL, a.addr)]
        if a.broadcast:
            parts.append(NL.attr(NL.IFA_BROADCAST, a.broadcast))
        if a.label:
            parts.append(NL.string(NL.IFA_LABEL, a.label))
        parts += [NL.u32(NL.IFA_FLAGS, a.flags), cache]
    else:
        parts = [NL.attr(NL.IFA_ADDRESS, a.addr), cache, NL.u32(NL.IFA_FLAGS, a.flags)]
    return NL.message(mtype, flags, seq, pid, body + b"".join(parts))


def _dump_addrs(req: Request, family: int) -> list[bytes]:
    """inet_dump_ifaddr / inet6_dump_addr: every device's addresses; with
    strict checking a request may name one device (NLM_F_DUMP_FILTERED)."""
    flags = NL.NLM_F_MULTI
    devs = _devices(req.net)
    if req.strict and len(req.body) >= NL.IFADDRMSG.size:
        index = NL.IFADDRMSG.unpack_from(req.body)[4]
        if index:
            devs = [req.net.by_index(index)]
            flags |= NL.NLM_F_DUMP_FILTERED
    return [addr_msg(d, a, NL.RTM_NEWADDR, flags, req.seq, req.sock.portid)
            for d in devs for a in d.addrs if a.family == family]


def _flags_attr(attrs: dict[int, bytes], given: int) -> int:
    v = _u32(attrs, NL.IFA_FLAGS)
    return given if v is None else v


def _check_lifetimes(attrs: dict[int, bytes], prefix: str) -> None:
    """Lifetimes are not kept (addresses live until deleted), but bad ones
    are refused (IPv4 gives no message before Linux 6.2)."""
    ci = attrs.get(NL.IFA_CACHEINFO)
    if ci is not None:
        if len(ci) < NL.IFA_CACHEINFO_S.size:
            raise KernelError(E.EINVAL)
        prefered, valid, _, _ = NL.IFA_CACHEINFO_S.unpack_from(ci)
        if not valid or prefered > valid:
            if not prefix:
                raise KernelError(E.EINVAL)
            raise ExtAck(E.EINVAL, f"{prefix}address lifetime invalid")


def new_addr4(req: Request) -> None:
    """inet_rtm_newaddr: IFA_LOCAL is the address (IFA_ADDRESS the peer);
    the same address in the same network exists: EEXIST unless
    NLM_F_REPLACE, which changes its broadcast and flags."""
    _, plen, iflags, scope, index = req.header(NL.IFADDRMSG)
    attrs = req.attrs(NL.IFADDRMSG)
    local = _addr(attrs, NL.IFA_LOCAL, 4) or _addr(attrs, NL.IFA_ADDRESS, 4)
    if plen > 32 or local is None:
        raise KernelError(E.EINVAL)
    dev = req.net.by_index(index)
    _check_lifetimes(attrs, "")
    bcast = _addr(attrs, NL.IFA_BROADCAST, 4)
    flags = (_flags_attr(attrs, iflags) | IFA_F_PERMANENT) & ~IFA_F_SECONDARY
    for a in dev.addrs:
        if a.family == AF_INET and a.addr == local and a.prefixlen == plen:
            if req.flags & NL.NLM_F_EXCL or not req.flags & NL.NLM_F_REPLACE:
                raise KernelError(E.EEXIST)
            a.broadcast = bcast
            a.flags = flags | (a.flags & IFA_F_SECONDARY)
            a.tstamp = req.net.centisecs()
            req.net.notify("newaddr", dev, a)
            return
    label = _name(attrs, NL.IFA_LABEL) or dev.name
    req.net.add_addr(dev, IfAddr(AF_INET, local, plen, scope, label, bcast, flags))


def del_addr4(req: Request) -> None:
    """inet_rtm_deladdr: the first address that every given attribute matches."""
    _, plen, _, _, index = req.header(NL.IFADDRMSG)
    attrs = req.attrs(NL.IFADDRMSG)
    dev = req.net.by_index(index)
    local = _addr(attrs, NL.IFA_LOCAL, 4)
    label = _name(attrs, NL.IFA_LABEL)
    address = _addr(attrs, NL.IFA_ADDRESS, 4)
    for a in dev.addrs:
        if a.family != AF_INET or (local is not None and a.addr != local) \
                or (label is not None and a.label != label) \
                or (address is not None and (a.prefixlen != plen or not prefix_match(address, a.addr, plen))):
            continue
        req.net.del_addr(dev, AF_INET, a.addr, a.prefixlen)
        return
    raise KernelError(E.EADDRNOTAVAIL)


def _addr6(attrs: dict[int, bytes]) -> bytes | None:
    """extract_addr: IFA_LOCAL if given, else IFA_ADDRESS."""
    return _addr(attrs, NL.IFA_LOCAL, 16) or _addr(attrs, NL.IFA_ADDRESS, 16)


def new_addr6(req: Request) -> None:
    """inet6_rtm_newaddr and inet6_addr_add."""
    _, plen, iflags, _, index = req.header(NL.IFADDRMSG)
    attrs = req.attrs(NL.IFADDRMSG)
    pfx = _addr6(attrs)
    if pfx is None:
        raise KernelError(E.EINVAL)
    _check_lifetimes(attrs, "ipv6: ")
    dev = req.net.devices.get(index)
    if dev is None:
        raise ExtAck(E.ENODEV, "ipv6: Unable to find the interface")
    flags = _flags_attr(attrs, iflags) & IFA_F_V6_SETTABLE
    if flags & IFA_F_NODAD and flags & NL.IFA_F_OPTIMISTIC:
        raise ExtAck(E.EINVAL, "IFA_F_NODAD and NL.IFA_F_OPTIMISTIC are mutually exclusive")
    for a in dev.addrs:
        if a.family == AF_INET6 and a.addr == pfx:
            if req.flags & NL.NLM_F_EXCL or not req.flags & NL.NLM_F_REPLACE:
                raise KernelError(E.EEXIST)
            a.flags = flags | IFA_F_PERMANENT
            a.tstamp = req.net.centisecs()
            req.net.notify("newaddr", dev, a)
            return
    add_addr6(req.net, index, pfx, plen, flags)


def add_addr6(net, index: int, pfx: bytes, plen: int, flags: int) -> None:
    """inet6_addr_add and ipv6_add_addr's checks (also SIOCSIFADDR on an
    AF_INET6 socket)."""
    if plen > 128:
        raise ExtAck(E.EINVAL, "ipv6: Invalid prefix length")
    dev = net.by_index(index)
    if not any(pfx) or pfx[0] == 0xFF or (ipv6_scope(pfx) == RT_SCOPE_HOST and dev.type != ARPHRD_LOOPBACK):
        raise KernelError(E.EADDRNOTAVAIL)
    net.add_addr(dev, IfAddr(AF_INET6, pfx, plen, ipv6_scope(pfx), flags=flags | IFA_F_PERMANENT))


def del_addr6(net, index: int, pfx: bytes, plen: int) -> None:
    """inet6_addr_del."""
    if plen > 128:
        raise KernelError(E.EINVAL)
    if not index:
        raise KernelError(E.ENODEV)
    dev = net.by_index(index)
    net.del_addr(dev, AF_INET6, pfx, plen)


def del_addr6_req(req: Request) -> None:
    _, plen, _, _, index = req.header(NL.IFADDRMSG)
    pfx = _addr6(req.attrs(NL.IFADDRMSG))
    if pfx is None:
        raise KernelError(E.EINVAL)
    del_addr6(req.net, index, pfx, plen)


# -- routes ---------------------------------------------------------------------------------

def route_msg(r: Route, mtype: int, flags: int, seq: int, pid: int) -> bytes:
    """fib_dump_info (IPv4) / rt6_fill_node (IPv6)."""
    table = r.table if r.table < 256 else NL.RT_TABLE_COMPAT
    if r.family == AF_INET:
        body = NL.RTMSG.pack(AF_INET, r.prefixlen, 0, 0, table, r.protocol, r.scope, r.type, 0)
        parts = [NL.u32(NL.RTA_TABLE, r.table)]
        if r.prefixlen:
            parts.append(NL.attr(NL.RTA_DST, r.dst))
        if r.metric:
            parts.append(NL.u32(NL.RTA_PRIORITY, r.metric))
        if r.prefsrc:
            parts.append(NL.attr(NL.RTA_PREFSRC, r.prefsrc))
        if r.gateway:
            parts.append(NL.attr(NL.RTA_GATEWAY, r.gateway))
        if r.ifindex:
            parts.append(NL.u32(NL.RTA_OIF, r.ifindex))
    else:
        body = NL.RTMSG.pack(AF_INET6, r.prefixlen, 0, 0, table, r.protocol, RT_SCOPE_UNIVERSE, r.type, 0)
        parts = [NL.u32(NL.RTA_TABLE, r.table)]
        if r.prefixlen:
            parts.append(NL.attr(NL.RTA_DST, r.dst))
        if r.prefsrc:
            parts.append(NL.attr(NL.RTA_PREFSRC, r.prefsrc))
        parts.append(NL.u32(NL.RTA_PRIORITY, r.metric))
        if r.gateway:
            parts.append(NL.attr(NL.RTA_GATEWAY, r.gateway))
        if r.ifindex:
            parts.append(NL.u32(NL.RTA_OIF, r.ifindex))
        parts += [NL.attr(NL.RTA_CACHEINFO, NL.RTA_CACHEINFO_S.pack(0, 0, 0, 0, 0, 0, 0, 0)),
                  NL.u8(NL.RTA_PREF, 0)]
    return NL.message(mtype, flags, seq, pid, body + b"".join(parts))


def route_order(r: Route) -> tuple:
    """Where a dump lists a route: tables by id; within one, IPv4 in trie
    order (by destination, longer prefixes first), IPv6 in fib6's
    post-order walk (a prefix after the routes inside it)."""
    dst = int.from_bytes(r.dst, "big")
    if r.family == AF_INET6:
        dst |= (1 << (128 - r.prefixlen)) - 1
    return r.table, dst, -r.prefixlen, r.metric


def _dump_routes(req: Request, family: int) -> list[bytes]:
    """inet_dump_fib / inet6_dump_fib.  With strict checking the request's
    table, protocol, type and RTA_OIF filter the dump (NLM_F_DUMP_FILTERED)
    and RTM_F_CLONED asks for cached routes only (there are none); without
    it, IPv4 answers NL.RTM_F_PREFIX with nothing and takes no filter."""
    routes = sorted((r for r in req.net.routes if r.family == family), key=route_order)
    flags = NL.NLM_F_MULTI
    if req.strict:
        if len(req.body) < NL.RTMSG.size:
            raise ExtAck(E.EINVAL, "Invalid header for FIB dump request")
        _, dst_len, src_len, tos, table, proto, scope, rtype, rflags = NL.RTMSG.unpack_from(req.body)
        if dst_len or src_len or tos or scope:
            raise ExtAck(E.EINVAL, "Invalid values in header for FIB dump request")
        if rflags & ~(NL.RTM_F_CLONED | NL.RTM_F_PREFIX):
            raise ExtAck(E.EINVAL, "Invalid flags for FIB dump request")
        attrs = req.attrs(NL.RTMSG)
        table = _u32(attrs, NL.RTA_TABLE) or table
        oif = _u32(attrs, NL.RTA_OIF) or 0
        if oif:
            req.net.by_index(oif)
        if table and table not in {RT_TABLE_MAIN, RT_TABLE_LOCAL} | {r.table for r in routes}:
            if req.family != family:
                return []
            raise ExtAck(E.ENOENT, "ipv4: FIB table does not exist" if family == AF_INET
                         else "ipv6: FIB table does not exist")
        if rflags & NL.RTM_F_CLONED:
            return []
        if table or proto or rtype or oif or rflags:
            flags |= NL.NLM_F_DUMP_FILTERED
        routes = [r for r in routes if (not table or r.table == table) and (not proto or r.protocol == proto)
                  and (not rtype or r.type == rtype) and (not oif or r.ifindex == oif)]
    elif family == AF_INET and len(req.body) >= NL.RTMSG.size and NL.RTMSG.unpack_from(req.body)[8] & NL.RTM_F_PREFIX:
        return []
    return [route_msg(r, NL.RTM_NEWROUTE, flags, req.seq, req.sock.portid) for r in routes]


def _route_cfg(req: Request) -> fib.FibConfig:
    """rtm_to_fib_config / rtm_to_fib6_config."""
    family, dst_len, src_len, tos, table, proto, scope, rtype, _ = req.header(NL.RTMSG)
    attrs = req.attrs(NL.RTMSG)
    n = _alen(family)
    if family == AF_INET and tos & 3:
        raise ExtAck(E.EINVAL, "Invalid dsfield (tos): ECN bits must be 0")
    if family == AF_INET6 and src_len:
        raise ExtAck(E.EINVAL, "Specifying source address requires IPV6_SUBTREES to be enabled")
    if dst_len > n * 8:
        raise ExtAck(E.EINVAL, "Invalid prefix length")
    dst = bytes(n)
    raw = attrs.get(NL.RTA_DST)
    if raw is not None:
        need = (dst_len + 7) // 8 if family == AF_INET6 else 4
        if len(raw) < need:
            raise KernelError(E.EINVAL)
        dst = (raw[:n] + bytes(n))[:n]
    gw = _addr(attrs, NL.RTA_GATEWAY, n)
    return fib.FibConfig(family, dst, dst_len, _u32(attrs, NL.RTA_TABLE) or table, proto, scope, rtype,
                         _u32(attrs, NL.RTA_OIF) or 0, gw if gw and any(gw) else None,
                         _u32(attrs, NL.RTA_PRIORITY) or 0, _addr(attrs, NL.RTA_PREFSRC, n), req.flags)


def new_route(req: Request) -> None:
    fib.insert(req.net, _route_cfg(req))


def del_route(req: Request) -> None:
    fib.delete(req.net, _route_cfg(req))


def get_route(req: Request) -> None:
    """inet_rtm_getroute / inet6_rtm_getroute: the route a packet to
    RTA_DST would take, as a cloned (cache) route."""
    family = req.header(NL.RTMSG)[0]
    attrs = req.attrs(NL.RTMSG)
    n = _alen(family)
    dst = _addr(attrs, NL.RTA_DST, n) or bytes(n)
    r = req.net.lookup(family, dst)
    dev, gw, src = req.net.route(family, dst)
    table = RT_TABLE_MAIN       # without rules of their own, local and main are one trie
    if family == AF_INET:
        oif = 1 if r.type == RTN_LOCAL else dev.index
        flags = NL.RTM_F_CLONED | (NL.RTCF_BROADCAST if r.type == RTN_BROADCAST else 0) \
            | (NL.RTCF_LOCAL if r.type == RTN_LOCAL or dev.flags & IFF_LOOPBACK else 0)
        if gw is not None and req.net.lookup(AF_INET, gw).type == RTN_LOCAL:
            gw = None       # a gateway reached through a local route is not used (rt_uses_gateway)
        body = NL.RTMSG.pack(AF_INET, 32, 0, 0, table, 0, RT_SCOPE_UNIVERSE, r.type, flags)
        parts = [NL.u32(NL.RTA_TABLE, table), NL.attr(NL.RTA_DST, dst), NL.u32(NL.RTA_OIF, oif)]
        if src:
            parts.append(NL.attr(NL.RTA_PREFSRC, src))
        if gw:
            parts.append(NL.attr(NL.RTA_GATEWAY, gw))
        parts += [NL.u32(NL.RTA_UID, req.t.proc.creds.uid),
                  NL.attr(NL.RTA_CACHEINFO, NL.RTA_CACHEINFO_S.pack(0, 0, 0, 0, 0, 0, 0, 0))]
    else:
        body = NL.RTMSG.pack(AF_INET6, 128, 0, 0, table, r.protocol, RT_SCOPE_UNIVERSE, r.type, 0)
        parts = [NL.u32(NL.RTA_TABLE, table), NL.attr(NL.RTA_DST, dst)]
        if src:
            parts.append(NL.attr(NL.RTA_PREFSRC, src))
        parts.append(NL.u32(NL.RTA_PRIORITY, r.metric))
        if gw:
            parts.append(NL.attr(NL.RTA_GATEWAY, gw))
        parts += [NL.u32(NL.RTA_OIF, dev.index),
                  NL.attr(NL.RTA_CACHEINFO, NL.RTA_CACHEINFO_S.pack(0, 0, 0, 0, 0, 0, 0, 0)),
                  NL.u8(NL.RTA_PREF, 0)]
    req.reply(NL.message(NL.RTM_NEWROUTE, 0, req.seq, req.sock.portid, body + b"".join(parts)))


# -- rules and neighbours -----------------------------------------------------------------

_RULES = {AF_INET: [(0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN), (32767, RT_TABLE_DEFAULT)],
          AF_INET6: [(0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN)]}


def _dump_rules(req: Request) -> list[bytes]:
    """fib_nl_dumprule: one family's rules, or every family's for
    AF_UNSPEC (EAFNOSUPPORT for a family without rules); only the default
    rules exist (fib_nl_fill_rule)."""
    if req.family == AF_UNSPEC:
        families = list(_RULES)
    elif req.family in _RULES:
        families = [req.family]
    else:
        raise KernelError(E.EAFNOSUPPORT)
    return [m for f in families for m in _rule_msgs(req, f)]


def _rule_msgs(req: Request, family: int) -> list[bytes]:
    out = []
    for pref, table in _RULES[family]:
        body = NL.FIB_RULE_HDR.pack(family, 0, 0, 0, table, 0, 0, NL.FR_ACT_TO_TBL, 0) + b"".join([
            NL.u32(NL.FRA_TABLE, table), NL.u32(NL.FRA_SUPPRESS_PREFIXLEN, 0xFFFFFFFF),
            NL.u8(NL.FRA_PROTOCOL, RTPROT_KERNEL)] + ([NL.u32(NL.FRA_PRIORITY, pref)] if pref else []))
        out.append(NL.message(NL.RTM_NEWRULE, NL.NLM_F_MULTI, req.seq, req.sock.portid, body))
    return out


def _per_family(fn: Callable[[Request, int], list[bytes]], families: tuple[int, ...]):
    """rtnl_dump_all: each family's dump in turn, from the one asked for up
    (AF_UNSPEC: all of them)."""
    def dump(req: Request) -> list[bytes]:
        return [m for f in families if f >= req.family for m in fn(req, f)]
    return dump


def _family(fn: Callable[[Request, int], list[bytes]], family: int):
    return lambda req: fn(req, family)


# (family, type) -> handler; a family without its own handler uses AF_UNSPEC's
DUMPS: dict[tuple[int, int], Callable[[Request], list[bytes]]] = {
    (AF_UNSPEC, NL.RTM_GETLINK): dump_links,
    (AF_INET6, NL.RTM_GETLINK): dump_links6,
    (AF_UNSPEC, NL.RTM_GETADDR): _per_family(_dump_addrs, (AF_INET, AF_INET6)),
    (AF_INET, NL.RTM_GETADDR): _family(_dump_addrs, AF_INET),
    (AF_INET6, NL.RTM_GETADDR): _family(_dump_addrs, AF_INET6),
    (AF_UNSPEC, NL.RTM_GETROUTE): _per_family(_dump_routes, (AF_INET, AF_INET6)),
    (AF_INET, NL.RTM_GETROUTE): _family(_dump_routes, AF_INET),
    (AF_INET6, NL.RTM_GETROUTE): _family(_dump_routes, AF_INET6),
    (AF_UNSPEC, NL.RTM_GETRULE): _dump_rules,
    (AF_UNSPEC, NL.RTM_GETNEIGH): lambda req: [],
}
DOITS: dict[tuple[int, int], Callable[[Request], None]] = {
    (AF_UNSPEC, NL.RTM_GETLINK): get_link,
    (AF_UNSPEC, NL.RTM_NEWLINK): new_link,
    (AF_UNSPEC, NL.RTM_SETLINK): set_link,
    (AF_UNSPEC, NL.RTM_DELLINK): del_link,
    (AF_INET, NL.RTM_NEWADDR): new_addr4,
    (AF_INET, NL.RTM_DELADDR): del_addr4,
    (AF_INET6, NL.RTM_NEWADDR): new_addr6,
    (AF_INET6, NL.RTM_DELADDR): del_addr6_req,
    (AF_INET, NL.RTM_NEWROUTE): new_route,
    (AF_INET, NL.RTM_DELROUTE): del_route,
    (AF_INET, NL.RTM_GETROUTE): get_route,
    (AF_INET6, NL.RTM_NEWROUTE): new_route,
    (AF_INET6, NL.RTM_DELROUTE): del_route,
    (AF_INET6, NL.RTM_GETROUTE): get_route,
}


def request(sock, t, msg: bytes, admin: bool) -> None:
    """rtnetlink_rcv_msg for one request (raises for an error ack; a dump
    raises netlink.DumpStarted through sock.start_dump)."""
    _, mtype, mflags, seq, _ = NL.NLMSGHDR.unpack_from(msg)
    if mtype > NL.RTM_MAX:
        raise KernelError(E.EOPNOTSUPP)
    body = msg[NL.NLMSGHDR.size:]
    if not body:
        return                          # shorter than a rtgenmsg: ignored
    req = Request(sock, t, mtype, mflags, seq, body[0], body)
    kind = (mtype - NL.RTM_BASE) & 3
    if kind != 2 and not admin:
        raise KernelError(E.EPERM)
    if kind == 2 and mflags & NL.NLM_F_DUMP == NL.NLM_F_DUMP:
        dump = DUMPS.get((req.family, mtype)) or DUMPS.get((AF_UNSPEC, mtype))
        if dump is None:
            raise KernelError(E.EOPNOTSUPP)
        try:
            messages, err = dump(req), 0
        except KernelError as e:
            messages, err = [], e.errno
        sock.start_dump(seq, messages, err)
    doit = DOITS.get((req.family, mtype)) or DOITS.get((AF_UNSPEC, mtype))
    if doit is None:
        raise KernelError(E.EOPNOTSUPP)
    doit(req)


# -- notifications ---------------------------------------------------------------------------

_ADDR_GROUP = {AF_INET: NL.RTNLGRP_IPV4_IFADDR, AF_INET6: NL.RTNLGRP_IPV6_IFADDR}
_ROUTE_GROUP = {AF_INET: NL.RTNLGRP_IPV4_ROUTE, AF_INET6: NL.RTNLGRP_IPV6_ROUTE}


def notify(net, event: str, *objs) -> None:
    """A netdev change, told to the multicast groups that hear of it
    (rtmsg_ifinfo, rtmsg_ifa, rtmsg_fib/inet6_rt_notify), with the seq and
    port id of the request that made it."""
    if net.netlink is None:
        return
    seq, pid = net.netlink.origin
    if event == "link":
        dev, change = objs
        group, make = NL.RTNLGRP_LINK, lambda: link_msg(dev, NL.RTM_NEWLINK, 0, 0, 0, change)
    elif event in ("newaddr", "deladdr"):
        dev, a = objs
        mtype = NL.RTM_NEWADDR if event == "newaddr" else NL.RTM_DELADDR
        group, make = _ADDR_GROUP[a.family], lambda: addr_msg(dev, a, mtype, 0, seq, pid)
    else:
        (r,) = objs
        mtype = NL.RTM_NEWROUTE if event == "newroute" else NL.RTM_DELROUTE
        group, make = _ROUTE_GROUP[r.family], lambda: route_msg(r, mtype, 0, seq, pid)
    if net.netlink.members(0, group):
        broadcast(net, 0, group, make())

