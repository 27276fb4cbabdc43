"""The gdb server (src/umlpy/debug): host gdb debugs a guest program
built with -g (tests/progs/t_gdb.c) over `target remote`, reading the
program from the guest or from the host's copy; a raw protocol
client checks what gdb -batch cannot do (Ctrl-C), on a process attached
through mconsole's `gdb PID PORT`."""
from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, PROGS, UMLPY
from umlpy.abi import gdb as G
from umlpy.debug import packets
from umlpy.kernel import cmdline

PROG = PROGS / "t_gdb"


class Guest:
    """A booted guest whose console output goes to a file we can poll."""

    def __init__(self, tmp: Path, script: str, *params: str) -> None:
        self.out = tmp / "console"
        self.sock = tmp / "uml" / "g" / "mconsole"
        with open(self.out, "wb") as f:
            self.p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "umid=g",
                                       f"uml_dir={tmp / 'uml'}", "PATH=/bin", *params, "init=/bin/sh",
                                       "--", "-c", script],
                                      stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text())
            if m:
                return m
            assert self.p.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def finish(self) -> str:
        """The console once the guest has ended (killed if it does not)."""
        try:
            self.p.wait(timeout=60)
        finally:
            self.__exit__()
        return self.text()

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *_) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def guest(tmp_path):
    with contextlib.ExitStack() as stack:
        yield lambda script, *params: stack.enter_context(Guest(tmp_path, script, *params))


@pytest.mark.skipif(shutil.which("gdb") is None, reason="host gdb missing")
@pytest.mark.parametrize("prog", ["t_gdb", "t_gdb.pie"])     # a PIE: gdb relocates it by the auxv
def test_gdb_breaks_steps_sees_a_signal_and_detaches(guest, prog):
    g = guest(f"/t/bin/{prog}; echo guest-done", f"gdb=tcp:127.0.0.1:0,exec=/t/bin/{prog}")
    port = g.wait_for(r"stopped for gdb on 127\.0\.0\.1:(\d+)").group(1)
    cmds = ["break square", "continue", "bt", "print x", "step", "print y", "finish",
            "info threads", "print $mxcsr", "print sizeof($xmm15)", "delete", "continue",
            "print $_siginfo.si_signo", "detach"]
    # no program file: gdb reads it from the guest (qXfer:exec-file, vFile)
    r = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"target remote 127.0.0.1:{port}",
                        *[a for c in cmds for a in ("-ex", c)]],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"Reading symbols from target:/t/bin/{prog}..." in out
    assert "Breakpoint 1, square (x=1) at" in out
    assert re.search(r"#1 .* in sum_squares \(n=4\) at .*t_gdb\.c:\d+\n#2 .* in main \(argc=1", out), out
    assert "$1 = 1\n" in out                            # print x
    assert re.search(r"\n\d+\s+return y;\n\$2 = 1\n", out), out     # step, print y
    assert re.search(r"0x[0-9a-f]+ in sum_squares \(n=4\) at .*\n\d+\s+total \+= square\(i\);\nValue returned is \$3 = 1", out), out
    assert re.search(r"\* 1 +Thread \d+ ", out), out
    assert "$4 = 8064\n$5 = 16\n" in out                # SSE: mxcsr's default, a 128-bit xmm
    assert "Program received signal SIGUSR1, User defined signal 1." in out
    assert "$6 = 10" in out
    assert "[Inferior 1 (Remote target) detached]" in out
    text = g.finish()
    # the signal gdb saw went on to the program's handler at the detach
    assert re.search(r"sum 30 signal 10\n(\[.*\n)*guest-done", text), text


