"""AF_PACKET sockets in a checkpoint (net/packet.py): SOCK_DGRAM and
SOCK_RAW, as a DHCP client holds them.

Saved: the common socket options (checkpoint/sockbase.py); the protocol
it was made with and the one it listens for (bind may change it), the
device it is bound to (0: all; the restoring boot makes the same
devices from the same command line, checkpoint/netstate.py), the
SOL_PACKET options (PACKET_AUXDATA, ORIGDEV, IGNORE_OUTGOING, VERSION,
RESERVE, LOSS, TIMESTAMP, COPY_THRESH, TX_HAS_OFF, QDISC_BYPASS), the
PACKET_STATISTICS counts, and the packets queued, each with its
sockaddr_ll.  A DHCP request the NAT was answering is
forgotten: its reply never comes, as a packet lost, and the client
sends again.  A socket with PACKET_RX_RING or PACKET_TX_RING rings
(memory mapped by the guest) or a socket filter is refused at the
checkpoint, as other families' sockets with filters are.
"""
from __future__ import annotations

from umlpy.checkpoint import image, sockbase
from umlpy.kernel.errors import KernelError
from umlpy.net import packet as P
from umlpy.net import packet_ring as R
from umlpy.net.packet import PacketSocket
from umlpy.net.socket import AF_PACKET, SOCK_DGRAM, SOCK_RAW

U32 = 1 << 32
S32 = (-(1 << 31), 1 << 31)
MAX_PACKET = 1 << 16
_BOOLS = ("auxdata", "origdev", "ignore_outgoing", "loss", "tx_has_off", "qdisc_bypass")
_INTS = {"reserve": (0, 1 << 31), "tstamp": S32, "copy_thresh": S32, "tp_packets": (0, U32),
         "tp_drops": (0, U32)}


def handles(f) -> bool:
    return isinstance(f, PacketSocket)


def savable(f) -> bool:
    return handles(f) and unsaved_file(None, f) is None


def unsaved_file(k, f: PacketSocket) -> str | None:
    """Why this packet socket cannot be saved, or None."""
    if f.pages is not None or f.rx is not None or f.tx is not None:
        return "a packet socket with mmap rings"
    if f.sk_filter is not None:
        return "a packet socket with a socket filter"
    return None


def save(f: PacketSocket) -> dict:
    return {"kind": "packet", "type": f.stype, "protocol": f.protocol, "proto_be": f.proto_be,
            "ifindex": f.ifindex, "version": f.version, **sockbase.save(f),
            **{key: getattr(f, key) for key in (*_BOOLS, *_INTS)},
            "queue": [[d.data.hex(), d.sender.hex()] for d in f.queue.q], "drops": f.queue.drops}


def make(k, o: image.Reader, flags: int) -> PacketSocket:
    """The socket with its options and queued packets, bound as it was."""
    stype = o.int("type", 0, 16)
    if stype not in (SOCK_DGRAM, SOCK_RAW):
        raise image.ImageError(f"manifest: {o.where}.type: not a packet socket type")
    s = PacketSocket(k.net, stype, o.int("protocol", *S32), flags)
    sockbase.make(s, o)
    s.proto_be, s.ifindex = o.int("proto_be", 0, 1 << 16), o.int("ifindex", 0, 1 << 31)
    if s.ifindex:
        try:
            k.net.by_index(s.ifindex)
        except KernelError:
            raise image.ImageError(f"manifest: {o.where}.ifindex: no device {s.ifindex}") from None
    s.version = o.int("version", 0, 8)
    if s.version not in R.HDR_SIZE:
        raise image.ImageError(f"manifest: {o.where}.version: not a TPACKET_ version")
    for key in _BOOLS:
        setattr(s, key, o.bool(key))
    for key, (lo, hi) in _INTS.items():
        setattr(s, key, o.int(key, lo, hi))
    s.queue.drops = o.int("drops", 0, U32)
    q = o.doc.get("queue")
    if not isinstance(q, list):
        raise image.ImageError(f"manifest: {o.where}.queue: not a list")
    for i, d in enumerate(q):
        r = image.Reader({"data": d[0], "sender": d[1]} if isinstance(d, list) and len(d) == 2 else {},
                         f"{o.where}.queue[{i}]")
        data, sender = r.hex("data", MAX_PACKET), r.hex("sender", P._SLL.size)
        if len(sender) != P._SLL.size or int.from_bytes(sender[:2], "little") != AF_PACKET:
            raise image.ImageError(f"manifest: {r.where}.sender: not a sockaddr_ll")
        sockbase.requeue(s, s.queue, data, sender, {"len": len(data)})
    return s
