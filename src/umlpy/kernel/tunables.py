"""The sysctls the kernel honours, with Linux's defaults and bounds.

/proc/sys shows and (for root) sets them; the code they limit reads them
here: pid allocation wraps at pid_max, no fork makes more than
threads-max tasks, an address space holds at most
max_map_count mappings, no fd table grows past nr_open, SCHED_RR's quantum
is sched_rr_timeslice_ms, pipes are sized by pipe-max-size and
pipe-user-pages-soft/hard.  core_pattern names the core files
(syscalls/coredump.py); suid_dumpable is what a process that changed its
ids becomes (kernel/cred.py); panic_on_oom and oom_kill_allocating_task
steer the OOM killer (kernel/oom.py); protected_symlinks, _hardlinks,
_fifos and _regular the path walk, link and open (vfs/perm.py; Linux's
default for all four, 0, is what a kernel without distribution sysctls has);
randomize_va_space what an exec randomises (kernel/hostas.py, fs/exec.py).
"""
from __future__ import annotations

from dataclasses import dataclass

RESERVED_PIDS = 300
PID_MAX_DEFAULT = 32768
PID_MAX_LIMIT = 4 << 20          # 64-bit: 4 * 1024 * 1024
DEFAULT_MAX_MAP_COUNT = 65530     # USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN
NR_OPEN_DEFAULT = 1 << 20
NR_OPEN_MIN = 64                 # BITS_PER_LONG
NR_OPEN_MAX = 2147483584         # INT_MAX rounded down to BITS_PER_LONG
CORENAME_MAX_SIZE = 128
RR_TIMESLICE_MS = 100
INT_MAX = (1 << 31) - 1
INT_MIN = -(1 << 31)
ULONG_MAX = (1 << 64) - 1
THREAD_SIZE = 16384              # x86-64's (and UML's) kernel stack
MIN_THREADS, MAX_THREADS = 20, 0x3FFFFFFF    # FUTEX_TID_MASK


