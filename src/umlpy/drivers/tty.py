"""Terminals: Linux's termios and its n_tty line discipline, in the kernel.

A `Tty` is one terminal as Linux's tty_struct + n_tty: termios, window
size, the session it controls and its foreground process group, the input
queue with line editing, echo and output processing.  Drivers subclass it
and say where output goes (`transmit`, `write_room`) and feed it input
(`receive`): the console (drivers/console.py) from the host channel, a pty
slave (drivers/pty.py) from its master.

The model follows n_tty.c closely, because programs depend on its corners
(erase of a tab, ^D after text, VMIN/VTIME timers, what ^C flushes):

- input goes first to `pending` (Linux's flip buffer), then one character
  at a time through `_rx` into `rbuf` (the 4 KiB read buffer); in
  canonical mode `line_ends` marks where complete lines end and whether
  VEOF ended them (the EOF itself is not data);
- echo is produced while input is processed and goes through the same
  output processing (OPOST) as written data, with the column tracked for
  erasing tabs and ^X pairs;
- job control (SIGTTIN/SIGTTOU) is kernel/jobctl.py; a file opened as
  /dev/console is exempt, as Linux's console_fops files are.

Blocking follows the kernel's restart model: a read that must wait parks
on `read_wq` and runs again from the start when woken; non-canonical reads
keep their VTIME timer per task in `_vtimers` between attempts.
"""
from __future__ import annotations

import re
import struct
from collections import deque

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.kernel import jobctl
from umlpy.kernel.cred import capable, need
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, File

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

_TERMIOS = struct.Struct(f"<IIIIB{NCCS}s")
_TERMIOS2 = struct.Struct(f"<IIIIB{NCCS}sII")
_TERMIO = struct.Struct(f"<HHHHB{NCC}sx")
_INT = struct.Struct("<i")
N_TTY_BUF_SIZE = 4096
INPUT_LIMIT = 65536         # input not yet through the line discipline (flip buffer)
_BAUDS = [0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
          0, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000,
          1500000, 2000000, 2500000, 3000000, 3500000, 4000000]
_CTL = re.compile(rb"[\x00-\x1f\x7f]")
_CTL_BUT_NL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")
_CONTINUATION = bytes(range(0x80, 0xC0))
_HUNG_POLL = POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM


def iscntrl(c: int) -> bool:
    return c < 32 or c == 127


def _isalnum(c: int) -> bool:
    """The kernel's isalnum (Latin-1 letters count, as in lib/ctype.c)."""
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or (c >= 192 and c not in (215, 247))


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
        return _TERMIOS.pack(self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc))

    def pack2(self) -> bytes:
        return _TERMIOS2.pack(self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc),
                              self.ispeed, self.ospeed)

    def pack_termio(self) -> bytes:
        return _TERMIO.pack(self.iflag & 0xFFFF, self.oflag & 0xFFFF, self.cflag & 0xFFFF,
                            self.lflag & 0xFFFF, self.line, bytes(self.cc[:NCC]))

    def with_user(self, req: int, raw: bytes) -> Termios:
        """A copy with the user's struct termios, termios2 or termio applied."""
        n = self.copy()
        if req in (TCSETA, TCSETAW, TCSETAF):
            i, o, c, lf, n.line, cc = _TERMIO.unpack(raw)
            n.iflag, n.oflag = (n.iflag & ~0xFFFF) | i, (n.oflag & ~0xFFFF) | o
            n.cflag, n.lflag = (n.cflag & ~0xFFFF) | c, (n.lflag & ~0xFFFF) | lf
            n.cc[:NCC] = cc
        elif req in (TCSETS2, TCSETSW2, TCSETSF2):
            n.iflag, n.oflag, n.cflag, n.lflag, n.line, cc, n.ispeed, n.ospeed = _TERMIOS2.unpack(raw)
            n.cc[:] = cc
        else:
            n.iflag, n.oflag, n.cflag, n.lflag, n.line, cc = _TERMIOS.unpack(raw)
            n.cc[:] = cc
        if not (req in (TCSETS2, TCSETSW2, TCSETSF2) and n.cflag & CBAUD == BOTHER):
            n.ispeed = n.ospeed = _baud(n.cflag)
        return n


def _std_flow(t: Termios) -> bool:
    """IXON with ^S/^Q: what packet mode's DOSTOP/NOSTOP report."""
    return bool(t.iflag & IXON) and t.cc[VSTOP] == 0o23 and t.cc[VSTART] == 0o21


_SET_TERMIOS = {TCSETS: TCGETS, TCSETSW: TCGETS, TCSETSF: TCGETS, TCSETA: TCGETA, TCSETAW: TCGETA,
                TCSETAF: TCGETA, TCSETS2: TCGETS2, TCSETSW2: TCGETS2, TCSETSF2: TCGETS2}
