"""The console as a terminal, pseudo-terminals and job control.

The interactive tests drive umlpy the way a user does: umlpy runs on a host
pseudo-terminal (the test holds the master, as a terminal emulator would),
busybox init starts its askfirst shell on the console, and keys go in as
bytes (^C is \\x03).  The C programs (tests/progs/t_tty_*.c) build their
own ptys and sessions; they run natively under a host pty and in the
guest, and their outputs must be identical.
"""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from conftest import CPIO, IMAGE, PROGS, UMLPY, sh

PROMPT = b"/ # "


class Terminal:
    """umlpy on a host pty whose master this object holds."""

    def __init__(self, *params: str, rows: int = 24, cols: int = 80, root: str | None = None,
                 launcher: list[str] | None = None) -> None:
        """launcher: the words before the image (default the umlpy command)."""
        argv = (launcher or [str(UMLPY)]) + [str(IMAGE), root or f"initrd={CPIO}", "quiet", *params]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(argv[0], argv)
        self.resize(rows, cols)
        self.out = b""
        self.status: int | None = None

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read(self, timeout: float) -> bool:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        self.out += data
        return bool(data)

    def expect(self, pattern: bytes, timeout: float = 30) -> bytes:
        """Wait for pattern (a regex); returns the output up to its end and drops it."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.out)
            if m:
                seen, self.out = self.out[:m.end()], self.out[m.end():]
                return seen
            left = end - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.5)):
                raise AssertionError(f"no {pattern!r} in {self.out[-2000:]!r}")

    def quiet(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and self._read(end - time.monotonic()):
            pass

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def run(self, command: bytes, timeout: float = 30) -> bytes:
        """A shell command line; returns what it printed (minus the echo)."""
        self.send(command + b"\r")
        seen = self.expect(re.escape(PROMPT), timeout)
        body = seen[:-len(PROMPT)].replace(b"\x1b[6n", b"")
        echo = command + b"\r\n"      # the shell's line editor echoes (and may redraw) the line
        assert echo in body, body
        return body[body.index(echo) + len(echo):]

    def login(self) -> None:
        """busybox init's askfirst shell on the console."""
        self.expect(rb"Please press Enter to activate this console")
        self.send(b"\r")
        self.expect(re.escape(PROMPT))

    def wait(self, timeout: float = 60) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                return os.waitstatus_to_exitcode(status)
            self._read(0.2)
        raise AssertionError(f"umlpy still running; output {self.out[-2000:]!r}")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        os.close(self.fd)


@pytest.fixture
def term():
    t = Terminal()
    yield t
    t.close()


def test_login_commands_and_interrupt(term):
    before = termios.tcgetattr(term.fd)
    term.login()
    assert term.run(b"echo hello; tty") == b"hello\r\n/dev/console\r\n"
    assert term.run(b"stty size") == b"24 80\r\n"
    term.send(b"sleep 100\r")
    term.expect(rb"sleep 100\r\n")
    term.quiet(0.5)
    t0 = time.monotonic()
    term.send(b"\x03")
    term.expect(rb"\^C\r\n" + re.escape(PROMPT), timeout=10)
    assert time.monotonic() - t0 < 5
    assert term.run(b"echo $?") == b"130\r\n"
    # line editing is the shell's; a raw `cat` shows the kernel's
    term.send(b"cat\r")
    term.expect(rb"cat\r\n")
    term.quiet(0.5)            # until cat reads: the shell's editor has the tty raw
    term.send(b"abc\x7f\x7fX def\x17ghi\r")
    term.expect(rb"aX ghi\r\n")
    term.send(b"\x04")
    term.expect(re.escape(PROMPT))
    term.send(b"poweroff\r")
    term.expect(rb"reboot: Power down")
    assert term.wait() == 0
    assert termios.tcgetattr(term.fd) == before


def test_job_control(term):
    term.login()
    term.run(b"sleep 100 &")
    assert re.search(rb"\[1\]\+ +Running +sleep 100", term.run(b"jobs"))
    term.send(b"fg\r")
    term.expect(rb"fg\r\nsleep 100\r\n")
    term.quiet(0.5)
    term.send(b"\x1a")
    term.expect(rb"\^Z\[1\]\+ +Stopped +sleep 100\r\n" + re.escape(PROMPT), timeout=10)
    assert re.search(rb"Stopped +sleep 100", term.run(b"jobs"))
    assert term.run(b"bg") == b"[1] sleep 100\r\n"
    assert re.search(rb"Running +sleep 100", term.run(b"jobs"))
    term.send(b"fg\r")
    term.expect(rb"sleep 100\r\n")
    term.quiet(0.3)
    term.send(b"\x03")
    term.expect(rb"\^C\r\n" + re.escape(PROMPT), timeout=10)
    assert term.run(b"jobs") == b""
    # a background job that reads its terminal stops (SIGTTIN); /dev/tty is not the console
    term.send(b"cat /dev/tty &\r")
    term.expect(re.escape(PROMPT))
    term.quiet(0.5)
    assert re.search(rb"Stopped \(tty input\) +cat /dev/tty", term.run(b"jobs"))
    out = term.run(b"kill -9 %1; sleep 0.3") + term.run(b"jobs")
    assert re.search(rb"Killed +cat /dev/tty", out), out


