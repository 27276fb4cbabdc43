"""prctl(PR_SET_MM, ...): a privileged process moves where the kernel
says its code, data, stack, argv and environment are (Linux's
prctl_set_mm), as systemd does to give each service's process its own
name in /proc/PID/cmdline and ps.  The fields are checked together as
validate_prctl_map_addr checks them, then committed; /proc shows them
(procfs/target.layout, pid.py's cmdline and environ).

Not done here, each EINVAL with a log line: PR_SET_MM_START_BRK and BRK
(which would move the heap the brk syscall grows), EXE_FILE and AUXV;
PR_SET_MM_MAP and MAP_SIZE are CONFIG_CHECKPOINT_RESTORE's, which this
kernel is built without."""
from __future__ import annotations

from arch_um.memory import TASK_SIZE
from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.target import layout
from umlpy.kernel import printk
from umlpy.kernel.cred import need
from umlpy.kernel.errors import KernelError
from umlpy.kernel.userfaultfd import MMAP_MIN_ADDR

PR_SET_MM = 35
(START_CODE, END_CODE, START_DATA, END_DATA, START_STACK, START_BRK, BRK, ARG_START, ARG_END,
 ENV_START, ENV_END, AUXV, EXE_FILE, MAP, MAP_SIZE) = range(1, 16)
_FIELDS = {START_CODE: "start_code", END_CODE: "end_code", START_DATA: "start_data", END_DATA: "end_data",
           START_STACK: "start_stack", ARG_START: "arg_start", ARG_END: "arg_end",
           ENV_START: "env_start", ENV_END: "env_end"}
_NEEDS_VMA = (START_STACK, ARG_START, ARG_END, ENV_START, ENV_END)
_NOT_DONE = {START_BRK: "START_BRK", BRK: "BRK", AUXV: "AUXV", EXE_FILE: "EXE_FILE"}


def _current(proc) -> dict[str, int]:
    mm = proc.mm
    lay = layout(proc)
    return {**lay, "start_stack": mm.start_stack, "start_brk": mm.brk_start, "brk": mm.brk,
            "arg_start": mm.arg_range[0], "arg_end": mm.arg_range[1],
            "env_start": mm.env_range[0], "env_end": mm.env_range[1]}


def _valid(t, m: dict[str, int]) -> bool:
    """validate_prctl_map_addr: every field inside the address space, the
    pairs in order, the data within RLIMIT_DATA."""
    if any(not MMAP_MIN_ADDR <= v < TASK_SIZE for v in m.values()):
        return False
    if not (m["start_code"] < m["end_code"] and m["start_data"] <= m["end_data"]
            and m["start_brk"] <= m["brk"] and m["arg_start"] <= m["arg_end"]
            and m["env_start"] <= m["env_end"]):
        return False
    limit = t.proc.rlimit(C.RLIMIT_DATA)[0]
    # check_data_rlimit: the heap and the data together
    return m["brk"] - m["start_brk"] + m["end_data"] - m["start_data"] <= limit


def set_mm(t, opt: int, addr: int, a4: int, a5: int) -> int:
    if a5 or (a4 and opt not in (AUXV, MAP, MAP_SIZE)):
        raise KernelError(E.EINVAL)
    need(t.proc.creds, K.CAP_SYS_RESOURCE)
    if opt in _NOT_DONE:
        printk.pr_notice(f"prctl PR_SET_MM_{_NOT_DONE[opt]} not supported")
        raise KernelError(E.EINVAL)
    if opt not in _FIELDS or not MMAP_MIN_ADDR <= addr < TASK_SIZE:
        raise KernelError(E.EINVAL)
    proc = t.proc
    mm = proc.mm
    m = _current(proc)
    m[_FIELDS[opt]] = addr
    if not _valid(t, m):
        raise KernelError(E.EINVAL)
    if opt in _NEEDS_VMA and not any(e > addr for _s, e, _c in mm.ranges):
        raise KernelError(E.EFAULT)     # find_vma: no mapping at or above addr
    mm.start_stack = m["start_stack"]
    mm.arg_range = (m["arg_start"], m["arg_end"])
    mm.env_range = (m["env_start"], m["env_end"])
    mm.layout_set = {k: m[k] for k in ("start_code", "end_code", "start_data", "end_data")}
    return 0
