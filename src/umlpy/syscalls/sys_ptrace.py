"""ptrace(2) for guest tracers (kernel/ptrace.c, arch/x86/kernel/ptrace.c).

The stops themselves are kernel/ptracer.py's.  A tracer reaches only its
stopped tracee: the registers the kernel keeps for it (t.regs, written
back when it resumes), its FPU/xstate and debug registers through the
host's ptrace of the tracee's own host thread (the host validates the
values), and its guest memory.  Every offset, size, address and signal
number from the tracer is checked here first.
"""
from __future__ import annotations

import struct

from arch_um import ptrace as hptrace
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import ptrace as P
from umlpy.abi import signals as S
from umlpy.kernel import printk, ptracer, remote_vm
from umlpy.kernel.cred import ptrace_may_access
from umlpy.kernel.errors import KernelError
from umlpy.kernel.signal import pack_siginfo, user_siginfo
from umlpy.kernel.task import State
from umlpy.security import landlock
from umlpy.syscalls.table import PARTIAL, syscall
from umlpy.syscalls.util import put_u64, s32

MASK64 = (1 << 64) - 1
TASK_SIZE_MAX = (1 << 47) - 4096
USER_CS, USER_DS = 0x33, 0x2B
# the eflags bits a tracer may change: arch/x86's FLAG_MASK but TF (a trap
# flag would also step the kernel's own stub calls in the tracee's host
# thread: a tracer steps with PTRACE_SINGLESTEP, which is the host's)
FLAG_MASK = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x4000 | 0x10000 | 0x40000
_SEGMENTS = ("ds", "es", "fs", "gs")
_XSTATE_HDR = 512


def _valid_sig(sig: int) -> bool:
    return 0 <= sig <= S.NSIG


def _traceme(t) -> int:
    parent = t.proc.parent
    if t.ptrace is not None or parent is None or parent.exited:
        raise KernelError(E.EPERM)
    tracer = parent.threads[0] if parent.threads else None
    if tracer is not None and not landlock.may_ptrace(tracer.landlock, t.landlock):
        raise KernelError(E.EPERM)      # security_ptrace_traceme
    ptracer.link(t, parent)
    return 0


def _attach(t, pid: int, seize: bool, addr: int, flags: int) -> int:
    """PTRACE_ATTACH (a SIGSTOP follows) or PTRACE_SEIZE (no stop)."""
    if seize and addr:
        raise KernelError(E.EIO)
    if seize:
        _check_options(flags)
    target = t.kernel.procs.find_task(t.proc, pid)
    if target is None or target.state is State.DEAD:
        raise KernelError(E.ESRCH)
    if target.proc is t.proc or target.ptrace is not None or target.proc.exited \
            or not ptrace_may_access(t, target.proc, fscreds=False, target_task=target):
        raise KernelError(E.EPERM)
    ptracer.link(target, t.proc, seize, flags if seize else 0)
    ptracer.attach_stopped(t.kernel, target)
    if not seize:
        t.kernel.signals.send_task(target, S.SIGSTOP, C.SI_KERNEL, (0, 0))
    return 0


def _tracee(t, pid: int, stopped: bool = True):
    """ptrace_check_attach: the caller's tracee pid, in a ptrace-stop (a
    listening one is in none)."""
    target = t.kernel.procs.find_task(t.proc, pid)
    if target is None or target.ptrace is None or target.ptrace.tracer is not t.proc \
            or target.state is State.DEAD \
            or (stopped and (target.state is not State.TRACED or target.ptrace.listening)):
        raise KernelError(E.ESRCH)
    return target


_SECCOMP_OPTIONS = P.O_TRACESECCOMP | P.O_SUSPEND_SECCOMP


def _check_options(opts: int) -> None:
    if opts & ~P.O_MASK:
        raise KernelError(E.EINVAL)
    if opts & _SECCOMP_OPTIONS:
        printk.pr_info_ratelimited(f"ptrace: options {opts:#x} unsupported (no seccomp events)")
        raise KernelError(E.EINVAL)


# -- registers ----------------------------------------------------------------
def _putreg(tr, name: str, value: int) -> None:
    """One register as arch/x86's putreg takes it: selectors must be the
    64-bit user ones (no IA32 emulation here), bases user addresses, eflags
    only its FLAG_MASK bits: what the host is then given it accepts."""
    regs = tr.regs
    value &= MASK64
    if name == "cs":
        if value != USER_CS:
            raise KernelError(E.EIO)
    elif name == "ss":
        if value != USER_DS:
            raise KernelError(E.EIO)
    elif name in _SEGMENTS:
        if value not in (0, USER_DS, getattr(regs, name)):
            raise KernelError(E.EIO)    # no other descriptor here: no modify_ldt, no IA32
    elif name in ("fs_base", "gs_base"):
        if value >= TASK_SIZE_MAX:
            raise KernelError(E.EIO)
    elif name == "eflags":
        value = (regs.eflags & ~FLAG_MASK) | (value & FLAG_MASK)
    setattr(regs, name, value)
    tr.regs_dirty = True


