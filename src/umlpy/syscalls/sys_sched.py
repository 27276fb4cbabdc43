"""Scheduling as the guest sees it: one CPU, nice values, policies.

The guest machine has one virtual CPU (CPU 0): every affinity mask is that
CPU, a mask without it is EINVAL as on a machine where those CPUs are
offline, and getcpu (the vDSO's too, kernel/vdso.py) says CPU 0.  Policies,
priorities and nice values are kept per thread (kernel/task.SchedState),
with Linux's rules for setting them (__sched_setscheduler), and shown in
/proc; the host schedules the guest's threads as it likes (they are host
threads), so they order nothing, like priorities on an idle machine.
"""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYS_NICE
from umlpy.abi import structs
from umlpy.abi.syscall_nr import NAMES
from umlpy.kernel.cred import capable
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import (MAX_RT_PRIO, SCHED_BATCH, SCHED_DEADLINE, SCHED_FIFO, SCHED_IDLE,
                               SCHED_NORMAL, SCHED_RR, SchedState)
from umlpy.syscalls.table import syscall
from umlpy.syscalls.util import put_u32, s32

SCHED_RESET_ON_FORK = 0x40000000
SETPARAM_POLICY = -1
VALID_POLICIES = (SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE)
RT_POLICIES = (SCHED_FIFO, SCHED_RR)
FAIR_POLICIES = (SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE)

SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN = 0x01, 0x02, 0x04
SCHED_FLAG_KEEP_POLICY, SCHED_FLAG_KEEP_PARAMS = 0x08, 0x10
SCHED_FLAG_UTIL_CLAMP = 0x20 | 0x40
SCHED_FLAG_ALL = 0x7F
SCHED_FLAG_SUGOV = 0x10000000
SCHED_DL_FLAGS = SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN | SCHED_FLAG_SUGOV

# struct sched_attr: size, policy, flags, nice, priority, runtime, deadline,
# period, util_min, util_max (the last two from VER1)
_ATTR = struct.Struct("<IIQiIQQQII")
SCHED_ATTR_SIZE_VER0, SCHED_ATTR_SIZE_VER1 = 48, _ATTR.size

# SCHED_DEADLINE: parameters in ns, periods within sched_dl_period_min/max
# (100 us .. 2^22 us), and all deadline tasks together may reserve at most
# sched_rt_runtime_us / sched_rt_period_us (950000 / 1000000) of the one CPU
DL_SCALE = 10
DL_PERIOD_MIN_NS, DL_PERIOD_MAX_NS = 100 * 1000, (1 << 22) * 1000
BW_SHIFT = 20
DL_BW_LIMIT = (950_000 << BW_SHIFT) // 1_000_000


def _task(t, pid: int):
    """find_process_by_pid: the thread pid names (0: the caller), ESRCH if
    none; a zombie's leader is found until it is reaped, as Linux's pids
    stay hashed until release_task."""
    if pid == 0:
        return t
    task = t.kernel.procs.find_task_or_zombie(t.proc, pid) if pid > 0 else None
    if task is None:
        raise KernelError(E.ESRCH)
    return task


def _pid_arg(pid: int) -> int:
    """The pid of a sched_* call that refuses a negative one (EINVAL)."""
    pid = s32(pid)
    if pid < 0:
        raise KernelError(E.EINVAL)
    return pid


def _same_owner(t, target) -> bool:
    """Linux's check_same_owner: the caller's euid is the target's uid or euid."""
    c, tc = t.proc.creds, target.proc.creds
    return c.euid in (tc.uid, tc.euid)


def _may_change(t, target) -> None:
    """The owner, or CAP_SYS_NICE (affinity, nice, I/O priority)."""
    if not _same_owner(t, target) and not capable(t.proc.creds, CAP_SYS_NICE):
        raise KernelError(E.EPERM)


@syscall("sched_yield")
def sys_sched_yield(t, *_):
    return 0


@syscall("sched_getaffinity")
def sys_sched_getaffinity(t, pid, size, mask, *_):
    if size < 8 or size & 7:
        raise KernelError(E.EINVAL)
    _task(t, s32(pid))
    t.mem.write(mask, struct.pack("<Q", 1))
    return 8


@syscall("sched_setaffinity", note="one CPU: masks must include CPU 0")
def sys_sched_setaffinity(t, pid, size, mask, *_):
    data = t.mem.read(mask, min(size, 8)) if size else b""
    target = _task(t, s32(pid))
    _may_change(t, target)
    if not data or not data[0] & 1:
        raise KernelError(E.EINVAL)
    return 0


