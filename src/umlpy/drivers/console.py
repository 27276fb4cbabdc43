"""The console: a Tty (drivers/tty.py) on a host channel, as UML's con0;
every line of drivers/line.py (con0..con15, ssl0..ssl63) is one.

Input bytes from the host channel go through the guest's own line
discipline; output goes out through the channel's queue, so a slow host
terminal or a full pipe never blocks the kernel (writers block instead).
The host terminal itself is in raw mode while the guest runs
(arch_um/console.py), so ^C, ^Z and ^\\ are bytes that become SIGINT,
SIGTSTP and SIGQUIT here.

Two choices differ from a bare Linux console, both so that the console
behaves as a terminal when there is one and stays byte-exact when there is
none:

- Defaults follow the host: a console whose host input is not a terminal
  (pipe, file, /dev/null) starts with -echo, and one whose host output is
  not a terminal with -onlcr; a guest may `stty echo onlcr` like anywhere.
- `adopt_by_leader`: a session leader without a controlling terminal that
  asks the console for its foreground group (TIOCGPGRP, the first thing a
  job-control shell does) gets the console as its controlling terminal, as
  if busybox's cttyhack had opened it for it.  Without this, the askfirst
  shell busybox init starts on the console (which only TIOCSCTTY can make a
  controlling tty on Linux) would run without job control, ^C or ^Z.

/dev/console (5,1) files are Linux's console_fops files (no job-control
stops, never hung up); /dev/tty0 (4,0) opens the same terminal as an
ordinary tty and /dev/tty (5,0) the caller's controlling terminal.
"""
from __future__ import annotations

from arch_um.events import EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT
from umlpy.abi import errno as E
from umlpy.abi import structs
from umlpy.drivers import pty
from umlpy.drivers.termbits import ECHO, ONLCR, Termios
from umlpy.drivers.tty import Tty, TtyFile, open_current_tty, open_tty
from umlpy.kernel import jobctl
from umlpy.vfs import devices

INPUT_HIGH_WATER = 1 << 20      # host input read ahead of the line discipline
OUTPUT_LIMIT = 1 << 16          # host output queued before writers wait


