"""/proc/net (a link to self/net, as on Linux) and /proc/sys/net: the
network stack in Linux 6.1's text formats, byte for byte (the header
lines, the column widths, the lines /proc/net/tcp, udp, icmp and route pad
with spaces to a fixed width).

Sockets come from the stack's registries: every inet socket's `info()`
(netdev.SockInfo) and every live AF_UNIX socket.  Kernel addresses
(%pK) are shown hashed, as Linux does for readers without kptr_restrict
exemptions; timers, retransmits and drops are zero (there are no packets
behind a socket here); the counters of snmp and netstat are zero but for
what the kernel knows (established connections).  Rows come out in
Linux's order where it is well defined (routes, devices), by hash bucket
where Linux prints one (udp: the port with a zero hash mix), else in
creation order.
"""
from __future__ import annotations

import struct
import zlib

from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Dir, Spec, build_tree, parse_ints, ro, rw, text
from umlpy.kernel.errors import KernelError
from umlpy.net import ipconfig
from umlpy.net.inet import ports
from umlpy.net.netdev import (AF_INET, AF_INET6, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_SITE,
                              RT_TABLE_LOCAL, RT_TABLE_MAIN, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST,
                              DEVCONF, RTN_PROHIBIT, RTN_UNREACHABLE, SockInfo, net_of, netmask)
from umlpy.net.rtnetlink import route_order
from umlpy.net.unix import UnixSocket
from umlpy.net.socket import SOCK_DGRAM

TCP_ESTABLISHED, TCP_TIME_WAIT, TCP_CLOSE, TCP_LISTEN = 1, 6, 7, 10
SS_UNCONNECTED, SS_CONNECTING, SS_CONNECTED = 1, 2, 3
SO_ACCEPTCON = 1 << 16
UDP_HASH_MASK, RAW_HASH_MASK, PING_HASH_MASK = 255, 255, 63
RTF_UP, RTF_GATEWAY, RTF_HOST, RTF_REJECT = 0x1, 0x2, 0x4, 0x200
RTF_NONEXTHOP, RTF_LOCAL = 0x200000, 0x80000000
TCP_WIDTH, DGRAM_WIDTH, ROUTE_WIDTH = 149, 127, 127
_IFA_SCOPE = {RT_SCOPE_HOST: 0x10, RT_SCOPE_LINK: 0x20, RT_SCOPE_SITE: 0x40}

TCP4_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
               "   uid  timeout inode")
TCP6_HEADER = ("  sl  local_address                         remote_address                        "
               "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
DGRAM4_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
                 "   uid  timeout inode ref pointer drops")
DGRAM6_HEADER = ("  sl  local_address                         remote_address                        "
                 "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n")
DEV_HEADER = ("Inter-|   Receive                                                |  Transmit\n"
              " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
              "drop fifo colls carrier compressed\n")
ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
UNIX_HEADER = "Num       RefCount Protocol Flags    Type St Inode Path\n"
ARP_HEADER = "IP address       HW type     Flags       HW address            Mask     Device\n"
IP6_NULL_ROUTE = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                  "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n")

