"""The trap loop: one kernel thread serving every guest task.

Lock/ordering notes: there are no locks; the kernel is single-threaded.
A task is in exactly one state (task.State).  Only `_run_handler` runs
syscall code; only `finish` resumes a task after a syscall (via the event
loop's resume batch, flushed by the next wait); only `wake` moves a blocked
task to the run queue.  Signals are delivered in `finish`, the one place a
task goes back to user mode, as Linux does on return to user space.
"""
from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Callable

from arch_um import clock, ptrace
from arch_um.clock import monotonic_ns
from arch_um.events import EV_TASK, EVENT_HEAD, EVENT_SIZE, NO_DEADLINE, EventLoop
from arch_um.hostfile import HostFdsExhausted
from arch_um.memory import GuestFault
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NUMBERS
from umlpy.kernel import ioac, printk, ptracer, seccomp, strace, timekeeping, userfaultfd
from umlpy.kernel.errors import Block, KernelError, NoReturn
from umlpy.kernel.signal import release_enroute, takeable
from umlpy.kernel.task import State, Task
from umlpy.kernel.timekeeping import WallDeadline
from umlpy.kernel.wait import set_wake_hook

MASK64 = (1 << 64) - 1
_ERESTARTSYS = -E.ERESTARTSYS & MASK64
_RESTART_LO, _RESTART_HI = -E.ERESTART_RESTARTBLOCK, -E.ERESTARTSYS
_DEAD = State.DEAD
WAKE_NORMAL, WAKE_TIMEOUT, WAKE_SIGNAL = 0, 1, 2


# Syscalls that give another task what it waits for.  In one turn they run
# before the others (see _producers_first).
_PRODUCERS = frozenset(NUMBERS[n] for n in (
    "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg", "sendmmsg",
    "sendfile", "splice", "tee"))


def _producers_first(turn: list[tuple[int, tuple[int, ...]]]) -> list[tuple[int, tuple[int, ...]]]:
    """A turn's events (index, head) with the notifications of producing
    syscalls moved ahead of the rest, in their order.  The notifications of
    one turn come from as many tasks, each in a syscall the others have not
    seen, so their order is free; a task's own later stop (never earlier:
    the trap loop takes notifications before stops) stays after it.  So a
    reader whose read came in the same turn as the write it waits for finds
    the bytes there and does not park and retry (TCP bulk: a 64 KiB read
    then costs one handler run, not two)."""
    first, rest = [], []
    for e in turn:
        (first if e[1][5] and e[1][13] in _PRODUCERS else rest).append(e)
    return first + rest if first and rest else turn


class Timer:
    """One deadline on the scheduler's heap.  A cancelled timer stays in the
    heap until it reaches the top or the heap is compacted (`Scheduler.
    _cancelled` counts them), but lets go of its callback at once, so what
    the callback holds (a dead task, a closed file) is not kept alive."""

    __slots__ = ("deadline", "fn", "cancelled", "sched")

    def __init__(self, deadline: int, fn: Callable[[], None], sched: Scheduler) -> None:
        self.deadline = deadline
        self.fn = fn
        self.cancelled = False
        self.sched = sched

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.fn = None
            self.sched._timer_cancelled()


# Compact the timer heap when more than half of it (and this many) are
# cancelled timers: a guest re-arming long timeouts cannot grow it.
COMPACT_MIN = 64
DEADLINE_MAX = (1 << 63) - 1          # KTIME_MAX: a later deadline is never


