"""A thread's scheduling attributes in a checkpoint: what Linux keeps per
task_struct and the sched_* calls, getpriority, PR_GET_TIMERSLACK and
/proc report (kernel/task.SchedState): the policy with its reset-on-fork
flag, the nice value, the real-time priority, SCHED_DEADLINE's runtime,
deadline, period and flags, the timer slack and the default slack a
PR_SET_TIMERSLACK of 0 goes back to.

The guest has one CPU and every affinity mask is that CPU
(syscalls/sys_sched.py), so there is no affinity to carry.

A restore takes them as __sched_setscheduler would have left them: a
policy Linux has, a nice value in [-20, 19], a real-time priority in
[1, 99] for SCHED_FIFO and SCHED_RR and 0 for the others, deadline
parameters that __checkparam_dl accepts (and 0 for the other policies),
and the deadline tasks together within the bandwidth sched_dl_overflow
allows; no permission is asked again (the image's tasks had them).
"""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.checkpoint import image
from umlpy.kernel.task import SCHED_DEADLINE, SchedState
from umlpy.syscalls import sys_sched as SS

U64 = 1 << 64
_FIELDS = ("policy", "nice", "rt_priority", "reset_on_fork", "dl_runtime", "dl_deadline", "dl_period",
           "dl_flags", "timer_slack_ns", "default_slack_ns")


def save(s: SchedState) -> dict:
    """A task's SchedState, field by field."""
    return {f: getattr(s, f) for f in _FIELDS}


def make(e: image.Reader) -> SchedState:
    """The SchedState a task's `sched` entry says, checked as the calls
    that set it check it (the bandwidth of all the deadline tasks is the
    caller's: check_bandwidth)."""
    s = SchedState(policy=e.int("policy", 0, 8), nice=e.int("nice", C.MIN_NICE, C.MAX_NICE + 1),
                   rt_priority=e.int("rt_priority", 0, SS.MAX_RT_PRIO), reset_on_fork=e.bool("reset_on_fork"),
                   dl_runtime=e.int("dl_runtime", 0, U64), dl_deadline=e.int("dl_deadline", 0, U64),
                   dl_period=e.int("dl_period", 0, U64), dl_flags=e.int("dl_flags", 0, SS.SCHED_DL_FLAGS + 1),
                   timer_slack_ns=e.int("timer_slack_ns", 1, U64),
                   default_slack_ns=e.int("default_slack_ns", 1, U64))
    bad = None
    if s.policy not in SS.VALID_POLICIES:
        bad = "not a scheduling policy"
    elif (s.policy in SS.RT_POLICIES) != (s.rt_priority != 0):
        bad = "a real-time priority that does not go with the policy"
    elif s.dl_flags & ~SS.SCHED_DL_FLAGS:
        bad = "deadline flags that are none"
    elif s.policy == SCHED_DEADLINE:
        if not SS._checkparam_dl(s.dl_runtime, s.dl_deadline, s.dl_period) or s.dl_period < s.dl_deadline:
            bad = "deadline parameters sched_setattr refuses"
    elif s.dl_runtime or s.dl_deadline or s.dl_period or s.dl_flags:
        bad = "deadline parameters without SCHED_DEADLINE"
    if bad is not None:
        raise image.ImageError(f"manifest: {e.where}: {bad}")
    return s


def check_bandwidth(tasks) -> None:
    """All the deadline tasks of the image together reserve no more of
    the CPU than sched_dl_overflow lets them."""
    total = sum(SS._dl_bw(t.sched) for t in tasks if t.sched.policy == SCHED_DEADLINE)
    if total > SS.DL_BW_LIMIT:
        raise image.ImageError("manifest: the deadline tasks reserve more than the CPU has")
