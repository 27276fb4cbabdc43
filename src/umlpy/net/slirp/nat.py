"""The user-mode NAT: what net/inet asks of `kernel.net.nat`.

Guest traffic to the virtual network's own addresses is answered here
(10.0.2.2: the host's loopback; 10.0.2.3: DNS; the DHCP server; echo
requests to both); traffic to other addresses on 10.0.2.0/24 finds
nobody (EHOSTUNREACH for TCP, silence for datagrams); traffic beyond is
carried by host sockets, one per guest connection or datagram socket.
Under restrict=on nothing goes beyond: a connect, sendto or ping to any
other address fails at once with EPERM, as a local firewall's OUTPUT
rule makes Linux fail it, and no datagram from elsewhere is let in.
The host sockets live in arch_um.hostnet and are watched by the event
loop; the kernel holds at most MAX_HOST_SOCKETS of them for the guest.
"""
from __future__ import annotations

import struct

from arch_um import clock
from arch_um.events import EPOLLIN
from arch_um.hostnet import Ping, TcpConn, Udp, resolv_conf_nameservers
from umlpy.abi import errno as E
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.net import packet
from umlpy.net.inet import addr as A
from umlpy.net.inet import icmp, udp, wire
from umlpy.net.inet.sock import DEFAULT_TTL
from umlpy.net.slirp import vnet
from umlpy.net.slirp.config import UserNetConfig
from umlpy.net.slirp.dhcp import CLIENT_PORT, SERVER_PORT, DhcpServer
from umlpy.net.slirp.dns import DnsForwarder
from umlpy.net.slirp.hostconn import HostConn, connect_errno
from umlpy.net.slirp.hostfwd import Forward

MAX_HOST_SOCKETS = 1024
READS_PER_EVENT = 64
DHCP_REPLY_NS = 5_000_000      # a LAN's round trip: the asking socket may close first (udhcpc does)
GATEWAY_TTL = 255              # slirp answers echo requests with MAXTTL
ETH_P_IP = 0x0800
# what a host sendto may fail with that the guest's sendto reports
_SEND_ERRORS = {E.ENETUNREACH, E.EHOSTUNREACH, E.EMSGSIZE, E.EACCES, E.EPERM, E.ENETDOWN}


