"""Interfaces as Linux shows them: busybox ip, ifconfig, route and netstat,
Debian's iproute2 ip and ss, glibc's getifaddrs and if_nameindex, raw
NETLINK_ROUTE and the netdevice ioctls (tests/progs/t_ifaddrs.c), and the
files of /proc/net.

Expected texts are what Linux 6.1 prints for a machine whose only
interface is lo.  Where the host allows it (root, unshare), the same
commands also run natively in a fresh network namespace with lo up, and
the outputs must agree but for what later kernels changed (listed in
LATER_KERNELS) and what depends on hashing or reference counts.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BUSYBOX, PROGS, ROOT, boot, sh

PROC = "mount -t proc proc /proc; "
EXPECTED = ROOT / "tests" / "netif"
HOST_LD = Path("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
HOST_LIBS = "/usr/lib/x86_64-linux-gnu"


def guest(script: str, *params: str) -> str:
    r = sh(PROC + "(" + script + ") 2>&1; true", *params)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return r.stdout.decode()


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    """Run a script natively in a new network namespace (lo up), with
    busybox's ip, ifconfig, route and netstat first in PATH; None when the
    host cannot make one."""
    bindir = tmp_path_factory.mktemp("bb")
    for applet in ("ip", "ifconfig", "route", "netstat"):
        (bindir / applet).symlink_to(BUSYBOX)

    def run(script: str) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            r = subprocess.run(["unshare", "-n", "sh", "-c",
                                f"{BUSYBOX} ip link set lo up && PATH={bindir}:$PATH && ({script}) 2>&1; true"],
                               capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.decode() if r.returncode == 0 else None
    return run


# Lines where Linux after 6.1 answers differently: renaming an interface
# that is up (6.2), extended-ack messages for addresses (6.2), more link
# attributes (IFLA_ALLMULTI 6.5, and others), and the protocol umlpy
# refuses (sock_diag).
LATER_KERNELS = [
    (re.compile(r"^SIOCSIFNAME lo up: .*$", re.M), "SIOCSIFNAME lo up: ..."),
    (re.compile(r"^socket (sock_diag): .*$", re.M), r"socket \1: ..."),
    (re.compile(r"^(  msg type 16 flags \S+) len \d+ (.*) attrs .*$", re.M), r"\1 \2 attrs ..."),
    (re.compile(r"^(  msg type 2 flags) 0x200 len 96 (.* error EEXIST) \"ipv4: Address already assigned\"$",
                re.M), r"\1 0 len 60 \2"),
    (re.compile(r"^Error: ipv4: Address already assigned\.$", re.M), "RTNETLINK answers: File exists"),
    (re.compile(r" +allmulti 0 "), " "),
    # an address the host's ip shows while its duplicate detection still runs
    # (a race with the next command, seen under load): the state, not the address
    (re.compile(r"(scope \w+) tentative "), r"\1 "),
]


def like_61(text: str) -> str:
    for pattern, repl in LATER_KERNELS:
        text = pattern.sub(repl, text)
    return text


def same_as_linux(netns, script: str, got: str) -> None:
    want = netns(script)
    if want is None:
        pytest.skip("no network namespace to compare with (needs root and unshare)")
    assert like_61(got) == like_61(want)


LO_IP = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host 
       valid_lft forever preferred_lft forever
"""
LO_IFCONFIG = """\
lo        Link encap:Local Loopback  
          inet addr:127.0.0.1  Mask:255.0.0.0
          inet6 addr: ::1/128 Scope:Host
          UP LOOPBACK RUNNING  MTU:65536  Metric:1
          RX packets:0 errors:0 dropped:0 overruns:0 frame:0
          TX packets:0 errors:0 dropped:0 overruns:0 carrier:0
          collisions:0 txqueuelen:1000 
          RX bytes:0 (0.0 B)  TX bytes:0 (0.0 B)

"""
ROUTE_N = "Kernel IP routing table\nDestination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
NETSTAT_RN = "Kernel IP routing table\nDestination     Gateway         Genmask         Flags   MSS Window  irtt Iface\n"
LO_LOCAL_ROUTES = """\
local 127.0.0.0/8 dev lo scope host  src 127.0.0.1 
local 127.0.0.1 dev lo scope host  src 127.0.0.1 
broadcast 127.255.255.255 dev lo scope link  src 127.0.0.1 
"""

