"""Tasks (guest threads) and processes (thread groups) with guest pids.

A Task is one host process under ptrace; its registers live in a cffi struct
owned by the task.  Everything the guest can observe (pids, parents, process
groups, credentials, fds, signal state) is the kernel's own and never the
host's.
"""
from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from arch_um import ptrace
from arch_um.memory import GuestMemory
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_FULL_SET, SUID_DUMP_USER
from umlpy.kernel.errors import KernelError
from umlpy.kernel.ioac import IoAc
from umlpy.kernel.rusage import Usage
from umlpy.kernel.wait import WaitQueue

if TYPE_CHECKING:
    from umlpy.kernel.errors import Block
    from umlpy.kernel.keys import Key
    from umlpy.kernel.mm import Mm
    from umlpy.vfs.dentry import Dentry
    from umlpy.vfs.fdtable import FdTable


class State(enum.Enum):
    USER = "running"        # resumed: runs guest code
    KERNEL = "in kernel"    # stopped, its syscall being handled
    BLOCKED = "sleeping"    # parked on wait queues
    STOPPED = "stopped"     # job-control stop
    TRACED = "tracing stop"     # a ptrace-stop: its guest tracer restarts it (kernel/ptracer.py)
    DEAD = "dead"


@dataclass
class Creds:
    """A process's ids and capability sets; the defaults are init's (root, every capability).

    Changes go through a copy that kernel/cred.py commits, as Linux's
    prepare_creds/commit_creds, so the old and new sets can be compared.
    """
    uid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple[int, ...] = ()
    cap_inheritable: int = 0
    cap_permitted: int = CAP_FULL_SET
    cap_effective: int = CAP_FULL_SET
    cap_bset: int = CAP_FULL_SET
    cap_ambient: int = 0
    securebits: int = 0
    user_ns: object = None      # its user namespace (kernel/nsproxy.UserNamespace); None: the init one

    def copy(self) -> Creds:
        return copy.copy(self)      # every field is an int or a tuple


@dataclass
class KeyCred:
    """A process's keyring slots, which Linux keeps in struct cred (see
    kernel/keys.py); the thread keyring is the task's own."""
    process: Key | None = None
    session: Key | None = None
    reqkey_default: int = 0     # KEY_REQKEY_DEFL_DEFAULT


@dataclass
class FsContext:
    root: Dentry
    cwd: Dentry
    umask: int = 0o022

    def copy(self) -> FsContext:
        return FsContext(self.root, self.cwd, self.umask)


class SigAction(NamedTuple):
    """Immutable, so fork copies the table as a list of references."""
    handler: int = 0  # SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0


SIG_DEFAULT = SigAction()


class SigHand:
    """The signal dispositions a process shares between its threads."""

    def __init__(self) -> None:
        self.actions = [SIG_DEFAULT] * (S.NSIG + 1)

    def copy(self) -> SigHand:
        n = SigHand()
        n.actions = list(self.actions)
        return n


RLIM_INFINITY = (1 << 64) - 1
# Linux's defaults for init (RLIMIT_STACK 8M, no core files, 1024/4096 fds,
# ...; RLIMIT_NPROC and RLIMIT_SIGPENDING, half of threads-max, are set on
# init at boot)
DEFAULT_RLIMITS = {3: (8 << 20, RLIM_INFINITY), 4: (0, RLIM_INFINITY), 7: (1024, 4096),
                   8: (8 << 20, 8 << 20),
                   12: (819200, 819200), 13: (0, 0), 14: (0, 0)}     # RLIMIT_RTTIME (15): unlimited


SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE = 0, 1, 2, 3, 5, 6
MAX_RT_PRIO = 100       # the first priority that is not real-time (Linux's prio.h)
DEFAULT_TIMER_SLACK_NS = 50_000


@dataclass
class SchedState:
    """A thread's scheduling attributes, Linux's task_struct fields: policy,
    nice (static_prio), rt_priority, SCHED_DEADLINE's parameters, the
    reset-on-fork flag and the timer slack.

    They are the kernel's bookkeeping: guest threads are host threads, which
    the host schedules as it likes, so a real-time priority preempts
    nothing (as on an idle machine) and a timer slack delays no timer.  They
    are what the sched_* calls, getpriority and /proc report, and the order
    futex queues serve their waiters in (normal_prio, kernel/futex.py)."""
    policy: int = SCHED_NORMAL
    nice: int = 0
    rt_priority: int = 0
    reset_on_fork: bool = False
    dl_runtime: int = 0
    dl_deadline: int = 0
    dl_period: int = 0
    dl_flags: int = 0
    timer_slack_ns: int = DEFAULT_TIMER_SLACK_NS
    default_slack_ns: int = DEFAULT_TIMER_SLACK_NS

    def forked(self) -> SchedState:
        """The new task's (sched_fork): reset-on-fork drops a real-time or
        deadline policy and a negative nice; a deadline task may not fork
        (EAGAIN), since the child would double its reserved bandwidth.  The
        child's default timer slack is the parent's current one."""
        n = copy.copy(self)
        n.default_slack_ns = self.timer_slack_ns
        if n.reset_on_fork:
            if n.policy in (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE):
                n.policy, n.nice, n.rt_priority = SCHED_NORMAL, 0, 0
                n.dl_runtime = n.dl_deadline = n.dl_period = n.dl_flags = 0
            n.nice = max(n.nice, 0)
            n.reset_on_fork = False
        if n.policy == SCHED_DEADLINE:
            raise KernelError(E.EAGAIN)
        return n

    def normal_prio(self) -> int:
        """Linux's normal_prio, the order its wait queues that care serve
        waiters in (lower first): -1 for deadline, MAX_RT_PRIO - 1 -
        rt_priority for the real-time policies, 120 + nice for the fair
        ones."""
        if self.policy == SCHED_DEADLINE:
            return -1
        if self.policy in (SCHED_FIFO, SCHED_RR):
            return MAX_RT_PRIO - 1 - self.rt_priority
        return MAX_RT_PRIO + 20 + self.nice

    def prio(self) -> int:
        """task_prio, /proc/PID/stat's priority field: 20 + nice for the fair
        policies, -1 - rt_priority for the real-time ones, -101 for deadline."""
        if self.policy == SCHED_DEADLINE:
            return -101
        if self.policy in (SCHED_FIFO, SCHED_RR):
            return -1 - self.rt_priority
        return 20 + self.nice