class Scheduler:
    def __init__(self, kernel) -> None:
        self.k = kernel
        self.loop = EventLoop()
        self.tasks: dict[int, Task] = {}     # host pid -> task
        self.runq: deque[Task] = deque()
        self.switches = 0       # the tasks' waits: /proc/stat's ctxt
        self._timers: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0                  # cancelled timers still in the heap
        self.fd_handlers: dict[int, Callable[[int], None]] = {}
        self.idle_hooks: list[Callable[[], bool]] = []
        self.table = None
        self.current: Task | None = None     # the task whose syscall runs now
        self.oom = None                      # kernel/oom.OomKiller: samples while guests run
        set_wake_hook(self.wake)
        ioac.attach(self)       # the disks charge the current task's reads

    # -- timers -------------------------------------------------------------
    def add_timer(self, deadline: int, fn: Callable[[], None]) -> Timer:
        deadline = min(deadline, DEADLINE_MAX)      # the host's wait takes a 64-bit time
        t = Timer(deadline, fn, self)
        heapq.heappush(self._timers, (deadline, next(self._seq), t))
        return t

    def timer_heap(self) -> list:
        """The pending timers, cancelled ones not yet dropped included."""
        return self._timers

    def _timer_cancelled(self) -> None:
        self._cancelled += 1
        if self._cancelled > COMPACT_MIN and 2 * self._cancelled > len(self._timers):
            self._timers = [e for e in self._timers if not e[2].cancelled]
            heapq.heapify(self._timers)
            self._cancelled = 0

    def _pop_timer(self) -> Timer:
        t = heapq.heappop(self._timers)[2]
        if t.cancelled:
            self._cancelled -= 1
        return t

    def _run_timers(self) -> None:
        now = clock.monotonic_ns()
        while self._timers and self._timers[0][0] <= now:
            t = self._pop_timer()
            if not t.cancelled:
                t.cancelled = True      # fired: a later cancel() is a no-op
                fn, t.fn = t.fn, None
                try:
                    fn()
                except Exception as exc:
                    self.oops("a timer", exc)

    def _deadline(self) -> int:
        """When the loop must wake up: the nearest live timer (monotonic
        ns, met to the nanosecond by the host timer), 0 (now) with tasks
        to run or a deadline already past, NO_DEADLINE with neither."""
        if self.runq:
            return 0
        while self._timers and self._timers[0][2].cancelled:
            self._pop_timer()
        return max(0, self._timers[0][0]) if self._timers else NO_DEADLINE

    # -- devices --------------------------------------------------------------
    def watch_fd(self, fd: int, events: int, handler: Callable[[int], None]) -> bool:
        """Call handler(events) from the loop while fd is ready for events
        (level-triggered; watching a watched fd again changes its events).
        Handlers run oops-guarded: an exception is logged, the loop goes on."""
        self.fd_handlers[fd] = handler
        return self.loop.register(fd, events)

    def unwatch_fd(self, fd: int) -> None:
        """Stop watching fd; done before the fd is closed, so its number,
        reused by the host for the next fd, starts with no stale handler."""
        self.fd_handlers.pop(fd, None)
        self.loop.unregister(fd)

    # -- the loop -------------------------------------------------------------
    def run(self) -> None:
        loop = self.loop
        tasks = self.tasks
        handlers = self.fd_handlers
        hooks = self.idle_hooks
        head = EVENT_HEAD.unpack_from
        buf = loop.event_buf
        while True:
            busy = False
            if hooks:
                for hook in hooks:
                    try:
                        busy |= hook()    # a device did work: poll again, don't sleep
                    except Exception as exc:
                        self.oops("an idle hook", exc)
            evs, n = loop.run(0 if busy else self._deadline())
            if n == 1:
                turn = ((0, head(buf, 0)),)
            else:
                turn = _producers_first([(i, head(buf, i * EVENT_SIZE)) for i in range(n)])
            for i, h in turn:
                if h[0] == EV_TASK:
                    t = tasks.get(h[1])
                    if t is not None:
                        try:
                            self._task_event(t, evs, i, h)
                        except Exception as exc:
                            self.oops(f"event of task {t.tid}", exc, t)
                else:
                    fh = handlers.get(h[1])
                    if fh is not None:
                        try:
                            fh(h[2])
                        except Exception as exc:
                            self.oops(f"device fd {h[1]}", exc)
            timers = self._timers
            if timers and timers[0][0] <= monotonic_ns():
                self._run_timers()
            while self.runq:
                t = self.runq.popleft()
                if t.state is State.KERNEL:
                    try:
                        self._retry(t)
                    except Exception as exc:
                        self.oops(f"wake-up of task {t.tid}", exc, t)

    def oops(self, what: str, exc: Exception, t: Task | None = None) -> None:
        """A kernel bug outside a syscall handler: log it, end the task it
        happened to (as Linux's oops ends the current task), keep going."""
        printk.oops(what, exc)
        if t is not None and t.state is not State.DEAD:
            try:
                self.k.procs.kill_process(t.proc, S.SIGSEGV)
            except Exception as exc2:
                printk.oops(f"killing task {t.tid} after an oops", exc2)

    def _task_event(self, t: Task, evs, i: int, h: tuple[int, ...]) -> None:
        """Event i of evs, its head h (arch_um.events.EVENT_HEAD)."""
        _, pid, st, has_regs, compat, notif, msg, a3, a5, a4, a2, a1, a0, nr = h   # r10, r9, r8, ...
        if st & 0x7f != 0x7f:   # exited or killed on the host
            del self.tasks[t.hpid]
            ptrace.forget(t.hpid)
            if t.state is not State.DEAD:
                sig = st & 0x7f
                printk.pr_warn(f"task {t.tid} ({t.proc.comm.decode(errors='replace')}) "
                               f"died on the host (status {st:#x})")
                self.k.procs.task_died_on_host(t, sig or S.SIGKILL)
            return
        if t.state is State.DEAD:
            if st >> 16 == ptrace.EVENT_SECCOMP:
                # a thread that left by exit(2) (threads.exit_thread), stopped
                # at the seccomp stop of the stub's exit: let it go untraced,
                # so that it runs it and its host process reaps it (a traced
                # zombie thread would hold up a later host execve for good)
                del self.tasks[t.hpid]
                ptrace.detach(t.hpid)
            return      # killed: only its host exit is still to come
        if not has_regs and ptrace.converted(t.hpid, t.regs):
            return      # held in a notification, now also stopped: the kernel goes on with it
        t.state = State.KERNEL
        if has_regs:
            ptrace.load_stop(t.regs, evs, i, pid, notif, msg)
            if compat:
                self._compat_entry(t)
            elif t.ptrace is None:
                self._enter(t, nr, (a0, a1, a2, a3, a4, a5))
            else:
                self.syscall(t)
            return
        ptrace.getregs(t.hpid, t.regs)
        event = st >> 16
        sig = (st >> 8) & 0xff
        if event == ptrace.EVENT_STOP and t.regs.rax == _ERESTARTSYS and not t.regs.orig_rax >> 63 \
                and ptrace.seccomp_on():
            # stopped in a notification the kernel had not yet taken: that
            # syscall never began, so it runs after whatever the stop was
            # for (a signal's handler), as if it came later: never EINTR
            t.in_syscall = t.regs.orig_rax & 0xFFFFFFFF
            self.finish(t, -E.ERESTARTNOINTR)
            return
        if event == 0 and sig == S.SIGSEGV and userfaultfd.user_fault(self.k, t):
            return      # a registered missing page: userfaultfd's, not the guest's signal
        if event == 0 and sig not in (S.SIGSTOP, S.SIGTRAP):
            # a fault in guest code (SIGSEGV, SIGFPE, ...): the guest's signal
            self.k.signals.force_fault(t, sig)
        elif event == 0 and sig == S.SIGTRAP:
            self.k.signals.force_fault(t, S.SIGTRAP)
        self.finish(t, None, ptrace.REGS_CLEAN)

    def _compat_entry(self, t: Task) -> None:
        """A 32-bit syscall gate (int $0x80, or a syscall from a 32-bit code
        segment): this kernel has no IA32 emulation, and such a Linux
        answers int $0x80 with a general protection fault, SIGSEGV at the
        instruction.  Never a 64-bit call with the registers reinterpreted."""
        regs = t.regs
        regs.rax = regs.orig_rax
        regs.rip -= 2
        regs.orig_rax = MASK64
        t.regs_dirty = True
        printk.pr_info_ratelimited(f"{t.proc.comm.decode(errors='replace')}[{t.tid}] "
                                   "32-bit syscall entry refused (no IA32 emulation)")
        self.k.signals.force_sig(t, S.SIGSEGV)      # SI_KERNEL, no address
        self.finish(t, None, ptrace.REGS_ALL)

    # -- syscalls -------------------------------------------------------------
    def syscall(self, t: Task) -> None:
        t.in_syscall = t.regs.orig_rax & 0xFFFFFFFF
        if t.ptrace is not None:
            if not self._stopped(t):            # its tracer sees all its registers
                return
            if ptracer.syscall_entry(self.k, t, lambda: self._dispatch(t)):
                return
        self._dispatch(t)

    def _dispatch(self, t: Task) -> None:
        regs = t.regs
        if regs.orig_rax == MASK64 and t.ptrace is not None:
            self.finish(t, None)        # the tracer skipped it: rax stays as it set it
            return
        self._enter(t, regs.orig_rax, (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9))

    def _enter(self, t: Task, nr: int, args: tuple[int, ...]) -> None:
        """Run syscall nr (orig_rax) of t with its six argument registers."""
        nr &= 0xFFFFFFFF    # do_syscall_64 looks at the low 32 bits only
        t.in_syscall = nr
        if strace.tracer is not None:
            strace.tracer.enter(t, nr, args)
        sc = t.seccomp
        if sc is not None:
            instead = seccomp.verdict(self.k, t, sc, nr, args)
            if instead is not None:
                self._run_handler(t, instead, "seccomp")
                return
        entry = self.table.entries.get(nr)
        if entry is None:
            self.finish(t, self.table.unknown(t, nr))
            return
        t.block_args = args
        self._run_handler(t, entry.fn, entry.name, args)

    def _run_handler(self, t: Task, fn: Callable[..., int | None], name: str = "",
                     args: tuple[int, ...] | None = None) -> None:
        """Run fn() or, with args, the syscall handler fn(t, *args) (no
        closure for the common case: it costs on every syscall)."""
        self.current = t
        try:
            ret = fn() if args is None else fn(t, *args)
        except KernelError as e:
            ret = -e.errno
        except GuestFault as gf:
            again = fn if args is None else (lambda: fn(t, *args))
            redo = userfaultfd.kernel_fault(self.k, t, gf.args[0] if gf.args else None, again)
            if redo is not None:        # a registered missing page: wait for it, or go again
                self._run_handler(t, redo, name)
                return
            ret = -E.EFAULT
        except Block as b:
            self._park(t, b)
            return
        except (NoReturn, ptrace.TaskGone):
            return
        except HostFdsExhausted:
            # the guest's memory files took every host fd they may have:
            # file-max reached, as Linux's ENFILE says (not a kernel bug)
            printk.pr_warn_ratelimited("umlpy: no host fd left for guest memory files: ENFILE")
            ret = -E.ENFILE
        except Exception as exc:   # a kernel bug: oops, fail the syscall, keep going
            printk.oops(f"syscall {name or t.in_syscall} of task {t.tid}", exc)
            ret = -(E.ENOMEM if isinstance(exc, MemoryError) else E.EINVAL)
        self.finish(t, ret)

    def run_fault(self, t: Task, fn: Callable[[], None]) -> None:
        """Handle a page fault of t outside any syscall (userfaultfd's): fn
        may wait (a Block whose restart is 0); then t makes the access again."""
        self.current = t
        try:
            fn()
        except Block as b:
            self._park(t, b)
            return
        self.finish(t, None, ptrace.REGS_CLEAN)

    def finish(self, t: Task, ret: int | None, how: int = ptrace.REGS_RAX) -> None:
        """Back to user mode: set the result, deliver signals, resume."""
        if t.state is _DEAD:
            return
        if ret is not None:
            t.regs.rax = ret & MASK64
        elif t.in_syscall >= 0:
            rax = t.regs.rax
            ret = rax - (1 << 64) if rax >> 63 else rax   # resumed after a stop
        if t.regs_dirty:
            how = ptrace.REGS_ALL
        if strace.tracer is not None:
            strace.tracer.leave(t, ret)
        if t.ptrace is not None and t.in_syscall >= 0:
            if not self._stopped(t) or ptracer.syscall_exit(self.k, t, how):
                return
        proc = t.proc
        if (t.pending | takeable(t)) & ~t.blocked or proc.stopped \
                or (t.ptrace is not None and (t.ptrace.inject is not None or t.ptrace.trap_stop)) \
                or (ret is not None and _RESTART_LO <= ret <= _RESTART_HI):
            if not self._stopped(t):            # a signal frame takes all its registers
                return
            how = self.k.signals.do_signal(t, how)
            if how is None:
                return
        t.regs_dirty = False
        t.in_syscall = -1
        release_enroute(t)
        t.state = State.USER
        oom = self.oom
        if oom is not None and oom.timer is None:
            oom.arm()
        stepped = t.ptrace is not None and t.ptrace.stepping     # a guest tracer's PTRACE_SINGLESTEP
        self.loop.queue_resume(t.hpid, t.regs, how,
                               ptrace.PTRACE_SYSEMU_SINGLESTEP if stepped else ptrace.PTRACE_SYSEMU)

    @staticmethod
    def _stopped(t: Task) -> bool:
        """Bring a task held in a seccomp notification to a real stop
        (arch_um/ptrace.py); False if it died meanwhile (its exit is the
        loop's next event)."""
        try:
            ptrace.ensure_stopped(t.hpid)
        except ptrace.HostError:
            return False
        return True

    # -- blocking -------------------------------------------------------------
    def _park(self, t: Task, b: Block) -> None:
        t.state = State.BLOCKED
        t.nvcsw += 1        # a voluntary context switch, as schedule() from a sleep counts it
        self.switches += 1
        t.block = b
        t.wake_reason = WAKE_NORMAL
        for q in b.queues:
            q.add(t)
        if b.deadline is not None:
            t.timer = self.add_timer(b.deadline, lambda: self.wake(t, WAKE_TIMEOUT))
            if isinstance(b.deadline, WallDeadline):
                self._follow(t, b)
        if self.k.signals.interrupts(t):
            self.wake(t, WAKE_SIGNAL)

    def _follow(self, t: Task, b: Block) -> None:
        """A wait until a time on a wall clock: when the guest sets the
        clock, its timeout moves with it (clock_was_set)."""
        def moved() -> None:
            deadline = b.deadline.moved()
            if deadline is not b.deadline and t.timer is not None:
                b.deadline = deadline
                t.timer.cancel()
                t.timer = self.add_timer(deadline, lambda: self.wake(t, WAKE_TIMEOUT))
        b.clock_watch = moved
        timekeeping.timekeeper().clock_set.watch(moved)

    def _unpark(self, t: Task) -> Block | None:
        b = t.block
        if b is not None:
            for q in b.queues:
                q.remove(t)
            if b.clock_watch is not None:
                timekeeping.timekeeper().clock_set.unwatch(b.clock_watch)
                b.clock_watch = None
        if t.timer is not None:
            t.timer.cancel()
            t.timer = None
        return b

    def wake(self, t: Task, reason: int = WAKE_NORMAL) -> None:
        if t.state is not State.BLOCKED:
            return
        self._unpark(t)
        t.state = State.KERNEL
        t.wake_reason = reason
        self.runq.append(t)

    def cancel_wait(self, t: Task) -> None:
        """A blocked task dies: take it off its queues and timer, and undo
        what its wait holds as a signal would (a fifo open's half-opened
        file, a futex queue entry); a dying task's memory may be gone."""
        b = self._unpark(t)
        t.block = None
        if b is not None and b.on_interrupt is not None:
            try:
                b.on_interrupt()
            except (KernelError, GuestFault):
                pass

    def _retry(self, t: Task) -> None:
        b = t.block
        t.block = None
        reason = t.wake_reason
        if reason == WAKE_SIGNAL:
            def interrupted() -> int | None:
                # what the wait must undo or store (nanosleep's remaining
                # time) can fail like any syscall code: EFAULT, not an oops
                if b.on_interrupt is not None:
                    b.on_interrupt()
                if not b.restart:
                    return None     # a fault's wait: the handler runs, the access faults again
                if b.restart == E.ERESTART_RESTARTBLOCK:
                    t.restart_fn = b.restart_fn
                return b.interrupted_result if b.interrupted_result is not None else -b.restart
            self._run_handler(t, interrupted)
            return
        if reason == WAKE_TIMEOUT and b.on_timeout is not None:
            self._run_handler(t, b.on_timeout)
            return
        if b.retry is not None:
            self._run_handler(t, b.retry)
            return
        entry = self.table.entries[t.in_syscall]
        self._run_handler(t, entry.fn, entry.name, t.block_args)

    # -- task bookkeeping -------------------------------------------------------
    def add_task(self, t: Task) -> None:
        self.tasks[t.hpid] = t

    def resume_new(self, t: Task) -> None:
        """Start a task whose registers were set by the kernel (fork, exec)."""
        t.regs_dirty = True
        self.finish(t, None, ptrace.REGS_ALL)