# /proc/net/snmp and netstat: Linux 6.1's counters, by line
_SNMP = [
    ("Ip", "Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos "
           "InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs "
           "ReasmFails FragOKs FragFails FragCreates"),
    ("Icmp", "InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs "
             "InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps "
             "OutMsgs OutErrors OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects "
             "OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps"),
    ("Tcp", "RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets "
            "CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors"),
    ("Udp", "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors "
            "IgnoredMulti MemErrors"),
    ("UdpLite", "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors "
                "IgnoredMulti MemErrors"),
]
_NETSTAT = [
    ("TcpExt", "SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned "
               "OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive "
               "PAWSEstab DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows ListenDrops "
               "TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery TCPSACKReneging "
               "TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo "
               "TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures "
               "TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery "
               "TCPRenoRecoveryFail TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce "
               "TCPDSACKOldSent TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData "
               "TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed "
               "TCPMemoryPressures TCPMemoryPressuresChrono TCPSACKDiscard TCPDSACKIgnoredOld "
               "TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure "
               "TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop "
               "TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow "
               "TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue "
               "TCPOFODrop TCPOFOMerge TCPChallengeACK TCPSYNChallenge TCPFastOpenActive "
               "TCPFastOpenActiveFail TCPFastOpenPassive TCPFastOpenPassiveFail "
               "TCPFastOpenListenOverflow TCPFastOpenCookieReqd TCPFastOpenBlackhole "
               "TCPSpuriousRtxHostQueues BusyPollRxPackets TCPAutoCorking TCPFromZeroWindowAdv "
               "TCPToZeroWindowAdv TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent "
               "TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect TCPHystartDelayCwnd "
               "TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 "
               "TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail "
               "TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop "
               "TCPRcvQDrop TCPWqueueTooBig TCPFastOpenPassiveAltKey TcpTimeoutRehash "
               "TcpDuplicateDataRehash TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess "
               "TCPMigrateReqFailure TCPPLBRehash"),
    ("IpExt", "InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets "
              "OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors "
              "InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps"),
]


def hex4(addr: bytes) -> str:
    """An IPv4 address as %08X of its __be32 (the bytes read little-endian)."""
    return f"{int.from_bytes(addr, 'little'):08X}"


def hex16(addr: bytes) -> str:
    """An IPv6 address as its four s6_addr32 words, each %08X."""
    return "".join(f"{w:08X}" for w in struct.unpack("<4I", addr))


def pi6(addr: bytes) -> str:
    """%pi6: 32 lower-case hex digits."""
    return addr.hex()


def inet6_addr_hash(addr: bytes) -> int:
    """inet6_addr_hash: ipv6_addr_hash folded by hash_32 into 256 buckets."""
    lo, hi = struct.unpack("<QQ", addr)
    x = lo ^ hi
    val = (x ^ (x >> 32)) & 0xFFFFFFFF
    return ((val * 0x61C88647) & 0xFFFFFFFF) >> 24


def pad(line: str, width: int) -> str:
    """seq_setwidth + seq_pad: spaces up to the width, then the newline."""
    return line.ljust(width) + "\n"


