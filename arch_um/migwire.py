"""The host stream a live migration travels on: a unix stream socket that
`umlpy restore --listen SOCKET` listens on and the migrating kernel
connects to (the same code would run over TCP between two hosts).

A message is a JSON header (an object) and raw bytes after it: two
little-endian u32 lengths first.  Nothing is unpickled; the receiver
checks the header's type and sizes, and what the stream builds is a
checkpoint image, which the restore checks as it checks any other.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import struct

_LENGTHS = struct.Struct("<II")
MAX_HEADER = 64 << 20           # a final message carries the whole manifest
MAX_PAYLOAD = 64 << 20


class WireError(OSError):
    """The stream broke or carried something malformed."""


def _head(header: dict, payload_len: int) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTHS.pack(len(head), payload_len) + head


class Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    def send(self, header: dict, payload: bytes | memoryview = b"") -> None:
        try:
            self.sock.sendall(_head(header, len(payload)))
            if payload:
                self.sock.sendall(payload)
        except OSError as e:
            raise WireError(f"the stream broke: {e.strerror or e}") from None

    def recv(self, timeout: float | None = None) -> tuple[dict, bytes]:
        """The next message: (its header, its payload)."""
        self.sock.settimeout(timeout)
        hlen, plen = _LENGTHS.unpack(self._exactly(_LENGTHS.size))
        if hlen > MAX_HEADER or plen > MAX_PAYLOAD:
            raise WireError("a message larger than the stream allows")
        try:
            header = json.loads(self._exactly(hlen))
        except ValueError:
            raise WireError("a message whose header is not JSON") from None
        if not isinstance(header, dict) or not isinstance(header.get("t"), str):
            raise WireError("a message without a type")
        return header, self._exactly(plen)

    def _exactly(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                r = self.sock.recv_into(view[got:])
            except socket.timeout:
                raise WireError("the other side fell silent") from None
            except OSError as e:
                raise WireError(f"the stream broke: {e.strerror or e}") from None
            if r == 0:
                raise WireError("the other side closed the stream")
            got += r
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def connect(path: str, timeout: float = 10.0) -> Conn:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return Conn(s)


def accept_one(path: str) -> Conn:
    """Listen on path (made afresh) until one migrating kernel connects."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as ls:
        ls.bind(path)
        ls.listen(1)
        s, _ = ls.accept()
    os.unlink(path)
    return Conn(s)