_GET_TERMIOS = {TCGETS: (Termios.pack, _TERMIOS.size), TCGETA: (Termios.pack_termio, _TERMIO.size),
                TCGETS2: (Termios.pack2, _TERMIOS2.size)}
_TERMIOS_SIZE = {TCGETS: _TERMIOS.size, TCGETA: _TERMIO.size, TCGETS2: _TERMIOS2.size}


class Tty:
    """One terminal: termios, winsize, session and foreground group, n_tty."""

    is_pty = False
    adopt_by_leader = False     # see Console

    def __init__(self, k, name: str, rdev: int, termios: Termios) -> None:
        self.k = k
        self.name = name
        self.rdev = rdev                    # the device number (TIOCGDEV, /proc stat tty_nr)
        self.termios = termios
        self.winsize = bytes(8)             # struct winsize: rows, cols, xpixel, ypixel
        self.session = 0
        self.pgrp = 0
        self.files: set[TtyFile] = set()
        self.exclusive = False
        self.read_wq = WaitQueue(f"{name} read")
        self.write_wq = WaitQueue(f"{name} write")
        self.pending = bytearray()          # received, not yet through the line discipline
        self.rbuf = bytearray()             # the read buffer
        self.line_ends: deque[list] = deque()   # canonical: [end offset, ended by VEOF]
        self.lnext = False
        self.erasing = False
        self.column = 0
        self.canon_column = 0
        self.stopped = False                # output stopped by VSTOP or TCOOFF
        self.tco_stopped = False
        self.held = bytearray()             # output produced while stopped
        self.input_eof = False              # no more input will ever come (console host EOF)
        self.pktstatus = 0
        self._echo = bytearray()
        self._vtimers: dict = {}

    # -- driver side: override ----------------------------------------------------
    def transmit(self, data: bytes) -> None:
        """Send processed output to the device."""

    def write_room(self) -> int:
        return 1 << 30

    def chars_in_buffer(self) -> int:
        return 0

    def flush_device_output(self) -> None:
        pass

    def refill(self) -> None:
        """Fetch input the driver cannot be told about (the console on a host file)."""

    def input_consumed(self) -> None:
        """The reader made room: a driver that throttled its input may resume."""

    def packet_event(self, bits: int) -> None:
        """A packet-mode status change (pty)."""

    def fixup_termios(self, t: Termios) -> None:
        """What the hardware cannot do (a pty is always CS8, no parity)."""

    def open_check(self, task) -> None:
        """May task open this tty now?  (TIOCEXCL; a pty slave adds its own rules.)"""
        if self.exclusive and not capable(task.proc.creds, CAP_SYS_ADMIN):
            raise KernelError(E.EBUSY)

    def last_close(self) -> None:
        pass

    # -- flags ----------------------------------------------------------------------
    def _i(self, bit: int) -> bool:
        return bool(self.termios.iflag & bit)

    def _l(self, bit: int) -> bool:
        return bool(self.termios.lflag & bit)

    @property
    def canonical(self) -> bool:
        return bool(self.termios.lflag & ICANON)

    def _cc(self, c: int, idx: int) -> bool:
        """c is the (enabled) special character idx."""
        return c != 0 and c == self.termios.cc[idx]

    # -- input ------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Input from the device side (keyboard, pty master)."""
        self.pending += data
        self.process_input()

    def input_room(self) -> int:
        return max(0, INPUT_LIMIT - len(self.pending))

    def _canon_head(self) -> int:
        return self.line_ends[-1][0] if self.line_ends else 0

    def _has_room(self) -> bool:
        if len(self.rbuf) < N_TTY_BUF_SIZE - 1:
            return True
        return self.canonical and not self.line_ends    # a full line still takes erase and newline

    def _raw_path(self) -> bool:
        t = self.termios
        return not self.lnext and not t.lflag & (ICANON | ISIG | ECHO) \
            and not t.iflag & (ISTRIP | IUCLC | IXON | INLCR | IGNCR | ICRNL | PARMRK)

    def process_input(self) -> None:
        if not self.pending:
            return
        before = (len(self.rbuf), len(self.line_ends))
        if self._raw_path():
            n = min(len(self.pending), max(0, N_TTY_BUF_SIZE - 1 - len(self.rbuf)))
            self.rbuf += self.pending[:n]
            del self.pending[:n]
        else:
            data, self.pending = bytes(self.pending), bytearray()
            i = 0
            while i < len(data) and self._has_room():
                self._rx(data[i])
                i += 1
            self.pending[:0] = data[i:]
            self._flush_echo()
        if (len(self.rbuf), len(self.line_ends)) != before:
            self.read_wq.wake_all()

    def _put(self, c: int) -> None:
        if self.canonical and not self.line_ends and len(self.rbuf) >= N_TTY_BUF_SIZE:
            self.rbuf[-1] = c       # overflow: the last character is overwritten, as n_tty's
        else:
            self.rbuf.append(c)

    def _end_line(self, eof: bool) -> None:
        self.line_ends.append([len(self.rbuf), eof])

    def _rx(self, c: int) -> None:
        """n_tty_receive_char_special and n_tty_receive_char for one character."""
        t = self.termios
        if self.lnext:
            self.lnext = False
            c = self._strip(c)
            self._ordinary(c)
            return
        c = self._strip(c)
        if t.iflag & IXON:
            if self._cc(c, VSTART):
                self._flush_echo()
                self.start()
                return
            if self._cc(c, VSTOP):
                self._flush_echo()
                self.stop()
                return
        if t.lflag & ISIG:
            for idx, sig in ((VINTR, S.SIGINT), (VQUIT, S.SIGQUIT), (VSUSP, S.SIGTSTP)):
                if self._cc(c, idx):
                    self._signal_char(sig, c)
                    return
        self._ixany()
        if c == 13:
            if t.iflag & IGNCR:
                return
            if t.iflag & ICRNL:
                c = 10
        elif c == 10 and t.iflag & INLCR:
            c = 13
        if t.lflag & ICANON and self._canon_special(c):
            return
        self._ordinary(c, ixany=False)

    def _strip(self, c: int) -> int:
        if self.termios.iflag & ISTRIP:
            c &= 0x7F
        if self.termios.iflag & IUCLC and self._l(IEXTEN) and 65 <= c <= 90:
            c += 32
        return c

    def _ixany(self) -> None:
        if self.stopped and not self.tco_stopped and self._i(IXON) and self._i(IXANY):
            self._flush_echo()
            self.start()

    def _canon_special(self, c: int) -> bool:
        """Erase, kill, lnext, reprint and line ends; True if c was one."""
        iexten = self._l(IEXTEN)
        echo = self._l(ECHO)
        if self._cc(c, VERASE) or self._cc(c, VKILL) or (iexten and self._cc(c, VWERASE)):
            self._erase(c)
            return True
        if iexten and self._cc(c, VLNEXT):
            self.lnext = True
            if echo:
                self._finish_erasing()
                if self._l(ECHOCTL):
                    self._echo_raw(b"^\b")
            return True
        if iexten and echo and self._cc(c, VREPRINT):
            self._finish_erasing()
            self._echo_char(c)
            self._echo_raw(b"\n")
            for b in self.rbuf[self._canon_head():]:
                self._echo_char(b)
            return True
        if c == 10:
            if echo or self._l(ECHONL):
                self._echo_raw(b"\n")
            self._put(c)
            self._end_line(False)
            return True
        if self._cc(c, VEOF):
            self._end_line(True)
            return True
        if self._cc(c, VEOL) or (iexten and self._cc(c, VEOL2)):
            if echo:
                self._echo_in_line(c)
            self._store(c)
            self._end_line(False)
            return True
        return False

    def _ordinary(self, c: int, ixany: bool = True) -> None:
        if ixany:
            self._ixany()
        if self._l(ECHO):
            self._finish_erasing()
            if c == 10:
                self._echo_raw(b"\n")
            else:
                self._echo_in_line(c)
        self._store(c)

    def _echo_in_line(self, c: int) -> None:
        if len(self.rbuf) == self._canon_head():
            self.canon_column = self.column     # where the line starts, to erase tabs right
        self._echo_char(c)

    def _store(self, c: int) -> None:
        if c == 0xFF and self._i(PARMRK):
            self._put(c)        # PARMRK doubles a real \377
        self._put(c)

    def _continuation(self, c: int) -> bool:
        return self._i(IUTF8) and c & 0xC0 == 0x80

    def _erase(self, c: int) -> None:
        """n_tty's eraser: VERASE, VWERASE and VKILL with their echoes."""
        head = self._canon_head()
        rbuf = self.rbuf
        if len(rbuf) == head:
            return
        echo = self._l(ECHO)
        if self._cc(c, VERASE):
            kind = "erase"
        elif self._cc(c, VWERASE):
            kind = "werase"
        else:
            if not echo:
                del rbuf[head:]
                return
            if not (self._l(ECHOK) and self._l(ECHOKE) and self._l(ECHOE)):
                del rbuf[head:]
                self._finish_erasing()
                self._echo_char(self.termios.cc[VKILL])
                if self._l(ECHOK):
                    self._echo_raw(b"\n")
                return
            kind = "kill"
        seen_alnums = 0
        while len(rbuf) > head:
            i = len(rbuf) - 1
            while self._continuation(rbuf[i]) and i > head:
                i -= 1
            ch = rbuf[i]
            if self._continuation(ch):
                break           # never erase half a character
            if kind == "werase":
                if _isalnum(ch) or ch == 95:
                    seen_alnums += 1
                elif seen_alnums:
                    break
            tail = bytes(rbuf[i + 1:])
            del rbuf[i:]
            if echo:
                self._echo_erased(ch, tail, kind, head)
            if kind == "erase":
                break
        if len(rbuf) == head and echo:
            self._finish_erasing()

    def _echo_erased(self, ch: int, tail: bytes, kind: str, head: int) -> None:
        if self._l(ECHOPRT):
            if not self.erasing:
                self._echo_raw(b"\\")
                self.erasing = True
            self._echo_char(ch)
            for b in tail:
                self._echo_raw(bytes([b]))
                self.column = max(0, self.column - 1)
        elif kind == "erase" and not self._l(ECHOE):
            self._echo_char(self.termios.cc[VERASE])
        elif ch == 9:
            cols, after_tab = 0, False
            for b in reversed(self.rbuf[head:]):
                if b == 9:
                    after_tab = True
                    break
                if iscntrl(b):
                    cols += 2 if self._l(ECHOCTL) else 0
                elif not self._continuation(b):
                    cols += 1
            if not after_tab:
                cols += self.canon_column
            n = 8 - (cols & 7)
            self._echo += b"\b" * n
            self.column = max(0, self.column - n)
        elif not iscntrl(ch):
            self._echo_raw(b"\b \b")
        elif self._l(ECHOCTL):
            self._echo_raw(b"\b \b\b \b")     # it was shown as ^X (unshown without ECHOCTL)

    def _finish_erasing(self) -> None:
        if self.erasing:
            self._echo_raw(b"/")
            self.erasing = False

    def _signal_char(self, sig: int, c: int) -> None:
        self.isig(sig)
        if self._i(IXON):
            self.start()
        if self._l(ECHO):
            self._echo_char(c)
        self._flush_echo()

    def isig(self, sig: int) -> None:
        """An ISIG character: the signal to the foreground group, then the flush."""
        jobctl.kill_pgrp(self.k, self.pgrp, sig)
        if not self._l(NOFLSH):
            self._echo.clear()
            self.held.clear()
            self.flush_device_output()
            self._flush_ldisc()

    def _flush_ldisc(self) -> None:
        self.rbuf.clear()
        self.line_ends.clear()
        self.lnext = self.erasing = False
        self.packet_event(TIOCPKT_FLUSHREAD)
        self.input_consumed()
        self.write_wq.wake_all()

    # -- echo and output processing ------------------------------------------------------
    def _echo_char(self, c: int) -> None:
        if self._l(ECHOCTL) and iscntrl(c) and c != 9:
            self._echo += bytes([94, c ^ 0o100])
            self.column += 2
        else:
            self._echo_raw(bytes([c]))

    def _echo_raw(self, data: bytes) -> None:
        if self.termios.oflag & OPOST:
            self._echo += self._opost(data, len(data) * 8)[1]
        else:
            self._echo += data

    def _flush_echo(self) -> None:
        if self._echo:
            data, self._echo = bytes(self._echo), bytearray()
            self.emit(data)

    def emit(self, data: bytes) -> None:
        if self.stopped:
            self.held += data
        else:
            self.transmit(data)

    def _width(self, text: bytes) -> int:
        """Columns taken by text without control characters other than newlines."""
        n = len(text) - text.count(b"\n")
        if self._i(IUTF8):
            n -= len(text) - len(text.translate(None, _CONTINUATION))
        return n

    def _opost_lines(self, data: bytes, o: int) -> bytes | None:
        """The common case at bulk speed: text whose only control character is \n."""
        if o & (OLCUC | OCRNL | ONOCR | ONLRET) or _CTL_BUT_NL.search(data):
            return None
        nl = data.rfind(b"\n")
        if o & ONLCR:
            if nl >= 0:
                self.column = self.canon_column = 0
            self.column += self._width(data[nl + 1:])
            return data.replace(b"\n", b"\r\n")
        if nl >= 0:
            self.canon_column = self.column + self._width(data[:nl])
        self.column += self._width(data)
        return data

    def _opost(self, data: bytes, room: int) -> tuple[int, bytes]:
        """process_output: (input bytes consumed, output bytes) within room."""
        o = self.termios.oflag
        if len(data) + data.count(b"\n") <= room:
            fast = self._opost_lines(data, o)
            if fast is not None:
                return len(data), fast
        out = bytearray()
        i, n = 0, len(data)
        while i < n and len(out) < room:
            m = _CTL.search(data, i, min(n, i + room - len(out)))
            end = m.start() if m else min(n, i + room - len(out))
            if end > i:
                run = data[i:end]
                if o & OLCUC:
                    run = run.upper()
                out += run
                cont = len(run) - len(run.translate(None, _CONTINUATION)) if self._i(IUTF8) else 0
                self.column += len(run) - cont
                i = end
                continue
            piece = self._opost_char(data[i], o)
            if len(out) + len(piece) > room:
                break
            out += piece
            i += 1
        return i, bytes(out)

    def _opost_char(self, c: int, o: int) -> bytes:
        if c == 10:
            if o & ONLRET:
                self.column = 0
            if o & ONLCR:
                self.column = self.canon_column = 0
                return b"\r\n"
            self.canon_column = self.column
        elif c == 13:
            if o & ONOCR and self.column == 0:
                return b""
            if o & OCRNL:
                if o & ONLRET:
                    self.column = self.canon_column = 0
                return b"\n"
            self.column = self.canon_column = 0
        elif c == 9:
            spaces = 8 - (self.column & 7)
            self.column += spaces
            if o & TABDLY == XTABS:
                return b" " * spaces
        elif c == 8:
            self.column = max(0, self.column - 1)
        return bytes([c])

    # -- flow control -------------------------------------------------------------------
    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.packet_event(TIOCPKT_STOP)

    def start(self) -> None:
        if self.stopped and not self.tco_stopped:
            self.stopped = False
            self.packet_event(TIOCPKT_START)
            if self.held:
                data, self.held = bytes(self.held), bytearray()
                self.transmit(data)
            self.write_wq.wake_all()

    # -- reading --------------------------------------------------------------------------
    def input_available(self, for_poll: bool = False) -> bool:
        if self.canonical:
            return bool(self.line_ends)
        cc = self.termios.cc
        amt = cc[VMIN] if for_poll and not cc[VTIME] and cc[VMIN] else 1
        return len(self.rbuf) >= amt

    def _take(self, n: int) -> bytes:
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        for le in self.line_ends:
            le[0] -= len(data)
        self.input_consumed()
        self.process_input()
        return data

    def _read_canon(self, n: int) -> bytes | None:
        if not self.line_ends:
            return None
        end = self.line_ends[0][0]
        data = self._take(min(n, end))
        if len(data) == end:
            self.line_ends.popleft()     # the line and its VEOF are consumed
        return data

    def read(self, f: TtyFile, task, n: int) -> bytes:
        if f.hung_up:
            return b""
        if not f.redirect:
            jobctl.check_change(task, self, S.SIGTTIN)
        if n == 0:
            return b""
        if not self.input_available():
            self.refill()
        if self.canonical:
            data = self._read_canon(n)
            if data is not None:
                return data
            if self.input_eof:
                return b""
            if f.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.read_wq)
        return self._read_raw(f, task, n)

    def _read_raw(self, f: TtyFile, task, n: int) -> bytes:
        """Non-canonical: the four VMIN/VTIME cases of termios(3)."""
        cc = self.termios.cc
        vmin, vtime = cc[VMIN], cc[VTIME] * 100_000_000
        avail = len(self.rbuf)
        if avail >= (min(vmin, n) or 1) or (avail and (f.nonblock or vtime == 0 and not vmin)):
            self._vtimers.pop(task, None)
            return self._take(n)
        if self.input_eof or (vmin == 0 and vtime == 0):
            return b""
        if f.nonblock:
            raise KernelError(E.EAGAIN)
        deadline = None
        if vtime and (vmin == 0 or avail):
            now = clock.monotonic_ns()
            seen, deadline = self._vtimers.get(task, (-1, 0))
            if seen != avail:     # VMIN>0: the timer restarts with each new byte
                deadline = now + vtime
                self._vtimers[task] = (avail, deadline)
            if now >= deadline:
                self._vtimers.pop(task, None)
                return self._take(n)
        raise Block(self.read_wq, deadline=deadline,
                    on_interrupt=lambda: self._vtimers.pop(task, None))

    # -- writing --------------------------------------------------------------------------
    def write(self, f: TtyFile, task, data: bytes) -> int:
        if f.hung_up:
            raise KernelError(E.EIO)
        if self._l(TOSTOP) and not f.redirect:
            jobctl.check_change(task, self, S.SIGTTOU)
        return self._write(f, data, 0)

    def _write(self, f: TtyFile, data: bytes, done: int) -> int:
        while done < len(data):
            if f.hung_up:
                if done:
                    return done
                raise KernelError(E.EIO)
            room = 0 if self.stopped else self.write_room()
            if room > 0:
                if self.termios.oflag & OPOST:
                    used, out = self._opost(data[done:done + room], room)
                else:
                    used = min(room, len(data) - done)
                    out = data[done:done + used]
                if used:
                    self.transmit(out)
                    done += used
                    continue
            return wait_for_room(self.write_wq, f.nonblock, done, lambda d: self._write(f, data, d))
        return done

    def send_xchar(self, c: int) -> None:
        """TCIOFF/TCION: a START/STOP character to the other end, ahead of output."""
        if c:
            self.transmit(bytes([c]))

    def drain(self) -> None:
        """tcdrain: wait until the device has sent what it holds."""
        if self.chars_in_buffer():
            raise Block(self.write_wq)

    # -- poll -----------------------------------------------------------------------------
    def poll(self, f: TtyFile) -> int:
        if f.hung_up:
            return _HUNG_POLL
        if not self.input_available(True):
            self.refill()
        ev = 0
        if self.input_available(True) or self.input_eof:
            ev |= POLLIN | POLLRDNORM
        if not self.stopped and self.write_room() > 0:
            ev |= POLLOUT | POLLWRNORM
        return ev

    # -- termios and window size --------------------------------------------------------
    def set_termios(self, new: Termios) -> None:
        """n_tty_set_termios: mode switches keep what was typed, as Linux's do."""
        old = self.termios
        self.fixup_termios(new)
        self.termios = new
        if (old.lflag ^ new.lflag) & ICANON:
            if new.lflag & ICANON:
                self.line_ends.clear()
                if self.rbuf:
                    self._end_line(False)    # what is there becomes one line
            else:
                for end, eof in reversed(self.line_ends):
                    if eof:
                        self.rbuf[end:end] = b"\0"    # n_tty keeps VEOF as a NUL
                self.line_ends.clear()
            self.erasing = self.lnext = False
        if old.iflag & IXON and not new.iflag & IXON and not self.tco_stopped:
            self.start()
        old_flow, new_flow = _std_flow(old), _std_flow(new)
        if old_flow != new_flow:
            self.packet_event(TIOCPKT_DOSTOP if new_flow else TIOCPKT_NOSTOP)
        self.process_input()
        self.read_wq.wake_all()
        self.write_wq.wake_all()

    def resize(self, ws: bytes) -> None:
        """tty_do_resize: SIGWINCH to the foreground group when the size changes."""
        if ws != self.winsize:
            jobctl.kill_pgrp(self.k, self.pgrp, S.SIGWINCH)
            self.winsize = ws

    def flush(self, which: int) -> None:
        if which in (TCIFLUSH, TCIOFLUSH):
            self.pending.clear()
            self._flush_ldisc()
        if which in (TCOFLUSH, TCIOFLUSH):
            self.held.clear()
            self.flush_device_output()
            self.packet_event(TIOCPKT_FLUSHWRITE)
            self.write_wq.wake_all()

    # -- hangup -----------------------------------------------------------------------------
    def hangup(self, exit_session: bool = False) -> None:
        """__tty_hangup: the session loses the terminal; files opened on it
        (not those opened as /dev/console) read EOF and fail writes from now on."""
        for f in self.files:
            if not f.redirect:
                f.hung_up = True
        jobctl.signal_session_leader(self.k, self, exit_session)
        self.session = self.pgrp = 0
        self.pktstatus = 0
        self.pending.clear()
        self._flush_ldisc()
        self.read_wq.wake_all()
        self.write_wq.wake_all()

    # -- ioctl ------------------------------------------------------------------------------
    def ioctl(self, f: File, task, req: int, arg: int, via_master: bool = False) -> int:
        """tty_ioctl.  via_master: the request came on the pty master, for this slave."""
        if getattr(f, "hung_up", False):
            raise KernelError(E.ENOTTY if req == TIOCSPGRP else E.EIO)
        mem = task.mem
        if req in _GET_TERMIOS:
            pack, _ = _GET_TERMIOS[req]
            mem.write(arg, pack(self.termios))
            return 0
        if req in _SET_TERMIOS:
            return self._tcsets(task, req, arg)
        handler = _IOCTLS.get(req)
        if handler is None:
            raise KernelError(E.ENOTTY)
        return handler(self, f, task, arg, via_master)

    def _tcsets(self, task, req: int, arg: int) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        new = self.termios.with_user(req, task.mem.read(arg, _TERMIOS_SIZE[_SET_TERMIOS[req]]))
        if req not in (TCSETS, TCSETA, TCSETS2):
            self.drain()
        if req in (TCSETSF, TCSETAF, TCSETSF2):
            self.flush(TCIFLUSH)
        self.set_termios(new)
        return 0

    def _ctty_of(self, task, via_master: bool) -> None:
        """tiocgpgrp/tiocgsid: only the session's own tty answers (or the master)."""
        proc = task.proc
        if via_master or proc.ctty is self:
            return
        if self.adopt_by_leader and proc.ctty is None and proc.sid == proc.pid and not self.session:
            jobctl.set_ctty(proc, self)
            return
        raise KernelError(E.ENOTTY)

    def _tiocgpgrp(self, f, task, arg, via_master) -> int:
        self._ctty_of(task, via_master)
        task.mem.write(arg, _INT.pack(self.pgrp))
        return 0

    def _tiocspgrp(self, f, task, arg, via_master) -> int:
        try:
            jobctl.check_change(task, self, S.SIGTTOU)
        except KernelError as e:
            raise KernelError(E.ENOTTY if e.errno == E.EIO else e.errno) from None
        (pg,) = _INT.unpack(task.mem.read(arg, 4))
        if pg < 0:
            raise KernelError(E.EINVAL)
        proc = task.proc
        if proc.ctty is not self or self.session != proc.sid:
            raise KernelError(E.ENOTTY)
        if not jobctl.pid_in_use(self.k, pg):
            raise KernelError(E.ESRCH)
        if jobctl.session_of_pgrp(self.k, pg) != proc.sid:
            raise KernelError(E.EPERM)
        self.pgrp = pg
        return 0

    def _tiocgsid(self, f, task, arg, via_master) -> int:
        if not via_master and task.proc.ctty is not self:
            raise KernelError(E.ENOTTY)
        if not self.session:
            raise KernelError(E.ENOTTY)
        task.mem.write(arg, _INT.pack(self.session))
        return 0

    def _tiocsctty(self, f, task, arg, via_master) -> int:
        proc = task.proc
        if proc.sid == proc.pid and self.session == proc.sid:
            return 0
        if proc.sid != proc.pid or proc.ctty is not None:
            raise KernelError(E.EPERM)
        admin = capable(proc.creds, CAP_SYS_ADMIN)
        if self.session:
            if arg != 1 or not admin:
                raise KernelError(E.EPERM)
            jobctl.session_clear_tty(self.k, self.session)    # steal it
        if not f.readable and not admin:
            raise KernelError(E.EPERM)
        jobctl.set_ctty(proc, self)
        return 0

    def _tiocnotty(self, f, task, arg, via_master) -> int:
        proc = task.proc
        if via_master or proc.ctty is not self:
            raise KernelError(E.ENOTTY)
        jobctl.disassociate_ctty(self.k, proc, on_exit=False)
        proc.ctty = None
        return 0

    def _tiocgwinsz(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, self.winsize)
        return 0

    def _tiocswinsz(self, f, task, arg, via_master) -> int:
        self.resize(task.mem.read(arg, 8))
        return 0

    def _fionread(self, f, task, arg, via_master) -> int:
        if self.canonical:
            n = self.line_ends[-1][0] if self.line_ends else 0
        else:
            n = len(self.rbuf)
        task.mem.write(arg, _INT.pack(n))
        return 0

    def _tiocoutq(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, _INT.pack(self.chars_in_buffer() + len(self.held)))
        return 0

    def _tcflsh(self, f, task, arg, via_master) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        if arg not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
            raise KernelError(E.EINVAL)
        self.flush(arg)
        return 0

    def _tcxonc(self, f, task, arg, via_master) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        if arg == TCOOFF:
            if not self.tco_stopped:
                self.tco_stopped = True
                self.stop()
        elif arg == TCOON:
            if self.tco_stopped:
                self.tco_stopped = False
                self.start()
        elif arg in (TCIOFF, TCION):
            self.send_xchar(self.termios.cc[VSTOP if arg == TCIOFF else VSTART])
        else:
            raise KernelError(E.EINVAL)
        return 0

    def _tcsbrk(self, f, task, arg, via_master) -> int:
        jobctl.check_change(task, self, S.SIGTTOU)
        self.drain()
        return 0

    def _tiocsti(self, f, task, arg, via_master) -> int:
        """Linux 6.2+ with legacy_tiocsti off: CAP_SYS_ADMIN only."""
        need(task.proc.creds, CAP_SYS_ADMIN, E.EIO)
        self.receive(task.mem.read(arg, 1))
        return 0

    def _excl(self, f, task, arg, via_master) -> int:
        self.exclusive = True
        return 0

    def _nxcl(self, f, task, arg, via_master) -> int:
        self.exclusive = False
        return 0

    def _gexcl(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, _INT.pack(int(self.exclusive)))
        return 0

    def _getd(self, f, task, arg, via_master) -> int:
        task.mem.write(arg, _INT.pack(self.termios.line))
        return 0

    def _setd(self, f, task, arg, via_master) -> int:
        (ld,) = _INT.unpack(task.mem.read(arg, 4))
        if ld != 0:
            raise KernelError(E.EINVAL)     # only N_TTY here
        return 0

    def _gdev(self, f, task, arg, via_master) -> int:
        ma, mi = structs.major(self.rdev), structs.minor(self.rdev)
        task.mem.write(arg, struct.pack("<I", (mi & 0xFF) | (ma << 8) | ((mi & ~0xFF) << 12)))
        return 0

    def _vhangup(self, f, task, arg, via_master) -> int:
        need(task.proc.creds, CAP_SYS_ADMIN)
        self.hangup()
        return 0

    def _nop(self, f, task, arg, via_master) -> int:
        return 0


