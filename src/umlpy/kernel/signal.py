"""Signals: generation, delivery on the way back to user mode, sigreturn.

Frames are Linux's x86-64 rt_sigframe (pretcode, ucontext, siginfo, then the
xstate at the size the host reports), so handlers that read their ucontext
and programs that longjmp out of handlers see what they see on Linux.
Restart follows Linux: ERESTARTSYS restarts under SA_RESTART, ERESTARTNOHAND
and ERESTART_RESTARTBLOCK become EINTR when a handler runs, and every restart
code restarts the syscall when no handler runs (rip -= 2, rax = orig_rax).
"""
from __future__ import annotations

import struct
from collections import deque

from arch_um import ptrace
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.kernel.task import SIG_DEFAULT, State, Task

_MCTX = struct.Struct("<18Q4H4QQ64x")   # sigcontext: 256 bytes
_UC_HEAD = struct.Struct("<QQQi4xQ")     # uc_flags, uc_link, ss_sp, ss_flags, ss_size
UC_SIZE = _UC_HEAD.size + _MCTX.size + 8   # + uc_sigmask
SIGINFO_SIZE = 128
FRAME_SIZE = 8 + UC_SIZE + SIGINFO_SIZE
FIX_EFLAGS = 0x40DD5
_STOP_SIGS = S.sigbit(S.SIGSTOP) | S.sigbit(S.SIGTSTP) | S.sigbit(S.SIGTTIN) | S.sigbit(S.SIGTTOU)
_MASK64 = (1 << 64) - 1


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def pack_siginfo(sig: int, code: int, fields: tuple) -> bytes:
    """fields: (pid, uid) for kill; (pid, uid, status) for SIGCHLD; (addr,) for
    faults; ("raw", bytes) for the union as given (timers, sigqueue)."""
    head = struct.pack("<iii4x", sig, 0, code)
    if fields and fields[0] == "raw":
        body = fields[1]
    elif len(fields) == 1:
        body = struct.pack("<Q", fields[0] & _MASK64)
    elif len(fields) == 3:
        body = struct.pack("<iIi4xqq", fields[0], fields[1], fields[2], 0, 0)
    else:
        body = struct.pack("<iI", *(fields or (0, 0)))
    return (head + body).ljust(SIGINFO_SIZE, b"\0")


def _enqueue(owner, sig: int, code: int, fields: tuple) -> None:
    """Queue a signal's data on a task or process: standard signals are
    pending once (the first siginfo stays), real-time ones queue up."""
    q = owner.sigq.get(sig)
    if q is None:
        owner.sigq[sig] = deque([(code, fields)])
    elif sig >= S.SIGRTMIN:
        q.append((code, fields))


def discard(proc, mask: int) -> None:
    """Forget pending signals of mask, process-wide and in every thread."""
    for owner in [proc, *proc.threads]:
        if owner is proc:
            proc.shared_pending &= ~mask
        else:
            owner.pending &= ~mask
        for sig in [s for s in owner.sigq if S.sigbit(s) & mask]:
            del owner.sigq[sig]


def first_code(owner, sig: int) -> int | None:
    """si_code of the first queued instance of sig, if any."""
    q = owner.sigq.get(sig)
    return q[0][0] if q else None


