"""socket(AF_INET/AF_INET6, type, protocol): which socket, as inet_create.

A type with no protocols here is ESOCKTNOSUPPORT, a protocol the type
does not carry EPROTONOSUPPORT, SOCK_RAW without CAP_NET_RAW EPERM;
protocols Linux has and we do not are logged once.
"""
from __future__ import annotations

from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_NET_RAW
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.net.inet import icmp, tcp, udp
from umlpy.net.inet.addr import AF_INET, AF_INET6
from umlpy.net.inet.sock import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW, IPPROTO_TCP, IPPROTO_UDP
from umlpy.net.netdev import net_capable, net_of
from umlpy.net.socket import SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, register_family

IPPROTO_MAX = 263
IPPROTO_SCTP, IPPROTO_UDPLITE, IPPROTO_MPTCP = 132, 136, 262
_logged: set[tuple[int, int, int]] = set()


def _unsupported(family: int, stype: int, proto: int) -> KernelError:
    if (family, stype, proto) not in _logged:
        _logged.add((family, stype, proto))
        printk.pr_notice(f"socket: family {family} type {stype} protocol {proto} not supported")
    return KernelError(E.EPROTONOSUPPORT)


def _make(family: int):
    icmp_proto = IPPROTO_ICMP if family == AF_INET else IPPROTO_ICMPV6

    def make(t, stype: int, proto: int, flags: int):
        if not 0 <= proto < IPPROTO_MAX:
            raise KernelError(E.EINVAL)
        net, uid = net_of(t), t.proc.creds.euid
        if stype == SOCK_STREAM:
            if proto in (0, IPPROTO_TCP):
                return tcp.TcpSocket(net, uid, family, flags)
            if proto in (IPPROTO_MPTCP, IPPROTO_SCTP):
                raise _unsupported(family, stype, proto)
            raise KernelError(E.EPROTONOSUPPORT)
        if stype == SOCK_DGRAM:
            if proto in (0, IPPROTO_UDP):
                return udp.UdpSocket(net, uid, family, flags)
            if proto == icmp_proto:
                return icmp.new(t, family, stype, proto, flags)
            if proto == IPPROTO_UDPLITE:
                return udp.UdpLiteSocket(net, uid, family, flags)
            raise KernelError(E.EPROTONOSUPPORT)
        if stype == SOCK_RAW:
            if not net_capable(t, CAP_NET_RAW):
                raise KernelError(E.EPERM)
            if proto in (icmp_proto, IPPROTO_RAW):    # IPPROTO_RAW: udhcpc's ioctl socket
                return icmp.new(t, family, stype, proto, flags)
            raise _unsupported(family, stype, proto)
        raise KernelError(E.ESOCKTNOSUPPORT)
    return make


def register() -> None:
    register_family(AF_INET, _make(AF_INET))
    register_family(AF_INET6, _make(AF_INET6))