_IOCTLS = {
    TIOCGPGRP: Tty._tiocgpgrp, TIOCSPGRP: Tty._tiocspgrp, TIOCGSID: Tty._tiocgsid,
    TIOCSCTTY: Tty._tiocsctty, TIOCNOTTY: Tty._tiocnotty,
    TIOCGWINSZ: Tty._tiocgwinsz, TIOCSWINSZ: Tty._tiocswinsz,
    FIONREAD: Tty._fionread, TIOCOUTQ: Tty._tiocoutq,
    TCFLSH: Tty._tcflsh, TCXONC: Tty._tcxonc, TCSBRK: Tty._tcsbrk, TCSBRKP: Tty._tcsbrk,
    TIOCSBRK: Tty._nop, TIOCCBRK: Tty._nop, TIOCSTI: Tty._tiocsti,
    TIOCEXCL: Tty._excl, TIOCNXCL: Tty._nxcl, TIOCGEXCL: Tty._gexcl,
    TIOCGETD: Tty._getd, TIOCSETD: Tty._setd, TIOCGDEV: Tty._gdev, TIOCVHANGUP: Tty._vhangup,
}


class TtyFile(File):
    lazy_write = True
    """An open tty.  redirect: opened as /dev/console, which Linux exempts
    from job-control stops and from hangups (its console_fops)."""

    kind = "tty"
    splice_read = splice_write = True

    def __init__(self, dentry, inode, flags: int, tty: Tty, redirect: bool = False) -> None:
        super().__init__(dentry, inode, flags)
        self.tty = tty
        self.redirect = redirect
        self.hung_up = False
        tty.files.add(self)

    def read(self, task, n: int) -> bytes:
        return self.tty.read(self, task, n)

    def write(self, task, data: bytes) -> int:
        return self.tty.write(self, task, data)

    def ioctl(self, task, req: int, arg: int) -> int:
        return self.tty.ioctl(self, task, req, arg)

    def poll(self) -> int:
        return self.tty.poll(self)

    def poll_queues(self) -> list:
        return [self.tty.read_wq, self.tty.write_wq]

    def release(self) -> None:
        tty = self.tty
        tty.files.discard(self)
        if not tty.files:
            tty.last_close()


