"""Processes: fork, exec, exit, wait, ids, process groups, sessions, reboot."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import ptrace as P
from umlpy.abi import signals as S
from umlpy.abi.capability import CAP_KILL, CAP_SYS_BOOT, CAP_SYS_TTY_CONFIG
from umlpy.fs import exec as kexec
from umlpy.fs.cgroupfs import cgroup_of_fd
from umlpy.kernel import hostas
from umlpy.kernel import futex, ioac, ipc, rusage, threads
from umlpy.kernel import cred, nsproxy, printk, ptracer
from umlpy.kernel.errors import Block, KernelError, NoReturn
from umlpy.kernel.nsproxy import MAX_PID_NS_LEVEL
from umlpy.kernel.tunables import INT_MAX
from umlpy.kernel.process import Halt, status_exited
from umlpy.kernel.signal import queue_info
from umlpy.kernel.task import SIG_DEFAULT, SigAction, State, Task
from umlpy.vfs import pidfd
from umlpy.syscalls import prctl_mm, sys_seccomp
from umlpy.syscalls.sys_timer import delete_posix_timers
from umlpy.syscalls.table import PARTIAL, syscall, unsupported
from umlpy.syscalls.util import TASK_SIZE_MAX, access_ok, put_u64, read_cstr, read_path, s32, u32

UNSHARE_FLAGS = (C.CLONE_THREAD | C.CLONE_FS | C.CLONE_SIGHAND | C.CLONE_VM | C.CLONE_FILES
                 | C.CLONE_SYSVSEM | nsproxy.ALL_NEW)

unsupported("rseq", "glibc copes with ENOSYS (restartable sequences)")


@syscall("fork")
def sys_fork(t, *_):
    return t.kernel.procs.fork(t, 0, S.SIGCHLD, 0, 0, 0, 0)


@syscall("vfork")
def sys_vfork(t, *_):
    return t.kernel.procs.fork(t, C.CLONE_VM | C.CLONE_VFORK, S.SIGCHLD, 0, 0, 0, 0)


@syscall("clone", status=PARTIAL, note="processes (CLONE_VM shares the address space) and threads; CLONE_NEWUSER, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID and CLONE_NEWNET the only namespaces (time namespaces: clone3 and unshare, as Linux)")
def sys_clone(t, flags, stack, ptid, ctid, tls, *_):
    flags = u32(flags)          # clone(2) takes the flags and exit signal as an int
    if flags & C.CLONE_PIDFD and flags & C.CLONE_PARENT_SETTID:
        raise KernelError(E.EINVAL)     # clone(2) returns the pidfd through ptid
    return do_clone(t, flags & ~C.CSIGNAL, flags & C.CSIGNAL, stack, ptid, ctid, tls,
                    ptid if flags & C.CLONE_PIDFD else 0)


def _check_clone(t, flags: int, tls: int) -> None:
    """copy_process's refusals, before anything is made: threads share
    handlers and handlers share memory, an init (of any pid namespace)
    makes no siblings, a thread is made in its process's pid namespace
    (not in a new one, nor in the one unshare or setns chose), a pidfd
    is not for threads, and a TLS base must be a user address (EPERM, as
    do_arch_prctl_64; the host would refuse to resume the task with it)."""
    if flags & C.CLONE_THREAD and not flags & C.CLONE_SIGHAND:
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_SIGHAND and not flags & C.CLONE_VM:
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_PARENT and t.proc.unkillable:
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_THREAD and (flags & C.CLONE_NEWPID or t.proc.ns.pid is not t.proc.pidns):
        raise KernelError(E.EINVAL)     # a thread is in its process's pid namespace
    if flags & C.CLONE_PIDFD and flags & (C.CLONE_DETACHED | C.CLONE_THREAD):
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_NEWIPC and flags & C.CLONE_SYSVSEM:
        raise KernelError(E.EINVAL)     # a new IPC namespace cannot share semaphore undo
    if flags & C.CLONE_NEWUSER and flags & (C.CLONE_FS | C.CLONE_THREAD):
        raise KernelError(E.EINVAL)     # a new user namespace shares neither fs context nor thread group
    if flags & C.CLONE_NEWNS and flags & C.CLONE_FS:
        raise KernelError(E.EINVAL)     # a new mount tree cannot share root and cwd
    if flags & C.CLONE_THREAD and flags & nsproxy.ALL_NEW:
        printk.pr_notice(f"clone flags {flags:#x}: namespaces of a thread not supported")
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_SETTLS and tls >= TASK_SIZE_MAX:
        raise KernelError(E.EPERM)


def do_clone(t, flags: int, exit_signal: int, stack: int, ptid: int, ctid: int, tls: int, pidfd_at: int,
             set_tid: tuple[int, ...] = (), cgroup=None) -> int:
    """kernel_clone: flags without the exit signal (Procs.fork)."""
    _check_clone(t, flags, tls)
    if flags & C.CLONE_THREAD:
        return threads.clone_thread(t.kernel, t, flags, exit_signal, stack, ptid, ctid, tls, set_tid)
    born = (lambda child: pidfd.install_at_user(t, child, pidfd_at)) if pidfd_at else None
    return t.kernel.procs.fork(t, flags, exit_signal, stack, ptid, ctid, tls, born, set_tid, cgroup)


@syscall("unshare", status=PARTIAL, note="fd table, fs context, SysV semaphore undo list; "
         "CLONE_THREAD, CLONE_SIGHAND, CLONE_VM when there is nothing to unshare; UTS, IPC, mount, "
         "PID, network, user and time namespaces of a single-threaded process; cgroup namespaces EINVAL")
def sys_unshare(t, flags, *_):
    """ksys_unshare: the caller's own copy of its fd table (CLONE_FILES) and
    root, cwd and umask (CLONE_FS); CLONE_SYSVSEM gives up its semaphore
    undo list.  The thread group, handlers and address space can only be
    "unshared" when nobody shares them (as Linux, which does nothing more).
    New UTS, IPC, mount, PID, network, user and time namespaces are
    kernel/nsproxy.py's, made before anything changes (EPERM first); a
    cgroup namespace is EINVAL, as a Linux built without them.  A new
    mount namespace implies CLONE_FS: the task's own root and cwd move
    into the copied tree."""
    flags &= 0xFFFFFFFFFFFFFFFF
    if flags & C.CLONE_NEWUSER:
        flags |= C.CLONE_THREAD | C.CLONE_FS
    if flags & C.CLONE_VM:
        flags |= C.CLONE_SIGHAND
    if flags & C.CLONE_SIGHAND:
        flags |= C.CLONE_THREAD
    if flags & C.CLONE_NEWNS:
        flags |= C.CLONE_FS
    if flags & ~UNSHARE_FLAGS:
        raise KernelError(E.EINVAL)
    proc = t.proc
    alone = sum(1 for x in proc.threads if x.state is not State.DEAD) == 1
    if flags & (C.CLONE_THREAD | C.CLONE_SIGHAND | C.CLONE_VM) and not alone:
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_VM and proc.mm.users > 1:
        raise KernelError(E.EINVAL)     # another process shares the address space
    ns = nsproxy.unshare(t.kernel, proc, flags)
    if flags & C.CLONE_FILES:
        t.files = t.files.unshare(t.kernel.tunables.nr_open)
    if flags & C.CLONE_FS:
        t.fs = t.fs.copy()
    if flags & C.CLONE_SYSVSEM:
        ipc.exit_sem(proc)
    nsproxy.enter(t.kernel, t, ns)
    return 0


CLONE_ARGS_SIZE_VER2 = 88     # struct clone_args up to its cgroup field


@syscall("clone3", status=PARTIAL, note="as clone, with set_tid, CLONE_INTO_CGROUP and CLONE_NEWTIME")
def sys_clone3(t, uargs, size, *_):
    if size < 64:
        raise KernelError(E.EINVAL)
    if size > C.PAGE_SIZE:
        raise KernelError(E.E2BIG)
    (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) = struct.unpack(
        "<8Q", t.mem.read(uargs, 64))
    extra = t.mem.read(uargs + 64, size - 64) if size > 64 else b""
    if any(extra[24:]):
        raise KernelError(E.E2BIG)      # copy_struct_from_user: a newer struct's fields in use
    set_tid_at, set_tid_size, cgroup = struct.unpack("<3Q", extra[:24].ljust(24, b"\0"))
    if set_tid_size > MAX_PID_NS_LEVEL or bool(set_tid_at) != bool(set_tid_size):
        raise KernelError(E.EINVAL)
    if exit_signal > S.NSIG or flags & (C.CLONE_DETACHED | (C.CSIGNAL & ~C.CLONE_NEWTIME)):
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_INTO_CGROUP and (cgroup > INT_MAX or size < CLONE_ARGS_SIZE_VER2):
        raise KernelError(E.EINVAL)
    set_tid = struct.unpack(f"<{set_tid_size}i", t.mem.read(set_tid_at, 4 * set_tid_size)) if set_tid_size else ()
    if (stack == 0) != (stack_size == 0) or not access_ok(stack, stack_size):
        raise KernelError(E.EINVAL)     # clone3_stack_valid
    into = cgroup_of_fd(t, cgroup) if flags & C.CLONE_INTO_CGROUP else None
    top = stack + stack_size if stack else 0
    return do_clone(t, flags & ~C.CLONE_INTO_CGROUP, exit_signal, top, parent_tid, child_tid, tls,
                    pidfd if flags & C.CLONE_PIDFD else 0, set_tid, into)


def _check_nproc(t) -> None:
    """do_execveat_common's first check: a task whose set*uid went over
    RLIMIT_NPROC may not exec while its user still is (EAGAIN)."""
    if t.nproc_exceeded and t.kernel.procs.over_nproc(t, t.proc.creds.uid):
        raise KernelError(E.EAGAIN)
    t.nproc_exceeded = False


def do_execve(t, path: bytes, argv: list[bytes], envp: list[bytes],
              at: tuple[int, bytes, int] | None = None) -> None:
    if not argv:
        # an empty argv gets an empty argv[0], so that a program reading
        # from argv[1] does not walk into envp (Linux 5.18)
        printk.pr_warn_ratelimited(f"process '{t.proc.comm.decode(errors='replace')}' launched "
                                   f"'{path.decode(errors='replace')}' with NULL argv: empty string added")
        argv = [b""]
    bprm = kexec.Binprm()
    return kexec.guarded(bprm, lambda: kexec.resolve(
        t, bprm, path, argv, lambda img: _exec_image(t, bprm, img, path, envp), at))


def _exec_image(t, bprm, img, path: bytes, envp: list[bytes]) -> None:
    """execve from its point of no return: the old image goes, the one
    resolve found comes; the exec's own hold on the files ends."""
    try:
        _replace_image(t, bprm, img, path, envp)
    finally:
        bprm.release()


