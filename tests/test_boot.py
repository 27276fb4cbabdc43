"""Booting: the command line, the log, exit statuses, consoles, images."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import CPIO, IMAGE, PATH_ENV, PROGS, TRAP_PARAMS, UMLPY, boot, copy_image, native, sh

LOG_LINE = re.compile(rb"^\[\s*\d+\.\d{6}\] ")


def test_hello_and_exit_status():
    r = boot("init=/bin/sh", init_args=["-c", "echo hello; exit 7"])
    assert r.stdout == b"hello\n"
    assert r.returncode == 7


def test_log_goes_to_stderr_in_linux_shape():
    r = boot("init=/bin/sh", init_args=["-c", "true"])
    lines = r.stderr.splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), r.stderr
    log = r.stderr.decode()
    assert "Linux version" in log and "umlpy" in log
    assert "Command line:" in log
    assert "Memory: 245944K/262144K available (16200K reserved)" in log
    assert "LSM: Security Framework initializing" in log
    assert "landlock: Up and running." in log
    assert "Trying to unpack rootfs image as initramfs" in log
    assert "Run /bin/sh as init process" in log
    assert "Attempted to kill init! exitcode=0x00000000" in log
    assert r.returncode == 0


def test_quiet_keeps_warnings_and_errors_only():
    r = boot("quiet", "init=/bin/sh", "udb0=x", init_args=["-c", "true"])
    log = r.stderr.decode()
    assert "Linux version" not in log
    assert "did you mean \"ubd\"" in log         # a warning stays
    assert "Kernel panic" in log                 # emergencies stay


def test_lsm_without_landlock_turns_it_off():
    """lsm= that leaves landlock out: no "Up and running", and its
    syscalls are EOPNOTSUPP, as a Linux booted so answers."""
    r = boot("lsm=capability,yama", "init=/bin/sh",
             init_args=["-c", "mkdir -p /tmp/s; /t/bin/t_landlock /tmp/s"])
    assert r.stdout == b"no landlock: EOPNOTSUPP\n"
    assert b"landlock: Up and running." not in r.stderr


def test_loglevel():
    r = boot("loglevel=1", "init=/bin/sh", init_args=["-c", "true"])
    assert b"Linux version" not in r.stderr
    assert b"Kernel panic" in r.stderr


def test_exit_status_of_signalled_init_is_128_plus_n():
    r = boot("init=/t/bin/t_fault")
    assert r.returncode == 128 + 11
    assert b"exitcode=0x0000000b" in r.stderr
    # init only receives the signals it has handlers for
    r = boot("init=/bin/sh", init_args=["-c", "kill -TERM $$; echo alive"])
    assert r.stdout == b"alive\n" and r.returncode == 0
    r = sh("sh -c 'kill -TERM $$' 2>/dev/null; echo $?")
    assert r.stdout == b"143\n"


INIT_SESSION = b"""getpid: 1
getpgrp: 0
getsid: 0
getpgid(1): 0
getpriority(PRIO_PGRP, 0) errno: 0
kill(0, 0): 0
 child getpgrp: 0
 child getsid: 0
 child setpgid(0, 0): 0
 child leads its group: 1