class Net:
    """The text of each /proc/net file, made from the stack of the
    reader's network namespace."""

    def __init__(self, kernel) -> None:
        self.kernel = kernel

    @property
    def net(self):
        return _stack(self.kernel, self.kernel.sched.current)

    def ptr(self, *key) -> str:
        """%pK: a stable hashed stand-in for an object's address."""
        h = zlib.crc32(repr(key).encode(), self.net.ptr_key)
        return f"{h:016x}"

    def socks(self, proto: str, family: int) -> list[SockInfo]:
        out = [s.info() for s in list(self.net.inet_sockets)]
        if proto == "tcp":      # the ports held after an active close
            out += [tw.info() for tw in ports.table(self.net, "tcp").time_waits()]
        return sorted((i for i in out if i.proto == proto and i.family == family), key=lambda i: i.inode)

    # -- inet sockets ------------------------------------------------------------
    def tcp(self, family: int) -> str:
        """get_tcp4_sock / get_tcp6_sock (get_timewait*_sock for TIME_WAIT):
        listeners first (the listening hash), then the rest."""
        socks = self.socks("tcp", family)
        socks.sort(key=lambda i: i.state != TCP_LISTEN)
        v4 = family == AF_INET
        a = hex4 if v4 else hex16
        lines = [pad(TCP4_HEADER, TCP_WIDTH) if v4 else TCP6_HEADER]
        for n, s in enumerate(socks):
            head = f"{n:4d}: {a(s.laddr)}:{s.lport:04X} {a(s.raddr)}:{s.rport:04X} {s.state:02X} "
            ptr = self.ptr("tcp", s.inode, s.laddr, s.lport, s.raddr, s.rport)
            if s.state == TCP_TIME_WAIT:
                line = head + f"00000000:00000000 03:00000000 00000000 {0:5d} {0:8d} 0 {s.refs} {ptr}"
            else:
                tail = "100 0 0 10 0" if s.state == TCP_LISTEN else "20 4 30 10 -1"
                line = head + (f"{s.tx_queue:08X}:{s.rx_queue:08X} 00:00000000 00000000 {s.uid:5d} "
                               f"{0:8d} {s.inode} {s.refs} {ptr} {tail}")
            lines.append(pad(line, TCP_WIDTH) if v4 else line + "\n")
        return "".join(lines)

    def dgram(self, proto: str, family: int) -> str:
        """udp4_format_sock, raw_sock_seq_show, ping_v4_format_sock and
        __ip6_dgram_sock_seq_show: rows by hash bucket (the port, or the
        protocol number or echo id)."""
        mask = {"udp": UDP_HASH_MASK, "udplite": UDP_HASH_MASK, "raw": RAW_HASH_MASK,
                "icmp": PING_HASH_MASK}[proto]
        socks = sorted(self.socks(proto, family), key=lambda i: i.lport & mask)
        v4 = family == AF_INET
        a = hex4 if v4 else hex16
        width = DGRAM_WIDTH if v4 and proto != "raw" else 0
        lines = [pad(DGRAM4_HEADER if proto not in ("udp", "udplite") else " " + DGRAM4_HEADER, width) if v4
                 else DGRAM6_HEADER]
        for s in socks:
            bucket = s.lport & mask
            sl = f"{bucket:4d}" if v4 and proto == "raw" else f"{bucket:5d}"
            rport = 0 if proto == "raw" else s.rport
            ptr = self.ptr(proto, s.inode, s.lport)
            line = (f"{sl}: {a(s.laddr)}:{s.lport:04X} {a(s.raddr)}:{rport:04X} {s.state:02X} "
                    f"{s.tx_queue:08X}:{s.rx_queue:08X} 00:00000000 00000000 {s.uid:5d} {0:8d} "
                    f"{s.inode} {s.refs} {ptr} 0")
            lines.append(pad(line, width) if width else line + "\n")
        return "".join(lines)

    # -- unix sockets --------------------------------------------------------------
    def unix(self) -> str:
        """unix_seq_show: refcount, listening flag, type, state, inode, name
        (@ for an abstract name's NULs)."""
        socks = list(self.net.unix_sockets)
        targets: dict[UnixSocket, int] = {}
        for s in socks:
            if s.stype == SOCK_DGRAM and s.peer is not None:
                targets[s.peer] = targets.get(s.peer, 0) + 1
        lines = [UNIX_HEADER]
        for s in socks:
            attached = s.refs > 0 or s.listening      # accepted (or never queued)
            connected = s.peer is not None or s in targets
            state = (SS_CONNECTED if connected else SS_UNCONNECTED) if attached else SS_CONNECTING
            refs = 2 + (targets.get(s, 0) if s.stype == SOCK_DGRAM else int(s.peer is not None))
            line = (f"{self.ptr('unix', id(s))}: {refs:08X} {0:08X} "
                    f"{SO_ACCEPTCON if s.listening else 0:08X} {s.stype:04X} {state:02X} "
                    f"{s.inode.ino if attached else 0:5d}")
            if s.name:
                name = s.name.decode("utf-8", "surrogateescape")
                line += " " + ("@" + name[1:].replace("\0", "@") if s.name.startswith(b"\0") else name)
            lines.append(line + "\n")
        return "".join(lines)

    # -- devices and routes -------------------------------------------------------------
    def dev(self) -> str:
        """dev_seq_printf_stats: only packets and bytes are counted."""
        lines = [DEV_HEADER]
        for i in sorted(self.net.devices):
            d = self.net.devices[i]
            st = d.stats
            lines.append(f"{d.name:>6}: {st.rx_bytes:7d} {st.rx_packets:7d} {0:4d} {0:4d} {0:4d} {0:5d} "
                         f"{0:10d} {0:9d} {st.tx_bytes:8d} {st.tx_packets:7d} {0:4d} {0:4d} {0:4d} "
                         f"{0:5d} {0:7d} {0:10d}\n")
        return "".join(lines)

    def route(self) -> str:
        """fib_route_seq_show: table main, without broadcast and multicast routes."""
        lines = [pad(ROUTE_HEADER, ROUTE_WIDTH)]
        routes = sorted((r for r in self.net.routes if r.family == AF_INET and r.table == RT_TABLE_MAIN
                         and r.type not in (RTN_BROADCAST, RTN_MULTICAST)), key=route_order)
        for r in routes:
            flags = RTF_UP | (RTF_GATEWAY if r.gateway else 0) | (RTF_HOST if r.prefixlen == 32 else 0) \
                | (RTF_REJECT if r.type in (RTN_UNREACHABLE, RTN_PROHIBIT) else 0)
            dev = self.net.devices.get(r.ifindex)
            lines.append(pad(f"{dev.name if dev else '*'}\t{hex4(r.dst)}\t{hex4(r.gateway or bytes(4))}\t"
                             f"{flags:04X}\t0\t0\t{r.metric}\t{hex4(netmask(4, r.prefixlen))}\t0\t0\t0",
                             ROUTE_WIDTH))
        return "".join(lines)

    def ipv6_route(self) -> str:
        """ipv6_route_native_seq_show: each table (main, local) in fib6's
        walk order; a table with no default route shows the null entry
        at its root last."""
        lines = []
        for table in (RT_TABLE_MAIN, RT_TABLE_LOCAL):
            routes = sorted((r for r in self.net.routes if r.family == AF_INET6 and r.table == table),
                            key=route_order)
            for r in routes:
                flags = RTF_UP | (RTF_GATEWAY if r.gateway else 0)
                if r.type == RTN_LOCAL:
                    flags |= RTF_LOCAL | RTF_NONEXTHOP
                elif r.type in (RTN_UNREACHABLE, RTN_PROHIBIT) or self.net.via_loopback(r):
                    flags = RTF_REJECT | RTF_NONEXTHOP
                dev = self.net.devices.get(r.ifindex)
                lines.append(f"{pi6(r.dst)} {r.prefixlen:02x} {pi6(bytes(16))} 00 "
                             f"{pi6(r.gateway or bytes(16))} {r.metric:08x} "
                             f"{2 if r.type == RTN_LOCAL else 1:08x} {0:08x} {flags:08x} "
                             f"{dev.name if dev else '':>8}\n")
            if not any(r.prefixlen == 0 for r in routes):
                lines.append(IP6_NULL_ROUTE)
        return "".join(lines)

    def if_inet6(self) -> str:
        """if6_seq_show: address, index, prefix length, IPv6 scope, flags,
        device; in the order of Linux's address hash table (with a zero
        hash mix), newest first within a bucket."""
        addrs = [(d, a) for i in sorted(self.net.devices) for d in [self.net.devices[i]]
                 for a in d.addrs if a.family == AF_INET6]
        addrs.sort(key=lambda da: (inet6_addr_hash(da[1].addr), -da[1].cstamp))
        return "".join(f"{pi6(a.addr)} {d.index:02x} {a.prefixlen:02x} {_IFA_SCOPE.get(a.scope, 0):02x} "
                       f"{a.flags & 0xFF:02x} {d.name:>8}\n" for d, a in addrs)

    # -- counters --------------------------------------------------------------------
    def _tcp_states(self) -> list[SockInfo]:
        return [i for i in (s.info() for s in list(self.net.inet_sockets)) if i.proto == "tcp"]

    def snmp(self) -> str:
        estab = sum(1 for i in self._tcp_states() if i.state == TCP_ESTABLISHED)
        known = {"Forwarding": 2, "DefaultTTL": 64, "RtoAlgorithm": 1, "RtoMin": 200,
                 "RtoMax": 120000, "MaxConn": -1, "CurrEstab": estab}
        return _counters(_SNMP, known)

    def netstat(self) -> str:
        return _counters(_NETSTAT, {})

    def sockstat(self, family: int) -> str:
        """sockstat_seq_show / sockstat6_seq_show: sockets in use (hashed)."""
        infos = [s.info() for s in list(self.net.inet_sockets)]

        def inuse(proto: str) -> int:
            return sum(1 for i in infos if i.proto == proto and i.family == family
                       and (i.state not in (TCP_CLOSE, TCP_TIME_WAIT) if proto == "tcp" else i.lport))
        if family == AF_INET6:
            return (f"TCP6: inuse {inuse('tcp')}\nUDP6: inuse {inuse('udp')}\nUDPLITE6: inuse {inuse('udplite')}\n"
                    f"RAW6: inuse {inuse('raw')}\nFRAG6: inuse 0 memory 0\n")
        used = len(infos) + len(self.net.unix_sockets) + \
            (len(self.net.netlink.ports) if self.net.netlink is not None else 0)
        tcp = [i for i in infos if i.proto == "tcp"]
        tw = sum(1 for i in tcp if i.state == TCP_TIME_WAIT)
        return (f"sockets: used {used}\n"
                f"TCP: inuse {inuse('tcp')} orphan 0 tw {tw} alloc {len(tcp) - tw} mem 0\n"
                f"UDP: inuse {inuse('udp')} mem 0\nUDPLITE: inuse {inuse('udplite')}\nRAW: inuse {inuse('raw')}\n"
                f"FRAG: inuse 0 memory 0\n")


