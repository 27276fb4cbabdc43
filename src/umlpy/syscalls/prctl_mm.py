"""prctl(PR_SET_MM, ...): a privileged process moves where the kernel
says its code, data, stack, argv and environment are (Linux's
prctl_set_mm), as systemd does to give each service's process its own
name in /proc/PID/cmdline and ps.  The fields are checked together as
validate_prctl_map_addr checks them, then committed; /proc shows them
(procfs/target.layout, pid.py's cmdline and environ).

PR_SET_MM_MAP sets every field at once (CRIU's restore), PR_SET_MM_MAP_SIZE
tells its struct's size, PR_SET_MM_AUXV replaces what /proc/PID/auxv
shows.  Not done here, EINVAL with a log line: PR_SET_MM_EXE_FILE (and
PR_SET_MM_MAP's exe_fd), which would change /proc/PID/exe."""
from __future__ import annotations

import struct

from arch_um.memory import TASK_SIZE
from umlpy.abi import capability as K
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.fs.procfs.target import layout
from umlpy.kernel import printk, userns
from umlpy.kernel.cred import need
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import MMAP_MIN_ADDR

PR_SET_MM = 35
(START_CODE, END_CODE, START_DATA, END_DATA, START_STACK, START_BRK, BRK, ARG_START, ARG_END,
 ENV_START, ENV_END, AUXV, EXE_FILE, MAP, MAP_SIZE) = range(1, 16)
_FIELDS = {START_CODE: "start_code", END_CODE: "end_code", START_DATA: "start_data", END_DATA: "end_data",
           START_STACK: "start_stack", ARG_START: "arg_start", ARG_END: "arg_end",
           ENV_START: "env_start", ENV_END: "env_end", START_BRK: "start_brk", BRK: "brk"}
_NEEDS_VMA = (START_STACK, ARG_START, ARG_END, ENV_START, ENV_END)
# struct prctl_mm_map: eleven addresses, auxv pointer, auxv_size, exe_fd
_MM_MAP = struct.Struct("<11QQII")
_MAP_KEYS = ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack",
             "arg_start", "arg_end", "env_start", "env_end")
AT_VECTOR_SIZE = 2 * (2 + 20 + 1 + 3)      # mm->saved_auxv's longs (AT_VECTOR_SIZE_ARCH 3 on x86-64)


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
    if opt in (MAP, MAP_SIZE):
        return _set_map(t, opt, addr, a4)
    need(t.proc.creds, K.CAP_SYS_RESOURCE)
    if opt == EXE_FILE:
        printk.pr_notice("prctl PR_SET_MM_EXE_FILE not supported")
        raise KernelError(E.EINVAL)
    if opt == AUXV:
        t.proc.mm.saved_auxv = _auxv_from(t, addr, a4)
        return 0
    if opt not in _FIELDS or not MMAP_MIN_ADDR <= addr < TASK_SIZE:
        raise KernelError(E.EINVAL)
    proc = t.proc
    m = _current(proc)
    m[_FIELDS[opt]] = addr
    if not _valid(t, m):
        raise KernelError(E.EINVAL)
    if opt in _NEEDS_VMA and not any(e > addr for _s, e, _c in proc.mm.ranges):
        raise KernelError(E.EFAULT)     # find_vma: no mapping at or above addr
    _commit(proc.mm, m)
    return 0


def _commit(mm, m: dict[str, int]) -> None:
    mm.start_stack = m["start_stack"]
    mm.brk_start, mm.brk = m["start_brk"], m["brk"]
    mm.arg_range = (m["arg_start"], m["arg_end"])
    mm.env_range = (m["env_start"], m["env_end"])
    mm.layout_set = {k: m[k] for k in ("start_code", "end_code", "start_data", "end_data")}


def _auxv_from(t, addr: int, n: int) -> bytes:
    """prctl_set_auxv's copy: at most mm->saved_auxv's size (EINVAL), its
    last pair always AT_NULL; what /proc/PID/auxv shows, up to the first
    AT_NULL."""
    size = AT_VECTOR_SIZE * 8
    if n > size:
        raise KernelError(E.EINVAL)
    words = bytearray(t.proc.mm.saved_auxv[:size].ljust(size, b"\0"))
    words[:n] = t.mem.read(addr, n)
    words[size - 16:] = bytes(16)
    for i in range(0, size, 16):
        if not int.from_bytes(words[i:i + 8], "little"):
            return bytes(words[:i + 16])
    return bytes(words)


def _set_map(t, opt: int, addr: int, size: int) -> int:
    """prctl_set_mm_map: the size of struct prctl_mm_map, or all of its
    fields checked together (validate_prctl_map_addr) and set; an exe_fd
    needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) in the caller's user
    namespace."""
    if opt == MAP_SIZE:
        t.mem.write(addr, struct.pack("<I", _MM_MAP.size))
        return 0
    if size != _MM_MAP.size:
        raise KernelError(E.EINVAL)
    *vals, auxv, auxv_size, exe_fd = _MM_MAP.unpack(t.mem.read(addr, _MM_MAP.size))
    m = dict(zip(_MAP_KEYS, vals))
    if not _valid(t, m):
        raise KernelError(E.EINVAL)
    saved = None
    if auxv_size:
        if not auxv or auxv_size > AT_VECTOR_SIZE * 8:
            raise KernelError(E.EINVAL)
        saved = _auxv_from(t, auxv, auxv_size)
    if exe_fd != 0xFFFFFFFF:
        if not userns.checkpoint_restore_capable(t.proc.creds, t.proc.creds.user_ns):
            raise KernelError(E.EPERM)
        printk.pr_notice("prctl PR_SET_MM_MAP with an exe_fd not supported")
        raise KernelError(E.EINVAL)
    _commit(t.proc.mm, m)
    if saved is not None:
        t.proc.mm.saved_auxv = saved
    return 0
