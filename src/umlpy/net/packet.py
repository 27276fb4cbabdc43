"""AF_PACKET sockets, as far as a DHCP client needs them.

busybox udhcpc (and other DHCP clients) talk to the DHCP server before
eth0 has an address: they send whole IPv4/UDP datagrams through a packet
socket (SOCK_DGRAM: from the network header on; SOCK_RAW: with the
Ethernet header) and read the replies from one bound to ETH_P_IP.  The
kernel has no packets otherwise (it networks at socket level), so:
what a packet socket sends on eth0 goes to the user-mode network's link
(`nat.link_send`: its DHCP server), and what such a socket receives is
what that link sends back (`deliver`): the DHCP server's IPv4/UDP
replies to the client port, nothing else.  SO_ATTACH_FILTER is taken
(and the program checked for size) but not run: nothing else arrives.
Packet sockets need CAP_NET_RAW, as on Linux.
"""
from __future__ import annotations

import struct
import weakref

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_RAW
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.net import netdev
from umlpy.net.dgram import Datagram, RecvQueue
from umlpy.net.socket import (AF_PACKET, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_PEEK, MSG_TRUNC, SO,
                              SOCK_DGRAM, SOCK_RAW, Received, Socket, int_opt, register_family)
from umlpy.vfs.file import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

MSG_CMSG_COMPAT = 0x80000000
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP, PACKET_STATISTICS = 1, 2, 6
PACKET_AUXDATA, PACKET_ORIGDEV, PACKET_IGNORE_OUTGOING = 8, 9, 23
PACKET_HOST, PACKET_BROADCAST = 0, 1
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
ETH_HLEN = 14
TP_STATUS_USER = 1
BPF_MAXINSNS = 4096
_SLL = struct.Struct("<HHiHBB8s")          # sll_protocol is big-endian: swapped by hand
_AUX = struct.Struct("<IIIHHHH")
_FPROG = struct.Struct("<H6xQ")
_MREQ_MIN = 8

_sockets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # NetStack -> set


def _swap16(v: int) -> int:
    return ((v & 0xFF) << 8) | ((v >> 8) & 0xFF)


def sockaddr_ll(proto_be: int, ifindex: int, dev: netdev.NetDevice | None, pkttype: int = 0,
                addr: bytes | None = None) -> bytes:
    """A sockaddr_ll, as long as Linux reports it: up to the hardware
    address's end (getsockname), at least the whole struct (recvmsg pads)."""
    hw = (dev.hwaddr if addr is None else addr) if dev is not None else b""
    raw = _SLL.pack(AF_PACKET, proto_be, ifindex, dev.type if dev else 0, pkttype, len(hw), hw)
    return raw[:12 + len(hw)]


