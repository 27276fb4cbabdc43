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

from collections import deque

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_SYS_ADMIN
from umlpy.drivers.n_tty import NTty
from umlpy.drivers.termbits import (ICANON, IXON, TCIFLUSH, TCIOFLUSH, TCOFLUSH, TIOCPKT_DOSTOP,
                                    TIOCPKT_FLUSHWRITE, TIOCPKT_NOSTOP, Termios, std_flow)
from umlpy.drivers.tty_ioctl import TtyIoctl
from umlpy.kernel import jobctl
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.wait import WaitQueue
from umlpy.vfs.file import File


class Tty(NTty, TtyIoctl):
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

    def write_error(self) -> int:
        """An errno every write fails with from now on (the device is gone), or 0."""
        return 0

    def chars_in_buffer(self) -> int:
        return 0

    def flush_device_output(self) -> None:
        pass

    def refill(self) -> None:
        """Fetch input the driver cannot be told about (the console on a host file)."""

    def input_ended(self) -> None:
        """A reader reached the end of the input, which will never grow again
        (input_eof): the console hangs its line up now."""

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
        old_flow, new_flow = std_flow(old), std_flow(new)
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
        # opened after the input ended for good: reads wait (as on a line
        # whose carrier is gone) instead of seeing EOF, so a getty respawned
        # on it sleeps rather than spinning through open, EOF, exit
        self.after_eof = tty.input_eof
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

