"""Guest ptrace: tracer links and ptrace-stops (kernel/ptrace.c, signal.c).

Every guest task is already a host tracee of this kernel, so a guest's
ptrace is emulated: a task in a ptrace-stop is one the kernel does not
resume (State.TRACED), as a blocked or group-stopped task, until its tracer
restarts it.  Its tracer learns of the stop through wait (the status kept
here) and a SIGCHLD with CLD_TRAPPED.  What a stop does when it ends is its
`resume` function, given the signal the tracer passes (0: none).

Event stops (ptrace_event) come from inside a syscall: the stop's resume
runs the rest of the syscall.  Single-stepping is the host's: a stepped
task is resumed with PTRACE_SYSEMU_SINGLESTEP, whose trap after one
instruction comes back as a SIGTRAP fault of the task; a syscall in
between is the kernel's and reports its step itself (syscall_exit).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from arch_um import ptrace as hptrace
from umlpy.abi import consts as C
from umlpy.abi import ptrace as P
from umlpy.abi import signals as S
from umlpy.kernel.errors import NoReturn
from umlpy.kernel.task import Process, State, Task

WAKE_SIGNAL = 2     # sched's: a wait ends as a signal would end it


@dataclass
class Ptrace:
    """A tracee's side of the link (Linux's task->ptrace, ->parent, jobctl)."""
    tracer: Process | KernelTracer
    seized: bool = False
    options: int = 0
    report: int = 0             # the wait status of a stop not yet reported
    resume: Callable[[int], None] | None = None
    info: tuple | None = None   # (signo, si_code, fields) of the current stop
    syscalls: bool = False      # restarted by PTRACE_SYSCALL
    at_exit_stop: bool = False  # the syscall-exit stop of this syscall was made
    past_group_stop: bool = False   # restarted out of the current group stop
    inject: tuple | None = None     # (signo, si_code, fields) to deliver now
    message: int = 0            # PTRACE_GETEVENTMSG's, set by an event stop
    stepping: bool = False      # restarted by SINGLESTEP or SYSEMU_SINGLESTEP
    sysemu: bool = False        # restarted by SYSEMU: a syscall stops at entry and is not run
    trap_stop: bool = False     # JOBCTL_TRAP_STOP/NOTIFY: a PTRACE_EVENT_STOP is due
    listening: bool = False     # PTRACE_LISTEN: stopped, but in no ptrace-stop for the tracer
    exited: bool = False        # a thread that ended, its tracer's zombie until waited for


class KernelTracer:
    """A tracer inside the kernel (the gdb server, umlpy.debug): it holds
    its tracees in the same ptrace-stops as a guest tracer, but learns of
    them by a call instead of wait and SIGCHLD, asks for no events, and
    never reaps them.  Seen from the guest it is the kernel: TracerPid 0."""
    pid = 0
    exited = False

    def __init__(self) -> None:
        self.ptraced: list[Task] = []

    def stopped(self, t: Task) -> None:
        """t entered a ptrace-stop (pt.report, pt.info say which)."""

    def gone(self, t: Task) -> None:
        """t ended (its process, or the thread alone): the link is undone."""

    def cloned(self, parent: Task, child: Task) -> None:
        """A tracee made a thread or a process, not yet run."""


def link(tracee: Task, tracer: Process | KernelTracer, seized: bool = False, options: int = 0) -> None:
    tracee.ptrace = Ptrace(tracer, seized, options)
    tracer.ptraced.append(tracee)


def unlink(tracee: Task) -> Ptrace | None:
    pt = tracee.ptrace
    if pt is None:
        return None
    tracee.ptrace = None
    if tracee in pt.tracer.ptraced:
        pt.tracer.ptraced.remove(tracee)
    return pt


def stop(k, t: Task, status: int, info: tuple, resume: Callable[[int], None],
         why: int = C.CLD_TRAPPED) -> None:
    """Park t in a ptrace-stop reported to its tracer as `status` (as
    ptrace_stop + do_notify_parent_cldstop(why): CLD_STOPPED for the
    stops of job control, whose SIGCHLD carries the group stop's signal)."""
    pt = t.ptrace
    t.state = State.TRACED
    pt.report = status
    pt.info = info
    pt.resume = resume
    pt.listening = False
    tracer = pt.tracer
    if isinstance(tracer, KernelTracer):
        tracer.stopped(t)
        return
    tracer.child_wq.wake_all()
    if not tracer.sighand.actions[S.SIGCHLD].flags & C.SA_NOCLDSTOP:
        if why == C.CLD_TRAPPED:
            val = (status >> 8) & 0x7f
        else:
            val = (t.proc.stop_report >> 8) & 0x7f if t.proc.stopped else 0
        k.signals.send_proc(tracer, S.SIGCHLD, why, (k.procs.vnr(tracer, t.tid), t.proc.creds.uid, val))


def enabled(t: Task, event: int) -> bool:
    """ptrace_event_enabled: PTRACE_O_TRACEx is 1 << PTRACE_EVENT_x."""
    return t.ptrace is not None and bool(t.ptrace.options & (1 << event))


def event_stop(k, t: Task, event: int, msg: int, resume: Callable[[int], None],
               sig: int = S.SIGTRAP, why: int = C.CLD_TRAPPED) -> None:
    """ptrace_do_notify: the stop whose status is ((event << 8) | sig) << 8
    | 0x7f, its siginfo's si_code (event << 8) | sig, sent by the task
    itself; msg is what PTRACE_GETEVENTMSG reads."""
    t.ptrace.message = msg
    code = (event << 8) | sig
    stop(k, t, (code << 8) | 0x7f, (sig, code, (k.procs.vnr(t.proc, t.tid), t.proc.creds.uid)),
         resume, why)


def syscall_event(k, t: Task, event: int, msg: int, then: Callable[[], int | None]) -> int | None:
    """ptrace_event(event, msg) inside a syscall, if the tracer asked for
    it: t stops, and then() (the rest of the syscall) runs once the
    tracer restarts it (a signal the restart passes is dropped, as
    Linux's ptrace_event drops it); else then() now."""
    if not enabled(t, event):
        return then()
    event_stop(k, t, event, msg, lambda _: k.sched._run_handler(t, then))
    raise NoReturn()


def exit_event(k, t: Task, status: int, then: Callable[[], None]) -> None:
    """PTRACE_EVENT_EXIT of a fatal signal, at the start of do_exit,
    message the wait status to come: the task stops while all of it is
    still there; then() is the exit itself (exit and exit_group report
    it with syscall_event)."""
    if not enabled(t, P.EVENT_EXIT):
        then()
        return
    _past_syscall_exit(t)
    event_stop(k, t, P.EVENT_EXIT, status, lambda _: then())


def clone_event(t: Task, flags: int, exit_signal: int) -> int:
    """The event a clone reports (kernel_clone's trace), 0 if none."""
    if t.ptrace is None or flags & C.CLONE_UNTRACED:
        return 0
    if flags & C.CLONE_VFORK:
        event = P.EVENT_VFORK
    elif exit_signal == S.SIGCHLD:
        event = P.EVENT_FORK
    else:
        event = P.EVENT_CLONE
    return event if enabled(t, event) else 0


def child_nr(k, t: Task, nr: int) -> int:
    """ptrace_event_pid's message: a new task's number as t's tracer sees it."""
    if t.ptrace is None or isinstance(t.ptrace.tracer, KernelTracer):
        return 0
    return k.procs.vnr(t.ptrace.tracer, nr)


def start_child(k, t: Task, child: Task, flags: int, event: int) -> None:
    """ptrace_init_task, then the child's first run: when the clone
    reports an event (or with CLONE_PTRACE), the child is traced by t's
    tracer with t's options, and starts with a SIGSTOP pending or, seized,
    with a PTRACE_EVENT_STOP."""
    pt = t.ptrace
    if pt is not None and isinstance(pt.tracer, KernelTracer):
        pt.tracer.cloned(t, child)      # as gdbserver's TRACECLONE, without the event stops
    elif pt is not None and (event or flags & C.CLONE_PTRACE) and not pt.tracer.exited:
        link(child, pt.tracer, pt.seized, pt.options)
        if pt.seized:
            child.ptrace.trap_stop = True
        else:
            k.signals.send_task(child, S.SIGSTOP, C.SI_USER, (0, 0))
    k.sched.resume_new(child)


def jobctl_trap(k, t: Task, how: int) -> None:
    """do_jobctl_trap of a seized tracee (PTRACE_INTERRUPT, a new child, the
    end of a group stop): PTRACE_EVENT_STOP with the group stop's signal
    while its process is stopped, else SIGTRAP."""
    t.ptrace.trap_stop = False
    sig = (t.proc.stop_report >> 8) & 0xff or S.SIGSTOP if t.proc.stopped else S.SIGTRAP
    _past_syscall_exit(t)
    event_stop(k, t, P.EVENT_STOP, 0, lambda _: k.sched.finish(t, None, how), sig, C.CLD_STOPPED)


def notify_trap(k, t: Task) -> None:
    """ptrace_trap_notify / PTRACE_INTERRUPT: a seized tracee is to trap: a
    listening one now, a running one when it next enters the kernel, a
    waiting one as a signal ends its wait (its syscall restarts after)."""
    pt = t.ptrace
    pt.trap_stop = True
    if pt.listening:
        restart(t, 0)
    elif t.state is State.USER:
        k.sched.loop.flush()
        hptrace.interrupt(t.hpid)
    elif t.state is State.BLOCKED:
        k.sched.wake(t, WAKE_SIGNAL)


def group_continued(k, proc: Process) -> None:
    """SIGCONT ends a group stop: each seized tracee is to report it."""
    for t in proc.threads:
        if t.ptrace is not None and t.ptrace.seized and t.state is not State.DEAD:
            notify_trap(k, t)


def listen(t: Task) -> bool:
    """PTRACE_LISTEN: a tracee in a PTRACE_EVENT_STOP stays stopped but
    leaves the tracer's hands until its next trap; False if it is not in
    such a stop."""
    pt = t.ptrace
    if pt.info is None or pt.info[1] >> 8 != P.EVENT_STOP:
        return False
    pt.listening = True
    pt.report = 0
    if pt.trap_stop:
        restart(t, 0)
    return True


def restart(t: Task, sig: int) -> None:
    """The tracer restarts t (CONT, SYSCALL, DETACH) with sig to pass on."""
    pt_resume = None
    if t.ptrace is not None:
        pt_resume, t.ptrace.resume = t.ptrace.resume, None
        t.ptrace.report = 0
        t.ptrace.listening = False
    t.state = State.KERNEL
    if pt_resume is not None:
        pt_resume(sig)


def signal_stop(k, t: Task, sig: int, code: int, fields: tuple, how: int) -> None:
    """The signal-delivery-stop (ptrace_signal): the tracer may cancel the
    signal, change it, or let it go on; a changed one comes as SI_USER
    from the tracer, and a blocked one is queued again."""
    def resume(new: int) -> None:
        pt = t.ptrace
        info = pt.info if pt is not None else (sig, code, fields)
        if new:
            if new != info[0]:
                tracer = pt.tracer if pt is not None else t.proc
                info = (new, C.SI_KERNEL, (0, 0)) if isinstance(tracer, KernelTracer) else \
                    (new, C.SI_USER, (k.procs.vnr(t.proc, tracer.pid), tracer.creds.uid))
            if t.blocked & S.sigbit(new):
                k.signals.send_task(t, new, info[1], info[2])
            elif pt is not None:
                pt.inject = info
            else:
                k.signals.send_task(t, new, info[1], info[2])
        k.sched.finish(t, None, how)
    _past_syscall_exit(t)
    stop(k, t, (sig << 8) | 0x7f, (sig, code, fields), resume)


def _past_syscall_exit(t: Task) -> None:
    """A stop on the way to user mode comes after the syscall-exit point:
    restarted by PTRACE_SYSCALL, the task stops at the next syscall entry."""
    t.ptrace.at_exit_stop = True


def group_stop(k, t: Task, sig: int, how: int) -> None:
    """A traced task reports the group stop to its tracer, which may
    restart it out of the stop (a restart's signal is ignored); a seized
    one reports it as a PTRACE_EVENT_STOP (do_jobctl_trap)."""
    def resume(_: int) -> None:
        if t.ptrace is not None:
            t.ptrace.past_group_stop = True
        k.sched.finish(t, None, how)
    _past_syscall_exit(t)
    if t.ptrace.seized:
        t.ptrace.trap_stop = False
        event_stop(k, t, P.EVENT_STOP, 0, resume, sig, C.CLD_STOPPED)
        return
    stop(k, t, (sig << 8) | 0x7f, (sig, C.SI_USER, (0, 0)), resume, C.CLD_STOPPED)


def handler_entered(k, t: Task) -> bool:
    """A stepped task entering a signal handler: stepping ends, and the
    tracer is told with a SIGTRAP stop at the handler's first instruction
    (tracehook_signal_handler); False if it is not stepped."""
    pt = t.ptrace
    if pt is None or not pt.stepping:
        return False
    pt.stepping = False
    _past_syscall_exit(t)
    stop(k, t, (S.SIGTRAP << 8) | 0x7f,
         (S.SIGTRAP, S.SIGTRAP, (k.procs.vnr(t.proc, t.tid), t.proc.creds.uid)),
         lambda _: k.sched.finish(t, None, hptrace.REGS_ALL))
    return True


def attach_stopped(k, t: Task) -> None:
    """A task attached while in a group stop goes straight into a ptrace
    group-stop (JOBCTL_TRAP_STOP): when ATTACH returns it is traced-stopped."""
    how = t.proc.stop_how.pop(t, None)
    if t.state is State.STOPPED and how is not None:
        group_stop(k, t, (t.proc.stop_report >> 8) & 0xff or S.SIGSTOP, how)


def _trap_status(t: Task) -> int:
    sig = S.SIGTRAP | (0x80 if t.ptrace.options & P.O_TRACESYSGOOD else 0)
    return (sig << 8) | 0x7f


def _send_on_restart(k, t: Task) -> Callable[[int], None]:
    """After a syscall stop, the restart's signal is sent to the tracee."""
    def send(sig: int) -> None:
        if sig:
            k.signals.send_task(t, sig, C.SI_USER, (0, 0))
    return send


def syscall_entry(k, t: Task, run: Callable[[], None]) -> bool:
    """The syscall-entry stop under PTRACE_SYSCALL or PTRACE_SYSEMU, rax =
    -ENOSYS as Linux shows it; run() goes on with the syscall in orig_rax
    (maybe changed, -1: skipped); under SYSEMU it is never run, and rax is
    what the tracer left.  False if there is no stop."""
    pt = t.ptrace
    pt.at_exit_stop = False
    if not pt.syscalls and not pt.sysemu:
        return False
    t.regs.rax = (-38) & 0xFFFFFFFFFFFFFFFF
    send = _send_on_restart(k, t)
    emulated = pt.sysemu

    def resume(sig: int) -> None:
        send(sig)
        if emulated:
            k.sched.finish(t, None)
        else:
            run()
    stop(k, t, _trap_status(t), (S.SIGTRAP, 0x80 | S.SIGTRAP, (0, 0)), resume)
    return True


def syscall_exit(k, t: Task, how: int) -> bool:
    """The syscall-exit stop, once per syscall, before signals are
    delivered; False if there is none.  A stepped task (not under SYSEMU)
    gets the step's SIGTRAP instead (user_single_step_report: TRAP_BRKPT
    at the next instruction), delivered as any signal."""
    pt = t.ptrace
    if pt.stepping and not pt.sysemu and not pt.at_exit_stop:
        pt.at_exit_stop = True
        k.signals.force_sig(t, S.SIGTRAP, C.TRAP_BRKPT, (t.regs.rip,))
        return False
    if not pt.syscalls or pt.at_exit_stop:
        return False
    pt.at_exit_stop = True
    send = _send_on_restart(k, t)

    def resume(sig: int) -> None:
        send(sig)
        k.sched.finish(t, None, how)
    stop(k, t, _trap_status(t), (S.SIGTRAP, 0x80 | S.SIGTRAP, (0, 0)), resume)
    return True


def exec_done(k, t: Task, old_tid: int) -> None:
    """A traced execve succeeded: PTRACE_EVENT_EXEC (message: the tid it
    had before, in the tracer's numbers) if asked for, else a tracee not
    seized gets the SIGTRAP of old."""
    if enabled(t, P.EVENT_EXEC):
        syscall_event(k, t, P.EVENT_EXEC, k.procs.vnr(t.ptrace.tracer, old_tid), lambda: None)
    elif not t.ptrace.seized:
        k.signals.send_task(t, S.SIGTRAP, C.SI_USER, (0, 0))


def detach(k, t: Task, sig: int) -> None:
    """PTRACE_DETACH, or a tracer's exit (sig 0): the link goes; a stopped
    tracee goes on, with sig if it was in a signal-delivery-stop; a zombie
    its tracer did not reap goes to its parent."""
    stopped = t.state is State.TRACED
    pt = unlink(t)
    if stopped and pt is not None and pt.resume is not None:
        t.state = State.KERNEL
        pt.resume(sig)
    elif t.proc.zombie and t is t.proc.leader:
        k.procs.notify_parent_exit(t.proc)


def tracer_exit(k, proc: Process) -> None:
    """exit_ptrace: the dying process's tracees go free (EXITKILL: killed)."""
    for t in list(proc.ptraced):
        if t.ptrace.exited:         # a thread's zombie nobody will wait for now
            reap_thread(k, t)
        elif t.ptrace.options & P.O_EXITKILL and not t.proc.exited:
            unlink(t)
            k.procs.kill_process(t.proc, S.SIGKILL)
        else:
            detach(k, t, 0)


def thread_exited(k, t: Task, status: int) -> None:
    """A traced thread ends by exit(2) while its process goes on: it stays
    its guest tracer's until waited for, which reports its exit status and
    reaps it (exit_notify for a ptraced thread: SIGCHLD to the tracer, a
    zombie that wait finds by its tid or with -1)."""
    pt = t.ptrace
    if pt is None or isinstance(pt.tracer, KernelTracer) or pt.tracer.exited:
        return
    pt.report, pt.exited, pt.resume = status, True, None
    tracer = pt.tracer
    tracer.child_wq.wake_all()
    k.signals.send_proc(tracer, S.SIGCHLD, C.CLD_EXITED,
                        (k.procs.vnr(tracer, t.tid), t.proc.creds.uid, (status >> 8) & 0xff))


def reap_thread(k, t: Task) -> None:
    """A traced thread's zombie goes: off its tracer's list, its tid given
    back (kept until now, see threads.forget_thread)."""
    unlink(t)
    k.procs.free_tid(t.tid)


def thread_gone(t: Task) -> None:
    """A thread ends while its process goes on: a kernel tracer lets go of
    it, and so does a guest tracer that has no exit to be told of (the
    leader whose tid an exec from another thread takes)."""
    pt = t.ptrace
    if pt is None or pt.exited:
        return
    unlink(t)
    if isinstance(pt.tracer, KernelTracer):
        pt.tracer.gone(t)


def tracee_exit(proc: Process) -> Process | None:
    """The tracee's process died: its threads leave their tracers, but
    for a leader traced by another than its parent, whose tracer is to
    reap it first (and is returned, to be told)."""
    first = None
    for t in proc.threads:
        pt = t.ptrace
        if pt is None:
            continue
        pt.report = 0
        if isinstance(pt.tracer, KernelTracer):
            unlink(t)
            pt.tracer.gone(t)
        elif t is proc.leader and pt.tracer is not proc.parent and not pt.tracer.exited:
            first = pt.tracer
        else:
            unlink(t)
            pt.tracer.child_wq.wake_all()
    return first


def traced_zombie(proc: Process) -> Process | None:
    """The tracer that is still to reap this zombie, if any."""
    pt = proc.leader.ptrace if proc.threads else None
    return pt.tracer if pt is not None else None
