"""Inet sockets in a checkpoint: TCP, UDP, ICMP ("ping") and raw sockets,
IPv4 and IPv6, on the machine's private loopback.

Saved: each socket's options and addresses, whether it holds its port in
the port table (an accepted connection shares its listener's port without
holding it, as Linux's established sockets do), a listener's backlog, a
connection's state and the bytes queued towards it, with its far end (the
peer socket, by its index in the image, as unix peers are), the bytes
TCP_CORK or MSG_MORE holds back with the time left before they are
pushed, and a UDP
socket's queued datagrams, the datagram UDP_CORK or MSG_MORE is building
(its source, destination, bytes, TTL and TOS), and a UDP-Lite socket's
checksum coverage; a ping or raw socket's (net/inet/icmp.py)
identifier (a ping socket's "port", in the ping table), filters
(ICMP_FILTER, ICMP6_FILTER), IPV6_CHECKSUM and the replies queued, each
with its source and TTL.  An echo request the NAT was answering is
forgotten: its reply never comes, as a packet lost.  A connection the user-mode NAT carries (to
the host or beyond) is restored reset, as after a network outage: its
socket reports ECONNRESET.  A listener's connections not yet accepted are
saved as connections no fd holds, and queued again.  Refused
(checkpoint/dump.py): connects waiting for room in a full accept queue,
filters.
"""
from __future__ import annotations

from collections import deque

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.checkpoint import image, sockbase
from umlpy.net.inet import addr as A
from umlpy.net.inet import icmp
from umlpy.net.inet import tcp as T
from umlpy.net.inet.icmp import IcmpSocket
from umlpy.net.inet.family import IPPROTO_UDPLITE
from umlpy.net.inet.sock import IGMP_MAX_MEMBERSHIPS, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW
from umlpy.net.inet.tcp import LoopEnd, TcpSocket
from umlpy.net.inet.udp import MAX_V4_PAYLOAD, MAX_V6_PAYLOAD, UDP_HLEN, Datagram, UdpLiteSocket, UdpSocket
from umlpy.kernel.errors import KernelError
from umlpy.net.unix import truesize

U32 = 1 << 32
MAX_QUEUED = 1 << 26        # bytes of one queue a restore takes
TCP_STATES = (T.ESTABLISHED, T.FIN_WAIT1, T.FIN_WAIT2, T.CLOSE, T.CLOSE_WAIT, T.LAST_ACK, T.LISTEN, T.CLOSING)
_BASE_INTS = {"uid": (0, U32), "ttl": (-1, 256), "tos": (0, 256), "mcast_ttl": (0, 256), "hops": (-1, 256),
              "mcast_hops": (-1, 256), "mc_index": (0, U32)}
_BASE_BOOLS = ("listening", "bound_port", "bound_addr", "v6only")
_TCP_INTS = {"state": (0, 16), "sock_state": (0, 4), "shut": (0, 4), "backlog": (0, U32), "maxseg": (0, U32),
             "bytes_received": (0, 1 << 63), "bytes_acked": (0, 1 << 63)}


def savable(f) -> bool:
    """A TCP or UDP socket this module saves."""
    if isinstance(f, TcpSocket):
        return not f.syn_q and f.listener is None and f.state in TCP_STATES and f.sk_filter is None
    if isinstance(f, IcmpSocket):
        return f.sk_filter is None
    return type(f) in (UdpSocket, UdpLiteSocket) and f.sk_filter is None


def _ep(e) -> list | None:
    return None if e is None else [e[0].hex(), e[1]]


def _in_table(f) -> bool:
    return f.local is not None and any(o is f for o in f.table().ports.get(f.local[1], ()))


