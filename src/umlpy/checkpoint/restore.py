"""Restore: the processes of a checkpoint image rebuilt in a freshly booted
kernel (booted with the image's command line, `restore=DIR`), instead of
running init.

The image is checked whole first (checkpoint/image.py); then every host
process is made from a fresh stub (pid 1 spawned, the others cloned from
it while it is still bare; on a migration's target, those it built while
the pre-copy ran adopted: checkpoint/prebuild.py), its address space
rebuilt by injected host syscalls (the host's vDSO block moved where it
was, every other mapping made anonymous and filled from the image, where
an adopted process does not hold the page already), its registers and xstate set,
its kernel state (ids, credentials, signal dispositions, fd table, cwd)
rebuilt.  No guest code runs until every process is there: a failure on
the way is a boot panic, which kills the half-made host processes.
"""
from __future__ import annotations

from collections import deque

from arch_um import ptrace
from arch_um.memory import GuestMemory, TASK_SIZE
from arch_um.ptrace import REG_NAMES
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import structs
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.checkpoint import (cgroups, filelocks, image, inetsock, inotify, ipc, keyring, machine, netlinksock,
                               netstate, packetsock, pty, restarts, sched, seccompstate, sharedanon, timensstate,
                               timers, tmpfstree, ttylines, unixsock, unlinked)
from umlpy.checkpoint.dump import RESTORED_MOUNTS, SPECIAL, TREE_FS, host_vmas
from umlpy.drivers.ubd import UBD_MAJOR
from umlpy.fs import devtmpfs, registry
from umlpy.fs.ramfs import Ramfs
from umlpy.fs.tmpfs import Tmpfs
from umlpy.fs.registry import DISK_TYPES
from umlpy.kernel import hostlimits, mlock, printk, signal, threads
from umlpy.kernel.errors import KernelError
from umlpy.kernel.hostas import HostAs
from umlpy.kernel.mm import VM_LOCKED, VM_LOCKONFAULT, FileMap, Intervals, Mm
from umlpy.kernel.task import Creds, FsContext, Process, SchedState, SigAction, SigHand, State, Task
from umlpy.kernel.timers import TIMERFD_CLOCKS
from umlpy.net.inet.tcp import TcpSocket
from umlpy.net.unix import UnixSocket
from umlpy.syscalls import sys_epoll, sys_file
from umlpy.syscalls.sys_epoll import EpollFile
from umlpy.syscalls.sys_eventfd import MAX as EVENTFD_MAX
from umlpy.syscalls.sys_eventfd import EventFdFile
from umlpy.syscalls.sys_signal import SignalFdFile
from umlpy.syscalls.sys_timer import TimerFdFile
from umlpy.vfs import devices, fown, namei
from umlpy.vfs.dentry import Dentry, Mount
from umlpy.vfs.fdtable import FdTable
from umlpy.vfs.file import File
from umlpy.vfs.perm import permission
from umlpy.vfs.pidfd import PidFile
from umlpy.vfs.pipe import Pipe, PipeFile

U64 = 1 << 64
PAGE = C.PAGE_SIZE
TEMP = 0x100100000000           # where the vDSO block waits while it moves: where programs rarely map
MAX_PID = 1 << 22
MAX_SYSCALL = 1024
SIGINFO_UNION = 128 - 16        # siginfo's bytes after signo, errno, code
SIGINFO_INTS = ((-(1 << 31), 1 << 31), (0, 1 << 32), (-(1 << 31), 1 << 31))   # pid, uid, status


def restore(k, path: str) -> None:
    """Rebuild the machine saved at path (a checkpoint image)."""
    try:
        r = image.open_image(path, k.release)
        _build(k, r)
    except image.ImageError as e:
        raise KernelError(E.EINVAL, f"restore: {e}") from None
    except ptrace.HostError as e:
        raise KernelError(e.errno, f"restore: {e.strerror}") from None


def _build(k, r: image.Reader) -> None:
    procs = sorted(r.list("processes"), key=lambda p: p.int("pid", 1, MAX_PID))
    if not procs or procs[0].int("pid", 1, MAX_PID) != 1 or procs[0].has("zombie"):
        raise image.ImageError("manifest: no process 1")
    pids = [p.int("pid", 1, MAX_PID) for p in procs]
    if len(set(pids)) != len(pids):
        raise image.ImageError("manifest: a pid twice")
    machine.restore(k, r)
    pre, k.prebuilt = k.prebuilt, None
    adopt, spaces = None, {}
    if pre is not None:         # a migration's target, which made host processes as the pages came
        if k.params.seccomp:
            adopt, spaces = pre.take({pid for pid, p in zip(pids, procs) if not p.has("zombie")})
        else:                   # (made with the seccomp filter, which this boot does without)
            pre.discard()
    init, aux = k.procs.spawn_init(FdTable(), FsContext(k.root, k.root), adopt)
    if adopt is None and aux.get(C.AT_SYSINFO_EHDR):    # a fresh stub: the host's vDSO as it is
        k.vdso.learn(init.mem, aux[C.AT_SYSINFO_EHDR])
    k.set_xstate_sizes(ptrace.get_xstate(init.hpid))
    _dev(k, r)
    _mounts(k, init, r)
    netstate.restore(k, r.sub("net"))
    netlinksock.restore_table(k, r)
    ipcs = ipc.restore(k, r)
    ptys = pty.make_all(k, init, r)
    shanon = sharedanon.make(r)
    keys = keyring.make(k, r)
    groups = cgroups.make(k, r)
    cgroups.restore_attrs(k, r)
    filters = seccompstate.make(r)
    times = timensstate.make(k, r)
    tasks = {1: init}
    for p in procs[1:]:
        pid = p.int("pid", 1, MAX_PID)
        if p.has("zombie"):
            tasks[pid] = _bare_task(k, init, pid, 0, None)
        elif pid in spaces:
            tasks[pid] = _adopt_bare(k, init, pid, spaces[pid].hpid)
        else:
            tasks[pid] = _clone_bare(k, init, pid)
    if pre is not None:
        pre.discard()           # the template, where pid 1 had a process of its own
    last = r.int("last_pid", 0, MAX_PID)
    k.procs.set_last_pid(k.init_ns.pid, max(last, *pids))
    opens = r.list("files")
    made: dict[int, object] = {}
    pipes: dict = {pp.int("id", 0, len(opens) + 1): [pp, None, None] for pp in r.list("pipes")}
    shared = (pipes, ipcs, ptys, unlinked.Restorer(r, opens))     # what _open makes an open description from
    held: dict[int, Task] = {}      # the live tasks restored so far, by tid: whose tables later ones share
    for p in procs:
        t = tasks[p.int("pid", 1, MAX_PID)]
        _identity(k, t.proc, p, tasks)
        timensstate.restore_process(t.proc, p, times)
        keyring.restore_process(t.proc, p, keys)
        cgroups.restore_process(t.proc, p, groups)
        pty.restore_ctty(t.proc, p, ptys)
        if t.proc.zombie:
            _zombie(k, t, p.sub("zombie"), keys)
            continue
        _process(k, t, p, keys, filters, held)
        _memory(k, t, p, shanon, shared[3], spaces[t.pid].filled if t.pid in spaces else None)
        _fds(k, t, p, opens, made, shared, held)
        held[t.tid] = t
        _threads(k, t, p, keys, filters, (opens, made, shared, held))
        timers.restore_itimers(t, p)
        timers.restore_posix_timers(t, p)
        timers.restore_cpu(k, t, p)
        t.proc.charge_sigpending(signal.held_by(t.proc) - t.proc.sig_held)
        if _main_exited(p):
            threads.exit_thread(k, t, 0)
        hostlimits.apply_all(t.proc)        # once its memory is back: the rebuild is not the guest's
    _links(k, init, opens, made, shared)
    tables = {tid: x.files for tid, x in held.items()}
    for i, o in enumerate(opens):
        if o.has("locks"):
            filelocks.restore(made[i], o, tables)
    ipc.finish(k, ipcs)
    pty.check(ptys)
    sharedanon.close(shanon)
    keyring.finish(keys)
    sched.check_bandwidth(x for p in procs for x in tasks[p.int("pid", 1, MAX_PID)].proc.threads)
    console = r.sub("console")
    k.console.session, k.console.pgrp = console.int("session", 0, MAX_PID), console.int("pgrp", 0, MAX_PID)
    ttylines.restore_all(k, r)
    machine.finish(k)
    for p in procs:
        for t in tasks[p.int("pid", 1, MAX_PID)].proc.threads:
            if t.state not in (State.DEAD, State.STOPPED):
                k.sched.resume_new(t)
    printk.pr_info(f"restore: {len(procs)} processes from {r.dir}")