def _pack_regs(tr) -> bytes:
    return struct.pack("<27Q", *(getattr(tr.regs, n) & MASK64 for n in hptrace.REG_NAMES))


def _set_regs(tr, data: bytes) -> None:
    vals = struct.unpack("<27Q", data)
    for name, v in zip(hptrace.REG_NAMES, vals):
        if getattr(tr.regs, name) != v:
            _putreg(tr, name, v)


def _host(fn, *args):
    try:
        return fn(*args)
    except hptrace.HostError as e:
        raise KernelError(e.errno or E.EIO) from None


def _fpregs(tr) -> bytes:
    return _host(hptrace.get_xstate, tr.hpid)[:P.USER_FPREGS_SIZE]


def _set_fpregs(tr, data: bytes) -> None:
    """The FXSAVE image goes into the xstate, its x87 and SSE marked in use."""
    xs = bytearray(_host(hptrace.get_xstate, tr.hpid))
    xs[:P.USER_FPREGS_SIZE] = data
    if len(xs) >= _XSTATE_HDR + 8:
        bv = struct.unpack_from("<Q", xs, _XSTATE_HDR)[0] | 0x3
        struct.pack_into("<Q", xs, _XSTATE_HDR, bv)
    _host(hptrace.set_xstate, tr.hpid, bytes(xs))


