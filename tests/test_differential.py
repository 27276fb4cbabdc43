"""The same programs natively and in the guest: their outputs must match.

Static C programs (tests/progs) and busybox shell batteries (tests/shell)
run on the host and inside a guest booted from the same busybox tree.
"""
from __future__ import annotations

import os
import shutil

import pytest

from conftest import BUSYBOX, PATH_ENV, PROGS, ROOT, TREE, boot, native, sh, user_xattrs_work

C_PROGRAMS = ["t_forkwait", "t_pipe", "t_dupfcntl", "t_getdents", "t_stat", "t_cloexec", "t_misc", "t_timers", "t_epoll", "t_unix", "t_futex", "t_sysv", "t_inotify", "t_signals", "t_threads", "t_mq_splice", "t_rtsig", "t_select_shm", "t_misc7", "t_locks", "t_clone", "t_mmap", "t_xattr", "t_sched", "t_caps", "t_tmpfile", "t_efault", "t_fdalloc", "t_timelimits", "t_argrange", "t_tcp", "t_udp", "t_icmp", "t_openat2", "t_oldcalls", "t_sigact", "t_clocks", "t_keys", "t_procctl", "t_mlock", "t_vmaccess", "t_ipclimits", "t_fown", "t_sgid", "t_memfd", "t_procfd", "t_sparse", "t_bigids", "t_sockerr", "t_statx", "t_ns", "t_rwvec", "t_splice", "t_fileerr", "t_pipesize", "t_fhandle", "t_lease", "t_cputimers", "t_pring", "t_fanotify", "t_bpf", "t_uffd", "t_io_uring", "t_mounts", "t_pidns", "t_netns", "t_cgroup", "t_ptrace", "t_ptrace_events", "t_userns", "t_strace", "t_pathread", "t_procmem", "t_netcaps", "t_memlimits", "t_chattr", "t_sigxstate", "t_seccomp", "t_pidfdreuse", "t_stopintr", "t_ioac", "t_kcmp", "t_aio", "t_inflight", "t_xattrspace", "t_glibfound", "t_emfile", "t_landlock", "t_landlock_mnt", "t_acct", "t_sockfilter", "t_ucount", "t_crtools", "t_timens", "t_overlay", "t_futexprio", "t_gapfill", "t_execargs", "t_ipcwait", "t_proctid", "t_ethtool", "t_rawnames", "t_vmflags", "t_mapunlink", "t_ctxsw", "t_mcastif", "t_sockmark", "t_sotstamp", "t_fifohup", "t_epollorder"]
NEEDS_PROC = {"t_aio", "t_vmflags", "t_proctid", "t_rawnames", "t_gapfill", "t_execargs", "t_futexprio", "t_overlay", "t_crtools", "t_landlock", "t_glibfound", "t_ioac", "t_pidfdreuse", "t_procmem", "t_seccomp", "t_netcaps", "t_bpf", "t_cgroup", "t_fanotify", "t_io_uring", "t_keys", "t_mounts", "t_netns", "t_ns", "t_openat2", "t_pidns", "t_ptrace", "t_ptrace_events", "t_userns", "t_timens"}   # read /proc: the guest mounts it first
NATIVE_NEEDS_ROOT = {
    "t_pring": "packet sockets",
    "t_fanotify": "CAP_SYS_ADMIN for fanotify groups",
    "t_bpf": "CAP_BPF (the host refuses unprivileged bpf(2))",
    "t_io_uring": "chroot and setuid",
    "t_mounts": "a mount namespace",
    "t_pathread": "setuid, for a directory without search permission",
    "t_procmem": "setuid, for another user's process",
    "t_netcaps": "a network namespace of its own (the host may refuse unprivileged user namespaces)",
    "t_chattr": "CAP_LINUX_IMMUTABLE, and a tmpfs of its own",
    "t_xattrspace": "a tmpfs mount of its own",
    "t_overlay": "tmpfs and overlay mounts of its own, trusted.* xattrs, device nodes",
    "t_landlock_mnt": "a mount namespace of its own",
    "t_acct": "CAP_SYS_PACCT, in a pid namespace of its own (whose accounting is its own)",
    "t_crtools": "an IPC namespace of its own, and CAP_CHECKPOINT_RESTORE",
    "t_timens": "time namespaces (CAP_SYS_ADMIN, CAP_SYS_TIME) and setuid",
    "t_futexprio": "SCHED_FIFO for the waiters whose order it prints",
    "t_sockmark": "setuid, for an unprivileged user's answers",
}
BATTERIES = sorted(p.stem for p in (ROOT / "tests" / "shell").glob("battery_*.sh"))