@syscall("getcpu")
def sys_getcpu(t, cpu, node, *_):
    put_u32(t, cpu, 0)
    put_u32(t, node, 0)
    return 0


def _prio_targets(t, which: int, who: int) -> list:
    """The threads getpriority/setpriority mean: one (by thread id), a
    process group's or a user's (who 0: the caller's own)."""
    if which == C.PRIO_PROCESS:
        if who == 0:
            return [t]
        task = t.kernel.procs.find_task_or_zombie(t.proc, who) if who > 0 else None
        return [task] if task is not None else []
    live = [p for p in t.kernel.procs.by_pid.values() if not p.exited]
    if which == C.PRIO_PGRP:
        pgid = t.kernel.procs.global_nr(t.proc, who) if who else t.proc.pgid
        # who 0: the caller's own group, init's (0) too
        procs = [p for p in live if p.pgid == pgid] if pgid or not who else []
    elif which == C.PRIO_USER:
        procs = [p for p in live if p.creds.uid == (who or t.proc.creds.uid)]
    else:
        raise KernelError(E.EINVAL)
    return [x for p in procs for x in p.threads]


def _can_nice(task, nice: int) -> bool:
    """can_nice without its CAP_SYS_NICE half (the callers ask for that
    once): within the target's RLIMIT_NICE, counted as 20 - nice."""
    return 20 - nice <= task.proc.rlimit(C.RLIMIT_NICE)[0]


@syscall("getpriority")
def sys_getpriority(t, which, who, *_):
    tasks = _prio_targets(t, s32(which), s32(who))
    if not tasks:
        raise KernelError(E.ESRCH)
    return max(20 - x.sched.nice for x in tasks)      # 40..1: never negative, as Linux's


@syscall("setpriority")
def sys_setpriority(t, which, who, prio, *_):
    nice = min(max(s32(prio), C.MIN_NICE), C.MAX_NICE)
    tasks = _prio_targets(t, s32(which), s32(who))
    if not tasks:
        raise KernelError(E.ESRCH)
    privileged = capable(t.proc.creds, CAP_SYS_NICE)
    err = 0
    for x in tasks:       # as Linux, every target is tried and the last error told
        try:
            _may_change(t, x)
            if nice < x.sched.nice and not _can_nice(x, nice) and not privileged:
                raise KernelError(E.EACCES)     # lowering it beyond RLIMIT_NICE
            x.sched.nice = nice
        except KernelError as e:
            err = e.errno
    if err:
        raise KernelError(err)
    return 0


# -- policies ---------------------------------------------------------------------

def _checkparam_dl(runtime: int, deadline: int, period: int) -> bool:
    """__checkparam_dl: 1024 ns <= runtime <= deadline <= period (the
    deadline when 0), no sign bits, the period within Linux's bounds."""
    if deadline == 0 or runtime < 1 << DL_SCALE or (deadline | period) >> 63:
        return False
    period = period or deadline
    return runtime <= deadline <= period and DL_PERIOD_MIN_NS <= period <= DL_PERIOD_MAX_NS


def _dl_bw(s: SchedState) -> int:
    """A deadline task's share of the CPU, in 1 / 2^20 (to_ratio)."""
    return (s.dl_runtime << BW_SHIFT) // (s.dl_period or s.dl_deadline)


def _dl_overflow(t, target, attr: dict) -> bool:
    """sched_dl_overflow: would the deadline tasks reserve more than the CPU has?"""
    period = attr["period"] or attr["deadline"]
    new = (attr["runtime"] << BW_SHIFT) // period
    old = _dl_bw(target.sched) if target.sched.policy == SCHED_DEADLINE else 0
    if new == old:
        return False
    total = sum(_dl_bw(x.sched) for p in t.kernel.procs.by_pid.values() if not p.exited
                for x in p.threads if x.sched.policy == SCHED_DEADLINE)
    return DL_BW_LIMIT < total - old + new