def save(f) -> dict:
    e = {"kind": "inet", "family": f.family, "type": f.stype, "protocol": f.protocol, **sockbase.save(f),
         "local": _ep(f.local), "remote": _ep(f.remote),
         "saddr": None if f.saddr is None else f.saddr.hex(), "in_table": _in_table(f),
         "ints": [[lvl, opt, v] for (lvl, opt), v in sorted(f.ints.items())],
         "groups": [[g.hex(), ifindex] for g, ifindex in sorted(f.groups)], "mc_addr": f.mc_addr.hex(),
         **{k: getattr(f, k) for k in _BASE_INTS}, **{k: getattr(f, k) for k in _BASE_BOOLS}}
    if isinstance(f, TcpSocket):
        nat = f.ep is not None and not isinstance(f.ep, LoopEnd)
        e.update({k: getattr(f, k) for k in _TCP_INTS}, rx=f.rx.take(len(f.rx), peek=True).hex(),
                 far_closed=f.far_closed, fin_received=f.fin_received, nat_reset=nat,
                 tcp_ints=[[k, v] for k, v in sorted(f.tcp_ints.items())], congestion=f.congestion.hex())
        if f.corked is not None:        # with the time its push has left
            timer = f._cork_timer
            e.update(corked=bytes(f.corked).hex(),
                     cork_left_ns=0 if timer is None else max(0, timer.deadline - clock.monotonic_ns()))
    elif isinstance(f, IcmpSocket):
        e.update(shut=f.shut, icmp_filter=f.icmp_filter, icmp6_filter=f.icmp6_filter.hex(),
                 checksum_offset=f.checksum_offset, rfc2292_hoplimit=f.rfc2292_hoplimit, drops=f.queue.drops,
                 queue=[[d.data.hex(), d.sender.hex(), d.meta["ttl"]] for d in f.queue.q])
    else:
        p = f.pending
        e.update(shut=f.shut, cork=f.cork, drops=f.drops,
                 rxq=[[d.data.hex(), _ep(d.src), d.dst.hex(), d.ttl, d.tos] for d in f.rxq],
                 pending=None if p is None else [p[0].hex(), _ep(p[1]), bytes(p[2]).hex(), *p[3]])
        if isinstance(f, UdpLiteSocket):
            e.update(pcslen=f.pcslen, pcrlen=f.pcrlen, pcflag=f.pcflag)
    return e


def links(f, index) -> dict:
    """A loopback connection's far end, and a listener's connections not
    yet accepted, by their index in the image (-1: none; dump.py gives
    an index to a description no fd holds)."""
    e = {"peer": index(f.ep.peer) if isinstance(f, TcpSocket) and isinstance(f.ep, LoopEnd) else -1}
    if isinstance(f, TcpSocket) and f.accept_q:
        e["accept_q"] = [index(c) for c in f.accept_q]
    return e


def _addr_pair(v, lo: int, hi: int, where: str, what: str) -> tuple[bytes, int]:
    """An image's [16-byte address as hex, an integer in [lo, hi)]: an
    endpoint's port, a multicast group's interface."""
    if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and type(v[1]) is int
            and lo <= v[1] < hi):
        raise image.ImageError(f"{where}: not an [address, {what}]")
    try:
        ip = bytes.fromhex(v[0])
    except ValueError:
        ip = b""
    if len(ip) != 16:
        raise image.ImageError(f"{where}: not an address")
    return ip, v[1]


def _read_ep(o: image.Reader, key: str):
    v = o.doc.get(key)
    return None if v is None else _addr_pair(v, 0, 1 << 16, f"manifest: {o.where}.{key}", "port")


def _groups(o: image.Reader) -> set[tuple[bytes, int]]:
    """The multicast groups joined: each a multicast address and an
    interface index, no more than a socket may join."""
    v = o.doc.get("groups")
    if not isinstance(v, list) or len(v) > IGMP_MAX_MEMBERSHIPS:
        raise image.ImageError(f"manifest: {o.where}.groups: not a list of at most {IGMP_MAX_MEMBERSHIPS}")
    out = set()
    for i, g in enumerate(v):
        where = f"manifest: {o.where}.groups[{i}]"
        ip, ifindex = _addr_pair(g, 1, U32, where, "ifindex")
        if not A.is_multicast(ip):
            raise image.ImageError(f"{where}: not a multicast group")
        out.add((ip, ifindex))
    return out


