"""UML's management console, driven by UML's own client (uml_mconsole
from uml-utilities): version, help, log, proc, stack, sysrq, config and
remove of ubd disks, stop/go, cad, halt, and the notify socket."""
from __future__ import annotations

import re
import signal
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import CPIO, IMAGE, ROOT, UMLPY
from hostview import descendants

pytestmark = pytest.mark.skipif(shutil.which("uml_mconsole") is None, reason="uml_mconsole (uml-utilities) missing")

TICKER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done"


class Machine:
    def __init__(self, tmp: Path, script: str, *params: str) -> None:
        self.sock = tmp / "uml" / "m" / "mconsole"
        self.p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "umid=m", f"uml_dir={tmp / 'uml'}",
                                   "quiet", *params, "init=/bin/sh", "--", "-c", script],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            assert self.p.poll() is None and time.monotonic() < deadline, self.p.stderr.read().decode()
            time.sleep(0.02)

    def mc(self, *cmd: str) -> tuple[int, str]:
        r = subprocess.run(["uml_mconsole", str(self.sock), *cmd], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout

    def finish(self) -> tuple[bytes, bytes, int]:
        try:
            out, err = self.p.communicate(timeout=30)
        finally:
            if self.p.poll() is None:
                self.p.kill()
        return out, err, self.p.returncode


@pytest.fixture
def machine(tmp_path):
    made: list[Machine] = []

    def boot(script: str = TICKER, *params: str) -> Machine:
        m = Machine(tmp_path, script, *params)
        made.append(m)
        return m
    yield boot
    for m in made:
        if m.p.poll() is None:
            m.p.kill()
            m.p.wait()


def test_queries_and_log(machine):
    m = machine("sleep 30")
    rc, out = m.mc("version")
    assert rc == 0 and out.startswith("OK Linux umlpy 6.1.0-umlpy") and out.rstrip().endswith("x86_64")
    rc, out = m.mc("help")
    assert rc == 0 and "stop - pause the UML" in out
    rc, out = m.mc("proc", "version")
    assert rc == 0 and out.startswith("OK Linux version 6.1.0-umlpy")
    rc, out = m.mc("proc", "cpuinfo")          # more than one packet
    assert rc == 0 and out.count("processor") >= 1 and len(out) > 511
    rc, out = m.mc("proc", "nonexistent")
    assert rc == 1 and out.startswith("ERR Failed to open file")
    rc, out = m.mc("stack", "1")
    assert rc == 0 and "pid:1" in out
    assert m.mc("frobnicate") == (1, "ERR Unknown command\n")
    assert m.mc("go") == (1, "ERR Not stopped\n")
    assert m.mc("log", "hello from the host")[0] == 0
    rc, out = m.mc("sysrq", "s")
    assert rc == 0 and "Emergency Sync complete" in out
    assert m.mc("halt")[0] == 0
    out, err, code = m.finish()
    assert code == 0 and b"hello from the host" in err and b"reboot: System halted" in err
    assert not m.sock.exists()      # the umid directory went with the machine


def test_stack_shows_the_kernel_side_of_a_task(machine):
    """`stack PID`: the syscall a task waits in, what it waits on, how it
    goes on, and the kernel frames where it blocked (kernel/taskstack.py)."""
    m = machine("mkfifo /f; cat /f & echo $!; sleep 30 & echo $!; wait")
    reader, sleeper = (int(m.p.stdout.readline()) for _ in range(2))
    deadline = time.monotonic() + 10
    while "clock_nanosleep" not in m.mc("stack", str(sleeper))[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    rc, out = m.mc("stack", str(sleeper))
    assert rc == 0 and "task:sleep" in out and "state:sleeping" in out, out
    assert re.search(r"\ntimeout: in 2\d\.\d{3}s\n", out) and "ERESTART_RESTARTBLOCK" in out, out
    assert re.search(r"\n  sys_clock_nanosleep \(umlpy/syscalls/sys_time\.py:\d+\)\n", out), out
    rc, out = m.mc("stack", str(reader))
    assert rc == 0 and "syscall: openat(" in out and "waits on: fifo open\n" in out, out
    assert re.search(r"\n  open_fifo \(umlpy/vfs/pipe\.py:\d+\)\n", out), out
    assert str(ROOT) not in out          # no host directory
    assert m.mc("stack", "4242") == (1, "ERR Couldn't find that pid\n")
    assert m.mc("stack", "x") == (1, "ERR Please specify a pid\n")
    assert m.mc("halt")[0] == 0
    assert m.finish()[2] == 0


def test_stop_holds_every_guest_until_go(machine):
    m = machine()
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(m.p.stdout.readline, b"")), daemon=True)
    reader.start()
    while not lines:
        time.sleep(0.02)
    assert m.mc("stop") == (0, "OK \n")
    time.sleep(0.3)                       # what was already written has arrived
    held = len(lines)
    time.sleep(0.6)
    assert len(lines) == held             # no guest ran while stopped
    assert m.mc("proc", "uptime")[0] == 0  # the console still answers
    assert m.mc("stop") == (1, "ERR Already stopped\n")
    assert m.mc("go") == (0, "OK \n")
    deadline = time.monotonic() + 10
    while len(lines) == held and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(lines) > held
    m.mc("halt")
    m.p.wait(timeout=30)
    assert m.p.returncode == 0


