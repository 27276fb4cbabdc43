"""UDP at socket level: datagrams handed from socket to socket.

On loopback a datagram goes straight onto the receiving socket's queue
(charged at its skb truesize against SO_RCVBUF; what does not fit is
dropped, as Linux drops it); to an address outside it goes through the
user-mode NAT.  A datagram for a port nobody holds is what Linux's ICMP
port-unreachable makes of it: ECONNREFUSED on a connected sender's next
call, nothing for an unconnected one.
"""
from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.net.inet import addr as A
from umlpy.net.inet import ports
from umlpy.net.inet.ports import PortTable
from umlpy.net.inet.sock import (DEFAULT_TTL, IP_MULTICAST_LOOP, IP_PKTINFO, IP_RECVTOS, IP_RECVTTL,
                                 IP_TOS, IP_TTL, IPPROTO_UDP, IPV6_HOPLIMIT, IPV6_MULTICAST_LOOP,
                                 IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO, IPV6_RECVTCLASS,
                                 IPV6_TCLASS, SOL_IP, SOL_IPV6, InetSocket)
from umlpy.net.netdev import SockInfo
from umlpy.net.socket import (MSG_DONTWAIT, MSG_ERRQUEUE, MSG_MORE, MSG_OOB, MSG_PEEK, MSG_TRUNC, RCVSHUTDOWN,
                              SNDSHUTDOWN, Received, int_opt)
from umlpy.net.unix import truesize
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

UDP_HLEN = 8
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD

POLLWRBAND = 0x200

POLLRDHUP = 0x2000
SHUTDOWN_MASK = RCVSHUTDOWN | SNDSHUTDOWN
UDP_CORK, UDP_SEGMENT, UDP_GRO = 1, 103, 104
IPPROTO_UDPLITE = 136
# the groups every interface is in: 224.0.0.1 and ff02::1
ALL_HOSTS = (A.MAPPED + bytes((224, 0, 0, 1)), bytes((0xFF, 2)) + bytes(13) + b"\1")
UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV = 10, 11
MAX_V4_PAYLOAD, MAX_V6_PAYLOAD = 65507, 65527
SIOCINQ, SIOCOUTQ = 0x541B, 0x5411
ESTABLISHED, CLOSE = 1, 7


@dataclass(slots=True)
class Datagram:
    data: bytes
    src: A.Endpoint
    dst: bytes              # the address it was sent to (IP_PKTINFO)
    ttl: int
    tos: int
    size: int
    stamp: int = 0          # when it arrived (realtime ns) for SO_TIMESTAMP; 0: not stamped


