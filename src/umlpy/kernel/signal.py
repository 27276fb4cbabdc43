"""Signals: generation, delivery on the way back to user mode, sigreturn.

Frames are Linux's x86-64 rt_sigframe (pretcode, ucontext, siginfo, then the
xstate at the size the host reports), so handlers that read their ucontext
and programs that longjmp out of handlers see what they see on Linux.
Restart follows Linux: ERESTARTSYS restarts under SA_RESTART, ERESTARTNOHAND
and ERESTART_RESTARTBLOCK become EINTR when a handler runs, and every restart
code restarts the syscall when no handler runs (rip -= 2, rax = orig_rax),
ERESTART_RESTARTBLOCK as restart_syscall, which goes on with the task's
restart_fn (a sleep keeps its end time).
"""
from __future__ import annotations

import struct
from collections import deque

from arch_um import ptrace
from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.kernel import printk, ptracer, strace
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import SIG_DEFAULT, State, Task

_MCTX = struct.Struct("<18Q4H4QQ64x")   # sigcontext: 256 bytes
_UC_HEAD = struct.Struct("<QQQI4xQ")     # uc_flags, uc_link, ss_sp, ss_flags, ss_size
UC_SIZE = _UC_HEAD.size + _MCTX.size + 8   # + uc_sigmask
SIGINFO_SIZE = 128
FRAME_SIZE = 8 + UC_SIZE + SIGINFO_SIZE
FIX_EFLAGS = 0x40DD5
USER_CS = 0x33
USER_DS = 0x2B
UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 0x1, 0x2, 0x4
SS_AUTODISARM = 1 << 31
SS_FLAG_BITS = SS_AUTODISARM
MINSIGSTKSZ = 2048
FP_XSTATE_MAGIC1 = 0x46505853
FP_XSTATE_MAGIC2 = 0x46505845
_SW_BYTES = struct.Struct("<IIQI")      # fxsave sw_reserved: magic1, extended_size, xfeatures, xstate_size
_SW_OFF = 464
_XSAVE_HDR = 512                        # xstate_bv, then xcomp_bv and reserved words
_FXSAVE_SIZE = 512
_FPSSE = 0x3
_STOP_SIGS = S.sigbit(S.SIGSTOP) | S.sigbit(S.SIGTSTP) | S.sigbit(S.SIGTTIN) | S.sigbit(S.SIGTTOU)
_MASK64 = (1 << 64) - 1
# XTILE_DATA (AMX), Linux's only dynamically enabled xstate component: a
# signal frame carries it only for a task given it by ARCH_REQ_XCOMP_PERM,
# which this kernel does not grant, so its frames are fpu_user_cfg.default_size
XFEATURES_DYNAMIC = 1 << 18
_XCR0 = struct.Struct("<Q")     # where the ptrace regset's sw_reserved keeps the host's XCR0


def frame_xstate_size(xstate: bytes) -> int:
    """The xsave area of a signal frame, from a task's full xstate (the
    host's regset): every component the host enables but the dynamic ones."""
    xcr0 = _XCR0.unpack_from(xstate, _SW_OFF)[0]
    if not xcr0 & XFEATURES_DYNAMIC:
        return len(xstate)
    return ptrace.xstate_component_ends(xcr0 & ~XFEATURES_DYNAMIC)


def _frame_xstate(xstate: bytes, size: int) -> bytes:
    """The host's xstate (ptrace's layout, whose sw_reserved holds XCR0) as
    a signal frame holds it: cut to the frame's size, without dynamic
    state, and sw_reserved in the frame's format (Linux's save_sw_bytes:
    FP_XSTATE_MAGIC1, the extended size, the features, the xstate size),
    which rt_sigreturn looks for to restore more than the legacy area."""
    out = bytearray(xstate[:size])
    feats = _XCR0.unpack_from(out, _SW_OFF)[0] & ~XFEATURES_DYNAMIC
    out[_SW_OFF:_XSAVE_HDR] = bytes(_XSAVE_HDR - _SW_OFF)
    _SW_BYTES.pack_into(out, _SW_OFF, FP_XSTATE_MAGIC1, size + 4, feats, size)
    bv = struct.unpack_from("<Q", out, _XSAVE_HDR)[0]
    struct.pack_into("<Q", out, _XSAVE_HDR, bv & feats)
    return bytes(out)


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def pack_siginfo(sig: int, code: int, fields: tuple) -> bytes:
    """fields: (pid, uid) for kill; (pid, uid, status) for SIGCHLD; (addr,) for
    faults; ("raw", bytes[, si_errno]) for the union as given (timers,
    sigqueue, a siginfo a process built: see user_siginfo)."""
    raw = bool(fields) and fields[0] == "raw"
    head = struct.pack("<iii4x", sig, fields[2] if raw and len(fields) > 2 else 0, code)
    if raw:
        body = fields[1]
    elif len(fields) == 1:
        body = struct.pack("<Q", fields[0] & _MASK64)
    elif len(fields) == 3:
        body = struct.pack("<iIi4xqq", fields[0], fields[1], fields[2], 0, 0)
    else:
        body = struct.pack("<iI", *(fields or (0, 0)))
    return (head + body).ljust(SIGINFO_SIZE, b"\0")