def _mounts(k, init: Task, r: image.Reader) -> None:
    """The mounts past the root and /dev, made again in their order
    (checkpoint/dump.py's _save_mounts), each on the mount it was on."""
    made = list(k.mounts.mounts[:2])        # the boot's: the root, /dev
    for m in r.list("mounts"):
        try:
            made.append(_mount(k, init, m, made))
        except KernelError as e:
            raise image.ImageError(f"manifest: {m.where}: mount says {E.NAMES.get(e.errno, e.errno)}") from None
    _propagation(r, made)


def _dev(k, r: image.Reader) -> None:
    """/dev's tree as saved (checkpoint/dump.py's _save_dev) in place of
    the boot's, the boot's device nodes it lacks added (a disk the
    restoring command line has and the saved machine had not)."""
    if r.doc.get("dev") is None:
        return
    dev = k.mounts.mounts[1]
    if dev.fstype != "devtmpfs":
        raise image.ImageError("manifest: dev: this boot has no devtmpfs on /dev")
    tmpfstree.make(k, r.sub("dev"), into=dev.fs)
    devtmpfs.add_missing_nodes()


def _propagation(r: image.Reader, made: list[Mount]) -> None:
    """Every mount's peer group, master and unbindable flag, set once all
    are made (so the restore's own mounts propagate nowhere): a master is
    another mount, of a peer group, with none for the mount itself."""
    saved = r.list_of_ints("propagation", 3, (0, -1, 0), (1 << 20, len(made), 2))
    if len(saved) != len(made):
        raise image.ImageError("manifest: propagation: not one entry per mount")
    for n, (m, (group, master, unbindable)) in enumerate(zip(made, saved)):
        if master >= 0 and (master == n or not saved[master][0]) or unbindable and group:
            raise image.ImageError(f"manifest: propagation[{n}]: a master no peer group has, "
                                   "or a shared unbindable mount")
        m.group, m.master, m.unbindable = group, made[master] if master >= 0 else None, bool(unbindable)


def _mount(k, init: Task, m: image.Reader, made: list[Mount]) -> Mount:
    """One mount: a bind mount of what the mount `of` shows, or a new
    filesystem (_new_fs), showing the part `root` of it, hung where `path`
    leads, which must be on the mount `on`."""
    fstype = m.str("fstype")
    at = _lookup(k, init, m.path("path"))
    on = m.int("on", 0, len(made))
    if at.mount is not made[on]:
        raise image.ImageError(f"manifest: {m.where}.path: not on mount {on}")
    source, flags, root = m.str("source")[:4096], m.int("flags", 0, 1 << 32), m.path("root")
    if m.has("of"):
        base = made[m.int("of", 0, len(made))]
        if base.fstype != fstype:
            raise image.ImageError(f"manifest: {m.where}.of: a mount of another filesystem type")
        fs = base.fs
    else:
        fs = _new_fs(k, m, fstype)
        if root == b"/":
            if not at.inode.is_dir:
                raise image.ImageError(f"manifest: {m.where}.path: not a directory")
            return k.mounts.mount(fs, at, source, fstype, flags, fs.show_options())
    whole = k.mounts.detached(fs, source, fstype, flags, fs.show_options())       # only to be cloned
    sub = _subtree(whole.root, root)
    if sub is None or sub.inode.is_dir != at.inode.is_dir:
        raise image.ImageError(f"manifest: {m.where}.root: not a {'directory' if at.inode.is_dir else 'file'} "
                               "of the filesystem")
    c = k.mounts.clone(whole, sub, peer=False)
    c.source, c.flags = source, flags
    k.mounts.graft([c], at)
    return c


def _subtree(d, root: bytes):
    """The dentry at the place root below d, a filesystem's root (None when
    there is nothing there): a bind mount's root, found by name whichever
    mount the bind was made from (that one may be gone)."""
    for name in filter(None, root.split(b"/")):
        d = d.child(name) if d.inode.is_dir and name not in (b".", b"..") else None
        if d is None:
            return None
    return d


