"""The kernel's .config, as /proc/config.gz shows it (IKCONFIG_PROC).

Programs and test suites (LTP's tst_kconfig above all) read it to learn
what the kernel was built with and skip what it lacks; a kernel without it
leaves them guessing, and they give up ("Cannot parse kernel .config").  It
must tell the truth about umlpy: an option is `y` only when what it stands
for works here, and options whose syscalls are in the table follow the
table, so the two cannot drift apart.
"""
from __future__ import annotations

import gzip

from umlpy.abi.syscall_nr import NUMBERS
from umlpy.fs import registry
from umlpy.syscalls import table

# what umlpy always has (options that stand for a syscall or a filesystem
# type are not listed here or below: _SYSCALLS and _FILESYSTEMS decide them)
_BUILT_IN = (
    "UML", "64BIT", "X86_64", "MMU", "HZ_100", "HIGH_RES_TIMERS", "POSIX_TIMERS", "PRINTK",
    "MULTIUSER", "SYSVIPC", "SYSVIPC_SYSCTL", "POSIX_MQUEUE", "FUTEX", "EPOLL", "SIGNALFD",
    "TIMERFD", "EVENTFD", "SHMEM", "MEMFD_CREATE", "ADVISE_SYSCALLS", "FILE_LOCKING",
    "FSNOTIFY", "INOTIFY_USER", "DNOTIFY", "PROC_FS", "PROC_SYSCTL", "IKCONFIG", "IKCONFIG_PROC", "SYSFS",
    "DEVTMPFS", "DEVTMPFS_MOUNT", "EXT2_FS_XATTR", "BLK_DEV",
    "BLK_DEV_UBD", "BLK_DEV_COW_COMMON", "TTY", "UNIX98_PTYS", "MAGIC_SYSRQ", "MCONSOLE",
    "STDIO_CONSOLE", "SSL", "FD_CHAN", "NULL_CHAN", "PORT_CHAN", "PTY_CHAN",
    "NET", "INET", "IPV6", "UNIX", "PACKET", "BINFMT_ELF", "BINFMT_SCRIPT", "FHANDLE",
    "CROSS_MEMORY_ATTACH", "BLK_DEV_INITRD", "BLK_DEV_LOOP", "BLOCK_LEGACY_AUTOLOAD",
    "NAMESPACES", "UTS_NS", "IPC_NS", "MNT_NS", "PID_NS", "NET_NS", "USER_NS", "TIME_NS", "CGROUPS",
    # ns_last_pid, clone3's set_tid, msgrcv's MSG_COPY, /proc/sys/kernel/*_next_id,
    # PR_SET_MM_MAP, /proc/PID/map_files (not PR_SET_MM_EXE_FILE)
    "CHECKPOINT_RESTORE",
)
# what it does not have (the options test suites ask about)
_NOT_SET = (
    "MODULES", "SWAP", "NUMA",
    "QUOTA",
    "QFMT_V2", "HUGETLBFS", "HUGETLB_PAGE", "BLK_DEV_RAM", "MANDATORY_FILE_LOCKING",
    "FS_VERITY", "MEMORY_FAILURE", "KSM", "TRANSPARENT_HUGEPAGE",
    "TRACING", "FTRACE", "KPROBES", "AUDIT", "SECURITY_SELINUX", "SECURITY_APPARMOR", "KVM",
    "NETFILTER", "TLS", "RDS", "SCTP", "XFS_FS", "BTRFS_FS", "VFAT_FS", "FUSE_FS", "OVERLAY_FS",
    "TMPFS_XATTR", "PREEMPT_RT", "UCLAMP_TASK", "RT_GROUP_SCHED",
    "BPF_JIT", "BPF_UNPRIV_DEFAULT_OFF", "XTERM_CHAN", "LEGACY_PTYS",
)
# options that stand for syscalls: set exactly when the table handles them
_SYSCALLS = {
    "AIO": "io_setup", "KEYS": "add_key", "FANOTIFY": "fanotify_init",
    "FANOTIFY_ACCESS_PERMISSIONS": "fanotify_init",
    "USERFAULTFD": "userfaultfd", "IO_URING": "io_uring_setup", "BPF_SYSCALL": "bpf",
    "PERF_EVENTS": "perf_event_open", "BSD_PROCESS_ACCT": "acct", "BSD_PROCESS_ACCT_V3": "acct",
    "SECCOMP": "seccomp", "SECCOMP_FILTER": "seccomp",
    "SECURITY": "landlock_create_ruleset", "SECURITY_LANDLOCK": "landlock_create_ruleset",
}
# filesystem options: set exactly when the type is registered
_FILESYSTEMS = {"EXT2_FS": "ext2", "EXT3_FS": "ext3", "EXT4_FS": "ext4", "TMPFS": "tmpfs",
                "HOSTFS": "hostfs", "OVERLAY_FS": "overlay"}


def options() -> dict[str, bool]:
    """CONFIG_x -> set?"""
    out = {name: True for name in _BUILT_IN}
    out.update({name: False for name in _NOT_SET})
    have = table.Table()
    for name, call in _SYSCALLS.items():
        entry = have.get(NUMBERS[call])
        out[name] = entry is not None
    types = registry.types()
    for name, fstype in _FILESYSTEMS.items():
        out[name] = fstype in types
    return out


def text(release: str) -> str:
    lines = ["#", "# Automatically generated file; DO NOT EDIT.",
             f"# Linux/um {release} Kernel Configuration (umlpy)", "#"]
    for name, on in sorted(options().items()):
        lines.append(f"CONFIG_{name}=y" if on else f"# CONFIG_{name} is not set")
    return "\n".join(lines) + "\n"


def gz(release: str) -> bytes:
    # mtime=0: the same kernel gives the same bytes on every boot
    return gzip.compress(text(release).encode(), mtime=0)
