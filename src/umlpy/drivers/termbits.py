"""The terminal ABI: termios bits, tty ioctl numbers, the termios structs
(asm-generic/termbits.h and ioctls.h), kept apart from the logic that uses
them (drivers/tty.py, n_tty.py, tty_ioctl.py, pty.py)."""
from __future__ import annotations

import struct

# -- termios (asm-generic/termbits.h) -----------------------------------------------
IGNBRK, BRKINT, IGNPAR, PARMRK, INPCK, ISTRIP, INLCR, IGNCR = 0o1, 0o2, 0o4, 0o10, 0o20, 0o40, 0o100, 0o200
ICRNL, IUCLC, IXON, IXANY, IXOFF, IMAXBEL, IUTF8 = 0o400, 0o1000, 0o2000, 0o4000, 0o10000, 0o20000, 0o40000
OPOST, OLCUC, ONLCR, OCRNL, ONOCR, ONLRET = 0o1, 0o2, 0o4, 0o10, 0o20, 0o40
TABDLY = XTABS = 0o14000
CBAUD, B38400, CSIZE, CS8, CSTOPB, CREAD, PARENB = 0o10017, 0o17, 0o60, 0o60, 0o100, 0o200, 0o400
HUPCL, CLOCAL, BOTHER = 0o2000, 0o4000, 0o10000
ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHONL, NOFLSH, TOSTOP = 0o1, 0o2, 0o10, 0o20, 0o40, 0o100, 0o200, 0o400
ECHOCTL, ECHOPRT, ECHOKE, IEXTEN, EXTPROC = 0o1000, 0o2000, 0o4000, 0o100000, 0o200000
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN, VSWTC = range(8)
VSTART, VSTOP, VSUSP, VEOL, VREPRINT, VDISCARD, VWERASE, VLNEXT, VEOL2 = range(8, 17)
NCCS = 19
NCC = 8     # struct termio

# -- ioctls (asm-generic/ioctls.h) ---------------------------------------------------
TCGETS, TCSETS, TCSETSW, TCSETSF, TCGETA, TCSETA, TCSETAW, TCSETAF = range(0x5401, 0x5409)
TCSBRK, TCXONC, TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY = range(0x5409, 0x540F)
TIOCGPGRP, TIOCSPGRP, TIOCOUTQ, TIOCSTI, TIOCGWINSZ, TIOCSWINSZ = range(0x540F, 0x5415)
FIONREAD, TIOCPKT, TIOCNOTTY, TIOCSETD, TIOCGETD, TCSBRKP = 0x541B, 0x5420, 0x5422, 0x5423, 0x5424, 0x5425
TIOCSBRK, TIOCCBRK, TIOCGSID, TIOCVHANGUP = 0x5427, 0x5428, 0x5429, 0x5437
TCGETS2, TCSETS2, TCSETSW2, TCSETSF2 = 0x802C542A, 0x402C542B, 0x402C542C, 0x402C542D
TIOCGPTN, TIOCSPTLCK, TIOCGDEV, TIOCSIG = 0x80045430, 0x40045431, 0x80045432, 0x40045436
TIOCGPKT, TIOCGPTLCK, TIOCGEXCL, TIOCGPTPEER = 0x80045438, 0x80045439, 0x80045440, 0x5441
TCOOFF, TCOON, TCIOFF, TCION = range(4)
TCIFLUSH, TCOFLUSH, TCIOFLUSH = range(3)
TIOCPKT_FLUSHREAD, TIOCPKT_FLUSHWRITE, TIOCPKT_STOP, TIOCPKT_START = 1, 2, 4, 8
TIOCPKT_NOSTOP, TIOCPKT_DOSTOP = 16, 32

TERMIOS_T = struct.Struct(f"<IIIIB{NCCS}s")
TERMIOS2_T = struct.Struct(f"<IIIIB{NCCS}sII")
TERMIO_T = struct.Struct(f"<HHHHB{NCC}sx")
_BAUDS = [0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
          0, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000,
          1500000, 2000000, 2500000, 3000000, 3500000, 4000000]


def _baud(cflag: int) -> int:
    b = cflag & CBAUD
    return _BAUDS[(b & 0o17) + (16 if b & BOTHER else 0)]


class Termios:
    """struct ktermios: the four flag words, the line, c_cc and the speeds."""

    __slots__ = ("iflag", "oflag", "cflag", "lflag", "line", "cc", "ispeed", "ospeed")

    def __init__(self, iflag: int, oflag: int, cflag: int, lflag: int, cc: bytes, line: int = 0) -> None:
        self.iflag, self.oflag, self.cflag, self.lflag, self.line = iflag, oflag, cflag, lflag, line
        self.cc = bytearray(cc.ljust(NCCS, b"\0")[:NCCS])
        self.ispeed = self.ospeed = _baud(cflag)

    @classmethod
    def std(cls) -> Termios:
        """tty_std_termios: cooked, echoing, ISIG, 38400 8N1."""
        return cls(ICRNL | IXON, OPOST | ONLCR, B38400 | CS8 | CREAD | HUPCL,
                   ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
                   b"\003\034\177\025\004\000\001\000\021\023\032\000\022\017\027\026\000")

    def copy(self) -> Termios:
        n = Termios(self.iflag, self.oflag, self.cflag, self.lflag, bytes(self.cc), self.line)
        n.ispeed, n.ospeed = self.ispeed, self.ospeed
        return n

    def pack(self) -> bytes:
        return TERMIOS_T.pack(self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc))

    def pack2(self) -> bytes:
        return TERMIOS2_T.pack(self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc),
                              self.ispeed, self.ospeed)

    def pack_termio(self) -> bytes:
        return TERMIO_T.pack(self.iflag & 0xFFFF, self.oflag & 0xFFFF, self.cflag & 0xFFFF,
                            self.lflag & 0xFFFF, self.line, bytes(self.cc[:NCC]))

    def with_user(self, req: int, raw: bytes) -> Termios:
        """A copy with the user's struct termios, termios2 or termio applied."""
        n = self.copy()
        if req in (TCSETA, TCSETAW, TCSETAF):
            i, o, c, lf, n.line, cc = TERMIO_T.unpack(raw)
            n.iflag, n.oflag = (n.iflag & ~0xFFFF) | i, (n.oflag & ~0xFFFF) | o
            n.cflag, n.lflag = (n.cflag & ~0xFFFF) | c, (n.lflag & ~0xFFFF) | lf
            n.cc[:NCC] = cc
        elif req in (TCSETS2, TCSETSW2, TCSETSF2):
            n.iflag, n.oflag, n.cflag, n.lflag, n.line, cc, n.ispeed, n.ospeed = TERMIOS2_T.unpack(raw)
            n.cc[:] = cc
        else:
            n.iflag, n.oflag, n.cflag, n.lflag, n.line, cc = TERMIOS_T.unpack(raw)
            n.cc[:] = cc
        if not (req in (TCSETS2, TCSETSW2, TCSETSF2) and n.cflag & CBAUD == BOTHER):
            n.ispeed = n.ospeed = _baud(n.cflag)
        return n


def std_flow(t: Termios) -> bool:
    """IXON with ^S/^Q: what packet mode's DOSTOP/NOSTOP report."""
    return bool(t.iflag & IXON) and t.cc[VSTOP] == 0o23 and t.cc[VSTART] == 0o21

