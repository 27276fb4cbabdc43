"""The host side of UML's management console: a datagram socket in the
umid directory, and the notify socket of `mconsole=notify:`.

The wire format is UML's (arch/um/drivers/mconsole.h), 32-bit fields in
host byte order: requests are magic, version, len, data[512]; replies err,
more, len, data (only the used part is sent); the server answers with
sendto to the address the request came from, as uml_mconsole expects.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import struct
import tempfile
import time

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


LIVENESS_S = 1.0        # how long a client waits in silence before it looks whether the machine is there


def _serving(path: str) -> bool:
    """Whether a socket is still bound at path: a datagram connect() finds
    out without sending anything (ECONNREFUSED once its owner has gone,
    even when a killed machine left the file behind)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError:
            pass
    return True


def request(path: str, text: str, timeout: float = 600.0) -> tuple[int, str]:
    """A client's request to the mconsole socket at path (what uml_mconsole
    sends): (err, the reply's text, its packets joined).  A machine that
    goes away before it answers (killed, or halted by its own init) is an
    error at once, not a wait for the timeout."""
    with tempfile.TemporaryDirectory() as d, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(os.path.join(d, "client"))
        data = text.encode()[:DATA_MAX - 1]
        s.sendto(_REQ.pack(MAGIC, VERSION, len(data)) + data.ljust(DATA_MAX, b"\0"), path)
        parts, err = [], 0
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(errno.ETIMEDOUT, "no answer from the machine")
            s.settimeout(min(left, LIVENESS_S))
            try:
                msg = s.recv(_REPLY.size + DATA_MAX + 1)
            except TimeoutError:
                if not _serving(path):
                    raise ConnectionAbortedError(errno.ECONNABORTED,
                                                 "the machine went away before it answered") from None
                continue
            e, more, n = _REPLY.unpack_from(msg)
            err = err or e
            parts.append(msg[_REPLY.size:_REPLY.size + n].rstrip(b"\0"))
            if not more:
                return err, b"".join(parts).decode(errors="replace")