def _counters(table: list[tuple[str, str]], known: dict[str, int]) -> str:
    out = []
    for name, fields in table:
        names = fields.split()
        out.append(f"{name}: {fields}\n{name}: " + " ".join(str(known.get(n, 0)) for n in names) + "\n")
    return "".join(out)


def net_files(kernel) -> Spec:
    """/proc/net's files (the directory every /proc/PID/net shows)."""
    n = Net(kernel)
    return {
        "arp": ro(ARP_HEADER),
        "dev": ro(text(n.dev)),
        "icmp": ro(text(lambda: n.dgram("icmp", AF_INET))),
        "icmp6": ro(text(lambda: n.dgram("icmp", AF_INET6))),
        "if_inet6": ro(lambda task: n.if_inet6().encode()),
        "ipv6_route": ro(text(n.ipv6_route)),
        "netstat": ro(text(n.netstat)),
        "pnp": ro(text(lambda: ipconfig.pnp(n.net))),
        "raw": ro(text(lambda: n.dgram("raw", AF_INET))),
        "raw6": ro(text(lambda: n.dgram("raw", AF_INET6))),
        "route": ro(text(n.route)),
        "snmp": ro(text(n.snmp)),
        "sockstat": ro(text(lambda: n.sockstat(AF_INET))),
        "sockstat6": ro(text(lambda: n.sockstat(AF_INET6))),
        "tcp": ro(text(lambda: n.tcp(AF_INET))),
        "tcp6": ro(text(lambda: n.tcp(AF_INET6))),
        "udp": ro(text(lambda: n.dgram("udp", AF_INET))),
        "udp6": ro(text(lambda: n.dgram("udp", AF_INET6))),
        "udplite": ro(text(lambda: n.dgram("udplite", AF_INET))),
        "udplite6": ro(text(lambda: n.dgram("udplite", AF_INET6))),
        "unix": ro(text(n.unix)),
    }


