"""Guest syscall tracing (`strace` on the kernel command line, kernel/strace):
its lines against the host's strace of the same static program, the
filters, the <unfinished ...>/<... resumed> pair, signals and exits."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import PATH_ENV, PROGS, boot

# the syscalls whose lines must be the host strace's, byte for byte
COMPARED = "open,openat,read,write,close,fstat,newfstatat,lseek,poll,kill,exit_group"


def _normalized(text: str) -> list[str]:
    """Pids (kill's, si_pid's) and uids differ between host and guest; the
    padding before "= " moves with them."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"kill\(\d+", "kill(PID", line)
        line = re.sub(r"si_pid=\d+", "si_pid=PID", line)
        line = re.sub(r"si_uid=\d+", "si_uid=UID", line)
        out.append(re.sub(r"\) +=", ") =", line))
    return out


def _traced(tmp_path, *params: str, script: str) -> str:
    """Run a shell command line as init with tracing to a file; the trace."""
    out = tmp_path / "trace.txt"
    boot("quiet", f"strace={out}", *params, "init=/bin/sh", PATH_ENV, init_args=["-c", script])
    return out.read_text()


def test_lines_match_the_host_strace(tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("no strace on the host")
    native = tmp_path / "native.txt"
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run(["strace", "-o", str(native), "-e", f"trace={COMPARED}",
                        str(PROGS / "t_strace"), str(work)], capture_output=True, timeout=60)
    if r.returncode != 0 or not native.exists():
        pytest.skip(f"the host's strace cannot trace here: {r.stderr.decode()[-300:]}")
    guest = tmp_path / "guest.txt"
    got = boot("quiet", f"strace={guest}", f"strace.syscalls={COMPARED}", "init=/t/bin/t_strace",
               init_args=["/tmp"])
    assert got.stdout == b"signal\ndone\n"
    want = _normalized(native.read_text())
    assert _normalized(guest.read_text()) == want
    # what the comparison covers: -s 32 and escapes, errors, flags, a stat, a signal, the exit
    assert 'write(3, "root:x:0:0:root:/root:/bin/sh\\n\\t\\""..., 56) = 56' in want
    assert 'read(3, "\\t\\"quoted\\\\\\" \\v\\f\\r\\0001\\0a\\377~\\177 en", 24) = 24' in want
    assert 'open("t_strace.missing", O_RDONLY) = -1 ENOENT (No such file or directory)' in want
    assert "--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=PID, si_uid=UID} ---" in want
    assert "poll([{fd=3, events=POLLIN|POLLOUT}, {fd=4, events=POLLIN}], 2, 0) = 1 ([{fd=3, revents=POLLIN|POLLOUT}])" in want
    assert "poll([{fd=4, events=POLLIN}], 1, 0) = 0 (Timeout)" in want
    assert want[-2:] == ["exit_group(0) = ?", "+++ exited with 0 +++"]


def test_blocking_call_is_unfinished_then_resumed(tmp_path):
    """The shell waits for a subshell that first sleeps (so that the wait
    has begun): the child's lines cut the wait, which resumes after its exit."""
    trace = _traced(tmp_path, "strace.syscalls=wait4,write,exit_group", script="(sleep 0.3; echo hi); echo done")
    lines = trace.splitlines()
    cut = lines.index("[pid     1] wait4(-1,  <unfinished ...>")
    child = lines.index('[pid     2] write(1, "hi\\n", 3)         = 3')
    gone = lines.index("[pid     2] +++ exited with 0 +++")
    resumed = next(i for i, x in enumerate(lines) if x.startswith("[pid     1] <... wait4 resumed>"))
    assert cut < child < gone < resumed
    assert lines[resumed].endswith("[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 2")
    assert lines[resumed + 1] == ("[pid     1] --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2, "
                                  "si_uid=0, si_status=0, si_utime=0, si_stime=0} ---")
    assert lines[-2:] == ["exit_group(0)                           = ?", "+++ exited with 0 +++"]


def test_killed_process(tmp_path):
    trace = _traced(tmp_path, "strace.syscalls=kill", script="sleep 5 & kill -9 $!; wait")
    assert re.search(r"^\[pid +1\] kill\(2, SIGKILL\) += 0$", trace, re.M)
    assert "[pid     2] +++ killed by SIGKILL +++" in trace


def test_class_filters(tmp_path):
    from umlpy.kernel.strace.names import CLASSES
    trace = _traced(tmp_path, "strace.syscalls=%file,%net", script="cat /etc/hostname; /t/bin/t_unix /tmp")
    names = {m.group(1) for m in re.finditer(r"^(?:\[pid +\d+\] )?(\w+)\(", trace, re.M)}
    assert names and names <= CLASSES["file"] | CLASSES["network"], names
    assert {"openat", "execve", "socket", "bind"} <= names
    assert '{sa_family=AF_UNIX, sun_path="/tmp/dg1"}' in trace
    everything_but = _traced(tmp_path, "strace.syscalls=!write,%file", script="cat /etc/hostname")
    assert "close(3) " in everything_but and "write(" not in everything_but and "openat(" not in everything_but


def test_pid_filter_to_the_console():
    """strace.pid=1 traces the shell only; without FILE the lines are kernel log lines."""
    got = boot("strace", "strace.pid=1", "strace.syscalls=write,wait4", "init=/bin/sh", PATH_ENV,
               init_args=["-c", "(echo hi); echo done"])
    log = got.stderr.decode()
    assert re.search(r"^\[ *\d+\.\d+\] write\(1, \"done\\n\", 5\) += 5$", log, re.M)
    assert re.search(r"^\[ *\d+\.\d+\] wait4\(-1, \[\{WIFEXITED", log, re.M)
    assert 'write(1, "hi\\n"' not in log and "[pid " not in log
    assert got.stdout == b"hi\ndone\n"


def test_command_line():
    from umlpy.kernel import cmdline
    p = cmdline.parse(["strace", "strace.syscalls=%file", "strace.pid=3", "init=/bin/sh"])
    assert (p.strace, p.strace_syscalls, p.strace_pid, p.init_argv) == ("", "%file", 3, [])
    assert cmdline.parse(["strace=/tmp/t"]).strace == "/tmp/t"
    assert cmdline.parse([]).strace is None


def test_tracer_is_off_by_default():
    """The hooks' test is on the package's `tracer`: loading every module of
    the tracer (as boot does) must leave it None."""
    import importlib
    from umlpy.kernel import strace
    for mod in ("start", "tracing", "decode", "siginfo"):
        importlib.import_module(f"umlpy.kernel.strace.{mod}")
    assert strace.tracer is None


def test_interrupted_call_and_its_restart_code(tmp_path):
    """A signal cuts a wait: `= ? ERESTARTSYS`, the signal, then the handler's
    return (EINTR for a handler without SA_RESTART), as strace shows them."""
    trace = _traced(tmp_path, "strace.pid=1", "strace.syscalls=wait4,rt_sigreturn",
                    script='trap "echo got" USR1; (sleep 0.5; kill -USR1 1) & sleep 2; echo end')
    lines = trace.splitlines()
    i = next(i for i, x in enumerate(lines) if "ERESTARTSYS" in x)
    assert re.fullmatch(r"wait4\(-1, 0x[0-9a-f]+, 0, NULL\) += \? ERESTARTSYS "
                        r"\(To be restarted if SA_RESTART is set\)", lines[i])
    assert lines[i + 1] == "--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=2, si_uid=0} ---"
    assert re.fullmatch(r"rt_sigreturn\(\{mask=\[\]\}\) += -1 EINTR \(Interrupted system call\)", lines[i + 2])
    assert lines[-1] == "+++ exited with 0 +++"
