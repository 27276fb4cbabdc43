"""The host side of UML's management console: a datagram socket in the
umid directory, and the notify socket of `mconsole=notify:`.

The wire format is UML's (arch/um/drivers/mconsole.h), 32-bit fields in
host byte order: requests are magic, version, len, data[512]; replies err,
more, len, data (only the used part is sent); the server answers with
sendto to the address the request came from, as uml_mconsole expects.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import tempfile

MAGIC = 0xCAFEBABE
VERSION = 2
DATA_MAX = 512
_REQ = struct.Struct("=III")
_REPLY = struct.Struct("=III")
NOTIFY_SOCKET, NOTIFY_PANIC, NOTIFY_HANG, NOTIFY_USER = 0, 1, 2, 3


class McSocket:
    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()

    def requests(self) -> list[tuple[object, int, int, bytes]]:
        """Every request waiting: (reply address, magic, version, text)."""
        out = []
        while True:
            try:
                data, addr = self.sock.recvfrom(_REQ.size + DATA_MAX)
            except (BlockingIOError, InterruptedError):
                return out
            if len(data) < _REQ.size:
                out.append((addr, 0, 0, data))
                continue
            magic, version, n = _REQ.unpack_from(data)
            out.append((addr, magic, version, data[_REQ.size:_REQ.size + n] if n < DATA_MAX else None))

    def reply(self, addr, err: int, more: int, text: bytes) -> None:
        data = text + b"\0"
        try:
            self.sock.sendto(_REPLY.pack(err, more, len(data)) + data, addr)
        except OSError:
            pass            # the client went away: nothing to tell

    def wait(self) -> None:
        """Sleep until a request arrives (the machine is stopped)."""
        select.select([self.fd], [], [])

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def notify(path: str, kind: int, text: bytes) -> None:
    """Tell the `mconsole=notify:` socket something (best effort, as UML)."""
    text = text[:DATA_MAX - 1] + b"\0"
    msg = struct.pack("=IIII", MAGIC, VERSION, kind, len(text)) + text
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(msg, path)
    except OSError:
        pass


def request(path: str, text: str, timeout: float = 600.0) -> tuple[int, str]:
    """A client's request to the mconsole socket at path (what uml_mconsole
    sends): (err, the reply's text, its packets joined)."""
    with tempfile.TemporaryDirectory() as d, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(os.path.join(d, "client"))
        s.settimeout(timeout)
        data = text.encode()[:DATA_MAX - 1]
        s.sendto(_REQ.pack(MAGIC, VERSION, len(data)) + data.ljust(DATA_MAX, b"\0"), path)
        parts, err = [], 0
        while True:
            msg = s.recv(_REPLY.size + DATA_MAX + 1)
            e, more, n = _REPLY.unpack_from(msg)
            err = err or e
            parts.append(msg[_REPLY.size:_REPLY.size + n].rstrip(b"\0"))
            if not more:
                return err, b"".join(parts).decode(errors="replace")