def _new_fs(k, m: image.Reader, fstype: str):
    """A mount's own filesystem: a tmpfs with its tree, proc, sysfs,
    devpts, cgroup2 or mqueue (views of what the kernel holds, restored
    apart), a hostfs of its host directory (below the restoring boot's
    hostfs=, which confines it as it confines mount(2)), or ext2/ext3/ext4
    on the ubd disk it was on (the restored command line's), mounted as
    mount(2) mounts it; read-only as it was."""
    if fstype in DISK_TYPES:
        major, minor = m.ints("dev", 0, 1 << 20, 2)
        commit = m.int("commit", 0, 1 << 31)
        try:
            dev = devices.block_device(structs.makedev(major, minor))
        except KernelError:
            dev = None
        if dev is None or major != UBD_MAJOR:
            raise image.ImageError(f"manifest: {m.where}.dev: no ubd disk {major}:{minor} "
                                   "(is it on the command line?)")
        opts = [f"commit={commit}"] if commit else []
        if m.has("nodelalloc") and m.bool("nodelalloc"):
            opts.append("nodelalloc")
        return registry.mount_disk(fstype, dev, m.bool("ro"), ",".join(opts), k.sched)
    if fstype not in RESTORED_MOUNTS:
        raise image.ImageError(f"manifest: {m.where}.fstype: {fstype!r} is not restored")
    if fstype == "hostfs":
        fs = registry.make_virtual(fstype, k, m.str("hostfs")[:4096])
        fs.read_only = m.bool("ro")
        return fs
    if fstype not in TREE_FS:
        return registry.make_virtual(fstype, k)
    fs = tmpfstree.make(k, m.sub("tmpfs"), cls=Ramfs if fstype == "ramfs" else Tmpfs)
    fs.read_only = m.bool("ro")
    return fs


def _clone_bare(k, init: Task, pid: int) -> Task:
    """Another process's host half: a clone of the still-bare pid 1."""
    res = ptrace.inject(init.hpid, init.regs, NR["clone"], C.CLONE_PARENT | S.SIGCHLD, 0, 0, 0, 0)
    if res.fault or res.result < 0:
        raise KernelError(E.EAGAIN, "restore: host clone failed")
    ptrace.wait_pid(res.result)
    return _adopt_bare(k, init, pid, res.result)


def _adopt_bare(k, init: Task, pid: int, hpid: int) -> Task:
    """A process on host process hpid, a stopped clone of a bare stub."""
    t = _bare_task(k, init, pid, hpid, GuestMemory(hpid))
    ptrace.getregs(hpid, t.regs)
    k.sched.add_task(t)
    return t


def _bare_task(k, init: Task, pid: int, hpid: int, mem: GuestMemory | None) -> Task:
    """A process of pid 1's namespaces with one task on host process hpid;
    a zombie's (hpid 0, no memory) is dead already, and the scheduler never
    sees it, as it no longer sees a zombie's host process."""
    proc = Process(pid, None, Creds(), SigHand(), None)
    proc.sig_counts = k.procs.sigpending
    proc.ns, proc.pidns, proc.cgroup = init.proc.ns, init.proc.pidns, init.proc.cgroup
    t = Task(pid, proc, hpid, mem, FdTable(), FsContext(k.root, k.root), SchedState())
    t.kernel = k
    proc.host_tgid = hpid
    proc.threads.append(t)
    k.procs.by_pid[pid] = proc
    if mem is None:
        t.state = State.DEAD
        proc.exited = proc.zombie = True
    return t


def _identity(k, proc: Process, p: image.Reader, tasks: dict) -> None:
    """What a process and a zombie both have (checkpoint/dump.py's
    _save_identity).  A parent is a live process of the image (a dying
    parent hands its children to a reaper, so no process has a zombie
    parent), and a zombie has one: nothing else would be left to reap it."""
    ppid = p.int("ppid", 0, MAX_PID)
    if ppid:
        parent = tasks.get(ppid)
        if parent is None:
            raise image.ImageError(f"manifest: process {proc.pid}: no parent {ppid}")
        if parent.proc.zombie:
            raise image.ImageError(f"manifest: process {proc.pid}: its parent {ppid} is a zombie")
        proc.parent = parent.proc
        parent.proc.children.append(proc)
    elif proc.zombie:
        raise image.ImageError(f"manifest: process {proc.pid}: a zombie with no parent")
    proc.pgid, proc.sid = p.int("pgid", 0, MAX_PID), p.int("sid", 0, MAX_PID)
    proc.comm = p.hex("comm", 16)
    proc.exit_signal = p.int("exit_signal", 0, S.NSIG + 1)
    proc.ctty = k.console if p.bool("console_ctty") else None
    ttylines.restore_ctty(k, proc, p)
    proc.start_ns = p.int("start_ns", 0, k.uptime_ns() + 1)     # the machine's clocks are back already
    c = p.sub("creds")
    ids = c.ints("ids", 0, 1 << 32, 8)
    proc.creds = Creds(*ids, groups=tuple(c.ints("groups", 0, 1 << 32)),
                       **dict(zip(("cap_inheritable", "cap_permitted", "cap_effective", "cap_bset", "cap_ambient"),
                                  c.ints("caps", 0, 1 << 64, 5))),
                       securebits=c.int("securebits", 0, 1 << 32))
    acts = p.list_of_ints("sigactions", 4, (0, 0, 0, 0), (U64, U64, U64, U64))
    if len(acts) != S.NSIG + 1:
        raise image.ImageError(f"manifest: process {proc.pid}: {len(acts)} signal actions")
    proc.sighand.actions = [SigAction(*a) for a in acts]
    proc.shared_pending, proc.sigq = p.int("shared_pending", 0, U64), _sigq(p, "shared_sigq")


def _zombie(k, t: Task, z: image.Reader, keys: dict) -> None:
    """A zombie's own part (checkpoint/dump.py's _save_zombie): its wait
    status (an exit code or a signal, and the core-dump bit), the rusage
    sampled at its death and its waited-for children's, which its parent's
    wait adds to its own; its main thread's signals."""
    proc = t.proc
    proc.wait_status = z.int("status", 0, 1 << 16)
    if proc.wait_status & 0x7f == 0x7f or proc.wait_status & 0x7f and proc.wait_status >> 8:
        raise image.ImageError(f"manifest: {z.where}.status: not an exit status")
    proc.usage, proc.cusage = timers.usage(z, "usage"), timers.usage(z, "cusage")
    proc.dead_ioac = timers.io(z, "io")     # all of it: the parent's wait adds it
    _task_common(t, z.sub("task"), keys)
    timers.link_queued(proc)        # (a zombie has no timers: no signal may name one)