def _replace_image(t, bprm, img, path: bytes, envp: list[bytes]) -> None:
    k = t.kernel
    old_tid = t.tid         # a thread's exec takes its leader's number
    threads.de_thread(k, t)
    futex.task_exit(k, t)
    t.clear_child_tid = 0
    if kexec.setid_exec(t, img):
        t.proc.personality &= ~C.PER_CLEAR_ON_SETID
    aux = hostas.exec_host(k, t)
    # the old image is gone: failures from here on kill the process
    nsproxy.exec_namespaces(t.proc)
    try:
        kexec.load(k, t, img, bprm, envp, aux, path)
    except KernelError as e:
        printk.pr_err(f"exec of {path.decode(errors='replace')} failed after the point of no return: {e}")
        k.procs.kill_process(t.proc, S.SIGSEGV)
        raise NoReturn() from e
    proc = t.proc
    ipc.detach_all(proc)      # the segments went with the old address space
    delete_posix_timers(proc)
    t.files = t.files.unshare(k.tunables.nr_open)
    t.files.close_on_exec()
    acts = proc.sighand.actions
    for sig, a in enumerate(acts):     # flush_signal_handlers: an ignored one stays ignored,
        if a != SIG_DEFAULT:           # all lose their flags, mask and restorer
            acts[sig] = SigAction(C.SIG_IGN) if a.handler == C.SIG_IGN else SIG_DEFAULT
    t.altstack = (0, C.SS_DISABLE, 0)
    k.procs.release_vfork(proc)
    if t.ptrace is not None:
        ptracer.exec_done(k, t, old_tid)
    return None