def _setscheduler(t, target, attr: dict) -> None:
    """__sched_setscheduler from a user: attr holds policy (SETPARAM_POLICY:
    keep it), flags, nice, priority and the deadline parameters."""
    s = target.sched
    policy = attr["policy"]
    if policy == SETPARAM_POLICY:
        reset_on_fork, policy = s.reset_on_fork, s.policy
    else:
        reset_on_fork = bool(attr["flags"] & SCHED_FLAG_RESET_ON_FORK)
        if policy not in VALID_POLICIES:
            raise KernelError(E.EINVAL)
    flags, prio = attr["flags"], attr["priority"]
    if flags & ~(SCHED_FLAG_ALL | SCHED_FLAG_SUGOV) or prio > MAX_RT_PRIO - 1:
        raise KernelError(E.EINVAL)
    if (policy == SCHED_DEADLINE and not _checkparam_dl(attr["runtime"], attr["deadline"], attr["period"])) \
            or (policy in RT_POLICIES) != (prio != 0):
        raise KernelError(E.EINVAL)
    if not capable(t.proc.creds, CAP_SYS_NICE):
        if policy in FAIR_POLICIES and attr["nice"] < s.nice and not _can_nice(target, attr["nice"]):
            raise KernelError(E.EPERM)
        if policy in RT_POLICIES:
            rtprio = target.proc.rlimit(C.RLIMIT_RTPRIO)[0]
            if policy != s.policy and not rtprio:
                raise KernelError(E.EPERM)      # may not take a real-time policy
            if prio > s.rt_priority and prio > rtprio:
                raise KernelError(E.EPERM)      # may not raise its priority
        if policy == SCHED_DEADLINE:
            raise KernelError(E.EPERM)
        if s.policy == SCHED_IDLE and policy != SCHED_IDLE and not _can_nice(target, s.nice):
            raise KernelError(E.EPERM)
        if not _same_owner(t, target):
            raise KernelError(E.EPERM)
        if s.reset_on_fork and not reset_on_fork:
            raise KernelError(E.EPERM)
    if flags & SCHED_FLAG_SUGOV:
        raise KernelError(E.EINVAL)
    if flags & SCHED_FLAG_UTIL_CLAMP:
        raise KernelError(E.EOPNOTSUPP)     # no CONFIG_UCLAMP_TASK
    if policy == SCHED_DEADLINE and _dl_overflow(t, target, attr):
        raise KernelError(E.EBUSY)
    s.reset_on_fork = reset_on_fork
    s.policy = policy
    if policy == SCHED_DEADLINE:
        s.dl_runtime, s.dl_deadline = attr["runtime"], attr["deadline"]
        s.dl_period = attr["period"] or attr["deadline"]
        s.dl_flags = flags & SCHED_DL_FLAGS
    else:
        s.dl_runtime = s.dl_deadline = s.dl_period = s.dl_flags = 0
        if policy in FAIR_POLICIES:
            s.nice = attr["nice"]
    s.rt_priority = prio


def _params_of(s: SchedState, attr: dict) -> None:
    """get_params: the parameters of the task's own policy into attr."""
    if s.policy == SCHED_DEADLINE:
        attr.update(priority=s.rt_priority, runtime=s.dl_runtime, deadline=s.dl_deadline,
                    period=s.dl_period, flags=(attr["flags"] & ~SCHED_DL_FLAGS) | s.dl_flags)
    elif s.policy in RT_POLICIES:
        attr["priority"] = s.rt_priority
    else:
        attr["nice"] = s.nice


def _legacy(t, pid: int, policy: int, param: int) -> int:
    """sched_setscheduler and sched_setparam (policy SETPARAM_POLICY): a
    struct sched_param of one int, the nice value kept."""
    pid = s32(pid)
    if not param or pid < 0:
        raise KernelError(E.EINVAL)
    prio = struct.unpack("<I", t.mem.read(param, 4))[0]
    target = _task(t, pid)
    flags = 0
    if policy != SETPARAM_POLICY and policy & SCHED_RESET_ON_FORK:
        flags, policy = SCHED_FLAG_RESET_ON_FORK, policy & ~SCHED_RESET_ON_FORK
    _setscheduler(t, target, dict(policy=policy, flags=flags, nice=target.sched.nice, priority=prio,
                                  runtime=0, deadline=0, period=0))
    return 0


@syscall("sched_setscheduler", note="every policy, kept per thread; the host schedules the threads")
def sys_sched_setscheduler(t, pid, policy, param, *_):
    policy = s32(policy)
    if policy < 0:
        raise KernelError(E.EINVAL)
    return _legacy(t, pid, policy, param)


@syscall("sched_setparam")
def sys_sched_setparam(t, pid, param, *_):
    return _legacy(t, pid, SETPARAM_POLICY, param)


@syscall("sched_getscheduler")
def sys_sched_getscheduler(t, pid, *_):
    s = _task(t, _pid_arg(pid)).sched
    return s.policy | (SCHED_RESET_ON_FORK if s.reset_on_fork else 0)


@syscall("sched_getparam")
def sys_sched_getparam(t, pid, param, *_):
    pid = _pid_arg(pid)
    if not param:
        raise KernelError(E.EINVAL)
    s = _task(t, pid).sched
    t.mem.write(param, struct.pack("<i", s.rt_priority if s.policy in RT_POLICIES else 0))
    return 0