def _process(k, t: Task, p: image.Reader, keys: dict, filters: list, held: dict) -> None:
    proc = t.proc
    proc.exe_path = p.str("exe_path")
    proc.cmdline = [bytes.fromhex(a) for a in _strs(p, "cmdline")]
    proc.environ = [bytes.fromhex(a) for a in _strs(p, "environ")]
    proc.personality = p.int("personality", 0, 1 << 32)
    fl = p.sub("flags")
    proc.oom_score_adj = fl.int("oom_score_adj", -1000, 1001)
    proc.oom_score_adj_min = fl.int("oom_score_adj_min", -1000, 1001)
    proc.ioprio = fl.int("ioprio", 0, 1 << 16)
    proc.loginuid = fl.int("loginuid", 0, 1 << 32)
    proc.sessionid = fl.int("sessionid", 0, 1 << 32)
    if proc.sessionid != 0xFFFFFFFF:        # sessions made after the restore get new ids
        k.procs.audit_sessions = max(k.procs.audit_sessions, proc.sessionid)
    proc.dumpable = fl.int("dumpable", 0, 3)
    proc.pdeath_signal = fl.int("pdeath_signal", 0, S.NSIG + 1)
    proc.no_new_privs, proc.child_subreaper, proc.execed = \
        fl.bool("no_new_privs"), fl.bool("child_subreaper"), fl.bool("execed")
    proc.stopped, proc.stop_report = fl.bool("stopped"), fl.int("stop_report", 0, 0x10000)
    if proc.stop_report not in (0, 0xffff) and not (proc.stop_report & 0xff == 0x7f
                                                    and S.default_action(proc.stop_report >> 8) is S.Default.STOP):
        raise image.ImageError(f"manifest: {fl.where}.stop_report: not a stop or continue to report")
    for rl in p.list_of_ints("rlimits", 3, (0, 0, 0), (16, U64, U64)):
        proc.rlimits[rl[0]] = (rl[1], rl[2])
    t.fs = _fs_context(k, t, p, held)
    tasks_saved = p.list("tasks")
    if not tasks_saved or (tasks_saved[0].int("tid", 1, MAX_PID) == proc.pid) == _main_exited(p):
        raise image.ImageError(f"manifest: process {proc.pid}: its first task is not its main thread, "
                               "or its main thread exited and is there")
    if not _main_exited(p):
        _task(t, tasks_saved[0], keys, filters)


def _main_exited(p: image.Reader) -> bool:
    """A process whose main thread exited before its other threads: its
    tasks are those threads, the pid none of theirs (_threads)."""
    return p.has("main_exited") and p.bool("main_exited")


def _held(e: image.Reader, key: str, held: dict) -> Task:
    """The task restored before whose fd table or filesystem context the
    entry e shares (`files_of`, `fs_of`: its tid)."""
    x = held.get(e.int(key, 1, MAX_PID))
    if x is None:
        raise image.ImageError(f"manifest: {e.where}.{key}: no task restored before it has that tid")
    return x


def _fs_context(k, t: Task, e: image.Reader, held: dict) -> FsContext:
    """A task's root, cwd and umask (checkpoint/dump.py's _save_context):
    its own, or shared with a task restored before it."""
    if e.has("fs_of"):
        return _held(e, "fs_of", held).fs
    return FsContext(_lookup(k, t, e.path("root")), _lookup(k, t, e.path("cwd")), e.int("umask", 0, 0o1000))


def _task_common(t: Task, e: image.Reader, keys: dict) -> None:
    """A task's mask, pending and queued signals, scheduling attributes and
    thread keyring (checkpoint/dump.py's _task_common); its tid is the
    caller's to check."""
    t.blocked = e.int("blocked", 0, U64) & ~S.UNBLOCKABLE
    t.pending = e.int("pending", 0, U64)
    t.sigq = _sigq(e, "sigq")
    t.sched = sched.make(e.sub("sched"))
    t.thread_keyring = keyring.take(keys, e, "thread_keyring")


def _task(t: Task, e: image.Reader, keys: dict, filters: list) -> None:
    """A task's own state (checkpoint/dump.py's _save_task), its seccomp
    state one of filters' (checkpoint/seccompstate.py); its xstate goes to
    the host."""
    _task_common(t, e, keys)
    t.cpu_base = timers.usage(e, "cpu")
    t.ioac = timers.io(e, "io")
    t.seccomp = seccompstate.take(filters, e)
    t.altstack = tuple(e.ints("altstack", 0, U64, 3))
    t.clear_child_tid = e.int("clear_child_tid", 0, TASK_SIZE)
    t.robust_list = e.int("robust_list", 0, TASK_SIZE)
    regs = e.sub("regs")
    for n in REG_NAMES:
        setattr(t.regs, n, regs.int(n, 0, U64))
    restart = e.sub("restart")
    kind = restart.str("kind")
    t.in_syscall = -1
    if kind == "block":
        t.restart_fn = restarts.take(t, restart.sub("block"))
        t.regs.rax = NR["restart_syscall"]
    elif kind == "stopped":     # back in its process's group stop; SIGCONT ends it as it would have
        if not t.proc.stopped:
            raise image.ImageError(f"manifest: {e.where}: a task stopped in a process that is not")
        t.in_syscall = restart.int("in_syscall", -1, MAX_SYSCALL)
        t.state = State.STOPPED
        t.proc.stop_how[t] = ptrace.REGS_ALL
        if restart.has("block"):     # restart_syscall goes on to the wait's end
            t.restart_fn = restarts.take(t, restart.sub("block"))
    elif kind != "regs":
        raise image.ImageError(f"manifest: {e.where}: restart kind {kind!r}")
    ptrace.set_xstate(t.hpid, e.hex("xstate", 1 << 16))