def wait_for_room(queue: WaitQueue, nonblock: bool, done: int, resume) -> int:
    """A write that cannot go on: what it wrote so far, EAGAIN, or a wait
    that resumes with resume(done) (a signal then returns what was written)."""
    if nonblock:
        if done:
            return done
        raise KernelError(E.EAGAIN)
    raise Block(queue, retry=lambda: resume(done), interrupted_result=(done or None))


def _open_flags(task, flags: int) -> int:
    """The open flags as the caller gave them: the VFS drops O_NOCTTY before
    calling the opener (Linux drops it after ->open), so read it back from
    the syscall's arguments."""
    nr = getattr(task, "in_syscall", -1)
    args = getattr(task, "block_args", ())
    try:
        if nr == 2:                 # open
            return flags | (args[1] & C.O_NOCTTY)
        if nr == 257:               # openat
            return flags | (args[2] & C.O_NOCTTY)
        if nr == 437:               # openat2: struct open_how.flags
            return flags | (int.from_bytes(task.mem.read(args[2], 8), "little") & C.O_NOCTTY)
    except Exception:       # a bad openat2 pointer: the open itself already failed
        pass
    return flags


def open_tty(dentry, inode, flags: int, task, tty: Tty, noctty: bool = False) -> TtyFile:
    """tty_open: a file on tty; a session leader without a controlling tty
    that opens one for reading (without O_NOCTTY) gets it as its own."""
    tty.open_check(task)
    f = TtyFile(dentry, inode, flags, tty)
    proc = task.proc
    if not noctty and not _open_flags(task, flags) & C.O_NOCTTY and proc.sid == proc.pid \
            and proc.ctty is None and not tty.session and f.readable:
        jobctl.set_ctty(proc, tty)
    return f


def open_current_tty(dentry, inode, flags: int, task) -> TtyFile:
    """/dev/tty: the caller's controlling terminal."""
    tty = task.proc.ctty
    if tty is None:
        raise KernelError(E.ENXIO)
    return open_tty(dentry, inode, flags, task, tty, noctty=True)