class PacketSocket(Socket):
    family = AF_PACKET

    def __init__(self, net, stype: int, protocol: int, flags: int) -> None:
        super().__init__(stype, protocol, flags)
        self.net = net
        self.proto_be = protocol & 0xFFFF     # the number as given: htons(ETH_P_...)
        self.ifindex = 0                      # bound device, 0 for all
        self.queue = RecvQueue(net)
        self.auxdata = False
        self.origdev = False
        self.ignore_outgoing = False
        self.filter = False
        _sockets.setdefault(net, set()).add(self)

    # -- delivery -----------------------------------------------------------------
    def wants(self, dev: netdev.NetDevice, ethertype: int) -> bool:
        mine = _swap16(self.proto_be)
        return self.ifindex in (0, dev.index) and mine in (ETH_P_ALL, ethertype)

    def receive(self, dev: netdev.NetDevice, frame: bytes, src_mac: bytes, pkttype: int) -> None:
        """One IPv4 packet arriving on dev (frame has its Ethernet header)."""
        data = frame if self.stype == SOCK_RAW else frame[ETH_HLEN:]
        sender = sockaddr_ll(_swap16(ETH_P_IP), dev.index, dev, pkttype, src_mac).ljust(_SLL.size, b"\0")
        self.queue.push(self, Datagram(data, sender, {"len": len(data)}))

    # -- proto_ops ----------------------------------------------------------------
    def release(self) -> None:
        _sockets.get(self.net, set()).discard(self)
        self.queue.clear()

    def poll(self) -> int:
        return (POLLIN | POLLRDNORM if len(self.queue) else 0) | POLLOUT | POLLWRNORM

    def _sll(self, raw: bytes) -> tuple[int, int, int, bytes]:
        """(protocol, ifindex, halen, addr) of a sockaddr_ll (packet_bind's checks)."""
        if len(raw) < _SLL.size:
            raise KernelError(E.EINVAL)
        fam, proto, ifindex, _hatype, _pkttype, halen, addr = _SLL.unpack_from(raw)
        if fam != AF_PACKET:
            raise KernelError(E.EINVAL)
        return proto, ifindex, halen, addr

    def bind(self, t, raw: bytes) -> None:
        proto, ifindex, _, _ = self._sll(raw)
        if ifindex:
            self.net.by_index(ifindex)
        self.ifindex = ifindex
        if proto:
            self.proto_be = proto

    def getname(self, t, peer: bool) -> bytes:
        if peer:
            raise KernelError(E.EOPNOTSUPP)
        return sockaddr_ll(self.proto_be, self.ifindex, self.net.devices.get(self.ifindex))

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        if addr is None:
            proto_be, ifindex = self.proto_be, self.ifindex
        else:
            proto_be, ifindex, halen, _ = self._sll(addr)
            if len(addr) < 12 + halen:
                raise KernelError(E.EINVAL)
        dev = self.net.devices.get(ifindex) if ifindex else None
        if dev is None:
            raise KernelError(E.ENXIO)
        if not dev.up:
            raise KernelError(E.ENETDOWN)
        hlen = ETH_HLEN if self.stype == SOCK_RAW else 0
        n = len(data)
        if n > dev.mtu + hlen:
            raise KernelError(E.EMSGSIZE)
        if n < hlen:
            raise KernelError(E.EINVAL)
        pkt = bytes(data[:n])
        ethertype = struct.unpack_from("!H", pkt, 12)[0] if hlen else _swap16(proto_be)
        dev.stats.tx_packets += 1
        dev.stats.tx_bytes += n + (ETH_HLEN - hlen)
        nat = self.net.nat
        if nat is not None and dev.type == netdev.ARPHRD_ETHER:
            nat.link_send(dev, ethertype, pkt[hlen:])
        return n

    def check_size(self, n: int) -> None:
        pass

    def recvmsg(self, t, n: int, flags: int) -> Received:
        if flags & ~(MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_COMPAT | MSG_ERRQUEUE):
            raise KernelError(E.EINVAL)       # packet_recvmsg takes no other flag
        if flags & MSG_ERRQUEUE:
            raise KernelError(E.EAGAIN)       # nothing ever lands on the error queue
        r, dg = self.queue.take(self, n, flags)
        if self.auxdata:
            net_off = ETH_HLEN if self.stype == SOCK_RAW else 0
            r.add_cmsg(SOL_PACKET, PACKET_AUXDATA,
                            _AUX.pack(TP_STATUS_USER, dg.meta["len"], len(r.data), 0, net_off, 0, 0))
        return r

    def getsockopt(self, t, level: int, opt: int, cap: int) -> bytes:
        if level != SOL_PACKET:
            return super().getsockopt(t, level, opt, cap)
        if opt == PACKET_AUXDATA:
            return struct.pack("<i", int(self.auxdata))
        if opt == PACKET_ORIGDEV:
            return struct.pack("<i", int(self.origdev))
        if opt == PACKET_IGNORE_OUTGOING:
            return struct.pack("<i", int(self.ignore_outgoing))
        if opt == PACKET_STATISTICS:
            drops, self.queue.drops = self.queue.drops, 0
            return struct.pack("<II", len(self.queue) + drops, drops)
        raise KernelError(E.ENOPROTOOPT)

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        if level != SOL_PACKET:
            super().setsockopt(t, level, opt, raw)
            return
        if opt in (PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP):
            if len(raw) < _MREQ_MIN:
                raise KernelError(E.EINVAL)
            self.net.by_index(struct.unpack_from("<i", raw)[0])
        elif opt == PACKET_AUXDATA:
            self.auxdata = bool(int_opt(raw))
        elif opt == PACKET_ORIGDEV:
            self.origdev = bool(int_opt(raw))
        elif opt == PACKET_IGNORE_OUTGOING:
            v = int_opt(raw)
            if v not in (0, 1):
                raise KernelError(E.EINVAL)
            self.ignore_outgoing = bool(v)
        else:
            raise KernelError(E.ENOPROTOOPT)

    def set_special(self, t, opt: int, raw: bytes) -> None:
        if opt == SO["SO_ATTACH_FILTER"]:
            if len(raw) != _FPROG.size:
                raise KernelError(E.EINVAL)
            count, prog = _FPROG.unpack(raw)
            if not 0 < count <= BPF_MAXINSNS:
                raise KernelError(E.EINVAL)
            t.mem.read(prog, count * 8)       # EFAULT, as sk_attach_filter's copy
            self.filter = True
        elif opt == SO["SO_DETACH_FILTER"]:
            if not self.filter:
                raise KernelError(E.ENOENT)
            self.filter = False
        elif opt in (SO["SO_BINDTODEVICE"], SO["SO_BINDTOIFINDEX"]):
            # checked only: packet_rcv does not look at it, bind() chooses the device
            self.net.device_option(raw, opt == SO["SO_BINDTODEVICE"])
        else:
            super().set_special(t, opt, raw)


def deliver(net, dev: netdev.NetDevice, ip_packet: bytes, dst_mac: bytes, src_mac: bytes) -> None:
    """An IPv4 packet arriving on dev from src_mac: a copy for every packet
    socket that listens there for IPv4."""
    pkttype = PACKET_BROADCAST if dst_mac == b"\xff" * 6 else PACKET_HOST
    frame = dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + ip_packet
    dev.stats.rx_packets += 1
    dev.stats.rx_bytes += len(frame)
    for s in list(_sockets.get(net, ())):
        if s.wants(dev, ETH_P_IP):
            s.receive(dev, frame, src_mac, pkttype)


def _new(t, stype: int, protocol: int, flags: int) -> PacketSocket:
    """packet_create: CAP_NET_RAW first, then the type (the obsolete
    SOCK_PACKET is not kept)."""
    if not capable(t.proc.creds, CAP_NET_RAW):
        raise KernelError(E.EPERM)
    if stype not in (SOCK_DGRAM, SOCK_RAW):
        raise KernelError(E.ESOCKTNOSUPPORT)
    return PacketSocket(t.kernel.net, stype, protocol, flags)


def register() -> None:
    register_family(AF_PACKET, _new)
