"""The host end of a console channel (UML's fd:N channels).

Reads never block the kernel: fds the host can poll are watched by the event
loop; regular files and /dev/null cannot be polled (UML fails there), so they
count as always readable.
"""
from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios


class HostChannel:
    def __init__(self, in_fd: int | None, out_fd: int | None) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.in_is_tty = in_fd is not None and os.isatty(in_fd)
        self.out_is_tty = out_fd is not None and os.isatty(out_fd)
        self._saved_termios = None
        if in_fd is not None:
            fl = fcntl.fcntl(in_fd, fcntl.F_GETFL)
            self._in_flags = fl
            fcntl.fcntl(in_fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)

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

    def write(self, data: bytes) -> None:
        if self.out_fd is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.out_fd, view)
            except BlockingIOError:
                import select
                select.select([], [self.out_fd], [])
                continue
            except OSError:
                return
            view = view[n:]

    def get_termios(self):
        return termios.tcgetattr(self.in_fd)

    def set_termios(self, attrs, when: int = 0) -> None:
        """when: 0 now, 1 after output drains, 2 after it drains and input is flushed."""
        if self._saved_termios is None:
            self._saved_termios = termios.tcgetattr(self.in_fd)
        termios.tcsetattr(self.in_fd, when, attrs)

    def winsize(self) -> tuple[int, int]:
        fd = self.out_fd if self.out_is_tty else self.in_fd
        try:
            r, c, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
            return r, c
        except OSError:
            return 24, 80

    def restore(self) -> None:
        if self._saved_termios is not None:
            try:
                termios.tcsetattr(self.in_fd, termios.TCSANOW, self._saved_termios)
            except termios.error:
                pass
            self._saved_termios = None
        if self.in_fd is not None:
            try:
                fcntl.fcntl(self.in_fd, fcntl.F_SETFL, self._in_flags)
            except OSError:
                pass


def write_log(text: str) -> None:
    """The kernel log's host end: stderr, so stdout carries only the guest's."""
    sys.stderr.write(text)
    sys.stderr.flush()