def _threads(k, leader: Task, p: image.Reader, keys: dict, filters: list, fd_args: tuple) -> None:
    """The process's other threads: host threads cloned in its host
    process (as kernel/threads.py makes them), sharing its fd table and
    filesystem context unless the entry says otherwise (its own, or
    another task's: fd_args are _fds' own), each given its own saved state.  Of a
    process whose main thread had exited, every task is such a thread, and
    the main thread, which its memory and threads were made through, then
    exits as it had (threads.exit_thread), its pid staying the process's."""
    proc = leader.proc
    for e in p.list("tasks")[0 if _main_exited(p) else 1:]:
        tid = e.int("tid", 1, MAX_PID)
        if tid in k.procs.by_tid or tid in k.procs.by_pid:
            raise image.ImageError(f"manifest: {e.where}.tid: {tid} is taken")
        hpid = threads.host_thread(leader)
        x = Task(tid, proc, hpid, GuestMemory(hpid), leader.files.share(), leader.fs, SchedState())
        x.kernel = k
        ptrace.getregs(x.hpid, x.regs)
        proc.threads.append(x)
        k.procs.by_tid[tid] = x
        k.sched.add_task(x)
        _task(x, e, keys, filters)
        if e.has("fds") or e.has("files_of"):
            _fds(k, x, e, *fd_args)
        if e.has("cwd") or e.has("fs_of"):
            x.fs = _fs_context(k, x, e, fd_args[-1])
        fd_args[-1][tid] = x       # (held: later tasks may share its tables)


def _sigq(p: image.Reader, key: str) -> dict:
    """Queued signals' information (checkpoint/dump.py's _save_sigq)."""
    v = p.doc.get(key)
    out: dict = {}
    bad = image.ImageError(f"manifest: {p.where}.{key}: not a list of queued signals")
    if not isinstance(v, list):
        raise bad
    for e in v:
        if not (isinstance(e, list) and len(e) == 3 and type(e[0]) is int and 1 <= e[0] <= S.NSIG
                and type(e[1]) is int and -(1 << 31) <= e[1] < 1 << 31 and isinstance(e[2], list)):
            raise bad
        f = e[2]
        if f[:1] == ["timer"]:      # a POSIX timer's signal: linked to it once the timers are back
            if len(f) != 2 or type(f[1]) is not int or not 0 <= f[1] < 1 << 31:
                raise bad
            fields = ("timer", f[1])
        elif f[:1] == ["raw"]:
            if len(f) != 3 or not isinstance(f[1], str) or type(f[2]) is not int:
                raise bad
            try:
                fields = ("raw", bytes.fromhex(f[1]), f[2])
            except ValueError:
                raise bad from None
            if len(fields[1]) > SIGINFO_UNION or not -4096 < fields[2] < 4096:
                raise bad
        elif all(type(x) is int for x in f) and (len(f) == 1 and -(1 << 63) <= f[0] < U64 or len(f) in (0, 2, 3)
                                                 and all(lo <= x < hi for x, (lo, hi) in zip(f, SIGINFO_INTS))):
            fields = tuple(f)
        else:
            raise bad
        out.setdefault(e[0], deque()).append((e[1], fields))
    return out


def _strs(p: image.Reader, key: str) -> list[str]:
    v = p.doc.get(key)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise image.ImageError(f"manifest: {p.where}.{key}: not a list of strings")
    try:
        for x in v:
            bytes.fromhex(x)
    except ValueError:
        raise image.ImageError(f"manifest: {p.where}.{key}: not hex") from None
    return v


def _lookup(k, t: Task, path: bytes, follow: bool = True):
    try:
        return namei.lookup(t, C.AT_FDCWD, path, follow)
    except KernelError as e:
        raise image.ImageError(f"{path.decode(errors='replace')}: {E.NAMES.get(e.errno, e.errno)} "
                               "(is the disk the one checkpointed?)") from None


def _place(k, t: Task, o: image.Reader, follow: bool = True):
    """The dentry of a file an entry names (checkpoint/dump.py's _place):
    by its path (a symlink there itself unless follow), or, its name gone,
    its inode found by number in the directory's filesystem under a dentry
    of the name it had that no lookup finds, as a description opened by a
    name since unlinked is."""
    if not o.has("ino"):
        return _lookup(k, t, o.path("path"), follow)
    parent = _lookup(k, t, o.path("dir"))
    ino, name = o.int("ino", 1, 1 << 62), o.filename("name")
    inode = _inode_by_number(parent.mount.fs, ino)
    if inode is None or inode.nlink == 0 or inode.is_dir:
        raise image.ImageError(f"manifest: {o.where}.ino: no such file in the filesystem of {o.str('dir')} "
                               "(is the disk the one checkpointed?)")
    return Dentry(name, parent, inode, parent.mount)


def _inode_by_number(fs, ino: int):
    """A disk's inode by its number (its own iget), or a tmpfs's (restored
    under the same numbers): found through the tree."""
    iget = getattr(fs, "iget", None)
    if iget is not None:
        try:
            return iget(ino)
        except KernelError:
            return None
    todo, seen = [getattr(fs, "root", None)], set()
    while todo:
        i = todo.pop()
        if i is None or id(i) in seen:
            continue
        seen.add(id(i))
        if i.ino == ino:
            return i
        if i.is_dir:
            todo.extend(i.children.values())
    return None


# -- memory -------------------------------------------------------------------
HUGE_PAGE = 2 << 20
HOST_MADV_DONTNEED = 4
HOST_MADV_HUGEPAGE = 14


