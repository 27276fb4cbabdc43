"""Scheduling as the guest sees it: one CPU, nice values, policies.

The guest machine has one virtual CPU (CPU 0): every affinity mask is that
CPU, a mask without it is EINVAL as on a machine where those CPUs are
offline.  Nice values are kept per process and shown in /proc; the host
schedules the guest's threads as it likes (they are host threads), so a
nice value orders nothing, like a nice value on an idle machine.  Only the
time-sharing policies exist: real-time policies are refused with a log line.
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYS_NICE
from umlpy.abi import structs
from umlpy.abi.syscall_nr import NAMES
from umlpy.kernel import printk
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import put_u32, s32

SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE = 0, 1, 2, 3, 5
SCHED_RESET_ON_FORK = 0x40000000
RR_INTERVAL_NS = 100_000_000


def _target(t, pid: int):
    """The process pid names (0: the caller); tids name their process."""
    if pid < 0:
        raise KernelError(E.EINVAL)
    if pid == 0:
        return t.proc
    task = t.kernel.procs.task(pid)
    if task is None:
        raise KernelError(E.ESRCH)
    return task.proc


def _may_change(t, proc) -> None:
    """Linux's check_same_owner, or CAP_SYS_NICE."""
    c, tc = t.proc.creds, proc.creds
    if c.euid not in (tc.uid, tc.euid) and not capable(c, CAP_SYS_NICE):
        raise KernelError(E.EPERM)


@syscall("sched_yield")
def sys_sched_yield(t, *_):
    return 0


@syscall("sched_getaffinity")
def sys_sched_getaffinity(t, pid, size, mask, *_):
    _target(t, s32(pid))
    if size < 8 or size & 7:
        raise KernelError(E.EINVAL)
    t.mem.write(mask, struct.pack("<Q", 1))
    return 8


@syscall("sched_setaffinity", note="one CPU: masks must include CPU 0")
def sys_sched_setaffinity(t, pid, size, mask, *_):
    proc = _target(t, s32(pid))
    _may_change(t, proc)
    data = t.mem.read(mask, min(size, 8)) if size else b""
    if not data or not data[0] & 1:
        raise KernelError(E.EINVAL)
    return 0


@syscall("getcpu")
def sys_getcpu(t, cpu, node, *_):
    put_u32(t, cpu, 0)
    put_u32(t, node, 0)
    return 0


def _prio_targets(t, which: int, who: int) -> list:
    """The processes getpriority/setpriority mean: one (by thread id), a
    process group or a user's (who 0: the caller's own)."""
    if which == C.PRIO_PROCESS:
        return [_target(t, who)]
    live = [p for p in t.kernel.procs.by_pid.values() if not p.exited]
    if which == C.PRIO_PGRP:
        return [p for p in live if p.pgid == (who or t.proc.pgid)]
    if which == C.PRIO_USER:
        return [p for p in live if p.creds.uid == (who or t.proc.creds.uid)]
    raise KernelError(E.EINVAL)


@syscall("getpriority")
def sys_getpriority(t, which, who, *_):
    procs = _prio_targets(t, s32(which), s32(who))
    if not procs:
        raise KernelError(E.ESRCH)
    return max(20 - p.nice for p in procs)      # 40..1: never negative, as Linux's


@syscall("setpriority")
def sys_setpriority(t, which, who, prio, *_):
    nice = min(max(s32(prio), C.MIN_NICE), C.MAX_NICE)
    procs = _prio_targets(t, s32(which), s32(who))
    if not procs:
        raise KernelError(E.ESRCH)
    c = t.proc.creds
    err = 0
    for p in procs:       # as Linux, every target is tried and the last error told
        try:
            _may_change(t, p)
            if nice < p.nice and 20 - nice > p.rlimit(C.RLIMIT_NICE)[0] and not capable(c, CAP_SYS_NICE):
                raise KernelError(E.EACCES)     # lowering it beyond RLIMIT_NICE
            p.nice = nice
        except KernelError as e:
            err = e.errno
    if err:
        raise KernelError(err)
    return 0


