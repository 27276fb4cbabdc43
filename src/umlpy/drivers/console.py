"""The console: /dev/console (5,1) and /dev/tty (5,0), on a host channel.

This is the console as UML's fd channels give it: input read from the host
fd by the event loop into a buffer (regular files and /dev/null, which the
host cannot poll, are read directly), output written straight through.
The line discipline is the host terminal's for now: termios requests are
passed to the host terminal when there is one, and kept here otherwise.
"""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs import devices
from umlpy.vfs.file import POLLIN, POLLOUT, File

TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TCSBRK, TCXONC, TCFLSH = 0x5409, 0x540A, 0x540B
TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCOUTQ = 0x540E, 0x540F, 0x5410, 0x5411
TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCNOTTY, TIOCGSID = 0x5413, 0x5414, 0x541B, 0x5422, 0x5429
NCCS = 19
_TERMIOS = struct.Struct(f"<IIIIB{NCCS}s")
# Linux's default tty settings (tty_std_termios)
DEFAULT_TERMIOS = _TERMIOS.pack(0x500, 0x5, 0xBF, 0x8A3B, 0,
                                bytes([3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0]))
INPUT_HIGH_WATER = 1 << 20


class Console:
    def __init__(self, k, channel) -> None:
        self.k = k
        self.ch = channel
        self.inbuf = bytearray()
        self.eof = False            # permanent end of input (pipe or file)
        self.pending_eof = False    # one EOF for a reader (^D on a host tty)
        self.read_wq = WaitQueue("console read")
        self.termios = DEFAULT_TERMIOS
        self.winsize = (24, 80)
        self.pgrp = 0
        self.session = 0
        self.watching = False
        self.pollable = False
        if channel.in_fd is not None:
            self.pollable = k.sched.watch_fd(channel.in_fd, 0x001, self._on_input)
            self.watching = self.pollable
        if channel.out_is_tty or channel.in_is_tty:
            self.winsize = channel.winsize()

    def _on_input(self, events: int) -> None:
        data = self.ch.read(65536)
        if data is None:
            return
        if data == b"":
            if self.ch.in_is_tty and not events & 0x010:
                self.pending_eof = True
            else:
                self.eof = True
                self._watch(False)
        else:
            self.inbuf += data
            if len(self.inbuf) > INPUT_HIGH_WATER:
                self._watch(False)
        self.read_wq.wake_all()

    def _watch(self, on: bool) -> None:
        if on != self.watching and self.pollable:
            self.k.sched.loop.modify(self.ch.in_fd, 0x001 if on else 0)
            self.watching = on

    def read(self, n: int, nonblock: bool) -> bytes:
        if self.inbuf:
            data = bytes(self.inbuf[:n])
            del self.inbuf[:n]
            if not self.eof and len(self.inbuf) < INPUT_HIGH_WATER:
                self._watch(True)
            return data
        if self.pending_eof:
            self.pending_eof = False
            return b""
        if self.eof:
            return b""
        if not self.pollable:
            data = self.ch.read(n)
            return data or b""
        if nonblock:
            raise KernelError(E.EAGAIN)
        raise Block(self.read_wq)

    def write(self, data: bytes) -> int:
        self.ch.write(data)
        return len(data)

    # -- termios --------------------------------------------------------------
    def get_termios(self) -> bytes:
        if self.ch.in_is_tty:
            a = self.ch.get_termios()
            cc = bytes(c if isinstance(c, int) else c[0] for c in a[6][:NCCS])
            return _TERMIOS.pack(a[0], a[1], a[2], a[3], 0, cc)
        return self.termios

    def set_termios(self, data: bytes, when: int) -> None:
        if self.ch.in_is_tty:
            iflag, oflag, cflag, lflag, _line, cc = _TERMIOS.unpack(data)
            a = self.ch.get_termios()
            ccl = list(a[6])
            for i in range(NCCS):
                ccl[i] = cc[i] if isinstance(ccl[i], int) else bytes([cc[i]])
            self.ch.set_termios([iflag, oflag, cflag, lflag, a[4], a[5], ccl], when)
        else:
            self.termios = data

    def ioctl(self, t, req: int, arg: int) -> int:
        mem = t.mem
        if req == TCGETS:
            mem.write(arg, self.get_termios())
            return 0
        if req in (TCSETS, TCSETSW, TCSETSF):
            when = {TCSETS: 0, TCSETSW: 1, TCSETSF: 2}[req]   # TCSANOW, TCSADRAIN, TCSAFLUSH
            self.set_termios(mem.read(arg, _TERMIOS.size), when)
            if req == TCSETSF:
                self.inbuf.clear()
            return 0
        if req == TIOCGWINSZ:
            mem.write(arg, struct.pack("<HHHH", self.winsize[0], self.winsize[1], 0, 0))
            return 0
        if req == TIOCSWINSZ:
            r, c, _, _ = struct.unpack("<HHHH", mem.read(arg, 8))
            self.winsize = (r, c)
            return 0
        if req == FIONREAD:
            mem.write(arg, struct.pack("<i", len(self.inbuf)))
            return 0
        if req == TIOCOUTQ:
            mem.write(arg, struct.pack("<i", 0))
            return 0
        if req in (TCSBRK, TCXONC):
            return 0
        if req == TCFLSH:
            if arg in (0, 2):
                self.inbuf.clear()
            return 0
        if req == TIOCGPGRP:
            if t.proc.ctty is not self:
                raise KernelError(E.ENOTTY)
            mem.write(arg, struct.pack("<i", self.pgrp))
            return 0
        if req == TIOCSPGRP:
            if t.proc.ctty is not self or t.proc.sid != self.session:
                raise KernelError(E.ENOTTY)
            (pg,) = struct.unpack("<i", mem.read(arg, 4))
            if pg < 0:
                raise KernelError(E.EINVAL)
            if not any(p.pgid == pg and p.sid == self.session for p in t.kernel.procs.by_pid.values()):
                raise KernelError(E.EPERM)
            self.pgrp = pg
            return 0
        if req == TIOCGSID:
            if t.proc.ctty is not self:
                raise KernelError(E.ENOTTY)
            mem.write(arg, struct.pack("<i", self.session))
            return 0
        if req == TIOCSCTTY:
            proc = t.proc
            if proc.sid != proc.pid or proc.ctty is not None:
                raise KernelError(E.EPERM)
            if self.session and self.session != proc.sid and not (arg == 1 and proc.creds.euid == 0):
                raise KernelError(E.EPERM)
            self.session, self.pgrp = proc.sid, proc.pgid
            for p in t.kernel.procs.by_pid.values():
                if p.sid == proc.sid:
                    p.ctty = self
            return 0
        if req == TIOCNOTTY:
            if t.proc.ctty is not self:
                raise KernelError(E.ENOTTY)
            t.proc.ctty = None
            return 0
        raise KernelError(E.ENOTTY)

    def poll(self) -> int:
        ev = POLLOUT
        if self.inbuf or self.eof or self.pending_eof or not self.pollable:
            ev |= POLLIN
        return ev


class ConsoleFile(File):
    kind = "tty"

    def __init__(self, dentry, inode, flags: int, console: Console) -> None:
        super().__init__(dentry, inode, flags)
        self.console = console

    def read(self, task, n: int) -> bytes:
        return self.console.read(n, self.nonblock)

    def write(self, task, data: bytes) -> int:
        return self.console.write(data)

    def ioctl(self, task, req: int, arg: int) -> int:
        return self.console.ioctl(task, req, arg)

    def poll(self) -> int:
        return self.console.poll()

    def poll_queues(self) -> list:
        return [self.console.read_wq]

    def lseek(self, off: int, whence: int) -> int:
        raise KernelError(E.ESPIPE)


def register(console: Console) -> None:
    devices.register_char(5, 1, lambda d, i, fl, t: ConsoleFile(d, i, fl, console))

    def open_tty(d, i, fl, t):
        if t.proc.ctty is None:
            raise KernelError(E.ENXIO)
        return ConsoleFile(d, i, fl, t.proc.ctty)
    devices.register_char(5, 0, open_tty)