def _memory(k, t: Task, p: image.Reader, shanon: dict, nameless: unlinked.Restorer,
            filled: Intervals | None = None) -> None:
    """filled: where the host process (a migration's prebuilt one) holds
    the pages the stream last sent for them: those inside a private
    anonymous mapping (a stack's aside, which the host must map as one)
    are kept, the rest of its memory unmapped."""
    has = HostAs(t)
    vmas = []
    prev = 0
    held = Intervals()
    for v in p.list("vmas"):
        start, end = v.int("start", 0, TASK_SIZE), v.int("end", 1, TASK_SIZE + 1)
        if start % PAGE or end % PAGE or start < prev or end <= start or (start < STUB_END and end > STUB_BASE):
            raise image.ImageError(f"manifest: {v.where}: bad range {start:#x}-{end:#x}")
        prev = end
        vmas.append((start, end, v))
        if filled is not None and not (v.bool("shared") or v.has("shared_anon") or v.bool("stack")):
            for s, e, _v in filled.overlapping(start, end):
                held.set(s, e, True)
    for start, end, _p, _o, _i, name in host_vmas(t):
        if name not in SPECIAL:
            for s, e in held.gaps(start, end):
                has.checked("munmap", s, e - s)
    _move_vdso(t, has, p.sub("special"))
    mm = _mm(k, t, p.sub("mm"), nameless)
    ipc.restore_process(k, t, mm, p)
    blob = p.blob("memory", populate=filled is None)
    try:
        for start, end, v in vmas:
            prot = v.int("prot", 0, 8)
            if v.bool("shared"):
                _map_shared(t, has, mm, start, end, prot, v)
                continue
            if v.has("shared_anon"):
                sharedanon.map_again(has, shanon, start, end, prot, v)
                continue
            flags = C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_FIXED | (C.MAP_GROWSDOWN if v.bool("stack") else 0)
            runs = v.list_of_ints("runs", 3, (0, 1, 0), (end - start, end - start + 1, blob.size))
            kept = held.overlapping(start, end)
            for s, e in held.gaps(start, end):
                has.checked("mmap", s, e - s, C.PROT_READ | C.PROT_WRITE, flags, -1, 0)
            full = sum(n for _off, n, _at in runs)
            if not kept and full >= HUGE_PAGE and 2 * full >= end - start:
                # mostly full: the host backs it with huge pages where it can, so
                # that filling it costs a fault per 2 MiB, not per page (64 MiB:
                # 42 -> 27 ms here); the advice is the host's, not the guest's
                has.call("madvise", start, end - start, HOST_MADV_HUGEPAGE)
            for off, n, at in runs:
                if off + n > end - start or at + n > blob.size:
                    raise image.ImageError(f"manifest: {v.where}: a run past its mapping or the memory file")
                # the mapping is writable until the mprotect below: process_vm_writev,
                # which takes the pages in batches, not /proc/PID/mem's one at a time
                for s, e in held.gaps(start + off, start + off + n) if kept else [(start + off, start + off + n)]:
                    t.mem.write(s, blob.read_at(at + s - start - off, e - s))
            if kept:            # what the stream held that the image says is zero now
                nonzero = Intervals([(start + off, start + off + n, True) for off, n, _at in sorted(runs)])
                for s, e, _v in kept:
                    for zs, ze in nonzero.gaps(s, e):
                        has.checked("madvise", zs, ze - zs, HOST_MADV_DONTNEED)
            if prot != C.PROT_READ | C.PROT_WRITE:
                has.checked("mprotect", start, end - start, prot)
    finally:
        blob.close()
    for s, e, _fl in mm.locked.items:
        if sum(min(e, ve) - max(s, vs) for vs, ve, _v in vmas if vs < e and ve > s) != e - s:
            raise image.ImageError(f"manifest: process {t.proc.pid}: a locked range outside its mappings")
    t.proc.mm = mm
    if mm.locked.items:
        mlock.populate(t, 0, TASK_SIZE)     # as the mlock faulted them in (the image holds no zeros)


def _map_shared(t: Task, has: HostAs, mm: Mm, start: int, end: int, prot: int, v: image.Reader) -> None:
    """A MAP_SHARED mapping of a file, made again on the file's page cache
    (as sys_mmap makes one): the file mapping of `mm.files` that covers it
    says which file, at what offset, and whether it may become writable."""
    pieces = mm.files.overlapping(start, end)
    if len(pieces) != 1 or pieces[0][0] > start or pieces[0][1] < end or not pieces[0][2].shared:
        raise image.ImageError(f"manifest: {v.where}: a shared mapping no shared file mapping covers")
    fm = pieces[0][2]
    inode = fm.obj
    off = start - fm.origin
    seg = ipc.is_segment_map(fm)        # a SysV segment's, checked inside it by ipc.restore_process
    if off < 0 or off % PAGE or not (seg or inode.is_reg) or (prot & C.PROT_WRITE and not fm.maywrite):
        raise image.ImageError(f"manifest: {v.where}: a bad shared file mapping")
    has.map_shared(inode.memfile().fd, fm.maywrite, start, end - start, prot, off)
    if fm.maywrite and not seg:
        inode.map_shared()


def _move_vdso(t: Task, has: HostAs, saved: image.Reader) -> None:
    """The host's vvar/vdso block goes where the checkpointed process had
    it (the guest's libc holds its address), with the bytes the kernel
    patched into the vDSO (kernel/vdso.py)."""
    now = {name.decode(): (s, e) for s, e, _p, _o, _i, name in host_vmas(t) if name in SPECIAL}
    want = {}
    for name in now:
        want[name] = ws, we = tuple(saved.ints(name, 0, TASK_SIZE + 1, 2))
        if ws % PAGE or ws >= we or (ws < STUB_END and we > STUB_BASE):
            raise image.ImageError(f"manifest: {saved.where}.{name}: bad range")
    if set(saved.keys()) - {"vdso_bytes"} != set(now):
        raise image.ImageError("the host's vDSO mappings differ from the checkpointed ones (another host kernel?)")
    base_now = min(s for s, _e in now.values())
    base_want = min(s for s, _e in want.values())
    for name, (s, e) in now.items():
        ws, we = want[name]
        if ws - base_want != s - base_now or we - ws != e - s:
            raise image.ImageError("the host's vDSO layout differs from the checkpointed one (another host kernel?)")
    if base_now != base_want:
        for name, (s, e) in now.items():
            has.checked("mremap", s, e - s, e - s, C.MREMAP_MAYMOVE | C.MREMAP_FIXED, TEMP + s - base_now)
        for name, (s, e) in now.items():
            has.checked("mremap", TEMP + s - base_now, e - s, e - s, C.MREMAP_MAYMOVE | C.MREMAP_FIXED, want[name][0])
    vdso = saved.hex("vdso_bytes", 1 << 20)
    ws, we = want["[vdso]"]
    if len(vdso) != we - ws:
        raise image.ImageError("the saved vDSO is not the size of the host's")
    t.mem.poke(ws, vdso)