class Signals:
    def __init__(self, kernel) -> None:
        self.k = kernel

    # -- generation -----------------------------------------------------------
    def send_proc(self, proc, sig: int, code: int = C.SI_USER, fields: tuple = ()) -> None:
        if proc.exited or not 1 <= sig <= S.NSIG:
            return
        if not self._prepare(proc, sig):
            return
        if self._ignored(proc, proc.leader, sig):
            return
        _enqueue(proc, sig, code, fields)
        proc.shared_pending |= S.sigbit(sig)
        proc.signal_wq.wake_all()
        for t in proc.threads:
            if not t.blocked & S.sigbit(sig) or t.sigwait & S.sigbit(sig):
                self._notify(t, sig)
                break

    def send_task(self, t: Task, sig: int, code: int = C.SI_TKILL, fields: tuple = ()) -> None:
        proc = t.proc
        if proc.exited or not 1 <= sig <= S.NSIG:
            return
        if not self._prepare(proc, sig):
            return
        if self._ignored(proc, t, sig):
            return
        _enqueue(t, sig, code, fields)
        t.pending |= S.sigbit(sig)
        proc.signal_wq.wake_all()
        if not t.blocked & S.sigbit(sig) or t.sigwait & S.sigbit(sig):
            self._notify(t, sig)

    def _prepare(self, proc, sig: int) -> bool:
        """Side effects at generation time; False if nothing is left to queue."""
        if sig == S.SIGKILL:
            self.k.procs.kill_process(proc, S.SIGKILL)
            return False
        if sig == S.SIGCONT:
            discard(proc, _STOP_SIGS)
            if proc.stopped:
                self.k.procs.continue_process(proc)
        elif S.sigbit(sig) & _STOP_SIGS:
            discard(proc, S.sigbit(S.SIGCONT))
        return True

    def _ignored(self, proc, t: Task, sig: int) -> bool:
        if t.blocked & S.sigbit(sig):
            return False
        h = proc.sighand.actions[sig].handler
        if h == C.SIG_IGN:
            return True
        return h == C.SIG_DFL and S.default_action(sig) in (S.Default.IGNORE, S.Default.CONT)

    def _notify(self, t: Task, sig: int) -> None:
        if t.state is State.BLOCKED:
            if t.sigwait & S.sigbit(sig):
                self.k.sched.wake(t)        # rt_sigtimedwait takes it
            elif self.interrupts(t):
                self.k.sched.wake(t, 2)
        elif t.state is State.USER:
            self.k.sched.loop.flush()
            ptrace.interrupt(t.hpid)

    def interrupts(self, t: Task) -> bool:
        """Does a pending signal end this task's wait?"""
        pend = (t.pending | t.proc.shared_pending) & ~t.blocked
        if not pend:
            return False
        acts = t.proc.sighand.actions
        for sig in range(1, S.NSIG + 1):
            if pend & S.sigbit(sig):
                h = acts[sig].handler
                if h == C.SIG_IGN:
                    continue
                if h == C.SIG_DFL and S.default_action(sig) in (S.Default.IGNORE, S.Default.CONT):
                    continue
                return True
        return False

    def force_fault(self, t: Task, sig: int) -> None:
        """A host fault in guest code becomes the guest's signal (force_sig)."""
        act = t.proc.sighand.actions[sig]
        if t.blocked & S.sigbit(sig) or act.handler == C.SIG_IGN:
            t.blocked &= ~S.sigbit(sig)
            t.proc.sighand.actions[sig] = SIG_DEFAULT
        code, addr = ptrace.fault_info(t.hpid)
        _enqueue(t, sig, code, (addr,))
        t.pending |= S.sigbit(sig)

    def take(self, t: Task, mask: int) -> tuple[int, int, tuple]:
        """Dequeue the lowest pending signal of mask (thread-directed ones
        first, as Linux's dequeue_signal): (signo, si_code, fields), signo 0
        if none.  A real-time signal sent n times is queued n times."""
        for owner in (t, t.proc):
            pend = (owner.pending if owner is t else owner.shared_pending) & mask
            if pend:
                sig = (pend & -pend).bit_length()
                q = owner.sigq.get(sig)
                code, fields = q.popleft() if q else (C.SI_KERNEL, ())
                if not q:
                    owner.sigq.pop(sig, None)
                    if owner is t:
                        t.pending &= ~S.sigbit(sig)
                    else:
                        t.proc.shared_pending &= ~S.sigbit(sig)
                return sig, code, fields
        return 0, 0, ()

    def do_signal(self, t: Task, how: int) -> int | None:
        """Deliver what is pending; returns how to resume, None if not now."""
        regs = t.regs
        proc = t.proc
        code = -_signed(regs.rax) if t.in_syscall >= 0 else 0
        restarting = E.ERESTARTSYS <= code <= E.ERESTART_RESTARTBLOCK
        while True:
            if proc.stopped:
                t.state = State.STOPPED
                proc.stop_how[t] = how
                return None
            sig, code_, fields = self.take(t, ~t.blocked)
            if not sig:
                break
            act = proc.sighand.actions[sig]
            h = act.handler
            if h == C.SIG_IGN:
                continue
            if h == C.SIG_DFL:
                d = S.default_action(sig)
                if d in (S.Default.IGNORE, S.Default.CONT):
                    continue
                if d is S.Default.STOP:
                    self.k.procs.stop_process(proc, sig)
                    continue
                # the core flag says a core was dumped: only where RLIMIT_CORE allows one
                core = d is S.Default.CORE and proc.rlimit(C.RLIMIT_CORE)[0] > 0
                self.k.procs.kill_process(proc, sig, core=core)
                return None
            if restarting:
                if code == E.ERESTARTNOINTR or (code == E.ERESTARTSYS and act.flags & C.SA_RESTART):
                    self._restart(t)
                else:
                    regs.rax = (-E.EINTR) & _MASK64
                restarting = False
            # as Linux, every deliverable signal gets its frame before the
            # return to user mode: the last one set up runs first
            self._setup_frame(t, sig, act, code_, fields)
            how = ptrace.REGS_ALL
        if restarting:
            self._restart(t)
            how = ptrace.REGS_ALL
        if t.saved_mask is not None:
            t.blocked, t.saved_mask = t.saved_mask, None
        return how

    def _restart(self, t: Task) -> None:
        t.regs.rax = t.regs.orig_rax
        t.regs.rip -= 2

    def _setup_frame(self, t: Task, sig: int, act, code: int, fields: tuple) -> None:
        regs = t.regs
        ss_sp, ss_flags, ss_size = t.altstack
        sp = regs.rsp
        on_alt = ss_size and ss_sp < sp <= ss_sp + ss_size
        if act.flags & C.SA_ONSTACK and not ss_flags & C.SS_DISABLE and not on_alt:
            sp = ss_sp + ss_size
        sp -= 128
        xstate = ptrace.get_xstate(t.hpid)
        sp = (sp - len(xstate)) & ~63
        fp = sp
        sp = ((sp - FRAME_SIZE) & ~15) - 8
        mask = t.saved_mask if t.saved_mask is not None else t.blocked
        t.saved_mask = None
        mctx = _MCTX.pack(
            regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
            regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp,
            regs.rip, regs.eflags, regs.cs & 0xffff, 0, 0, regs.ss & 0xffff,
            0, 0, mask & _MASK64, 0, fp)
        uc_flags = 0x1 | 0x2 | 0x4   # UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
        uc = _UC_HEAD.pack(uc_flags, 0, ss_sp, ss_flags | (C.SS_ONSTACK if on_alt else 0), ss_size)
        uc += mctx + struct.pack("<Q", mask & _MASK64)
        info = pack_siginfo(sig, code, fields)
        restorer = act.restorer if act.flags & C.SA_RESTORER else 0
        t.mem.write(fp, xstate)
        t.mem.write(sp, struct.pack("<Q", restorer) + uc + info)
        regs.rdi = sig
        regs.rsi = sp + 8 + UC_SIZE
        regs.rdx = sp + 8
        regs.rax = 0
        regs.rsp = sp
        regs.rip = act.handler
        regs.eflags &= ~0x500   # DF, TF
        regs.orig_rax = _MASK64
        t.blocked |= act.mask
        if not act.flags & C.SA_NODEFER:
            t.blocked |= S.sigbit(sig)
        t.blocked &= ~S.UNBLOCKABLE
        if act.flags & C.SA_RESETHAND:
            t.proc.sighand.actions[sig] = act._replace(handler=C.SIG_DFL, flags=act.flags & ~C.SA_SIGINFO)
        t.regs_dirty = True

    def sigreturn(self, t: Task) -> None:
        regs = t.regs
        uc = regs.rsp   # the handler's `ret` popped pretcode
        data = t.mem.read(uc, UC_SIZE)
        m = _MCTX.unpack_from(data, _UC_HEAD.size)
        (regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
         regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp,
         regs.rip) = m[:17]
        regs.eflags = (regs.eflags & ~FIX_EFLAGS) | (m[17] & FIX_EFLAGS)
        fp = m[26]
        (mask,) = struct.unpack_from("<Q", data, _UC_HEAD.size + _MCTX.size)
        t.blocked = mask & ~S.UNBLOCKABLE
        if fp:
            size = self.k.xstate_size
            ptrace.set_xstate(t.hpid, t.mem.read(fp, size))
        regs.orig_rax = _MASK64
        t.regs_dirty = True