class Console(Tty):
    adopt_by_leader = True

    def __init__(self, k, channel, name: str = "console", rdev: int = structs.makedev(4, 0)) -> None:
        t = Termios.std()
        if not channel.in_is_tty:
            t.lflag &= ~ECHO
        if not channel.out_is_tty:
            t.oflag &= ~ONLCR
        super().__init__(k, name, rdev, t)
        self._masks: dict[int, int] = {}
        self.hung_up_at_eof = False
        self.attach(channel)
        if channel.in_is_tty or channel.out_is_tty:
            self.winsize = channel.winsize()
        channel.set_raw()       # the line discipline is this one, not the host's

    def attach(self, channel) -> None:
        """channel becomes the host end (at boot, or a port's new connection)."""
        self.ch = channel
        self.pollable_in = self.pollable_out = False
        if channel.in_fd is not None:
            self.pollable_in = self._watch(channel.in_fd, EPOLLIN, True)
        if channel.out_fd is not None:
            self.pollable_out = self._watch(channel.out_fd, 0, True)

    def detach(self) -> None:
        """The event loop forgets the channel's fds (before they are closed)."""
        for fd in self._masks:
            self.k.sched.unwatch_fd(fd)
        self._masks.clear()
        self.pollable_in = self.pollable_out = False

    # -- the host fds -------------------------------------------------------------
    def _watch(self, fd: int, bits: int, on: bool) -> bool:
        """Turn event bits for fd on or off; unwatched fds leave epoll, since
        a pipe at EOF reports EPOLLHUP whatever the mask."""
        old = self._masks.get(fd)
        mask = ((old or 0) | bits) if on else ((old or 0) & ~bits)
        loop = self.k.sched.loop
        if old is None:
            self.k.sched.fd_handlers[fd] = lambda ev, fd=fd: self._on_event(fd, ev)
            if not loop.register(fd, mask or EPOLLIN):
                return False
            if not mask:
                loop.unregister(fd)
        elif mask != old:
            if not mask:
                loop.unregister(fd)
            elif not old:
                loop.register(fd, mask)
            else:
                loop.modify(fd, mask)
        self._masks[fd] = mask
        return True

    def _on_event(self, fd: int, events: int) -> None:
        mask = self._masks.get(fd, 0)
        if fd == self.ch.in_fd and mask & EPOLLIN and events & (EPOLLIN | EPOLLHUP | EPOLLERR):
            self._host_input(events)
        if fd == self.ch.out_fd and mask & EPOLLOUT and events & (EPOLLOUT | EPOLLHUP | EPOLLERR):
            self._host_writable()

    def _host_input(self, events: int) -> None:
        data = self.ch.read(65536)
        if data is None:
            return
        if data:
            if self.ch.is_pty:
                self.host_resized()      # a client on the host pty may have resized it
            self.receive(data)
            if len(self.pending) > INPUT_HIGH_WATER:
                self._watch(self.ch.in_fd, EPOLLIN, False)
            return
        self._host_eof()

    def _host_eof(self) -> None:
        """No more host input: pending text is pushed as by VEOF, then reads see EOF."""
        if self.pollable_in:
            self._watch(self.ch.in_fd, EPOLLIN, False)
        self.input_eof = True
        if self.canonical and len(self.rbuf) > self._canon_head():
            self._end_line(True)
        self.read_wq.wake_all()
        if self.ch.in_is_tty:
            self.input_ended()      # the terminal went away: hang up at once

    def input_ended(self) -> None:
        """UML hangs the line up when its channel's input ends (chan_interrupt:
        tty_port_tty_hangup at EOF): the session leader gets SIGHUP and
        SIGCONT, files opened on the tty read EOF from then on.  Input from a
        pipe or a file is read to its end first (a script piped to a shell
        still runs whole); the hangup comes when a reader reaches that end."""
        if not self.hung_up_at_eof:
            self.hung_up_at_eof = True
            self.hangup()

    def refill(self) -> None:
        """Host files and /dev/null cannot be polled: read them when asked."""
        if self.pollable_in or self.input_eof:
            return
        data = self.ch.read(65536)
        if data:
            self.receive(data)
        elif data == b"":
            self._host_eof()

    def input_consumed(self) -> None:
        if self.pollable_in and not self.input_eof and len(self.pending) < INPUT_HIGH_WATER:
            self._watch(self.ch.in_fd, EPOLLIN, True)

    # -- output -------------------------------------------------------------------
    def transmit(self, data: bytes) -> None:
        self.ch.write(data)
        if self.ch.pending_output() and self.pollable_out:
            self._watch(self.ch.out_fd, EPOLLOUT, True)

    def _host_writable(self) -> None:
        self.ch.flush()
        if not self.ch.pending_output():
            self._watch(self.ch.out_fd, EPOLLOUT, False)
        self.write_wq.wake_all()

    def write_room(self) -> int:
        return max(0, OUTPUT_LIMIT - self.ch.pending_output())

    def write_error(self) -> int:
        """The host end of the output went away (a closed pipe): writes fail
        with EPIPE, as UML's fd channel returns the host write's error to
        the guest (no SIGPIPE: a tty is not a pipe).  The kernel itself goes
        on, ignoring SIGPIPE as UML does."""
        return E.EPIPE if self.ch.out_gone else 0

    def chars_in_buffer(self) -> int:
        return self.ch.pending_output()

    def flush_device_output(self) -> None:
        self.ch.discard_output()

    # -- host events (boot._host_signal) ------------------------------------------------
    def host_resized(self) -> None:
        """Host SIGWINCH: the host terminal's size is the console's."""
        if self.ch.in_is_tty or self.ch.out_is_tty:
            self.resize(self.ch.winsize())

    def host_signal(self, sig: int) -> None:
        """SIGINT/SIGQUIT sent to umlpy itself (the raw host terminal sends none):
        to the console's foreground group, as its ISIG characters would."""
        jobctl.kill_pgrp(self.k, self.pgrp, sig)


class ConsoleFile(TtyFile):
    """A file opened as /dev/console (and init's fds 0-2)."""

    def __init__(self, dentry, inode, flags: int, console: Console) -> None:
        super().__init__(dentry, inode, flags, console, redirect=True)


def register(console: Console) -> None:
    devices.register_char(5, 1, lambda d, i, fl, t: ConsoleFile(d, i, fl, console))
    devices.register_char(4, 0, lambda d, i, fl, t: open_tty(d, i, fl, t, console))
    devices.register_char(5, 0, open_current_tty)
    pty.register()