@pytest.mark.skipif(shutil.which("gdb") is None, reason="host gdb missing")
def test_gdb_single_steps_as_linux(guest, tmp_path):
    """stepi into a signal handler stops at its first instruction; stepi
    over a syscall stops right after it, the syscall done (Linux's
    signal_setup_done and user_single_step_report)."""
    g = guest("/t/bin/t_gdb; echo guest-done", "gdb=tcp:127.0.0.1:0,exec=/t/bin/t_gdb")
    port = g.wait_for(r"stopped for gdb on 127\.0\.0\.1:(\d+)").group(1)
    script = tmp_path / "steps.gdb"
    script.write_text(f"""target remote 127.0.0.1:{port}
continue
stepi
print $pc == (long)&on_usr1
stepi
print $pc == (long)&on_usr1 + 1
break write
continue
while *(unsigned short *)$pc != 0x050f
  stepi
end
set $after = $pc + 2
stepi
print $pc == $after
print $rax
detach
""")
    r = subprocess.run(["gdb", "-nx", "-batch", "-x", str(script), str(PROG)],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Program received signal SIGUSR1" in out
    assert "$1 = 1\n" in out and "$2 = 1\n" in out, out
    assert "Breakpoint 1, " in out
    assert "$3 = 1\n$4 = 17\n" in out, out        # past the syscall, write(2)'s count
    assert re.search(r"sum 30 signal 10\n(\[.*\n)*guest-done", g.finish())


@pytest.mark.skipif(shutil.which("gdb") is None, reason="host gdb missing")
def test_gdb_follows_threads_all_stop(guest):
    """Threads made after the attach are traced from their start; when
    one stops, the others are stopped too; the exit reaches gdb."""
    g = guest("/t/bin/t_gdb threads; echo guest-done", "gdb=tcp:127.0.0.1:0,exec=/t/bin/t_gdb")
    port = g.wait_for(r"stopped for gdb on 127\.0\.0\.1:(\d+)").group(1)
    cmds = ["break worker", "continue", "info threads", "continue", "info threads", "delete", "continue"]
    r = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"target remote 127.0.0.1:{port}",
                        *[a for c in cmds for a in ("-ex", c)], str(PROG)],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"hit Breakpoint 1, worker \(arg=0x0\)", out), out
    assert re.search(r"hit Breakpoint 1, worker \(arg=0x1\)", out), out
    assert re.search(r"\n  1 +Thread \d+ +0x[0-9a-f]+ in .*\n\* \d +Thread \d+ +worker \(arg=0x0\)", out), out
    assert "[Inferior 1 (Remote target) exited normally]" in out
    assert re.search(r"workers 1 5\n(\[.*\n)*guest-done", g.finish())