def _mm(k, t: Task, m: image.Reader, nameless: unlinked.Restorer) -> Mm:
    mm = Mm(k.mem_budget)
    mm.mem = t.mem
    for s, e, charged in m.list_of_ints("ranges", 3, (0, 1, 0), (TASK_SIZE, TASK_SIZE + 1, 2)):
        if e <= s:
            raise image.ImageError(f"manifest: {m.where}.ranges: empty range")
        mm.add(s, e, bool(charged))
    mm.brk_start, mm.brk = m.int("brk_start", 0, TASK_SIZE), m.int("brk", 0, TASK_SIZE)
    mm.start_stack = m.int("start_stack", 0, TASK_SIZE)
    mm.arg_range = tuple(m.ints("arg_range", 0, TASK_SIZE + 1, 2))
    mm.env_range = tuple(m.ints("env_range", 0, TASK_SIZE + 1, 2))
    mm.saved_auxv = m.hex("saved_auxv", 4096)
    mm.dump_filter = m.int("dump_filter", 0, 1 << 9)
    lock_kinds = (VM_LOCKED, VM_LOCKED | VM_LOCKONFAULT)
    if m.has("locked"):         # mlock's ranges (bookkeeping: the host locks nothing)
        prev = 0
        for s, e, fl in m.list_of_ints("locked", 3, (0, 1, 0), (TASK_SIZE, TASK_SIZE + 1, 1 << 32)):
            if s < prev or e <= s or s % PAGE or e % PAGE or fl not in lock_kinds:
                raise image.ImageError(f"manifest: {m.where}.locked: a bad locked range")
            mm.locked.set(s, e, fl)
            prev = e
        mm.def_locked = m.int("def_locked", 0, 1 << 32)
        if mm.def_locked not in (0, *lock_kinds):
            raise image.ImageError(f"manifest: {m.where}.def_locked: not mlockall's")
    made = []
    for fm in m.list("files"):
        s, e = fm.int("start", 0, TASK_SIZE), fm.int("end", 1, TASK_SIZE + 1)
        if fm.has("group"):     # a file with no name left, made again as the open ones are
            d = nameless.dentry(t, fm, lambda path: _lookup(k, t, path))
        else:
            d = _place(k, t, fm)
        mm.map_file(s, e, FileMap(d.inode, fm.int("origin", -TASK_SIZE, TASK_SIZE), fm.bool("shared"),
                                   fm.bool("maywrite"), d))
        made.append(d)
    if m.has("exe_map"):        # a program with no name left: the file of that mapping
        i = m.int("exe_map", 0, len(made))
        mm.set_exe(made[i].inode)
    elif t.proc.exe_path.startswith("/"):
        mm.set_exe(_lookup(k, t, t.proc.exe_bytes).inode)
    return mm


# -- files --------------------------------------------------------------------
def _fds(k, t: Task, p: image.Reader, opens: list, made: dict, shared: tuple, held: dict) -> None:
    """A task's fd table (checkpoint/dump.py's _save_context): its own
    fds, or the table of a task restored before it, shared."""
    if p.has("files_of"):
        other = _held(p, "files_of", held).files
        t.files.release()
        t.files = other.share()
        return
    fdt = FdTable()
    for e in p.list("fds"):
        i = e.int("open", 0, len(opens))
        f = made.get(i)
        if f is None:
            f = made[i] = _open(k, t, opens[i], *shared)
        fdt.install_at(e.int("fd", 0, k.tunables.nr_open), f, e.bool("cloexec"))
    t.files.release()
    t.files = fdt


def _links(k, init: Task, opens: list, made: dict, shared: tuple) -> None:
    """What names other open descriptions (checkpoint/dump.py's
    _save_links): unix sockets' peers, senders, backlogs and files in
    flight (the descriptions no fd holds made first, each of them held
    by one of these links), every epoll's interest list (entries on
    files that are open and pollable; epolls nested as epoll_ctl
    allows)."""
    in_fds = set(made)
    for i, o in enumerate(opens):
        if i not in made:
            made[i] = _open(k, init, o, *shared)
    held: dict = {}
    for i, f in made.items():
        if isinstance(f, UnixSocket):
            unixsock.link(f, opens[i], made, held)
        elif isinstance(f, TcpSocket):
            inetsock.link(f, opens[i], made, held)
    unixsock.check_pairs(made)
    inetsock.check_pairs(made)
    unixsock.check_held(held, in_fds, set(made) - in_fds)
    for i, ep in made.items():
        if not isinstance(ep, EpollFile):
            continue
        o = opens[i]
        for fd, idx, events, data, disabled, changed in o.list_of_ints("entries", 6, (0, 0, 0, 0, 0, 0),
                                                                      (1 << 31, len(opens), 1 << 32, U64, 2, 2)):
            f = made.get(idx)
            if f is None or f is ep or not f.can_poll() or (fd, id(f)) in ep.entries:
                raise image.ImageError(f"manifest: {o.where}.entries: a bad entry for fd {fd}")
            try:
                e = sys_epoll.attach(ep, fd, f, events, data, k.tunables.epoll_max_user_watches)
            except KernelError:
                raise image.ImageError(f"manifest: {o.where}.entries: fd {fd} makes a loop, or epolls "
                                       "nested deeper or watched more than epoll_ctl allows") from None
            e.disabled, e.changed = bool(disabled), bool(changed)


def _pipe_end(k, t: Task, o: image.Reader, kind: str, flags: int, pipes: dict) -> PipeFile:
    """An end of a pipe of `pipes` (made once: its size, as F_SETPIPE_SZ
    sets it, then its bytes): an anonymous pipe's, or an open file of a
    named fifo, found again by its path and checked as an open checks it
    with the restored credentials (it does not wait for the other side:
    the counts of readers and writers are the files').  One pipe is one
    fifo's or anonymous, never both, and a fifo has one pipe."""
    entry = pipes.get(o.int("pipe", 0, len(pipes)))
    if entry is None:
        raise image.ImageError(f"manifest: {o.where}: no such pipe")
    pp, pipe, fifo = entry
    if pipe is None:
        pipe = entry[1] = Pipe(t)
        size = pp.int("size", 1, 1 << 31)
        try:
            if size != pipe.capacity:
                pipe.set_size(t.proc.creds, size)
        except KernelError as e:
            raise image.ImageError(f"manifest: {pp.where}.size: F_SETPIPE_SZ says "
                                   f"{E.NAMES.get(e.errno, e.errno)}") from None
        data = pp.hex("data", 1 << 31)
        try:
            held = pipe.buf.write(data, True)
        except KernelError:         # ENOMEM: not a page of it fits in RAM
            held = 0
        if held != len(data):
            raise image.ImageError(f"manifest: {pp.where}: more bytes than the pipe holds in RAM")
    if kind == "pipe":
        if fifo is not None:
            raise image.ImageError(f"manifest: {o.where}: a fifo's pipe as an anonymous one")
        return PipeFile(pipe, flags & (C.O_ACCMODE | C.O_NONBLOCK | C.O_DIRECT))
    d = _lookup(k, t, o.path("path"))
    inode = d.inode
    if inode.fmt != C.S_IFIFO or pipe.inode is not None or fifo not in (None, inode) or inode.pipe not in (None, pipe):
        raise image.ImageError(f"manifest: {o.where}.path: not the fifo of its pipe")
    try:
        permission(inode, sys_file.open_access(flags), t.proc.creds)
    except KernelError as e:
        raise image.ImageError(f"{o.str('path')}: cannot open again: {E.NAMES.get(e.errno, e.errno)}") from None
    inode.pipe, entry[2] = pipe, inode
    return PipeFile(pipe, flags & sys_file.OPEN_FLAGS_KEPT, d, inode)


