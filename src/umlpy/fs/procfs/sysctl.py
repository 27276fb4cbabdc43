"""/proc/sys: the sysctls tools and libcs read, and the UTS names, which
are the only ones that can be written (as sethostname(2) would set them).

Values are umlpy's fixed limits and Linux's defaults; boot_id is made once
per boot, uuid is new at each read (both as Linux's random driver does).
"""
from __future__ import annotations

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.fs.procfs.base import Spec, ro, rw, text
from umlpy.fs.procfs.net import sys_net
from umlpy.kernel.errors import KernelError
from umlpy.kernel.process import PID_MAX
from umlpy.vfs.devices import ENTROPY_AVAIL
from umlpy.vfs.pipe import round_pipe_size

UTS_LEN = 64
NGROUPS_MAX = 65536
NR_OPEN = 1 << 20
FILE_MAX = 9223372036854775807      # Linux's default: no limit but memory


def new_uuid() -> str:
    """A random (version 4) UUID in its text form."""
    b = bytearray(clock.random_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uts(kernel, attr: str):
    """A UTS name: read and written as proc_dostring does (up to the first
    newline, at most 64 bytes)."""
    def show(task) -> bytes:
        return getattr(kernel, attr).encode() + b"\n"

    def store(task, data: bytes) -> None:
        value = data.split(b"\n", 1)[0].split(b"\0", 1)[0][:UTS_LEN]
        setattr(kernel, attr, value.decode(errors="replace"))
    return rw(show, store)


def _open_files(kernel) -> int:
    return len({id(f) for p in kernel.procs.by_pid.values() for f in p.fdtable.files.values()})


def _number(data: bytes, signed: bool = False) -> int:
    """One decimal number (with a sign if signed), as the proc_do*vec
    handlers parse a write."""
    words = data.split()
    digits = words[0][1:] if len(words) == 1 and signed and words[0][:1] == b"-" else words[0] if words else b""
    if len(words) != 1 or not digits.isdigit():
        raise KernelError(E.EINVAL)
    return int(words[0])


def _ulong(obj, attr: str):
    """An unsigned long sysctl kept in obj.attr (proc_doulongvec_minmax)."""
    def show(task) -> bytes:
        return f"{getattr(obj, attr)}\n".encode()

    def store(task, data: bytes) -> None:
        v = _number(data)
        if v >= 1 << 64:
            raise KernelError(E.EINVAL)
        setattr(obj, attr, v)
    return show, store


def _int(obj, attr: str):
    """An int sysctl kept in obj.attr (proc_dointvec)."""
    def show(task) -> bytes:
        return f"{getattr(obj, attr)}\n".encode()

    def store(task, data: bytes) -> None:
        v = _number(data, signed=True)
        if not -(1 << 31) <= v < 1 << 31:
            raise KernelError(E.EINVAL)
        setattr(obj, attr, v)
    return show, store


def _pipe_max_size(limits):
    """fs.pipe-max-size (proc_dopipe_max_size): stored rounded up to a
    power-of-two count of pages, EINVAL past 2 GiB."""
    def show(task) -> bytes:
        return f"{limits.max_size}\n".encode()

    def store(task, data: bytes) -> None:
        size = round_pipe_size(_number(data))
        if not size:
            raise KernelError(E.EINVAL)
        limits.max_size = size
    return show, store


def sys_tree(kernel, boot_id: str) -> Spec:
    k = kernel
    return {
        "kernel": {
            "cap_last_cap": ro("40"),
            "domainname": _uts(k, "domainname"),
            "hostname": _uts(k, "hostname"),
            "ngroups_max": ro(str(NGROUPS_MAX)),
            "osrelease": ro(text(lambda: k.release)),
            "ostype": ro("Linux"),
            "overflowgid": ro("65534"),
            "overflowuid": ro("65534"),
            "panic": ro("0"),
            "pid_max": ro(str(PID_MAX)),
            "printk": ro("4\t4\t1\t7"),
            "random": {
                "boot_id": ro(boot_id),
                "entropy_avail": ro(str(ENTROPY_AVAIL)),
                "poolsize": ro("256"),
                "uuid": ro(text(new_uuid)),
            },
            "tainted": ro("0"),
            "threads-max": ro(str(PID_MAX)),
            "version": ro(text(lambda: k.version_string)),
        },
        "net": sys_net(k),
        "vm": {
            "max_map_count": ro("65530"),
            "overcommit_memory": ro("0"),
            "overcommit_ratio": ro("50"),
            "swappiness": ro("60"),
        },
        "fs": {
            "file-max": ro(str(FILE_MAX)),
            "file-nr": ro(text(lambda: f"{_open_files(k)}\t0\t{FILE_MAX}")),
            "nr_open": ro(str(NR_OPEN)),
            "pipe-max-size": rw(*_pipe_max_size(k.pipes)),
            "pipe-user-pages-hard": rw(*_ulong(k.pipes, "user_pages_hard")),
            "pipe-user-pages-soft": rw(*_ulong(k.pipes, "user_pages_soft")),
            "lease-break-time": rw(*_int(k.leases, "break_time")),
            "leases-enable": rw(*_int(k.leases, "enable")),
        },
    }