def test_hot_added_disk_is_mounted_then_removed(machine, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello").write_text("hot plugged\n")
    img = tmp_path / "hot.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", str(tree), str(img), "4M"], check=True)
    m = machine("until [ -e /dev/ubdb ]; do sleep 0.05; done; mkdir /mnt/h; mount -t ext2 -o ro /dev/ubdb /mnt/h; "
                "cat /mnt/h/hello; echo mounted; sleep 1; umount /mnt/h; echo unmounted; sleep 30")
    assert m.mc("config", "ubd1") == (0, "OK \n")          # not configured: empty
    assert m.mc(f"config ubd1={img}")[0] == 0
    assert m.p.stdout.readline() == b"hot plugged\n" and m.p.stdout.readline() == b"mounted\n"
    assert m.mc("config", "ubd1") == (0, f"OK {img}\n")
    assert m.mc(f"config ubd1={img}")[0] == 1               # already there
    assert m.mc("remove", "ubd1") == (1, "ERR Device is currently open\n")
    assert m.mc("config", "eth0=tuntap") == (1, "ERR Bad configuration option\n")
    assert m.p.stdout.readline() == b"unmounted\n"
    assert m.mc("remove", "ubd1") == (0, "OK \n")
    assert m.mc("config", "ubd1") == (0, "OK \n")
    assert m.mc("remove", "ubd1") == (1, "ERR Device doesn't exist\n")
    m.mc("halt")
    m.finish()


def test_cad_reboots_while_init_left_it_on(machine):
    m = machine("echo ready; while true; do sleep 0.05; done", "noreboot")
    assert m.p.stdout.readline() == b"ready\n"
    assert m.mc("cad")[0] == 0            # C_A_D is on until init turns it off: a restart
    out, err, code = m.finish()
    assert b"reboot: Restarting system" in err and code == 0


def test_notify_socket_hears_where_the_console_is(tmp_path, machine):
    path = tmp_path / "notify"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(30)
    m = machine("sleep 30", f"mconsole=notify:{path}")
    data = s.recv(1024)
    magic, version, kind, n = struct.unpack("=IIII", data[:16])
    assert (magic, version, kind) == (0xCAFEBABE, 2, 0)
    assert data[16:16 + n].rstrip(b"\0") == str(m.sock).encode()
    m.mc("halt")
    m.finish()


# init's last moments: a loop with no syscall (the kernel need not run for
# it to end), then its exit
SPIN_THEN_EXIT = "echo spinning; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"


EXIT_CALLS = ("60", "231")     # exit, exit_group


def _guest_syscalls(pid: int) -> list[str]:
    """The syscall each guest process under the kernel pid waits in
    (/proc/PID/syscall's number: a task stopped in one, at a ptrace stop
    or a seccomp notification alike), "running" for one in user mode."""
    out = []
    for p in descendants(pid):
        try:
            out.append(Path(f"/proc/{p}/syscall").read_text().split(" ", 1)[0].strip())
        except OSError:
            continue
    return out


def _freeze_in_exit(m: Machine, timeout: float = 60) -> None:
    """Freeze the kernel (host SIGSTOP) with init waiting on it in its
    exit.  The kernel may freeze after it printed the echo before
    "spinning" but before it answered the write: then it goes on a moment,
    and is frozen again.  (On a loaded host the spin outlasts any fixed
    sleep, and a spinner goes unscheduled for as long as any CPU-time
    sample.)"""
    end = time.monotonic() + timeout
    m.p.send_signal(signal.SIGSTOP)
    while time.monotonic() < end:
        calls = _guest_syscalls(m.p.pid)
        if any(nr in EXIT_CALLS for nr in calls):
            return
        if any(nr.isdigit() for nr in calls):     # in another call (the echo's write): let it through
            m.p.send_signal(signal.SIGCONT)
            time.sleep(0.01)
            m.p.send_signal(signal.SIGSTOP)
        time.sleep(0.1)
    raise AssertionError(f"the guest never reached its exit: {_guest_syscalls(m.p.pid)}")


def _asked_while_frozen(m: Machine, tmp_path: Path, then) -> subprocess.Popen:
    """`umlpy checkpoint` sent while the machine's kernel is frozen (host
    SIGSTOP) and its init has finished spinning and waits on it to exit;
    then(m) before the kernel goes on."""
    line = m.p.stdout.readline()
    assert line == b"spinning\n", line
    _freeze_in_exit(m)
    client = subprocess.Popen([str(UMLPY), "checkpoint", str(m.sock), str(tmp_path / "img")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)         # the request is in the machine's socket
    then(m)
    m.p.send_signal(signal.SIGCONT)
    return client


def test_request_taken_as_the_machine_halts_is_answered(machine, tmp_path):
    """A checkpoint asked for just as init exits (the machine halts before
    the command's turn comes) is answered with an error at once, not left
    waiting for an answer that would never come."""
    m = machine(SPIN_THEN_EXIT)
    client = _asked_while_frozen(m, tmp_path, lambda m: None)
    out, err = client.communicate(timeout=20)
    assert client.returncode == 1 and "halted before it could answer" in err, (out, err)
    assert m.finish()[2] == 0 and not (tmp_path / "img").exists()


def test_machine_killed_before_it_answers(machine, tmp_path):
    """A machine killed with a request in its socket: the client says it
    went away, in a second or two, not after its ten-minute timeout."""
    m = machine(SPIN_THEN_EXIT)
    client = _asked_while_frozen(m, tmp_path, lambda m: (m.p.kill(), m.p.wait()))
    out, err = client.communicate(timeout=20)
    assert client.returncode == 1 and "went away before it answered" in err, (out, err)
