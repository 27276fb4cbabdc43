"""ptrace: running guest tasks until they trap, and injecting host syscalls.

The hot path is `EventLoop.run` (events.py): one cffi call resumes the tasks
the kernel answered and waits for the next interrupt.  Registers live in cffi
structs owned by the task; the kernel reads and writes their fields and says
how much changed (rax only -> POKEUSER, 0.2 us; more -> SETREGS, 0.6 us).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from arch_um import ptrace_denied
from arch_um._hostcall import ffi, lib
from arch_um.stub import STUB_CMPXCHG, STUB_SYSCALL

PTRACE_CONT = 7
PTRACE_SYSEMU = 31
PTRACE_SYSEMU_SINGLESTEP = 32   # a resume op: as SYSEMU, and a SIGTRAP after one instruction
PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACEVFORK = 0x4
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000
OPTIONS = (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
           | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL)
OP_NOTIF = 0x10000        # a resume that answers a seccomp notification
ERESTARTSYS = 512

EVENT_FORK = 1
EVENT_VFORK = 2
EVENT_CLONE = 3
EVENT_EXEC = 4
EVENT_SECCOMP = 7
EVENT_STOP = 128

# how a resume writes registers back
REGS_CLEAN = 0
REGS_RAX = 1
REGS_ALL = 2

REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
             "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
             "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")


class HostError(OSError):
    pass


class TaskGone(HostError):
    """The task died while the kernel brought it to a stop."""


def new_regs():
    return ffi.new("struct user_regs_struct *")


_STRUCT_KIND = ffi.typeof("struct user_regs_struct")


def copy_regs(dst, src) -> None:
    """Copy registers; src may be a pointer or a struct field of an event
    (a struct assignment: a fifth of memmove's cost through cffi)."""
    dst[0] = src if ffi.typeof(src) is _STRUCT_KIND else src[0]


def spawn(path: str, fast: list[int] | None = None) -> int:
    """Start the first guest process, stopped at its exec of the stub.
    With `fast` (syscall numbers), the guests' syscalls trap through
    seccomp from then on (see the seccomp section below): the numbers in
    `fast` as notifications, the rest as ptrace stops."""
    nums = ffi.new("int[]", fast) if fast else ffi.NULL
    pid = lib.umlpy_spawn(path.encode(), OPTIONS, nums, len(fast) if fast else 0, STUB_SYSCALL + 2)
    _light.clear()
    if pid == -errno.EOPNOTSUPP:
        raise HostError(errno.EOPNOTSUPP, "the host would not hand over the seccomp listener")
    if pid in (-errno.EPERM, -errno.EACCES):
        raise HostError(-pid, f"cannot ptrace the guests: {ptrace_denied.reason()}")
    if pid < 0:
        raise HostError(-pid, "spawning the first guest process failed")
    return pid


# -- the seccomp trap path ---------------------------------------------------
#
# A syscall of the fast set reaches the kernel as a seccomp notification:
# the task waits in the host kernel, not in a ptrace stop, and the kernel
# knows only its number, arguments and rip.  Such a task is "light" until
# answered (OP_NOTIF, the result only).  Whatever needs more (its other
# registers, an injection, a signal frame) first brings it to a real stop
# with ensure_stopped; every function below that touches a stopped tracee
# does so itself, so a light task is never handed to ptrace by mistake.

_light: dict[int, object] = {}      # host pid -> the task's regs, while light
_died: list[tuple[int, int]] = []   # (pid, status) seen while stopping a light task
_stale: set[int] = set()            # stopped light tasks whose stop event is still to come


def seccomp_listener() -> int:
    """The notification fd to watch, or -1 on the ptrace path."""
    return lib.umlpy_seccomp_listener()


def seccomp_on() -> bool:
    """Whether guests trap through seccomp (else ptrace alone)."""
    return lib.umlpy_seccomp_listener() >= 0


def load_stop(dst, evs, i: int, pid: int, notif: int, msg: int) -> None:
    """Take the registers of syscall event i into the task's (dst); pid,
    notif and msg are the event's (the scheduler has read them already)."""
    dst[0] = evs[i].regs
    if notif:
        _light[pid] = (msg, dst)


def light_answer(pid: int) -> int | None:
    """The notification id a resume of pid answers, if it is light."""
    e = _light.pop(pid, None)
    return None if e is None else e[0]


def ensure_stopped(pid: int) -> None:
    """Bring a light task to a ptrace stop, its registers in its regs."""
    e = _light.pop(pid, None)
    if e is None:
        return
    st = ffi.new("int *")
    regs = e[1]
    rax = regs.rax          # what the kernel already made the result, if anything
    r = lib.umlpy_notif_stop(pid, regs, st)
    regs.rax = rax
    if r == 1:          # its stop was reaped with this turn's events: that event is stale
        _stale.add(pid)
        return
    if r == -errno.ESRCH:
        _died.append((pid, st[0]))
        raise TaskGone(errno.ESRCH, "the task died in a seccomp notification")
    if r < 0:
        raise HostError(-r, "stopping a task in a seccomp notification")


def converted(pid: int, regs) -> bool:
    """A stop the kernel has already (True: the event says nothing new).
    Either the task is held light (an interrupt sent before its
    notification was taken): it is now stopped; its registers are taken,
    keeping what the kernel already knows of the syscall.  Or
    ensure_stopped took this very stop while the event waited its turn."""
    if _stale and pid in _stale:
        _stale.discard(pid)
        return True
    e = _light.pop(pid, None)
    if e is None:
        return False
    rax = regs.rax
    getregs(pid, regs)
    regs.rax = rax
    return True


def forget(pid: int) -> None:
    """The task is gone."""
    _light.pop(pid, None)


def take_died() -> list[tuple[int, int]]:
    """Exits seen by ensure_stopped, for the event loop to report (the
    loop asks at every turn: nothing is copied when there are none).  The
    last turn's events are all handled now: no stale stop is still to come."""
    if _stale:
        _stale.clear()
    if not _died:
        return _died
    out = _died[:]
    _died.clear()
    return out


def getregs(pid: int, regs) -> None:
    ensure_stopped(pid)
    r = lib.umlpy_getregs(pid, regs)
    if r < 0:
        raise HostError(-r, "PTRACE_GETREGS")


def setregs(pid: int, regs) -> None:
    if pid in _light:
        raise HostError(errno.EBUSY, "PTRACE_SETREGS on a task in a seccomp notification")
    r = lib.umlpy_setregs(pid, regs)
    if r < 0:
        raise HostError(-r, "PTRACE_SETREGS")


def resume(pid: int, regs, how: int, op: int = PTRACE_SYSEMU, sig: int = 0) -> int:
    ensure_stopped(pid)
    res = ffi.new("struct umlpy_resume *")
    res.pid, res.op, res.sig, res.how = pid, op, sig, how
    res.rax = regs.rax & 0xFFFFFFFFFFFFFFFF
    res.regs = regs
    return lib.umlpy_resume(res)


def wait_pid(pid: int) -> tuple[int, int]:
    """Block until this host task changes state: (status, event message)."""
    st = ffi.new("int *")
    msg = ffi.new("unsigned long *")
    r = lib.umlpy_wait_pid(pid, st, msg)
    if r < 0:
        raise HostError(-r, "waitpid")
    return st[0], msg[0]


_XSTATE_MAX = 1 << 16


def get_xstate(pid: int) -> bytes:
    ensure_stopped(pid)
    buf = ffi.new("char[]", _XSTATE_MAX)
    n = lib.umlpy_getxstate(pid, buf, _XSTATE_MAX)
    if n < 0:
        raise HostError(-n, "PTRACE_GETREGSET NT_X86_XSTATE")
    return bytes(ffi.buffer(buf, n))


def xstate_component_ends(features: int) -> int:
    """Where the last of the xstate components in the mask `features` ends
    in the standard XSAVE layout (CPUID leaf 0xD): at least the legacy
    area and the XSAVE header (576 bytes)."""
    end = 576
    size = ffi.new("long *")
    for n in range(2, 64):
        if features >> n & 1:
            off = lib.umlpy_xsave_component(n, size)
            if off > 0:
                end = max(end, off + size[0])
    return end


def set_xstate(pid: int, data: bytes) -> None:
    ensure_stopped(pid)
    buf = ffi.from_buffer(data)
    r = lib.umlpy_setxstate(pid, buf, len(data))
    if r < 0:
        raise HostError(-r, "PTRACE_SETREGSET NT_X86_XSTATE")


@dataclass
class Injected:
    result: int        # the syscall's return value (-errno on error)
    event: int         # ptrace event seen on the way (EVENT_FORK, EVENT_EXEC) or 0
    msg: int           # its message (the new child's host pid for EVENT_FORK)
    fault: int         # 0, or 1 if the tracee died, or the signal it took
    status: int


_args = ffi.new("long[6]")
_event = ffi.new("int *")
_msg = ffi.new("unsigned long *")
_fault = ffi.new("int *")
_status = ffi.new("int *")


def inject(pid: int, regs, nr: int, *args: int) -> Injected:
    """Run host syscall `nr` in the stopped tracee; its registers are kept."""
    ensure_stopped(pid)
    for i in range(6):
        a = args[i] if i < len(args) else 0
        _args[i] = a - (1 << 64) if a >= (1 << 63) else a
    r = lib.umlpy_inject(pid, regs, STUB_SYSCALL, nr, _args, _event, _msg, _fault, _status)
    return Injected(r, _event[0], _msg[0], _fault[0], _status[0])


def cmpxchg(pid: int, regs, addr: int, expected: int, new: int) -> int | None:
    """Atomically store the u32 `new` at addr if it holds `expected`, in the
    stopped tracee (the stub's `lock cmpxchg`, atomic against its other
    threads and processes sharing the page); the value found there, or
    None if addr is not mapped writable."""
    ensure_stopped(pid)
    _args[0] = addr - (1 << 64) if addr >= (1 << 63) else addr
    _args[1] = new
    for i in range(2, 6):
        _args[i] = 0
    r = lib.umlpy_inject(pid, regs, STUB_CMPXCHG, expected, _args, _event, _msg, _fault, _status)
    if _fault[0]:
        return None
    return r & 0xFFFFFFFF


def interrupt(pid: int) -> None:
    """Stop a running tracee (it reports PTRACE_EVENT_STOP)."""
    lib.umlpy_interrupt(pid)


def detach(pid: int) -> None:
    """Let a stopped tracee go on untraced (PTRACE_DETACH): an exiting
    thread stopped at its exit syscall's seccomp stop runs it and is gone."""
    lib.umlpy_detach(pid)
    forget(pid)


def stop_for_dump(pid: int, regs) -> bool:
    """The registers of a tracee the kernel last left running, for a core
    dump of its dying process: one already in a ptrace stop (reported but
    not yet handled) answers at once; else it is interrupted and its next
    stop, whatever it is, is taken here (the process is killed next, so
    the event loop needs it no more).  False if it is gone."""
    try:
        ensure_stopped(pid)
    except HostError:
        return False
    if lib.umlpy_getregs(pid, regs) == 0:
        return True
    interrupt(pid)
    try:
        status, _ = wait_pid(pid)
    except HostError:
        return False
    return status & 0x7f == 0x7f and lib.umlpy_getregs(pid, regs) == 0


def fault_info(pid: int) -> tuple[int, int]:
    """(si_code, si_addr) of the host signal the tracee is stopped with."""
    if pid in _light:
        return 0, 0
    code = ffi.new("int *")
    addr = ffi.new("unsigned long *")
    if lib.umlpy_getsiginfo(pid, code, addr) < 0:
        return 0, 0
    return code[0], addr[0]


def get_debugreg(pid: int, idx: int) -> int:
    """Debug register idx (0-7) of a host-stopped tracee (a guest tracer's PEEKUSER)."""
    ensure_stopped(pid)
    out = ffi.new("unsigned long *")
    r = lib.umlpy_debugreg(pid, idx, 0, 0, out)
    if r < 0:
        raise HostError(-r, "PTRACE_PEEKUSER u_debugreg")
    return out[0]


def set_debugreg(pid: int, idx: int, value: int) -> None:
    """Set debug register idx of a host-stopped tracee; the host checks the
    value (a kernel address, a bad DR7) as it does for any tracer."""
    ensure_stopped(pid)
    r = lib.umlpy_debugreg(pid, idx, 1, value & 0xFFFFFFFFFFFFFFFF, ffi.NULL)
    if r < 0:
        raise HostError(-r, "PTRACE_POKEUSER u_debugreg")
