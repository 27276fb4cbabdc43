"""Adding and deleting routes as Linux's FIB does: the checks and errors of
fib_table_insert/fib_create_info (IPv4) and ip6_route_add (IPv6), which
rtnetlink's RTM_NEWROUTE/RTM_DELROUTE and the SIOCADDRT/SIOCDELRT ioctls
both go through.  A route's nexthop must be usable when it is added: a
device that is up, a gateway that a connected (link or host scope) route
reaches; its device is then the one that route goes out of.
"""
from __future__ import annotations

from dataclasses import dataclass

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.net import netlink_abi as NL
from umlpy.net.netdev import (AF_INET, IP6_RT_PRIO_USER, RT_SCOPE_HOST, RT_SCOPE_LINK,
                              RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTPROT_BOOT,
                              RTN_ANYCAST, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_MAX,
                              RTN_MULTICAST, RTN_PROHIBIT, RTN_THROW, RTN_UNICAST, RTN_UNREACHABLE,
                              NetDevice, Route, network, prefix_match)
from umlpy.net.netlink import ExtAck

REJECT_TYPES = (RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW)
_NEXTHOP_TYPES = (RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST)
# the narrowest scope a route of each type may have (fib_props)
_MIN_SCOPE = {RTN_LOCAL: RT_SCOPE_HOST, RTN_BROADCAST: RT_SCOPE_LINK, RTN_ANYCAST: RT_SCOPE_LINK,
              10: RT_SCOPE_NOWHERE, 11: RT_SCOPE_NOWHERE}


@dataclass
class FibConfig:
    """A route as a request describes it (Linux's fib_config/fib6_config)."""
    family: int
    dst: bytes
    dst_len: int
    table: int = 0                      # 0: main
    protocol: int = 0
    scope: int = RT_SCOPE_UNIVERSE
    type: int = RTN_UNICAST
    oif: int = 0
    gateway: bytes | None = None
    priority: int = 0
    prefsrc: bytes | None = None
    nlflags: int = 0


def _check_prefix(cfg: FibConfig) -> None:
    """fib_valid_key_len: no more bits than the address, no host bits (IPv4)."""
    if cfg.dst_len > len(cfg.dst) * 8:
        raise ExtAck(E.EINVAL, "Invalid prefix length")
    if cfg.family == AF_INET and network(cfg.dst, cfg.dst_len) != cfg.dst:
        raise ExtAck(E.EINVAL, "Invalid prefix for given prefix length")


def _gateway_route(net, cfg: FibConfig) -> Route | None:
    """The connected route that reaches a gateway (a lookup at link scope
    or narrower, as fib_check_nh_v4_gw asks; the route's table first)."""
    want = max(cfg.scope + 1, RT_SCOPE_LINK) if cfg.family == AF_INET else RT_SCOPE_UNIVERSE
    tables = [t for t in (cfg.table, RT_TABLE_LOCAL, RT_TABLE_MAIN) if t]
    for table in dict.fromkeys(tables):
        best = None
        for r in net.routes:
            if r.family != cfg.family or r.table != table or r.scope < want \
                    or not prefix_match(r.dst, cfg.gateway, r.prefixlen) \
                    or (cfg.oif and r.ifindex != cfg.oif) or r.type in REJECT_TYPES:
                continue
            if best is None or (r.prefixlen, -r.metric) > (best.prefixlen, -best.metric):
                best = r
        if best is not None:
            return best
    return None


def _nexthop4(net, cfg: FibConfig) -> NetDevice | None:
    """fib_create_info's nexthop checks for an IPv4 route: its device."""
    if cfg.type > RTN_MAX:
        raise ExtAck(E.EINVAL, "Invalid route type")
    if _MIN_SCOPE.get(cfg.type, RT_SCOPE_UNIVERSE) > cfg.scope:
        raise ExtAck(E.EINVAL, "Invalid scope")
    if cfg.type in REJECT_TYPES:
        if cfg.gateway or cfg.oif:
            raise ExtAck(E.EINVAL, "Gateway, device and multipath can not be specified for this route type")
        return None
    if cfg.type not in _NEXTHOP_TYPES:
        raise ExtAck(E.EINVAL, "Invalid route type")
    if cfg.scope > RT_SCOPE_HOST:
        raise ExtAck(E.EINVAL, "Invalid scope")
    if cfg.scope == RT_SCOPE_HOST:
        if cfg.gateway:
            raise ExtAck(E.EINVAL, "Route with host scope can not have a gateway")
        return net.by_index(cfg.oif)
    if cfg.gateway:
        r = _gateway_route(net, cfg)
        if r is None:
            raise ExtAck(E.ENETUNREACH, "Nexthop has invalid gateway")
        if r.type not in (RTN_UNICAST, RTN_LOCAL):
            raise ExtAck(E.EINVAL, "Nexthop has invalid gateway")
        dev = net.by_index(r.ifindex)
    else:
        dev = net.by_index(cfg.oif)
    if not dev.up:
        raise ExtAck(E.ENETDOWN, "Device for nexthop is not up")
    return dev