# -- /proc/sys/net ----------------------------------------------------------------------

def _stack(kernel, task):
    """The stack of the task's network namespace (the init one's for the kernel itself)."""
    return net_of(task) if task is not None else kernel.net


def _pair(kernel, attr: str, check) -> tuple:
    """A sysctl of two integers kept on the reader's (writer's) stack (show, store)."""
    def show(task) -> bytes:
        lo, hi = getattr(_stack(kernel, task), attr)
        return f"{lo}\t{hi}\n".encode()

    def store(task, data: bytes) -> None:
        vals = parse_ints(data)
        if not vals or len(vals) > 2:
            raise KernelError(E.EINVAL)
        net = _stack(kernel, task)
        new = tuple(vals) + getattr(net, attr)[len(vals):]
        setattr(net, attr, check(net, *new))
    return show, store


def _port_range(net, lo: int, hi: int) -> tuple[int, int]:
    """ipv4_local_port_range: within 1..65535, ordered, not below the
    privileged ports (ip_unprivileged_port_start)."""
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535) or hi < lo or lo < net.prot_sock:
        raise KernelError(E.EINVAL)
    return lo, hi


def _prot_sock(kernel) -> tuple:
    """ip_unprivileged_port_start (ipv4_privileged_ports): 0..65535, not
    into the local port range."""
    def show(task) -> bytes:
        return f"{_stack(kernel, task).prot_sock}\n".encode()

    def store(task, data: bytes) -> None:
        vals = parse_ints(data)
        net = _stack(kernel, task)
        if not vals or not 0 <= vals[0] <= 65535 or vals[0] > net.local_port_range[0]:
            raise KernelError(E.EINVAL)
        net.prot_sock = vals[0]
    return show, store


