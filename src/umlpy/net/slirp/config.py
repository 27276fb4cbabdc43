"""`eth0=user,...`: the user-mode network's options, parsed.

QEMU's `-netdev user` syntax where it applies (hostfwd=, restrict=), plus
`hostdns=` (where the DNS forwarder sends queries: the host's
/etc/resolv.conf by default).  UML's `eth0=slirp,...` means the same as
`eth0=user` here (the slirp helper program it names is not needed).
A malformed value is an error at boot, as QEMU refuses to start with one.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from umlpy.net.slirp import vnet

# One rule may not bind every host interface by accident: an empty host
# address is 127.0.0.1 here (QEMU binds INADDR_ANY), an explicit 0.0.0.0
# is honoured and logged.
DEFAULT_HOSTFWD_ADDR = vnet.HOST_LOOPBACK
ANY4 = bytes(4)


@dataclass
class HostFwd:
    proto: str                 # "tcp" or "udp"
    host_ip: bytes             # 4 bytes
    host_port: int
    guest_ip: bytes            # 4 bytes, in the virtual network
    guest_port: int

    def text(self) -> str:
        return (f"{self.proto}:{vnet.ip_text(self.host_ip)}:{self.host_port}-"
                f"{vnet.ip_text(self.guest_ip)}:{self.guest_port}")


@dataclass
class UserNetConfig:
    hostfwds: list[HostFwd] = field(default_factory=list)
    restrict: bool = False
    hostdns: tuple[bytes, int] | None = None    # None: the host's resolv.conf
    notes: list[str] = field(default_factory=list)   # what the boot log should say


def _ip4(text: str, what: str) -> bytes:
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an IPv4 address") from None


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{what}: {text!r} is not a port (1-65535)")
    return int(text)


def parse_hostfwd(text: str) -> HostFwd:
    """QEMU's hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport."""
    left, dash, right = text.partition("-")
    parts = left.split(":")
    gparts = right.split(":")
    if not dash or len(parts) != 3 or len(gparts) != 2:
        raise ValueError(f"hostfwd={text}: expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport")
    proto = parts[0] or "tcp"
    if proto not in ("tcp", "udp"):
        raise ValueError(f"hostfwd={text}: protocol {proto!r} is not tcp or udp")
    host_ip = _ip4(parts[1], f"hostfwd={text}") if parts[1] else DEFAULT_HOSTFWD_ADDR
    guest_ip = _ip4(gparts[0], f"hostfwd={text}") if gparts[0] else vnet.GUEST
    if not vnet.in_network(guest_ip) or guest_ip[3] in (0, 2, 3, 255):
        raise ValueError(f"hostfwd={text}: the guest address must be a guest's in 10.0.2.0/24")
    return HostFwd(proto, host_ip, _port(parts[2], f"hostfwd={text}"),
                   guest_ip, _port(gparts[1], f"hostfwd={text}"))


def _hostdns(text: str) -> tuple[bytes, int]:
    """addr or addr:port (IPv6 as [addr]:port); the port defaults to 53."""
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), f"hostdns={text}")
    elif text.count(":") == 1:
        host, p = text.split(":")
        port = _port(p, f"hostdns={text}")
    else:
        host = text
    try:
        return ipaddress.ip_address(host).packed, port
    except ValueError:
        raise ValueError(f"hostdns={text}: not an address") from None


_BOOL = {"on": True, "yes": True, "y": True, "off": False, "no": False, "n": False}


def parse(value: str) -> UserNetConfig:
    """eth0=<value>: `user[,opt=...]` or UML's `slirp[,...]`."""
    kind, _, rest = value.partition(",")
    cfg = UserNetConfig()
    if kind == "slirp":
        cfg.notes.append(f"eth0=slirp: taken as eth0=user (built-in user-mode networking; "
                         f"{rest or 'no options'} ignored)")
        return cfg
    if kind != "user":
        raise ValueError(f"eth0={value}: only eth0=user (or UML's eth0=slirp) is supported")
    seen: set[tuple[str, int]] = set()
    for opt in filter(None, rest.split(",")):
        name, eq, arg = opt.partition("=")
        if name == "hostfwd" and eq:
            fwd = parse_hostfwd(arg)
            if (fwd.proto, fwd.host_port) in seen:
                raise ValueError(f"hostfwd={arg}: host port {fwd.host_port}/{fwd.proto} forwarded twice")
            seen.add((fwd.proto, fwd.host_port))
            if fwd.host_ip == ANY4:
                cfg.notes.append(f"hostfwd={arg}: listening on every host interface: "
                                 "other machines can reach the guest")
            cfg.hostfwds.append(fwd)
        elif name == "restrict" and arg in _BOOL:
            cfg.restrict = _BOOL[arg]
        elif name == "hostdns" and arg:
            cfg.hostdns = _hostdns(arg)
        elif name == "id":
            pass        # QEMU's netdev id: nothing to name here
        else:
            raise ValueError(f"eth0=user: option {opt!r} is not supported "
                             "(hostfwd=, restrict=on|off, hostdns= are)")
    return cfg
