"""Host ends of UML's line channels beyond fd: and pts (arch_um/console.py):
file:PATH output, port:PORT listeners, and the BSD pty check.

Security: a port listens on 127.0.0.1 only; a file is the path the
command line (or the host's mconsole user) named, never one a guest chose.
"""
from __future__ import annotations

import glob
import os
import socket

from arch_um.console import HostChannel

IAC, SB, SE = 255, 250, 240
WILL, DONT = 251, 254


def open_file(path: str) -> HostChannel:
    """file:PATH: output appended to a host file created if missing; no input."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    return HostChannel(None, fd, owned=(fd,))


def has_bsd_ptys() -> bool:
    """Legacy /dev/pty[p-e][0-9a-f] masters (CONFIG_LEGACY_PTYS): gone from most hosts."""
    return bool(glob.glob("/dev/pty[p-za-e][0-9a-f]"))


_LISTENERS: dict[int, list] = {}       # port -> [listening socket, channels using it]


def listen_loopback(port: int, backlog: int) -> socket.socket:
    """A non-blocking TCP listener on 127.0.0.1 (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _listener(port: int) -> socket.socket:
    entry = _LISTENERS.get(port)
    if entry is None:
        entry = _LISTENERS[port] = [listen_loopback(port, 8), 0]
    entry[1] += 1
    return entry[0]


class PortChannel(HostChannel):
    """port:PORT: a TCP listener on 127.0.0.1, shared by every line given
    the same port as UML's port channels share theirs; a connection is the
    input and output of one line.  UML runs in.telnetd on each connection;
    here the connection is a raw byte stream: telnet commands a client sends
    (IAC sequences, option negotiation) are dropped, IAC IAC is a 0xff byte,
    and a telnet NVT end of line (CR LF or CR NUL) is one CR.  Nothing is
    negotiated, so a telnet client stays in its line mode with local echo."""

    def __init__(self, port: int) -> None:
        self.listener = _listener(port)
        self.port = port
        self.conn: socket.socket | None = None
        self._telnet = bytearray()      # an IAC sequence cut by a read
        self._cr = False
        super().__init__(None, None)

    @property
    def listen_fd(self) -> int:
        return self.listener.fileno()

    def accept(self) -> bool:
        """Take a waiting connection as the line's; False if none is there."""
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return False
        conn.setblocking(False)
        self.conn = conn
        self.in_fd = self.out_fd = conn.fileno()
        self.out_gone = False
        self._telnet.clear()
        self._cr = False
        self.flush()        # what the line wrote while nobody was connected
        return True

    def disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.in_fd = self.out_fd = None

    def read(self, n: int) -> bytes | None:
        if self.conn is None:
            return None         # no client yet: input is still to come
        data = super().read(n)
        if not data:
            return data
        return self._strip(data) or None        # only telnet commands: nothing yet, not EOF

    def _strip(self, data: bytes) -> bytes:
        buf = self._telnet + data
        self._telnet = bytearray()
        out = bytearray()
        i = 0
        while i < len(buf):
            c = buf[i]
            if c == IAC:
                if i + 1 >= len(buf):
                    self._telnet = buf[i:]
                    break
                cmd = buf[i + 1]
                if cmd == IAC:
                    out.append(IAC)
                    i += 2
                elif WILL <= cmd <= DONT:
                    if i + 2 >= len(buf):
                        self._telnet = buf[i:]
                        break
                    i += 3
                elif cmd == SB:
                    end = buf.find(bytes((IAC, SE)), i + 2)
                    if end < 0:
                        self._telnet = buf[i:]
                        break
                    i = end + 2
                else:
                    i += 2
                continue
            if self._cr and c in (0, 10):
                self._cr = False
                i += 1
                continue
            self._cr = c == 13
            out.append(c)
            i += 1
        return bytes(out)

    def flush(self) -> None:
        if self.out_fd is not None:
            super().flush()

    def write(self, data: bytes) -> None:
        """Output waits in the queue until a client connects."""
        if data:
            self._out += data
            self.flush()

    def restore(self) -> None:
        self.disconnect()
        entry = _LISTENERS.get(self.port)
        if entry is not None and entry[0] is self.listener:
            entry[1] -= 1
            if not entry[1]:
                del _LISTENERS[self.port]
                self.listener.close()
        super().restore()