KERNEL_SIGINFO_SIZE = 48     # struct kernel_siginfo: what Linux keeps of a queued siginfo
SI_DETHREAD, SI_ASYNCNL = -7, -60
# signals whose positive si_codes are their own (sig_sicodes): the highest one
_SIG_SICODES = {S.SIGILL: 11, S.SIGFPE: 15, S.SIGSEGV: 10, S.SIGBUS: 5, S.SIGTRAP: 6,
                S.SIGCHLD: 6, S.SIGIO: 6, S.SIGSYS: 2}
_NSIGPOLL = 6


def _known_layout(sig: int, code: int) -> bool:
    """Linux's known_siginfo_layout: a si_code the kernel knows the union of."""
    if code == C.SI_KERNEL:
        return True
    if code > C.SI_USER:
        return code <= _SIG_SICODES.get(sig, _NSIGPOLL)
    return code >= SI_DETHREAD or code == SI_ASYNCNL


def user_siginfo(info: bytes) -> tuple[int, int, tuple]:
    """A siginfo a process built (rt_sigqueueinfo, pidfd_send_signal), as
    copy_siginfo_from_user takes it: (si_signo, si_code, fields).  Linux
    keeps a kernel_siginfo (48 bytes), so what lies past it is delivered
    as zeros; for a si_code whose layout it does not know it must be
    zeros already (E2BIG), so that nothing is lost."""
    signo, errno, code = struct.unpack_from("<iii", info)
    if not _known_layout(signo, code) and any(info[KERNEL_SIGINFO_SIZE:]):
        raise KernelError(E.E2BIG)
    return signo, code, ("raw", info[16:KERNEL_SIGINFO_SIZE], errno)


def _enqueue(proc, owner, sig: int, code: int, fields: tuple) -> None:
    """Queue a signal's data on a task or process (owner, of proc):
    standard signals are pending once (the first siginfo stays), real-time
    ones queue up, and so does a POSIX timer's, whose preallocated entry
    Linux's send_sigqueue always adds (the timer queues it at most once;
    the timer, not its entry, counts for RLIMIT_SIGPENDING)."""
    timer = fields[:1] == ("timer",)
    q = owner.sigq.get(sig)
    if q is None:
        owner.sigq[sig] = deque([(code, fields)])
    elif sig >= S.SIGRTMIN or timer:
        q.append((code, fields))
    else:
        return
    if not timer and _counted(proc, owner):
        proc.charge_sigpending(1)


def _counted(proc, owner) -> bool:
    """Is owner's queue counted: the process's (until its exit), or a live
    thread's (a dead one gave its count back when it went, forget_thread)?"""
    return owner is proc or owner.state is not State.DEAD


def _held(entries) -> int:
    """What queued entries hold of RLIMIT_SIGPENDING: a POSIX timer's own
    entry nothing (the timer holds its one)."""
    return sum(f[:1] != ("timer",) for _c, f in entries)


def _uncharge(proc, owner, entries) -> None:
    """Entries left owner's queue: give back what they held."""
    n = _held(entries)
    if n and _counted(proc, owner):
        proc.charge_sigpending(-n)


def forget_queue(t: Task) -> None:
    """A thread goes (forget_thread): what its queue held is given back,
    as Linux's exit flushes a task's pending queue."""
    for q in t.sigq.values():
        _uncharge(t.proc, t, q)


