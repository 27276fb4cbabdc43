"""Host sockets for user-mode networking (the kernel's net/slirp).

The only code that opens network sockets on the host.  Every socket is
non-blocking and close-on-exec; the kernel watches its fd with the event
loop and calls these methods when it is ready, so nothing here ever waits.
A guest never holds one of these fds: guest processes are started with
no host fds and are clones of each other, never of the kernel.

Addresses cross this interface packed (4 bytes for IPv4, 16 for IPv6)
with a port; errors are OSError with the host's errno (the same numbers
as the guest's on x86-64 Linux), and "would block" is a None result.
"""
from __future__ import annotations

import errno
import fcntl
import socket
import struct
import termios

from arch_um.hostfile import HostFdsExhausted, give_guest_fd, take_guest_fd

_LINGER_RESET = struct.pack("ii", 1, 0)
_CLOEXEC_NB = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
MAX_DGRAM = 65535


def _family(ip: bytes) -> int:
    return socket.AF_INET if len(ip) == 4 else socket.AF_INET6


def _sockaddr(ip: bytes, port: int) -> tuple:
    fam = _family(ip)
    return (socket.inet_ntop(fam, ip), port) if fam == socket.AF_INET else \
        (socket.inet_ntop(fam, ip), port, 0, 0)


def _packed(sa: tuple) -> tuple[bytes, int]:
    host = sa[0]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.inet_pton(fam, host.split("%")[0]), sa[1]


_SOFT_ERRORS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                errno.ENETDOWN, errno.EMSGSIZE, errno.EPROTO)


def _recv_datagram(sock: socket.socket) -> tuple[bytes, tuple] | None:
    """One datagram, or None.  An ICMP error the host reports on the socket
    (a port unreachable for an earlier send) is taken and skipped: it is
    cleared by the read that reports it."""
    while True:
        try:
            return sock.recvfrom(MAX_DGRAM)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            if e.errno not in _SOFT_ERRORS:
                raise


class HostSocket:
    """One host socket; `fd` is what the kernel watches.  Each counts
    against the host fds guest objects may hold (arch_um/hostfile.py)."""

    def __init__(self, sock: socket.socket) -> None:
        self.fd = -1
        try:
            take_guest_fd()
        except HostFdsExhausted:
            sock.close()
            raise
        self.sock = sock
        self.fd = sock.fileno()

    def close(self, reset: bool = False) -> None:
        """Close; reset=True makes a TCP socket send RST (SO_LINGER 0)."""
        if self.fd < 0:
            return
        if reset:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass
        self.sock.close()
        self.fd = -1
        give_guest_fd()

    def __del__(self) -> None:
        if self.fd >= 0:
            self.close()

    def name(self) -> tuple[bytes, int]:
        return _packed(self.sock.getsockname())


class TcpConn(HostSocket):
    """A TCP connection: one the kernel started (connect) or accepted.
    Urgent data from the far side stays in line (SO_OOBINLINE), so the
    guest gets its byte as data rather than losing it."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)

    @classmethod
    def connect(cls, ip: bytes, port: int) -> TcpConn:
        """Start a non-blocking connect; its end shows as writability and
        `connect_error()`.  An error the host knows at once is raised."""
        s = socket.socket(_family(ip), socket.SOCK_STREAM | _CLOEXEC_NB)
        try:
            # the guest's own stack already chose when to send: forward at once
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = s.connect_ex(_sockaddr(ip, port))
        except OSError:
            s.close()
            raise
        if err not in (0, errno.EINPROGRESS):
            s.close()
            raise OSError(err, errno.errorcode.get(err, str(err)))
        return cls(s)

    def connect_error(self) -> int:
        """0 once connected, else the connect's errno (SO_ERROR)."""
        return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    def send(self, data, urgent: bool = False) -> int:
        """Bytes the host took (0 when its buffer is full); urgent: the
        last of them is urgent data (MSG_OOB)."""
        try:
            return self.sock.send(data, socket.MSG_NOSIGNAL | (socket.MSG_OOB if urgent else 0))
        except (BlockingIOError, InterruptedError):
            return 0

    def recv(self, n: int) -> bytes | None:
        """Up to n bytes; b"" at end of stream; None when none are there."""
        try:
            return self.sock.recv(n)
        except (BlockingIOError, InterruptedError):
            return None

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def outq(self) -> int:
        """Bytes the host has not yet had acknowledged (SIOCOUTQ)."""
        try:
            buf = fcntl.ioctl(self.fd, termios.TIOCOUTQ, b"\0" * 4)
        except OSError:
            return 0
        return struct.unpack("i", buf)[0]