class UdpSocket(InetSocket):
    proto_name = "udp"
    ip_proto = IPPROTO_UDP
    runs_sk_filter = True
    pcslen = pcrlen = 0                 # UDP-Lite's checksum coverage; UDP's reads 0 (full)

    def __init__(self, net, uid: int, family: int, flags: int) -> None:
        super().__init__(net, uid, family, 2, self.ip_proto, flags)
        self.rxq: deque[Datagram] = deque()
        self.rmem = 0
        self.shut = 0
        self.cork = 0
        self.pending: tuple | None = None   # a corked datagram: (source ip, destination, data, (ttl, tos))
        self.drops = 0
        self._name: tuple = (None, b"")
        self._fast: tuple | None = None     # see _loop_send

    def table(self) -> PortTable:
        """UDP's ports, or UDP-Lite's: each protocol has its own (udp_table, udplite_table)."""
        return ports.table(self.net, self.proto_name)

    def covered(self, cscov: int) -> bool:
        """Whether a datagram whose checksum covers cscov bytes (0: all) is
        kept: always, for UDP."""
        return True

    # -- arrival ------------------------------------------------------------------
    def deliver_datagram(self, data: bytes, src: A.Endpoint, dst: bytes | None = None,
                         ttl: int = DEFAULT_TTL, tos: int = 0) -> bool:
        """A datagram arrives: queued if the attached filter keeps it and
        the receive buffer has room.  The filter sees the UDP header first,
        as udp_queue_rcv_one_skb's (its checksum 0 here)."""
        if self.sk_filter is not None:
            head = struct.pack("!HHHH", src[1], self.local[1], UDP_HLEN + len(data), 0)
            kept = self.filtered(head + data, UDP_HLEN, ETH_P_IP if A.is_v4(src[0]) else ETH_P_IPV6)
            if kept is None:
                self.drops += 1
                return False
            data = kept[UDP_HLEN:]
        size = truesize(len(data))
        net = self.net
        if (self.rmem + size > self.rcvbuf or net.sk_mem + size > net.sk_mem_limit) and self.rxq:
            self.drops += 1
            return False
        self.rxq.append(Datagram(data, src, dst or self.local[0], ttl, tos, size,
                                 clock.realtime_ns() if self.rcvtstamp else 0))
        self.rmem += size
        net.sk_mem += size
        self.wake()
        return True

    def poll(self) -> int:
        """datagram_poll (udp_poll)."""
        ev = 0
        if self.error:
            ev |= POLLERR
        if self.shut & RCVSHUTDOWN:
            ev |= POLLRDHUP | POLLIN | POLLRDNORM
        if self.shut == SHUTDOWN_MASK:
            ev |= POLLHUP
        if self.rxq:
            ev |= POLLIN | POLLRDNORM
        return ev | POLLOUT | POLLWRNORM | POLLWRBAND      # sock_writeable

    # -- connecting ---------------------------------------------------------------
    def connect(self, t, raw: bytes) -> None:
        if len(raw) >= 2 and struct.unpack_from("<H", raw)[0] == 0:
            return self._disconnect()
        dst = self._dst(raw, connecting=True)
        src = self.source_for(dst[0])
        self.autobind()
        if not self.bound_addr:
            self.local = (src, self.local[1])
        self.remote = dst
        self.table().gen += 1       # who takes what changed
        return None

    def _dst(self, raw: bytes, connecting: bool) -> A.Endpoint | None:
        """Where a connect or sendto goes.  An AF_INET6 socket also takes an
        AF_INET address (as a v4-mapped one), AF_UNSPEC on sendto means no
        address; an AF_INET socket takes AF_UNSPEC as AF_INET (udp_sendmsg)."""
        fam = struct.unpack_from("<H", raw)[0] if len(raw) >= 2 else -1
        if self.family == A.AF_INET6 and fam == A.AF_INET:
            if len(raw) < A.SIN_LEN:
                raise KernelError(E.EINVAL)
            if self.v6only:
                raise KernelError(E.EAFNOSUPPORT if connecting else E.ENETUNREACH)
            if self.bound_addr and not A.is_v4(self.local[0]):
                raise KernelError(E.ENETUNREACH)
            ip, port = A.parse_sockaddr(A.AF_INET, raw)[0]
        elif fam == 0 and not connecting and self.family == A.AF_INET6:
            return None
        else:
            if fam == 0 and self.family == A.AF_INET and len(raw) >= A.SIN_LEN:
                raw = struct.pack("<H", A.AF_INET) + raw[2:]
            ip, port = self.parse_connect(raw) if connecting else self.parse(raw)
        ip = self.dest(ip)
        if self.is_broadcast(ip) and not self.opt("SO_BROADCAST"):
            raise KernelError(E.EACCES)
        return ip, port

    def _disconnect(self) -> None:
        """__udp_disconnect: the address and an automatic port go back (a
        bound address stays, even without its port)."""
        self.remote = None
        self.table().gen += 1
        if self.local is not None:
            if not self.bound_addr:
                self.local = (A.wildcard(self.family), self.local[1])
            if not self.bound_port:
                self.saddr = self.local[0] if self.bound_addr else None
                self.table().unbind(self)
                self.local = None

    def connected_for_peer(self) -> bool:
        return self.remote is not None and self.remote[1] != 0

    def established(self) -> bool:
        return self.remote is not None

    def addrform_busy(self) -> bool:
        return self.pending is not None

    # -- sending --------------------------------------------------------------------
    def check_size(self, n: int) -> None:
        if n > (MAX_V4_PAYLOAD if self.family == A.AF_INET else MAX_V6_PAYLOAD):
            raise KernelError(E.EMSGSIZE)

    def sendmsg(self, t, data, flags: int, addr: bytes | None, cmsgs: list) -> int:
        fast = self._fast
        if fast is not None and addr is None and not flags and not cmsgs and fast[0] == self.net.gen \
                and fast[1] == fast[2].gen and not (self.error or self.shut):
            # a connected socket sending to the same loopback peer again
            payload = data if type(data) is bytes else bytes(data[:])
            fast[3].deliver_datagram(payload, fast[4], fast[5], fast[6], self.tos)
            return len(payload)
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if self.pending is not None:
            return self._append(data, flags)
        self.autobind()                 # inet_sendmsg binds a port before anything else
        dst = self._dst(addr, connecting=False) if addr is not None else None
        if dst is not None:
            if dst[1] == 0:
                raise KernelError(E.EINVAL)
        else:
            if self.remote is None:
                raise KernelError(E.EDESTADDRREQ)
            dst = self.remote
        if self.error:
            raise KernelError(self.take_error())
        if self.shut & SNDSHUTDOWN:
            raise KernelError(E.EPIPE)
        src_ip, local = self.route_to(dst[0])
        if self.local[0] not in (A.ANY4, A.ANY6):
            src_ip = self.local[0]          # bound or connected: its own address
        payload = data if type(data) is bytes else bytes(data[:])
        if not local and self.net.nat is None and not A.is_multicast(dst[0]):
            raise KernelError(E.ENETUNREACH)
        ip = self.send_ctl(cmsgs, A.is_v4(dst[0]))
        if self.cork or flags & MSG_MORE:
            self.pending = (src_ip, dst, bytearray(payload), ip)
            self._fast = None       # the next send joins this datagram: not the short path
            return len(payload)
        self._xmit(src_ip, dst, payload, ip)
        return len(payload)

    def _xmit(self, src_ip: bytes, dst: A.Endpoint, payload: bytes, ip: tuple[int, int]) -> None:
        """Send one datagram; ip is its (hop limit, tos) from send_ctl."""
        if A.is_multicast(dst[0]):
            self._multicast(payload, (src_ip, self.local[1]), dst, ip)
        elif self.route_to(dst[0])[1]:
            self._loop_send(payload, (src_ip, self.local[1]), dst, ip)
        elif self.net.nat is not None:
            self.net.nat.udp_send(self, (src_ip, self.local[1]), dst, payload)
        else:
            raise KernelError(E.ENETUNREACH)

    def _multicast(self, data: bytes, src: A.Endpoint, dst: A.Endpoint, ip: tuple[int, int]) -> None:
        """A datagram to a group: with IP_MULTICAST_LOOP (IPV6_MULTICAST_LOOP),
        on by default, a copy for each of the machine's sockets on its port
        that takes the group (__udp4_lib_mcast_deliver), if some socket
        joined it on the interface it leaves by (ip_check_mc_rcu; the
        all-hosts groups are always joined).  Nothing leaves the machine:
        the user-mode network has no one to carry it to."""
        group, port = dst
        ifindex = self.multicast_out(group)
        v4 = A.is_v4(group)
        if not self.ints.get((SOL_IP, IP_MULTICAST_LOOP) if v4 else (SOL_IPV6, IPV6_MULTICAST_LOOP), 1):
            return
        takers = [s for s in ports.table(self.net, self.proto_name).ports.get(port, ())
                  if ports.covers(s, group) and s.remote in (None, src)
                  and s.bound_dev in (0, ifindex) and s.takes_multicast(group, ifindex)]
        if not takers:
            return
        if group not in ALL_HOSTS and not any((group, ifindex) in s.groups for s in self.net.inet_sockets):
            return
        ttl, tos = ip
        for s in takers:
            s.deliver_datagram(data, src, group, ttl, tos)

    # -- corking: MSG_MORE and UDP_CORK build one datagram from many sends -------
    def _append(self, data, flags: int) -> int:
        """A corked datagram grows by each send (to the destination the first
        one named, as udp_sendmsg's pending path) and leaves with the first
        send that neither says MSG_MORE nor finds UDP_CORK on."""
        src_ip, dst, buf, _ = self.pending
        payload = data if type(data) is bytes else bytes(data[:])
        try:
            self.check_size(len(buf) + len(payload))
        except KernelError:
            self.pending = None             # udp_flush_pending_frames
            raise
        buf += payload
        if not (self.cork or flags & MSG_MORE):
            self.push_pending()
        return len(payload)

    def push_pending(self) -> None:
        p, self.pending = self.pending, None
        if p is not None:
            self._xmit(p[0], p[1], bytes(p[2]), p[3])

    def _loop_send(self, data: bytes, src: A.Endpoint, dst: A.Endpoint, ip: tuple[int, int]) -> None:
        ttl, tos = ip
        target = incoming(self.net, dst, src, data, ttl, tos, self.proto_name, self.send_cscov(len(data)))
        if target is None:
            self._fast = None
            if self.remote is not None:
                self.error = E.ECONNREFUSED      # ICMP port unreachable, on a connected socket
                self.wake()
            return
        tbl = self.table()
        # remembered for the next send of a connected socket, until routes,
        # bindings or connections change (the generations) or an option does
        self._fast = (self.net.gen, tbl.gen, tbl, target, src, dst[0], ttl) \
            if dst == self.remote and not target.opt("SO_REUSEPORT") and not self.cork \
            and ip == self.send_ctl([], A.is_v4(dst[0])) and self.ip_proto == IPPROTO_UDP else None

    # -- receiving -----------------------------------------------------------------
    def _arrival_scope(self, d) -> int:
        """A link-local sender's sin6_scope_id: the interface it came in on
        (inet6_iif), here the one that has the address it was sent to."""
        if self.family != A.AF_INET6 or not A.needs_scope(d.src[0]):
            return 0
        dev = self.net.device_with(A.AF_INET6, d.dst)
        return dev.index if dev is not None else self.bound_dev

    def recvmsg(self, t, n: int, flags: int) -> Received:
        if flags & MSG_ERRQUEUE:
            raise KernelError(E.EAGAIN)         # ip_recv_error: no ICMP errors are queued
        if flags & MSG_OOB:
            raise KernelError(E.EOPNOTSUPP)
        if self.error:
            raise KernelError(self.take_error())
        if not self.rxq:
            if self.nonblock or flags & MSG_DONTWAIT:
                raise KernelError(E.EAGAIN)
            if self.shut & RCVSHUTDOWN:     # only a wait notices it (__skb_wait_for_more_packets)
                return Received(b"")
            raise Block(self.wq)
        d = self.rxq[0]
        if self._name[0] != (d.src, d.dst):      # a peer's name, made once
            self._name = ((d.src, d.dst), A.sockaddr(self.family, d.src, self._arrival_scope(d)))
        out = Received(d.data[:n] if len(d.data) > n else d.data, sender=self._name[1],
                       full_len=len(d.data))
        if len(d.data) > n:
            out.flags |= MSG_TRUNC
        out.cmsgs = self._cmsgs(d)
        if not flags & MSG_PEEK:
            self.rxq.popleft()
            self.rmem -= d.size
            self.net.sk_mem -= d.size
        return out

    def _cmsgs(self, d: Datagram) -> list:
        """sock_recv_cmsgs' timestamp, then ip_cmsg_recv's and IPv6's."""
        ints = self.ints
        if not ints and not self.rcvtstamp:
            return []
        out = [self.timestamp_cmsg(d.stamp)] if self.rcvtstamp else []
        v4 = A.is_v4(d.src[0])
        if v4:
            if ints.get((SOL_IP, IP_PKTINFO)):
                out.append((SOL_IP, IP_PKTINFO, struct.pack("<i4s4s", 1, d.dst[12:], d.dst[12:])))
            if ints.get((SOL_IP, IP_RECVTTL)):
                out.append((SOL_IP, IP_TTL, struct.pack("<i", d.ttl)))
            if ints.get((SOL_IP, IP_RECVTOS)):
                out.append((SOL_IP, IP_TOS, bytes([d.tos])))
        if self.family == A.AF_INET6:
            if ints.get((SOL_IPV6, IPV6_RECVPKTINFO)):
                out.append((SOL_IPV6, IPV6_PKTINFO, d.dst + struct.pack("<i", 1)))
            if ints.get((SOL_IPV6, IPV6_RECVHOPLIMIT)):
                out.append((SOL_IPV6, IPV6_HOPLIMIT, struct.pack("<i", d.ttl)))
            if ints.get((SOL_IPV6, IPV6_RECVTCLASS)):
                out.append((SOL_IPV6, IPV6_TCLASS, struct.pack("<i", d.tos)))
        return out

    # -- the rest ---------------------------------------------------------------------
    def shutdown(self, t, how: int) -> None:
        self.shut |= how + 1
        self.wake()
        if self.remote is None:
            raise KernelError(E.ENOTCONN)

    def ioctl(self, task, req: int, arg: int) -> int:
        if req in (SIOCINQ, SIOCOUTQ):
            v = len(self.rxq[0].data) if req == SIOCINQ and self.rxq else 0
            task.mem.write(arg, struct.pack("<i", v))
            return 0
        return super().ioctl(task, req, arg)

    proto_levels = (IPPROTO_UDP, IPPROTO_UDPLITE)      # udp_setsockopt takes either, for both protocols

    def setsockopt(self, t, level: int, opt: int, raw: bytes) -> None:
        self._fast = None           # the TTL it remembered may change
        super().setsockopt(t, level, opt, raw)

    def proto_getsockopt(self, opt: int, cap: int) -> bytes:
        if opt == UDP_CORK:
            return struct.pack("<i", self.cork)
        if opt in (UDP_SEGMENT, UDP_GRO):
            return struct.pack("<i", 0)
        if opt in (UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV):   # read on UDP too: 0
            return struct.pack("<i", self.pcslen if opt == UDPLITE_SEND_CSCOV else self.pcrlen)
        raise KernelError(E.ENOPROTOOPT)

    def send_cscov(self, n: int) -> int:
        """The checksum coverage an n-byte datagram leaves with: all of it (0)."""
        return 0

    def proto_setsockopt(self, opt: int, raw: bytes) -> None:
        if opt != UDP_CORK:
            raise KernelError(E.ENOPROTOOPT)
        self.cork = int(bool(int_opt(raw)))
        if not self.cork:
            self.push_pending()

    def release(self) -> None:
        if self.net.nat is not None:
            self.net.nat.udp_close(self)
        self.rxq.clear()
        self.net.sk_mem -= self.rmem
        self.rmem = 0
        self.release_addr()

    def info(self) -> SockInfo:
        local = self.local or (A.wildcard(self.family), 0)
        remote = self.remote or (A.wildcard(self.family), 0)
        return SockInfo(self.family, self.proto_name, A.packed(self.family, local[0]), local[1],
                        A.packed(self.family, remote[0]), remote[1],
                        ESTABLISHED if self.remote else CLOSE, 0, self.rmem, self.uid,
                        self.inode.ino)


