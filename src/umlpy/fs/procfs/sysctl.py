"""/proc/sys: the sysctls tools and libcs read; the UTS names (as
sethostname(2) would set them) and the key quotas can be written.

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


def int_sysctl(obj, attr: str, lo: int, hi: int = 0x7FFFFFFF, changed=None):
    """An integer sysctl kept in obj.attr, written as proc_dointvec_minmax
    takes it: the first number, within lo..hi, else EINVAL; changed() runs
    after a write."""
    def show(task) -> bytes:
        return f"{getattr(obj, attr)}\n".encode()

    def store(task, data: bytes) -> None:
        words = data.split()
        try:
            v = int(words[0]) if words else None
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise KernelError(E.EINVAL)
        setattr(obj, attr, v)
        if changed is not None:
            changed()
    return rw(show, store)


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


def sys_tree(kernel, boot_id: str) -> Spec:
    k = kernel
    return {
        "kernel": {
            "cap_last_cap": ro("40"),
            "dmesg_restrict": int_sysctl(k, "dmesg_restrict", 0, 1),
            "domainname": _uts(k, "domainname"),
            "hostname": _uts(k, "hostname"),
            "keys": {
                "gc_delay": int_sysctl(k.keys, "gc_delay", 0, changed=k.keys.gc_delay_changed),
                "maxbytes": int_sysctl(k.keys, "maxbytes", 1),
                "maxkeys": int_sysctl(k.keys, "maxkeys", 1),
                "root_maxbytes": int_sysctl(k.keys, "root_maxbytes", 1),
                "root_maxkeys": int_sysctl(k.keys, "root_maxkeys", 1),
            },
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
            "pipe-max-size": ro(str(NR_OPEN)),
        },
    }