LO_SCRIPT = ("ip addr; ip link; ip route; ip route show table local; ip -6 addr; ip -6 route; "
             "ifconfig; ifconfig -a; ifconfig lo; route -n; netstat -rn")


def test_busybox_tools_show_lo(netns):
    got = guest(LO_SCRIPT)
    assert got == (LO_IP + LO_IP.split("    inet ")[0] + LO_LOCAL_ROUTES
                   + "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qlen 1000\n" + LO_IP.split("\n", 4)[4]
                   + LO_IFCONFIG * 3 + ROUTE_N + NETSTAT_RN)
    same_as_linux(netns, LO_SCRIPT, got)


DOWN_SCRIPT = ("ip link set lo down; ip addr; ip route show table all; ip -6 route show table all; "
               "ifconfig; ifconfig -a; ip link set lo up; ip addr; ip -6 route show table all")


def test_lo_down_and_up(netns):
    """Down: IPv6 addresses and non-host routes go, the local routes of the
    IPv4 addresses stay; up: ::1 comes back."""
    got = guest(DOWN_SCRIPT)
    assert got == """\
1: lo: <LOOPBACK> mtu 65536 qdisc noqueue qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
local 127.0.0.0/8 dev lo table local scope host  src 127.0.0.1 
local 127.0.0.1 dev lo table local scope host  src 127.0.0.1 
lo        Link encap:Local Loopback  
          inet addr:127.0.0.1  Mask:255.0.0.0
          LOOPBACK  MTU:65536  Metric:1
          RX packets:0 errors:0 dropped:0 overruns:0 frame:0
          TX packets:0 errors:0 dropped:0 overruns:0 carrier:0
          collisions:0 txqueuelen:1000 
          RX bytes:0 (0.0 B)  TX bytes:0 (0.0 B)

""" + LO_IP + "local ::1 dev lo table local  metric 0 \n"
    same_as_linux(netns, DOWN_SCRIPT, got)


ADDR_SCRIPT = ("ip addr add 10.9.0.1/24 dev lo; ip addr add 10.9.0.2/24 brd + dev lo; "
               "ip addr add 10.9.0.1/24 dev lo; ip addr show dev lo; ip route; ip route show table local; "
               "ip route add default via 10.9.0.8; ip route add 10.20.0.0/16 via 10.9.0.7; "
               "ip route add 10.40.0.0/16 via 99.9.9.9; ip route; route -n; "
               "ip route del default; ip route del default; ip addr del 10.9.0.1/24 dev lo; "
               "ip addr show dev lo; ip route show table all")


def test_addresses_and_routes_with_ip(netns):
    """An address on lo makes its whole network local (table local, so
    `ip route` stays empty); one in the same network is a secondary, and
    goes with its primary; gateways must be reachable."""
    got = guest(ADDR_SCRIPT)
    assert got == """\
ip: RTNETLINK answers: File exists
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet 10.9.0.1/24 scope global lo
       valid_lft forever preferred_lft forever
    inet 10.9.0.2/24 brd 10.9.0.255 scope global secondary lo
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host 
       valid_lft forever preferred_lft forever
local 10.9.0.0/24 dev lo scope host  src 10.9.0.1 
local 10.9.0.1 dev lo scope host  src 10.9.0.1 
local 10.9.0.2 dev lo scope host  src 10.9.0.1 
broadcast 10.9.0.255 dev lo scope link  src 10.9.0.1 
""" + LO_LOCAL_ROUTES + """\
ip: RTNETLINK answers: Network is unreachable
default via 10.9.0.8 dev lo 
10.20.0.0/16 via 10.9.0.7 dev lo 
""" + ROUTE_N + """\
0.0.0.0         10.9.0.8        0.0.0.0         UG    0      0        0 lo
10.20.0.0       10.9.0.7        255.255.0.0     UG    0      0        0 lo
ip: RTNETLINK answers: No such process
""" + LO_IP + "10.20.0.0/16 via 10.9.0.7 dev lo \n" + LO_LOCAL_ROUTES.replace(
        "dev lo ", "dev lo table local ") + "local ::1 dev lo table local  metric 0 \n"
    same_as_linux(netns, ADDR_SCRIPT, got)


