"""The host end of console channels: UML's fd:N, null and pty channels.

- Never block the kernel.  Input: pollable fds are watched by the event
  loop; regular files and /dev/null cannot be polled, so the kernel reads
  them when a guest asks.  Output is queued and written as the host takes
  it (the event loop reports the fd writable); whatever is left is flushed,
  with a time limit, when the machine stops.
- Shared host state is left as found.  Terminals and pipes are reopened
  through /proc/self/fd into private open file descriptions for the
  non-blocking mode, so the user's shell never inherits O_NONBLOCK on its
  terminal (fcntl with a restore is the fallback).  A host terminal on input
  is put in raw mode while the guest runs -- the line discipline is the
  guest kernel's -- and its settings come back at exit: from the kernel's
  shutdown (normal exit, poweroff, panic, host SIGTERM/SIGHUP) and, for a
  Python exception escaping the kernel, from an atexit hook.
- A host debugger (arch_um/debugger.py) borrows the terminal: output is
  written out, the terminal cooked and fds blocking while it runs, then
  put back as the kernel had them (`lent_to_debugger`).
- `open_pty` makes a host pseudo-terminal for a pts channel: the guest
  line is then reached with `screen /dev/pts/N`.  The other channel types
  (file:, port:) are arch_um/channels.py.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import os
import select
import stat
import struct
import sys
import termios
from contextlib import contextmanager
from typing import Iterator

from arch_um import clock

FLUSH_AT_EXIT_NS = 2_000_000_000
_RAW: set[HostChannel] = set()      # channels whose terminal is in raw mode
_LIVE: set[HostChannel] = set()


class HostChannel:
    def __init__(self, in_fd: int | None, out_fd: int | None, *, owned: tuple[int, ...] = (),
                 name: str | None = None, pty: bool = False) -> None:
        self.name = name
        self.is_pty = pty
        self._close: list[int] = list(owned)       # fds this channel opened
        self._flags: list[tuple[int, int]] = []    # (fd, flags) to put back
        self.in_is_tty = in_fd is not None and os.isatty(in_fd)
        self.out_is_tty = out_fd is not None and os.isatty(out_fd)
        self._out = bytearray()
        self.out_gone = False       # the host end of the output closed (EPIPE): for good
        self._saved: tuple[int, list] | None = None
        if owned:
            for fd in {in_fd, out_fd} - {None}:
                os.set_blocking(fd, False)
            self.in_fd, self.out_fd = in_fd, out_fd
        else:
            self.in_fd = self._private(in_fd, os.O_RDONLY)
            self.out_fd = self._private(out_fd, os.O_WRONLY)
        _LIVE.add(self)

    def _private(self, fd: int | None, mode: int) -> int | None:
        """fd, made non-blocking without touching what the host shares."""
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            return None     # not open: a null channel
        if stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode) or \
                (stat.S_ISCHR(st.st_mode) and not os.isatty(fd)):
            return fd       # never blocks (and cannot be polled)
        try:
            new = os.open(f"/proc/self/fd/{fd}", mode | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            self._flags.append((fd, fl))
            fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
            return fd
        self._close.append(new)
        return new

    @classmethod
    def open_pty(cls) -> HostChannel:
        """A host pty whose master is the channel; its slave, in raw mode, is
        where the user attaches.  The channel keeps a slave fd open so that
        clients may come and go without the master seeing a hangup."""
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        os.set_inheritable(slave, False)
        _make_raw(slave)
        return cls(master, master, owned=(master, slave), name=os.ttyname(slave), pty=True)

    # -- input ----------------------------------------------------------------
    def read(self, n: int) -> bytes | None:
        """Bytes, b"" at end of input, or None if nothing is there yet."""
        if self.in_fd is None:
            return b""
        try:
            return os.read(self.in_fd, n)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    # -- output ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue data and write what the host takes now."""
        if self.out_fd is None or not data:
            return
        self._out += data
        self.flush()

    def flush(self) -> None:
        while self._out:
            try:
                n = os.write(self.out_fd, self._out)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError as e:
                self._out.clear()       # the reader is gone: output goes nowhere
                self.out_gone = self.out_gone or e.errno == errno.EPIPE
                return
            del self._out[:n]

    def pending_output(self) -> int:
        return len(self._out)

    def discard_output(self) -> None:
        self._out.clear()

    def _drain(self, deadline: int) -> None:
        while self._out and clock.monotonic_ns() < deadline:
            self.flush()
            if self._out:
                left = (deadline - clock.monotonic_ns()) / 1e9
                select.select([], [self.out_fd], [], max(0.0, left))

    # -- the terminal -------------------------------------------------------------
    def set_raw(self) -> None:
        """Raw mode on a host terminal we read from, if we own its foreground."""
        fd = self.in_fd
        if self.is_pty or not self.in_is_tty or self._saved is not None:
            return
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():
                return      # started in the host's background: leave the terminal alone
            self._saved = (fd, termios.tcgetattr(fd))
            _make_raw(fd)
        except (OSError, termios.error):
            return
        _RAW.add(self)

    def winsize(self) -> bytes:
        """struct winsize of the host terminal (24x80 when there is none)."""
        for fd in (self.out_fd, self.in_fd):
            if fd is not None and os.isatty(fd):
                try:
                    return fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8))
                except OSError:
                    pass
        return struct.pack("<HHHH", 24, 80, 0, 0)

    def restore(self) -> None:
        """Put the host back as it was: flush output, termios, fd flags."""
        if self not in _LIVE:
            return
        _LIVE.discard(self)
        if self.out_fd is not None:
            self._drain(clock.monotonic_ns() + FLUSH_AT_EXIT_NS)
        if self._saved is not None:
            fd, attrs = self._saved
            try:
                termios.tcsetattr(fd, termios.TCSANOW, attrs)
            except (OSError, termios.error):
                pass
            self._saved = None
        _RAW.discard(self)
        for fd, fl in self._flags:
            _set_flags(fd, fl)
        for fd in self._close:
            try:
                os.close(fd)
            except OSError:
                pass
        self._flags, self._close = [], []