@syscall("sched_getscheduler")
def sys_sched_getscheduler(t, pid, *_):
    return _target(t, s32(pid)).sched_policy


@syscall("sched_setscheduler", status=PARTIAL, note="SCHED_OTHER, SCHED_BATCH, SCHED_IDLE; real-time policies EINVAL")
def sys_sched_setscheduler(t, pid, policy, param, *_):
    proc = _target(t, s32(pid))
    _may_change(t, proc)
    policy = s32(policy) & ~SCHED_RESET_ON_FORK
    prio = struct.unpack("<i", t.mem.read(param, 4))[0]
    if policy in (SCHED_FIFO, SCHED_RR):
        printk.pr_notice(f"sched_setscheduler: real-time policy {policy} not supported")
        raise KernelError(E.EINVAL)
    if policy not in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE) or prio != 0:
        raise KernelError(E.EINVAL)
    proc.sched_policy = policy
    return 0


@syscall("sched_getparam")
def sys_sched_getparam(t, pid, param, *_):
    _target(t, s32(pid))
    t.mem.write(param, struct.pack("<i", 0))    # time-sharing policies have priority 0
    return 0


@syscall("sched_setparam")
def sys_sched_setparam(t, pid, param, *_):
    proc = _target(t, s32(pid))
    _may_change(t, proc)
    if struct.unpack("<i", t.mem.read(param, 4))[0] != 0:
        raise KernelError(E.EINVAL)
    return 0


@syscall("sched_get_priority_max", "sched_get_priority_min")
def sys_sched_priority_range(t, policy, *_):
    policy = s32(policy)
    if policy in (SCHED_FIFO, SCHED_RR):
        return 99 if NAMES[t.in_syscall] == "sched_get_priority_max" else 1
    if policy in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE):
        return 0
    raise KernelError(E.EINVAL)


@syscall("sched_rr_get_interval")
def sys_sched_rr_get_interval(t, pid, ts, *_):
    _target(t, s32(pid))
    t.mem.write(ts, structs.pack_timespec(RR_INTERVAL_NS))
    return 0


IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE = 0, 1, 2, 3
IOPRIO_CLASS_SHIFT = 13


def _io_targets(t, which: int, who: int) -> list:
    if which not in (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER):
        raise KernelError(E.EINVAL)
    return _prio_targets(t, which - 1, who)     # the PRIO_* numbering, one lower


@syscall("ioprio_get", note="kept per process; the block layer has no I/O scheduler to weigh it")
def sys_ioprio_get(t, which, who, *_):
    procs = _io_targets(t, s32(which), s32(who))
    if not procs:
        raise KernelError(E.ESRCH)
    return min(procs, key=_io_rank).ioprio


def _io_rank(p) -> tuple[int, int]:
    """Lower is more urgent: RT before BE (and NONE, which is BE) before IDLE."""
    cls, data = p.ioprio >> IOPRIO_CLASS_SHIFT, p.ioprio & 7
    return ({IOPRIO_CLASS_RT: 0, IOPRIO_CLASS_IDLE: 2}.get(cls, 1), data)


@syscall("ioprio_set", note="kept per process; the block layer has no I/O scheduler to weigh it")
def sys_ioprio_set(t, which, who, ioprio, *_):
    ioprio &= 0xFFFF
    cls, data = ioprio >> IOPRIO_CLASS_SHIFT, ioprio & 0x1FFF
    if cls == IOPRIO_CLASS_RT and not capable(t.proc.creds, CAP_SYS_ADMIN):
        raise KernelError(E.EPERM)
    if cls > IOPRIO_CLASS_IDLE or (cls in (IOPRIO_CLASS_RT, IOPRIO_CLASS_BE) and data > 7) \
            or (cls == IOPRIO_CLASS_NONE and data):
        raise KernelError(E.EINVAL)
    procs = _io_targets(t, s32(which), s32(who))
    if not procs:
        raise KernelError(E.ESRCH)
    for p in procs:
        _may_change(t, p)
        p.ioprio = ioprio
    return 0
