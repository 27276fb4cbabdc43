"""IPv4, UDP and ICMP headers as they appear on the wire.

The kernel works at socket level, but a few guests see packets: packet
sockets (udhcpc sends and receives whole IPv4/UDP datagrams), raw ICMP
sockets (replies carry their IPv4 header).  These helpers build and
parse exactly those headers, with the Internet checksum (RFC 1071).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

IPPROTO_ICMP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 17, 58
_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
IP_HLEN, UDP_HLEN = _IP.size, _UDP.size
IP_DF = 0x4000


def checksum(data: bytes) -> int:
    """The ones' complement of the ones' complement sum of 16-bit words.
    Summed as little-endian words (the sum is byte-order independent) and
    swapped at the end: one C-level sum instead of a Python loop."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    s = sum(memoryview(data).cast("H"))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    return ((s & 0xFF) << 8) | (s >> 8)


def ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int, *, ttl: int = 64,
                ident: int = 0, df: bool = False, tos: int = 0) -> bytes:
    hdr = _IP.pack(0x45, tos, IP_HLEN + payload_len, ident & 0xFFFF, IP_DF if df else 0,
                   ttl, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]


@dataclass
class Ipv4:
    src: bytes
    dst: bytes
    proto: int
    ttl: int
    payload: bytes


def parse_ipv4(pkt: bytes) -> Ipv4 | None:
    """An IPv4 datagram's header fields and payload; None when it is not
    a whole, unfragmented IPv4 datagram with a good header checksum."""
    if len(pkt) < IP_HLEN:
        return None
    vihl, _tos, total, _ident, frag, ttl, proto, _csum, src, dst = _IP.unpack_from(pkt)
    hlen = (vihl & 0xF) * 4
    if vihl >> 4 != 4 or hlen < IP_HLEN or not hlen <= total <= len(pkt):
        return None
    if frag & 0x3FFF or checksum(pkt[:hlen]) != 0:
        return None
    return Ipv4(src, dst, proto, ttl, bytes(pkt[hlen:total]))


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


def udp_datagram(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    """A UDP header and payload with its checksum (over the pseudo-header)."""
    length = UDP_HLEN + len(payload)
    hdr = _UDP.pack(sport, dport, length, 0)
    csum = checksum(_pseudo(src, dst, IPPROTO_UDP, length) + hdr + payload) or 0xFFFF
    return _UDP.pack(sport, dport, length, csum) + payload


def ipv4_udp(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    """A whole IPv4/UDP datagram."""
    udp = udp_datagram(src, sport, dst, dport, payload)
    return ipv4_header(src, dst, IPPROTO_UDP, len(udp)) + udp


def parse_udp(ip: Ipv4) -> tuple[int, int, bytes] | None:
    """(source port, destination port, payload) of a UDP datagram whose
    length field fits and whose checksum (if any) is right."""
    if ip.proto != IPPROTO_UDP or len(ip.payload) < UDP_HLEN:
        return None
    sport, dport, length, csum = _UDP.unpack_from(ip.payload)
    if not UDP_HLEN <= length <= len(ip.payload):
        return None
    seg = ip.payload[:length]
    if csum and checksum(_pseudo(ip.src, ip.dst, IPPROTO_UDP, length) + seg) != 0:
        return None
    return sport, dport, seg[UDP_HLEN:]


def icmp6_checksum(src: bytes, dst: bytes, msg: bytes) -> int:
    """ICMPv6's checksum covers an IPv6 pseudo-header (RFC 4443)."""
    return checksum(src + dst + struct.pack("!I3xB", len(msg), IPPROTO_ICMPV6) + msg)
