"""Inet addresses inside the kernel: one form for both families.

Every address is 16 bytes, IPv4 ones v4-mapped (::ffff:a.b.c.d), so an
AF_INET6 socket and an AF_INET socket share one port space and one
lookup, as Linux's dual-stack sockets do.  An endpoint is (ip16, port).
"""
from __future__ import annotations

import ipaddress
import struct

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

AF_INET, AF_INET6 = 2, 10
MAPPED = bytes(10) + b"\xff\xff"
ANY6 = bytes(16)
ANY4 = MAPPED + bytes(4)
LOOP4 = MAPPED + bytes([127, 0, 0, 1])
LOOP6 = bytes(15) + b"\1"
SIN_LEN, SIN6_LEN = 16, 28

Endpoint = tuple[bytes, int]


def mapped(ip4: bytes) -> bytes:
    return MAPPED + ip4


def is_v4(ip16: bytes) -> bool:
    return ip16[:12] == MAPPED


def is_any(ip16: bytes) -> bool:
    return ip16 == ANY6 or ip16 == ANY4


def is_loopback(ip16: bytes) -> bool:
    return ip16 == LOOP6 or (is_v4(ip16) and ip16[12] == 127)


def is_multicast(ip16: bytes) -> bool:
    return (is_v4(ip16) and ip16[12] >= 224 and ip16[12] < 240) or ip16[0] == 0xFF


def needs_scope(ip16: bytes) -> bool:
    """__ipv6_addr_needs_scope_id: a link-local unicast address (fe80::/10)
    or an interface- or link-local multicast one means nothing without
    the interface it is on (a sockaddr_in6's sin6_scope_id)."""
    return (ip16[0] == 0xFE and ip16[1] & 0xC0 == 0x80) or (ip16[0] == 0xFF and ip16[1] & 0x0F in (1, 2))


def wildcard(family: int) -> bytes:
    """INADDR_ANY or in6addr_any, as a socket of this family is bound to it."""
    return ANY4 if family == AF_INET else ANY6


def packed(family: int, ip16: bytes) -> bytes:
    """The address as a socket of this family shows it (/proc/net, netlink):
    4 bytes for AF_INET, all 16 (v4-mapped or not) for AF_INET6."""
    return ip16[12:] if family == AF_INET else ip16


def family_bytes(ip16: bytes) -> tuple[int, bytes]:
    """(AF_INET, 4 bytes) or (AF_INET6, 16 bytes): the netdev form."""
    return (AF_INET, ip16[12:]) if is_v4(ip16) else (AF_INET6, ip16)


def from_family(family: int, ip: bytes) -> bytes:
    return mapped(ip) if family == AF_INET else ip


def text(ip16: bytes) -> str:
    """Dotted or colon text, as the host's socket module takes it."""
    if is_v4(ip16):
        return str(ipaddress.IPv4Address(ip16[12:]))
    return str(ipaddress.IPv6Address(ip16))


def from_text(s: str) -> bytes:
    """ValueError for what is not an address."""
    if ":" in s:
        return ipaddress.IPv6Address(s).packed
    return mapped(ipaddress.IPv4Address(s).packed)


def parse_sockaddr(family: int, raw: bytes) -> tuple[Endpoint, int]:
    """A guest's sockaddr_in/sockaddr_in6 for a socket of this family:
    (endpoint, scope_id).  As inet_bind/inet6_bind: a short address is
    EINVAL; a wrong family EAFNOSUPPORT."""
    if len(raw) < 2:
        raise KernelError(E.EINVAL)
    (fam,) = struct.unpack_from("<H", raw)
    if family == AF_INET:
        if len(raw) < SIN_LEN:
            raise KernelError(E.EINVAL)
        if fam != AF_INET:
            raise KernelError(E.EAFNOSUPPORT)
        port, ip4 = struct.unpack_from("!H4s", raw, 2)
        return (mapped(ip4), port), 0
    if fam == AF_INET and len(raw) >= SIN_LEN:
        raise KernelError(E.EAFNOSUPPORT)   # inet6 calls: an AF_INET address is not taken
    if len(raw) < 24:
        raise KernelError(E.EINVAL)
    if fam != AF_INET6:
        raise KernelError(E.EAFNOSUPPORT)
    port, _flow, ip = struct.unpack_from("!HI16s", raw, 2)
    scope = struct.unpack_from("<I", raw, 24)[0] if len(raw) >= SIN6_LEN else 0
    return (ip, port), scope


def sockaddr(family: int, ep: Endpoint | None, scope: int = 0) -> bytes:
    """The sockaddr a getsockname/getpeername/recvfrom of this family shows."""
    ip, port = ep if ep is not None else (wildcard(family), 0)
    if family == AF_INET:
        return struct.pack("<H", AF_INET) + struct.pack("!H", port) + ip[12:] + bytes(8)
    return struct.pack("<H", AF_INET6) + struct.pack("!HI", port, 0) + ip + struct.pack("<I", scope)