IOCTL_SCRIPT = ("ifconfig lo:3 10.77.0.1 netmask 255.255.255.0; ifconfig; "
                "route add -net 10.88.0.0 netmask 255.255.0.0 dev lo; route add default gw 10.77.0.9; "
                "route -n; netstat -rn; cat /proc/net/route; route del default; "
                "route del -net 10.88.0.0 netmask 255.255.0.0; route del default; ifconfig lo:3 down; "
                "ifconfig lo mtu 1500; ip link show lo; ifconfig lo mtu 65536; ifconfig; ifconfig nosuch")


def test_ifconfig_and_route(netns):
    """The ioctls: an alias address, routes by struct rtentry, the MTU."""
    got = guest(IOCTL_SCRIPT)
    pad = " " * 127
    assert got == LO_IFCONFIG + """\
lo:3      Link encap:Local Loopback  
          inet addr:10.77.0.1  Mask:255.255.255.0
          UP LOOPBACK RUNNING  MTU:65536  Metric:1

""" + ROUTE_N + """\
0.0.0.0         10.77.0.9       0.0.0.0         UG    0      0        0 lo
10.88.0.0       0.0.0.0         255.255.0.0     U     0      0        0 lo
""" + NETSTAT_RN + """\
0.0.0.0         10.77.0.9       0.0.0.0         UG        0 0          0 lo
10.88.0.0       0.0.0.0         255.255.0.0     U         0 0          0 lo
""" + "".join((line + pad)[:127] + "\n" for line in [
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
        "lo\t00000000\t09004D0A\t0003\t0\t0\t0\t00000000\t0\t0\t0",
        "lo\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0"]) + """\
route: SIOCDELRT: No such process
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 1500 qdisc noqueue qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
""" + LO_IFCONFIG + "ifconfig: nosuch: error fetching interface information: Device not found\n"
    same_as_linux(netns, IOCTL_SCRIPT, got)


V6_SCRIPT = ("ip -6 addr add fd00::5/64 dev lo; ip -6 addr add fd00::6/128 dev lo; ip -6 addr; "
             "ip -6 route show table all; sort /proc/net/if_inet6; "
             "cut -d' ' -f1-6,8- /proc/net/ipv6_route; ip -6 addr del fd00::5/64 dev lo; ip -6 route")


def test_ipv6_addresses(netns):
    """IPv6 routes through lo are reject routes (RTF_REJECT in ipv6_route);
    each table's root shows the null entry."""
    got = guest(V6_SCRIPT)
    null = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 " \
           "00000000000000000000000000000000 ffffffff 00000000 00200200       lo\n"
    assert got == """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qlen 1000
    inet6 fd00::6/128 scope global 
       valid_lft forever preferred_lft forever
    inet6 fd00::5/64 scope global 
       valid_lft forever preferred_lft forever
    inet6 ::1/128 scope host 
       valid_lft forever preferred_lft forever
fd00::6 dev lo  metric 256 
fd00::/64 dev lo  metric 256 
local ::1 dev lo table local  metric 0 
local fd00::5 dev lo table local  metric 0 
local fd00::6 dev lo table local  metric 0 
00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000005 01 40 00 80       lo
fd000000000000000000000000000006 01 80 00 80       lo
fd000000000000000000000000000006 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000000 00200200       lo
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000000 00200200       lo
""" + null + """\
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000000 80200001       lo
fd000000000000000000000000000005 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000000 80200001       lo
fd000000000000000000000000000006 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000000 80200001       lo
""" + null + "fd00::6 dev lo  metric 256 \n"
    same_as_linux(netns, V6_SCRIPT, got)