MAX_ARG_STRLEN = 32 * C.PAGE_SIZE       # one string of argv or envp, its NUL included
ARG_MAX = 32 * C.PAGE_SIZE              # the least room execve gives them, whatever RLIMIT_STACK
_STK_LIM = 8 << 20


def _pointers(t, addr: int, most: int) -> list[int]:
    """count(): the pointers of a NULL-terminated array, a page's worth per
    read; EFAULT at a bad one, E2BIG past most."""
    out: list[int] = []
    while addr:
        raw = t.mem.read_prefix(addr, C.PAGE_SIZE)
        k = len(raw) // 8
        if not k:
            raise KernelError(E.EFAULT)
        for p in struct.unpack_from(f"<{k}Q", raw):
            if not p:
                return out
            out.append(p)
        if len(out) > most:
            raise KernelError(E.E2BIG)
        addr += 8 * k
    return out


_STRINGS_GAP = 1 << 16     # strings this close are read with their neighbours


def _strings_near(t, ptrs: list[int], most: int) -> dict[int, bytes]:
    """The strings at ptrs that lie together (a caller's argv and envp are
    one block on its stack, or one buffer), each run of them read in one
    copy up to the end of the page after the last one's: addr -> string, for those
    whose NUL the copy held within MAX_ARG_STRLEN bytes (the rest, and
    those past an unreadable byte, are read alone, string by string, as
    copy_strings reads them).  most bounds a run's span (execve's own
    limit on the strings' bytes, which also ends the reading: execve's
    E2BIG comes when the strings pass it)."""
    found: dict[int, bytes] = {}
    order = sorted(set(ptrs))
    i, n = 0, len(order)
    total = 0
    while i < n and total <= most:
        start = i
        first = last = order[i]
        i += 1
        while i < n and order[i] - last <= _STRINGS_GAP and order[i] - first < most:
            last = order[i]
            i += 1
        blob = t.mem.read_upto(first, C.page_up(last + 1) + C.PAGE_SIZE - first)
        for p in order[start:i]:
            off = p - first
            end = blob.find(b"\0", off, off + MAX_ARG_STRLEN)
            if end >= 0:
                found[p] = blob[off:end]
                total += end - off + 1
    return found