def _peekuser(tr, off: int) -> int:
    if off & 7 or not 0 <= off < P.USER_SIZE:
        raise KernelError(E.EIO)
    if off < P.USER_REGS_SIZE:
        return getattr(tr.regs, hptrace.REG_NAMES[off // 8]) & MASK64
    if P.USER_DEBUGREG <= off < P.USER_DEBUGREG + 64:
        return _host(hptrace.get_debugreg, tr.hpid, (off - P.USER_DEBUGREG) // 8)
    return 0


def _pokeuser(tr, off: int, value: int) -> None:
    if off & 7 or not 0 <= off < P.USER_SIZE:
        raise KernelError(E.EIO)
    if off < P.USER_REGS_SIZE:
        _putreg(tr, hptrace.REG_NAMES[off // 8], value)
    elif P.USER_DEBUGREG <= off < P.USER_DEBUGREG + 64:
        idx = (off - P.USER_DEBUGREG) // 8
        if idx < 4 and STUB_BASE - 8 < value < STUB_END:
            raise KernelError(E.EINVAL)     # the kernel's stub page is none of the guest's
        _host(hptrace.set_debugreg, tr.hpid, idx, value)


_REGSET_SIZE = {P.NT_PRSTATUS: P.USER_REGS_SIZE, P.NT_PRFPREG: P.USER_FPREGS_SIZE}


def _regset(t, tr, kind: int, iov: int, write: bool) -> int:
    base, length = struct.unpack("<QQ", t.mem.read(iov, 16))
    if kind == P.NT_X86_XSTATE:
        full = len(_host(hptrace.get_xstate, tr.hpid))
    elif kind in _REGSET_SIZE:
        full = _REGSET_SIZE[kind]
    else:
        raise KernelError(E.EINVAL)
    n = min(length, full)
    if write:
        if kind == P.NT_X86_XSTATE:
            if n != full:
                raise KernelError(E.EFAULT)     # a whole XSAVE image only, as Linux's
            _host(hptrace.set_xstate, tr.hpid, t.mem.read(base, n))
        else:
            cur = _pack_regs(tr) if kind == P.NT_PRSTATUS else _fpregs(tr)
            data = t.mem.read(base, n) + cur[n:]
            (_set_regs if kind == P.NT_PRSTATUS else _set_fpregs)(tr, data)
    else:
        data = {P.NT_PRSTATUS: _pack_regs, P.NT_PRFPREG: _fpregs}.get(
            kind, lambda x: _host(hptrace.get_xstate, x.hpid))(tr)
        t.mem.write(base, data[:n])
    t.mem.write(iov + 8, struct.pack("<Q", n))
    return 0


# -- memory -------------------------------------------------------------------
def _peek(tr, addr: int) -> int:
    """A word of the tracee (access_process_vm, FOLL_FORCE: unreadable
    but mapped memory too); EIO where nothing is mapped."""
    data = remote_vm.read(tr.mem, addr, 8) if tr.mem is not None else b""
    if len(data) != 8:
        raise KernelError(E.EIO)
    return struct.unpack("<Q", data)[0]


def _poke(tr, addr: int, value: int) -> None:
    """Store a word, into read-only private mappings too (FOLL_FORCE, as
    the host's /proc/PID/mem does it), never into the kernel's stub."""
    if tr.mem is None or remote_vm.write(tr.mem, addr, struct.pack("<Q", value & MASK64)) != 8:
        raise KernelError(E.EIO)


# -- the call -----------------------------------------------------------------
_STEPS = (P.SINGLESTEP, P.SYSEMU_SINGLESTEP)
_EMULATING = (P.SYSEMU, P.SYSEMU_SINGLESTEP)


def _restart(t, tr, req: int, sig: int) -> int:
    """ptrace_resume: CONT, SYSCALL, SINGLESTEP, SYSEMU, SYSEMU_SINGLESTEP."""
    if not _valid_sig(sig):
        raise KernelError(E.EIO)
    pt = tr.ptrace
    pt.syscalls = req == P.SYSCALL
    pt.sysemu = req in _EMULATING
    pt.stepping = req in _STEPS
    ptracer.restart(tr, sig)
    return 0


def _interrupt(t, pid: int) -> int:
    """PTRACE_INTERRUPT: a seized tracee, running or stopped, traps."""
    tr = _tracee(t, pid, stopped=False)
    if not tr.ptrace.seized:
        raise KernelError(E.EIO)
    ptracer.notify_trap(t.kernel, tr)
    return 0


@syscall("ptrace", status=PARTIAL,
         note="TRACEME, ATTACH, SEIZE, INTERRUPT, LISTEN, DETACH, CONT, SYSCALL, SINGLESTEP, "
              "SYSEMU(_SINGLESTEP), KILL, PEEK/POKE TEXT/DATA/USER (debug registers included), "
              "GET/SETREGS, GET/SETFPREGS, GET/SETREGSET (NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE), "
              "GET/SETSIGINFO, GETEVENTMSG, SETOPTIONS (all but TRACESECCOMP, SUSPEND_SECCOMP: "
              "EINVAL); signal-delivery, group, syscall, fork/vfork/clone/exec/exit/vfork-done "
              "event and PTRACE_EVENT_STOP stops; no SINGLEBLOCK (EIO)")
def sys_ptrace(t, req, pid, addr, data, *_):
    req = s32(req)
    if req == P.TRACEME:
        return _traceme(t)
    pid = s32(pid)
    if req in (P.ATTACH, P.SEIZE):
        return _attach(t, pid, req == P.SEIZE, addr, data)
    if req == P.INTERRUPT:
        return _interrupt(t, pid)
    tr = _tracee(t, pid, stopped=req != P.KILL)
    if req == P.KILL:
        t.kernel.procs.kill_process(tr.proc, S.SIGKILL)
        return 0
    if req in (P.CONT, P.SYSCALL, *_STEPS, *_EMULATING):
        return _restart(t, tr, req, data)
    if req == P.LISTEN:
        if not tr.ptrace.seized or not ptracer.listen(tr):
            raise KernelError(E.EIO)
        return 0
    if req == P.DETACH:
        if not _valid_sig(data):
            raise KernelError(E.EIO)
        ptracer.detach(t.kernel, tr, data)
        return 0
    if req in (P.PEEKTEXT, P.PEEKDATA, P.PEEKUSER):
        word = _peekuser(tr, addr) if req == P.PEEKUSER else _peek(tr, addr)
        put_u64(t, data, word)
        return 0
    if req in (P.POKETEXT, P.POKEDATA):
        _poke(tr, addr, data)
        return 0
    if req == P.POKEUSER:
        _pokeuser(tr, addr, data)
        return 0
    if req in (P.GETREGS, P.GETFPREGS):
        t.mem.write(data, (_pack_regs if req == P.GETREGS else _fpregs)(tr))
        return 0
    if req in (P.SETREGS, P.SETFPREGS):
        kind = P.NT_PRSTATUS if req == P.SETREGS else P.NT_PRFPREG
        (_set_regs if req == P.SETREGS else _set_fpregs)(tr, t.mem.read(data, _REGSET_SIZE[kind]))
        return 0
    if req in (P.GETREGSET, P.SETREGSET):
        return _regset(t, tr, addr, data, req == P.SETREGSET)
    if req == P.GETSIGINFO:
        if tr.ptrace.info is None:
            raise KernelError(E.EINVAL)
        t.mem.write(data, pack_siginfo(*tr.ptrace.info))
        return 0
    if req == P.SETSIGINFO:
        if tr.ptrace.info is None:
            raise KernelError(E.EINVAL)
        tr.ptrace.info = user_siginfo(t.mem.read(data, 128))
        return 0
    if req == P.GETEVENTMSG:
        put_u64(t, data, tr.ptrace.message)
        return 0
    if req == P.SETOPTIONS:
        _check_options(data)
        tr.ptrace.options = data
        return 0
    if req == P.SINGLEBLOCK:
        printk.pr_info_ratelimited("ptrace: PTRACE_SINGLEBLOCK unsupported")
        raise KernelError(E.EIO)
    raise KernelError(E.EIO)
