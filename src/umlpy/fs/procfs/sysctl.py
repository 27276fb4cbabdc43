"""/proc/sys: the sysctls tools and libcs read; the UTS names (as
sethostname(2) would set them), the key quotas, the IPC limits (ipcfiles)
and the limits the kernel honours (kernel/tunables.py) can be written, by root;
/proc/sys/user's, each user namespace's own, by its root.

Other values are umlpy's fixed limits and Linux's defaults; boot_id is made
once per boot, uuid is new at each read (both as Linux's random driver does).
"""
from __future__ import annotations

from typing import Callable

from arch_um import clock
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from umlpy.fs.devpts import NR_UNIX98_PTY_MAX, devpts_instance
from umlpy.fs.procfs.base import GenFile, Spec, ints, parse_ints, ro, rw, text, wo
from umlpy.kernel import printk, ucount, userns
from umlpy.kernel.cred import capable
from umlpy.kernel.mm import MMAP_MIN_ADDR, mapped_anywhere
from umlpy.kernel.errors import KernelError
from umlpy.fs.procfs.ipcfiles import kernel_sysctls, mqueue_sysctls
from umlpy.fs.procfs.net import sys_net
from umlpy.kernel.tunables import CORENAME_MAX_SIZE, INT_BOUNDS, INT_MAX, INT_MIN, \
    LONG_MAX, RR_TIMESLICE_MS, ULONG_MAX
from umlpy.vfs import evict
from umlpy.vfs.fsnotify import MAX_QUEUED as INOTIFY_MAX_QUEUED
from umlpy.vfs.devices import ENTROPY_AVAIL
from umlpy.vfs.file import files_stat
from umlpy.vfs.pipe import round_pipe_size

UTS_LEN = 64
NGROUPS_MAX = 65536