@contextmanager
def lent_to_debugger() -> Iterator[None]:
    """The host terminal as the user left it, for pdb while the kernel is
    frozen: queued guest output first (so it shows what the guest did),
    then cooked mode and the fds' own flags; on the way out, the raw mode
    and flags the kernel had."""
    live = list(_LIVE)
    raw: list[tuple[int, list]] = []
    for ch in live:
        if ch.out_fd is not None:
            ch._drain(clock.monotonic_ns() + FLUSH_AT_EXIT_NS)
    for ch in list(_RAW):
        fd, cooked = ch._saved
        try:
            raw.append((fd, termios.tcgetattr(fd)))
        except (OSError, termios.error):
            continue
        _drained_set(fd, cooked)
    held = set(_RAW)
    _RAW.clear()        # log lines need no carriage return meanwhile
    flags = [(fd, fl) for ch in live for fd, fl in ch._flags]
    for fd, fl in flags:
        _set_flags(fd, fl)
    try:
        yield
    finally:
        for fd, fl in flags:
            _set_flags(fd, fl | os.O_NONBLOCK)
        for fd, attrs in raw:
            _drained_set(fd, attrs)
        _RAW.update(held)


def _drained_set(fd: int, attrs: list) -> None:
    """tcsetattr after the output drained, again when a signal cut the
    drain short (EINTR: termios does not retry, and the tick or a timer's
    SIGALRM, unblocked as pdb let go, came while a slow reader kept the
    output waiting: the terminal stayed cooked under the guest)."""
    while True:
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, attrs)
            return
        except termios.error as e:
            if e.args[0] != errno.EINTR:
                return
        except OSError:
            return


def _set_flags(fd: int, flags: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    except OSError:
        pass


def _make_raw(fd: int) -> None:
    """cfmakeraw(3), at once (typeahead is kept)."""
    a = termios.tcgetattr(fd)
    a[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
              | termios.IGNCR | termios.ICRNL | termios.IXON)
    a[1] &= ~termios.OPOST
    a[2] = (a[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    a[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    a[6][termios.VMIN] = 1
    a[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)


@atexit.register
def _restore_all() -> None:
    """Python exceptions that escape the kernel still give the terminal back."""
    for ch in list(_LIVE):
        ch.restore()


def write_log(text: str) -> None:
    """The kernel log's host end: stderr, so stdout carries only the guest's.
    With the terminal raw, lines need their carriage return.  A stderr whose
    reader went away (`2>&1 | head`) takes the log quietly from then on, as
    UML's log writes fail with EPIPE and are dropped: stderr is pointed at
    /dev/null, so neither later lines nor the interpreter's last flush fail."""
    if _RAW and sys.stderr.isatty():
        text = text.replace("\n", "\r\n")
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)
        try:
            sys.stderr.flush()      # what was buffered goes to /dev/null
        except OSError:
            pass
