"""The virtual network behind eth0=user: QEMU's default addresses.

Addresses are kept packed (4 bytes); `m()` gives the kernel's inet form
(16 bytes, v4-mapped, net/inet/addr.py).
"""
from __future__ import annotations

from umlpy.net.inet.addr import mapped

NETWORK = bytes([10, 0, 2, 0])
PREFIXLEN = 24
NETMASK = bytes([255, 255, 255, 0])
BROADCAST = bytes([10, 0, 2, 255])
GATEWAY = bytes([10, 0, 2, 2])          # the host's loopback, seen from the guest
DNS = bytes([10, 0, 2, 3])              # the DNS forwarder
GUEST = bytes([10, 0, 2, 15])           # the first DHCP address, hostfwd's default target
LIMITED_BROADCAST = bytes([255, 255, 255, 255])
HOST_LOOPBACK = bytes([127, 0, 0, 1])
GUEST_MAC = bytes.fromhex("525400123456")   # QEMU's default NIC address
GATEWAY_MAC = bytes.fromhex("52550a000202")  # slirp's: 52:55 then the address
LEASE_SECONDS = 86400                   # QEMU's DHCP lease time


def m(ip4: bytes) -> bytes:
    return mapped(ip4)


def in_network(ip4: bytes) -> bool:
    return ip4[:3] == NETWORK[:3]


def ip_text(ip4: bytes) -> str:
    return ".".join(str(b) for b in ip4)