class Nat:
    def __init__(self, kernel, cfg: UserNetConfig, dev) -> None:
        self.k = kernel
        self.net = kernel.net
        self.cfg = cfg
        self.dev = dev
        self.dhcp = DhcpServer()
        server = cfg.hostdns
        if server is None:
            found = resolv_conf_nameservers()
            server = (found[0], 53) if found else None
        self.dns = DnsForwarder(self, server)
        self.conns: set[HostConn] = set()
        self.flows: dict[object, Udp] = {}          # guest UDP socket -> its host socket
        self.pings: dict[object, Ping] = {}         # guest ICMP socket -> host ping socket
        self.ping_ids: dict[object, tuple[int, bytes]] = {}   # -> (guest echo id, guest address)
        self.ping_refused = False
        self.forwards: list[Forward] = []
        for rule in cfg.hostfwds:
            try:
                self.forwards.append(Forward(self, rule))
            except OSError as e:
                self.close()
                raise OSError(e.errno, f"hostfwd={rule.text()}: {e.strerror}") from None

    def close(self) -> None:
        """The machine stops: every host socket goes."""
        for c in list(self.conns):
            c.destroy(reset=True)
        for s in list(self.flows):
            self.udp_close(s)
        for s in list(self.pings):
            self.ping_close(s)
        self.dns.close()
        for f in self.forwards:
            f.close()

    def may_open(self) -> bool:
        return len(self.conns) + len(self.flows) + len(self.pings) < MAX_HOST_SOCKETS

    # -- addresses ------------------------------------------------------------------
    def translate_in(self, ip: bytes) -> bytes | None:
        """A host peer as the guest sees it: the host's loopback is the
        gateway; other IPv4 addresses are themselves; IPv6 is not carried."""
        if len(ip) != 4:
            return None
        return vnet.GATEWAY if ip[0] == 127 else ip

    def _outside(self, ip4: bytes) -> bytes:
        """The host address for a guest destination beyond the virtual
        network (the gateway is the host's loopback); EPERM under restrict=on."""
        if ip4 == vnet.GATEWAY:
            return vnet.HOST_LOOPBACK
        if self.cfg.restrict:
            printk.pr_info_ratelimited(f"slirp: restrict=on: {vnet.ip_text(ip4)} refused")
            raise KernelError(E.EPERM)
        return ip4

    def _allowed_source(self, ip4: bytes) -> bool:
        return not self.cfg.restrict or ip4 in (vnet.GATEWAY, vnet.DNS)

    # -- TCP ----------------------------------------------------------------------------
    def tcp_connect(self, sock, src: A.Endpoint, dst: A.Endpoint) -> HostConn:
        ip, port = dst
        if not A.is_v4(ip) or A.is_multicast(ip) or ip[12:] in (vnet.BROADCAST, vnet.LIMITED_BROADCAST):
            raise KernelError(E.ENETUNREACH)
        ip4 = ip[12:]
        if ip4 == vnet.DNS:
            target = self.dns.server if port == 53 else None
            err = 0 if target is not None else E.ECONNREFUSED
        elif vnet.in_network(ip4) and ip4 != vnet.GATEWAY:
            target, err = None, E.EHOSTUNREACH     # nobody answers ARP for it
        else:
            target, err = (self._outside(ip4), port), 0
        if not self.may_open():
            raise KernelError(E.ENOBUFS)
        if target is not None:
            try:
                return HostConn(self, TcpConn.connect(*target), sock, connecting=True)
            except OSError as e:
                err = connect_errno(e.errno or E.ECONNREFUSED)
        ep = HostConn(self, None, sock, connecting=True)
        ep.fail_later(err)
        return ep

    # -- UDP ----------------------------------------------------------------------------
    def udp_send(self, sock, src: A.Endpoint, dst: A.Endpoint, data: bytes) -> None:
        ip, port = dst
        if not A.is_v4(ip):
            raise KernelError(E.ENETUNREACH)
        ip4 = ip[12:]
        if port == SERVER_PORT and ip4 in (vnet.GATEWAY, vnet.BROADCAST, vnet.LIMITED_BROADCAST):
            self._dhcp_over_udp(data)
            return
        if ip4 == vnet.DNS:
            if port == 53:
                self.dns.query(sock, data)
            return
        if (vnet.in_network(ip4) and ip4 != vnet.GATEWAY) or A.is_multicast(ip) or \
                ip4 == vnet.LIMITED_BROADCAST:
            return                              # nobody there: the datagram is lost
        fwd = next((f for f in self.forwards if f.sends_for(src)), None)
        target = self._outside(ip4)
        host = fwd.host if fwd is not None else self._flow(sock)
        try:
            host.sendto(data, target, port)
        except OSError as e:
            if e.errno in _SEND_ERRORS:
                raise KernelError(e.errno) from None

    def _flow(self, sock) -> Udp:
        host = self.flows.get(sock)
        if host is None:
            if not self.may_open():
                raise KernelError(E.ENOBUFS)
            try:
                host = Udp(bytes(4))
            except OSError as e:
                raise KernelError(E.ENOBUFS) from e
            self.flows[sock] = host
            self.k.sched.watch_fd(host.fd, EPOLLIN, lambda ev: self._flow_readable(sock))
        return host

    def _flow_readable(self, sock) -> None:
        host = self.flows.get(sock)
        for _ in range(READS_PER_EVENT):
            got = host.recvfrom() if host is not None else None
            if got is None:
                return
            data, ip, port = got
            src = self.translate_in(ip)
            if src is not None and self._allowed_source(src):
                sock.deliver_datagram(data, (vnet.m(src), port))

    def udp_close(self, sock) -> None:
        self.dns.forget(sock)
        host = self.flows.pop(sock, None)
        if host is not None:
            self.k.sched.unwatch_fd(host.fd)
            host.close()

    # -- DHCP -----------------------------------------------------------------------------
    def _dhcp_over_udp(self, data: bytes) -> None:
        """A DHCP request from a UDP socket (a renewal): the answer arrives
        on the client port like any datagram, a moment later."""
        reply = self.dhcp.handle(data)
        if reply is not None:
            dst = (vnet.m(reply.dst), CLIENT_PORT)
            src = (vnet.m(vnet.GATEWAY), SERVER_PORT)
            self._later(lambda: udp.incoming(self.net, dst, src, reply.data))

    def link_send(self, dev, ethertype: int, pkt: bytes) -> None:
        """A packet a packet socket sent on eth0: DHCP requests are
        answered on the link; anything else finds nobody."""
        if ethertype != ETH_P_IP:
            return
        ip = wire.parse_ipv4(pkt)
        seg = wire.parse_udp(ip) if ip is not None else None
        if seg is None or seg[1] != SERVER_PORT:
            return
        reply = self.dhcp.handle(seg[2])
        if reply is None:
            return
        out = wire.ipv4_udp(vnet.GATEWAY, SERVER_PORT, reply.dst, CLIENT_PORT, reply.data)
        dst_mac = b"\xff" * 6 if reply.dst == vnet.LIMITED_BROADCAST else seg[2][28:34]
        self._later(lambda: packet.deliver(self.net, dev, out, dst_mac, vnet.GATEWAY_MAC))

    def _later(self, fn) -> None:
        self.k.sched.add_timer(clock.monotonic_ns() + DHCP_REPLY_NS, fn)

    # -- ICMP echo ------------------------------------------------------------------------
    def ping(self, sock, src: bytes, dst: bytes, msg: bytes) -> None:
        """An echo request leaving eth0 (src, dst: ip16)."""
        if not A.is_v4(dst):
            return
        ip4 = dst[12:]
        if ip4 in (vnet.GATEWAY, vnet.DNS):
            if wire.checksum(msg) == 0:
                icmp.deliver(self.net, False, src, dst, icmp.echo_reply(msg, False, dst, src),
                             GATEWAY_TTL)
            return
        if vnet.in_network(ip4):
            return
        target = self._outside(ip4)
        host = self._host_ping(sock)
        if host is None:
            return
        self.ping_ids[sock] = (struct.unpack_from("!H", msg, 4)[0], src)
        try:
            host.sendto(msg, target)
        except OSError as e:
            if e.errno in _SEND_ERRORS:
                raise KernelError(e.errno) from None

    def _host_ping(self, sock) -> Ping | None:
        if sock in self.pings:
            return self.pings[sock]
        if self.ping_refused or not self.may_open():
            return None
        try:
            host = Ping(v6=False)
        except OSError as e:
            self.ping_refused = True
            printk.pr_warn(f"slirp: echo requests beyond 10.0.2.0/24 go unanswered: the host "
                           f"refuses ping sockets ({e.strerror}; see net.ipv4.ping_group_range)")
            return None
        self.pings[sock] = host
        self.k.sched.watch_fd(host.fd, EPOLLIN, lambda ev: self._ping_readable(sock))
        return host

    def _ping_readable(self, sock) -> None:
        host = self.pings.get(sock)
        for _ in range(READS_PER_EVENT):
            got = host.recvfrom() if host is not None else None
            if got is None:
                return
            msg, ip = got
            src = self.translate_in(ip)
            ids = self.ping_ids.get(sock)
            if src is None or ids is None or len(msg) < 8 or msg[0] != icmp.ICMP_ECHOREPLY:
                continue
            guest_id, guest_addr = ids
            reply = icmp.with_checksum(msg[:4] + struct.pack("!H", guest_id) + msg[6:], False,
                                       b"", b"")
            icmp.deliver(self.net, False, guest_addr, vnet.m(src), reply, DEFAULT_TTL)

    def ping_close(self, sock) -> None:
        self.ping_ids.pop(sock, None)
        host = self.pings.pop(sock, None)
        if host is not None:
            self.k.sched.unwatch_fd(host.fd)
            host.close()
