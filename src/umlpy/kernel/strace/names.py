"""Names the tracer prints where python-ptrace's tables fall short of
strace's output: flag words in strace's order (open's O_DIRECTORY last,
O_DSYNC by its name), the *at flags, mmap's flags, wait options, sigaction
flags, the kernel's restart codes, and the errno names strace prefers
where the host's errno module has another (EDEADLOCK, ENOTSUP).  Values
are the kernel's own ABI constants."""
from __future__ import annotations

from umlpy.abi import consts as C
from umlpy.abi import errno as E

Bits = tuple[tuple[int, str], ...]

OPEN_FLAGS: Bits = (
    (C.O_CREAT, "O_CREAT"), (C.O_EXCL, "O_EXCL"), (C.O_NOCTTY, "O_NOCTTY"), (C.O_TRUNC, "O_TRUNC"),
    (C.O_APPEND, "O_APPEND"), (C.O_NONBLOCK, "O_NONBLOCK"), (C.O_SYNC, "O_SYNC"),
    (C.O_DSYNC, "O_DSYNC"), (C.O_DIRECT, "O_DIRECT"), (C.O_LARGEFILE, "O_LARGEFILE"),
    (C.O_NOFOLLOW, "O_NOFOLLOW"), (C.O_NOATIME, "O_NOATIME"), (C.O_CLOEXEC, "O_CLOEXEC"),
    (C.O_PATH, "O_PATH"), (C.O_TMPFILE, "O_TMPFILE"), (C.O_DIRECTORY, "O_DIRECTORY"),
    (C.O_ASYNC, "O_ASYNC"),
)
ACCESS_MODES = {C.O_RDONLY: "O_RDONLY", C.O_WRONLY: "O_WRONLY", C.O_RDWR: "O_RDWR"}

