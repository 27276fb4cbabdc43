"""The network configuration in a checkpoint: the devices (lo, and the
eth0 that `eth0=user` gives), their flags, addresses and settings, the
routing table and the network sysctls, as the guest left them (`ip addr
add`, `ip route`, udhcpc's lease, `ip=`).

The restoring boot makes the same devices from the same command line;
their state is then set to the saved one (a device the image names that
the boot did not make, or the other way round, refuses the image).  There
is nothing of the user-mode NAT to carry: with no inet socket in the
machine (a checkpoint refuses one) it holds no connection, and its
`hostfwd=` listeners are made again by the boot.
"""
from __future__ import annotations

from umlpy.checkpoint import image
from umlpy.net import netdev
from umlpy.net.netdev import IfAddr, Route

U32 = 1 << 32
_DEV_INTS = {"mtu": (0, U32), "flags": (0, U32), "txqlen": (0, U32), "min_mtu": (0, U32),
             "max_mtu": (0, U32), "group": (0, U32)}
_ROUTE_INTS = {"family": (0, 64), "prefixlen": (0, 129), "ifindex": (0, U32), "metric": (0, U32),
               "table": (0, U32), "protocol": (0, 256), "scope": (0, 256), "type": (0, netdev.RTN_MAX + 1)}


def _addr_bytes(v: bytes | None) -> str | None:
    return None if v is None else v.hex()


def save(k) -> dict:
    net = k.net
    return {
        "devices": [{"name": d.name, "index": d.index, "type": d.type, "hwaddr": d.hwaddr.hex(),
                     "qdisc": d.qdisc, "conf": dict(d.conf), **{f: getattr(d, f) for f in _DEV_INTS},
                     "addrs": [{"family": a.family, "addr": a.addr.hex(), "prefixlen": a.prefixlen,
                                "scope": a.scope, "label": a.label, "broadcast": _addr_bytes(a.broadcast),
                                "flags": a.flags, "prefix_route": a.prefix_route} for a in d.addrs]}
                    for d in net.devices.values()],
        "routes": [{**{f: getattr(r, f) for f in _ROUTE_INTS}, "dst": r.dst.hex(),
                    "gateway": _addr_bytes(r.gateway), "prefsrc": _addr_bytes(r.prefsrc)} for r in net.routes],
        "conf_all": dict(net.conf_all), "conf_default": dict(net.conf_default),
        "local_port_range": list(net.local_port_range), "ping_group_range": list(net.ping_group_range),
        "unprivileged_port_start": net.prot_sock,
    }


def _ip(r: image.Reader, key: str, family: int, optional: bool = False) -> bytes | None:
    """An address of the family's length (null where optional allows it)."""
    if optional and r.doc.get(key) is None:
        return None
    v = r.hex(key, 16)
    if len(v) != (4 if family == netdev.AF_INET else 16):
        raise image.ImageError(f"manifest: {r.where}.{key}: not an address of family {family}")
    return v


def _family(r: image.Reader) -> int:
    f = r.int("family", 0, 64)
    if f not in (netdev.AF_INET, netdev.AF_INET6):
        raise image.ImageError(f"manifest: {r.where}.family: not AF_INET or AF_INET6")
    return f


def _conf(r: image.Reader, key: str, like: dict) -> dict:
    """A sysctl table with the keys the kernel has (DEVCONF's), integers."""
    c = r.sub(key)
    if set(c.keys()) != set(like):
        raise image.ImageError(f"manifest: {r.where}.{key}: not the kernel's settings")
    return {name: c.int(name, -(1 << 31), 1 << 31) for name in like}


def restore(k, r: image.Reader) -> None:
    net = k.net
    saved = r.list("devices")
    if sorted((d.int("index", 1, U32), d.str("name"), d.int("type", 0, 1 << 16)) for d in saved) \
            != sorted((d.index, d.name, d.type) for d in net.devices.values()):
        raise image.ImageError("the network devices differ from the checkpointed machine's "
                               "(give the same eth0= as it had)")
    for d in saved:
        dev = net.devices[d.int("index", 1, U32)]
        hw = d.hex("hwaddr", 32)
        if len(hw) != len(dev.hwaddr):
            raise image.ImageError(f"manifest: {d.where}.hwaddr: not a {len(dev.hwaddr)}-byte address")
        dev.hwaddr = hw
        for f, (lo, hi) in _DEV_INTS.items():
            setattr(dev, f, d.int(f, lo, hi))
        qdisc = d.str("qdisc")
        if qdisc not in ("noop", "noqueue", "pfifo_fast", "fq_codel"):
            raise image.ImageError(f"manifest: {d.where}.qdisc: {qdisc!r}")
        dev.qdisc = qdisc
        dev.conf = _conf(d, "conf", dev.conf)
        now = net.centisecs()
        dev.addrs = []
        for a in d.list("addrs"):
            fam = _family(a)
            label = a.str("label")
            if len(label) > 15:
                raise image.ImageError(f"manifest: {a.where}.label: too long")
            dev.addrs.append(IfAddr(fam, _ip(a, "addr", fam), a.int("prefixlen", 0, 129 if fam == netdev.AF_INET6
                                                                        else 33),
                                    a.int("scope", 0, 256), label, _ip(a, "broadcast", fam, True),
                                    a.int("flags", 0, U32), now, now, a.bool("prefix_route")))
    routes = []
    for rt in r.list("routes"):
        fam = _family(rt)
        if rt.int("ifindex", 0, U32) not in net.devices:
            raise image.ImageError(f"manifest: {rt.where}.ifindex: no such device")
        ints = {f: rt.int(f, lo, hi) for f, (lo, hi) in _ROUTE_INTS.items()}
        routes.append(Route(**ints, dst=_ip(rt, "dst", fam), gateway=_ip(rt, "gateway", fam, True),
                            prefsrc=_ip(rt, "prefsrc", fam, True)))
    net.routes = routes
    net.conf_all = _conf(r, "conf_all", net.conf_all)
    net.conf_default = _conf(r, "conf_default", net.conf_default)
    lo_port, hi_port = r.ints("local_port_range", 1, 1 << 16, 2)
    g0, g1 = r.ints("ping_group_range", 0, U32, 2)
    net.local_port_range, net.ping_group_range = (lo_port, hi_port), (g0, g1)
    net.prot_sock = r.int("unprivileged_port_start", 0, 1 << 16)
    net.touch()