def _nexthop6(net, cfg: FibConfig) -> NetDevice:
    """fib6_nh_init and ip6_validate_gw: the device of an IPv6 route
    (reject routes hang on lo, as ip6_route_info_create puts them)."""
    if cfg.type > RTN_MAX:
        raise ExtAck(E.EINVAL, "Invalid route type")
    if cfg.type in REJECT_TYPES:
        return net.by_index(1)
    dev = net.by_index(cfg.oif) if cfg.oif else None
    if cfg.gateway:
        if cfg.gateway in net.local_addrs(cfg.family):
            raise ExtAck(E.EINVAL, "Gateway can not be a local address")
        if not (cfg.gateway[0] == 0xFE and cfg.gateway[1] & 0xC0 == 0x80):
            if cfg.gateway[0] == 0xFF:
                raise ExtAck(E.EINVAL, "Invalid gateway address")
            r = _gateway_route(net, cfg)
            if r is None:
                raise KernelError(E.EHOSTUNREACH)
            dev = dev or net.by_index(r.ifindex)
        if dev is None:
            raise ExtAck(E.EINVAL, "Egress device not specified")
    if dev is None:
        raise KernelError(E.ENODEV)
    if not dev.up:
        raise ExtAck(E.ENETDOWN, "Nexthop device is not up")
    return dev


def insert(net, cfg: FibConfig) -> Route:
    """fib_table_insert / ip6_route_add: a route with the same destination,
    table and priority exists already: NLM_F_EXCL fails (EEXIST), NLM_F_REPLACE
    replaces it, else the new one goes beside it unless it is the same route
    (EEXIST); no such route and no NLM_F_CREATE: ENOENT."""
    _check_prefix(cfg)
    if cfg.family == AF_INET:
        dev = _nexthop4(net, cfg)
        if cfg.prefsrc and cfg.type != RTN_LOCAL and not net.is_local(AF_INET, cfg.prefsrc):
            raise ExtAck(E.EINVAL, "Invalid prefsrc address")
        metric, dst = cfg.priority, cfg.dst
    else:
        dev = _nexthop6(net, cfg)
        if cfg.prefsrc and cfg.prefsrc not in net.local_addrs(cfg.family):
            raise ExtAck(E.EINVAL, "Invalid source address")
        metric, dst = cfg.priority or IP6_RT_PRIO_USER, network(cfg.dst, cfg.dst_len)
        cfg.protocol = cfg.protocol or RTPROT_BOOT
    table = cfg.table or RT_TABLE_MAIN
    new = Route(cfg.family, dst, cfg.dst_len, dev.index if dev is not None else 0, cfg.gateway,
                metric, table, cfg.protocol, cfg.scope if cfg.family == AF_INET else RT_SCOPE_UNIVERSE,
                cfg.prefsrc, cfg.type or RTN_UNICAST)
    same = [r for r in net.routes if r.family == cfg.family and r.table == table and r.dst == dst
            and r.prefixlen == cfg.dst_len and r.metric == metric]
    if same:
        if cfg.nlflags & NL.NLM_F_EXCL:
            raise KernelError(E.EEXIST)
        if cfg.nlflags & NL.NLM_F_REPLACE:
            net.remove_route(same[0])
            net.insert_route(new)
            return new
        if any(r.type == new.type and r.gateway == new.gateway and r.ifindex == new.ifindex
               for r in same):
            raise KernelError(E.EEXIST)
    if not cfg.nlflags & NL.NLM_F_CREATE:
        raise KernelError(E.ENOENT)
    net.insert_route(new)
    return new


def delete(net, cfg: FibConfig) -> Route:
    """fib_table_delete / ip6_route_del: the first route of that prefix
    whose every given property matches (ESRCH when none does)."""
    _check_prefix(cfg)
    table = cfg.table or RT_TABLE_MAIN
    dst = network(cfg.dst, cfg.dst_len)
    for r in net.routes:
        if r.family != cfg.family or r.table != table or r.dst != dst or r.prefixlen != cfg.dst_len:
            continue
        if cfg.family == AF_INET and ((cfg.type and r.type != cfg.type)
                                      or (cfg.scope != RT_SCOPE_NOWHERE and r.scope != cfg.scope)
                                      or (cfg.prefsrc and r.prefsrc != cfg.prefsrc)):
            continue
        if (cfg.protocol and r.protocol != cfg.protocol) or (cfg.priority and r.metric != cfg.priority) \
                or (cfg.oif and r.ifindex != cfg.oif) or (cfg.gateway and r.gateway != cfg.gateway):
            continue
        net.remove_route(r)
        return r
    raise KernelError(E.ESRCH)
