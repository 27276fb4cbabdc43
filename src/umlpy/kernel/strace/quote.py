"""Strings as strace prints them: C escapes for \\t \\n \\v \\f \\r, \\" and
\\\\, other unprintable bytes in octal (three digits when an octal digit
follows, so that the reading stays unambiguous), at most STRLEN bytes of a
buffer with "..." after the closing quote when there was more (`-s 32`)."""
from __future__ import annotations

STRLEN = 32         # strace's default -s
_ESC = {0x22: '\\"', 0x5c: "\\\\", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t", 0x0b: "\\v"}


def hexquote(data: bytes) -> str:
    """Every byte as \\xNN (strace's forced hex, for random bytes)."""
    return '"' + "".join(f"\\x{c:02x}" for c in data) + '"'


def quote(data: bytes) -> str:
    out = ['"']
    n = len(data)
    for i, c in enumerate(data):
        esc = _ESC.get(c)
        if esc is not None:
            out.append(esc)
        elif 0x20 <= c < 0x7f:
            out.append(chr(c))
        elif i + 1 < n and 0x30 <= data[i + 1] <= 0x37:
            out.append(f"\\{c:03o}")
        else:
            out.append(f"\\{c:o}")
    out.append('"')
    return "".join(out)


def buffer(data: bytes, length: int) -> str:
    """A buffer of `length` bytes of which `data` (its first STRLEN or
    fewer) was read: strace's printstr."""
    text = quote(data[:STRLEN])
    return text + "..." if length > STRLEN else text


def cstring(data: bytes, terminated: bool) -> str:
    """A NUL-terminated string read up to a limit: "..." if no NUL was
    within it."""
    return quote(data) if terminated else quote(data) + "..."