def test_unprivileged_user_reads_but_cannot_change():
    got = guest("su user -c 'ip addr show dev lo; ifconfig lo; ip link set lo down; "
                "ip addr add 10.1.1.1/24 dev lo; ip route add default via 127.0.0.2; ifconfig lo down; "
                "ifconfig lo:1 10.1.1.1; route add default gw 127.0.0.2; "
                "echo 40000 50000 > /proc/sys/net/ipv4/ip_local_port_range'; ip link show lo")
    assert got == LO_IP + LO_IFCONFIG + """\
ip: SIOCSIFFLAGS: Operation not permitted
ip: RTNETLINK answers: Operation not permitted
ip: RTNETLINK answers: Operation not permitted
ifconfig: SIOCSIFFLAGS: Operation not permitted
ifconfig: SIOCSIFADDR: Operation not permitted
route: SIOCADDRT: Operation not permitted
sh: can't create /proc/sys/net/ipv4/ip_local_port_range: Permission denied
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
"""


def test_unprivileged_port_start():
    """net.ipv4.ip_unprivileged_port_start: the first port a user without
    CAP_NET_BIND_SERVICE may bind (1024, as Linux), 0 for all; it may not
    reach into ip_local_port_range, whose start may not go below it."""
    nc = "su user -s /bin/sh -c 'timeout 1 nc -l -p {} 127.0.0.1' 2>&1; echo rc=$?; "
    got = guest("cd /proc/sys/net/ipv4; cat ip_unprivileged_port_start; " + nc.format(80)
                + "echo 80 > ip_unprivileged_port_start; " + nc.format(80) + nc.format(79)
                + "(echo 40000 > ip_unprivileged_port_start) 2>/dev/null || echo refused; "
                "(echo 79 > ip_local_port_range) 2>/dev/null || echo refused; "
                "echo 0 > ip_unprivileged_port_start; echo 79 > ip_local_port_range; "
                "cat ip_unprivileged_port_start ip_local_port_range")
    assert got == ("1024\nnc: bind: Permission denied\nrc=1\nTerminated\nrc=143\n"
                   "nc: bind: Permission denied\nrc=1\nrefused\nrefused\n0\n79\t60999\n"), got