class TcpListener(HostSocket):
    """A listening TCP socket (hostfwd=tcp:...)."""

    def __init__(self, ip: bytes, port: int, backlog: int = 64) -> None:
        s = socket.socket(_family(ip), socket.SOCK_STREAM | _CLOEXEC_NB)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(_sockaddr(ip, port))
            s.listen(backlog)
        except OSError:
            s.close()
            raise
        super().__init__(s)

    def accept(self) -> tuple[TcpConn, bytes, int] | None:
        """(connection, peer ip, peer port), or None when none is waiting."""
        try:
            s, peer = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ip, port = _packed(peer)
        try:
            return TcpConn(s), ip, port
        except HostFdsExhausted:
            return None         # closed at once: the host's client sees the connection end


class Udp(HostSocket):
    """A UDP socket, bound to (ip, port) or to the wildcard address."""

    def __init__(self, family_ip: bytes, bind: tuple[bytes, int] | None = None) -> None:
        s = socket.socket(_family(family_ip), socket.SOCK_DGRAM | _CLOEXEC_NB)
        try:
            if bind is not None:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(_sockaddr(*bind))
        except OSError:
            s.close()
            raise
        super().__init__(s)

    def sendto(self, data, ip: bytes, port: int) -> bool:
        """Send one datagram; False when the host's buffer is full (the
        datagram is dropped, as a full device queue drops it)."""
        try:
            self.sock.sendto(data, _sockaddr(ip, port))
        except (BlockingIOError, InterruptedError):
            return False
        return True

    def recvfrom(self) -> tuple[bytes, bytes, int] | None:
        """(data, source ip, source port), or None when nothing is there."""
        got = _recv_datagram(self.sock)
        if got is None:
            return None
        ip, port = _packed(got[1])
        return got[0], ip, port


class Ping(HostSocket):
    """An unprivileged ICMP echo socket (SOCK_DGRAM, IPPROTO_ICMP): the
    host allows it only for groups in net.ipv4.ping_group_range (EACCES
    otherwise).  The host rewrites the echo id to this socket's own."""

    def __init__(self, v6: bool) -> None:
        fam, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else \
            (socket.AF_INET, socket.IPPROTO_ICMP)
        super().__init__(socket.socket(fam, socket.SOCK_DGRAM | _CLOEXEC_NB, proto))

    def sendto(self, data: bytes, ip: bytes) -> bool:
        try:
            self.sock.sendto(data, _sockaddr(ip, 0))
        except (BlockingIOError, InterruptedError):
            return False
        return True

    def recvfrom(self) -> tuple[bytes, bytes] | None:
        """(ICMP message, source ip), or None."""
        got = _recv_datagram(self.sock)
        return None if got is None else (got[0], _packed(got[1])[0])


def resolv_conf_nameservers(path: str = "/etc/resolv.conf") -> list[bytes]:
    """The host's resolvers (`nameserver` lines), packed; unreadable or
    malformed entries are skipped."""
    try:
        with open(path, "rb") as f:
            text = f.read(65536).decode(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            for fam in (socket.AF_INET, socket.AF_INET6):
                try:
                    out.append(socket.inet_pton(fam, words[1].split("%")[0]))
                    break
                except OSError:
                    pass
    return out
