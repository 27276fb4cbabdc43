"""UML's virtual consoles and serial lines (drivers/line.py): conN= and
sslN= channels, /dev/ttyN and /dev/ttySN, a getty and login on a host pty,
a shell on a port: line, mconsole hot-plug, and the defaults."""
from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, ROOT, UMLPY, sh

SHADOW = (ROOT / "rootfs" / "etc" / "shadow").read_text().splitlines()[0]     # root's password: umlpy


class Guest:
    """umlpy with the kernel log (not quiet) read on a thread."""

    def __init__(self, script: str, *params: str) -> None:
        self.p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "init=/bin/sh", PATH_ENV, *params,
                                   "--", "-c", script],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.log = b""
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self) -> None:
        for line in self.p.stderr:
            self.log += line

    def wait_log(self, pattern: bytes, timeout: float = 30) -> re.Match:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.log)
            if m:
                return m
            assert self.p.poll() is None, self.log.decode(errors="replace")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in {self.log.decode(errors='replace')}")

    def finish(self, timeout: float = 30) -> bytes:
        try:
            out, _ = self.p.communicate(timeout=timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        self._t.join(5)
        return out


class Stream:
    """expect/send on a host fd (a pty) or socket."""

    def __init__(self, recv, send, fileno: int) -> None:
        self.recv, self.send, self.fileno = recv, send, fileno
        self.out = b""

    def expect(self, pattern: bytes, timeout: float = 30) -> bytes:
        end = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.out)
            if m:
                seen, self.out = self.out[:m.end()], self.out[m.end():]
                return seen
            left = end - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.out[-2000:]!r}"
            if select.select([self.fileno], [], [], min(left, 0.5))[0]:
                try:
                    data = self.recv()
                except OSError:
                    data = b""
                assert data, f"EOF before {pattern!r} in {self.out[-2000:]!r}"
                self.out += data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_getty_and_login_on_con1_pts():
    g = Guest(f"printf '%s\\n' '{SHADOW}' > /etc/shadow; getty -L 0 tty1 vt100; echo getty-ended",
              "con1=pts")
    try:
        pts = g.wait_log(rb"Virtual console 1 assigned device '(/dev/pts/\d+)'").group(1).decode()
        fd = os.open(pts, os.O_RDWR | os.O_NOCTTY)
        try:
            t = Stream(lambda: os.read(fd, 4096), lambda b: os.write(fd, b), fd)
            t.expect(rb"login: ")
            t.send(b"root\r")
            t.expect(rb"Password: ")
            t.send(b"umlpy\r")
            t.expect(rb"# ")
            t.send(b"tty; echo job-$((6*7))\r")
            t.expect(rb"/dev/tty1\r\n")
            t.expect(rb"job-42\r\n")
            t.send(b"sleep 30\r")
            time.sleep(0.5)
            t.send(b"\x03")                     # ^C on tty1 reaches its foreground group
            t.expect(rb"# ")
            t.send(b"exit\r")
            assert b"getty-ended" in g.finish()
        finally:
            os.close(fd)
    finally:
        g.finish(5)


def test_serial_fd_and_console_file(tmp_path):
    out = tmp_path / "con1.out"
    r, w = os.pipe()
    try:
        res = subprocess.run([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", PATH_ENV,
                              f"ssl0=null,fd:{w}", f"con1=file:{out}", "--", "-c",
                              "echo serial-out > /dev/ttyS0; echo console-out > /dev/tty1; "
                              "stat -c '%n %t %T %F' /dev/tty1 /dev/ttyS0; ls /dev/ttyS1 /dev/tty2 2>&1"],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60, pass_fds=(w,))
        os.close(w)
        w = -1
        assert os.read(r, 4096) == b"serial-out\n"      # not a host tty: -onlcr, as con0's default
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    text = res.stdout.decode()
    assert "/dev/tty1 4 1 character special file" in text
    assert "/dev/ttyS0 4 40 character special file" in text       # minor 64
    assert "/dev/ttyS1: No such file" in text and "/dev/tty2: No such file" in text
    assert out.read_text() == "console-out\n"