class Client:
    """Just enough of gdb's side of the protocol to say what gdb -batch can't."""

    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def _packet(self) -> bytes:
        while True:
            m = re.search(rb"\$([^#]*)#[0-9a-f]{2}", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(1)
            data = self.s.recv(4096)
            assert data, "the server closed the connection"
            self.buf += data

    def ask(self, body: bytes) -> bytes:
        self.send(body)
        return self._packet()

    def send(self, body: bytes) -> None:
        self.s.sendall(b"$%s#%02x" % (body, sum(body) & 0xff))

    def reply(self) -> bytes:
        return self._packet()


@pytest.mark.skipif(shutil.which("uml_mconsole") is None, reason="uml_mconsole (uml-utilities) missing")
def test_mconsole_attach_ctrl_c_and_memory(guest):
    g = guest("/t/bin/t_gdb spin & echo spinner $!; wait; echo guest-done", "quiet")
    pid = g.wait_for(r"spinner (\d+)").group(1)
    time.sleep(0.3)
    r = subprocess.run(["uml_mconsole", str(g.sock), "gdb", pid, "0"], capture_output=True, text=True, timeout=30)
    m = re.search(r"target remote 127\.0\.0\.1:(\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    c = Client(int(m.group(1)))
    assert b"qXfer:features:read+" in c.ask(b"qSupported:multiprocess+")
    assert c.ask(b"QStartNoAckMode") == b"OK"
    stop = c.ask(b"?")
    assert re.fullmatch(rb"T00thread:%x;" % int(pid), stop), stop      # an attach: no signal
    assert c.ask(b"qfThreadInfo") == b"m%x" % int(pid)
    assert c.ask(b"qXfer:exec-file:read::0,100") == b"l/t/bin/t_gdb"
    assert c.ask(b"Z1,401000,1") == b""                 # hardware breakpoints: not here
    # Host I/O reads guest files, regular ones only, never for writing
    path = b"/t/bin/t_gdb".hex().encode()
    assert c.ask(b"vFile:open:%s,1,0" % path) == b"F-1,d"
    assert c.ask(b"vFile:open:%s,0,0" % b"/t/bin".hex().encode()) == b"F-1,d"
    assert c.ask(b"vFile:open:%s,0,0" % b"/nonexistent".hex().encode()) == b"F-1,2"
    assert c.ask(b"vFile:open:%s,0,0" % path) == b"F0"
    assert c.ask(b"vFile:pread:0,4,0") == b"F4;\x7fELF"
    size = PROG.stat().st_size
    assert c.ask(b"vFile:fstat:0")[:4] == b"F40;"
    assert packets.unescape(c.ask(b"vFile:pread:0,10,%x" % (size - 2))) == b"F2;" + PROG.read_bytes()[-2:]
    assert c.ask(b"vFile:close:0") == b"F0"
    assert c.ask(b"vFile:close:0") == b"F-1,9"
    c.send(b"c")
    time.sleep(0.3)
    c.s.sendall(b"\x03")                                # Ctrl-C: reported as SIGINT
    assert c.reply() == b"T02thread:%x;" % int(pid)
    rip = int.from_bytes(bytes.fromhex(c.ask(b"p10").decode()), "little")
    assert 0x400000 <= rip < 0x500000, hex(rip)
    syms = {line.split()[2]: int(line.split()[0], 16) for line in
            subprocess.run(["nm", str(PROG)], capture_output=True, text=True).stdout.splitlines()
            if len(line.split()) == 3}
    addr, square = syms["stop"], syms["square"]
    first = c.ask(b"m%x,1" % square)
    assert c.ask(b"Z0,%x,1" % square) == b"OK"
    assert c.ask(b"m%x,1" % square) == first        # the int3 reads as what it hides
    assert c.ask(b"z0,%x,1" % square) == b"OK"
    assert c.ask(b"m%x,4" % addr) == b"00000000"
    assert c.ask(b"M%x,4:01000000" % addr) == b"OK"
    assert c.ask(b"m%x,4" % addr) == b"01000000"
    assert c.ask(b"D") == b"OK"
    text = g.finish()
    assert re.search(r"stopped spinning\n(\[.*\n)*guest-done", text), text


def test_passed_signals_need_no_stop(guest):
    """QPassSignals: a signal gdb would only pass on is delivered at once."""
    g = guest("/t/bin/t_gdb; echo guest-done", "gdb=tcp:127.0.0.1:0,exec=/t/bin/t_gdb")
    c = Client(int(g.wait_for(r"stopped for gdb on 127\.0\.0\.1:(\d+)").group(1)))
    assert b"QPassSignals+" in c.ask(b"qSupported")
    assert re.fullmatch(rb"T05thread:[0-9a-f]+;", c.ask(b"?"))
    assert c.ask(b"QPassSignals:e;1e") == b"OK"       # SIGALRM, SIGUSR1
    assert c.ask(b"c") == b"W00"                      # no stop for SIGUSR1 on the way
    assert re.search(r"sum 30 signal 10\n(\[.*\n)*guest-done", g.finish())


def test_packets_split_checked_and_escaped():
    r = packets.Reader()
    assert r.feed(b"+$qSupp") == [b"+"]
    assert r.feed(b"orted#37\x03$g#00") == [b"qSupported", packets.INTERRUPT, None]
    data = bytes(range(256))
    assert packets.unescape(packets.escape(data)) == data
    assert packets.frame(b"OK") == b"$OK#9a"
    r.feed(b"$" + b"x" * (packets.Reader.MAX + 1))
    assert not r.buf                    # an endless packet is dropped, not kept


def test_signal_numbers_are_gdbs():
    assert (G.from_linux(10), G.from_linux(19), G.from_linux(5), G.from_linux(34)) == (30, 17, 5, 46)
    assert (G.to_linux(30), G.to_linux(0), G.to_linux(77), G.to_linux(143)) == (10, 0, 32, None)


def test_gdb_parameter():
    p = cmdline.parse(["gdb=tcp:127.0.0.1:1234,exec=/t/bin/t_gdb"])
    assert (p.gdb_port, p.gdb_exec, p.init_env) == (1234, "/t/bin/t_gdb", [])
    assert cmdline.parse(["gdb=tcp:0"]).gdb_port == 0
    for bad in ("gdb=tcp:10.0.0.1:1", "gdb=tcp:127.0.0.1:70000", "gdb=udp:1", "gdb=tcp:1,exec=rel"):
        p = cmdline.parse([bad])
        assert p.gdb_port is None and p.warnings, bad
