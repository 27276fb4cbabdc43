"""AF_PACKET sockets, as far as a DHCP client needs them.

busybox udhcpc (and other DHCP clients) talk to the DHCP server before
eth0 has an address: they send whole IPv4/UDP datagrams through a packet
socket (SOCK_DGRAM: from the network header on; SOCK_RAW: with the
Ethernet header) and read the replies from one bound to ETH_P_IP.  The
kernel has no packets otherwise (it networks at socket level), so:
what a packet socket sends on eth0 goes to the user-mode network's link
(`nat.link_send`: its DHCP server), and what such a socket receives is
what that link sends back (`deliver`): the DHCP server's IPv4/UDP
replies to the client port, nothing else.  A socket filter
(SO_ATTACH_FILTER, SO_ATTACH_BPF) runs on each as packet_rcv's run_filter
does: over the frame from its link header (SOCK_RAW) or its network header
(SOCK_DGRAM); 0 drops the packet, less than its length cuts the copy
(the length the socket reports stays the packet's).  Packet sockets need
CAP_NET_RAW, as on Linux.

PACKET_RX_RING and PACKET_TX_RING (net/packet_ring.py) give a socket
mmap rings: received packets go into the RX ring instead of the queue
(tpacket_rcv), and with a TX ring every send walks the frames the guest
marked for sending (tpacket_snd).  Fanout and virtio-net headers are not
kept: they are refused with Linux's error and a log line.
"""
from __future__ import annotations

import struct
import weakref

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_RAW
from umlpy.kernel import timekeeping
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import mapped_anywhere
from umlpy.kernel.printk import pr_info_ratelimited
from umlpy.net import netdev
from umlpy.net import packet_ring as R
from umlpy.net.dgram import Datagram, RecvQueue
from umlpy.net.netdev import net_capable, net_of
from umlpy.net.socket import (AF_PACKET, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_PEEK, MSG_TRUNC,
                              SOCK_DGRAM, SOCK_RAW, Received, Socket, int_opt, register_family)
from umlpy.vfs.file import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

MSG_CMSG_COMPAT = 0x80000000
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP, PACKET_RX_RING, PACKET_STATISTICS = 1, 2, 5, 6
PACKET_COPY_THRESH, PACKET_AUXDATA, PACKET_ORIGDEV, PACKET_VERSION = 7, 8, 9, 10
PACKET_HDRLEN, PACKET_RESERVE, PACKET_TX_RING, PACKET_LOSS, PACKET_VNET_HDR = 11, 12, 13, 14, 15
PACKET_TIMESTAMP, PACKET_FANOUT, PACKET_TX_HAS_OFF, PACKET_QDISC_BYPASS = 17, 18, 19, 20
PACKET_ROLLOVER_STATS, PACKET_FANOUT_DATA, PACKET_IGNORE_OUTGOING = 21, 22, 23
PACKET_HOST, PACKET_BROADCAST = 0, 1
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
ETH_HLEN = 14
VLAN_HLEN = 4
_SLL = struct.Struct("<HHiHBB8s")          # sll_protocol is big-endian: swapped by hand
_AUX = struct.Struct("<IIIHHHH")
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


def _int_exact(raw: bytes) -> int:
    """An int option packet_setsockopt takes only at exactly its size."""
    if len(raw) != 4:
        raise KernelError(E.EINVAL)
    return struct.unpack("<i", raw)[0]


def _unsupported(what: str, err: int) -> KernelError:
    """A feature this kernel does not have: Linux's error for a socket
    that cannot use it, and a line in the log saying why."""
    pr_info_ratelimited(f"af_packet: {what} is not supported")
    return KernelError(err)