class Process:
    """A thread group: what fork copies and exit tears down."""

    def __init__(self, pid: int, parent: Process | None, creds: Creds, sighand: SigHand,
                 mm: Mm) -> None:
        self.pid = pid
        self.unkillable = pid == 1      # SIGNAL_UNKILLABLE: init, until a fault it does not handle
        self.parent = parent
        self.children: list[Process] = []
        self.threads: list[Task] = []
        # init starts in the process group and session of the kernel's own
        # threads, numbered 0 (init_struct_pid): no leader of either, so
        # its setsid() succeeds and its open of a tty takes no ctty
        self.pgid = parent.pgid if parent else 0
        self.sid = parent.sid if parent else 0
        self.creds = creds
        self.keyrings = KeyCred()
        self.sighand = sighand
        self.mm = mm
        self.comm = b""
        self.exe_path = ""
        self.cmdline: list[bytes] = []
        self.environ: list[bytes] = []
        self.shared_pending: int = 0
        self.sigq: dict = {}                    # shared sig -> deque of (si_code, fields)
        self.sig_held = 0           # what it holds of RLIMIT_SIGPENDING (charge_sigpending)
        self.sig_counts: dict[int, int] = {}    # the table's, per real uid (Procs.sigpending)
        self.enroute: tuple | None = None       # (thread, sigbit): see signal.takeable
        self.stop_how: dict = {}                # stopped task -> how to resume
        self.zombie = False
        self.exited = False
        self.wait_status = 0        # the wait(2) status once a zombie
        self.exit_signal = S.SIGCHLD
        self.child_wq = WaitQueue("child")
        self.exit_wq = WaitQueue("exit")              # pidfd pollers
        self.signal_wq = WaitQueue("signal queued")   # signalfd readers
        self.timers: dict = {}                         # "real" and POSIX timer ids -> timer
        self.next_timer_id = 0                         # POSIX timer ids go round, as Linux's
        self.stopped = False
        self.stop_report = 0        # a stop/continue not yet reported to wait
        self.ptraced: list[Task] = []   # the tasks its threads trace (kernel/ptracer.py)
        self.vfork_wq: WaitQueue | None = None
        self.start_ns = 0
        self.host_tgid = 0          # the host process its tasks are threads of (CPU-time clocks)
        self.rlimits: dict[int, tuple[int, int]] = {}
        self.pdeath_signal = 0
        self.dumpable = SUID_DUMP_USER      # Linux keeps it in the mm; cleared by privilege changes
        self.no_new_privs = False
        self.execed = False         # PF_FORKNOEXEC cleared: its parent may no longer setpgid it
        self.child_subreaper = False
        self.personality = 0        # personality(2); ADDR_NO_RANDOMIZE matters here
        self.host_personality = 0   # its host process's (hostas.exec_host: ADDR_NO_RANDOMIZE)
        self.ioprio = 0             # ioprio_set(2): IOPRIO_CLASS_NONE
        self.oom_score_adj = 0      # kernel/oom.py's shift of its badness (-1000: never chosen)
        self.oom_score_adj_min = 0  # what an unprivileged write may lower it to
        self.usage = None           # rusage.Usage, sampled at death
        self.cusage = Usage()       # of the children waited for
        self.prev_cputime = Usage()     # the user/system split last reported
        self.cpu_base = Usage()     # CPU time before a restore, which its new host process counts on from
        self.dead_ioac = IoAc()     # the I/O of its threads that ended
        self.child_ioac = IoAc()    # the I/O of the children waited for (theirs whole)
        self.dead_nvcsw = 0         # voluntary context switches of its threads that ended (rusage.py)
        self.child_switches = (0, 0)    # those of the children waited for, theirs whole
        self.switches: tuple[int, int] | None = None    # sampled at death
        self.ctty = None
        # the audit login uid and session (/proc/PID/loginuid, sessionid): a
        # fork's are its parent's; -1 until a login (pam_loginuid) sets them
        self.loginuid = parent.loginuid if parent else AUDIT_UNSET
        self.sessionid = parent.sessionid if parent else AUDIT_UNSET
        self.ns = parent.ns if parent else None     # nsproxy.NsProxy: init's is set at boot
        self.pidns = parent.pidns if parent else None   # the pid namespace its pid was made in
        self.cgroup = parent.cgroup if parent else None  # kernel/cgroup.Cgroup: init's is the root

    @property
    def exe_bytes(self) -> bytes:
        """The program's path as the bytes it was named by (exe_path keeps
        bytes that are not UTF-8 as surrogates)."""
        return self.exe_path.encode("utf-8", "surrogateescape")

    def charge_sigpending(self, n: int) -> None:
        """Count n more (or fewer) of what a live process holds of
        RLIMIT_SIGPENDING, its queued signals (a POSIX timer's own entry
        aside) and its POSIX timers, for its real uid, as Linux's ucounts
        count them at each allocation and free: a check then costs the same
        however many signals are queued (walking every queue at each signal
        made 50 000 queued real-time signals take minutes).  An exited
        process gave its count back at exit."""
        if self.exited or not n:
            return
        self.sig_held += n
        counts, uid = self.sig_counts, self.creds.uid
        left = counts.get(uid, 0) + n
        if left:
            counts[uid] = left
        else:
            del counts[uid]

    def rlimit(self, res: int) -> tuple[int, int]:
        return self.rlimits.get(res, DEFAULT_RLIMITS.get(res, (RLIM_INFINITY, RLIM_INFINITY)))

    @property
    def leader(self) -> Task:
        return self.threads[0]

    @property
    def fdtable(self) -> FdTable:
        """The process's fd table as /proc and machine-wide walks see it: its
        leader's (a thread may have its own: clone without CLONE_FILES,
        unshare); a syscall uses its own task's, Task.files."""
        return self.threads[0].files

    @property
    def fs(self) -> FsContext:
        """Likewise the leader's root, cwd and umask; a syscall uses Task.fs."""
        return self.threads[0].fs


