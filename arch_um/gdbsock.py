"""The host end of the gdb server (umlpy.debug): a TCP listener and one
client connection, both non-blocking, read and written from the event loop.

Security: the listener binds 127.0.0.1 only (whoever reaches it debugs
the guest process it serves, as a host user running gdbserver would);
port 0 takes a free port, which `port` then names.
"""
from __future__ import annotations

import socket

from arch_um.channels import listen_loopback


class GdbListener:
    def __init__(self, port: int) -> None:
        self.sock = listen_loopback(port, 1)
        self.port: int = self.sock.getsockname()[1]

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    def accept(self) -> GdbConn | None:
        """The waiting client, if any."""
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return None
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return GdbConn(conn)

    def close(self) -> None:
        self.sock.close()


class GdbConn:
    """A client: what it sent, and output queued until the socket takes it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    def recv(self) -> bytes | None:
        """What arrived (b"" if nothing yet); None when the client is gone."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None
        return data or None

    def send(self, data: bytes) -> bool:
        """Queue data and write what the socket takes; True if some is left
        (the caller then waits for the socket to be writable)."""
        self.out += data
        try:
            n = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.out.clear()    # the client is gone: its next read says so
            return False
        del self.out[:n]
        return bool(self.out)

    def close(self) -> None:
        self.sock.close()
