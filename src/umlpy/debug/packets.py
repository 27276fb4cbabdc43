"""gdb's remote serial protocol framing: `$data#cs` packets, `+`/`-`
acknowledgements (until QStartNoAckMode), the 0x03 interrupt byte, and the
`}` escape of binary data.  No run-length encoding is sent."""
from __future__ import annotations

INTERRUPT = object()        # what a Ctrl-C from the client parses into
_ESCAPED = b"$#}*"


def checksum(data: bytes) -> int:
    return sum(data) & 0xff


def frame(data: bytes) -> bytes:
    return b"$" + data + b"#%02x" % checksum(data)


def escape(data: bytes) -> bytes:
    """Binary data in a reply (qXfer): the framing bytes go as `}` c^0x20."""
    out = bytearray()
    for c in data:
        if c in _ESCAPED:
            out += bytes((0x7d, c ^ 0x20))
        else:
            out.append(c)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x7d and i + 1 < len(data):
            out.append(data[i + 1] ^ 0x20)
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


class Reader:
    """Splits what the client sends into packets (bytes), INTERRUPT, and
    acknowledgements (b"+", b"-"); a packet with a bad checksum is None
    (to be answered `-`).  What is cut short waits for the next read;
    the buffer is bounded, so a client cannot grow it without end."""

    MAX = 1 << 17

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list:
        self.buf += data
        out: list = []
        buf = self.buf
        i = 0
        while i < len(buf):
            c = buf[i]
            if c == 0x03:
                out.append(INTERRUPT)
                i += 1
            elif c in b"+-":
                out.append(bytes((c,)))
                i += 1
            elif c == ord("$"):
                end = buf.find(b"#", i + 1)
                if end < 0 or end + 2 >= len(buf):
                    break
                body = bytes(buf[i + 1:end])
                try:
                    ok = int(buf[end + 1:end + 3], 16) == checksum(body)
                except ValueError:
                    ok = False
                out.append(unescape(body) if ok else None)
                i = end + 3
            else:
                i += 1      # noise between packets
        del buf[:i]
        if len(buf) > self.MAX:
            buf.clear()     # a packet beyond any PacketSize: dropped
        return out