def incoming(net, dst: A.Endpoint, src: A.Endpoint, data: bytes, ttl: int = DEFAULT_TTL,
             tos: int = 0, proto: str = "udp", cscov: int = 0) -> UdpSocket | None:
    """A datagram of proto ("udp", "udplite") for the guest socket bound to
    dst: that socket, or None when none is bound there.  A UDP-Lite
    datagram its receiver finds covered too little is dropped there, as
    __udp_lib_rcv drops it (no ICMP error: the socket is still returned)."""
    s = ports.table(net, proto).deliver_to(dst[0], dst[1], src)
    if s is not None:
        if s.covered(cscov):
            s.deliver_datagram(data, src, dst[0], ttl, tos)
        else:
            s.drops += 1
    return s


class UdpLiteSocket(UdpSocket):
    """UDP-Lite (RFC 3828, Linux's net/ipv4/udplite.c): UDP with a
    checksum that may cover only the datagram's first bytes.  Its ports are
    its own; UDPLITE_SEND_CSCOV sets how much a send covers,
    UDPLITE_RECV_CSCOV how much a received datagram must cover to be kept
    (both 0: all; a value 1..7 is 8, the header's size).  Nothing is ever
    corrupted here, so coverage decides only what is dropped.  Loopback
    only: the user-mode NAT carries no protocol 136 (ENETUNREACH)."""
    proto_name = "udplite"
    ip_proto = IPPROTO_UDPLITE

    def __init__(self, net, uid: int, family: int, flags: int) -> None:
        super().__init__(net, uid, family, flags)
        self.pcflag = 0                 # which of the two were set (UDPLITE_SEND_CC, UDPLITE_RECV_CC)

    def send_cscov(self, n: int) -> int:
        """udplite_csum: a coverage set and shorter than the datagram, else all of it (0)."""
        return self.pcslen if self.pcflag & 1 and 0 < self.pcslen < UDP_HLEN + n else 0

    def covered(self, cscov: int) -> bool:
        """__udp_lib_rcv: with UDPLITE_RECV_CSCOV set, a partly covered
        datagram is dropped when the socket asked for full coverage (0) or
        for more than it covers."""
        if not self.pcflag & 2 or cscov == 0:
            return True
        return self.pcrlen != 0 and cscov >= self.pcrlen

    def _xmit(self, src_ip: bytes, dst: A.Endpoint, payload: bytes, ip: tuple[int, int]) -> None:
        if not self.route_to(dst[0])[1]:
            raise KernelError(E.ENETUNREACH)
        super()._xmit(src_ip, dst, payload, ip)

    def proto_setsockopt(self, opt: int, raw: bytes) -> None:
        if opt not in (UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV):
            return super().proto_setsockopt(opt, raw)
        v = int_opt(raw)
        if v != 0 and v < UDP_HLEN:     # udp_lib_setsockopt: also for a negative value
            v = UDP_HLEN
        v = min(v, 0xFFFF)              # kept in a u16
        if opt == UDPLITE_SEND_CSCOV:
            self.pcslen, self.pcflag = v, self.pcflag | 1
        else:
            self.pcrlen, self.pcflag = v, self.pcflag | 2