def held_by(proc) -> int:
    """What proc's queues and timers hold of RLIMIT_SIGPENDING, counted
    from them (for a restored process; charge_sigpending keeps the count)."""
    n = sum(type(key) is int for key in proc.timers)      # POSIX timers by id; itimers by name
    for owner in (proc, *proc.threads):
        for q in owner.sigq.values():
            n += _held(q)
    return n


MIN_COREDUMP = 4096     # the ELF format's: a smaller RLIMIT_CORE writes nothing


def queue_info(kernel, proc, sig: int, code: int, fields: tuple) -> tuple[int, tuple] | None:
    """RLIMIT_SIGPENDING, as Linux's __send_signal_locked: a user's
    processes hold at most that many queued signals (counted against the
    receiving process's limit).  kill's and the kernel's standard signals
    (si_code >= 0) queue regardless, real-time ones never: past the limit,
    one sent with data (sigqueue, tgkill) is refused with EAGAIN, one from
    kill is pending without a queued entry (None: its information is
    lost, and however often it is sent it is taken once), and a standard
    one is sent without its information (it arrives as SI_USER from pid
    0).  Returns the si_code and fields to send.  (A real-time signal
    kill()ed to a process blocking it queued without end: an unprivileged
    guest grew the kernel by its entries.)"""
    if code >= 0 and sig < S.SIGRTMIN:
        return code, fields
    if sigpending_held(proc) < proc.rlimit(C.RLIMIT_SIGPENDING)[0]:
        return code, fields
    if sig >= S.SIGRTMIN:
        if code != C.SI_USER:
            raise KernelError(E.EAGAIN)
        return None
    return C.SI_USER, (0, 0)


def sigpending_held(proc) -> int:
    """What the user of proc (its real uid) holds of RLIMIT_SIGPENDING
    over its live processes (its ucount): their queued signals, and one
    for each POSIX timer, whose signal timer_create preallocated
    (SIGQUEUE_PREALLOC), queued or not."""
    return proc.sig_counts.get(proc.creds.uid, 0)


def init_ignores(t: Task, sig: int, force: bool = False) -> bool:
    """Linux's SIGNAL_UNKILLABLE: init (or any thread of it) only takes the
    signals it handles or blocks (to wait for them), SIGKILL and SIGSTOP
    included; the rest are dropped when sent, whoever sends them (kill,
    tkill, sigqueue, the kernel: SIGPIPE, SIGHUP, an orphan's exit
    signal), so no signal kills it.  The init of a pid namespace below is
    the same, except for the SIGKILL and SIGSTOP of a sender outside its
    namespace (force).  A traced init takes them all: its tracer sees
    them first (sig_ignored)."""
    return t.proc.unkillable and t.ptrace is None and t.proc.sighand.actions[sig].handler == C.SIG_DFL \
        and not t.blocked & S.sigbit(sig) and not (force and sig in (S.SIGKILL, S.SIGSTOP))


def takeable(t: Task) -> int:
    """The process's pending signals t may take now.  Linux sends a CPU
    timer's signal from the tick of the thread that is running, which
    takes it on its return to user mode before a sibling could; here that
    thread's interrupt stop takes a while, and a sibling passing a
    delivery point meanwhile (a sleeper's periodic wake) must not take the
    signal first.  The claim ends at the thread's next resume
    (release_enroute)."""
    proc = t.proc
    en = proc.enroute
    if en is None or en[0] is t or en[0].state is not State.USER:
        return proc.shared_pending
    return proc.shared_pending & ~en[1]


def release_enroute(t: Task) -> None:
    """t resumes guest code: it had its chance at a signal sent its way."""
    en = t.proc.enroute
    if en is not None and en[0] is t:
        t.proc.enroute = None


def discard(proc, mask: int) -> None:
    """Forget pending signals of mask, process-wide and in every thread."""
    for owner in [proc, *proc.threads]:
        if owner is proc:
            proc.shared_pending &= ~mask
        else:
            owner.pending &= ~mask
        for sig in [s for s in owner.sigq if S.sigbit(s) & mask]:
            q = owner.sigq.pop(sig)
            _uncharge(proc, owner, q)
            for _, fields in q:
                if fields[:1] == ("timer",):
                    fields[1].flushed()