def test_defaults_when_unconfigured():
    """Serial lines have no default.  Without con1= (or con=), /dev/tty1 is
    the console's own terminal, as a PC's first VT is the console after
    boot: what a getty writes there reaches umlpy's terminal; con1=none
    leaves it out, as UML's default does."""
    r = sh("ls /dev/ttyS0 2>&1; echo on-tty1 > /dev/tty1; ls -l /dev/tty1 | awk '{print $1, $5, $6, $NF}'; "
           "echo end")
    assert r.stdout.decode() == ("ls: /dev/ttyS0: No such file or directory\non-tty1\n"
                                 "crw--w---- 4, 1 /dev/tty1\nend\n"), r.stdout
    r = sh("ls /dev/tty1 2>&1; echo end", "con1=none")
    assert r.stdout.decode() == "ls: /dev/tty1: No such file or directory\nend\n"
    r = sh("ls /dev/ttyS63 /dev/tty15; ls /dev/ttyS64 /dev/tty16 2>&1 | grep -c 'No such'", "ssl=null", "con1=null",
           "con15=null")
    assert sorted(r.stdout.decode().split()) == ["/dev/tty15", "/dev/ttyS63", "2"]


def test_unavailable_channels_are_null_with_a_message():
    r = sh("echo x > /dev/tty1 && echo x > /dev/tty2 && echo written", "con1=xterm", "con2=pty", "con20=null")
    assert r.stdout == b"written\n"
    log = r.stderr.decode()
    assert "xterm channels are not available" in log
    assert "pty (BSD pseudo-terminal) channels are not available" in log
    assert "con20: no such line" in log


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_shells_on_port_lines():
    """Two lines on one port, as UML's con=port:N: each client gets the
    next free line; a client leaving hangs its line up, the next gets it."""
    port = _free_port()
    shell = "while true; do setsid sh -c 'exec sh -i </dev/tty{0} >/dev/tty{0} 2>&1'; done"
    g = Guest(f"{shell.format(1)} & {shell.format(2)}", f"con1=port:{port}", f"con2=port:{port}", "quiet")
    try:
        clients = [_connect(port), _connect(port)]
        ttys = set()
        for i, c in enumerate(clients):
            s = Stream(lambda c=c: c.recv(4096), c.sendall, c.fileno())
            # a telnet client's negotiation (IAC DO ECHO, IAC WILL NAWS) is dropped; CR LF is one end of line
            c.sendall(b"\xff\xfd\x01\xff\xfb\x1f" + f"echo port-$((40+{i}))\r\n".encode())
            s.expect(f"port-{40 + i}".encode())
            c.sendall(b"tty\n")
            ttys.add(s.expect(rb"/dev/tty\d")[-9:])
        assert ttys == {b"/dev/tty1", b"/dev/tty2"}
        clients[0].close()
        with _connect(port) as c:               # the line the first client left
            s = Stream(lambda: c.recv(4096), c.sendall, c.fileno())
            c.sendall(b"echo again-$((6*7))\n")
            s.expect(b"again-42")
        clients[1].close()
    finally:
        g.p.kill()
        g.finish(5)


@pytest.mark.skipif(shutil.which("uml_mconsole") is None, reason="uml_mconsole (uml-utilities) missing")
def test_mconsole_hot_plugs_lines(tmp_path):
    out = tmp_path / "hot.out"
    script = ("while [ ! -e /dev/ttyS3 ]; do sleep 0.05; done; echo hot-plugged > /dev/ttyS3; "
              "stat -c '%t %T' /dev/ttyS3; touch /tmp/w; while [ -e /dev/ttyS3 ]; do sleep 0.05; done; echo removed")
    g = Guest(script, "quiet", "umid=c", f"uml_dir={tmp_path / 'uml'}")
    sock = tmp_path / "uml" / "c" / "mconsole"
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert time.monotonic() < deadline and g.p.poll() is None
            time.sleep(0.05)

        def mc(*cmd: str) -> tuple[int, str]:
            r = subprocess.run(["uml_mconsole", str(sock), *cmd], capture_output=True, text=True, timeout=30)
            return r.returncode, r.stdout

        assert mc("config", "ssl3")[1].strip() == "OK none"
        assert mc("config", f"ssl3=file:{out}")[0] == 0
        assert mc("config", "ssl3")[1].strip() == f"OK file:{out}"
        assert mc("config", "con0")[1].strip() == "OK fd:0,fd:1"
        assert mc("config", "con2=pts")[0] == 0
        assert mc("config", "con2")[1].strip() == "OK pts"
        assert mc("remove", "con2")[0] == 0
        assert mc("config", "con2")[1].strip() == "OK none"
        assert mc("remove", "con2")[0] == 1            # not configured
        assert mc("config", "ssl64=null")[0] == 1
        assert mc("remove", "con0")[0] == 1            # the console stays
        deadline = time.monotonic() + 30
        while not out.exists() or not out.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert mc("remove", "ssl3")[0] == 0
        stdout = g.finish()
        assert stdout == b"4 43\nremoved\n"
        assert out.read_text() == "hot-plugged\n"
    finally:
        g.finish(5)
