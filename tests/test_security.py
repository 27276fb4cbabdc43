"""Containment: what the guest must never reach, and the kernel/host boundary."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import time

import pytest

from conftest import CPIO, IMAGE, ROOT, UMLPY, as_nobody, boot, sh
from hostview import alive, children

FORBIDDEN = {"os", "ctypes", "cffi", "signal", "select", "mmap", "socket", "termios", "fcntl",
             "subprocess", "threading", "resource", "sys", "time", "pty", "tty", "io", "shutil"}


def _absolute_imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_kernel_imports_nothing_of_the_host():
    """src/umlpy reaches the host only through arch_um (ARCHITECTURE.md)."""
    bad = [f"{path.relative_to(ROOT)}: {n}" for path in (ROOT / "src" / "umlpy").rglob("*.py")
           for n in _absolute_imports(path) if n.split(".")[0] in FORBIDDEN]
    assert not bad, bad


def test_no_breakpoint_left_in_the_kernel():
    """breakpoint() in kernel code holds the whole machine at the host's
    pdb (docs/debugging.md): one left behind would let a guest stall it."""
    bad = [f"{path.relative_to(ROOT)}:{node.lineno}"
           for top in (ROOT / "src" / "umlpy", ROOT / "arch_um") for path in top.rglob("*.py")
           for node in ast.walk(ast.parse(path.read_text()))
           if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "breakpoint"]
    assert not bad, bad


def test_host_port_stands_apart():
    """The host port is top-level arch_um/, beside the kernel in src/, and
    depends on nothing of the kernel: the contract runs one way."""
    assert not (ROOT / "src" / "arch_um").exists()
    bad = [f"{path.relative_to(ROOT)}: {n}" for path in (ROOT / "arch_um").rglob("*.py")
           for n in _absolute_imports(path) if n.split(".")[0] in ("umlpy", "umlpy_cli")]
    assert not bad, bad


def test_no_host_call_sets_a_host_clock():
    """The guest's clock is its own (kernel/timekeeping.py): the host port
    has no way to set or adjust, or even read the NTP state of, a host
    clock that a guest's clock_settime or adjtimex could reach."""
    calls = ("clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "ntp_adjtime", "stime(")
    bad = [f"{path.relative_to(ROOT)}: {c}" for path in (ROOT / "arch_um").iterdir()
           if path.suffix in (".py", ".c", ".h") for c in calls if c in path.read_text()]
    assert not bad, bad


def test_unsupported_syscall_is_enosys_and_logged_once():
    r = boot("init=/bin/sh", init_args=["-c", "/t/bin/t_enosys; /t/bin/t_enosys"])
    assert r.stdout == b"kexec_load: -1 ENOSYS\nsyscall 999: -1 ENOSYS\ndone\n" * 2
    log = r.stderr.decode()
    assert log.count("unsupported syscall kexec_load") == 1
    assert log.count("unsupported syscall syscall_999") == 1


def _host_threads(pid: int) -> int:
    """The host threads of pid's descendants (the guests' host processes)."""
    out = subprocess.run(["ps", "-L", "-o", "lwp=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return len(out.split())


@pytest.mark.parametrize("trap", [[], ["seccomp=off"]], ids=["seccomp", "ptrace"])
def test_exited_threads_leave_the_host_and_exec_goes_on(trap):
    """A process makes and joins 50 threads, then execs.  Each thread's
    host thread must leave the host when it exits: on the seccomp path it
    used to stay stopped at its exit's seccomp stop, so they piled up (a
    server making threads would exhaust the host's), and the host's execve
    then waited for the kernel to reap them while the kernel waited for the
    execve: the whole machine stopped, mconsole and SIGTERM included."""
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", *trap, "init=/bin/sh", "--", "-c",
                          "/t/bin/t_threadexec 3"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"joined\n"
        time.sleep(0.5)
        assert _host_threads(p.pid) < 10
        assert p.stdout.readline() == b"exec ok\n"
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_sigkill_of_the_kernel_kills_every_guest():
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--", "-c",
                          "sleep 100 & sleep 100 & (sleep 100; true) & echo started; wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout.readline() == b"started\n"
    time.sleep(0.3)
    guests = children(p.pid)
    assert len(guests) >= 4
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 5
    while any(alive(g) for g in guests) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [g for g in guests if alive(g)]


def test_guest_processes_hold_no_host_fds():
    p = subprocess.Popen([str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--", "-c",
                          "exec 3</t/data/words; cat /dev/zero | sleep 100 & echo started; wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout.readline() == b"started\n"
        time.sleep(0.3)
        guests = children(p.pid)
        assert guests
        for g in guests:
            assert os.listdir(f"/proc/{g}/fd") == [], g
    finally:
        p.kill()
        p.wait()


def test_guest_pids_are_the_kernels_own():
    r = sh("echo $$; sh -c 'echo $$ $PPID'; true")
    first, second = r.stdout.decode().split("\n")[:2]
    assert first == "1"
    pid, ppid = second.split()
    assert ppid == "1" and int(pid) < 1000


@pytest.mark.skipif(os.geteuid() != 0 and not os.access(str(UMLPY), os.X_OK),
                    reason="needs root to switch user, or an accessible venv")
def test_boot_as_a_non_root_user(tmp_path):
    r = subprocess.run(as_nobody() + [str(UMLPY), str(IMAGE), f"initrd={CPIO}", "quiet", "init=/bin/sh", "--",
                                 "-c", "echo hi from $(id -u); exit 5"],
                       capture_output=True, timeout=60, cwd="/")
    assert r.stdout == b"hi from 0\n", r.stderr
    assert r.returncode == 5


def test_syscall_table_doc_is_current():
    r = subprocess.run([str(UMLPY), "syscalls", "--markdown"], capture_output=True, check=True)
    assert (ROOT / "docs" / "syscalls.md").read_bytes() == r.stdout, "run `make docs`"


def test_task_limits_stop_a_fork_bomb():
    """threads-max (from mem=, as Linux's set_max_threads) binds even root,
    RLIMIT_NPROC binds a user's tasks and threads (t_nproc), and a shell
    fork bomb dies out at the limit while the kernel goes on."""
    r = sh("mount -t proc proc /proc; cat /proc/sys/kernel/threads-max; ulimit -u; /t/bin/t_nproc", "mem=256M")
    assert r.stdout.decode() == (
        "1921\n960\n"
        "root forks under threads-max: 20 more, then EAGAIN\n"
        "user forks with RLIMIT_NPROC 6: 5 more, then EAGAIN\n"
        "  two children reaped: 2 threads more, then EAGAIN\n"
        "setuid to a user over RLIMIT_NPROC: 0\n"
        "  execve then: -1 EAGAIN\n"
        "  execve once the user is under it: runs\n"
        "root forks past RLIMIT_NPROC 2: 10\n"
        "done\n")
    r = sh("mount -t proc proc /proc; (bomb() { bomb | bomb & }; bomb) 2>/dev/null & sleep 5; "
           "kill -9 -1 2>/dev/null; sleep 1; echo left $(ls -d /proc/[0-9]* | wc -l)", "mem=256M", timeout=120)
    assert r.stdout.endswith(b"left 4\n")


def test_unix_sockets_sent_through_themselves_are_collected():
    """A socket pair sent through itself and closed is held only by its
    own queue: 20 000 of them (a loop any user can run, each a few KiB of
    the kernel's memory) are collected as Linux's unix_gc collects them,
    and /proc/net/unix is back where it was (t_inflight; the per-user
    bound on files in flight is in the differential t_inflight)."""
    r = sh("mount -t proc proc /proc; /t/bin/t_inflight cycles 20000; "
           "su user -s /bin/sh -c '/t/bin/t_inflight cycles 3000'", timeout=300)
    assert r.stdout.decode() == ("cycles made: 20000 of 20000\nunix sockets left: 0\n"
                                 "cycles made: 3000 of 3000\nunix sockets left: 0\n"), r.stderr[-2000:]


def test_epoll_watches_stop_at_max_user_watches():
    """fs.epoll.max_user_watches (4% of RAM in Linux 6.1's epitems: 54739
    for mem=256M) binds each user's watches over all its epolls, root too,
    as ep_insert; a closed epoll or watched file gives them back (250 000
    watches of one user grew the kernel by 120 MB)."""
    r = sh("mount -t proc proc /proc; cat /proc/sys/fs/epoll/max_user_watches; "
           "echo 150 > /proc/sys/fs/epoll/max_user_watches; /t/bin/t_epollwatches; "
           "su user -s /bin/sh -c /t/bin/t_epollwatches", "mem=256M")
    run = ("watches: 150, then ENOSPC\n"
           "after closing an epoll: watches: 20, no error\n"
           "after closing a watched file: watches: 8, then ENOSPC\n"
           "done\n")
    assert r.stdout.decode() == "54739\n" + run + run, r.stderr[-2000:]


# A machine whose RAM a test fills is out of memory, as Linux's would be:
# the OOM killer takes these sleeps, one a sample (10 ms at least), never
# the test (oom_score_adj -1000), which gives the memory back well before
# the last is gone (none left: "no killable processes", a panic).
VICTIMS = "for i in $(seq 20); do sleep 1000 & echo 1000 > /proc/$!/oom_score_adj; done; "


def test_shmem_no_process_maps_is_bounded_by_mem():
    """Pages of memfds, tmpfs files and SysV segments are host memory the
    guest need not map (a memfd filled by write(2) held 1.5 GB of the
    host's in a guest of mem=256M, as an unprivileged user).  They are the
    machine's shmem, in its RAM as on Linux: a write past it is ENOMEM;
    /proc/meminfo's Shmem counts them, those a mapping filled once it is
    gone too; closing or removing gives them back."""
    r = sh("mount -t proc proc /proc; " + VICTIMS +
           "echo -1000 > /proc/self/oom_score_adj; /t/bin/t_shmem memfd; /t/bin/t_shmem mapped 64; "
           "/t/bin/t_shmem sysv 32 3; su user -s /bin/sh -c '/t/bin/t_shmem memfd; /t/bin/t_shmem mapped 64'",
           "mem=256M", timeout=300)
    fill = ("write stopped: ENOMEM, within MemTotal: 1\nShmem counts it: 1\n"
            "after close, Shmem under 16 MB: 1\ndone\n")
    mapped = "unmapped, Shmem grew by its size: 1\nclosed, Shmem back: 1\ndone\n"
    sysv = "detached, Shmem grew by theirs: 1\nremoved, Shmem back: 1\ndone\n"
    assert r.stdout.decode() == fill + mapped + sysv + fill + mapped, r.stderr[-2000:]
    assert b"shmem: out of memory" in r.stderr and b"Oops" not in r.stderr


def test_sysv_messages_are_bounded_by_mem():
    """SysV messages are kernel memory (Python objects here): root may let
    a queue hold 1 GiB and msgmax 64 KiB, and 32 000 queues, which grew the
    kernel without bound.  Each message is charged at what Linux's
    alloc_msg allocates: msgsnd is ENOMEM past RAM, Slab shows them,
    IPC_RMID gives them back."""
    r = sh("mount -t proc proc /proc; " + VICTIMS +
           "echo -1000 > /proc/self/oom_score_adj; echo 65536 > /proc/sys/kernel/msgmax; /t/bin/t_shmem msg",
           "mem=256M", timeout=300)
    assert r.stdout.decode() == ("msgsnd stopped: ENOMEM, within MemTotal: 1\nSlab counts them: 1\n"
                                 "removed, Slab back: 1\ndone\n"), r.stderr[-2000:]
    assert b"Oops" not in r.stderr


def test_posix_messages_are_bounded_by_mem():
    """POSIX queue messages too (root may lift RLIMIT_MSGQUEUE and raise
    msg_max and msgsize_max to 65 536 and 16 MiB): mq_send is ENOMEM past
    RAM, as load_msg's allocation fails; unlinking gives them back."""
    r = sh("mount -t proc proc /proc; " + VICTIMS +
           "echo -1000 > /proc/self/oom_score_adj; echo 1024 > /proc/sys/fs/mqueue/msg_max; "
           "echo 1048576 > /proc/sys/fs/mqueue/msgsize_max; /t/bin/t_shmem mq", "mem=256M", timeout=300)
    assert r.stdout.decode() == ("mq_send stopped: ENOMEM, within MemTotal: 1\nSlab counts them: 1\n"
                                 "unlinked, Slab back: 1\ndone\n"), r.stderr[-2000:]
    assert b"Oops" not in r.stderr


def test_queued_notification_events_are_charged():
    """inotify and fanotify events are kernel memory: a queue holds up to
    16 384 (fanotify with FAN_UNLIMITED_QUEUE, root raising the limits: no
    end), so each is charged to RAM (Slab) while queued, an event that
    does not fit being lost as the queue's overflow; reading gives them
    back."""
    r = sh("mount -t proc proc /proc; mount -t tmpfs t /tmp; chmod 1777 /tmp; /t/bin/t_shmem events /tmp; "
           "su user -s /bin/sh -c '/t/bin/t_shmem events /tmp'")
    once = "16000 events queued, Slab grew by at least 512 kB: 1\nread 16000, Slab back: 1\ndone\n"
    assert r.stdout.decode() == once + once, r.stderr[-2000:]


def test_pipes_are_bounded_by_mem():
    """A pipe's pages are kernel memory: charged to RAM (Slab) as its slots
    fill, ENOMEM past it, given back as they are read and at the last
    close.  Pipes of the default size, as many as root can make (file-max
    lets 12 000 hold 750 MiB), and one of 1 GiB (F_SETPIPE_SZ with
    CAP_SYS_RESOURCE and pipe-max-size raised, accepted as Linux does)."""
    r = sh("mount -t proc proc /proc; " + VICTIMS + "echo -1000 > /proc/self/oom_score_adj; "
           "/t/bin/t_shmem pipes; echo 1073741824 > /proc/sys/fs/pipe-max-size; /t/bin/t_shmem pipe",
           "mem=256M")
    assert r.stdout.decode() == (
        "a write found no memory: 1, held within MemTotal: 1, pipes over 1000: 1\n"
        "Slab counts them: 1\nclosed, Slab back: 1\ndone\n"
        "1 GiB: ok\nwrite stopped: ENOMEM, within MemTotal: 1\nSlab counts it: 1\nread back: 1\n"
        "closed, Slab back: 1\ndone\n"), r.stderr[-2000:]


def test_keys_are_bounded_by_mem():
    """Root may raise its key quotas (and own keys as any number of uids):
    keys are kernel memory, charged to RAM (Slab), add_key ENOMEM past it."""
    r = sh("mount -t proc proc /proc; " + VICTIMS + "echo -1000 > /proc/self/oom_score_adj; "
           "/t/bin/t_shmem keys", "mem=256M")
    assert r.stdout.decode() == ("add_key stopped: ENOMEM, within MemTotal: 1\nSlab counts them: 1\n"
                                 "cleared, Slab back: 1\ndone\n"), r.stderr[-2000:]


def test_epoll_watches_are_bounded_by_mem():
    """Root may raise max_user_watches (and watch as any number of uids):
    each watch's epitem is kernel memory charged to RAM.  A child adds
    watches without end: epoll_ctl's ENOMEM, or the OOM killer takes it
    first (RAM full of kernel objects kills, as Linux's does); either way
    its end gives the memory back."""
    r = sh("mount -t proc proc /proc; echo -1000 > /proc/self/oom_score_adj; /t/bin/t_shmem watches",
           "mem=64M")
    out = r.stdout.decode()
    assert out.startswith(("epoll_ctl stopped: ENOMEM, within MemTotal: 1\n",
                           "the OOM killer took the filler\n")), r.stderr[-2000:]
    assert out.endswith("gone, Slab back: 1\ndone\n"), r.stderr[-2000:]


def test_memory_files_past_the_host_fd_budget_are_enfile():
    """Each tmpfs file with data (memfd, SysV segment, AIO ring...) holds a
    host fd of the kernel: a guest making them without end (as an
    unprivileged user, in /tmp) gets ENFILE once the kernel's budget is
    spent, and the kernel, which keeps a reserve for its own fds, goes on:
    programs still start, files freed give room again.  umlpy runs with
    a 2048-fd limit here (a budget of 1792, the initramfs's files in it)."""
    r = boot("quiet", "init=/bin/sh", "PATH=/bin:/sbin:/usr/bin:/usr/sbin", prefix=["prlimit", "--nofile=2048:2048"],
             init_args=["-c", "mount -t tmpfs -o mode=1777 t /tmp; su user -s /bin/sh -c '"
                        "i=0; while [ $i -lt 3000 ]; do echo x > /tmp/f$i 2>/dev/null || break; i=$((i+1)); done; "
                        "echo stopped under 1792: $((i < 1792)); cat /tmp/f5; rm /tmp/f1*; echo y > /tmp/again; "
                        "cat /tmp/again'; ls / > /dev/null && echo still-running"], timeout=300)
    assert r.stdout.decode() == "stopped under 1792: 1\nx\ny\nstill-running\n", r.stdout + r.stderr[-2000:]
    assert b"no host fd left for guest memory files: ENFILE" in r.stderr
    assert b"Oops" not in r.stderr


# What t_protected printed on Linux 6.18 (Debian 12's host, run as root once
# by hand: it sets the host's fs.protected_*, so the test does not run it
# there): user 1001's outcomes (follow the link, hard-link the private file,
# O_CREAT the file, O_CREAT the fifo) by level and sticky directory; the
# owner's are all "ok"
PROTECTED_ACTS = ("follow link", "hard link to another's private file", "O_CREAT of another's file",
                  "O_CREAT of another's fifo")
PROTECTED_OTHER = {
    (0, "world"): "ok ok ok ok", (0, "group"): "ok ok ok ok",
    (1, "world"): "EACCES EPERM EACCES EACCES", (1, "group"): "ok EPERM ok ok",
    (2, "world"): "EACCES EPERM EACCES EACCES", (2, "group"): "ok EPERM EACCES EACCES",
}


def _protected_as_linux() -> str:
    lines = []
    for level in range(3):
        lines.append(f"level {level}, sticky world-writable:")
        lines += [f"  other {a}: {r}" for a, r in zip(PROTECTED_ACTS, PROTECTED_OTHER[level, "world"].split())]
        lines += [f"  owner {a}: ok" for a in PROTECTED_ACTS]
        lines.append(f"level {level}, sticky group-writable:")
        lines += [f"  other {a}: {r}" for a, r in zip(PROTECTED_ACTS, PROTECTED_OTHER[level, "group"].split())]
    lines += ["set protected_fifos: Invalid argument", "set protected_symlinks: Invalid argument", "done"]
    return "\n".join(lines) + "\n"


def test_protected_links_and_sticky_creates_as_linux():
    """fs.protected_symlinks, _hardlinks, _fifos and _regular, each 0, 1
    and 2: another user's symlink not followed and another's private file
    not hard-linked in a sticky world-writable directory, nor another's
    fifo or file opened with O_CREAT there (or, at 2, in a group-writable
    sticky one); their owners unaffected; the sysctls root-only, 0 to 1 or 2."""
    r = sh("mount -t proc proc /proc; mkdir -p /tmp/s; /t/bin/t_protected /tmp/s; "
           "stat -c %a /proc/sys/fs/protected_symlinks")
    assert r.stdout.decode() == _protected_as_linux() + "600\n"


def test_landlock_rules_pin_no_more_inodes_than_file_max():
    """Each Landlock rule holds its inode out of the caches' reach, as an
    open file does: a guest user adding rules without end is stopped with
    ENOMEM at fs.file-max rules alive (Linux's memcg would stop it), and
    gets them back when the ruleset is gone."""
    r = sh("mount -t proc proc /proc; echo 150 > /proc/sys/fs/file-max; mkdir -m 777 /tmp/s; "
           "su user -s /bin/sh -c '/t/bin/t_landlock /tmp/s pin 400'")
    assert r.stdout.decode() == "round 0: 150 rules, then ENOMEM\nround 1: 150 rules, then ENOMEM\n", \
        r.stderr[-2000:]


def test_open_files_stop_at_file_max():
    """fs.file-max (a file per 10 KiB of RAM, as files_maxfiles_init: 24 594
    for mem=256M; UML 6.1's 22 980) binds every task without
    CAP_SYS_ADMIN, whatever their RLIMIT_NOFILE (the open file
    descriptions of a user's processes are the kernel's memory); root
    passes it, as on Linux.  And a file an open made but no descriptor
    took (EMFILE) is let go: the blocks of a tmpfs file unlinked after it
    come back (they stayed taken until the kernel ended)."""
    r = sh("mount -t proc proc /proc; cat /proc/sys/fs/file-max; echo 300 > /proc/sys/fs/file-max; "
           "su user -s /bin/sh -c '/t/bin/t_filemax /dev/null'; "
           "ulimit -n 2000; /t/bin/t_filemax /dev/null; "
           "mount -t tmpfs -o size=8m t /mnt; dd if=/dev/zero of=/mnt/big bs=1M count=6 2>/dev/null; "
           "su user -s /bin/sh -c '/t/bin/t_filemax /mnt/big'; rm /mnt/big; "
           "df /mnt | awk 'NR == 2 { print \"used after the unlink:\", $3 }'; dmesg | grep -q 'VFS: file-max limit 300 reached' && echo logged",
           "mem=256M")
    assert r.stdout.decode() == (
        "24594\n"
        "ENFILE after more than 100, file-nr at file-max\n"
        "EMFILE after more than 100, file-nr well past file-max\n"
        "ENFILE after more than 100, file-nr at file-max\n"
        "used after the unlink: 0\n"
        "logged\n"), r.stderr[-2000:]