def new_uuid() -> str:
    """A random (version 4) UUID in its text form."""
    b = bytearray(clock.random_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def int_sysctl(obj, attr: str, lo: int, hi: int = INT_MAX, changed=None, mode: int = 0o644):
    """An integer sysctl kept in obj.attr (proc_dointvec_minmax, as ints);
    changed() runs after a write."""
    def put(v: list[int]) -> None:
        setattr(obj, attr, v[0])
        if changed is not None:
            changed()
    return ints(lambda: [getattr(obj, attr)], put, lo, hi, mode)


def _uts(kernel, attr: str):
    """A UTS name of the reader's (writer's) UTS namespace: read and
    written as proc_dostring does (up to the first newline, at most 64 bytes)."""
    def ns(task):
        return task.proc.ns.uts if task is not None else kernel.init_ns.uts

    def show(task) -> bytes:
        return getattr(ns(task), attr).encode() + b"\n"

    def store(task, data: bytes) -> None:
        value = data.split(b"\n", 1)[0].split(b"\0", 1)[0][:UTS_LEN]
        setattr(ns(task), attr, value.decode(errors="replace"))
    return rw(show, store)


def _pipe_max_size(kernel):
    """pipe-max-size: kept as round_pipe_size makes it (a page at least;
    past 2^31 EINVAL)."""
    t = kernel.tunables

    def store(task, data: bytes) -> None:
        v = (parse_ints(data) or [-1])[0]
        size = round_pipe_size(v) if v >= 0 else 0
        if not size:
            raise KernelError(E.EINVAL)
        t.pipe_max_size = size
    return rw(lambda task: f"{t.pipe_max_size}\n".encode(), store)


class _UserNsFile(GenFile):
    """A /proc/sys/user file: a limit of the opener's user namespace,
    writable by whoever has CAP_SYS_RESOURCE there, its root included
    (set_permissions), read-only to the rest, uid 0 too: its mode bits
    are 0444 and the capability grants the write."""

    def grants(self, creds) -> bool:
        return userns.ns_capable(creds, creds.user_ns, CAP_SYS_RESOURCE)


def _user_limits(kernel) -> dict:
    """/proc/sys/user/max_<kind> (kernel/ucount.py), 0..INT_MAX."""
    def table(task):
        return (ucount.user_ns(kernel, task.proc.creds) if task is not None else kernel.init_ns.user).ucount_max

    def leaf(kind: str):
        def show(task) -> bytes:
            return f"{table(task)[kind]}\n".encode()

        def store(task, data: bytes) -> None:
            vals = parse_ints(data)
            if not vals or not 0 <= vals[0] <= INT_MAX:
                raise KernelError(E.EINVAL)
            table(task)[kind] = vals[0]

        def make(fs, key):
            return _UserNsFile(fs, key, show, store, mode=0o444, pollable=True)
        make.show, make.store = show, store
        return make
    return {f"max_{kind}": leaf(kind) for kind in ucount.KINDS}


def _tunable(kernel, name: str):
    """An integer tunable between Linux's bounds (kernel/tunables.py)."""
    attr, lo, hi = INT_BOUNDS[name]
    return int_sysctl(kernel.tunables, attr, lo, hi)


def _overcommit(budget) -> dict:
    """vm.overcommit_memory (0..2), overcommit_ratio and overcommit_kbytes
    (mm/util.c: writing either zeroes the other), kept by the commit
    accounting (kernel/mm.MemBudget)."""
    def zero(attr: str):
        return lambda: setattr(budget, attr, 0)
    return {
        "overcommit_kbytes": int_sysctl(budget, "overcommit_kbytes", 0, ULONG_MAX,
                                        zero("overcommit_ratio")),
        "overcommit_memory": int_sysctl(budget, "overcommit_memory", 0, 2),
        "overcommit_ratio": int_sysctl(budget, "overcommit_ratio", INT_MIN, INT_MAX,
                                       zero("overcommit_kbytes")),
    }


def _ns_last_pid(kernel):
    """ns_last_pid (pid_ns_ctl_handler): the last pid given in the
    reader's pid namespace; writing it (CAP_SYS_ADMIN or
    CAP_CHECKPOINT_RESTORE, 0..pid_max-1) makes the next pid follow it."""
    procs = kernel.procs

    def ns(task):
        return task.proc.pidns if task is not None else kernel.init_ns.pid

    def store(task, data: bytes) -> None:
        c = task.proc.creds if task is not None else None
        if c is not None and not userns.checkpoint_restore_capable(c, None):     # in the init namespace
            raise KernelError(E.EPERM)
        vals = parse_ints(data)
        if not vals or not 0 <= vals[0] < kernel.tunables.pid_max:
            raise KernelError(E.EINVAL)
        procs.set_last_pid(ns(task), vals[0])
    return rw(lambda task: f"{procs.last_pid(ns(task))}\n".encode(), store, mode=0o666)


def _core_pattern(kernel):
    """proc_dostring: up to the first newline, at most 127 bytes."""
    def store(task, data: bytes) -> None:
        kernel.tunables.core_pattern = data.split(b"\n", 1)[0].split(b"\0", 1)[0][:CORENAME_MAX_SIZE - 1]
    return rw(lambda task: kernel.tunables.core_pattern + b"\n", store)


def _unprivileged_bpf_disabled(kernel):
    """bpf_unpriv_handler: CAP_SYS_ADMIN to write, 0 to 2, and once 1 it
    stays 1 (EPERM)."""
    t = kernel.tunables

    def store(task, data: bytes) -> None:
        if task is not None and not capable(task.proc.creds, CAP_SYS_ADMIN):
            raise KernelError(E.EPERM)
        v = (parse_ints(data) or [-1])[0]
        if not 0 <= v <= 2:
            raise KernelError(E.EINVAL)
        if t.unprivileged_bpf_disabled == 1 and v != 1:
            raise KernelError(E.EPERM)
        t.unprivileged_bpf_disabled = v
    return rw(lambda task: f"{t.unprivileged_bpf_disabled}\n".encode(), store)


def _rr_timeslice(kernel):
    """sched_rr_handler: a value up to 0 puts the default back."""
    def store(task, data: bytes) -> None:
        v = (parse_ints(data) or [0])[0]
        kernel.tunables.sched_rr_timeslice_ms = v if v > 0 else RR_TIMESLICE_MS
    return rw(text(lambda: str(kernel.tunables.sched_rr_timeslice_ms)), store)


def _drop_caches(kernel):
    """vm.drop_caches (1 to 4, as proc_dointvec_minmax): 1 lets go of the
    cached copies of what is on the disks (each file's pages that no
    mapping holds, the clean blocks), as drop_pagecache_sb; 2 evicts the
    unused inodes (drop_slab), which here means what an eviction shows:
    their evictable fanotify marks go (vfs/evict.py); 4 stops the log
    line each write makes."""
    quiet = [False]

    def store(task, data: bytes) -> None:
        v = (parse_ints(data) or [0])[0]
        if not 1 <= v <= 4:
            raise KernelError(E.EINVAL)
        if v & 1:
            kernel.vm_events["drop_pagecache"] += 1

            def in_use(inode) -> bool:
                return mapped_anywhere(kernel.procs, inode)
            for fs in {id(m.fs): m.fs for m in kernel.mounts.mounts}.values():
                fs.drop_caches(in_use)
        if v & 2:
            kernel.vm_events["drop_slab"] += 1
            evict.drop_unused_inodes(kernel)
        if not quiet[0] and task is not None:
            printk.pr_info(f"{task.proc.comm.decode(errors='replace')} ({task.proc.pid}): drop_caches: {v}")
        quiet[0] |= bool(v & 4)
    return wo(store)


def _pty() -> Spec:
    """kernel.pty: the most ptys devpts gives (ENOSPC past it), those kept
    from other mount namespaces' mounts, and how many are live."""
    def attr(name: str):
        return ints(lambda: [getattr(devpts_instance(), name)],
                    lambda v: setattr(devpts_instance(), name, v[0]), 0, NR_UNIX98_PTY_MAX)
    return {"max": attr("limit"), "nr": ro(text(lambda: str(len(devpts_instance().ptys)))),
            "reserve": attr("reserve")}


def sys_tree(kernel, boot_id: str) -> Spec:
    k = kernel
    return {
        "kernel": {
            "cap_last_cap": ro("40"),
            "core_pattern": _core_pattern(k),
            "core_uses_pid": int_sysctl(k.tunables, "core_uses_pid", INT_MIN),
            "dmesg_restrict": int_sysctl(k, "dmesg_restrict", 0, 1),
            "domainname": _uts(k, "domainname"),
            "hostname": _uts(k, "hostname"),
            "io_uring_disabled": _tunable(k, "kernel/io_uring_disabled"),
            "keys": {
                "gc_delay": int_sysctl(k.keys, "gc_delay", 0, changed=k.keys.gc_delay_changed),
                "maxbytes": int_sysctl(k.keys, "maxbytes", 1),
                "maxkeys": int_sysctl(k.keys, "maxkeys", 1),
                "root_maxbytes": int_sysctl(k.keys, "root_maxbytes", 1),
                "root_maxkeys": int_sysctl(k.keys, "root_maxkeys", 1),
            },
            "ngroups_max": ro(str(NGROUPS_MAX)),
            "ns_last_pid": _ns_last_pid(k),
            "osrelease": ro(text(lambda: k.release)),
            "ostype": ro("Linux"),
            "overflowgid": ro("65534"),
            "overflowuid": ro("65534"),
            "panic": ro("0"),
            "pid_max": _tunable(k, "kernel/pid_max"),
            "printk": ro("4\t4\t1\t7"),
            "pty": _pty(),
            "randomize_va_space": int_sysctl(k.tunables, "randomize_va_space", INT_MIN),
            "random": {
                "boot_id": ro(boot_id),
                "entropy_avail": ro(str(ENTROPY_AVAIL)),
                "poolsize": ro("256"),
                "uuid": ro(text(new_uuid)),
            },
            "sched_rr_timeslice_ms": _rr_timeslice(k),
            **kernel_sysctls(k),
            "tainted": ro("0"),
            "threads-max": _tunable(k, "kernel/threads-max"),
            "unprivileged_bpf_disabled": _unprivileged_bpf_disabled(k),
            "version": ro(text(lambda: k.version_string)),
        },
        "net": sys_net(k),
        "vm": {
            "drop_caches": _drop_caches(k),
            "max_map_count": _tunable(k, "vm/max_map_count"),
            # the lowest address umlpy lets a guest map (a host whose own
            # floor is higher refuses more): read-only, as umlpy cannot move the host's
            "mmap_min_addr": ro(str(MMAP_MIN_ADDR)),
            **_overcommit(k.mem_budget),
            "oom_kill_allocating_task": _tunable(k, "vm/oom_kill_allocating_task"),
            "panic_on_oom": _tunable(k, "vm/panic_on_oom"),
            "swappiness": ro("60"),
            "unprivileged_userfaultfd": _tunable(k, "vm/unprivileged_userfaultfd"),
            "vfs_cache_pressure": _tunable(k, "vm/vfs_cache_pressure"),
        },
        "user": _user_limits(k),
        "fs": {
            "aio-max-nr": int_sysctl(k.tunables, "aio_max_nr", 0, ULONG_MAX),
            "aio-nr": ro(text(lambda: str(k.aio_nr))),
            # dentry-state: nr_dentry, nr_unused, age_limit, want_pages,
            # nr_negative, dummy; inode-nr and inode-state: nr_inodes, nr_unused
            # (umlpy keeps no unused or negative dentries on a list: 0)
            "dentry-state": ro(text(lambda: "%d\t0\t45\t0\t0\t0" % evict.cache_counts(k)[0])),
            "inode-nr": ro(text(lambda: "%d\t0" % evict.cache_counts(k)[1])),
            "inode-state": ro(text(lambda: "%d\t0\t0\t0\t0\t0\t0" % evict.cache_counts(k)[1])),
            "file-max": int_sysctl(files_stat, "max", 0, LONG_MAX),     # proc_doulongvec_minmax
            "file-nr": ro(text(lambda: f"{files_stat.nr}\t0\t{files_stat.max}")),
            "inotify": {"max_queued_events": ro(str(INOTIFY_MAX_QUEUED)),
                        "max_user_instances": _tunable(k, "fs/inotify/max_user_instances"),
                        "max_user_watches": _tunable(k, "fs/inotify/max_user_watches")},
            "epoll": {"max_user_watches": _tunable(k, "fs/epoll/max_user_watches")},
            "fanotify": {"max_queued_events": _tunable(k, "fs/fanotify/max_queued_events"),
                         "max_user_groups": _tunable(k, "fs/fanotify/max_user_groups"),
                         "max_user_marks": _tunable(k, "fs/fanotify/max_user_marks")},
            "mount-max": int_sysctl(k.mounts, "mount_max", 1),
            "nr_open": _tunable(k, "fs/nr_open"),
            "suid_dumpable": int_sysctl(k.tunables, "suid_dumpable", 0, 2),
            "mqueue": mqueue_sysctls(k),
            "pipe-max-size": _pipe_max_size(k),
            "pipe-user-pages-hard": int_sysctl(k.tunables, "pipe_user_pages_hard", 0),
            "pipe-user-pages-soft": int_sysctl(k.tunables, "pipe_user_pages_soft", 0),
            "lease-break-time": int_sysctl(k.tunables, "lease_break_time", INT_MIN),
            "protected_fifos": int_sysctl(k.tunables, "protected_fifos", 0, 2, mode=0o600),
            "protected_hardlinks": int_sysctl(k.tunables, "protected_hardlinks", 0, 1, mode=0o600),
            "protected_regular": int_sysctl(k.tunables, "protected_regular", 0, 2, mode=0o600),
            "protected_symlinks": int_sysctl(k.tunables, "protected_symlinks", 0, 1, mode=0o600),
            "leases-enable": int_sysctl(k.tunables, "leases_enable", INT_MIN),
        },
    }


def writable(kernel) -> dict[str, tuple[Callable, Callable]]:
    """Every sysctl in /proc/sys that root may write, by its path there
    ("kernel/hostname"), as (show, store), each taking the task (None:
    the init namespaces', no permission check)."""
    out = {}

    def walk(prefix: str, spec: Spec) -> None:
        for name, v in spec.items():
            if isinstance(v, dict):
                walk(f"{prefix}{name}/", v)
            elif getattr(v, "store", None) is not None:
                out[prefix + name] = (v.show, v.store)
    walk("", sys_tree(kernel, ""))
    return out