setsid: 1
getpgrp: 1
getsid: 1
setsid again: -1 EPERM
setpgid(0, 0) as session leader: -1 EPERM
"""


def test_init_starts_in_group_and_session_zero():
    """Linux's init begins in the kernel threads' group and session (0),
    leading neither, so its setsid() works (systemd and sysvinit call it)."""
    r = boot("quiet", "init=/t/bin/t_initsess")
    assert r.stdout == INIT_SESSION


@pytest.mark.skipif(os.geteuid() != 0, reason="a new pid namespace natively needs root")
def test_init_session_matches_a_native_namespace_init():
    """The same program as the first process of a host pid namespace, whose
    group and session lie outside it and read 0 too."""
    assert native(["unshare", "--pid", "--fork", str(PROGS / "t_initsess")]) == INIT_SESSION


def test_fault_reaches_the_guest_handler():
    r = sh("/t/bin/t_fault x catch; echo rc=$?")
    assert r.stdout == b"caught 11 at (nil)\nrc=3\n"
    r = sh("/t/bin/t_fault; echo rc=$?")
    assert r.stdout.endswith(b"rc=139\n")


def test_init_args_and_environment():
    r = boot("quiet", "init=/bin/sh", "FOO=bar", "mod.param=1", init_args=["-c", 'echo "$FOO" "$0" "$1"', "zero", "one"])
    assert r.stdout == b"bar zero one\n"
    # Linux's order: bare words first, then what follows `--`
    r = boot("quiet", "init=/t/bin/t_auxv", "single", init_args=["after"])
    assert b"argv[1]=single" in r.stdout.replace(b" ", b"") or r.stdout.index(b"single") < r.stdout.index(b"after")


def test_bare_words_go_to_init_argv():
    r = boot("quiet", "init=/t/bin/t_auxv", "single", "T_X=1")
    out = r.stdout.decode()
    assert "single" in out
    assert "T_X=1" in out


def test_requested_init_that_fails_panics():
    r = boot("init=/nonexistent")
    assert r.returncode != 0
    assert b"Requested init /nonexistent failed" in r.stderr


def test_misspelt_uml_option_is_reported():
    r = boot("udb0=root.img", "init=/bin/sh", init_args=["-c", "true"])
    assert b'did you mean "ubd"' in r.stderr


def test_mem_parameter():
    r = boot("mem=64M", "init=/bin/sh", init_args=["-c", "true"])
    assert b"Memory: 53268K/65536K available" in r.stderr


def test_mem_limit_refuses_mappings():
    assert sh("/t/bin/t_mem x 100", "mem=64M").stdout == b"mmap 100 MiB: ENOMEM\ndone\n"
    assert sh("/t/bin/t_mem x 100", "mem=256M").stdout == b"mmap 100 MiB: ok\ndone\n"


def test_stdin_kinds(tmp_path):
    script = ["-c", "read line; echo got:$line"]
    r = boot("quiet", "init=/bin/sh", init_args=script, input=b"pipe\n")
    assert r.stdout == b"got:pipe\n"
    f = tmp_path / "in.txt"
    f.write_bytes(b"file\n")
    with open(f, "rb") as fh:
        r = boot("quiet", "init=/bin/sh", init_args=script, stdin=fh)
    assert r.stdout == b"got:file\n"
    r = boot("quiet", "init=/bin/sh", init_args=["-c", "read line; echo rc=$?"])
    assert r.stdout == b"rc=1\n"


def test_stdin_on_a_terminal():
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(UMLPY), [str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
                              "--", "-c", "read line; echo got:$line"])
    os.write(fd, b"tty\n")
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert b"got:tty" in out
    assert os.waitstatus_to_exitcode(status) == 0


def test_poweroff_exits_zero_and_reboot_boots_again():
    r = boot("quiet", "init=/bin/sh", init_args=["-c", "echo up; poweroff -f; sleep 5"])
    assert r.stdout == b"up\n" and r.returncode == 0
    r = boot("quiet", "noreboot", "init=/bin/sh", init_args=["-c", "echo up; reboot -f; sleep 5"])
    assert r.stdout == b"up\n" and r.returncode == 0


def test_reboot_restarts_the_guest(tmp_path):
    # each boot unpacks the initramfs afresh, so the guest cannot count boots
    # itself; the kernel log shows the second boot
    proc = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "init=/bin/sh", "--", "-c",
                             "echo up; reboot -f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    while out.count(b"up\n") < 2:
        line = proc.stdout.readline()
        if not line:
            break
        out += line
    proc.kill()
    proc.wait()
    assert out.count(b"up\n") >= 2


def test_image_help_version_showconfig_and_direct_run(tmp_path):
    r = subprocess.run([str(IMAGE), "--help"], capture_output=True)
    assert r.returncode == 0
    lines = r.stdout.decode().splitlines()
    for param in ("initrd=", "init=", "mem=", "quiet", "loglevel=", "con", "umid=", "uml_dir="):
        assert any(param in line for line in lines), param
    assert subprocess.run([str(IMAGE), "--version"], capture_output=True).stdout.startswith(b"umlpy kernel 6.1.0-umlpy")
    assert b"release=" in subprocess.run([str(IMAGE), "--showconfig"], capture_output=True).stdout
    copy = tmp_path / "elsewhere" / "linux-um"
    copy.parent.mkdir()
    copy_image(IMAGE, copy)
    r = boot("quiet", "init=/bin/sh", image=copy, direct=True, init_args=["-c", "echo direct"])
    assert r.stdout == b"direct\n"


def test_umlpy_build_makes_a_bootable_image(tmp_path):
    out = tmp_path / "k"
    subprocess.run([str(UMLPY), "build", "-o", str(out), "--cmdline", "quiet"], check=True,
                   capture_output=True)
    r = boot("init=/bin/sh", image=out, init_args=["-c", "echo built"])
    assert r.stdout == b"built\n"
    assert b"Linux version" not in r.stderr    # the baked-in `quiet`


def test_a_running_kernel_outlives_its_image_file(tmp_path):
    """The image is read whole at boot, as Linux's is: a rebuild of the
    file while a guest runs leaves the running kernel's later imports (here
    the netdevice ioctls, imported at first use) as they were."""
    image = tmp_path / "linux-um"
    copy_image(IMAGE, image)
    cmd = [str(UMLPY), str(image), f"initrd={CPIO}", *TRAP_PARAMS, "quiet", "init=/bin/sh", PATH_ENV,
           "--", "-c", "mount -t proc p /proc; echo ready; read go; ifconfig lo | head -1; echo done"]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as p:
        try:
            assert p.stdout.readline() == b"ready\n"
            junk = tmp_path / "junk"
            junk.write_bytes(b"#!/bin/false\nnot a zip any more\n")
            os.replace(junk, image)
            out, err = p.communicate(b"go\n", timeout=60)
        finally:
            p.kill()
    assert out.split(b"\n")[0].startswith(b"lo ") and out.endswith(b"done\n"), out
    assert b"Oops" not in err, err.decode(errors="replace")


def test_uname_names_umlpy():
    r = sh("uname -s; uname -r; uname -m")
    s, rel, m = r.stdout.decode().split()
    assert (s, m) == ("Linux", "x86_64") and "umlpy" in rel


def test_umid_directory(tmp_path):
    d = tmp_path / "uml"
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", f"uml_dir={d}", "umid=box1",
                          "init=/bin/sh", "--", "-c", "echo up; read x"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"up\n"
    assert (d / "box1" / "pid").read_text().strip() == str(p.pid)
    second = boot("quiet", f"uml_dir={d}", "umid=box1", "init=/bin/sh", init_args=["-c", "echo no"])
    assert second.returncode != 0 and b"in use" in second.stderr
    p.communicate(b"\n")
    assert p.returncode == 0
    assert not (d / "box1").exists()


def test_a_busy_guest_starves_neither_console_nor_timers():
    # a guest computing without syscalls must not stop input or sleeps of others
    script = "while :; do :; done & read x; echo got $x; sleep 0.3; echo slept; kill $!"
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--", "-c", script],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    import time
    time.sleep(0.5)
    out, _ = p.communicate(b"hello\n", timeout=60)
    assert out == b"got hello\nslept\n"