def make(k, o: image.Reader, flags: int):
    """The socket with what it held, holding its port again; its far end
    comes with `link`."""
    fam, stype, proto = o.int("family", 0, 64), o.int("type", 0, 16), o.int("protocol", 0, 256)
    if fam not in (A.AF_INET, A.AF_INET6) or stype not in (1, 2, 3):
        raise image.ImageError(f"manifest: {o.where}: not a TCP, UDP, ICMP or raw socket")
    icmp_proto = IPPROTO_ICMP if fam == A.AF_INET else IPPROTO_ICMPV6
    if stype == 3 or proto == icmp_proto:       # as net/inet/family.py makes them
        if proto not in ((icmp_proto, IPPROTO_RAW) if stype == 3 else (icmp_proto,)):
            raise image.ImageError(f"manifest: {o.where}.protocol: not an ICMP or raw socket's")
        s = IcmpSocket(k.net, o.int("uid", 0, U32), fam, stype, proto, flags & C.O_NONBLOCK)
    else:
        cls = TcpSocket if stype == 1 else UdpLiteSocket if proto == IPPROTO_UDPLITE else UdpSocket
        s = cls(k.net, o.int("uid", 0, U32), fam, flags & C.O_NONBLOCK)
        if proto != s.protocol:
            raise image.ImageError(f"manifest: {o.where}.protocol: not the socket type's")
    for key, (lo, hi) in _BASE_INTS.items():
        setattr(s, key, o.int(key, lo, hi))
    for key in _BASE_BOOLS:
        setattr(s, key, o.bool(key))
    sockbase.make(s, o)
    s.ints = {(lvl, opt): v for lvl, opt, v in o.list_of_ints("ints", 3, (0, 0, -U32), (U32, U32, U32))}
    s.groups = _groups(o)
    s.mc_addr = o.hex("mc_addr", 4)
    if len(s.mc_addr) != 4:
        raise image.ImageError(f"manifest: {o.where}.mc_addr: not an IPv4 address")
    s.local, s.remote = _read_ep(o, "local"), _read_ep(o, "remote")
    s.saddr = None if o.doc.get("saddr") is None else o.hex("saddr", 16)
    if o.bool("in_table"):
        if s.local is None:
            raise image.ImageError(f"manifest: {o.where}.in_table: a socket with no address")
        table = s.table()
        table.ports.setdefault(s.local[1], []).append(s)
        table.gen += 1
    if isinstance(s, TcpSocket):
        _tcp(k, s, o)
    elif isinstance(s, IcmpSocket):
        _icmp(s, o)
    else:
        _udp(s, o)
    return s


def _tcp(k, s: TcpSocket, o: image.Reader) -> None:
    for key, (lo, hi) in _TCP_INTS.items():
        setattr(s, key, o.int(key, lo, hi))
    if s.state not in TCP_STATES:
        raise image.ImageError(f"manifest: {o.where}.state: not a state a checkpoint saves")
    s.far_closed, s.fin_received = o.bool("far_closed"), o.bool("fin_received")
    s.tcp_ints = {a: b for a, b in o.list_of_ints("tcp_ints", 2, (0, -U32), (U32, U32))}
    s.congestion = o.hex("congestion", 16)
    data = o.hex("rx", MAX_QUEUED)
    if data:
        s.rx.append(data)
        s.net.sk_mem += len(data)
    if o.has("corked") and not o.bool("nat_reset"):     # held back, pushed when its time is up
        s.corked = bytearray(o.hex("corked", T.LOOPBACK_MSS - 1))
        if not s.corked:
            raise image.ImageError(f"manifest: {o.where}.corked: empty")
        left = o.int("cork_left_ns", 0, T.CORK_NS + 1)
        s._cork_timer = k.sched.add_timer(clock.monotonic_ns() + left, s._cork_expired)
    # held back from the fast path, as setsockopt does
    s.corking = s.corked is not None or bool(s.tcp_ints.get(T.TCP_CORK))
    if o.bool("nat_reset"):         # its host connection did not survive the move
        s.error = E.ECONNRESET
        s.state, s.shut = T.CLOSE, T.SHUTDOWN_MASK


def _udp(s: UdpSocket, o: image.Reader) -> None:
    s.shut, s.cork, s.drops = o.int("shut", 0, 4), o.int("cork", 0, 2), o.int("drops", 0, U32)
    q = o.doc.get("rxq")
    if not isinstance(q, list):
        raise image.ImageError(f"manifest: {o.where}.rxq: not a list")
    s.rxq = deque()
    for i, d in enumerate(q):
        r = image.Reader({"data": d[0], "src": d[1], "dst": d[2], "ttl": d[3], "tos": d[4]}
                         if isinstance(d, list) and len(d) == 5 else {}, f"{o.where}.rxq[{i}]")
        data, dst = r.hex("data", MAX_QUEUED), r.hex("dst", 16)
        src = _read_ep(r, "src")
        if src is None or len(dst) != 16:
            raise image.ImageError(f"manifest: {r.where}: a datagram with no addresses")
        size = truesize(len(data))
        s.rxq.append(Datagram(data, src, dst, r.int("ttl", 0, 256), r.int("tos", 0, 256), size))
        s.rmem += size
        s.net.sk_mem += size
    p = o.doc.get("pending")
    if p is not None:
        r = image.Reader({"src": p[0], "dst": p[1], "data": p[2], "ttl": p[3], "tos": p[4]}
                         if isinstance(p, list) and len(p) == 5 else {}, f"{o.where}.pending")
        src_ip, dst, data = r.hex("src", 16), _read_ep(r, "dst"), r.hex("data", MAX_V6_PAYLOAD)
        if len(src_ip) != 16 or dst is None or s.local is None:
            raise image.ImageError(f"manifest: {r.where}: a corked datagram with no addresses")
        if len(data) > (MAX_V4_PAYLOAD if s.family == A.AF_INET else MAX_V6_PAYLOAD):
            raise image.ImageError(f"manifest: {r.where}.data: more than a datagram holds")
        s.pending = (src_ip, dst, bytearray(data), (r.int("ttl", 0, 256), r.int("tos", 0, 256)))
    if isinstance(s, UdpLiteSocket):
        s.pcflag = o.int("pcflag", 0, 4)
        s.pcslen, s.pcrlen = o.int("pcslen", 0, 1 << 16), o.int("pcrlen", 0, 1 << 16)
        if any(0 < v < UDP_HLEN for v in (s.pcslen, s.pcrlen)):
            raise image.ImageError(f"manifest: {o.where}: a checksum coverage setsockopt refuses")