def _read_attr(t, uattr: int) -> dict:
    """sched_copy_attr: a struct sched_attr of the size it says it has (0:
    VER0); one out of bounds, or longer than this kernel's with nonzero
    bytes past it, is E2BIG with this kernel's size stored."""
    size = struct.unpack("<I", t.mem.read(uattr, 4))[0] or SCHED_ATTR_SIZE_VER0
    if not SCHED_ATTR_SIZE_VER0 <= size <= C.PAGE_SIZE:
        return _too_big(t, uattr)
    raw = t.mem.read(uattr, size)
    if any(raw[_ATTR.size:]):
        return _too_big(t, uattr)
    (_, policy, flags, nice, prio, runtime, deadline, period, _umin, _umax) = _ATTR.unpack(
        raw[:_ATTR.size].ljust(_ATTR.size, b"\0"))
    if flags & SCHED_FLAG_UTIL_CLAMP and size < SCHED_ATTR_SIZE_VER1:
        raise KernelError(E.EINVAL)
    return dict(policy=s32(policy), flags=flags, nice=min(max(nice, C.MIN_NICE), C.MAX_NICE),
                priority=prio, runtime=runtime, deadline=deadline, period=period)


def _too_big(t, uattr: int):
    try:
        t.mem.write(uattr, struct.pack("<I", _ATTR.size))
    except Exception:
        pass        # put_user's failure is not reported
    raise KernelError(E.E2BIG)


@syscall("sched_setattr", note="policies and parameters kept per thread; no utilization clamps (EOPNOTSUPP)")
def sys_sched_setattr(t, pid, uattr, flags, *_):
    pid = s32(pid)
    if not uattr or pid < 0 or flags & 0xFFFFFFFF:
        raise KernelError(E.EINVAL)
    attr = _read_attr(t, uattr)
    if attr["policy"] < 0:
        raise KernelError(E.EINVAL)
    if attr["flags"] & SCHED_FLAG_KEEP_POLICY:
        attr["policy"] = SETPARAM_POLICY
    target = _task(t, pid)
    if attr["flags"] & SCHED_FLAG_KEEP_PARAMS:
        _params_of(target.sched, attr)
    _setscheduler(t, target, attr)
    return 0


@syscall("sched_getattr")
def sys_sched_getattr(t, pid, uattr, usize, flags, *_):
    pid, usize = s32(pid), usize & 0xFFFFFFFF
    if not uattr or pid < 0 or not SCHED_ATTR_SIZE_VER0 <= usize <= C.PAGE_SIZE or flags & 0xFFFFFFFF:
        raise KernelError(E.EINVAL)
    s = _task(t, pid).sched
    attr = dict(flags=SCHED_FLAG_RESET_ON_FORK if s.reset_on_fork else 0, nice=0, priority=0,
                runtime=0, deadline=0, period=0)
    _params_of(s, attr)
    size = min(usize, _ATTR.size)
    data = _ATTR.pack(size, s.policy, attr["flags"] & SCHED_FLAG_ALL, attr["nice"], attr["priority"],
                      attr["runtime"], attr["deadline"], attr["period"], 0, 0)
    t.mem.write(uattr, data[:size])
    return 0


@syscall("sched_get_priority_max", "sched_get_priority_min")
def sys_sched_priority_range(t, policy, *_):
    policy = s32(policy)
    if policy in RT_POLICIES:
        return MAX_RT_PRIO - 1 if NAMES[t.in_syscall] == "sched_get_priority_max" else 1
    if policy in VALID_POLICIES:
        return 0
    raise KernelError(E.EINVAL)


@syscall("sched_rr_get_interval")
def sys_sched_rr_get_interval(t, pid, ts, *_):
    """SCHED_RR's quantum for a SCHED_RR thread; 0 for the others (the fair
    class's slice is under a jiffy on one CPU at HZ=100; FIFO and deadline
    threads have none)."""
    s = _task(t, _pid_arg(pid)).sched
    ns = t.kernel.tunables.rr_timeslice_ns() if s.policy == SCHED_RR else 0
    t.mem.write(ts, structs.pack_timespec(ns))
    return 0


IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE = 0, 1, 2, 3
IOPRIO_CLASS_SHIFT = 13


def _io_targets(t, which: int, who: int) -> list:
    """The processes ioprio_get/ioprio_set mean (kept per process)."""
    if which not in (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER):
        raise KernelError(E.EINVAL)
    tasks = _prio_targets(t, which - 1, who)     # the PRIO_* numbering, one lower
    return list({id(x.proc): x.proc for x in tasks}.values())


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
        _may_change(t, p.leader)
        p.ioprio = ioprio
    return 0