def read_exec_strings(t, argv: int, envp: int, filename: bytes) -> tuple[list[bytes], list[bytes]]:
    """argv and envp as execve copies them (bprm_stack_limits, copy_strings):
    a quarter of RLIMIT_STACK (at least ARG_MAX, at most 3/4 of 8 MiB)
    holds a pointer for each string (argv's at least one), the file name
    and every string with its NUL, none longer than MAX_ARG_STRLEN; E2BIG
    past either limit."""
    stack = t.proc.rlimit(C.RLIMIT_STACK)[0]
    limit = max(min(_STK_LIM // 4 * 3, stack // 4), ARG_MAX)
    aptr, eptr = _pointers(t, argv, limit // 8), _pointers(t, envp, limit // 8)
    room = limit - 8 * (max(len(aptr), 1) + len(eptr)) - (len(filename) + 1)
    if room < 0:
        raise KernelError(E.E2BIG)
    out: tuple[list[bytes], list[bytes]] = ([], [])
    near = _strings_near(t, aptr + eptr, limit)
    for ptrs, strings in ((eptr, out[1]), (aptr, out[0])):
        for p in ptrs:
            s = near.get(p)
            if s is None:
                try:
                    s = near[p] = read_cstr(t, p, MAX_ARG_STRLEN)
                except KernelError as e:        # no NUL in MAX_ARG_STRLEN bytes: too long
                    raise KernelError(E.E2BIG if e.errno == E.ENAMETOOLONG else e.errno) from None
            room -= len(s) + 1
            if room < 0:
                raise KernelError(E.E2BIG)
            strings.append(s)
    return out


@syscall("execve")
def sys_execve(t, path, argv, envp, *_):
    p = read_path(t, path)
    _check_nproc(t)
    return do_execve(t, p, *read_exec_strings(t, argv, envp, p))


@syscall("execveat")
def sys_execveat(t, dirfd, path, argv, envp, flags, *_):
    """execve of path relative to dirfd (AT_EMPTY_PATH: dirfd's own file,
    AT_SYMLINK_NOFOLLOW: not through a symlink); the program is known by
    its path from the root."""
    flags, dirfd = s32(flags), s32(dirfd)
    p = read_path(t, path)
    _check_nproc(t)
    if flags & ~(C.AT_SYMLINK_NOFOLLOW | C.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    args, env = read_exec_strings(t, argv, envp, p)
    shown = p
    if not p.startswith(b"/") and dirfd != C.AT_FDCWD:
        f = t.files.get_raw(dirfd)
        if f.dentry is None:
            raise KernelError(E.EBADF)
        base = f.dentry.path(t.fs.root)
        shown = base if not p else base.rstrip(b"/") + b"/" + p
    return do_execve(t, shown, args, env, (dirfd, p, flags))


@syscall("exit")
def sys_exit(t, code, *_):
    def do_exit() -> None:
        if threads.exit_thread(t.kernel, t, code):
            raise NoReturn()
        threads.clear_tid(t.kernel, t)
        t.kernel.procs.exit_process(t.proc, status_exited(code))
        raise NoReturn()
    return ptracer.syscall_event(t.kernel, t, P.EVENT_EXIT, status_exited(code), do_exit)


@syscall("exit_group")
def sys_exit_group(t, code, *_):
    def do_group_exit() -> None:
        t.kernel.procs.exit_process(t.proc, status_exited(code))
        raise NoReturn()
    return ptracer.syscall_event(t.kernel, t, P.EVENT_EXIT, status_exited(code), do_group_exit)


def _wait_target(t, pid: int) -> int | None:
    """wait's pid argument (a pid or a -pgid as the caller's pid namespace
    numbers them, 0 or -1) in the kernel's numbers; None if that namespace
    has no such number."""
    if pid in (0, -1):
        return pid
    nr = t.kernel.procs.global_nr(t.proc, abs(pid))
    return (nr if pid > 0 else -nr) if nr else None


def _wait_match(proc, pid: int | None):
    """The children and tracees (the ptraced list) wait's pid selects: a
    process, or one traced thread by its tid (then the Task itself)."""
    if pid is None:
        return []
    kids = proc.children + [tr.proc for tr in proc.ptraced if tr.proc not in proc.children]
    if pid > 0:
        return [c for c in kids if c.pid == pid] or \
            [tr for tr in proc.ptraced if tr.tid == pid and tr.tid != tr.proc.pid]
    if pid == 0:
        return [c for c in kids if c.pgid == proc.pgid]
    if pid == -1:
        return kids
    return [c for c in kids if c.pgid == -pid]


def _reportable(pt) -> bool:
    """A tracee's stop, or its end (whose status may be 0), not yet reported."""
    return bool(pt.report) or pt.exited


def _find_waitable(t, kids, options: int, by_pid: bool = False):
    """(child, status, reap, tracee) of the first reportable child or
    ptrace-stopped tracee (reported without WUNTRACED), or None.  by_pid:
    the wait named a process by its pid, which is its leader's tid alone
    (Linux's eligible_pid: another thread's stop is not reported then)."""
    for c in kids:
        if isinstance(c, Task):     # one traced thread, asked for by its tid
            return (c.proc, c.ptrace.report, False, c) if _reportable(c.ptrace) else None
        # the tracees of c, those that ended included
        tracee = next((tr for tr in t.proc.ptraced if tr.proc is c and _reportable(tr.ptrace)
                       and not (by_pid and tr.tid != c.pid)), None)
        if tracee is not None:
            return c, tracee.ptrace.report, False, tracee
        tracer = ptracer.traced_zombie(c) if c.zombie else None
        if tracer is t.proc and c.parent is not t.proc and options & C.WEXITED:
            return c, c.wait_status, True, c.leader      # its tracer reaps it first
        if c.parent is not t.proc or tracer not in (None, t.proc):
            continue        # a tracee only, or a zombie its tracer has yet to reap
        if c.zombie and options & C.WEXITED:
            return c, c.wait_status, True, None
        if options & C.WUNTRACED and c.stopped and c.stop_report & 0xff == 0x7f:
            return c, c.stop_report, False, None
        if options & C.WCONTINUED and c.stop_report == 0xffff:
            return c, 0xffff, False, None
    return None


def do_wait(t, kids_of, options: int, report, by_pid: bool = False) -> int:
    proc = t.proc
    kids = kids_of(proc)
    if not kids:
        raise KernelError(E.ECHILD)
    found = _find_waitable(t, kids, options, by_pid)
    if found is None:
        if options & C.WNOHANG:
            return report(None, 0, 0)
        raise Block(proc.child_wq)
    c, status, reap, tracee = found
    nr = t.kernel.procs.vnr(proc, tracee.tid if tracee else c.pid)   # before the reap frees it
    if not options & C.WNOWAIT:
        if tracee is not None and reap:
            ptracer.detach(t.kernel, tracee, 0)     # now its parent's to reap
        elif tracee is not None and tracee.ptrace.exited:
            ptracer.reap_thread(t.kernel, tracee)
        elif tracee is not None:
            tracee.ptrace.report = 0
        elif reap:
            rusage.waited(proc, c)
            ioac.waited(proc, c)
            t.kernel.procs.reap(c)
        else:
            c.stop_report = 0
    return report(c, status, nr, tracee is not None and not reap)


@syscall("wait4")
def sys_wait4(t, pid, status, options, ru, *_):
    if options & ~(C.WNOHANG | C.WUNTRACED | C.WCONTINUED | C.WALL | C.WCLONE | C.WNOTHREAD):
        raise KernelError(E.EINVAL)
    pid = s32(pid)
    if pid == -(1 << 31):
        raise KernelError(E.ESRCH)      # no process group -INT_MIN (kernel_wait4)

    def report(c, st, nr, _trapped=False):
        if c is None:
            return 0
        if status:
            t.mem.write(status, struct.pack("<i", st if st != 0xffff else 0xffff))
        if ru:
            t.mem.write(ru, _child_usage(c).pack(_child_blocks(c), rusage.with_children(c)))
        return nr
    pid = _wait_target(t, pid)
    return do_wait(t, lambda p: _wait_match(p, pid), options | C.WEXITED, report, pid is not None and pid > 0)


def _child_usage(c) -> rusage.Usage:
    """What wait4 and waitid report: the child's and its children's (RUSAGE_BOTH)."""
    return rusage.own(c) + c.cusage


def _child_blocks(c) -> tuple[int, int]:
    """wait4's ru_inblock and ru_oublock: the child's and its children's."""
    ac = ioac.whole(c)
    return ac.inblock, ac.oublock


@syscall("waitid")
def sys_waitid(t, idtype, ident, infop, options, ru, *_):
    if options & ~(C.WNOHANG | C.WSTOPPED | C.WCONTINUED | C.WEXITED | C.WNOWAIT | C.WALL
                   | C.WCLONE | C.WNOTHREAD) or not options & (C.WEXITED | C.WSTOPPED | C.WCONTINUED):
        raise KernelError(E.EINVAL)
    ident = s32(ident)
    would_block = False
    only = None         # P_PIDFD: the one process the pidfd names, whatever its number now names
    if idtype == C.P_ALL:
        pid = -1
    elif idtype == C.P_PID:
        pid = _wait_target(t, ident) if ident > 0 else ident
    elif idtype == C.P_PGID:
        pid = _wait_target(t, -ident) if ident else 0
    elif idtype == C.P_PIDFD:
        if ident < 0:
            raise KernelError(E.EINVAL)
        only = pidfd.process_of(t, ident)
        pid = only.pid
        # a PIDFD_NONBLOCK pidfd: nothing to report yet is EAGAIN (kernel_waitid)
        would_block = t.files.get(ident).nonblock and not options & C.WNOHANG
        options |= C.WNOHANG if would_block else 0
    else:
        raise KernelError(E.EINVAL)

    def report(c, st, nr, trapped=False):
        if c is None:
            if infop:
                t.mem.write(infop, bytes(128))
            if would_block:
                raise KernelError(E.EAGAIN)
            return 0
        if infop:
            if st == 0xffff:
                code, val = C.CLD_CONTINUED, S.SIGCONT
            elif trapped:       # a ptrace-stop: its whole exit code (event and all)
                code, val = C.CLD_TRAPPED, st >> 8
            elif st & 0xff == 0x7f:
                code, val = C.CLD_STOPPED, (st >> 8) & 0xff
            elif st & 0x7f:
                code, val = (C.CLD_DUMPED if st & 0x80 else C.CLD_KILLED), st & 0x7f
            else:
                code, val = C.CLD_EXITED, (st >> 8) & 0xff
            info = struct.pack("<iii4xiIi", S.SIGCHLD, 0, code, nr, c.creds.uid, val)
            t.mem.write(infop, info.ljust(128, b"\0"))
        if ru:
            t.mem.write(ru, _child_usage(c).pack(_child_blocks(c), rusage.with_children(c)))
        return 0
    if only is not None:
        return do_wait(t, lambda p: [c for c in _wait_match(p, pid) if c is only], options, report, True)
    return do_wait(t, lambda p: _wait_match(p, pid), options, report, pid is not None and pid > 0)


@syscall("getpid")
def sys_getpid(t, *_):
    return t.kernel.procs.vnr(t.proc, t.proc.pid)


@syscall("gettid")
def sys_gettid(t, *_):
    return t.kernel.procs.vnr(t.proc, t.tid)


@syscall("getppid")
def sys_getppid(t, *_):
    p = t.proc.parent
    return t.kernel.procs.vnr(t.proc, p.pid) if p is not None else 0     # 0 too when outside its namespace


@syscall("set_tid_address")
def sys_set_tid_address(t, addr, *_):
    t.clear_child_tid = addr
    return t.kernel.procs.vnr(t.proc, t.tid)


@syscall("set_robust_list")
def sys_set_robust_list(t, head, length, *_):
    if length != C.ROBUST_LIST_HEAD_SIZE:
        raise KernelError(E.EINVAL)
    t.robust_list = head
    return 0


@syscall("get_robust_list")
def sys_get_robust_list(t, tid, head_ptr, len_ptr, *_):
    target = t if s32(tid) == 0 else t.kernel.procs.find_task(t.proc, s32(tid))
    if target is None:
        raise KernelError(E.ESRCH)
    if not cred.ptrace_may_access(t, target.proc, fscreds=False, target_task=target):
        raise KernelError(E.EPERM)
    t.mem.write(len_ptr, struct.pack("<Q", C.ROBUST_LIST_HEAD_SIZE))     # put_user: NULL is EFAULT
    t.mem.write(head_ptr, struct.pack("<Q", target.robust_list))
    return 0


ARCH_GET_CPUID, ARCH_SET_CPUID = 0x1011, 0x1012


@syscall("arch_prctl", status=PARTIAL, note="FS/GS bases; CPUID faulting (the host's, per thread)")
def sys_arch_prctl(t, code, addr, *_):
    regs = t.regs
    code = s32(code)
    if code in (ARCH_GET_CPUID, ARCH_SET_CPUID):
        # CPUID faulting is the host CPU's per-thread switch, as rdtsc's
        # (PR_SET_TSC): the thread's host thread flips and reports it (fork
        # and clone keep it, exec clears it, as Linux's), ENODEV on a CPU
        # without it; a CPUID then is the host's SIGSEGV, the guest's
        return hostas.HostAs(t).checked("arch_prctl", code, addr if code == ARCH_SET_CPUID else 0)
    if code in (C.ARCH_SET_FS, C.ARCH_SET_GS) and addr >= TASK_SIZE_MAX:
        raise KernelError(E.EPERM)      # a kernel-half or non-canonical base, as Linux
    if code == C.ARCH_SET_FS:
        regs.fs_base = addr
    elif code == C.ARCH_SET_GS:
        regs.gs_base = addr
    elif code == C.ARCH_GET_FS:
        put_u64(t, addr, regs.fs_base)
        return 0
    elif code == C.ARCH_GET_GS:
        put_u64(t, addr, regs.gs_base)
        return 0
    else:
        raise KernelError(E.EINVAL)
    t.regs_dirty = True
    return 0


PR_TSC_ENABLE, PR_TSC_SIGSEGV = 1, 2


@syscall("prctl", status=PARTIAL, note="names, pdeath signal, child subreaper, dumpable, no_new_privs, "
                                         "capability bounding and ambient sets, keep-caps, securebits, "
                                         "timer slack (kept, not applied), TSC (the host's, per thread), "
                                         "PR_SET_MM's code, data, stack, argv and environment fields")
def sys_prctl(t, option, a2, a3, a4, a5, *_):
    proc = t.proc
    option = s32(option)
    if option in cred.PRCTL_OPTIONS:
        return cred.task_prctl(proc, option, a2, a3, a4, a5)
    if option == C.PR_SET_NAME:
        # strncpy_from_user of 15 bytes: the name need not end in the page
        name = t.mem.read_upto(a2, 15) if a2 else b""
        if b"\0" not in name and len(name) < 15:
            raise KernelError(E.EFAULT)
        proc.comm = name.split(b"\0", 1)[0]
        return 0
    if option == C.PR_GET_NAME:
        t.mem.write(a2, proc.comm[:15].ljust(16, b"\0"))
        return 0
    if option == C.PR_SET_PDEATHSIG:
        if a2 > S.NSIG:
            raise KernelError(E.EINVAL)
        proc.pdeath_signal = a2
        return 0
    if option == C.PR_GET_PDEATHSIG:
        t.mem.write(a2, struct.pack("<i", proc.pdeath_signal))
        return 0
    if option == C.PR_SET_CHILD_SUBREAPER:
        proc.child_subreaper = bool(a2)
        return 0
    if option == 37:    # PR_GET_CHILD_SUBREAPER
        t.mem.write(a2, struct.pack("<i", int(proc.child_subreaper)))
        return 0
    if option == C.PR_GET_DUMPABLE:
        return proc.dumpable
    if option == C.PR_SET_DUMPABLE:
        if a2 not in (0, 1):
            raise KernelError(E.EINVAL)
        proc.dumpable = a2
        return 0
    if option == C.PR_SET_NO_NEW_PRIVS:
        if a2 != 1 or a3 | a4 | a5:
            raise KernelError(E.EINVAL)
        proc.no_new_privs = True
        return 0
    if option == C.PR_GET_NO_NEW_PRIVS:
        if a2 | a3 | a4 | a5:
            raise KernelError(E.EINVAL)
        return int(proc.no_new_privs)
    if option == prctl_mm.PR_SET_MM:
        return prctl_mm.set_mm(t, a2, a3, a4, a5)
    if option in (C.PR_GET_SECCOMP, C.PR_SET_SECCOMP):
        return sys_seccomp.prctl(t, option, a2, a3)
    if option == C.PR_SET_TIMERSLACK:
        s = t.sched
        s.timer_slack_ns = a2 or s.default_slack_ns
        return 0
    if option == C.PR_GET_TIMERSLACK:
        return t.sched.timer_slack_ns
    if option in (C.PR_SET_TSC, C.PR_GET_TSC):
        # rdtsc faulting is the host CPU's own per-thread switch: the
        # thread's host thread flips and reports it (and fork, clone and
        # exec keep it there, as they keep Linux's)
        if option == C.PR_SET_TSC and a2 not in (PR_TSC_ENABLE, PR_TSC_SIGSEGV):
            raise KernelError(E.EINVAL)
        return hostas.HostAs(t).checked("prctl", option, a2, 0, 0, 0)
    printk.pr_notice(f"prctl option {option} not supported")
    raise KernelError(E.EINVAL)


# -- process groups and sessions ----------------------------------------------

def _proc(t, pid: int):
    """The process pid names, a zombie too: its pid, group and session
    stay until it is reaped (release_task detaches them)."""
    if pid == 0:
        return t.proc
    p = t.kernel.procs.find_proc(t.proc, pid)
    if p is None or p.exited and not p.zombie:
        raise KernelError(E.ESRCH)
    return p


@syscall("getpgid")
def sys_getpgid(t, pid, *_):
    return t.kernel.procs.vnr(t.proc, _proc(t, s32(pid)).pgid)


@syscall("getpgrp")
def sys_getpgrp(t, *_):
    return t.kernel.procs.vnr(t.proc, t.proc.pgid)


@syscall("getsid")
def sys_getsid(t, pid, *_):
    return t.kernel.procs.vnr(t.proc, _proc(t, s32(pid)).sid)


@syscall("setpgid")
def sys_setpgid(t, pid, pgid, *_):
    """Linux's rules: the caller or a child of it (not a thread), a child
    only in the caller's session and before its exec (EACCES), never a
    session leader, into its own group or another of the session."""
    pid, pgid = s32(pid), s32(pgid)
    if pgid < 0:
        raise KernelError(E.EINVAL)
    if pid == 0:
        target = t.proc
    else:
        task = t.kernel.procs.find_task(t.proc, pid) if pid > 0 else None
        if task is None:
            raise KernelError(E.ESRCH)
        if task.tid != task.proc.pid:
            raise KernelError(E.EINVAL)     # a thread that does not lead its process
        target = task.proc
    if target.parent is t.proc:
        if target.sid != t.proc.sid:
            raise KernelError(E.EPERM)
        if target.execed:
            raise KernelError(E.EACCES)
    elif target is not t.proc:
        raise KernelError(E.ESRCH)
    if target.sid == target.pid:
        raise KernelError(E.EPERM)
    pgid = t.kernel.procs.global_nr(t.proc, pgid) if pgid else target.pid
    if pgid != target.pid and not any(
            p.pgid == pgid and p.sid == t.proc.sid and not p.exited
            for p in t.kernel.procs.by_pid.values()):
        raise KernelError(E.EPERM)
    target.pgid = pgid
    return 0


@syscall("setsid")
def sys_setsid(t, *_):
    proc = t.proc
    if any(p.pgid == proc.pid and not p.exited for p in t.kernel.procs.by_pid.values()):
        raise KernelError(E.EPERM)
    proc.sid = proc.pgid = proc.pid
    proc.ctty = None
    return t.kernel.procs.vnr(proc, proc.pid)


@syscall("vhangup")
def sys_vhangup(t, *_):
    """Hang up the caller's controlling terminal (tty_vhangup_self), for
    CAP_SYS_TTY_CONFIG only; without a terminal there is nothing to do."""
    cred.need(t.proc.creds, CAP_SYS_TTY_CONFIG)
    if t.proc.ctty is not None:
        t.proc.ctty.hangup()
    return 0


# -- kill ----------------------------------------------------------------------

def _may_signal(t, target, sig: int) -> bool:
    """check_kill_permission: a real or effective uid matching the target's
    real or saved one, CAP_KILL, or SIGCONT within the session."""
    c, tc = t.proc.creds, target.creds
    return target is t.proc or c.euid in (tc.uid, tc.suid) or c.uid in (tc.uid, tc.suid) \
        or cred.capable(c, CAP_KILL) or (sig == S.SIGCONT and target.sid == t.proc.sid)


def deliver_checked(t, proc, sig: int, info: tuple[int, tuple] | None = None, task=None) -> None:
    """group_send_sig_info's rules for one process found (pidfd_send_signal,
    rt_sigqueueinfo), or for one of its tasks (rt_tgsigqueueinfo): the
    signal number, then the permission.  info is the (si_code, fields)
    the sender built, kill's own if None."""
    if not 0 <= sig <= S.NSIG:
        raise KernelError(E.EINVAL)
    if not _may_signal(t, proc, sig):
        raise KernelError(E.EPERM)
    if not sig:
        return
    code, fields = info or (C.SI_USER, _sender(t, proc))
    outside = _from_ancestor_ns(t, proc)
    if outside and code in (C.SI_USER, C.SI_TKILL, C.SI_QUEUE) and fields:
        fields = _hide_sender(fields)
    queued = queue_info(t.kernel, proc, sig, code, fields)
    code, fields = queued or (code, fields)
    if task is None:
        t.kernel.signals.send_proc(proc, sig, code, fields, force=outside, entry=queued is not None)
    else:
        t.kernel.signals.send_task(task, sig, code, fields, force=outside, entry=queued is not None)


def _sender(t, target) -> tuple[int, int]:
    """si_pid and si_uid of a signal t sends (kill, tkill) to process
    target: t's pid as target's pid namespace sees it (0 from outside)."""
    return t.kernel.procs.vnr(target, t.proc.pid), t.proc.creds.uid


def _hide_sender(fields: tuple) -> tuple:
    """si_pid 0: the sender is one the target's pid namespace cannot see
    (fields as kernel/signal.py's pack_siginfo takes them; a siginfo the
    sender built has si_pid first in its union)."""
    if fields[0] == "raw":
        return ("raw", bytes(4) + fields[1][4:], *fields[2:])
    return (0, *fields[1:])


def _from_ancestor_ns(t, target) -> bool:
    """Whether t is outside target's pid namespace (above it): its
    SIGKILL and SIGSTOP reach even that namespace's init (send_signal_locked's force)."""
    return not t.kernel.procs.vnr(target, t.proc.pid)


@syscall("kill")
def sys_kill(t, pid, sig, *_):
    pid, sig = s32(pid), s32(sig)
    procs_ = t.kernel.procs
    procs = [p for p in procs_.by_pid.values() if not p.zombie]
    if pid > 0:         # a tid names its process (kill_pid_info)
        p = procs_.find_proc(t.proc, pid)
        task = procs_.find_task(t.proc, pid) if p is None else None
        targets = [p] if p is not None else [task.proc] if task is not None else []
    elif pid == 0:
        targets = [p for p in procs if p.pgid == t.proc.pgid]
    elif pid == -1:     # every process the caller's namespace numbers above 1
        targets = [p for p in procs if procs_.vnr(t.proc, p.pid) > 1 and p is not t.proc]
    else:
        pgid = procs_.global_nr(t.proc, -pid)
        targets = [p for p in procs if pgid and p.pgid == pgid]
    if not targets:
        raise KernelError(E.ESRCH)
    if not 0 <= sig <= S.NSIG:
        raise KernelError(E.EINVAL)     # checked per target found (check_kill_permission)
    allowed = [p for p in targets if _may_signal(t, p, sig)]
    if not allowed:
        raise KernelError(E.EPERM)
    if sig:
        for p in allowed:
            queued = queue_info(t.kernel, p, sig, C.SI_USER, _sender(t, p))
            t.kernel.signals.send_proc(p, sig, *(queued or (C.SI_USER, ())), force=_from_ancestor_ns(t, p),
                                       entry=queued is not None)
    return 0


def send_specific(t, tid: int, sig: int, info: tuple[int, tuple] | None, tgid: int | None = None) -> int:
    """do_send_specific (tkill, tgkill, rt_tgsigqueueinfo): the task (of
    thread group tgid, if given) first, then the signal number and the
    permission.  info is the (si_code, fields) the sender built, tkill's if None."""
    if tid <= 0 or (tgid is not None and tgid <= 0):
        raise KernelError(E.EINVAL)
    target = t.kernel.procs.find_task(t.proc, tid)
    if target is None or (tgid is not None and t.kernel.procs.vnr(t.proc, target.proc.pid) != tgid):
        raise KernelError(E.ESRCH)
    deliver_checked(t, target.proc, sig, info or (C.SI_TKILL, _sender(t, target.proc)), target)
    return 0


@syscall("tkill")
def sys_tkill(t, tid, sig, *_):
    return send_specific(t, s32(tid), s32(sig), None)


@syscall("tgkill")
def sys_tgkill(t, tgid, tid, sig, *_):
    return send_specific(t, s32(tid), s32(sig), None, s32(tgid))


@syscall("reboot")
def sys_reboot(t, magic1, magic2, cmd, arg, *_):
    cred.need(t.proc.creds, CAP_SYS_BOOT)
    if magic1 & 0xFFFFFFFF != C.LINUX_REBOOT_MAGIC1 or (magic2 & 0xFFFFFFFF) not in C.LINUX_REBOOT_MAGIC2:
        raise KernelError(E.EINVAL)
    cmd &= 0xFFFFFFFF
    if cmd in (C.LINUX_REBOOT_CMD_CAD_ON, C.LINUX_REBOOT_CMD_CAD_OFF):
        t.kernel.cad_enabled = cmd == C.LINUX_REBOOT_CMD_CAD_ON    # what Ctrl-Alt-Del does
        return 0
    if cmd in (C.LINUX_REBOOT_CMD_POWER_OFF, C.LINUX_REBOOT_CMD_HALT):
        t.kernel.sync_all()
        printk.pr_emerg("reboot: Power down" if cmd == C.LINUX_REBOOT_CMD_POWER_OFF
                        else "reboot: System halted")
        raise Halt(0)
    if cmd in (C.LINUX_REBOOT_CMD_RESTART, C.LINUX_REBOOT_CMD_RESTART2):
        t.kernel.sync_all()
        printk.pr_emerg("reboot: Restarting system")
        raise Halt(0, reboot=True)
    raise KernelError(E.EINVAL)