def test_getifaddrs_netlink_and_ioctls(netns):
    """t_ifaddrs as root (ending as uid 1000); netlink's refusal of other
    protocols is logged once each."""
    r = boot("init=/bin/sh", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", init_args=["-c", "/t/bin/t_ifaddrs"])
    got = r.stdout.decode()
    assert got == (EXPECTED / "t_ifaddrs.out").read_text()
    log = r.stderr.decode()
    assert log.count("netlink: protocol 4 not supported") == 1
    same_as_linux(netns, str(PROGS / "t_ifaddrs"), got)


def test_proc_net_unix(netns, tmp_path):
    got = guest("mkdir /tmp/u; /t/bin/t_ifaddrs unix /tmp/u")
    assert got == """\
listener   00000002 00000000 00010000 0001 01 /tmp/u/listener
client     00000003 00000000 00000000 0001 03
accepted   00000003 00000000 00000000 0001 03 /tmp/u/listener
abstract   00000003 00000000 00000000 0002 03 @abs@name
sender     00000002 00000000 00000000 0002 03
pair0      00000003 00000000 00000000 0002 03
pair1      00000003 00000000 00000000 0002 03
seqpacket  00000002 00000000 00000000 0005 01
unbound    00000002 00000000 00000000 0001 01
"""
    tmp_path.chmod(0o755)
    native = netns(f"{PROGS / 't_ifaddrs'} unix {tmp_path}")
    if native is None:
        pytest.skip("no network namespace to compare with (needs root and unshare)")
    assert native.replace(str(tmp_path), "/tmp/u") == got


PROC_NET = ["arp", "dev", "icmp", "icmp6", "raw", "raw6", "route", "tcp", "tcp6", "udp", "udp6", "unix"]


def test_proc_net_headers_are_the_hosts():
    """The header lines, with their padding, byte for byte as the host's
    kernel prints them."""
    got = guest("; ".join(f"head -1 /proc/net/{f}" for f in PROC_NET)).splitlines(keepends=True)
    for name, line in zip(PROC_NET, got):
        host = Path("/proc/net") / name
        if host.exists():
            assert line == host.open().readline(), name


def test_proc_net_files():
    got = guest("readlink /proc/net; ls /proc/self/net; ls /proc/1/task/1/net | wc -l; "
                "cat /proc/net/dev /proc/net/if_inet6 /proc/net/arp /proc/net/sockstat /proc/net/sockstat6 "
                "/proc/net/snmp; head -c 54 /proc/net/netstat; echo; tail -1 /proc/net/netstat")
    zeros = " ".join(["0"] * 18)
    assert got == """\
self/net
arp         if_inet6    raw         sockstat    udp         unix
dev         ipv6_route  raw6        sockstat6   udp6
icmp        netstat     route       tcp         udplite
icmp6       pnp         snmp        tcp6        udplite6
21
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
00000000000000000000000000000001 01 80 10 80       lo
IP address       HW type     Flags       HW address            Mask     Device
sockets: used 0
TCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0
UDP: inuse 0 mem 0
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
TCP6: inuse 0
UDP6: inuse 0
UDPLITE6: inuse 0
RAW6: inuse 0
FRAG6: inuse 0 memory 0
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards \
InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails \
FragCreates
Ip: 2 64 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos \
InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutDestUnreachs \
OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps \
OutAddrMasks OutAddrMaskReps
Icmp: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs \
OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 0 0 0 0 0 0 0 0 0 0 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 0 0 0 0 0 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed
IpExt: """ + zeros + "\n"


def test_tcp_sockets_in_proc_net_and_netstat():
    got = guest("httpd -p 127.0.0.1:8080 -h /tmp; nc -l -p 2222 -e sleep 2 & sleep 0.3; "
                "sleep 3 | nc 127.0.0.1 2222 & sleep 0.6; netstat -tuln; netstat -tn; "
                "cat /proc/net/tcp /proc/net/tcp6 /proc/net/sockstat /proc/net/sockstat6; "
                "grep CurrEstab -A1 /proc/net/snmp | tail -1 | cut -d' ' -f10; wait")
    got = re.sub(r" 0 +\d+ 2 [0-9a-f]{16} ", " 0 INODE 2 POINTER ", got)
    port = re.search(r"127\.0\.0\.1:(\d+) +127\.0\.0\.1:2222", got).group(1)
    got = got.replace(port, "PORT").replace(f"{int(port):04X}", "PORT")
    got = "".join(line.rstrip() + "\n" for line in got.splitlines())    # the padding changed with the text
    v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    assert got == """\
Active Internet connections (only servers)
Proto Recv-Q Send-Q Local Address           Foreign Address         State
tcp        0      0 127.0.0.1:8080          0.0.0.0:*               LISTEN
Active Internet connections (w/o servers)
Proto Recv-Q Send-Q Local Address           Foreign Address         State
tcp        0      0 127.0.0.1:PORT         127.0.0.1:2222          ESTABLISHED
tcp        0      0 ::ffff:127.0.0.1:2222   ::ffff:127.0.0.1:PORT  ESTABLISHED
""" + "".join(line + "\n" for line in [
        v4,
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 INODE 2 "
        "POINTER 100 0 0 10 0",
        "   1: 0100007F:PORT 0100007F:08AE 01 00000000:00000000 00:00000000 00000000     0        0 INODE 2 "
        "POINTER 20 4 30 10 -1"]) + """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:08AE 0000000000000000FFFF00000100007F:PORT 01 00000000:00000000 00:00000000 00000000     0        0 INODE 2 POINTER 20 4 30 10 -1
sockets: used 3
TCP: inuse 2 orphan 0 tw 0 alloc 3 mem 0
UDP: inuse 0 mem 0
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
TCP6: inuse 1
UDP6: inuse 0
UDPLITE6: inuse 0
RAW6: inuse 0
FRAG6: inuse 0 memory 0
2
"""


def test_sysctls():
    got = guest("cd /proc/sys/net; cat core/somaxconn ipv4/ip_local_port_range ipv4/ping_group_range "
                "ipv4/ip_forward; echo 40000 50000 > ipv4/ip_local_port_range; cat ipv4/ip_local_port_range; "
                "echo 500 600 > ipv4/ip_local_port_range; echo 9 8 > ipv4/ip_local_port_range; "
                "echo x > ipv4/ip_local_port_range; cat ipv4/ip_local_port_range; "
                "echo 100 10 > ipv4/ping_group_range; cat ipv4/ping_group_range")
    assert got == ("4096\n32768\t60999\n0\t2147483647\n0\n40000\t50000\n"
                   + "sh: write error: Invalid argument\n" * 3 + "40000\t50000\n1\t0\n")


def _host_tool(name: str) -> tuple[str, str]:
    """The host's iproute2 tool, as the guest runs it (through the host's
    loader from a hostfs mount: the busybox guest has no glibc) and as the
    host does; skipped unless it is Debian 12's iproute2 6.1."""
    tool = Path("/usr/bin") / name
    if not (HOST_LD.exists() and tool.exists()):
        pytest.skip(f"no host {tool}")
    version = subprocess.run([str(tool), "-V"], capture_output=True, text=True).stdout
    if "iproute2-6.1.0" not in version:
        pytest.skip(f"host {name} is not iproute2 6.1 ({version.strip()})")
    return f"/host{HOST_LD} --library-path /host{HOST_LIBS} /host{tool}", str(tool)


IPROUTE2_SCRIPT = """\
ip addr; ip link; ip route; ip route show table local; ip -6 addr; ip -6 route show table local
ip -br addr; ip -s link show lo; ip -d link show lo
ip link set lo down; ip addr; ip link set lo up
ip addr add 10.9.0.1/24 dev lo; ip addr add 10.9.0.1/24 dev lo; ip addr add 10.9.0.2/24 brd + dev lo
ip route show table local; ip route get 10.9.0.5; ip route get 8.8.8.8
ip route add 10.20.0.0/16 via 10.9.0.7; ip route add 10.40.0.0/16 via 99.9.9.9; ip route
ip route replace 10.20.0.0/16 via 10.9.0.9; ip route del 10.30.0.0/16; ip route; ip rule; ip -6 rule; ip neigh
ip addr flush dev lo; ip -6 addr add fd00::5/64 dev lo; ip -6 addr; ip -6 route
ip link set lo mtu 1500; ip link set dev lo txqueuelen 500; ip link show lo
ip link add dummy0 type dummy; ip link del lo; ip link show nosuch; ip -o addr; ip -j link
"""


def test_iproute2(netns):
    """Debian's ip: dumps with strict checking and extended acks, link
    changes by RTM_NEWLINK, route lookups."""
    ip, native_ip = _host_tool("ip")
    got = guest(f"mkdir /host; mount none /host -t hostfs -o /; ip() {{ {ip} \"$@\"; }}\n" + IPROUTE2_SCRIPT,
                "hostfs=/")
    for line in ("RTNETLINK answers: File exists", "Error: Nexthop has invalid gateway.",
                 "Error: Unknown device type.", "RTNETLINK answers: Operation not supported",
                 'Device "nosuch" does not exist.', "local 10.9.0.5 dev lo src 10.9.0.1 uid 0 ",
                 "    cache <local> ", "32766:\tfrom all lookup main",
                 "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0 minmtu 0 maxmtu 0 "
                 "addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 "
                 "tso_max_size 524280 tso_max_segs 65535 gro_max_size 65536 ",
                 "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 1500 qdisc noqueue state UNKNOWN mode DEFAULT group "
                 "default qlen 500"):
        assert line + "\n" in got, (line, got)
    same_as_linux(netns, f"ip() {{ {native_ip} \"$@\"; }}\n" + IPROUTE2_SCRIPT, got)


def test_ss_falls_back_to_proc_net():
    """ss asks sock_diag first; refused, it reads /proc/net/tcp{,6}."""
    ss = _host_tool("ss")[0]
    got = guest(f"mkdir /host; mount none /host -t hostfs -o /; nc -l -p 2222 & httpd -p 127.0.0.1:8080; "
                f"sleep 0.3; {ss} -tln; kill %1", "hostfs=/")
    assert got == """\
Cannot open netlink socket: Protocol not supported
State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess
LISTEN 0      0          127.0.0.1:8080      0.0.0.0:*          
LISTEN 0      0                  *:2222            *:*          
"""


def test_an_ethernet_device_in_the_stack():
    """What eth0=user's device becomes (net/slirp adds it): addrconf's
    link-local address on up, the routes of 10.0.2.15/24 and a default
    route, source selection, and their /proc/net lines (in the host's
    format: compare the host's eth0 lines)."""
    from types import SimpleNamespace

    from umlpy.fs.procfs.net import Net
    from umlpy.abi import errno as E
    from umlpy.kernel.errors import KernelError
    from umlpy.net import netdev as D

    net = D.NetStack()
    eth = net.add_device(D.NetDevice("eth0", 0, hwaddr=bytes.fromhex("525400123456")))
    assert eth.index == 2 and eth.qdisc == "noop" and eth.operstate == D.IF_OPER_DOWN
    net.set_flags(eth, eth.flags | D.IFF_UP)
    ip = bytes([10, 0, 2, 15])
    net.add_addr(eth, D.IfAddr(D.AF_INET, ip, 24, broadcast=bytes([10, 0, 2, 255])))
    net.add_route(D.Route(D.AF_INET, bytes(4), 0, eth.index, gateway=bytes([10, 0, 2, 2]),
                          protocol=D.RTPROT_BOOT))
    assert (eth.qdisc, eth.operstate) == ("pfifo_fast", D.IF_OPER_UP)
    assert net.route(D.AF_INET, bytes([8, 8, 8, 8])) == (eth, bytes([10, 0, 2, 2]), ip)
    assert net.is_local(D.AF_INET, ip) and not net.is_local(D.AF_INET, bytes([10, 0, 2, 16]))
    proc = Net(SimpleNamespace(net=net, sched=SimpleNamespace(current=None)))     # read by the kernel itself
    assert proc.route().splitlines()[1:] == [
        "eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0".ljust(127),
        "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0".ljust(127)]
    assert proc.if_inet6().splitlines() == ["00000000000000000000000000000001 01 80 10 80       lo",
                                            "fe80000000000000505400fffe123456 02 40 20 80     eth0"]
    six = [line for line in proc.ipv6_route().splitlines() if line.endswith("eth0")]
    assert six == [
        "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0",
        "fe80000000000000505400fffe123456 80 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0",
        "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0"]
    net.set_flags(eth, eth.flags & ~D.IFF_UP)
    assert [a.addr for a in eth.addrs] == [ip]
    assert [(r.dst, r.type) for r in net.routes if r.ifindex == eth.index] == [(ip, D.RTN_LOCAL)]
    with pytest.raises(KernelError) as e:
        net.route(D.AF_INET, bytes([8, 8, 8, 8]))
    assert e.value.errno == E.ENETUNREACH


SYS_LO = "cd /sys/class/net/lo && for f in " + " ".join(
    ["addr_len", "address", "broadcast", "carrier", "dev_id", "flags", "ifindex", "iflink", "mtu",
     "operstate", "tx_queue_len", "type", "uevent"]) + "; do echo \"$f: $(cat $f 2>&1 | tr '\\n' ' ')\"; done"


def test_sys_class_net():
    """/sys/class/net as scripts and psutil read it: lo's attributes are the
    host's own lo's; eth0=user's follow its state (carrier EINVAL while it
    is down, as carrier_show), flags without RUNNING and LOWER_UP, and
    statistics/ counts what went through."""
    got = guest("mount -t sysfs s /sys; " + SYS_LO)
    want = subprocess.run(["sh", "-c", SYS_LO], capture_output=True, text=True).stdout
    assert got == want and "flags: 0x9 " in got, (got, want)
    got = guest("mount -t sysfs s /sys; ls -1 /sys/class/net; readlink /sys/class/net/eth0; cd /sys/class/net/eth0; "
                "cat address operstate flags; cat carrier; ip link set eth0 up; cat operstate flags carrier; "
                "ls statistics | wc -l", "eth0=user")
    assert got == ("eth0\nlo\n../../devices/virtual/net/eth0\n52:54:00:12:34:56\ndown\n0x1002\n"
                   "cat: read error: Invalid argument\nup\n0x1003\n1\n24\n"), got
