"""User-mode networking (eth0=user): guests reaching services on the
host's loopback through the gateway 10.0.2.2, hostfwd from host ports to
guest services, DHCP, ip=, DNS through 10.0.2.3, echo requests and
restrict=on.  Every host peer here is on 127.0.0.1; no test sends a
packet beyond the host (192.0.2.1 is tried under restrict=on only, where
the kernel refuses it before any host socket exists)."""
from __future__ import annotations

import http.server
import os
import queue
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, ROOT, UMLPY, as_nobody, boot, copy_image, sh
from hostview import children

from umlpy.net.inet import wire
from umlpy.net.slirp import config, dhcp

PATH = PATH_ENV + ":/usr/sbin"
NET = "eth0=user"
T = "/t/bin/t_netuser"
PROC = "mount -t proc proc /proc; "


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Guest:
    """A guest running a shell script while the test talks to it: its
    console output is read line by line; closing its stdin (`done`) lets
    a script waiting in `read x` end."""

    def __init__(self, script: str, *params: str, prefix: list[str] | None = None) -> None:
        cmd = [*(prefix or []), str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet",
               "init=/bin/sh", PATH, *params, "--", "-c", script]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self.out: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, text: bytes, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > end:
                self.p.kill()
                raise AssertionError(f"no {text!r} in {b''.join(self.out)!r}: "
                                     f"{self.p.stderr.read().decode()[-2000:]}")
            self.out.append(line)
            if text in line:
                return

    def send(self, line: bytes) -> None:
        """A line on the console for the script's next `read x`."""
        self.p.stdin.write(line + b"\n")
        self.p.stdin.flush()

    def done(self, timeout: float = 60) -> tuple[bytes, str]:
        """Close stdin, wait; (all console output, kernel log)."""
        self.p.stdin.close()
        self.p.wait(timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.out.append(line)
        return b"".join(self.out), self.p.stderr.read().decode()


@pytest.fixture
def http_server(tmp_path):
    """A host HTTP server on 127.0.0.1 serving tmp_path."""
    (tmp_path / "index.html").write_text("hello from the host\n")
    (tmp_path / "big").write_bytes(bytes(range(256)) * 8192)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def udp_server(reply) -> tuple[socket.socket, int]:
    """A host UDP server on 127.0.0.1 answering each datagram with reply(data)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                data, peer = s.recvfrom(2048)
            except OSError:
                return
            answer = reply(data)
            if answer is not None:
                s.sendto(answer, peer)
    threading.Thread(target=serve, daemon=True).start()
    return s, s.getsockname()[1]


# -- the gateway: the host's loopback ------------------------------------------------

@pytest.mark.parametrize("who", ["root", "nobody"])
def test_guest_wget_from_host_server_through_gateway(http_server, who):
    closed = free_port()
    r = sh(f"wget -qO- http://10.0.2.2:{http_server}/index.html; "
           f"wget -qO /tmp/big http://10.0.2.2:{http_server}/big && md5sum /tmp/big; "
           f"wget -qO- http://10.0.2.2:{closed}/; echo closed=$?",
           NET, "ip=dhcp", prefix=as_nobody() if who == "nobody" else None)
    big = subprocess.run(["md5sum"], input=bytes(range(256)) * 8192,
                         capture_output=True).stdout.split()[0]
    assert r.stdout == (b"hello from the host\n" + big + b"  /tmp/big\n"
                        b"wget: can't connect to remote host (10.0.2.2): Connection refused\n"
                        b"closed=1\n"), r.stderr.decode()[-3000:]


def test_guest_loopback_is_not_the_hosts_but_the_gateway_is():
    """With eth0=user, the host's 127.0.0.1:P is 10.0.2.2:P to the guest,
    never its own 127.0.0.1:P."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve():
        c, _ = srv.accept()
        c.sendall(b"host service\n")
        c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        r = sh(f"nc 127.0.0.1 {port} </dev/null; echo own=$?; nc 10.0.2.2 {port} </dev/null",
               NET, "ip=dhcp")
        assert r.stdout == (b"nc: can't connect to remote host (127.0.0.1): Connection refused\n"
                            b"own=1\nhost service\n"), r.stderr.decode()[-3000:]
    finally:
        srv.close()


# t_v6scope's output on Linux 6.1 (the host here, with an eth0 of its own)
V6SCOPE = """\
eth0 has a link-local address: 1, getifaddrs gives its scope: 1
bind without an interface: EINVAL
bind to no such interface: ENODEV
bind on another interface: EADDRNOTAVAIL
bind on its interface: ok
the listener's name has the interface: 1
connect without an interface: EINVAL
connect with it: ok
the client's names have it: 1 1
accept's peer has it: 1
the connection's names have it: 1 1
it is bound to the device: eth0
connect with another interface than the bound one: EINVAL
udp connect without an interface: EINVAL
udp connect with it: ok
recvfrom's sender has it: 1
bind ::1: ok
::1 has no scope: 1
v6 bind again, to an address not ours: EINVAL
v6 bind an address not ours: EADDRNOTAVAIL
tcp bind to a group: EINVAL
v4 bind again, to an address not ours: EADDRNOTAVAIL
done
"""


def test_link_local_addresses_carry_their_interface():
    """eth0's fe80:: address as Linux treats it: bind and connect need its
    interface (sin6_scope_id, or SO_BINDTODEVICE) and every name of such
    a socket shows it (getsockname, getpeername, accept, recvfrom; found
    by twisted's TCP6 tests, which all failed on it); SO_BINDTODEVICE
    takes a name shorter than an int ("lo" and its NUL: EINVAL here before)."""
    r = sh("ip link set eth0 up; /t/bin/t_v6scope", NET)
    assert r.stdout.decode() == V6SCOPE, r.stderr.decode()


# t_mcast's output on Linux 6.1 (the host here, with a default route)
MCAST = """\
join: 0
r1: joined
r2: joined
r1: all-off
r2:
r1:
r1: from-a-member
leave: 0
r1:
done
"""


def test_multicast_loops_back_to_the_guests_own_sockets():
    """A datagram to a group reaches the guest's sockets that take it, as
    Linux loops multicast back (it reached none: twisted's multicast
    tests)."""
    r = sh("/t/bin/t_mcast", NET, "ip=dhcp")
    assert r.stdout.decode() == MCAST, r.stderr.decode()


def test_no_eth0_means_no_network():
    r = sh(f"{T} connect 10.0.2.2 80; {T} sendto 10.0.2.2 80")
    assert r.stdout == b"connect: -1 ENETUNREACH\nsendto: -1 ENETUNREACH\n", r.stderr.decode()
    assert "eth0" not in r.stderr.decode()


def test_unconfigured_eth0_has_no_route():
    r = sh(f"{T} connect 10.0.2.2 80; {T} sendto 10.0.2.2 9", NET)
    assert r.stdout == b"connect: -1 ENETUNREACH\nsendto: -1 ENETUNREACH\n", r.stderr.decode()


# -- hostfwd ------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["root", "nobody"])
def test_hostfwd_tcp_to_guest_listener(who):
    hp = free_port()
    g = Guest(f"{T} tcp-accept 8000", "ip=dhcp", f"eth0=user,hostfwd=tcp::{hp}-:8000",
              prefix=as_nobody() if who == "nobody" else None)
    g.expect(b"listening")
    with socket.create_connection(("127.0.0.1", hp), timeout=10) as c:
        me = c.getsockname()[1]
        c.sendall(b"hello guest\n")
        assert c.makefile("rb").read() == b"got hello guest\n"
    out, _ = g.done()
    assert f"peer 10.0.2.2 port {me}\n".encode() in out, out


def test_hostfwd_tcp_to_busybox_httpd():
    hp = free_port()
    g = Guest("mkdir -p /tmp/www && echo guest page > /tmp/www/index.html && "
              "head -c 3000000 /dev/urandom > /tmp/www/blob && md5sum /tmp/www/blob && "
              "httpd -p 80 -h /tmp/www && echo READY; read x",
              "ip=dhcp", f"eth0=user,hostfwd=tcp::{hp}-:80")
    g.expect(b"READY")
    import urllib.request
    page = urllib.request.urlopen(f"http://127.0.0.1:{hp}/index.html", timeout=10).read()
    blob = urllib.request.urlopen(f"http://127.0.0.1:{hp}/blob", timeout=30).read()
    out, _ = g.done()
    assert page == b"guest page\n"
    assert len(blob) == 3000000
    import hashlib
    assert hashlib.md5(blob).hexdigest().encode() in out


def test_hostfwd_without_guest_listener_resets():
    hp = free_port()
    g = Guest("echo READY; read x", "ip=dhcp", f"eth0=user,hostfwd=tcp::{hp}-:8000")
    g.expect(b"READY")
    # the reset can beat the client back from connect (a busy host): then connect reports it
    with pytest.raises(ConnectionResetError):
        with socket.create_connection(("127.0.0.1", hp), timeout=10) as c:
            c.sendall(b"x")
            c.recv(10)
    g.done()


def test_hostfwd_udp_and_udp_out_through_gateway():
    hp = free_port(socket.SOCK_DGRAM)
    echo, ep = udp_server(lambda d: b"echo:" + d)
    try:
        g = Guest(f"{T} udp-ask 10.0.2.2 {ep} hello; {T} udp-echo 7000 1",
                  "ip=dhcp", f"eth0=user,hostfwd=udp::{hp}-:7000")
        g.expect(b"listening")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(10)
            c.connect(("127.0.0.1", hp))      # answers must come from the forwarded port
            c.send(b"datagram")
            assert c.recv(100) == b"datagram"
            me = c.getsockname()[1]
        out, log = g.done()
    finally:
        echo.close()
    assert out == (f"sendto: 5\nanswer echo:hello\nfrom 10.0.2.2 port {ep}\nlistening\n"
                   f"from 10.0.2.2 port {me}\n").encode(), log[-3000:]


def test_other_eth0_transports_are_warned_of_and_ignored():
    """UML's other transports (tap, ...) are one warning naming the option,
    and the guest boots without that device, as UML does when it cannot
    open one; never a value passed on to init."""
    r = boot("init=/bin/sh", "eth0=tap,tap0",
             init_args=["-c", "env | grep -c eth0; mount -t proc proc /proc && cat /proc/net/dev"])
    assert r.returncode == 0
    assert r.stdout.startswith(b"0\n") and b"eth0" not in r.stdout, r.stdout
    log = r.stderr.decode()
    assert log.count("eth0=tap,tap0") == 2 and "not supported by umlpy, ignored" in log, log[-1000:]


def test_bad_eth0_values_stop_the_boot():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        for value, why in [("eth0=user,hostfwd=tcp:127.0.0.1:80", "expected [tcp|udp]"),
                           ("eth0=user,hostfwd=sctp::1-:2", "not tcp or udp"),
                           ("eth0=user,hostfwd=tcp::70000-:2", "is not a port"),
                           ("eth0=user,hostfwd=tcp::5000-10.0.3.1:80", "10.0.2.0/24"),
                           ("eth0=user,net=10.1.0.0/24", "not supported"),
                           (f"eth0=user,hostfwd=tcp::{busy.getsockname()[1]}-:80",
                            "Address already in use")]:
            r = boot("init=/bin/true", value)
            assert r.returncode == 1, value
            assert "Kernel panic" in r.stderr.decode() and why in r.stderr.decode(), \
                (value, r.stderr.decode()[-1000:])
    finally:
        busy.close()


def test_slirp_is_taken_as_user():
    r = sh(f"{T} ping 10.0.2.2", "eth0=slirp,,/usr/bin/slirp", "ip=dhcp")
    assert b"seq 1: type 0 len 64 ident ours data same\n" in r.stdout, r.stderr.decode()[-2000:]
    assert "eth0=slirp: taken as eth0=user" in r.stderr.decode()


def _sockets(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def test_host_sockets_follow_guest_sockets_and_never_reach_guests():
    """The kernel's host sockets go with the guest sockets they serve, and
    no guest process ever holds one."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    echo, ep = udp_server(lambda d: d)
    try:
        g = Guest(f"echo S1; read x; {T} udp-ask 10.0.2.2 {ep} a >/dev/null; "
                  f"nc 10.0.2.2 {srv.getsockname()[1]} & sleep 0.5; echo S2; read x; "
                  "kill $!; wait; echo S3; read x", NET, "ip=dhcp")
        g.expect(b"S1")
        base = _sockets(g.p.pid)
        g.send(b"")
        g.expect(b"S2")
        during = _sockets(g.p.pid)
        guests = sorted(children(g.p.pid))
        leaked = [p for p in guests if _sockets(p)]
        g.send(b"")
        g.expect(b"S3")
        time.sleep(0.2)
        after = _sockets(g.p.pid)
        g.done()
    finally:
        srv.close()
        echo.close()
    assert guests and not leaked
    assert (during, after) == (base + 1, base), (base, during, after)


# -- restrict=on ------------------------------------------------------------------------

def test_restrict_allows_only_gateway_dns_and_forwards(http_server):
    r = sh(f"wget -qO- http://10.0.2.2:{http_server}/index.html; "
           f"{T} connect 192.0.2.1 80; {T} sendto 192.0.2.1 53; {T} ping 192.0.2.1; "
           f"{T} ping 10.0.2.2",
           "eth0=user,restrict=on", "ip=dhcp", "loglevel=7")
    assert r.stdout == (b"hello from the host\n"
                        b"connect: -1 EPERM\nsendto: -1 EPERM\nsendto: -1 EPERM\n"
                        b"seq 1: type 0 len 64 ident ours data same\n"
                        b"reply from 10.0.2.2 port 0\n"), r.stderr.decode()[-3000:]
    assert "restrict=on: 192.0.2.1 refused" in r.stderr.decode()


# -- DHCP and ip= -------------------------------------------------------------------------

ENV_SCRIPT = ("printf '#!/bin/sh\\necho \"$1 ip=$ip mask=$mask router=$router dns=$dns "
              "lease=$lease serverid=$serverid\"\\n' > /tmp/s.sh; chmod +x /tmp/s.sh; ")


def test_udhcpc_obtains_the_lease():
    r = sh(ENV_SCRIPT + "ifconfig eth0 up; udhcpc -i eth0 -n -q -t 2 -T 1 -s /tmp/s.sh 2>&1",
           NET)
    assert r.stdout == (b"udhcpc: started, v1.35.0\n"
                        b"deconfig ip= mask= router= dns= lease= serverid=\n"
                        b"udhcpc: broadcasting discover\n"
                        b"udhcpc: broadcasting select for 10.0.2.15, server 10.0.2.2\n"
                        b"udhcpc: lease of 10.0.2.15 obtained from 10.0.2.2, lease time 86400\n"
                        b"bound ip=10.0.2.15 mask=24 router=10.0.2.2 dns=10.0.2.3 lease=86400 "
                        b"serverid=10.0.2.2\n"), r.stderr.decode()[-3000:]


def test_udhcpc_renews_and_releases_over_udp():
    """Renewal is unicast through UDP sockets bound to port 68 (the sending
    one is closed before the answer comes)."""
    r = sh(ENV_SCRIPT + "udhcpc -i eth0 -f -p /tmp/u.pid -s /tmp/s.sh >/tmp/log 2>&1 & "
           "sleep 0.5; kill -USR1 $(cat /tmp/u.pid); sleep 0.5; kill -USR2 $(cat /tmp/u.pid); "
           "sleep 0.5; kill $(cat /tmp/u.pid); wait; grep -v started /tmp/log",
           NET, "ip=dhcp")
    assert r.stdout == (b"deconfig ip= mask= router= dns= lease= serverid=\n"
                        b"udhcpc: broadcasting discover\n"
                        b"udhcpc: broadcasting select for 10.0.2.15, server 10.0.2.2\n"
                        b"udhcpc: lease of 10.0.2.15 obtained from 10.0.2.2, lease time 86400\n"
                        b"bound ip=10.0.2.15 mask=24 router=10.0.2.2 dns=10.0.2.3 lease=86400 "
                        b"serverid=10.0.2.2\n"
                        b"udhcpc: sending renew to server 10.0.2.2\n"
                        b"udhcpc: lease of 10.0.2.15 obtained from 10.0.2.2, lease time 86400\n"
                        b"renew ip=10.0.2.15 mask=24 router=10.0.2.2 dns=10.0.2.3 lease=86400 "
                        b"serverid=10.0.2.2\n"
                        b"udhcpc: unicasting a release of 10.0.2.15 to 10.0.2.2\n"
                        b"udhcpc: sending release\n"
                        b"udhcpc: entering released state\n"
                        b"deconfig ip= mask= router= dns= lease= serverid=\n"
                        b"udhcpc: received SIGTERM\n"), r.stderr.decode()[-3000:]


def test_default_script_configures_eth0(http_server):
    r = sh("udhcpc -i eth0 -n -q -t 2 -T 1 >/dev/null 2>&1; echo rc=$?; "
           "ip -4 addr show dev eth0 | grep inet; ip route; cat /etc/resolv.conf; "
           f"wget -qO- http://10.0.2.2:{http_server}/index.html", NET)
    assert r.stdout == (b"rc=0\n"
                        b"    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\n"
                        b"default via 10.0.2.2 dev eth0 \n"
                        b"10.0.2.0/24 dev eth0 scope link  src 10.0.2.15 \n"
                        b"nameserver 10.0.2.3\n"
                        b"hello from the host\n"), r.stderr.decode()[-3000:]


def test_disk_image_takes_a_lease_at_boot(tmp_path, http_server):
    """What `make run` boots: the image's rcS runs udhcpc when there is an
    eth0, and the shell one logs into has the network."""
    from test_tty import Terminal
    base = tmp_path / "base.img"
    copy_image(ROOT / "rootfs" / "busybox.img", base)
    term = Terminal(NET, root=f"ubd0={tmp_path / 'run.cow'},{base}")
    try:
        term.expect(rb"login: ")
        term.send(b"root\r")
        term.expect(rb"Password: ")
        term.send(b"umlpy\r")
        term.expect(rb"# ")
        term.send(b"ip -4 addr show eth0 | grep -c 'inet 10.0.2.15/24'; cat /etc/resolv.conf; "
                  b"wget -qO- http://10.0.2.2:%d/index.html\r" % http_server)
        term.expect(rb"\r\n1\r\nnameserver 10.0.2.3\r\nhello from the host\r\n")
        term.expect(rb"# ")
        term.send(b"poweroff\r")
        assert term.wait(60) == 0
    finally:
        term.close()


def test_disk_image_without_eth0_does_not_wait(tmp_path):
    base = tmp_path / "base.img"
    copy_image(ROOT / "rootfs" / "busybox.img", base)
    r = subprocess.run([str(UMLPY), str(IMAGE), f"ubd0={tmp_path / 'run.cow'},{base}", "quiet",
                        "init=/bin/sh", "--", "-c", "time sh /etc/init.d/rcS"],
                       capture_output=True, timeout=120)
    assert r.stdout.startswith(b"real\t0m 0."), (r.stdout, r.stderr.decode()[-2000:])


def test_ip_dhcp_at_boot():
    r = sh(f"{PROC}cat /proc/net/pnp; {T} ping 10.0.2.2; {T} ping 10.0.2.15", NET, "ip=dhcp",
           "loglevel=7")
    log = r.stderr.decode()
    assert "IP-Config: Got DHCP answer from 10.0.2.2, my address is 10.0.2.15" in log
    assert ("device=eth0, hwaddr=52:54:00:12:34:56, ipaddr=10.0.2.15, mask=255.255.255.0, "
            "gw=10.0.2.2") in log
    assert r.stdout == (b"#PROTO: DHCP\nnameserver 10.0.2.3\nbootserver 10.0.2.2\n"
                        b"seq 1: type 0 len 64 ident ours data same\nreply from 10.0.2.2 port 0\n"
                        b"seq 1: type 0 len 64 ident ours data same\nreply from 10.0.2.15 port 0\n"
                        ), log[-3000:]


def test_ip_static_at_boot():
    r = sh(f"{PROC}cat /proc/net/pnp; hostname; {T} ping 10.0.2.20; {T} ping 10.0.2.2", NET,
           "ip=10.0.2.20:10.0.2.2:10.0.2.2:255.255.255.0:guesthost:eth0:off:10.0.2.3",
           "loglevel=7")
    log = r.stderr.decode()
    assert ("device=eth0, hwaddr=52:54:00:12:34:56, ipaddr=10.0.2.20, mask=255.255.255.0, "
            "gw=10.0.2.2") in log, log[-3000:]
    assert r.stdout == (b"#MANUAL\nnameserver 10.0.2.3\nbootserver 10.0.2.2\nguesthost\n"
                        b"seq 1: type 0 len 64 ident ours data same\nreply from 10.0.2.20 port 0\n"
                        b"seq 1: type 0 len 64 ident ours data same\nreply from 10.0.2.2 port 0\n"
                        ), log[-3000:]


def test_ip_without_eth0_is_logged_and_boot_goes_on():
    r = sh("echo up", "ip=dhcp")
    assert r.stdout == b"up\n"
    assert "IP-Config: Device `eth0' not found." in r.stderr.decode()


# -- echo requests --------------------------------------------------------------------------

def test_busybox_ping_as_root():
    r = sh("ping -c 2 127.0.0.1 | grep -c 'bytes from 127.0.0.1: seq=.* ttl=64'; "
           "ping -c 1 10.0.2.2 | grep -c 'bytes from 10.0.2.2: seq=0 ttl=255'; "
           "ping6 -c 1 ::1 | grep -c 'bytes from ::1: seq=0 ttl=64'; "
           "ping -c 1 10.0.2.15 | grep -c 'from 10.0.2.15'", NET, "ip=dhcp")
    assert r.stdout == b"2\n1\n1\n1\n", r.stderr.decode()[-3000:]


def test_ping_sockets_for_the_groups_in_ping_group_range():
    r = sh(f"{PROC}cat /proc/sys/net/ipv4/ping_group_range; "
           f"su user -c '{T} ping 127.0.0.1 2; {T} ping ::1; {T} ping 10.0.2.2; {T} packet'; "
           f"echo '1 0' > /proc/sys/net/ipv4/ping_group_range; {T} ping 127.0.0.1",
           NET, "ip=dhcp")
    assert r.stdout == (b"0\t2147483647\n"b"seq 1: type 0 len 64 ident ours data same\nreply from 127.0.0.1 port 0\n"
                        b"seq 2: type 0 len 64 ident ours data same\nreply from 127.0.0.1 port 0\n"
                        b"seq 1: type 129 len 64 ident ours data same\nreply from ::1 port 0\n"
                        b"seq 1: type 0 len 64 ident ours data same\nreply from 10.0.2.2 port 0\n"
                        b"socket: -1 EPERM\nsocket: -1 EACCES\n"), r.stderr.decode()[-3000:]


# -- DNS --------------------------------------------------------------------------------------

def _dns_answer(query: bytes) -> bytes:
    """A resolver that knows one thing: every name is 192.0.2.77 (A);
    other types get an empty answer."""
    qid, _flags, qd = struct.unpack_from("!HHH", query)
    end = 12
    while query[end]:
        end += query[end] + 1
    qtype = struct.unpack_from("!H", query, end + 1)[0]
    question = query[12:end + 5]
    answers = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 77])
               if qtype == 1 else b"")
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if answers else 0, 0, 0) + question + answers


def test_dns_through_the_forwarder():
    """UDP queries are forwarded under their own ids; TCP to 10.0.2.3:53
    reaches the resolver's TCP port."""
    srv, port = udp_server(_dns_answer)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", port))
    tcp.listen()

    def serve_tcp():
        c, _ = tcp.accept()
        c.sendall(b"dns over tcp\n")
        c.close()
    threading.Thread(target=serve_tcp, daemon=True).start()
    try:
        r = sh("nslookup -type=a some.name.test 10.0.2.3; nc 10.0.2.3 53 </dev/null; "
               "nc 10.0.2.3 54 </dev/null", NET, "ip=dhcp", f"eth0=user,hostdns=127.0.0.1:{port}")
    finally:
        srv.close()
        tcp.close()
    assert r.stdout.endswith(b"Name:\tsome.name.test\nAddress: 192.0.2.77\n\ndns over tcp\n"
                             b"nc: can't connect to remote host (10.0.2.3): Connection refused\n"), \
        (r.stdout, r.stderr.decode()[-3000:])


def test_dns_without_resolver_is_logged():
    r = sh("nslookup -timeout=1 -retry=1 x.test 10.0.2.3 >/dev/null 2>&1; echo rc=$?", NET,
           "ip=dhcp", "eth0=user,hostdns=127.0.0.1:1")
    assert r.stdout == b"rc=1\n"


# -- the pieces, without a guest -----------------------------------------------------------

def test_hostfwd_syntax():
    f = config.parse_hostfwd("tcp:127.0.0.1:8080-:80")
    assert (f.proto, f.host_ip, f.host_port, f.guest_ip, f.guest_port) == \
        ("tcp", bytes([127, 0, 0, 1]), 8080, bytes([10, 0, 2, 15]), 80)
    f = config.parse_hostfwd("udp::5353-10.0.2.20:53")
    assert (f.proto, f.host_ip, f.guest_ip) == ("udp", bytes([127, 0, 0, 1]), bytes([10, 0, 2, 20]))
    assert config.parse_hostfwd("::2222-:22").proto == "tcp"
    cfg = config.parse("user,hostfwd=tcp:0.0.0.0:8080-:80,restrict=on,hostdns=[::1]:5353")
    assert cfg.restrict and cfg.hostdns == (bytes(15) + b"\1", 5353)
    assert "every host interface" in cfg.notes[0]
    for bad in ["tcp:1.2.3.4:80", "tcp::0-:80", "tcp::80-:80000", "icmp::1-:1", "tcp:x:1-:2"]:
        with pytest.raises(ValueError):
            config.parse_hostfwd(bad)


def _bootp(msgtype: int, mac: bytes, xid: int = 0x1234, ciaddr: bytes = bytes(4),
           opts: bytes = b"") -> bytes:
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0, ciaddr, bytes(4),
                       bytes(4), bytes(4), mac.ljust(16, b"\0"), bytes(64), bytes(128))
    return head + dhcp.MAGIC + bytes([53, 1, msgtype]) + opts + b"\xff"


def test_dhcp_server_exchange():
    s = dhcp.DhcpServer()
    a, b = bytes.fromhex("525400123456"), bytes.fromhex("525400abcdef")
    offer = s.handle(_bootp(dhcp.DISCOVER, a))
    assert offer.yiaddr == bytes([10, 0, 2, 15]) and offer.dst == b"\xff" * 4
    opts = dhcp.parse_options(offer.data[240:])
    assert opts[dhcp.OPT_MSGTYPE] == bytes([dhcp.OFFER]) and opts[dhcp.OPT_ROUTER] == bytes([10, 0, 2, 2])
    assert opts[dhcp.OPT_DNS] == bytes([10, 0, 2, 3]) and opts[dhcp.OPT_SERVER_ID] == bytes([10, 0, 2, 2])
    assert len(offer.data) >= 300
    ack = s.handle(_bootp(dhcp.REQUEST, a, opts=bytes([50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2])))
    assert dhcp.parse_options(ack.data[240:])[dhcp.OPT_MSGTYPE] == bytes([dhcp.ACK])
    assert s.handle(_bootp(dhcp.DISCOVER, b)).yiaddr == bytes([10, 0, 2, 16])
    nak = s.handle(_bootp(dhcp.REQUEST, b, opts=bytes([50, 4, 10, 0, 2, 15])))
    assert dhcp.parse_options(nak.data[240:])[dhcp.OPT_MSGTYPE] == bytes([dhcp.NAK])
    renew = s.handle(_bootp(dhcp.REQUEST, a, ciaddr=bytes([10, 0, 2, 15])))
    assert renew.dst == bytes([10, 0, 2, 15])
    assert s.handle(_bootp(dhcp.RELEASE, a, ciaddr=bytes([10, 0, 2, 15]))) is None
    assert a not in s.leases
    assert s.handle(b"garbage") is None


def test_wire_checksums():
    pkt = wire.ipv4_udp(bytes([10, 0, 2, 2]), 67, b"\xff" * 4, 68, b"payload")
    ip = wire.parse_ipv4(pkt)
    assert (ip.src, ip.dst, ip.proto) == (bytes([10, 0, 2, 2]), b"\xff" * 4, wire.IPPROTO_UDP)
    assert wire.parse_udp(ip) == (67, 68, b"payload")
    bad = pkt[:-1] + b"X"
    assert wire.parse_udp(wire.parse_ipv4(bad)) is None
    # RFC 1071's example words sum to 0xddf2: the checksum is its complement
    assert wire.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