def _ping_range(net, lo: int, hi: int) -> tuple[int, int]:
    """ipv4_ping_group_range: gids; a reversed range means nobody (1 0)."""
    if not (0 <= lo <= 0x7FFFFFFF and 0 <= hi <= 0x7FFFFFFF):
        raise KernelError(E.EINVAL)
    return (lo, hi) if lo <= hi else (1, 0)


def _devconf(kernel, task, name: str) -> dict[str, int]:
    """The settings conf/NAME shows in the reader's network namespace."""
    net = _stack(kernel, task)
    if name == "all":
        return net.conf_all
    if name == "default":
        return net.conf_default
    return net.by_name(name).conf       # gone since the lookup: ENODEV


def _conf_entry(kernel, name: str, opt: str):
    """conf/NAME/OPT: an int (proc_dointvec) of the reader's namespace."""
    def show(task) -> bytes:
        return f"{_devconf(kernel, task, name)[opt]}\n".encode()

    def store(task, data: bytes) -> None:
        vals = parse_ints(data)
        if not vals or not -(1 << 31) <= vals[0] < 1 << 31:
            raise KernelError(E.EINVAL)
        _devconf(kernel, task, name)[opt] = vals[0]
    return rw(show, store)


def _conf_dir(kernel):
    """/proc/sys/net/ipv4/conf: all, default and each device of the
    reader's network namespace."""
    def make(fs, key: str) -> Dir:
        def table():
            net = _stack(kernel, fs.current())
            names = ["all", "default", *(d.name for d in net.devices.values())]
            return {n.encode(): (lambda n=n: build_tree(fs, f"{key}/{n}", {
                opt: _conf_entry(kernel, n, opt) for opt in DEVCONF})) for n in names}
        return Dir(fs, key, table)
    return make


def sys_net(kernel) -> Spec:
    """/proc/sys/net: what tools and libraries read (Linux's defaults)."""
    port_show, port_store = _pair(kernel, "local_port_range", _port_range)
    ping_show, ping_store = _pair(kernel, "ping_group_range", _ping_range)
    return {
        "core": {
            "rmem_default": ro("212992"),
            "rmem_max": ro("212992"),
            "somaxconn": ro("4096"),
            "wmem_default": ro("212992"),
            "wmem_max": ro("212992"),
        },
        "ipv4": {
            "conf": _conf_dir(kernel),
            "ip_forward": ro("0"),
            "ip_local_port_range": rw(port_show, port_store),
            "ip_unprivileged_port_start": rw(*_prot_sock(kernel)),
            "ping_group_range": rw(ping_show, ping_store),
        },
    }