def _open(k, t: Task, o: image.Reader, pipes: dict, ipcs: ipc.Restored, ptys: pty.Ptys,
          nameless: unlinked.Restorer):
    """An open description made again, with its F_SETOWN owner and O_ASYNC."""
    f = _open_kind(k, t, o, pipes, ipcs, ptys, nameless)
    if o.has("owner"):
        kind, nr, uid, euid, signum = o.ints("owner", 0, 1 << 32, 5)
        if kind not in (fown.F_OWNER_TID, fown.F_OWNER_PID, fown.F_OWNER_PGRP) or nr >= MAX_PID \
                or signum > S.NSIG:
            raise image.ImageError(f"manifest: {o.where}.owner: not an F_SETOWN owner")
        f.owner = fown.FileOwner(k)
        f.owner.type, f.owner.nr, f.owner.uid, f.owner.euid, f.owner.signum = kind, nr, uid, euid, signum
    if o.has("async_fd"):
        f.fasync(o.int("async_fd", 0, k.tunables.nr_open), True)
        f.flags |= C.O_ASYNC
    return f


def _open_kind(k, t: Task, o: image.Reader, pipes: dict, ipcs: ipc.Restored, ptys: pty.Ptys,
               nameless: unlinked.Restorer):
    kind = o.str("kind")
    flags = o.int("flags", 0, 1 << 32)
    if kind == "console":
        return k.init_fds().files[0]
    if kind in ("pipe", "fifo"):
        return _pipe_end(k, t, o, kind, flags, pipes)
    if kind == "file":
        d = _place(k, t, o)
        try:
            f = sys_file.dentry_open(t, d, flags & ~(C.O_CREAT | C.O_EXCL | C.O_TRUNC))
        except KernelError as e:
            where = o.str("path") if o.has("path") else f"{o.str('dir')}, inode {o.int('ino', 1, 1 << 62)}"
            raise image.ImageError(f"{where}: cannot open again: {E.NAMES.get(e.errno, e.errno)}") from None
        f.pos = o.int("pos", 0, 1 << 63)
        return f
    if kind == "path":          # O_PATH: the place again, nothing opened
        if not flags & C.O_PATH:
            raise image.ImageError(f"manifest: {o.where}: a path description without O_PATH")
        d = _place(k, t, o, follow=not flags & C.O_NOFOLLOW)      # O_PATH|O_NOFOLLOW: a symlink itself
        if flags & C.O_DIRECTORY and not d.inode.is_dir:
            raise image.ImageError(f"manifest: {o.where}: O_DIRECTORY on a file that is not a directory")
        return File(d, d.inode, flags & (C.O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW))
    if kind == "unlinked":
        return nameless.open(t, o, flags, lambda path: _lookup(k, t, path))
    if kind == "unix":
        return unixsock.make(t, o, flags, lambda path: _lookup(k, t, path))
    if kind == "inet":
        return inetsock.make(k, o, flags)
    if kind == "netlink":
        return netlinksock.make(t, o, flags)
    if kind == "packet":
        return packetsock.make(k, o, flags)
    if kind == "epoll":
        return EpollFile(flags & C.O_ACCMODE, k.mem_budget)       # its interest list once every file is open (_links)
    if kind == "signalfd":
        proc = k.procs.by_pid.get(o.int("pid", 1, MAX_PID))
        if proc is None:
            raise image.ImageError(f"manifest: {o.where}.pid: no such process")
        return SignalFdFile(proc, o.int("mask", 0, U64) & ~S.UNBLOCKABLE, flags & (C.O_ACCMODE | C.O_NONBLOCK))
    if kind == "pidfd":
        pid = o.int("pid", 1, MAX_PID)
        if o.bool("gone"):      # reaped: a process of that pid no table holds, done with
            proc = Process(pid, None, Creds(), SigHand(), None)
            proc.exited = True
        else:
            proc = k.procs.by_pid.get(pid)
            if proc is None:
                raise image.ImageError(f"manifest: {o.where}.pid: no such process")
        return PidFile(proc, flags & C.O_NONBLOCK)
    if kind == "eventfd":
        return EventFdFile(o.int("count", 0, EVENTFD_MAX + 1), flags & (C.O_ACCMODE | C.O_NONBLOCK),
                           o.bool("semaphore"))
    if kind in ("ptmx", "pts"):
        return pty.make_file(t, o, flags, ptys)
    if kind == "line":
        return ttylines.make_file(k, o, flags, lambda path: _lookup(k, t, path))
    if kind == "inotify":
        return inotify.make(k, t, o, flags)
    if kind == "timerfd":
        clk = o.int("clock", 0, 16)
        if clk not in TIMERFD_CLOCKS:
            raise image.ImageError(f"manifest: {o.where}.clock: not a timerfd clock")
        f = TimerFdFile(k.sched, clk, flags & (C.O_ACCMODE | C.O_NONBLOCK))
        f.ticks = o.int("ticks", 0, 1 << 63)
        timers.rearm(f.timer, o)
        return f
    if kind == "mqueue":
        return ipc.open_queue(ipcs, o, flags)
    raise image.ImageError(f"manifest: {o.where}: file kind {kind!r}")
