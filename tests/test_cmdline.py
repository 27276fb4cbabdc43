"""The umlpy command and the UML command line around the kernel: --version,
`python -m umlpy`, closed pipes, a host that refuses ptrace, root
filesystem types, and UML's options umlpy does not implement."""
from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import sys

import pytest

from conftest import CPIO, IMAGE, UMLPY, boot, sh

PYTHON = sys.executable


def _closed_stdout(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """cmd with its stdout a pipe whose reader has gone (`cmd | head -0`)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(cmd, stdout=w, stderr=subprocess.PIPE, timeout=120, **kw)
    finally:
        os.close(w)


def test_version():
    out = subprocess.run([str(UMLPY), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("umlpy ") and out.split()[1][0].isdigit(), out
    assert subprocess.run([str(UMLPY), "-V"], capture_output=True, text=True).stdout == out


def test_python_dash_m_is_the_command():
    for args in (["--version"], ["syscalls"], ["--help"], [str(IMAGE), "--version"]):
        a = subprocess.run([str(UMLPY), *args], capture_output=True, timeout=60)
        b = subprocess.run([PYTHON, "-m", "umlpy", *args], capture_output=True, timeout=60)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args
    r = subprocess.run([PYTHON, "-m", "umlpy", str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh",
                        "--", "-c", "echo booted; exit 3"], capture_output=True, timeout=120)
    assert (r.stdout, r.returncode) == (b"booted\n", 3)


def test_the_image_leaves_the_command_entry_point_out():
    import zipfile
    with zipfile.ZipFile(IMAGE) as z:
        assert "umlpy/__main__.py" not in z.namelist()


@pytest.mark.parametrize("cmd", [[str(UMLPY), "syscalls"], [str(UMLPY), "--help"],
                                 [str(UMLPY), str(IMAGE), "--help"], [str(IMAGE), "--help"],
                                 [str(UMLPY), str(IMAGE), "--showconfig"]],
                         ids=["syscalls", "help", "image-help", "direct-image-help", "showconfig"])
def test_a_closed_pipe_ends_a_utility_quietly(cmd):
    r = _closed_stdout(cmd)
    assert r.returncode in (1, -13), r
    assert r.stderr == b""


def test_a_guest_writing_to_a_closed_pipe_gets_epipe():
    """As UML's fd channel: the host write's EPIPE is the guest's (a tty
    sends no SIGPIPE); the kernel goes on and exits with init's status."""
    r = _closed_stdout([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--", "-c",
                        "while echo x 2>/tmp/e; do :; done; grep -q 'Broken pipe' /tmp/e && exit 9; exit 8"])
    assert r.returncode == 9
    assert b"Traceback" not in r.stderr and b"exitcode=0x00000900" in r.stderr


def test_a_closed_log_is_dropped_quietly():
    r = subprocess.run([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "init=/bin/sh", "--", "-c",
                        "echo one; sleep 0.2; echo two; exit 5"], stdout=subprocess.PIPE,
                       stderr=_closed_write_end(), timeout=120)
    assert (r.stdout, r.returncode) == (b"one\ntwo\n", 5)


def _closed_write_end() -> int:
    r, w = os.pipe()
    os.close(r)
    return w


@pytest.mark.skipif(shutil.which("strace") is None, reason="no strace")
def test_under_strace_one_clear_line():
    r = subprocess.run(["strace", "-f", "-o", "/dev/null", str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet",
                        "init=/bin/sh", "--", "-c", "echo hi"], capture_output=True, timeout=120)
    log = r.stderr.decode()
    assert r.returncode == 1 and r.stdout == b"" and "Traceback" not in log
    assert log.count("\n") == 1, log
    assert "Kernel panic - not syncing: cannot ptrace the guests: umlpy is itself being traced" in log
    assert "strace" in log


def _forbid_ptrace() -> None:
    """A seccomp filter answering ptrace(2) with EPERM, as container policies do."""
    libc = ctypes.CDLL(None, use_errno=True)
    ld_nr, jeq, ret = 0x20, 0x15, 0x06
    prog = [(ld_nr, 0, 0, 0), (jeq, 0, 1, 101), (ret, 0, 0, 0x00050000 | 1), (ret, 0, 0, 0x7fff0000)]
    raw = b"".join(struct.pack("<HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("<HxxxxxxQ", len(prog), ctypes.addressof(buf))
    assert libc.prctl(38, 1, 0, 0, 0) == 0                   # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) == 0     # PR_SET_SECCOMP, FILTER


def test_where_seccomp_forbids_ptrace_one_clear_line():
    r = subprocess.run([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--", "-c", "echo hi"],
                       capture_output=True, timeout=120, preexec_fn=_forbid_ptrace)
    log = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in log and log.count("\n") == 1, log
    assert "cannot ptrace the guests: a seccomp filter on umlpy forbids ptrace" in log


@pytest.mark.parametrize("fstype", ["xfs", "tmpfs", "nfs"])
def test_unknown_rootfstype_is_named(fstype):
    r = subprocess.run([str(UMLPY), str(IMAGE), "ubd0=rootfs/busybox.img", "quiet", f"rootfstype={fstype}"],
                       capture_output=True, timeout=120, cwd=IMAGE.parent)
    log = r.stderr.decode()
    assert r.returncode == 1 and "did you mean" not in log
    assert (f"Kernel panic - not syncing: VFS: Unable to mount root fs: rootfstype={fstype} is not a root "
            "filesystem type here (ext2, ext3, ext4, or hostfs for a host directory)") in log


UNSUPPORTED = ["vec0:transport=tap,ifname=tap0,depth=128,gro=1", "eth1=tuntap,,,192.168.0.254",
               "eth0=daemon", "xterm=gnome-terminal,-t,-x",
               "mconsole=unknown", "iomem=dev,/tmp/f", "dsp=/dev/dsp", "mixer=/dev/mixer", "pci=noacpi",
               "fakehd", "skas0", "seccomp=maybe", "time-travel=inf-cpu", "ncpus=2", "ubd=sync", "dtb=x.dtb"]


def test_uml_options_umlpy_lacks_warn_once_and_stay_from_init():
    argv = boot("quiet", "init=/t/bin/t_auxv", "loose", *UNSUPPORTED).stdout.decode()
    assert "argc: 2\n" in argv and "argv[1]: 'loose'\n" in argv
    r = sh("env", "FOO=bar", *UNSUPPORTED)
    out, log = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == 0 and "FOO=bar\n" in out
    for w in UNSUPPORTED:
        assert w not in out, w
        assert log.count(f'"{w}"') == 1, (w, log)
        assert f'"{w}": ' in log and "not supported by umlpy, ignored" in log
    assert "did you mean" not in log


def test_implemented_uml_options_keep_working():
    r = sh("hostname; echo ok", "hostname=box", "mem=64M", "con0=fd:0,fd:1",
           "con=fd:0,fd:1", "eth0=user", "rootflags=x")
    assert r.stdout == b"box\nok\n" and r.returncode == 0
    assert b"not supported" not in r.stderr and b"did you mean" not in r.stderr


def test_rootflags_reach_the_disk_root():
    """Linux passes rootflags= to the root's mount: ext4's commit= is checked."""
    r = subprocess.run([str(UMLPY), str(IMAGE), "ubd0=rootfs/busybox.img", "quiet", "rootflags=commit=x"],
                       capture_output=True, timeout=120, cwd=IMAGE.parent)
    assert r.returncode == 1 and b"ext4: bad commit= value 'x'" in r.stderr