class Signals:
    def __init__(self, kernel) -> None:
        self.k = kernel

    # -- generation -----------------------------------------------------------
    def send_proc(self, proc, sig: int, code: int = C.SI_USER, fields: tuple = (), force: bool = False,
                  prefer: Task | None = None, entry: bool = True) -> bool:
        """Generate sig for the process; False if it was dropped (ignored;
        force: sent from outside its pid namespace, see init_ignores).  The
        thread woken for it is prefer if that one takes it, else the first
        that does (complete_signal).  entry False: pending without a queued
        entry (queue_info's None)."""
        if proc.exited or not 1 <= sig <= S.NSIG or init_ignores(proc.leader, sig, force):
            return False
        if not self._prepare(proc, sig) or self._ignored(proc, proc.leader, sig):
            return False
        if entry:
            _enqueue(proc, proc, sig, code, fields)
        proc.shared_pending |= S.sigbit(sig)
        proc.signal_wq.wake_all()
        for t in proc.threads if prefer is None else (prefer, *proc.threads):
            if not t.blocked & S.sigbit(sig) or t.sigwait & S.sigbit(sig):
                if t is prefer and t.state is State.USER:
                    proc.enroute = (t, S.sigbit(sig))
                self._notify(t, sig)
                break
        return True

    def send_task(self, t: Task, sig: int, code: int = C.SI_TKILL, fields: tuple = (), force: bool = False,
                  entry: bool = True) -> bool:
        """Generate sig for one thread; False if it was dropped (as send_proc)."""
        proc = t.proc
        if proc.exited or not 1 <= sig <= S.NSIG or init_ignores(t, sig, force):
            return False
        if not self._prepare(proc, sig) or self._ignored(proc, t, sig):
            return False
        if entry:
            _enqueue(proc, t, sig, code, fields)
        t.pending |= S.sigbit(sig)
        proc.signal_wq.wake_all()
        if not t.blocked & S.sigbit(sig) or t.sigwait & S.sigbit(sig):
            self._notify(t, sig)
        return True

    def send_sig(self, t: Task, sig: int) -> None:
        """Linux's send_sig(sig, current, 0), a task signalling itself for
        what it just did (SIGPIPE on a broken pipe or stream socket): the
        siginfo of a kill from it, SI_USER with its own pid and uid."""
        self.send_task(t, sig, C.SI_USER, (self.k.procs.vnr(t.proc, t.proc.pid), t.proc.creds.uid))

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
        if t.blocked & S.sigbit(sig) or t.ptrace is not None:
            return False        # a tracer sees even an ignored signal (sig_ignored)
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
        pend = (t.pending | takeable(t)) & ~t.blocked
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
        code, addr = ptrace.fault_info(t.hpid)
        self.force_sig(t, sig, code, (addr,))

    def force_sig(self, t: Task, sig: int, code: int = C.SI_KERNEL, fields: tuple = (0,),
                  handler_current: bool = True) -> None:
        """Linux's force_sig_info_to_task: a signal the task cannot block or
        ignore (a blocked or ignored one reverts to its default action)."""
        acts = t.proc.sighand.actions
        bit = S.sigbit(sig)
        if t.blocked & bit or acts[sig].handler == C.SIG_IGN or not handler_current:
            acts[sig] = SIG_DEFAULT
            t.blocked &= ~bit
        if acts[sig].handler == C.SIG_DFL:
            t.proc.unkillable = False       # a fault init does not handle ends it, as Linux
        _enqueue(t.proc, t, sig, code, fields)
        t.pending |= bit

    def force_sigsegv(self, t: Task, sig: int) -> None:
        """A signal frame could not be built: SIGSEGV, fatal if it was
        SIGSEGV's own frame that failed (Linux's force_sigsegv)."""
        self.force_sig(t, S.SIGSEGV, handler_current=sig != S.SIGSEGV)

    def take(self, t: Task, mask: int) -> tuple[int, int, tuple]:
        """Dequeue the lowest pending signal of mask (thread-directed ones
        first, as Linux's dequeue_signal): (signo, si_code, fields), signo 0
        if none.  A real-time signal sent n times is queued n times.  As
        in dequeue_signal, a POSIX timer's signal restarts its periodic
        timer (and gets its overrun count), and a SIGALRM from the process
        queue restarts a periodic ITIMER_REAL."""
        for owner in (t, t.proc):
            pend = (owner.pending if owner is t else takeable(t)) & mask
            if pend:
                sig = (pend & -pend).bit_length()
                q = owner.sigq.get(sig)
                if q:
                    code, fields = q.popleft()
                    _uncharge(t.proc, owner, ((code, fields),))
                else:   # pending past RLIMIT_SIGPENDING: collect_signal's zeroed info
                    code, fields = C.SI_USER, (0, 0)
                if not q:
                    owner.sigq.pop(sig, None)
                    if owner is t:
                        t.pending &= ~S.sigbit(sig)
                    else:
                        t.proc.shared_pending &= ~S.sigbit(sig)
                if fields[:1] == ("timer",):
                    fields = fields[1].dequeued()
                if sig == S.SIGALRM and owner is t.proc and "real" in owner.timers:
                    owner.timers["real"].sigalrm_dequeued()
                return sig, code, fields
        return 0, 0, ()

    def do_signal(self, t: Task, how: int) -> int | None:
        """Deliver what is pending; returns how to resume, None if not now."""
        regs = t.regs
        proc = t.proc
        code = -_signed(regs.rax) if t.in_syscall >= 0 else 0
        restarting = E.ERESTARTSYS <= code <= E.ERESTART_RESTARTBLOCK
        while True:
            pt = t.ptrace
            if proc.stopped and pt is not None and not pt.past_group_stop:
                ptracer.group_stop(self.k, t, (proc.stop_report >> 8) & 0xff or S.SIGSTOP, how)
                return None
            if pt is not None and pt.trap_stop:
                ptracer.jobctl_trap(self.k, t, how)
                return None
            if proc.stopped and pt is None:
                t.state = State.STOPPED
                proc.stop_how[t] = how
                return None
            if pt is not None and pt.inject is not None:
                (sig, code_, fields), pt.inject = pt.inject, None    # what the tracer let through
            else:
                sig, code_, fields = self.take(t, ~t.blocked)
                if not sig:
                    break
                if strace.tracer is not None:
                    strace.tracer.signal(t, sig, code_, fields)
                if pt is not None:      # the signal-delivery-stop, before any action
                    ptracer.signal_stop(self.k, t, sig, code_, fields, how)
                    return None
            act = proc.sighand.actions[sig]
            h = act.handler
            if h == C.SIG_IGN:
                continue
            if h == C.SIG_DFL:
                if proc.unkillable and sig != S.SIGSTOP:
                    continue        # init: what it blocked at SIG_DFL and now lets in (a
                                    # SIGSTOP got here only from outside its pid namespace)
                d = S.default_action(sig)
                if d in (S.Default.IGNORE, S.Default.CONT):
                    continue
                if d is S.Default.STOP:
                    self.k.procs.stop_process(proc, sig)
                    continue
                core = d is S.Default.CORE and self._core_dump(t, sig, code_, fields)
                ptracer.exit_event(self.k, t, sig | (0x80 if core else 0),
                                   lambda: self.k.procs.kill_process(proc, sig, core=core))
                return None
            if restarting:
                if code == E.ERESTARTNOINTR or (code == E.ERESTARTSYS and act.flags & C.SA_RESTART):
                    self._restart(t)
                else:
                    regs.rax = (-E.EINTR) & _MASK64
                restarting = False
            # as Linux, every deliverable signal gets its frame before the
            # return to user mode: the last one set up runs first
            if not self._setup_frame(t, sig, act, code_, fields):
                self.force_sigsegv(t, sig)
                continue
            how = ptrace.REGS_ALL
            if ptracer.handler_entered(self.k, t):
                return None
        if restarting:
            self._restart(t, code)
            how = ptrace.REGS_ALL
        if t.saved_mask is not None:
            t.blocked, t.saved_mask = t.saved_mask, None
        return how

    def _core_dump(self, t: Task, sig: int, code: int, fields: tuple) -> bool:
        """Write the core while the process is whole (Linux's do_coredump,
        before do_group_exit) with the dumper boot handed over
        (syscalls/coredump.py); whether one was written.  A kernel bug in
        it is an oops: the process dies all the same, without a core."""
        try:
            return self.k.dump_core(self.k, t, sig, code, fields)
        except Exception as exc:
            printk.oops(f"core dump of process {t.proc.pid}", exc)
            return False

    def _restart(self, t: Task, code: int = E.ERESTARTSYS) -> None:
        t.regs.rax = NR["restart_syscall"] if code == E.ERESTART_RESTARTBLOCK else t.regs.orig_rax
        t.regs.rip -= 2

    # -- frames -------------------------------------------------------------
    def _setup_frame(self, t: Task, sig: int, act, code: int, fields: tuple) -> bool:
        """Linux's get_sigframe + setup_rt_frame; False if the frame cannot
        be written (the caller forces SIGSEGV, as Linux does)."""
        regs = t.regs
        ss_sp, ss_flags, ss_size = t.altstack
        nested = on_sig_stack(t, regs.rsp)
        entering = False
        sp = regs.rsp - 128                     # the red zone
        if act.flags & C.SA_ONSTACK and sas_ss_flags(t, sp) == 0:
            sp = ss_sp + ss_size
            entering = True
        xstate = _frame_xstate(ptrace.get_xstate(t.hpid), self.k.frame_xstate_size)
        fp = (sp - len(xstate) - 4) & ~63       # the xsave area and FP_XSTATE_MAGIC2
        sp = ((fp - FRAME_SIZE) & ~15) - 8
        if sp < 0:
            return False            # below address 0: no frame fits anywhere
        if (nested or entering) and not _on_stack(t, sp):
            printk.pr_info_ratelimited(f"{t.proc.comm.decode(errors='replace')}[{t.tid}] "
                                       "overflowed sigaltstack")
            return False
        mask = t.saved_mask if t.saved_mask is not None else t.blocked
        mctx = _MCTX.pack(
            regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
            regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp,
            regs.rip, regs.eflags, regs.cs & 0xffff, 0, 0, regs.ss & 0xffff,
            0, 0, mask & _MASK64, 0, fp)
        uc = _UC_HEAD.pack(UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, 0,
                           ss_sp, ss_flags, ss_size)
        uc += mctx + struct.pack("<Q", mask & _MASK64)
        info = pack_siginfo(sig, code, fields)
        restorer = act.restorer if act.flags & C.SA_RESTORER else 0
        try:
            t.mem.write(fp, xstate + struct.pack("<I", FP_XSTATE_MAGIC2))
            t.mem.write(sp, struct.pack("<Q", restorer) + uc + info)
        except GuestFault:
            return False
        t.saved_mask = None
        regs.rdi = sig
        regs.rsi = sp + 8 + UC_SIZE
        regs.rdx = sp + 8
        regs.rax = 0
        regs.rsp = sp
        regs.rip = act.handler
        regs.cs, regs.ss = USER_CS, USER_DS     # handlers run as 64-bit code, whatever was interrupted
        regs.eflags &= ~0x500   # DF, TF
        regs.orig_rax = _MASK64
        t.blocked |= act.mask
        if not act.flags & C.SA_NODEFER:
            t.blocked |= S.sigbit(sig)
        t.blocked &= ~S.UNBLOCKABLE
        if act.flags & C.SA_RESETHAND:      # SA_ONESHOT: the handler goes, the flags stay
            t.proc.sighand.actions[sig] = act._replace(handler=C.SIG_DFL)
        if ss_flags & SS_AUTODISARM:
            t.altstack = (0, C.SS_DISABLE, 0)
        t.regs_dirty = True
        return True

    def sigreturn(self, t: Task) -> None:
        """rt_sigreturn, checked as Linux's: a frame that cannot be read, a
        code segment other than 64-bit user code, or an xsave area the CPU
        would refuse is a SIGSEGV, never a kernel error."""
        regs = t.regs
        frame = regs.rsp - 8    # the handler's `ret` popped pretcode
        try:
            data = t.mem.read(frame + 8, UC_SIZE)
        except GuestFault:
            self._bad_frame(t, frame)
            return
        uc_flags = _UC_HEAD.unpack_from(data)[0]
        (mask,) = struct.unpack_from("<Q", data, _UC_HEAD.size + _MCTX.size)
        t.blocked = mask & ~S.UNBLOCKABLE
        t.restart_fn = None         # restart_syscall now says EINTR, as Linux's
        m = _MCTX.unpack_from(data, _UC_HEAD.size)
        (regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
         regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp,
         regs.rip) = m[:17]
        regs.eflags = (regs.eflags & ~FIX_EFLAGS) | (m[17] & FIX_EFLAGS)
        regs.orig_rax = _MASK64
        t.regs_dirty = True
        cs, ss = m[18] | 3, m[21] | 3
        strict_ss = uc_flags & UC_SIGCONTEXT_SS and uc_flags & UC_STRICT_RESTORE_SS
        # no 32-bit code segment here (no IA32 emulation), and the only
        # user data segment is __USER_DS (an IRET to anything else faults)
        if cs != USER_CS or (strict_ss and ss != USER_DS) or not self._restore_fpu(t, m[26]):
            self._bad_frame(t, frame)
            return
        ss_sp, ss_flags, ss_size = _UC_HEAD.unpack_from(data)[2:]
        try:
            set_altstack(t, (ss_sp, ss_flags, ss_size), regs.rsp)
        except KernelError:
            pass        # restore_altstack ignores everything but a fault

    def _restore_fpu(self, t: Task, fp: int) -> bool:
        """fpu__restore_sig: no area resets the FPU; a misaligned or
        unreadable one, or contents the CPU rejects, fail; an area without
        both magic words is taken as a legacy FXSAVE image."""
        size = self.k.frame_xstate_size
        if not fp:
            state = bytearray(size)
            struct.pack_into("<H", state, 0, 0x37F)        # fcw
            struct.pack_into("<I", state, 24, 0x1F80)      # mxcsr
        else:
            if fp % 64:
                return False
            try:
                state = bytearray(t.mem.read(fp, size))
                magic1, ext, feats, xsize = _SW_BYTES.unpack_from(state, _SW_OFF)
                full = (magic1 == FP_XSTATE_MAGIC1 and _FXSAVE_SIZE < xsize <= size and xsize <= ext
                        and t.mem.read(fp + xsize, 4) == struct.pack("<I", FP_XSTATE_MAGIC2))
            except GuestFault:
                return False
            if full:
                bv = struct.unpack_from("<Q", state, _XSAVE_HDR)[0] & feats
            else:
                bv = _FPSSE
                state[_XSAVE_HDR:] = bytes(size - _XSAVE_HDR)
            struct.pack_into("<Q", state, _XSAVE_HDR, bv)
        state += bytes(self.k.xstate_size - size)     # the host takes its whole layout; no dynamic state
        try:
            ptrace.set_xstate(t.hpid, bytes(state))
        except ptrace.HostError:
            return False
        return True

    def _bad_frame(self, t: Task, frame: int) -> None:
        printk.pr_info_ratelimited(f"{t.proc.comm.decode(errors='replace')}[{t.tid}] bad frame in "
                                   f"rt_sigreturn frame:{frame:x} ip:{t.regs.rip:x} sp:{t.regs.rsp:x}")
        self.force_sig(t, S.SIGSEGV)


