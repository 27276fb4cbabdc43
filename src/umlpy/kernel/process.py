"""Process lifecycle: pids, init, fork, exit, kill, stop/continue, reaping.

Every guest process is a host child of the kernel: fork is an injected
clone(CLONE_PARENT|SIGCHLD), so the kernel reaps every host zombie itself
while guest-visible parenthood, zombies and wait statuses are its own.
"""
from __future__ import annotations

from typing import Callable

from arch_um import host, ptrace
from arch_um.memory import GuestMemory
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import ptrace as P
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.kernel import cpulimit, futex, hostas, ipc, rusage, threads
from umlpy.kernel import jobctl, nsproxy, printk, ptracer, strace, timens, trapset, userns
from umlpy.kernel.cred import capable
from umlpy.kernel.cgroup import Cgroup
from umlpy.kernel.pidns import PidMap, Reservation
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.task import Creds, FsContext, Process, SchedState, SigHand, State, Task
from umlpy.kernel.tunables import RESERVED_PIDS
from umlpy.kernel.wait import WaitQueue


class Halt(BaseException):
    """The machine stops: init died, or reboot(2)."""

    def __init__(self, code: int, reboot: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.reboot = reboot


def status_exited(code: int) -> int:
    return (code & 0xff) << 8


class Procs:
    def __init__(self, kernel) -> None:
        self.k = kernel
        self.by_pid: dict[int, Process] = {}
        self.by_tid: dict[int, Task] = {}      # threads other than leaders
        self._last = 0
        self.pidmap = PidMap(lambda nr: nr in self.by_pid or nr in self.by_tid)
        self.cgroup_root = Cgroup("", None)
        self.audit_sessions = 0     # the last audit session id given
        self.sigpending: dict[int, int] = {}    # RLIMIT_SIGPENDING's count per real uid (Process.charge_sigpending)

    def new_audit_session(self) -> int:
        """audit_set_loginuid's next session id, never AUDIT_SID_UNSET."""
        self.audit_sessions = self.audit_sessions % 0xFFFFFFFE + 1
        return self.audit_sessions

    def alloc_pid(self) -> int:
        """The next free pid after the last one given (idr_alloc_cyclic):
        below pid_max, going round to RESERVED_PIDS past it."""
        pid_max = self.k.tunables.pid_max
        for _ in range(pid_max):
            nxt = self._last + 1
            self._last = nxt if nxt < pid_max else RESERVED_PIDS
            if self._last not in self.by_pid and self._last not in self.by_tid:
                return self._last
        raise KernelError(E.EAGAIN)

    def task(self, tid: int) -> Task | None:
        t = self.by_tid.get(tid)
        if t is not None:
            return t
        p = self.by_pid.get(tid)
        if p is None or p.exited or not p.threads:
            return None
        return next((x for x in p.threads if x.tid == tid), None)

    # -- pid namespaces: the syscalls' translation (kernel/pidns.py) ----------
    def vnr(self, viewer: Process, nr: int) -> int:
        """Global number nr as viewer's pid namespace numbers it (0: not there)."""
        return self.pidmap.vnr(viewer.pidns, nr)

    def find_task(self, viewer: Process, nr: int) -> Task | None:
        """The live task viewer's pid namespace numbers nr (find_task_by_vpid)."""
        return self.task(self.pidmap.find(viewer.pidns, nr))

    def find_task_or_zombie(self, viewer: Process, nr: int) -> Task | None:
        """find_task, or the leader of a zombie, which Linux's lookups still
        find until it is reaped (its pid stays hashed until release_task)."""
        task = self.find_task(viewer, nr)
        if task is None:
            zombie = self.find_proc(viewer, nr)
            if zombie is not None and zombie.threads and zombie.threads[0].tid == zombie.pid:
                task = zombie.threads[0]
        return task

    def find_proc(self, viewer: Process, nr: int) -> Process | None:
        """The process (zombies too) viewer's namespace numbers nr."""
        return self.by_pid.get(self.pidmap.find(viewer.pidns, nr))

    def global_nr(self, viewer: Process, nr: int) -> int:
        """viewer's number nr (a pid, process group or session) as the
        kernel knows it; 0 when its namespace has no such number."""
        return self.pidmap.find(viewer.pidns, nr)

    def last_pid(self, ns) -> int:
        """The last pid given in ns (ns_last_pid)."""
        return self._last if ns.level == 0 else ns.last

    def set_last_pid(self, ns, nr: int) -> None:
        """Make the next pid given in ns follow nr (writing ns_last_pid)."""
        if ns.level == 0:
            self._last = nr
        else:
            ns.last = nr

    def reserve_pid(self, t: Task, ns, set_tid: tuple[int, ...]) -> Reservation:
        """The numbers t's new task will have in ns and above, before
        anything is made (set_tid: clone3's, for a caller with
        CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: checkpoint_restore_ns_capable)."""
        c = t.proc.creds
        may = userns.checkpoint_restore_capable(c, None)     # in the init namespace
        return self.pidmap.reserve(ns, self.k.tunables.pid_max, set_tid, may)

    def alloc_task_pid(self, r: Reservation) -> int:
        """A new task's global number and its reserved numbers below."""
        pid = r.gnr or self.alloc_pid()
        self.pidmap.attach(pid, r)
        return pid

    # -- init -----------------------------------------------------------------
    def spawn_init(self, fdtable, fs: FsContext, adopt: int | None = None) -> tuple[Task, dict[int, int]]:
        """The first task, pid 1, on a fresh stub (fs/exec.py's run_init
        then execs init into it); with the host's auxv the stub got.
        adopt: a stub spawned with the seccomp filter and settled already,
        to run pid 1 in (a migration's target made it while the pre-copy
        ran: checkpoint/prebuild.py)."""
        k = self.k
        want = k.params.seccomp
        if adopt is not None:
            hpid = adopt
        else:
            hpid, want = self._spawn_stub(want)
        if ptrace.seccomp_on():
            k.sched.loop.watch_seccomp()
            printk.pr_info("guests trap through seccomp (user notifications and ptrace stops)")
        elif want:
            printk.pr_warn("seccomp trap path: this host gave no user-notification filter; "
                           "guests trap through ptrace alone")
        pid = self.alloc_pid()
        proc = Process(pid, None, Creds(), SigHand(), None)
        proc.sig_counts = self.sigpending
        # init's RLIMIT_NPROC and RLIMIT_SIGPENDING: half of threads-max (fork_init)
        half = k.tunables.threads_max // 2
        proc.rlimits[C.RLIMIT_NPROC] = proc.rlimits[C.RLIMIT_SIGPENDING] = (half, half)
        proc.ns = k.init_ns
        proc.pidns = k.init_ns.pid
        proc.cgroup = self.cgroup_root
        t = Task(pid, proc, hpid, None, fdtable, fs, SchedState())
        t.kernel = k
        proc.host_tgid = hpid
        proc.threads.append(t)
        self.by_pid[pid] = proc
        k.sched.add_task(t)
        if adopt is None:
            hostas.settle(t)
        else:
            ptrace.getregs(hpid, t.regs)
        t.mem = GuestMemory(hpid)
        return t, hostas.stub_auxv(t.mem, t.regs.rsp)

    def _spawn_stub(self, want: bool) -> tuple[int, bool]:
        """A fresh stub's host pid, and whether the seccomp filter is
        still wanted: not once the host refused its listener (the stub
        then traps through ptrace alone)."""
        k = self.k
        try:
            return ptrace.spawn(k.stub.path, trapset.fast_numbers() if want else None), want
        except ptrace.HostError as e:
            if not want or e.errno != E.EOPNOTSUPP:
                raise KernelError(e.errno, e.strerror) from None     # boot panics with the reason
            printk.pr_warn(f"seccomp trap path: {e.strerror}; guests trap through ptrace alone")
        try:
            return ptrace.spawn(k.stub.path), False
        except ptrace.HostError as e2:
            raise KernelError(e2.errno, e2.strerror) from None

    # -- fork -----------------------------------------------------------------
    def check_new_task(self, t: Task) -> None:
        """copy_process's limits (EAGAIN): the caller's real user runs at
        most RLIMIT_NPROC tasks (threads count; root, CAP_SYS_RESOURCE and
        CAP_SYS_ADMIN go past it), and the machine at most threads-max, which
        binds even root: a fork bomb stops there, as on Linux."""
        creds = t.proc.creds
        limit = t.proc.rlimit(C.RLIMIT_NPROC)[0]
        tasks = len(self.by_pid) + len(self.by_tid)     # leaders (zombies until reaped) and other threads
        if creds.uid != 0 and limit < tasks + 1 and not capable(creds, CAP_SYS_RESOURCE) \
                and not capable(creds, CAP_SYS_ADMIN) and self.user_tasks(creds.uid) + 1 > limit:
            raise KernelError(E.EAGAIN)
        if tasks >= self.k.tunables.threads_max:
            raise KernelError(E.EAGAIN)
        t.nproc_exceeded = False    # a fork within the limit clears it (the child starts clear)

    def user_tasks(self, uid: int) -> int:
        """The tasks whose real user is uid (Linux's UCOUNT_RLIMIT_NPROC count)."""
        return sum(1 for p in self.by_pid.values() if p.creds.uid == uid) \
            + sum(1 for x in self.by_tid.values() if x.proc.creds.uid == uid)

    def over_nproc(self, t: Task, uid: int) -> bool:
        """Whether user uid (never root) already runs more tasks than t's
        RLIMIT_NPROC allows (is_rlimit_overlimit)."""
        limit = t.proc.rlimit(C.RLIMIT_NPROC)[0]
        return uid != 0 and self.user_tasks(uid) > limit

    def _drop_new_mounts(self, caller: Process, ns) -> None:
        """A failed clone: the mount tree it copied for the child goes."""
        if ns.mnt is not caller.ns.mnt:
            nsproxy.put_mounts(self.k, ns.mnt)

    def fork(self, t: Task, flags: int, exit_signal: int, child_stack: int, ptid: int, ctid: int, tls: int,
             born: Callable[[Process], None] | None = None, set_tid: tuple[int, ...] = (),
             cgroup: Cgroup | None = None) -> int:
        """clone/fork/vfork (flags without the exit signal, which clone(2)
        has in their low byte and clone3 in a field of its own, where that
        byte holds CLONE_NEWTIME); born(child) runs once the child exists, before a
        vfork parent waits (CLONE_PIDFD installs the parent's pidfd there);
        set_tid: the child's pids clone3 asks for (PidMap.reserve); cgroup:
        the group it starts in (CLONE_INTO_CGROUP), else the caller's."""
        k = self.k
        caller = t.proc
        self.check_new_task(t)
        sched = t.sched.forked()
        ns = nsproxy.copy_namespaces(k, caller, flags)
        try:
            nrs = self.reserve_pid(t, ns.pid, set_tid)
        except KernelError:
            self._drop_new_mounts(caller, ns)
            raise
        fdt = t.files.share() if flags & C.CLONE_FILES else t.files.copy(k.tunables.nr_open)
        shared = bool(flags & C.CLONE_VM)     # vfork, posix_spawn: one address space
        try:
            mm = caller.mm.share() if shared else caller.mm.fork()
        except KernelError:
            fdt.release()
            self._drop_new_mounts(caller, ns)
            raise
        r = ptrace.inject(t.hpid, t.regs, NR["clone"], (flags & C.CLONE_VM) | C.CLONE_PARENT | S.SIGCHLD,
                          0, 0, 0, 0)
        if r.fault or r.result < 0:
            mm.release()
            fdt.release()
            self._drop_new_mounts(caller, ns)
            raise KernelError(-r.result if r.result < 0 else E.EAGAIN, "host clone failed")
        chpid = r.result
        ptrace.wait_pid(chpid)
        pid = self.alloc_task_pid(nrs)
        fs = t.fs if flags & C.CLONE_FS else t.fs.copy()
        k.mounts.enter(fs, caller.ns.mnt, ns.mnt)
        # CLONE_PARENT: a sibling of the caller, which its parent reaps and
        # is told of by the caller's own exit signal
        parent = caller.parent if flags & C.CLONE_PARENT else caller
        creds = nsproxy.user_creds(caller.creds, ns.user) if ns.user is not caller.ns.user else caller.creds.copy()
        proc = Process(pid, parent, creds, caller.sighand.copy(), mm)
        proc.sig_counts = caller.sig_counts
        proc.pgid, proc.sid = caller.pgid, caller.sid
        proc.comm, proc.exe_path = caller.comm, caller.exe_path
        proc.cmdline, proc.environ = caller.cmdline, caller.environ
        proc.exit_signal = caller.exit_signal if flags & C.CLONE_PARENT else exit_signal
        proc.ns = ns
        proc.pidns = ns.pid
        proc.cgroup = cgroup or caller.cgroup
        if nrs.upids and nrs.upids[-1][1] == 1:     # the first process of a new namespace: its init
            ns.pid.reaper = proc
            proc.unkillable = True
        proc.start_ns = k.uptime_ns()
        proc.personality = caller.personality
        proc.host_personality = caller.host_personality     # the host child inherits it
        proc.ioprio = caller.ioprio
        proc.oom_score_adj, proc.oom_score_adj_min = caller.oom_score_adj, caller.oom_score_adj_min
        proc.dumpable, proc.no_new_privs = caller.dumpable, caller.no_new_privs
        proc.rlimits = dict(caller.rlimits)
        cpulimit.update(k, proc)
        proc.ctty = caller.ctty
        ipc.inherit(caller, proc)
        k.keys.fork(caller, proc)
        parent.children.append(proc)
        mem = GuestMemory(chpid)
        if not shared:
            mm.mem = mem
        if ns.time is not caller.ns.time:
            timens.commit(k, proc)      # its vDSO, a copy of the caller's, answers for its time namespace
        child = Task(pid, proc, chpid, mem, fdt, fs, sched)
        child.kernel = k
        proc.host_tgid = chpid
        threads.inherit_task(child, t, flags, child_stack, ptid, ctid, tls)
        if flags & (C.CLONE_VM | C.CLONE_VFORK) != C.CLONE_VM:
            child.altstack = t.altstack     # a CLONE_VM child must not share the parent's
        proc.threads.append(child)
        self.by_pid[pid] = proc
        k.sched.add_task(child)
        event = ptracer.clone_event(t, flags, exit_signal)
        ptracer.start_child(k, t, child, flags, event)
        if born is not None:
            born(proc)
        vpid = self.vnr(caller, pid)
        if flags & C.CLONE_VFORK:
            proc.vfork_wq = WaitQueue("vfork")

        def vfork_done() -> int:
            if proc.vfork_wq is None:
                return ptracer.syscall_event(k, t, P.EVENT_VFORK_DONE, ptracer.child_nr(k, t, pid),
                                             lambda: vpid)
            raise Block(proc.vfork_wq, retry=vfork_done, interrupted_result=vpid)
        rest = vfork_done if flags & C.CLONE_VFORK else (lambda: vpid)
        if not event:
            return rest()
        return ptracer.syscall_event(k, t, event, ptracer.child_nr(k, t, pid), rest)

    def release_vfork(self, proc: Process) -> None:
        q = proc.vfork_wq
        if q is not None:
            proc.vfork_wq = None
            q.wake_all()

    # -- exit -----------------------------------------------------------------
    def exit_process(self, proc: Process, wait_status: int) -> None:
        """A process dies (exit, a fatal signal, SIGKILL): it leaves every
        queue, its host processes are killed, what it held is released, and
        it becomes a zombie for its parent.  Each release step is guarded:
        a kernel bug in one is an oops, and the process dies all the same
        (a half-dead process, never a zombie, would outlive SIGKILL)."""
        if proc.exited:
            return
        k = self.k
        proc.charge_sigpending(-proc.sig_held)     # its queues and timers go with it
        proc.exited = True
        guard = self._guard(proc)
        if strace.tracer is not None:
            for t in proc.threads:
                guard(strace.tracer.exited, t, wait_status)
        guard(rusage.at_exit, proc, k.sched.current)     # while its host process is still there
        ns = proc.pidns
        while ns is not None:                # acct_process: each namespace's accounting, up
            if ns.acct is not None:
                guard(ns.acct.account, proc, wait_status, ns)
            ns = ns.parent
        for t in proc.threads:               # all leave the queues before any is
            guard(k.futexes.forget, t)       # handed a lock or woken
        for t in proc.threads:
            guard(futex.task_exit, k, t)     # while its memory is still there
        guard(ptracer.tracer_exit, k, proc)
        for t in proc.threads:
            if t.state is State.BLOCKED:
                guard(k.sched.cancel_wait, t)
            t.state = State.DEAD
            self.by_tid.pop(t.tid, None)
            self.free_tid(t.tid)
            host.kill_host(t.hpid, S.SIGKILL)
            guard(threads.drop_own_mem, t)
        for timer in proc.timers.values():
            guard(timer.cancel)
        proc.timers.clear()
        guard(ipc.detach_all, proc)
        guard(ipc.undo_all, proc)
        guard(nsproxy.put_mounts, k, proc.ns.mnt, proc)
        for t in proc.threads:
            guard(t.files.release)
        if proc.mm is not None:
            guard(proc.mm.release)
        self.release_vfork(proc)
        proc.wait_status = wait_status
        proc.exit_wq.wake_all()
        if proc.pid == 1:
            k.init_died(wait_status)
        if proc.pidns.reaper is proc:
            self._zap_pid_ns(proc)
        reaper = self._reaper(proc)
        for c in proc.children:
            c.parent = reaper
            c.exit_signal = S.SIGCHLD      # reparent_leader: "we don't want people slaying init"
            if reaper is not None:
                reaper.children.append(c)
                if c.zombie:
                    reaper.child_wq.wake_all()
            if c.pdeath_signal and not c.exited:
                k.signals.send_proc(c, c.pdeath_signal, C.SI_USER, (self.vnr(c, proc.pid), proc.creds.uid))
        jobctl.exit_hook(k, proc)
        proc.children = []
        proc.zombie = True
        tracer = ptracer.tracee_exit(proc)
        if tracer is not None:      # a tracer other than the parent is told first
            self._tell_exit(proc, tracer, S.SIGCHLD)
            return
        self.notify_parent_exit(proc)

    def notify_parent_exit(self, proc: Process) -> None:
        """do_notify_parent for a zombie: a parent ignoring SIGCHLD, or with
        SA_NOCLDWAIT, leaves no zombie; SA_NOCLDWAIT with a handler still
        gets the signal."""
        parent = proc.parent
        if parent is None:
            self.reap(proc)
            return
        act = parent.sighand.actions[S.SIGCHLD]
        autoreap = proc.exit_signal == S.SIGCHLD and (act.handler == C.SIG_IGN or act.flags & C.SA_NOCLDWAIT)
        self._tell_exit(proc, parent, proc.exit_signal if not (autoreap and act.handler == C.SIG_IGN) else 0)
        if autoreap:
            self.reap(proc)

    def _tell_exit(self, proc: Process, to: Process, sig: int) -> None:
        """Wake `to`'s waits, then signal it (sig 0: no signal): a waiting
        process is woken before the signal comes, so its wait finds the
        zombie before the handler runs, as do_wait's rescan does."""
        to.child_wq.wake_all()
        if not sig:
            return
        st = proc.wait_status
        if st & 0x7f:
            code, val = (C.CLD_DUMPED if st & 0x80 else C.CLD_KILLED), st & 0x7f
        else:
            code, val = C.CLD_EXITED, (st >> 8) & 0xff
        self.k.signals.send_proc(to, sig, code, (self.vnr(to, proc.pid), proc.creds.uid, val))

    @staticmethod
    def _guard(proc: Process):
        def guard(step, *args) -> None:
            try:
                step(*args)
            except Exception as exc:        # a kernel bug: log it, finish the exit
                printk.oops(f"{getattr(step, '__qualname__', step)} in the exit of process {proc.pid}", exc)
        return guard

    def _reaper(self, proc: Process) -> Process | None:
        """Who adopts the orphans (find_new_reaper): the nearest living
        ancestor in the same pid namespace that asked to
        (PR_SET_CHILD_SUBREAPER), else the namespace's init."""
        a = proc.parent
        while a is not None and a.pidns is proc.pidns:
            if a.child_subreaper and not a.exited:
                return a
            a = a.parent
        if proc.pidns.level == 0:
            return self.by_pid.get(1)
        return proc.pidns.reaper

    def _zap_pid_ns(self, init: Process) -> None:
        """zap_pid_ns_processes: the init of a pid namespace dies, so does
        every other process of it and of the namespaces below; it reaps the
        ones it adopted itself, and no process can be made there again."""
        ns = init.pidns
        ns.adding = False
        for p in list(self.by_pid.values()):
            if p is not init and not p.exited and ns.contains(p.pidns):
                self.kill_process(p, S.SIGKILL)
        for c in list(init.children):
            if c.zombie:
                self.reap(c)

    def kill_process(self, proc: Process, sig: int, core: bool = False) -> None:
        self.exit_process(proc, sig | (0x80 if core else 0))

    def task_died_on_host(self, t: Task, sig: int) -> None:
        self.exit_process(t.proc, sig)

    def reap(self, proc: Process) -> None:
        if proc.parent is not None and proc in proc.parent.children:
            proc.parent.children.remove(proc)
        self.by_pid.pop(proc.pid, None)
        self.k.keys.release(proc)
        self.proc_flush(proc.pid)
        self.pidmap.release(proc.pid)

    def free_tid(self, tid: int) -> None:
        """A thread's number is given back, unless it is its process's pid
        (kept until the process is reaped)."""
        if tid not in self.by_pid:
            self.pidmap.release(tid)

    def proc_flush(self, pid: int, tid: int | None = None) -> None:
        """What /proc keeps of a reaped process (or of a thread that ended)
        goes with it (procfs's flush, when procfs exists)."""
        procfs = self.k.mounts.singletons.get("proc")
        if procfs is not None:
            procfs.flush(self.k.mounts.mounts, pid, tid)
        for ns in self.pidmap.namespaces(pid):
            if ns.procfs is not None:
                ns.procfs.flush(self.k.mounts.mounts, pid, tid)

    # -- job control ----------------------------------------------------------
    def stop_process(self, proc: Process, sig: int) -> None:
        if proc.stopped:
            return
        proc.stopped = True
        proc.stop_report = (sig << 8) | 0x7f
        for t in proc.threads:
            if t.ptrace is not None:
                t.ptrace.past_group_stop = False
        for t in proc.threads:
            if t.state is State.USER:
                self.k.sched.loop.flush()
                ptrace.interrupt(t.hpid)
        self._notify_parent(proc, C.CLD_STOPPED, sig)

    def continue_process(self, proc: Process) -> None:
        proc.stopped = False
        proc.stop_report = 0xffff   # WIFCONTINUED
        waiting, proc.stop_how = proc.stop_how, {}
        for t, how in waiting.items():
            if t.state is State.STOPPED:
                t.state = State.KERNEL
                self.k.sched.finish(t, None, how)     # finish() looks at the restart code
        ptracer.group_continued(self.k, proc)
        self._notify_parent(proc, C.CLD_CONTINUED, S.SIGCONT)

    def _notify_parent(self, proc: Process, code: int, sig: int) -> None:
        parent = proc.parent
        if parent is None:
            return
        parent.child_wq.wake_all()     # before the signal, as at exit
        if not parent.sighand.actions[S.SIGCHLD].flags & C.SA_NOCLDSTOP:
            self.k.signals.send_proc(parent, S.SIGCHLD, code, (self.vnr(parent, proc.pid), proc.creds.uid, sig))
