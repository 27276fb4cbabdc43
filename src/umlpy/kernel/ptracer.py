"""Guest ptrace: tracer links and ptrace-stops (kernel/ptrace.c, signal.c).

Every guest task is already a host tracee of this kernel, so a guest's
ptrace is emulated: a task in a ptrace-stop is one the kernel does not
resume (State.TRACED), as a blocked or group-stopped task, until its tracer
restarts it.  Its tracer learns of the stop through wait (the status kept
here) and a SIGCHLD with CLD_TRAPPED.  What a stop does when it ends is its
`resume` function, given the signal the tracer passes (0: none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import ptrace as P
from umlpy.abi import signals as S
from umlpy.kernel.task import Process, State, Task


@dataclass
class Ptrace:
    """A tracee's side of the link (Linux's task->ptrace, ->parent, jobctl)."""
    tracer: Process
    seized: bool = False
    options: int = 0
    report: int = 0             # the wait status of a stop not yet reported
    resume: Callable[[int], None] | None = None
    info: tuple | None = None   # (signo, si_code, fields) of the current stop
    syscalls: bool = False      # restarted by PTRACE_SYSCALL
    at_exit_stop: bool = False  # the syscall-exit stop of this syscall was made
    past_group_stop: bool = False   # restarted out of the current group stop
    inject: tuple | None = None     # (signo, si_code, fields) to deliver now


def link(tracee: Task, tracer: Process, seized: bool = False, options: int = 0) -> None:
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


def stop(k, t: Task, status: int, info: tuple, resume: Callable[[int], None]) -> None:
    """Park t in a ptrace-stop reported to its tracer as `status` (as
    ptrace_stop + do_notify_parent_cldstop(CLD_TRAPPED))."""
    pt = t.ptrace
    t.state = State.TRACED
    pt.report = status
    pt.info = info
    pt.resume = resume
    tracer = pt.tracer
    tracer.child_wq.wake_all()
    if not tracer.sighand.actions[S.SIGCHLD].flags & C.SA_NOCLDSTOP:
        k.signals.send_proc(tracer, S.SIGCHLD, C.CLD_TRAPPED,
                            (k.procs.vnr(tracer, t.tid), t.proc.creds.uid, (status >> 8) & 0xff))


def restart(t: Task, sig: int) -> None:
    """The tracer restarts t (CONT, SYSCALL, DETACH) with sig to pass on."""
    pt_resume = None
    if t.ptrace is not None:
        pt_resume, t.ptrace.resume = t.ptrace.resume, None
        t.ptrace.report = 0
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
                info = (new, C.SI_USER, (k.procs.vnr(t.proc, tracer.pid), tracer.creds.uid))
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
    restart it out of the stop (a restart's signal is ignored)."""
    def resume(_: int) -> None:
        if t.ptrace is not None:
            t.ptrace.past_group_stop = True
        k.sched.finish(t, None, how)
    _past_syscall_exit(t)
    stop(k, t, (sig << 8) | 0x7f, (sig, C.SI_USER, (0, 0)), resume)


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
    """The syscall-entry stop under PTRACE_SYSCALL, rax = -ENOSYS as Linux
    shows it; run() goes on with the syscall in orig_rax (maybe changed,
    -1: skipped).  False if there is no stop."""
    pt = t.ptrace
    pt.at_exit_stop = False
    if not pt.syscalls:
        return False
    t.regs.rax = (-38) & 0xFFFFFFFFFFFFFFFF
    send = _send_on_restart(k, t)

    def resume(sig: int) -> None:
        send(sig)
        run()
    stop(k, t, _trap_status(t), (S.SIGTRAP, 0x80 | S.SIGTRAP, (0, 0)), resume)
    return True


def syscall_exit(k, t: Task, how: int) -> bool:
    """The syscall-exit stop, once per syscall, before signals are
    delivered; False if there is none."""
    pt = t.ptrace
    if not pt.syscalls or pt.at_exit_stop:
        return False
    pt.at_exit_stop = True
    send = _send_on_restart(k, t)

    def resume(sig: int) -> None:
        send(sig)
        k.sched.finish(t, None, how)
    stop(k, t, _trap_status(t), (S.SIGTRAP, 0x80 | S.SIGTRAP, (0, 0)), resume)
    return True


def exec_done(k, t: Task) -> None:
    """A traced execve succeeded: a tracee not seized gets the SIGTRAP
    of old (no PTRACE_EVENT_EXEC here: PTRACE_O_TRACEEXEC is refused)."""
    if not t.ptrace.seized:
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
        if t.ptrace.options & P.O_EXITKILL and not t.proc.exited:
            unlink(t)
            k.procs.kill_process(t.proc, S.SIGKILL)
        else:
            detach(k, t, 0)


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
        if t is proc.leader and pt.tracer is not proc.parent and not pt.tracer.exited:
            first = pt.tracer
        else:
            unlink(t)
            pt.tracer.child_wq.wake_all()
    return first


def traced_zombie(proc: Process) -> Process | None:
    """The tracer that is still to reap this zombie, if any."""
    pt = proc.leader.ptrace if proc.threads else None
    return pt.tracer if pt is not None else None
