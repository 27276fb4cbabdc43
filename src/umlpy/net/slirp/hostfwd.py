"""hostfwd=: host ports that lead to guest ports.

A TCP rule is a host listener: each connection it accepts becomes a
connection for the guest listener on the rule's guest address and port,
seen from 10.0.2.2 (a peer on the host's loopback) and the peer's port,
as QEMU shows it; no guest listener (or a full backlog) resets it at
once.  A UDP rule is a bound host socket: datagrams go to the guest
socket on the guest port, and what that socket sends back leaves from
the rule's host port (`sends_for`), so host clients see their answers
come from the port they asked.  Forwarded ports are reachable under
restrict=on too: they are the host's decision, not the guest's.
"""
from __future__ import annotations

from arch_um.events import EPOLLIN
from arch_um.hostnet import TcpListener, Udp
from umlpy.kernel import printk
from umlpy.net.inet import addr as A
from umlpy.net.inet import tcp, udp
from umlpy.net.slirp import vnet
from umlpy.net.slirp.config import HostFwd
from umlpy.net.slirp.hostconn import HostConn

PER_EVENT = 64              # accepts or datagrams taken per wake-up


class Forward:
    def __init__(self, nat, rule: HostFwd) -> None:
        self.nat = nat
        self.rule = rule
        self.dst = (vnet.m(rule.guest_ip), rule.guest_port)
        if rule.proto == "tcp":
            self.host = TcpListener(rule.host_ip, rule.host_port)
        else:
            self.host = Udp(rule.host_ip, bind=(rule.host_ip, rule.host_port))
        nat.k.sched.watch_fd(self.host.fd, EPOLLIN, self._ready)
        printk.pr_info(f"slirp: hostfwd {rule.text()}")

    def close(self) -> None:
        self.nat.k.sched.unwatch_fd(self.host.fd)
        self.host.close()

    def _guest_ready(self) -> bool:
        """The guest has the rule's address on an up interface."""
        return self.nat.net.is_local(A.AF_INET, self.rule.guest_ip)

    def _ready(self, events: int) -> None:
        for _ in range(PER_EVENT):
            if self.rule.proto == "tcp":
                got = self.host.accept()
                if got is None:
                    return
                self._connection(*got)
            else:
                got = self.host.recvfrom()
                if got is None:
                    return
                self._datagram(*got)

    def _connection(self, conn, ip: bytes, port: int) -> None:
        src = self.nat.translate_in(ip)
        if src is None or not self._guest_ready() or not self.nat.may_open():
            conn.close(reset=True)
            return
        ep = HostConn(self.nat, conn, None, connecting=False)
        s = tcp.incoming(self.nat.net, self.dst, (vnet.m(src), port), ep)
        if s is None:
            ep.destroy(reset=True)
        else:
            ep.attach(s)

    def _datagram(self, data: bytes, ip: bytes, port: int) -> None:
        src = self.nat.translate_in(ip)
        if src is not None and self._guest_ready():
            udp.incoming(self.nat.net, self.dst, (vnet.m(src), port), data)

    def sends_for(self, src: A.Endpoint) -> bool:
        """Is src (a guest socket's address) this UDP rule's guest end?"""
        ip, port = src
        return self.rule.proto == "udp" and port == self.rule.guest_port and \
            (A.is_any(ip) or ip == self.dst[0])
