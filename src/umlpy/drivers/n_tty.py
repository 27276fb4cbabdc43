"""Linux's n_tty line discipline, as the half of a Tty that processes input
(canonical editing, echo, signals), output (OPOST), flow control, reads,
writes and poll.  A mixin of drivers/tty.py's Tty, which owns the state it
works on (see the model in that module's docstring).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.drivers.termbits import (ECHO, ECHOCTL, ECHOE, ECHOK, ECHOKE, ECHONL, ECHOPRT, ICANON, ICRNL,
                                    IEXTEN, IGNCR, INLCR, ISIG, ISTRIP, IUCLC, IUTF8, IXANY, IXON, NOFLSH,
                                    OCRNL, OLCUC, ONLCR, ONLRET, ONOCR, OPOST, PARMRK, TABDLY, XTABS,
                                    TIOCPKT_FLUSHREAD, TIOCPKT_START, TIOCPKT_STOP, TOSTOP, VEOF, VEOL, VEOL2,
                                    VERASE, VINTR, VKILL, VLNEXT, VMIN, VQUIT, VREPRINT, VSTART, VSTOP, VSUSP,
                                    VTIME, VWERASE)
from umlpy.kernel import jobctl
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM

if TYPE_CHECKING:
    from umlpy.drivers.tty import TtyFile


N_TTY_BUF_SIZE = 4096
INPUT_LIMIT = 65536         # input not yet through the line discipline (flip buffer)
_CTL = re.compile(rb"[\x00-\x1f\x7f]")
_CTL_BUT_NL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")
_CONTINUATION = bytes(range(0x80, 0xC0))
_HUNG_POLL = POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM


def iscntrl(c: int) -> bool:
    return c < 32 or c == 127


def _isalnum(c: int) -> bool:
    """The kernel's isalnum (Latin-1 letters count, as in lib/ctype.c)."""
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or (c >= 192 and c not in (215, 247))


def wait_for_room(queue: WaitQueue, nonblock: bool, done: int, resume) -> int:
    """A write that cannot go on: what it wrote so far, EAGAIN, or a wait
    that resumes with resume(done) (a signal then returns what was written)."""
    if nonblock:
        if done:
            return done
        raise KernelError(E.EAGAIN)
    raise Block(queue, retry=lambda: resume(done), interrupted_result=(done or None))


class NTty:
    """The line discipline half of a Tty (n_tty.c)."""

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
            if self._at_end(f):
                return b""
            if f.nonblock:
                raise KernelError(E.EAGAIN)
            raise Block(self.read_wq)
        return self._read_raw(f, task, n)

    def _at_end(self, f: TtyFile) -> bool:
        """Whether f reads EOF: the input ended for good and f was open
        before it did (the driver hears of it: the console hangs up)."""
        if not self.input_eof or f.after_eof:
            return False
        self.input_ended()
        return True

    def _read_raw(self, f: TtyFile, task, n: int) -> bytes:
        """Non-canonical: the four VMIN/VTIME cases of termios(3)."""
        cc = self.termios.cc
        vmin, vtime = cc[VMIN], cc[VTIME] * 100_000_000
        avail = len(self.rbuf)
        if avail >= (min(vmin, n) or 1) or (avail and (f.nonblock or vtime == 0 and not vmin)):
            self._vtimers.pop(task, None)
            return self._take(n)
        if self._at_end(f) or (vmin == 0 and vtime == 0):
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
            err = E.EIO if f.hung_up else self.write_error()
            if err:
                if done:
                    return done
                raise KernelError(err)
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
        if self.input_available(True) or self.input_eof and not f.after_eof:
            ev |= POLLIN | POLLRDNORM
        if not self.stopped and self.write_room() > 0:
            ev |= POLLOUT | POLLWRNORM
        return ev

