"""Threads: tasks sharing one process (CLONE_VM | CLONE_THREAD).

A guest thread is a host thread of the guest process's host process: the
kernel injects clone(CLONE_VM|CLONE_SIGHAND|CLONE_THREAD) through the
stub, the new host thread is attached automatically (PTRACE_EVENT_CLONE),
and the kernel gives it the guest's registers (new stack, TLS).  Memory is
shared by the host; everything else (tid, signal mask and pending set,
clear_child_tid) is the kernel's.  A thread that exits alone leaves the
host by running exit(2) for real; the last one ends the process.
"""
from __future__ import annotations

import struct

from arch_um import host, procinfo, ptrace
from arch_um.memory import GuestFault, GuestMemory
from arch_um.stub import STUB_SYSCALL
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.abi import signals as S
from umlpy.kernel import futex, ioac, ptracer, signal, strace
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State, Task

HOST_THREAD_FLAGS = C.CLONE_VM | C.CLONE_SIGHAND | C.CLONE_THREAD


def inherit_task(child: Task, parent: Task, flags: int, stack: int, ptid: int, ctid: int,
                 tls: int) -> None:
    """What a new task (thread or process) takes from the one that cloned
    it: its registers (returning 0, on the new stack and TLS), its signal
    mask, its seccomp filters and Landlock domain, and the tid words clone was asked to write
    or clear."""
    ptrace.copy_regs(child.regs, parent.regs)
    child.regs.rax = 0
    child.seccomp = parent.seccomp
    child.landlock = parent.landlock
    if stack:
        child.regs.rsp = stack
    if flags & C.CLONE_SETTLS:
        child.regs.fs_base = tls
    child.blocked = parent.blocked
    vnr = child.kernel.procs.vnr
    # the task exists by now: as Linux's put_user of these, a bad address
    # is ignored rather than failing a clone that has happened; each side
    # gets the tid its own pid namespace sees
    if flags & C.CLONE_PARENT_SETTID:
        try:
            parent.mem.write(ptid, struct.pack("<i", vnr(parent.proc, child.tid)))
        except GuestFault:
            pass
    if flags & C.CLONE_CHILD_SETTID:
        try:
            child.mem.write(ctid, struct.pack("<i", vnr(child.proc, child.tid)))
        except GuestFault:
            pass
    if flags & C.CLONE_CHILD_CLEARTID:
        child.clear_child_tid = ctid


def host_thread(t: Task) -> int:
    """A new host thread in t's host process (stopped, attached): its pid.
    KernelError if the host refuses the clone."""
    r = ptrace.inject(t.hpid, t.regs, NR["clone"], HOST_THREAD_FLAGS, 0, 0, 0, 0)
    if r.fault or r.result < 0:
        raise KernelError(-r.result if r.result < 0 else E.EAGAIN, "host clone of a thread failed")
    ptrace.wait_pid(r.result)
    return r.result


def clone_thread(k, t: Task, flags: int, exit_signal: int, stack: int, ptid: int, ctid: int, tls: int,
                 set_tid: tuple[int, ...] = ()) -> int:
    """A new thread of t's process; without CLONE_FILES or CLONE_FS it has
    its own copy of t's fd table or root, cwd and umask (set_tid: clone3's)."""
    if not flags & C.CLONE_SIGHAND or not flags & C.CLONE_VM:
        raise KernelError(E.EINVAL)
    proc = t.proc
    k.procs.check_new_task(t)
    sched = t.sched.forked()
    nrs = k.procs.reserve_pid(t, proc.pidns, set_tid)
    files = t.files.share() if flags & C.CLONE_FILES else t.files.copy(k.tunables.nr_open)
    try:
        hpid = host_thread(t)
    except KernelError:
        files.release()
        raise
    tid = k.procs.alloc_task_pid(nrs)
    fs = t.fs if flags & C.CLONE_FS else t.fs.copy()
    child = Task(tid, proc, hpid, GuestMemory(hpid), files, fs, sched)
    child.kernel = k
    inherit_task(child, t, flags, stack, ptid, ctid, tls)
    k.keys.new_thread(t, child)
    proc.threads.append(child)
    k.procs.by_tid[tid] = child
    k.sched.add_task(child)
    event = ptracer.clone_event(t, flags, exit_signal)
    ptracer.start_child(k, t, child, flags, event)
    vtid = k.procs.vnr(proc, tid)
    if not event:
        return vtid
    return ptracer.syscall_event(k, t, event, ptracer.child_nr(k, t, tid), lambda: vtid)