def _native_cmd(prog: str, scratch) -> list[str]:
    """t_pidfdreuse and t_acct run natively in a pid namespace of their own (root).
    t_pring needs root (CAP_NET_RAW) for its packet sockets.  t_icmp needs ping sockets, which the host's default
    net.ipv4.ping_group_range ("1 0") refuses even to root: natively it runs
    in a network namespace of its own that allows them, as the guest does
    (only as root; the namespace changes nothing of the host's)."""
    cmd = [str(PROGS / prog), str(scratch)]
    if prog in NATIVE_NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip(f"{prog}'s native side needs root: {NATIVE_NEEDS_ROOT[prog]}")
    if prog in ("t_cgroup", "t_xattrspace", "t_overlay"):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip(f"{prog}'s native side needs root to mount")
        # in a mount namespace of its own: the mount it makes goes with it
        return ["unshare", "-m", "sh", "-c", "mount --make-rprivate / && exec \"$0\" \"$@\"", *cmd]
    if prog == "t_chattr":
        # on a tmpfs of its own (a mount namespace's), as the guest's /tmp/s
        # is: whatever the host's scratch filesystem keeps of chattr flags
        return ["unshare", "-m", "sh", "-c", "mount -t tmpfs t \"$1\" && exec \"$0\" \"$1\"", *cmd]
    if prog in ("t_pidfdreuse", "t_acct"):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip(f"{prog}'s native side needs root for a pid namespace of its own")
        # there the pid it frees is surely the one its next fork gets; there
        # process accounting sees only its own processes
        return ["unshare", "-p", "-f", "--mount-proc", *cmd]
    if prog != "t_icmp":
        return cmd
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("t_icmp's native side needs root for a network namespace with ping sockets")
    return ["unshare", "-n", "sh", "-c",
            f"{BUSYBOX} ip link set lo up && "
            "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range && "
            "exec \"$0\" \"$@\"", *cmd]


@pytest.mark.parametrize("prog", C_PROGRAMS)
def test_c_program(prog, scratch):
    if prog == "t_xattr" and not user_xattrs_work(scratch):
        pytest.skip("the host filesystem of the scratch dir refuses user xattrs")
    want = native(_native_cmd(prog, scratch))
    if prog == "t_cgroup" and not want.startswith(b"mount cgroup2: 0\n"):
        pytest.skip("the host refuses a cgroup2 mount here")
    # run as a child of sh (not as pid 1, so getppid() > 0 as natively)
    proc = "mount -t proc proc /proc; " if prog in NEEDS_PROC else ""
    got = sh(f"{proc}mkdir -p /tmp/s; /t/bin/{prog} /tmp/s; true")
    assert got.stdout.decode() == want.decode()
    assert want.rstrip().endswith(b"done")


@pytest.mark.parametrize("prog", ["t_misc", "t_forkwait", "t_cloexec"])
def test_static_pie_program(prog, scratch):
    """The same programs linked as static PIEs (ET_DYN, loaded at a bias)."""
    want = native([str(PROGS / f"{prog}.pie"), str(scratch)])
    got = sh(f"mkdir -p /tmp/s; /t/bin/{prog}.pie /tmp/s; true")
    assert got.stdout.decode() == want.decode()


def test_auxv_argv_envp():
    args = ["x", "y z"]
    env = {"T_ONE": "1", "T_TWO": "a b", "PATH": "/usr/bin:/bin"}
    want = native([str(PROGS / "t_auxv"), *args], env=env)
    got = boot("quiet", "init=/usr/bin/env", init_args=["-i", "T_ONE=1", "T_TWO=a b", "PATH=/usr/bin:/bin",
                                                     "/t/bin/t_auxv", *args])
    assert got.stdout.decode() == want.decode()


@pytest.mark.parametrize("battery", BATTERIES)
def test_shell_battery(battery, scratch):
    env = {"PATH": os.environ.get("PATH", "/bin"), "T_DATA": str(TREE / "t" / "data")}
    want = native([str(BUSYBOX), "sh", str(ROOT / "tests" / "shell" / f"{battery}.sh"), str(scratch)],
                  cwd=scratch, env=env)
    got = boot("quiet", "init=/bin/sh", PATH_ENV, init_args=[
        "-c", f"mkdir -p /tmp/s; cd /tmp/s; sh /t/sh/{battery}.sh /tmp/s; true"])
    assert got.stdout.decode() == want.decode()


def test_argument_lists_past_the_fresh_stack(scratch):
    """execve with arguments and environment past the 128 KiB the host's
    execve leaves below a fresh stack: they fit (the host grows the
    stack), in one [stack] mapping; E2BIG past a quarter of RLIMIT_STACK
    (pointers, file name and strings together) and for one string past
    MAX_ARG_STRLEN, as natively (the shell runs t_auxv, a static program,
    with an environment of one variable at most on both sides)."""
    script = ("mount -t proc proc /proc 2>/dev/null; o=$1/o; p=$2; export -n $(env | sed \"s/=.*//\"); "
              "for n in 1000 30000 120000 143000 148000 300000; do x=$(seq 1 $n); "
              "if $p $x > $o 2>/dev/null; then wc -c < $o; else echo E2BIG; fi; done; "
              "for k in 131069 131070; do b=$(head -c $k /dev/zero | tr \"\\0\" a); "
              "B=$b $p > /dev/null 2>&1 && echo ok || echo E2BIG; done; "
              "(ulimit -s 1024; x=$(seq 1 40000); $p $x > /dev/null 2>&1 && echo ok || echo E2BIG); "
              "x=$(seq 1 20000); env B1=\"$x\" B2=\"$x\" cat /proc/self/maps | grep -c stack")
    want = native([str(BUSYBOX), "sh", "-c", script, "sh", str(scratch), str(PROGS / "t_auxv")])
    got = sh(f"mkdir -p /tmp/s; sh -c '{script}' sh /tmp/s /t/bin/t_auxv")
    assert want.split()[4:] == [b"E2BIG", b"E2BIG", b"ok", b"E2BIG", b"E2BIG", b"1"], want
    assert got.stdout == want