AT_FLAGS: Bits = (
    (C.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"), (C.AT_REMOVEDIR, "AT_REMOVEDIR"),
    (C.AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"), (C.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"),
    (C.AT_EMPTY_PATH, "AT_EMPTY_PATH"), (0x2000, "AT_STATX_FORCE_SYNC"),
    (0x4000, "AT_STATX_DONT_SYNC"), (0x8000, "AT_RECURSIVE"),
)

MAP_TYPES = {C.MAP_SHARED: "MAP_SHARED", C.MAP_PRIVATE: "MAP_PRIVATE",
             C.MAP_SHARED_VALIDATE: "MAP_SHARED_VALIDATE"}
MAP_FLAGS: Bits = (
    (C.MAP_FIXED, "MAP_FIXED"), (C.MAP_ANONYMOUS, "MAP_ANONYMOUS"), (0x40, "MAP_32BIT"),
    (C.MAP_NORESERVE, "MAP_NORESERVE"), (C.MAP_POPULATE, "MAP_POPULATE"),
    (C.MAP_NONBLOCK, "MAP_NONBLOCK"), (C.MAP_GROWSDOWN, "MAP_GROWSDOWN"),
    (C.MAP_DENYWRITE, "MAP_DENYWRITE"), (C.MAP_EXECUTABLE, "MAP_EXECUTABLE"),
    (C.MAP_LOCKED, "MAP_LOCKED"), (C.MAP_STACK, "MAP_STACK"), (C.MAP_HUGETLB, "MAP_HUGETLB"),
    (0x80000, "MAP_SYNC"), (C.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
)

WAIT_OPTIONS: Bits = (
    (C.WNOHANG, "WNOHANG"), (C.WUNTRACED, "WUNTRACED"), (C.WEXITED, "WEXITED"),
    (C.WCONTINUED, "WCONTINUED"), (C.WNOWAIT, "WNOWAIT"), (0x80000000, "__WCLONE"),
    (C.WALL, "__WALL"), (C.WNOTHREAD, "__WNOTHREAD"),
)

SA_FLAGS: Bits = (
    (0x04000000, "SA_RESTORER"), (0x08000000, "SA_ONSTACK"), (0x10000000, "SA_RESTART"),
    (0x40000000, "SA_NODEFER"), (0x80000000, "SA_RESETHAND"), (0x00000004, "SA_SIGINFO"),
    (0x00000001, "SA_NOCLDSTOP"), (0x00000002, "SA_NOCLDWAIT"),
)

FILE_TYPES = {C.S_IFREG: "S_IFREG", C.S_IFDIR: "S_IFDIR", C.S_IFCHR: "S_IFCHR",
              C.S_IFBLK: "S_IFBLK", C.S_IFIFO: "S_IFIFO", C.S_IFLNK: "S_IFLNK",
              C.S_IFSOCK: "S_IFSOCK"}

# strace's own names where the host's errno module picks an alias
ERRNO_NAMES = {E.EDEADLK: "EDEADLK", E.EOPNOTSUPP: "EOPNOTSUPP"}
# the kernel's restart codes: never seen by the guest, shown by strace as "= ?"
RESTART_CODES = {
    E.ERESTARTSYS: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    E.ERESTARTNOINTR: ("ERESTARTNOINTR", "To be restarted"),
    E.ERESTARTNOHAND: ("ERESTARTNOHAND", "To be restarted if no handler"),
    E.ERESTART_RESTARTBLOCK: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}

SI_CODES = {0: "SI_USER", 0x80: "SI_KERNEL", -1: "SI_QUEUE", -2: "SI_TIMER", -3: "SI_MESGQ",
            -4: "SI_ASYNCIO", -5: "SI_SIGIO", -6: "SI_TKILL", -7: "SI_DETHREAD", -60: "SI_ASYNCNL"}
CLD_CODES = {1: "CLD_EXITED", 2: "CLD_KILLED", 3: "CLD_DUMPED", 4: "CLD_TRAPPED",
             5: "CLD_STOPPED", 6: "CLD_CONTINUED"}
FAULT_CODES = {
    "SEGV": {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"},
    "BUS": {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR", 5: "BUS_MCEERR_AO"},
    "ILL": {1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP", 5: "ILL_PRVOPC",
            6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK"},
    "FPE": {1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF", 5: "FPE_FLTUND",
            6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB"},
    "TRAP": {1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT"},
}

# strace's trace classes (-e trace=%file ...), for x86-64
CLASSES: dict[str, frozenset[str]] = {
    "file": frozenset(
        "open stat lstat access execve truncate getcwd chdir rename mkdir rmdir creat link unlink "
        "symlink readlink chmod chown lchown utime mknod uselib statfs pivot_root chroot acct mount "
        "umount2 swapon swapoff quotactl setxattr lsetxattr getxattr lgetxattr listxattr llistxattr "
        "removexattr lremovexattr utimes inotify_add_watch openat mkdirat mknodat fchownat futimesat "
        "newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat utimensat "
        "fanotify_mark name_to_handle_at renameat2 execveat statx open_tree move_mount fsconfig "
        "fspick openat2 faccessat2 mount_setattr fchmodat2".split()),
    "network": frozenset(
        "sendfile socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen "
        "getsockname getpeername socketpair setsockopt getsockopt getpmsg putpmsg accept4 recvmmsg "
        "sendmmsg".split()),
    "process": frozenset(
        "clone fork vfork execve exit wait4 kill rt_sigqueueinfo tkill exit_group tgkill waitid "
        "rt_tgsigqueueinfo execveat clone3 pidfd_send_signal".split()),
    "signal": frozenset(
        "rt_sigaction rt_sigprocmask rt_sigreturn pause kill rt_sigpending rt_sigtimedwait "
        "rt_sigqueueinfo rt_sigsuspend sigaltstack tkill tgkill signalfd signalfd4 "
        "rt_tgsigqueueinfo pidfd_send_signal".split()),
    "memory": frozenset(
        "mmap mprotect munmap brk mremap msync mincore madvise shmat shmdt mlock munlock mlockall "
        "munlockall io_setup io_destroy remap_file_pages mbind set_mempolicy get_mempolicy "
        "migrate_pages move_pages mlock2 pkey_mprotect".split()),
    "ipc": frozenset("shmget shmat shmctl semget semop semctl shmdt msgget msgsnd msgrcv msgctl "
                     "semtimedop".split()),
}
CLASSES["net"] = CLASSES["network"]

# clone's flags beyond python-ptrace's table (it stops at CLONE_NEWIPC, and
# names 0x02000000 CLONE_STOPPED, which Linux reuses for CLONE_NEWCGROUP)
CLONE_EXTRA: Bits = ((0x1000, "CLONE_PIDFD"), (0x02000000, "CLONE_NEWCGROUP"),
                     (0x10000000, "CLONE_NEWUSER"), (0x20000000, "CLONE_NEWPID"),
                     (0x40000000, "CLONE_NEWNET"), (0x80000000, "CLONE_IO"))
ARCH_PRCTL = {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS",
              0x1004: "ARCH_GET_GS", 0x1011: "ARCH_GET_CPUID", 0x1012: "ARCH_SET_CPUID"}
GRND_FLAGS: Bits = ((1, "GRND_NONBLOCK"), (2, "GRND_RANDOM"), (4, "GRND_INSECURE"))
IOCTLS = {0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF",
          0x540E: "TIOCSCTTY", 0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP", 0x5413: "TIOCGWINSZ",
          0x5414: "TIOCSWINSZ", 0x541B: "FIONREAD", 0x5421: "FIONBIO", 0x5422: "TIOCNOTTY",
          0x5429: "TIOCGSID", 0x5450: "FIONCLEX", 0x5451: "FIOCLEX", 0x5452: "FIOASYNC",
          0x80045430: "TIOCGPTN", 0x40045431: "TIOCSPTLCK"}
CLOCKS = {0: "CLOCK_REALTIME", 1: "CLOCK_MONOTONIC", 2: "CLOCK_PROCESS_CPUTIME_ID",
          3: "CLOCK_THREAD_CPUTIME_ID", 4: "CLOCK_MONOTONIC_RAW", 5: "CLOCK_REALTIME_COARSE",
          6: "CLOCK_MONOTONIC_COARSE", 7: "CLOCK_BOOTTIME", 8: "CLOCK_REALTIME_ALARM",
          9: "CLOCK_BOOTTIME_ALARM", 11: "CLOCK_TAI"}
TIMER_FLAGS: Bits = ((1, "TIMER_ABSTIME"),)
FUTEX_CMDS = {0: "FUTEX_WAIT", 1: "FUTEX_WAKE", 2: "FUTEX_FD", 3: "FUTEX_REQUEUE", 4: "FUTEX_CMP_REQUEUE",
              5: "FUTEX_WAKE_OP", 6: "FUTEX_LOCK_PI", 7: "FUTEX_UNLOCK_PI", 8: "FUTEX_TRYLOCK_PI",
              9: "FUTEX_WAIT_BITSET", 10: "FUTEX_WAKE_BITSET", 11: "FUTEX_WAIT_REQUEUE_PI",
              12: "FUTEX_CMP_REQUEUE_PI", 13: "FUTEX_LOCK_PI2"}
MSG_FLAGS: Bits = (
    (0x1, "MSG_OOB"), (0x2, "MSG_PEEK"), (0x4, "MSG_DONTROUTE"), (0x8, "MSG_CTRUNC"), (0x10, "MSG_PROXY"),
    (0x20, "MSG_TRUNC"), (0x40, "MSG_DONTWAIT"), (0x80, "MSG_EOR"), (0x100, "MSG_WAITALL"),
    (0x200, "MSG_FIN"), (0x400, "MSG_SYN"), (0x800, "MSG_CONFIRM"), (0x1000, "MSG_RST"),
    (0x2000, "MSG_ERRQUEUE"), (0x4000, "MSG_NOSIGNAL"), (0x8000, "MSG_MORE"), (0x10000, "MSG_WAITFORONE"),
    (0x40000, "MSG_BATCH"), (0x4000000, "MSG_ZEROCOPY"), (0x20000000, "MSG_FASTOPEN"),
    (0x40000000, "MSG_CMSG_CLOEXEC"),
)
EPOLL_CTL = {1: "EPOLL_CTL_ADD", 2: "EPOLL_CTL_DEL", 3: "EPOLL_CTL_MOD"}
RUSAGE_WHO = {0: "RUSAGE_SELF", 0xFFFFFFFF: "RUSAGE_CHILDREN", 1: "RUSAGE_THREAD"}
STATX_MASK: Bits = (
    (0xfff, "STATX_ALL"), (0x7ff, "STATX_BASIC_STATS"), (0x1, "STATX_TYPE"), (0x2, "STATX_MODE"),
    (0x4, "STATX_NLINK"), (0x8, "STATX_UID"), (0x10, "STATX_GID"), (0x20, "STATX_ATIME"),
    (0x40, "STATX_MTIME"), (0x80, "STATX_CTIME"), (0x100, "STATX_INO"), (0x200, "STATX_SIZE"),
    (0x400, "STATX_BLOCKS"), (0x800, "STATX_BTIME"), (0x1000, "STATX_MNT_ID"), (0x2000, "STATX_DIOALIGN"),
)
STATX_SYNC = {0: "AT_STATX_SYNC_AS_STAT", 0x2000: "AT_STATX_FORCE_SYNC", 0x4000: "AT_STATX_DONT_SYNC"}
RLIM_INFINITY = (1 << 64) - 1
EPOLL_EVENTS: Bits = (
    (0x1, "EPOLLIN"), (0x2, "EPOLLPRI"), (0x4, "EPOLLOUT"), (0x8, "EPOLLERR"), (0x10, "EPOLLHUP"),
    (0x20, "EPOLLNVAL"), (0x40, "EPOLLRDNORM"), (0x80, "EPOLLRDBAND"), (0x100, "EPOLLWRNORM"),
    (0x200, "EPOLLWRBAND"), (0x400, "EPOLLMSG"), (0x2000, "EPOLLRDHUP"), (1 << 28, "EPOLLEXCLUSIVE"),
    (1 << 29, "EPOLLWAKEUP"), (1 << 30, "EPOLLONESHOT"), (1 << 31, "EPOLLET"),
)
POLL_EVENTS: Bits = (
    (0x1, "POLLIN"), (0x2, "POLLPRI"), (0x4, "POLLOUT"), (0x8, "POLLERR"), (0x10, "POLLHUP"),
    (0x20, "POLLNVAL"), (0x40, "POLLRDNORM"), (0x80, "POLLRDBAND"), (0x100, "POLLWRNORM"),
    (0x200, "POLLWRBAND"), (0x400, "POLLMSG"), (0x1000, "POLLREMOVE"), (0x2000, "POLLRDHUP"),
    (0x8000, "POLL_BUSY_LOOP"),
)