AUDIT_UNSET = 0xFFFFFFFF     # AUDIT_UID_UNSET and AUDIT_SID_UNSET


class Task:
    __slots__ = ("tid", "proc", "hpid", "regs", "regs_dirty", "mem", "state", "blocked",
                 "pending", "block", "block_args", "timer", "wake_reason", "saved_mask",
                 "altstack", "clear_child_tid", "robust_list", "in_syscall", "restart_fn", "kernel",
                 "sigwait", "sigq", "thread_keyring", "nd", "files", "fs", "sched", "prev_cputime",
                 "ptrace", "nproc_exceeded", "seccomp", "landlock", "cpu_base", "ioac", "nvcsw")

    def __init__(self, tid: int, proc: Process, hpid: int, mem: GuestMemory, files: FdTable,
                 fs: FsContext, sched: SchedState) -> None:
        self.tid = tid
        self.proc = proc
        self.hpid = hpid
        self.files = files          # its fd table: the process's, unless cloned or unshared apart
        self.fs = fs                # root, cwd, umask: likewise (CLONE_FS)
        self.sched = sched
        self.prev_cputime = Usage()     # the user/system split last reported (RUSAGE_THREAD)
        self.cpu_base = Usage()         # CPU time before a restore (as the process's)
        self.ioac = IoAc()              # its reads and writes (kernel/ioac.py)
        self.regs = ptrace.new_regs()
        self.regs_dirty = False
        self.mem = mem
        self.state = State.KERNEL
        self.blocked = 0            # signal mask
        self.pending = 0            # thread-directed pending signals
        self.block: Block | None = None
        self.block_args: tuple = ()
        self.timer = None
        self.wake_reason = 0
        self.saved_mask: int | None = None   # sigsuspend's mask to restore
        self.altstack = (0, 2, 0)  # (sp, flags = SS_DISABLE, size)
        self.clear_child_tid = 0
        self.robust_list = 0        # set_robust_list's head, walked when the thread dies
        self.in_syscall = -1
        self.restart_fn = None
        self.kernel = None
        self.sigwait = 0            # signals rt_sigtimedwait is waiting for
        self.nvcsw = 0              # its waits in the kernel: voluntary context switches
        self.sigq: dict = {}        # thread-directed sig -> deque of (si_code, fields)
        self.thread_keyring: Key | None = None
        self.nd = None              # an openat2's RESOLVE_* scope while it walks (namei.Scope)
        self.ptrace = None          # ptracer.Ptrace while a guest tracer traces it
        self.nproc_exceeded = False     # PF_NPROC_EXCEEDED: a set*uid went over RLIMIT_NPROC
        self.seccomp = None             # kernel/seccomp.Seccomp, once a mode is set
        self.landlock = None            # security/landlock.Domain, once restrict_self made one

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def creds(self) -> Creds:
        return self.proc.creds

    def __repr__(self) -> str:
        return f"<Task {self.tid} host {self.hpid} {self.state.value}>"