def max_threads_for(mem: int) -> int:
    """set_max_threads: the threads whose kernel stacks would take an
    eighth of the machine's RAM (totalram bytes), within Linux's bounds."""
    return max(MIN_THREADS, min(MAX_THREADS, mem // (THREAD_SIZE * 8)))


NR_FILE = 8192          # file-max's floor (fs.h)


def max_files_for(mem: int) -> int:
    """files_maxfiles_init: a file for every 10 KiB of the machine's RAM
    (totalram bytes) less what the kernel had taken when it ran, which
    here is nothing; at least NR_FILE (UML 6.1, mem=256M: 22 980)."""
    return max(mem // 4096 * (4096 // 1024) // 10, NR_FILE)


INODE_COST = 4096        # bytes a cached disk inode and its dentry take of the kernel, about


def icache_limit_for(mem: int) -> int:
    """The inodes one disk filesystem may cache before the kernel lets go
    of those nothing holds (vfs/evict.py): as many as fill a quarter of
    the machine's RAM (totalram bytes), at least NR_FILE."""
    return max(mem // 4 // INODE_COST, NR_FILE)


EP_ITEM_COST = 184               # an epitem and its eppoll_entry (x86-64, Linux 6.1)
LONG_MAX = (1 << 63) - 1


def max_user_watches_for(mem: int) -> int:
    """eventpoll_init: the epoll watches a user may hold, as many as fill
    4% of the machine's RAM (totalram bytes)."""
    return (mem // 4096 // 25 * 4096) // EP_ITEM_COST


# name -> (attribute, lowest, highest): proc_dointvec_minmax's bounds
INT_BOUNDS = {
    "kernel/pid_max": ("pid_max", RESERVED_PIDS + 1, PID_MAX_LIMIT),
    "kernel/threads-max": ("threads_max", 1, MAX_THREADS),     # sysctl_max_threads
    "vm/max_map_count": ("max_map_count", 0, INT_MAX),
    "kernel/io_uring_disabled": ("io_uring_disabled", 0, 2),
    "vm/unprivileged_userfaultfd": ("unprivileged_userfaultfd", 0, 1),
    "vm/panic_on_oom": ("panic_on_oom", INT_MIN, INT_MAX),
    "vm/oom_kill_allocating_task": ("oom_kill_allocating_task", INT_MIN, INT_MAX),
    "vm/vfs_cache_pressure": ("vfs_cache_pressure", 0, INT_MAX),
    "fs/nr_open": ("nr_open", NR_OPEN_MIN, NR_OPEN_MAX),
    "fs/inotify/max_user_instances": ("inotify_max_user_instances", 0, INT_MAX),
    "fs/inotify/max_user_watches": ("inotify_max_user_watches", 0, INT_MAX),
    "fs/fanotify/max_queued_events": ("fanotify_max_queued_events", 0, INT_MAX),
    "fs/fanotify/max_user_groups": ("fanotify_max_user_groups", 0, INT_MAX),
    "fs/fanotify/max_user_marks": ("fanotify_max_user_marks", 0, INT_MAX),
    "fs/epoll/max_user_watches": ("epoll_max_user_watches", 0, LONG_MAX),
}


@dataclass
class Tunables:
    pid_max: int = PID_MAX_DEFAULT
    threads_max: int = PID_MAX_DEFAULT  # set at boot from mem= (max_threads_for): tasks the machine may run
    max_map_count: int = DEFAULT_MAX_MAP_COUNT
    unprivileged_userfaultfd: int = 0   # 1: userfaultfd handles kernel faults without CAP_SYS_PTRACE
    nr_open: int = NR_OPEN_DEFAULT
    core_pattern: bytes = b"core"
    core_uses_pid: int = 0              # non-zero: ".PID" after a core name whose pattern has no %p
    suid_dumpable: int = 0              # SUID_DUMP_DISABLE; 1 user, 2 root
    sched_rr_timeslice_ms: int = RR_TIMESLICE_MS
    pipe_max_size: int = 1 << 20        # an unprivileged pipe's largest size
    pipe_user_pages_soft: int = 16384   # pages of pipes a user has before new ones get 2
    pipe_user_pages_hard: int = 0       # ... before pipe() fails (0: no limit)
    lease_break_time: int = 45          # seconds an opener waits for a lease's holder (0: for good)
    leases_enable: int = 1              # 0: F_SETLEASE grants no new lease (EINVAL)
    inotify_max_user_instances: int = 128   # inotify instances a user may hold (EMFILE past it)
    inotify_max_user_watches: int = 8192    # their watches (ENOSPC); Linux's floor, what 1 GiB gets
    fanotify_max_queued_events: int = 16384  # a new fanotify group's queue (then FAN_Q_OVERFLOW)
    fanotify_max_user_groups: int = 128     # fanotify groups a user may hold (EMFILE past it)
    fanotify_max_user_marks: int = 8192     # their marks (ENOSPC); Linux's floor
    epoll_max_user_watches: int = 0x7FFFFFFF  # set at boot from mem=: a user's epoll watches (ENOSPC past it)
    io_uring_disabled: int = 0          # 1: io_uring_setup only with CAP_SYS_ADMIN, 2: by nobody (EPERM)
    unprivileged_bpf_disabled: int = 0      # 1: bpf(2) needs CAP_BPF for good; 2: until reset
    panic_on_oom: int = 0               # nonzero: out of memory panics instead of killing (kernel/oom.py)
    oom_kill_allocating_task: int = 0   # nonzero: the OOM killer takes the task that grew, not the biggest
    protected_symlinks: int = 0         # 1: no following another's symlink in a sticky world-writable dir
    protected_hardlinks: int = 0        # 1: no hard link to a file one may not read and write (vfs/perm.py)
    protected_fifos: int = 0            # 1, 2: no O_CREAT open of another's fifo in a sticky dir
    protected_regular: int = 0          # 1, 2: ... nor of another's regular file
    randomize_va_space: int = 2         # 0: no ASLR at exec; 1: stack, mmap, PIE base; 2: the heap too
    # reclaim's weight of dentries and inodes against page cache; the VFS
    # lets them go only at drop_caches (no memory pressure reclaims them)
    vfs_cache_pressure: int = 100
    aio_max_nr: int = 0x10000           # AIO events all contexts may ask for (io_setup: EAGAIN past it)

    def rr_timeslice_ns(self) -> int:
        """SCHED_RR's quantum as the scheduler keeps it: whole jiffies
        (HZ=100), rounded up as msecs_to_jiffies does."""
        jiffies = -(-self.sched_rr_timeslice_ms // 10)
        return jiffies * 10_000_000