def test_window_size_follows_the_host(term):
    term.login()
    assert term.run(b"stty size") == b"24 80\r\n"
    term.send(b"sh -c 'trap \"echo got WINCH; exit\" WINCH; while :; do sleep 0.1; done'\r")
    term.quiet(1)
    term.resize(33, 111)
    term.expect(rb"got WINCH\r\n")
    term.expect(re.escape(PROMPT))
    assert term.run(b"stty size") == b"33 111\r\n"


def test_vi_edits_a_file(term):
    term.login()
    term.send(b"vi /tmp/note.txt\r")
    term.expect(rb"/tmp/note\.txt")
    term.quiet(0.5)
    term.send(b"ihello from vi")
    term.quiet(0.3)
    term.send(b"\x1b")
    term.quiet(0.5)
    term.send(b":wq\r")
    term.expect(re.escape(PROMPT))
    assert term.run(b"cat /tmp/note.txt") == b"hello from vi\r\n"


def test_shell_exit_respawns_and_sigterm_restores_the_terminal(term):
    before = termios.tcgetattr(term.fd)
    term.login()
    term.send(b"exit\r")
    term.login()
    assert term.run(b"echo again") == b"again\r\n"
    raw = termios.tcgetattr(term.fd)
    assert not raw[3] & termios.ICANON and not raw[3] & termios.ECHO
    os.kill(term.pid, signal.SIGTERM)
    assert term.wait() == 128 + signal.SIGTERM
    assert termios.tcgetattr(term.fd) == before


def test_console_is_a_tty_without_a_host_terminal():
    r = sh("test -t 0 && test -t 1 && echo tty; stty -g | cut -d: -f1-4; tty")
    # -echo and -onlcr: a console on pipes stays byte-exact
    assert r.stdout == b"tty\n500:1:4bf:8a33\n/dev/console\n"


def test_ptys_and_devpts_in_the_guest():
    r = sh("ls /dev/pts; mount -t devpts devpts /mnt && ls /mnt; stat -f -c %T /dev/pts")
    assert r.stdout == b"ptmx\nptmx\ndevpts\n"


def test_con0_pty_channel():
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "con0=pts", "init=/bin/sh"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        name = None
        log = b""
        while name is None:
            line = p.stderr.readline()
            assert line, log
            log += line
            m = re.search(rb"Virtual console 0 assigned device '(/dev/pts/\d+)'", line)
            if m:
                name = m.group(1).decode()
        fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
        t = Terminal.__new__(Terminal)
        t.fd, t.out, t.pid, t.status = fd, b"", p.pid, None
        t.send(b"echo hi from $((6*7))\r")
        t.expect(rb"hi from 42\r\n")
        t.send(b"poweroff -f\r")
        assert p.wait(60) == 0
        os.close(fd)
    finally:
        p.kill()
        p.wait()


# -- C programs: natively under a host pty, and in the guest ----------------------------

def native_under_pty(args: list[str]) -> bytes:
    """Run args as a session leader on a fresh host pty; stdout goes to a pipe."""
    r, w = os.pipe()
    pid, fd = pty.fork()
    if pid == 0:
        os.dup2(w, 1)
        os.execv(args[0], args)
    os.close(w)
    out = b""
    fds = [r, fd]
    end = time.monotonic() + 120
    while r in fds and time.monotonic() < end:
        ready, _, _ = select.select(fds, [], [], 1)
        for f in ready:
            try:
                data = os.read(f, 65536)
            except OSError:
                data = b""
            if not data:
                fds.remove(f)
            elif f == r:
                out += data
    os.waitpid(pid, 0)
    os.close(r)
    os.close(fd)
    return out


@pytest.mark.parametrize("prog", ["t_tty_termios", "t_tty_jobs", "t_tty_pty"])
def test_tty_program(prog):
    want = native_under_pty([str(PROGS / prog)])
    got = sh(f"/t/bin/{prog}; true", timeout=180)
    assert want.rstrip().endswith(b"done")
    assert got.stdout.decode() == want.decode()