def _icmp(s: IcmpSocket, o: image.Reader) -> None:
    """A ping or raw socket's own part: its filters as setsockopt takes
    them, and the messages queued, each from an address of its family."""
    s.shut, s.rfc2292_hoplimit = o.int("shut", 0, 4), o.int("rfc2292_hoplimit", 0, 2)
    s.icmp_filter, s.icmp6_filter = o.int("icmp_filter", 0, U32), o.hex("icmp6_filter", 32)
    s.checksum_offset = o.int("checksum_offset", -1, 1 << 31)
    if len(s.icmp6_filter) != 32 or s.checksum_offset > 0 and s.checksum_offset & 1:
        raise image.ImageError(f"manifest: {o.where}: filters setsockopt refuses")
    s.queue.drops = o.int("drops", 0, U32)
    q = o.doc.get("queue")
    if not isinstance(q, list):
        raise image.ImageError(f"manifest: {o.where}.queue: not a list")
    for i, d in enumerate(q):
        r = image.Reader({"data": d[0], "src": d[1], "ttl": d[2]} if isinstance(d, list) and len(d) == 3 else {},
                         f"{o.where}.queue[{i}]")
        data, src = r.hex("data", icmp.MAX_MSG + 60), r.hex("src", 28)
        try:
            ok = A.sockaddr(s.family, A.parse_sockaddr(s.family, src)[0]) == src
        except KernelError:
            ok = False
        if not ok:
            raise image.ImageError(f"manifest: {r.where}.src: not an address of the socket's family")
        sockbase.requeue(s, s.queue, data, src, {"ttl": r.int("ttl", 0, 256)})


def link(s, o: image.Reader, made: dict, held: dict) -> None:
    """A loopback connection joined to its far end again (the far end's
    own entry names this one: the pair is mutual); a listener's
    connections not yet accepted queued again (held: index -> how links
    hold it, for unixsock.check_held: such a connection is in one queue
    and no fd)."""
    if o.has("accept_q"):
        q = o.ints("accept_q", 0, U32)
        if s.state != T.LISTEN or len(q) > s.backlog + 1:
            raise image.ImageError(f"manifest: {o.where}.accept_q: not a listener's queue")
        for i in q:
            c = made.get(i)
            if not isinstance(c, TcpSocket) or c.state in (T.LISTEN, T.CLOSE) or c.local is None \
                    or s.local is None or c.local[1] != s.local[1] or c in s.accept_q:
                raise image.ImageError(f"manifest: {o.where}.accept_q: not a connection to this listener")
            held.setdefault(i, []).append("pending")
            s.accept_q.append(c)
    i = o.int("peer", -1, U32)
    if i < 0:
        return
    peer = made.get(i)
    if not isinstance(peer, TcpSocket) or peer is s \
            or s.state in (T.LISTEN, T.CLOSE) or peer.state in (T.LISTEN, T.CLOSE):
        raise image.ImageError(f"manifest: {o.where}.peer: not the far end of a connection")
    s.ep = LoopEnd(peer)


def check_pairs(made: dict) -> None:
    for s in made.values():
        if isinstance(s, TcpSocket) and isinstance(s.ep, LoopEnd) and \
                not (isinstance(s.ep.peer.ep, LoopEnd) and s.ep.peer.ep.peer is s):
            raise image.ImageError("manifest: a TCP connection whose far end is another's")
