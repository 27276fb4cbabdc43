"""Which guest syscalls take the seccomp fast path.

On the seccomp trap path (arch_um/ptrace.py) a syscall in FAST reaches the
kernel as a user notification, which the kernel answers with a return
value alone: the task waits in the host kernel and the kernel holds only
its number, arguments and instruction pointer.  Every other syscall stops
the task for ptrace as before, with all its registers.  So a syscall is
here only if its handler reads nothing of the registers beyond its
arguments and sets nothing but the result (tests/test_trap.py checks the
handlers).  Anything rarer that needs more on the way, a signal frame, a
guest tracer, an injected host call, first brings the task to a real stop
(ptrace.ensure_stopped), which is correct but costs a stop: syscalls that
always inject (mmap and its family) or always load registers (clone,
execve, rt_sigreturn, arch_prctl, exit) are therefore left out.
"""
from __future__ import annotations

from umlpy.abi.syscall_nr import NUMBERS

FAST: tuple[str, ...] = (
    # file descriptors and I/O
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
    "preadv2", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3",
    "fcntl", "ioctl", "fsync", "fdatasync", "sync_file_range", "ftruncate", "truncate",
    "fallocate", "sendfile", "splice", "tee", "copy_file_range", "flock",
    # paths
    "open", "openat", "openat2", "creat", "stat", "lstat", "fstat", "newfstatat", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64",
    "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown",
    "fchown", "lchown", "fchownat", "utimensat", "utime", "utimes", "futimesat",
    "chdir", "fchdir", "getcwd", "umask", "statfs", "fstatfs", "mknod", "mknodat",
    # pipes, polling, event fds
    "pipe", "pipe2", "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
    "timerfd_create", "timerfd_settime", "timerfd_gettime",
    # sockets
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect",
    "getsockname", "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
    # time
    "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
    # identity and limits
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "getpgid", "getpgrp", "getsid", "uname", "sysinfo",
    "getrandom", "sched_yield", "sched_getaffinity", "getcpu", "getpriority",
    "getrlimit", "prlimit64", "set_robust_list", "set_tid_address",
    # System V IPC (shmat and shmdt map: left out) and POSIX message queues;
    # on the ptrace path a task asleep in one is a tracee in a stop, which
    # every host wait of the tracer passes over (200 asleep in semop made
    # another's semop cost 60 us instead of 25)
    "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl",
    "shmget", "shmctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
    "mq_getsetattr",
    # signals and waits (a signal to deliver stops the task first)
    "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "kill", "tkill", "tgkill",
    "wait4", "waitid", "futex",
)


def fast_numbers() -> list[int]:
    return sorted(NUMBERS[n] for n in FAST)