# -- alternate signal stacks (t.altstack = (ss_sp, ss_flags as set, ss_size)) --
def _on_stack(t: Task, sp: int) -> bool:
    ss_sp, _, ss_size = t.altstack
    return ss_sp < sp and sp - ss_sp <= ss_size


def on_sig_stack(t: Task, sp: int) -> bool:
    """Is sp on the alternate stack?  Never with SS_AUTODISARM: the stack
    was disarmed when a handler started on it."""
    return not t.altstack[1] & SS_AUTODISARM and _on_stack(t, sp)


def sas_ss_flags(t: Task, sp: int) -> int:
    if not t.altstack[2]:
        return C.SS_DISABLE
    return C.SS_ONSTACK if on_sig_stack(t, sp) else 0


def set_altstack(t: Task, ss: tuple[int, int, int] | None, sp: int) -> tuple[int, int, int]:
    """Linux's do_sigaltstack: returns the old (ss_sp, ss_flags, ss_size) as
    sigaltstack(2) reports it, then installs ss if given."""
    cur_sp, cur_flags, cur_size = t.altstack
    old = (cur_sp, sas_ss_flags(t, sp) | (cur_flags & SS_FLAG_BITS), cur_size)
    if ss is not None:
        ss_sp, ss_flags, ss_size = ss
        if on_sig_stack(t, sp):
            raise KernelError(E.EPERM)
        mode = ss_flags & ~SS_FLAG_BITS
        if mode not in (0, C.SS_DISABLE, C.SS_ONSTACK):
            raise KernelError(E.EINVAL)
        if mode == C.SS_DISABLE:
            ss_sp, ss_size = 0, 0
        elif ss_size < MINSIGSTKSZ:
            raise KernelError(E.ENOMEM)
        t.altstack = (ss_sp, ss_flags, ss_size)
    return old
