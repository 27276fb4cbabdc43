"""The virtual network's DHCP server (RFC 2131), as QEMU's slirp runs one.

Leases come from 10.0.2.15 up, one per client hardware address, for a
day; every reply names 10.0.2.2 as server and router and 10.0.2.3 as the
DNS server.  `handle` takes one BOOTP message (a UDP payload, however it
reached us: a packet socket or a UDP socket) and returns the reply and
where it goes; the callers (net/packet.py, nat.py) carry it back.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from umlpy.kernel import printk
from umlpy.net.slirp import vnet

SERVER_PORT, CLIENT_PORT = 67, 68
BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MAGIC = b"\x63\x82\x53\x63"
OPT_PAD, OPT_END = 0, 255
OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_BROADCAST = 1, 3, 6, 28
OPT_REQUESTED_IP, OPT_LEASE, OPT_MSGTYPE, OPT_SERVER_ID = 50, 51, 53, 54
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
BOOTP_MIN = 300             # the smallest BOOTP message (RFC 951), replies are padded to it
FLAG_BROADCAST = 0x8000
POOL_SIZE = 16              # QEMU's NB_BOOTP_CLIENTS


@dataclass
class Request:
    xid: int
    flags: int
    ciaddr: bytes
    giaddr: bytes
    chaddr: bytes          # 16 bytes as sent
    msgtype: int
    options: dict[int, bytes]

    @property
    def mac(self) -> bytes:
        return self.chaddr[:6]


@dataclass
class Reply:
    data: bytes            # the BOOTP message
    dst: bytes             # IPv4 destination: the client's address or 255.255.255.255
    yiaddr: bytes


def parse_options(raw: bytes) -> dict[int, bytes] | None:
    """The options after the magic cookie (the first of a repeated code
    wins); None when they run past the message."""
    opts: dict[int, bytes] = {}
    i = 0
    while i < len(raw):
        code = raw[i]
        if code == OPT_END:
            return opts
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= len(raw) or i + 2 + raw[i + 1] > len(raw):
            return None
        opts.setdefault(code, raw[i + 2:i + 2 + raw[i + 1]])
        i += 2 + raw[i + 1]
    return opts


def parse(msg: bytes) -> Request | None:
    """A DHCP request, or None for anything else (BOOTP without a message
    type, replies, other hardware types, garbage)."""
    if len(msg) < _BOOTP.size + 4 or msg[_BOOTP.size:_BOOTP.size + 4] != MAGIC:
        return None
    op, htype, hlen, _hops, xid, _secs, flags, ciaddr, _y, _s, giaddr, chaddr, _sn, _f = \
        _BOOTP.unpack_from(msg)
    if op != BOOTREQUEST or htype != 1 or hlen != 6:
        return None
    opts = parse_options(msg[_BOOTP.size + 4:])
    if opts is None or len(opts.get(OPT_MSGTYPE, b"")) != 1:
        return None
    return Request(xid, flags, ciaddr, giaddr, chaddr, opts[OPT_MSGTYPE][0], opts)


def _opt(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


class DhcpServer:
    def __init__(self) -> None:
        self.leases: dict[bytes, bytes] = {}      # client MAC -> address

    # -- the pool ---------------------------------------------------------------
    def _pool(self) -> list[bytes]:
        first = vnet.GUEST[3]
        return [vnet.NETWORK[:3] + bytes([first + i]) for i in range(POOL_SIZE)]

    def allocate(self, mac: bytes, wanted: bytes | None = None) -> bytes | None:
        """The client's lease (a new one if it has none): the address it
        asks for if that one is free, else the first free one."""
        if mac in self.leases:
            return self.leases[mac]
        taken = set(self.leases.values())
        pool = self._pool()
        free = [a for a in pool if a not in taken]
        if not free:
            return None
        ip = wanted if wanted in free else free[0]
        self.leases[mac] = ip
        return ip

    def options(self) -> dict[int, bytes]:
        """What every lease carries (also what ip=dhcp applies)."""
        return {OPT_SUBNET: vnet.NETMASK, OPT_ROUTER: vnet.GATEWAY, OPT_DNS: vnet.DNS,
                OPT_BROADCAST: vnet.BROADCAST}

    # -- messages ---------------------------------------------------------------
    def handle(self, msg: bytes) -> Reply | None:
        req = parse(msg)
        if req is None:
            return None
        server_id = req.options.get(OPT_SERVER_ID)
        wanted = req.options.get(OPT_REQUESTED_IP)
        if wanted is not None and len(wanted) != 4:
            wanted = None
        if req.msgtype == DISCOVER:
            ip = self.allocate(req.mac, wanted)
            if ip is None:
                printk.pr_warn_ratelimited("slirp: DHCP pool exhausted")
                return None
            return self._reply(req, OFFER, ip)
        if req.msgtype == REQUEST:
            if server_id is not None and server_id != vnet.GATEWAY:
                return None                  # the client chose another server
            asked = wanted or req.ciaddr
            have = self.leases.get(req.mac)
            if have is None and asked in self._pool() and asked not in self.leases.values():
                have = self.allocate(req.mac, asked)    # INIT-REBOOT after our restart
            if have is None or asked != have:
                return self._reply(req, NAK, bytes(4))
            return self._reply(req, ACK, have)
        if req.msgtype == RELEASE:
            if self.leases.get(req.mac) == req.ciaddr:
                del self.leases[req.mac]
            return None
        if req.msgtype == INFORM:
            return self._reply(req, ACK, bytes(4), lease=False)
        if req.msgtype == DECLINE:
            printk.pr_warn_ratelimited(f"slirp: DHCP client declined {vnet.ip_text(wanted or bytes(4))}")
        return None

    def _reply(self, req: Request, msgtype: int, yiaddr: bytes, lease: bool = True) -> Reply:
        opts = _opt(OPT_MSGTYPE, bytes([msgtype])) + _opt(OPT_SERVER_ID, vnet.GATEWAY)
        if msgtype != NAK:
            if lease:
                opts += _opt(OPT_LEASE, struct.pack("!I", vnet.LEASE_SECONDS))
            opts += b"".join(_opt(c, v) for c, v in self.options().items())
        msg = _BOOTP.pack(BOOTREPLY, 1, 6, 0, req.xid, 0, req.flags, req.ciaddr, yiaddr,
                          vnet.GATEWAY, req.giaddr, req.chaddr, bytes(64), bytes(128))
        msg += MAGIC + opts + bytes([OPT_END])
        msg += bytes(max(0, BOOTP_MIN - len(msg)))
        # a renewing client (ciaddr set) is answered where it is; the rest
        # (no address yet, or a NAK) by broadcast, as clients without an
        # address can take nothing else
        unicast = req.ciaddr != bytes(4) and msgtype != NAK
        return Reply(msg, req.ciaddr if unicast else vnet.LIMITED_BROADCAST, yiaddr)