class PacketSocket(Socket):
    family = AF_PACKET
    runs_sk_filter = True

    def __init__(self, net, stype: int, protocol: int, flags: int) -> None:
        super().__init__(stype, protocol, flags)
        self.net = net
        self.proto_be = protocol & 0xFFFF     # the number as given: htons(ETH_P_...)
        self.ifindex = 0                      # bound device, 0 for all
        self.queue = RecvQueue(net)
        self.auxdata = False
        self.origdev = False
        self.ignore_outgoing = False
        self.version = R.TPACKET_V1
        self.reserve = 0                      # PACKET_RESERVE: room before each frame's data
        self.loss = False                     # PACKET_LOSS: skip bad TX frames
        self.tstamp = 0                       # PACKET_TIMESTAMP: hardware stamps, which never come
        self.copy_thresh = 0                  # PACKET_COPY_THRESH: truncated frames also queued
        self.tx_has_off = False               # PACKET_TX_HAS_OFF: TX frames say where data starts
        self.qdisc_bypass = False             # PACKET_QDISC_BYPASS: there is no qdisc to bypass
        self.pages: R.RingPages | None = None
        self.rx: R.Ring | None = None
        self.tx: R.Ring | None = None
        self.tp_packets = 0                   # PACKET_STATISTICS, cleared when read
        self.tp_drops = 0
        _sockets.setdefault(net, set()).add(self)

    # -- delivery -----------------------------------------------------------------
    def wants(self, dev: netdev.NetDevice, ethertype: int) -> bool:
        mine = _swap16(self.proto_be)
        return self.ifindex in (0, dev.index) and mine in (ETH_P_ALL, ethertype)

    def receive(self, dev: netdev.NetDevice, frame: bytes, src_mac: bytes, pkttype: int) -> None:
        """One IPv4 packet arriving on dev (frame has its Ethernet header):
        into the RX ring when there is one (tpacket_rcv), else the queue."""
        maclen = ETH_HLEN if self.stype == SOCK_RAW else 0
        data = frame[ETH_HLEN - maclen:]
        kept = self.filtered(data, 0, ETH_P_IP)      # run_filter: dropped (not counted), or cut
        if kept is None:
            return
        if self.rx is None:
            sender = sockaddr_ll(_swap16(ETH_P_IP), dev.index, dev, pkttype, src_mac).ljust(_SLL.size, b"\0")
            self._queue(kept, sender, len(data))
            return
        sll = sockaddr_ll(_swap16(ETH_P_IP), dev.index, dev, pkttype, src_mac)
        rxhash = hash((frame[26:34], frame[23:24])) & 0xFFFFFFFF    # a flow's addresses, randomly seeded
        self._ring_receive(R.Received(kept, maclen, sll, rxhash, len(data)))

    def _queue(self, data: bytes, sender: bytes, length: int) -> None:
        if self.queue.push(self, Datagram(data, sender, {"len": length})):
            self.tp_packets += 1
        else:
            self.tp_drops += 1

    def _ring_receive(self, pkt: R.Received) -> None:
        """tpacket_rcv: the packet into the frame at the head (V1/V2, only
        if the kernel owns it) or the active block (V3); dropped and
        counted otherwise.  A packet longer than its frame is cut, and with
        PACKET_COPY_THRESH also queued whole (TP_STATUS_COPY)."""
        ring = self.rx
        macoff, netoff = ring.offsets(self.reserve, pkt.maclen)
        snaplen = len(pkt.data)
        if netoff > R.USHRT_MAX:
            self.tp_drops += 1
            return
        copy = False
        blocks = isinstance(ring, R.BlockRing)
        if blocks:
            if macoff + snaplen > ring.max_frame_len:
                snaplen = ring.max_frame_len - macoff
                if snaplen < 0:
                    snaplen, macoff = 0, ring.max_frame_len
            off = ring.slot(macoff + snaplen)
        else:
            if macoff + snaplen > ring.req.frame_size:
                copy = bool(self.copy_thresh) and self.queue.mem < self.rcvbuf
                snaplen = max(ring.req.frame_size - macoff, 0)
            off = ring.frame(ring.head)
            if ring.status(off) != R.TP_STATUS_KERNEL:
                off = None
        if off is None:
            self.tp_drops += 1
            self.wake()
            return
        status = R.TP_STATUS_USER
        if not blocks:
            ring.advance()
            if self.tp_drops:
                status |= R.TP_STATUS_LOSING
        self.tp_packets += 1
        if copy:
            status |= R.TP_STATUS_COPY
            self.queue.push(self, Datagram(pkt.data, bytes(_SLL.size), {"len": pkt.length}))
        ring.fill(off, pkt, macoff, netoff, snaplen, status, timekeeping.realtime_ns())
        if not blocks:
            self.wake()

    # -- proto_ops ----------------------------------------------------------------
    def release(self) -> None:
        _sockets.get(self.net, set()).discard(self)
        self.queue.clear()
        self._drop_rings()

    def _drop_rings(self) -> None:
        """Forget both rings (their pages live on while a mapping shows them)."""
        if isinstance(self.rx, R.BlockRing):
            self.rx.stop()
        self.pages = self.rx = self.tx = None

    def poll(self) -> int:
        mask = (POLLIN | POLLRDNORM if len(self.queue) else 0) | POLLOUT | POLLWRNORM
        if self.rx is not None and self.rx.user_ready():
            mask |= POLLIN | POLLRDNORM
        return mask

    def mmap_pages(self, off: int, size: int) -> R.RingPages:
        """packet_mmap: both rings at once, from offset 0, at exactly their size."""
        if off or self.pages is None or size != self.pages.size:
            raise KernelError(E.EINVAL)
        return self.pages

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

    def _route(self, addr: bytes | None) -> tuple[netdev.NetDevice, int]:
        """The device and protocol a send goes to: the bound ones, or the
        sockaddr_ll given (packet_snd and tpacket_snd alike)."""
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
        return dev, proto_be

    def _xmit(self, dev: netdev.NetDevice, proto_be: int, pkt: bytes, dest: bool) -> None:
        """One packet out on dev: SOCK_RAW gives the Ethernet header,
        SOCK_DGRAM has the kernel build it, which needs a destination
        (except on loopback: eth_header zeroes it there)."""
        hlen = ETH_HLEN if self.stype == SOCK_RAW else 0
        n = len(pkt)
        if n > dev.mtu + hlen:
            raise KernelError(E.EMSGSIZE)
        if n < hlen or not (hlen or dest or dev.type == netdev.ARPHRD_LOOPBACK):
            raise KernelError(E.EINVAL)
        ethertype = struct.unpack_from("!H", pkt, 12)[0] if hlen else _swap16(proto_be)
        dev.stats.tx_packets += 1
        dev.stats.tx_bytes += n + (ETH_HLEN - hlen)
        nat = self.net.nat
        if nat is not None and dev.type == netdev.ARPHRD_ETHER:
            nat.link_send(dev, ethertype, pkt[hlen:])

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        dev, proto_be = self._route(addr)
        if self.tx is not None:
            return self._ring_send(dev, proto_be, addr is not None)
        pkt = bytes(data[:len(data)])
        self._xmit(dev, proto_be, pkt, addr is not None)
        return len(pkt)

    def _ring_send(self, dev: netdev.NetDevice, proto_be: int, dest: bool) -> int:
        """tpacket_snd: send the frames marked TP_STATUS_SEND_REQUEST from
        the head on, each given back TP_STATUS_AVAILABLE; a bad one stops
        the walk marked TP_STATUS_WRONG_FORMAT with its error (with
        PACKET_LOSS it is skipped).  The bytes sent are the result.  One
        pass at most: a guest thread re-marking frames cannot keep the
        kernel here."""
        ring = self.tx
        reserve = ETH_HLEN if self.stype == SOCK_RAW else 0
        size_max = min(ring.req.frame_size - (ring.hdrlen - R.SLL_SIZE), dev.mtu + reserve + VLAN_HLEN)
        sent = 0
        for _ in range(ring.req.frame_nr):
            off = ring.frame(ring.head)
            if ring.status(off) != R.TP_STATUS_SEND_REQUEST:
                break
            try:
                pkt = ring.parse_tx(off, size_max, self.tx_has_off, self.stype == SOCK_RAW)
                self._xmit(dev, proto_be, pkt, dest)
            except KernelError:
                if not self.loss:
                    ring.set_status(off, R.TP_STATUS_WRONG_FORMAT)
                    raise
                pkt = b""
            ring.set_status(off, R.TP_STATUS_AVAILABLE)
            ring.advance()
            sent += len(pkt)
        return sent

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
                            _AUX.pack(R.TP_STATUS_USER, dg.meta["len"], len(dg.data), 0, net_off, 0, 0))
        return r

    # -- options ------------------------------------------------------------------
    def _stats(self) -> bytes:
        """PACKET_STATISTICS, cleared by reading: tpacket_stats, or
        tpacket_stats_v3 (with the times the V3 ring froze) on V3."""
        packets, drops = self.tp_packets, self.tp_drops
        self.tp_packets = self.tp_drops = 0
        if self.version != R.TPACKET_V3:
            return struct.pack("<II", packets + drops, drops)
        frozen = 0
        if isinstance(self.rx, R.BlockRing):
            frozen, self.rx.freeze_count = self.rx.freeze_count, 0
        return struct.pack("<III", packets + drops, drops, frozen)

    def getsockopt(self, t, level: int, opt: int, cap: int, arg) -> bytes:
        if level != SOL_PACKET:
            return super().getsockopt(t, level, opt, cap, arg)
        if opt == PACKET_STATISTICS:
            return self._stats()
        if opt == PACKET_HDRLEN:
            if cap < 4:
                raise KernelError(E.EINVAL)
            version = struct.unpack("<i", arg[0:4])[0]
            if version not in R.HDR_SIZE:
                raise KernelError(E.EINVAL)
            return struct.pack("<i", R.HDR_SIZE[version])
        if opt == PACKET_ROLLOVER_STATS:
            raise KernelError(E.EINVAL)       # no fanout, so no rollover
        v = {PACKET_AUXDATA: self.auxdata, PACKET_ORIGDEV: self.origdev,
             PACKET_IGNORE_OUTGOING: self.ignore_outgoing, PACKET_VERSION: self.version,
             PACKET_RESERVE: self.reserve, PACKET_LOSS: self.loss, PACKET_TIMESTAMP: self.tstamp,
             PACKET_TX_HAS_OFF: self.tx_has_off, PACKET_QDISC_BYPASS: self.qdisc_bypass,
             PACKET_VNET_HDR: 0, PACKET_FANOUT: 0}.get(opt)
        if v is None:
            raise KernelError(E.ENOPROTOOPT)
        return struct.pack("<i", int(v))

    def _no_ring(self) -> None:
        """Options that shape the rings: EBUSY once one exists."""
        if self.rx is not None or self.tx is not None:
            raise KernelError(E.EBUSY)

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        if level != SOL_PACKET:
            super().setsockopt(t, level, opt, raw)
            return
        if opt in (PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP):
            if len(raw) < _MREQ_MIN:
                raise KernelError(E.EINVAL)
            self.net.by_index(struct.unpack_from("<i", raw)[0])
        elif opt in (PACKET_RX_RING, PACKET_TX_RING):
            self._set_ring(t, R.RingReq.parse(raw, self.version), opt == PACKET_TX_RING)
        elif opt == PACKET_AUXDATA:
            self.auxdata = bool(int_opt(raw))
        elif opt == PACKET_ORIGDEV:
            self.origdev = bool(int_opt(raw))
        elif opt == PACKET_IGNORE_OUTGOING:
            v = int_opt(raw)
            if v not in (0, 1):
                raise KernelError(E.EINVAL)
            self.ignore_outgoing = bool(v)
        elif opt == PACKET_VERSION:
            v = _int_exact(raw)
            if v not in R.HDR_SIZE:
                raise KernelError(E.EINVAL)
            self._no_ring()
            self.version = v
        elif opt == PACKET_RESERVE:
            v = _int_exact(raw)
            if v < 0:
                raise KernelError(E.EINVAL)     # an unsigned past INT_MAX
            self._no_ring()
            self.reserve = v
        elif opt == PACKET_LOSS:
            v = _int_exact(raw)
            self._no_ring()
            self.loss = bool(v)
        elif opt == PACKET_TX_HAS_OFF:
            v = _int_exact(raw)
            if self.rx is None and self.tx is None:     # else ignored, and still 0
                self.tx_has_off = bool(v)
        elif opt == PACKET_TIMESTAMP:
            self.tstamp = _int_exact(raw)
        elif opt == PACKET_COPY_THRESH:
            self.copy_thresh = _int_exact(raw)
        elif opt == PACKET_QDISC_BYPASS:
            self.qdisc_bypass = bool(_int_exact(raw))
        elif opt == PACKET_FANOUT:
            _int_exact(raw)
            raise _unsupported("PACKET_FANOUT", E.EINVAL)
        elif opt == PACKET_FANOUT_DATA:
            raise KernelError(E.EINVAL)         # never in a fanout group
        elif opt == PACKET_VNET_HDR:
            if self.stype != SOCK_RAW or len(raw) < 4:
                raise KernelError(E.EINVAL)
            self._no_ring()
            if int_opt(raw):
                raise _unsupported("PACKET_VNET_HDR", E.EINVAL)
        else:
            raise KernelError(E.ENOPROTOOPT)

    def _set_ring(self, t, req: R.RingReq, tx: bool) -> None:
        """packet_set_ring: make (tp_block_nr > 0) or free a ring, in Linux's
        order of checks; both rings are laid out afresh in new pages, the
        other ring's bytes moved along (neither is mapped: EBUSY)."""
        if self.pages is not None and mapped_anywhere(t.kernel.procs, self.pages):
            raise KernelError(E.EBUSY)
        new = None
        if req.block_nr:
            if (self.tx if tx else self.rx) is not None:
                raise KernelError(E.EBUSY)
            per_block = R.check_req(req, self.version, self.reserve)
            other = self.rx if tx else self.tx
            total = req.size + (other.req.size if other is not None else 0)
            pages = R.RingPages(self.net, total, self.pages)
            if tx and self.version == R.TPACKET_V3 and \
                    (req.retire_blk_tov or req.sizeof_priv or req.feature_req_word):
                raise KernelError(E.EINVAL)     # block-based sending is not supported
            if tx or self.version != R.TPACKET_V3:
                new = R.Ring(pages, 0, req, self.version, per_block)
            else:
                new = R.BlockRing(pages, 0, req, self.version, per_block, t.kernel.sched, self)
        elif req.frame_nr:
            raise KernelError(E.EINVAL)
        if not tx:
            self.queue.clear()                  # skb_queue_purge of the receive queue
            if isinstance(self.rx, R.BlockRing):
                self.rx.stop()
        if new is None and (self.tx if tx else self.rx) is None:
            return
        self._place(*((self.rx, new) if tx else (new, self.tx)))

    def _place(self, rx: R.Ring | None, tx: R.Ring | None) -> None:
        """Lay out RX then TX in one set of pages (the new ring's, or fresh
        ones for the ring that stays when the other is freed)."""
        new_pages = next((r.pages for r in (rx, tx) if r is not None and r.pages is not self.pages),
                         None)
        if new_pages is None and (rx or tx) is not None:
            kept = rx or tx
            new_pages = R.RingPages(self.net, kept.req.size, self.pages)
        base = 0
        for ring in (rx, tx):
            if ring is not None:
                if ring.pages is new_pages:
                    ring.base = base
                else:
                    ring.moved(new_pages, base)
                base += ring.req.size
        self.rx, self.tx, self.pages = rx, tx, new_pages


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
    if not net_capable(t, CAP_NET_RAW):
        raise KernelError(E.EPERM)
    if stype not in (SOCK_DGRAM, SOCK_RAW):
        raise KernelError(E.ESOCKTNOSUPPORT)
    return PacketSocket(net_of(t), stype, protocol, flags)


def register() -> None:
    register_family(AF_PACKET, _new)