def clear_tid(k, t: Task) -> None:
    """CLONE_CHILD_CLEARTID / set_tid_address: zero the word, wake one waiter."""
    addr = t.clear_child_tid
    if not addr:
        return
    t.clear_child_tid = 0
    try:
        t.mem.write(addr, b"\0\0\0\0")
    except Exception:
        return
    k.futexes.wake(k.futexes.key(t, addr, False), 1)


def forget_thread(k, t: Task) -> None:
    """The kernel's side of a thread's end: its robust futexes, its wait,
    its tid and its handle on guest memory (the process's own stays)."""
    k.futexes.forget(t)
    futex.task_exit(k, t)
    ptracer.thread_gone(t)
    if t.state is State.BLOCKED:
        k.sched.cancel_wait(t)
    proc = t.proc
    member = t in proc.threads
    if member:
        signal.forget_queue(t)      # while it is live: its queue's count goes back
    t.state = State.DEAD
    if member:
        proc.threads.remove(t)
        ioac.thread_ended(t)
    proc.stop_how.pop(t, None)
    k.procs.by_tid.pop(t.tid, None)
    k.procs.proc_flush(proc.pid, t.tid)
    if t.ptrace is None:        # a traced one keeps its tid until its tracer reaps it
        k.procs.free_tid(t.tid)
    k.keys.drop_thread(t)
    drop_own_mem(t)
    t.files.release()


def drop_own_mem(t: Task) -> None:
    """Close a thread's own /proc/PID/mem handle; the one its process's
    address space holds (mm.mem) stays for the others."""
    mm = t.proc.mm
    if t.mem is not None and (mm is None or t.mem is not mm.mem):
        t.mem.close()


def exit_thread(k, t: Task, code: int) -> bool:
    """exit(2) of one thread; False if it is the last (the process exits)."""
    proc = t.proc
    live = [x for x in proc.threads if x.state is not State.DEAD]
    if len(live) <= 1:
        return False
    if strace.tracer is not None:
        strace.tracer.exited(t, (code & 0xff) << 8)
    ptracer.thread_exited(k, t, (code & 0xff) << 8)
    clear_tid(k, t)
    forget_thread(k, t)
    # leave the host for real: this host thread runs exit(2) itself
    regs = t.regs
    regs.rip = STUB_SYSCALL
    regs.rax = NR["exit"]
    regs.rdi = code & 0xFF
    regs.orig_rax = (1 << 64) - 1
    ptrace.resume(t.hpid, regs, ptrace.REGS_ALL, ptrace.PTRACE_CONT)
    return True


def de_thread(k, t: Task) -> None:
    """execve in a multi-threaded process (or from a thread whose leader has
    gone): every other thread dies and the caller becomes the leader, its tid
    now the pid, as Linux's de_thread.

    The host would do the same to its threads, but renumbers the caller
    under ptrace; instead the caller moves to a fresh host process that
    shares its memory until the exec that follows, and the old host process
    is killed whole.  So too when the guest's other threads have all gone
    but one's host thread has not yet (exit_thread's, until the loop lets
    it go): the host's own de_thread would wait for the kernel to reap it,
    while the kernel waits for the exec.
    """
    proc = t.proc
    others = [x for x in proc.threads if x is not t]
    if not others and t.tid == proc.pid and procinfo.thread_count(t.hpid) <= 1:
        return      # (a host thread of one that exited may still be on its way out: see below)
    r = ptrace.inject(t.hpid, t.regs, NR["clone"], C.CLONE_VM | C.CLONE_PARENT | S.SIGCHLD, 0, 0, 0, 0)
    if r.fault or r.result < 0:
        raise KernelError(-r.result if r.result < 0 else E.EAGAIN, "host clone for exec failed")
    hpid = r.result
    ptrace.wait_pid(hpid)
    for x in others:
        if x.tid != proc.pid:
            # killed by the exec, it ends as any thread for its tracer, with
            # the status 0 of do_group_exit during an exec; the leader whose
            # tid the caller takes goes silently, as Linux releases it
            ptracer.thread_exited(k, x, 0)
        forget_thread(k, x)
        k.sched.tasks.pop(x.hpid, None)
    old = t.hpid
    k.sched.tasks.pop(old, None)
    host.kill_host(old, S.SIGKILL)
    drop_own_mem(t)
    t.hpid = proc.host_tgid = hpid
    t.mem = GuestMemory(hpid)
    if proc.mm.users == 1:      # exec drops this handle with the old image
        if proc.mm.mem is not None:
            proc.mm.mem.close()
        proc.mm.mem = t.mem
    k.sched.add_task(t)
    k.procs.by_tid.pop(t.tid, None)
    k.procs.free_tid(t.tid)
    t.tid = proc.pid
    proc.threads[:] = [t]
