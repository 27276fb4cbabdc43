"""Checkpoint: freeze every guest task at a syscall or trap boundary and
write the machine as an image (checkpoint/image.py, docs/checkpoint.md).

It runs from the event loop between two batches of events (an idle hook:
no task's stop is then half-taken), so every task is either in guest code
(interrupted here, its stop waited for here), or stopped in the kernel
(blocked in a syscall, or light in a seccomp notification: brought to a
real stop).  A task caught in a syscall is saved as "make that syscall
again" (rip back on the `syscall` instruction, rax the number, as a
signal's restart does), a wait with a relative timeout as restart_syscall
with the time it still has (checkpoint/restarts.py).  What this first
version cannot save is refused before anything is written, naming it
(EOPNOTSUPP).
"""
from __future__ import annotations

import re

from arch_um import clock, procinfo, ptrace
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.checkpoint import (cgroups, filelocks, image, inetsock, inotify, ipc, keyring, machine, netlinksock,
                               netstate, packetsock, pty, restarts, sched, seccompstate, sharedanon, timensstate,
                               timers, tmpfstree, ttylines, unixsock, unlinked)
from umlpy.drivers.console import ConsoleFile
from umlpy.drivers.ubd import UBD_MAJOR
from umlpy.fs.procfs.pagemap import PM_PRESENT, PM_SWAP
from umlpy.fs.registry import DISK_TYPES
from umlpy.kernel import ioac, printk, ptracer, rusage
from umlpy.kernel.errors import KernelError
from umlpy.kernel.task import State
from umlpy.net.inet.sock import InetSocket
from umlpy.net.unix import UnixSocket
from umlpy.syscalls import sys_memfd
from umlpy.syscalls.sys_epoll import EpollFile
from umlpy.syscalls.sys_eventfd import EventFdFile
from umlpy.syscalls.sys_signal import SignalFdFile
from umlpy.syscalls.sys_timer import TimerFdFile
from umlpy.vfs import lease
from umlpy.vfs.devices import MEM_DEVICES
from umlpy.vfs.locks import F_UNLCK
from umlpy.vfs.pidfd import PidFile
from umlpy.vfs.pipe import PipeFile, PipeInode

SPECIAL = (b"[vvar]", b"[vvar_vclock]", b"[vdso]")     # the host's: moved, not copied
SKIP = (b"[vsyscall]",)
BOOT_MOUNTS = ("rootfs", "ext2", "ext3", "ext4", "hostfs", "devtmpfs")     # what a boot mounts (a restore mounts again)
TREE_FS = ("tmpfs", "ramfs")    # memory filesystems whose whole tree the image holds (checkpoint/tmpfstree.py)
RESTORED_MOUNTS = ("proc", "sysfs", "devpts", "cgroup2", "mqueue", "hostfs", *TREE_FS)     # the virtual filesystems a restore makes again
MEM_FILES = tuple({cls for *_, cls in MEM_DEVICES})     # the memory devices' open files
UNIX_BOUND_FS = ("ext2", "ext3", "ext4", "devtmpfs", *TREE_FS)   # where a bound unix socket's file, or a fifo, is found again
SYSCALL_INSN = b"\x0f\x05"
RESTART_ERRORS = range(-E.ERESTART_RESTARTBLOCK, -E.ERESTARTSYS + 1)
HELD = bytes(1 if b & ((PM_PRESENT | PM_SWAP) >> 56) else 0 for b in range(256))   # a pagemap entry's top byte
HELD_RUN = re.compile(b"\x01+")
PAGE = C.PAGE_SIZE
S64 = 1 << 64


class Refused(KernelError):
    """The machine holds something a checkpoint cannot save yet."""

    def __init__(self, what: str) -> None:
        super().__init__(E.EOPNOTSUPP, f"checkpoint: {what} not supported")


class Busy(Refused):
    """A state that passes by itself (a vfork's child runs until it execs
    or exits): the checkpoint may be tried again in a moment."""


def _signed(v: int) -> int:
    return v - S64 if v >> 63 else v


def _path(k, d) -> str:
    return d.path(k.root).decode("utf-8", "surrogateescape")


def _relinked(d) -> bool:
    """The name d was opened or mapped by is gone (unlinked, renamed over),
    but its inode has other names: its path now finds another file, or
    none, so a restore finds it by its number (_place)."""
    return d.inode.nlink > 0 and d.unlinked()


def _relinked_savable(d) -> bool:
    """A file _relinked on a filesystem a restore finds an inode of by its
    number (a disk's, or a tmpfs, whose tree keeps the numbers), in a
    directory that still has a name."""
    up = d.up()
    return (hasattr(d.mount.fs, "iget") or d.mount.fstype in TREE_FS) and up.inode.nlink > 0 \
        and up.mount is d.mount


def _place(k, d) -> dict:
    """Where a restore finds the file of dentry d: its path; or, _relinked,
    the directory it was in, its inode's number and the name it had (which
    the restored description shows " (deleted)", as Linux does); nothing
    for a memfd's, which unlinked.save_all makes a nameless file's entry."""
    if sys_memfd.is_memfd(d):
        return {}
    if _relinked(d):
        return {"dir": _path(k, d.up()), "ino": d.inode.ino, "name": d.name.hex()}
    return {"path": _path(k, d)}


# -- what is refused ------------------------------------------------------------
def check_supported(k) -> None:
    """Refuse (Refused) a machine this version cannot save, before any
    guest is stopped."""
    if any(m.fstype not in BOOT_MOUNTS for m in k.mounts.mounts[:2]):
        raise Refused("a root other than an ext2/ext3/ext4 disk, a hostfs or the initramfs")
    for n, m in enumerate(k.mounts.mounts[2:], 2):
        why = _unrestorable(k, m, n)
        if why is not None:
            raise Refused(f"the mount on {_path(k, m.mountpoint) if m.mountpoint else '(none)'}: {why}")
    for m in k.mounts.mounts[1:]:
        i = tmpfstree.unsaved(m.fs) if m.fstype in (*TREE_FS, "devtmpfs") else None
        if i is not None:
            raise Refused(f"a tmpfs inode ({oct(i.mode)}) this version cannot save")
    why = pty.unsaved(k)
    if why is not None:
        raise Refused(why)
    if k.initramfs_unpacked_ns is not None and _changed_since(k.root.inode, k.initramfs_unpacked_ns):
        raise Refused("changes to the initramfs root (a restore unpacks the cpio again)")
    if k.init_ns.pid.acct is not None:
        raise Refused("process accounting (acct), whose file a restore would not write again")
    for p in k.procs.by_pid.values():
        if p.vfork_wq is not None:
            raise Busy(f"process {p.pid} ({p.comm.decode(errors='replace')}): a vfork child that has not "
                       "yet exec'd or exited (its parent waits on it, sharing its memory)")
    for p in k.procs.by_pid.values():
        who = f"process {p.pid} ({p.comm.decode(errors='replace')})"
        _check_identity(k, p, who)
        if p.zombie:
            continue
        for x in p.threads:
            _check_task(k, x, who)
        if p.ptraced:
            raise Refused(f"{who}: ptrace")
        if not timers.savable(p):
            raise Refused(f"{who}: a timer this version cannot save")
        if p.stopped and any(x.state is State.USER for x in p.threads):
            raise Busy(f"{who}: a thread on its way to the process's job-control stop")
        mm = p.mm
        if mm is None or mm.users != 1 or mm.uffd is not None:
            raise Refused(f"{who}: a shared or userfaultfd address space")
        if mm.aio:
            raise Refused(f"{who}: AIO contexts (io_setup)")
        if any(fm.shared and fm.obj is not None and not _shared_restorable(fm) for _s, _e, fm in mm.files.items):
            raise Refused(f"{who}: a shared mapping of a file with no name")
        if any(fm.dentry is not None and _relinked(fm.dentry) and not _relinked_savable(fm.dentry)
               for _s, _e, fm in mm.files.items):
            raise Refused(f"{who}: a mapping of a file by a name that is gone, on a filesystem "
                          "that cannot find it by its number")
        if mm.exe is not None and mm.exe.nlink == 0 and not any(
                fm.obj is mm.exe and fm.dentry is not None for _s, _e, fm in mm.files.items):
            raise Refused(f"{who}: a program with no name left that no mapping holds")
        if any(fm.dentry is not None and fm.dentry.inode.nlink == 0 and not unlinked.dentry_savable(fm.dentry)
               for _s, _e, fm in mm.files.items):
            raise Refused(f"{who}: a mapping of a file with no name left that is not a regular file "
                          "or whose directory has no name either")
        for fdt in {id(x.files): x.files for x in p.threads}.values():
            _check_fds(k, fdt, who)
    shares = Shares(k)
    if any(fdt.users != n for fdt, n in shares.holders.values()):
        raise Refused("an fd table held by a task the image does not carry")
    ipc.check(k)
    for why in (keyring.unsaved(k), cgroups.unsaved(k)):
        if why is not None:
            raise Refused(why)


def _check_fds(k, fdt, who: str) -> None:
    """Every open file of an fd table is one this version saves."""
    for fd, f in fdt.files.items():
        mod = next((m for m in (inotify, pty, packetsock, ttylines) if m.handles(f)), None)
        if mod is not None:
            why = mod.unsaved_file(k, f)
            if why is not None:
                raise Refused(f"{who}: fd {fd}: {why}")
            continue
        if not _file_savable(f):
            raise Refused(f"{who}: fd {fd} ({type(f).__name__})")
        what = unixsock.refusal(f, _file_savable, UNIX_BOUND_FS) if isinstance(f, UnixSocket) else None
        if what is not None:
            raise Refused(f"{who}: fd {fd}: {what}")


class Shares:
    """Which task the image saves each fd table and filesystem context
    with: the first that holds it, in the image's order (processes by pid,
    each one's threads in order); the others name it by that task's tid,
    as clone(CLONE_FILES), clone(CLONE_FS) and pthread_create share them."""

    def __init__(self, k) -> None:
        self.files: dict[int, int] = {}         # id(fd table) -> tid
        self.fs: dict[int, int] = {}            # id(FsContext) -> tid
        self.holders: dict[int, list] = {}      # id(fd table) -> [table, tasks holding it]
        for p in sorted(k.procs.by_pid.values(), key=lambda p: p.pid):
            if p.zombie:
                continue
            for x in p.threads:
                self.files.setdefault(id(x.files), x.tid)
                self.fs.setdefault(id(x.fs), x.tid)
                self.holders.setdefault(id(x.files), [x.files, 0])[1] += 1


def _check_identity(k, p, who: str) -> None:
    """What a process and a zombie both carry (_save_identity): in the
    initial namespaces but time namespaces of the initial user namespace
    (checkpoint/timensstate.py), no timer's signal pending, the console or
    a pty as its controlling tty (its keyrings and control group are
    checked machine-wide: checkpoint/keyring.py, cgroups.py).  A zombie
    is saved whole (its status and rusage) unless a tracer other than its
    parent is still to reap it; a process caught half-way through its exit
    cannot be (the event loop never leaves one so)."""
    if p.exited and not p.zombie:
        raise Refused(f"{who}: a process in the middle of its exit")
    if p.zombie and (p.parent is None or ptracer.traced_zombie(p) is not None):
        raise Refused(f"{who}: a traced zombie")
    if timensstate.without(k, p.ns) != k.init_ns or p.creds.user_ns is not None:
        raise Refused(f"{who}: namespaces")
    why = timensstate.unsaved(k, p)
    if why is not None:
        raise Refused(f"{who}: {why}")
    if p.ctty is not None and not ttylines.is_line(p.ctty) and not pty.is_pty_slave(p.ctty):
        raise Refused(f"{who}: a controlling tty other than a line (the console, con1-, ssl0-) or a pty")
    if _timer_signal(p.sigq, p) or _timer_signal(p.leader.sigq, p):
        raise Refused(f"{who}: a pending signal from a timer that is gone")


def _file_savable(f) -> bool:
    """An open file description this version saves."""
    if isinstance(f, PipeFile):
        return _pipe_savable(f)
    if isinstance(f, ConsoleFile) or _anon_savable(f):
        return True
    if ttylines.handles(f):
        return ttylines.unsaved_file(None, f) is None
    if sys_memfd.is_memfd(f.dentry):       # carried with its contents and seals (checkpoint/unlinked.py)
        return type(f).kind == "file" and not f.flags & C.O_PATH and not _locked(f)
    if f.flags & C.O_PATH:      # a place only: found again by its path (a symlink's not followed)
        return f.dentry is not None and f.dentry.mount is not None and f.inode.nlink > 0 \
            and (f.inode.fmt != C.S_IFLNK or bool(f.flags & C.O_NOFOLLOW)) and not _relinked(f.dentry)
    if isinstance(f, MEM_FILES):    # /dev/null, /dev/zero, ...: no state but flags, opened again by path
        return f.dentry is not None and f.dentry.mount is not None and f.inode.nlink > 0 \
            and not _relinked(f.dentry)
    return (type(f).kind == "file" and f.inode.is_reg or type(f).kind == "dir" and f.inode.is_dir) \
        and f.dentry is not None and f.dentry.mount is not None \
        and (f.inode.nlink > 0 and not _lease_breaking(f) and (not _relinked(f.dentry) or _relinked_savable(f.dentry))
             or unlinked.savable(f) and not _locked(f))


def _pipe_savable(f) -> bool:
    """An end of an anonymous pipe, or an open file of a named fifo found
    again by its path (on the disk or a tmpfs, its name still there), its
    pipe saved once with its bytes.  An anonymous pipe reopened through
    /proc/PID/fd is neither."""
    if f.dentry is None:
        return isinstance(f.inode, PipeInode)
    return f.inode.fmt == C.S_IFIFO and f.dentry.mount is not None and f.dentry.mount.fstype in UNIX_BOUND_FS \
        and f.inode.nlink > 0 and not _locked(f)


def _shared_file(fm) -> bool:
    """A MAP_SHARED mapping a restore maps again: of a regular file that
    still has its name (on the disk, synced first, or a tmpfs, whose
    tree is saved), found again by that name; or of one unlinked while an
    fd holds it (Python's multiprocessing heap maps such files), made
    again nameless with its contents (checkpoint/unlinked.py)."""
    d = fm.dentry
    if sys_memfd.is_memfd(d):
        return d.inode is fm.obj    # a memfd's, made again with its contents
    if d is not None and d.inode is fm.obj and d.inode.nlink == 0:
        return unlinked.dentry_savable(d) and d.inode.open_count > 0
    return d is not None and d.inode is fm.obj and d.inode.is_reg and d.inode.nlink > 0 and d.mount is not None \
        and (not _relinked(d) or _relinked_savable(d))


def _shared_restorable(fm) -> bool:
    """A MAP_SHARED mapping a restore maps again: of a file (_shared_file),
    a SysV segment (checkpoint/ipc.py), or pages no file holds any more
    (_mapped_only)."""
    return _shared_file(fm) or ipc.is_segment_map(fm) or _mapped_only(fm)


def _check_task(k, x, who: str) -> None:
    """One task of a process (its leader or a thread): stopped where a
    checkpoint can take it, nothing per-thread that the image does not
    carry."""
    if x.state not in (State.USER, State.BLOCKED) and not (x.state is State.STOPPED and x.proc.stopped):
        raise Refused(f"{who}: a task {x.state.value}")
    if x.ptrace is not None:
        raise Refused(f"{who}: ptrace")
    if x.landlock is not None:
        # a restore without it would let the sandboxed code out
        raise Refused(f"{who}: a Landlock domain")
    if _timer_signal(x.sigq, x.proc):
        raise Refused(f"{who}: a pending signal from a timer that is gone")


def _timer_signal(sigq: dict, proc) -> bool:
    """Whether a queued signal came from a timer the image cannot name: one
    deleted since (its signal still queued), or not the process's own."""
    return any(f[:1] not in ((), ("raw",)) and not all(type(x) is int for x in f)
               and not (f[0] == "timer" and timers.named(f[1], proc))
               for q in sigq.values() for _c, f in q)


def _anon_savable(f) -> bool:
    """An anonymous file this version saves (unnamed unix sockets among
    them, checkpoint/unixsock.py)."""
    if isinstance(f, TimerFdFile):      # not one armed at an absolute time on a wall clock
        return f.cancel_steps is None and f.timer.follows is None
    return isinstance(f, (EpollFile, EventFdFile, SignalFdFile, PidFile)) or unixsock.savable(f) or inetsock.savable(f) \
        or netlinksock.savable(f) or packetsock.savable(f) or ipc.savable_file(f)


def _unrestorable(k, m, n: int) -> str | None:
    """Why the mount at index n of the table (past the root and /dev) is one
    a restore cannot make again in its order, None when it can: a plain
    mount (not shared, a slave nor unbindable) on a directory or file of a
    mount before it (/dev's tree is carried: _save_dev), showing a part of a
    filesystem a mount before it shows (a bind mount, of the root's and
    /dev's too), found again by its path in the filesystem, or a new one:
    proc (the initial pid namespace's), sysfs, a tmpfs (its tree is
    saved), devpts (its ptys are saved whole, checkpoint/pty.py), cgroup2
    (a view of the control groups, checkpoint/cgroups.py), mqueue (a view
    of the POSIX queues, checkpoint/ipc.py), hostfs (its host directory,
    mounted again below the restoring boot's hostfs=), or
    ext2/ext3/ext4 on a ubd disk (its image is on the restored command line)."""
    table = k.mounts.mounts
    if not m.attached or m.mountpoint is None:
        return "a detached mount"
    on = m.mountpoint.mount
    if on not in table[:n]:
        return "a mount on a mount made after it"
    found = _inode_at(m.fs.root, m.root_path)     # by number: proc makes its inodes at each lookup
    if found is None or found.ino != m.root.inode.ino:
        return "a bind mount whose source is gone or was moved"
    if any(o.fs is m.fs for o in table[:n]):
        return None         # a bind mount (or a disk mounted twice: one superblock)
    if m.fstype in DISK_TYPES:
        dev = getattr(m.fs, "device", None)
        return None if dev is not None and dev.major == UBD_MAJOR and not m.fs_opts else "a disk other than a ubd"
    if m.fstype not in RESTORED_MOUNTS or getattr(m.fs, "pidns", k.init_ns.pid) is not k.init_ns.pid:
        return f"{m.fstype} (a restore makes again proc of the initial pid namespace, sysfs, tmpfs, devpts, " \
            "cgroup2, mqueue, hostfs, ext2/ext3/ext4 of a ubd disk and bind mounts)"
    return None


def _inode_at(root, path: bytes):
    """The inode path names inside a filesystem whose root is root (None
    when it names none): where a bind mount's root is found again."""
    inode = root
    for name in filter(None, path.split(b"/")):
        inode = inode.lookup(name) if inode.is_dir and name not in (b".", b"..") else None
        if inode is None:
            return None
    return inode


def _save_mounts(k, w) -> list:
    """Every mount past the root and /dev, in the order they were made (a
    restore makes them again so, then their propagation, as the root's
    and /dev's: _save_propagation): its type, source, mount point (`path`,
    and `on`: the number of the mount that mount point is on, 0 the root,
    1 /dev, 2 + i the i-th saved), the part of its filesystem it shows
    (`root`) and its flags (the MOUNT_ATTR_ bits); a bind mount names the
    first mount of its filesystem (`of`), any other what makes its
    filesystem again: a tmpfs's tree, a hostfs's host directory, a disk's
    device, whether the filesystem is read-only and its journal's commit
    interval."""
    table = k.mounts.mounts
    out = []
    for n, m in enumerate(table[2:], 2):
        e = {"fstype": m.fstype, "source": m.source, "path": _path(k, m.mountpoint), "flags": m.flags,
             "on": table.index(m.mountpoint.mount), "root": m.root_path.decode("utf-8", "surrogateescape")}
        first = next(i for i, o in enumerate(table) if o.fs is m.fs)
        if first < n:
            e["of"] = first
        elif m.fstype in TREE_FS:
            e.update(ro=bool(m.fs.read_only), tmpfs=tmpfstree.save(m.fs, w, f"tmpfs-{n - 2}.bin"))
        elif m.fstype == "hostfs":
            e.update(ro=bool(m.fs.read_only), hostfs=m.fs.data)
        elif m.fstype in DISK_TYPES:
            e.update(dev=[m.fs.device.major, m.fs.device.minor], ro=bool(m.fs.read_only),
                     commit=getattr(m.fs, "commit_s", 0),
                     nodelalloc=not getattr(m.fs, "delalloc_opt", True))
        out.append(e)
    return out


def _save_dev(k, w) -> dict | None:
    """/dev's tree (the devtmpfs mounted there at boot), as a tmpfs's,
    whatever the guest made, removed or changed in it: directories other
    mounts are on, /dev/shm's files, fifos, sockets' files, links, modes
    (devpts' pts, linked in, is carried apart: checkpoint/pty.py)."""
    m = k.mounts.mounts[1]
    return tmpfstree.save(m.fs, w, "dev.bin") if m.fstype == "devtmpfs" else None


def _save_propagation(k) -> list:
    """Each mount's peer group (0: none), master (the number of a mount of
    its master's group, -1: none) and whether it is unbindable, in the
    table's order (the root, /dev, then `mounts`)."""
    table = k.mounts.mounts
    if any(m.master is not None and m.master not in table for m in table):
        raise Refused("a slave mount whose master is not in the mount table")
    return [[m.group, table.index(m.master) if m.master is not None else -1, int(m.unbindable)] for m in table]


def _leased(f) -> bool:
    """Whether the file holds a lease (a regular file's are carried with
    its locks, filelocks.py, unless being broken: _lease_breaking)."""
    return lease.getlease(f) != F_UNLCK


def _lease_breaking(f) -> bool:
    """Whether the file holds a lease an opener is breaking."""
    le = lease.held(f)
    return le is not None and le.breaking


def _locked(f) -> bool:
    """Whether the file's inode has flock or record locks (vfs/locks.py),
    or the file a lease: what a fifo's file may not have."""
    st = getattr(f.inode, "locks_state", None)
    return bool(st and (st["flock"] or st["posix"])) or _leased(f)


def _changed_since(root, when: int) -> bool:
    """Whether any inode of a tmpfs tree changed (ctime) after when."""
    todo = [root]
    while todo:
        inode = todo.pop()
        if inode.ctime > when:
            return True
        todo.extend((getattr(inode, "children", None) or {}).values())
    return False


# -- freezing -------------------------------------------------------------------
def freeze(k) -> dict[int, tuple[object, bool]]:
    """Bring every task to a stop; returns host pid -> (its registers as
    saved, whether its stop was taken here), the registers of a task in a
    syscall already set back to make it again."""
    k.sched.loop.flush()
    running = [t for t in k.sched.tasks.values() if t.state is State.USER]
    for t in running:
        ptrace.interrupt(t.hpid)
    out = {}
    for t in running:
        st, _ = ptrace.wait_pid(t.hpid)
        if st & 0x7f != 0x7f:
            raise KernelError(E.ESRCH, f"checkpoint: task {t.tid} died while frozen")
        regs = ptrace.new_regs()
        ptrace.getregs(t.hpid, regs)
        in_call = (st >> 8) & 0xff == (0x80 | 5) or st >> 16 == 7 or \
            (st >> 16 == ptrace.EVENT_STOP and not regs.orig_rax >> 63 and _signed(regs.rax) in RESTART_ERRORS)
        if in_call:
            _restart(t, regs, regs.orig_rax & 0xFFFFFFFF)
        elif st >> 16 != ptrace.EVENT_STOP:
            out[t.hpid] = (regs, True)
            thaw(k, out)
            raise KernelError(E.EAGAIN, f"checkpoint: task {t.tid} stopped by host signal {(st >> 8) & 0x7f}, "
                              "try again")
        out[t.hpid] = (regs, True)
    for t in k.sched.tasks.values():
        if t.state is State.BLOCKED:
            restarts.write_back(t)
            ptrace.ensure_stopped(t.hpid)
            regs = ptrace.new_regs()
            ptrace.copy_regs(regs, t.regs)
            _restart(t, regs, t.in_syscall)
            out[t.hpid] = (regs, False)
    return out


def _restart(t, regs, nr: int) -> None:
    """regs made to enter syscall nr again (the `syscall` instruction is
    checked to be there)."""
    if t.mem.peek(regs.rip - 2, 2) != SYSCALL_INSN:
        raise KernelError(E.EINVAL, f"checkpoint: task {t.tid} is not at a syscall instruction")
    regs.rip -= 2
    regs.rax = nr
    regs.orig_rax = S64 - 1


def thaw(k, frozen: dict[int, tuple[object, bool]]) -> None:
    """Let the tasks whose stops freeze took run on (--leave-running, or
    a refused checkpoint): each from the registers saved, so a syscall it
    was entering is entered again and trapped as usual."""
    for hpid, (regs, taken) in frozen.items():
        if taken:
            ptrace.resume(hpid, regs, ptrace.REGS_ALL, ptrace.PTRACE_SYSEMU)


# -- saving -----------------------------------------------------------------------
def host_vmas(t) -> list:
    """The host mappings of a task's process, the stub page and [vsyscall] left out."""
    vmas = procinfo.task_vmas(t.hpid)
    if vmas is None:
        raise KernelError(E.ESRCH, f"checkpoint: cannot read the maps of task {t.tid}")
    return [v for v in vmas if not (v[0] < STUB_END and v[1] > STUB_BASE) and v[5] not in SKIP]


def _resident(t, start: int, end: int):
    """The runs (address, length) of an anonymous [start, end) whose pages
    the host holds (present or swapped, /proc/PID/pagemap): the rest was
    never touched, and reads as zeros; in pieces of at most image.CHUNK.
    An entry's top byte holds both bits: one translate and one search per
    piece find the runs, not a look at each entry."""
    pages = image.CHUNK // PAGE
    for first in range(start, end, image.CHUNK):
        n = min(pages, (end - first) // PAGE)
        raw = procinfo.task_pagemap(t.hpid, first // PAGE, n)
        if raw is None or len(raw) != 8 * n:
            raise KernelError(E.EIO, f"checkpoint: cannot read task {t.tid}'s page map at {first:#x}")
        held = raw[7::8].translate(HELD)
        for m in HELD_RUN.finditer(held):
            yield first + m.start() * PAGE, (m.end() - m.start()) * PAGE


def resident_pieces(t, start: int, end: int, ino: int):
    """(address, bytes) of what a private mapping may hold other than
    zeros, in pieces of at most image.CHUNK: the pages the host holds of
    anonymous memory, every page of a file mapping (its untouched pages
    show the file)."""
    for addr, n in _resident(t, start, end) if not ino else image.pieces(start, end):
        data = t.mem.peek(addr, n)
        if len(data) == n:
            yield addr, data
        elif ino:
            yield from _readable(t, addr, n, data)
        else:
            raise KernelError(E.EIO, f"checkpoint: cannot read task {t.tid}'s memory at {addr:#x}")


def _readable(t, addr: int, n: int, head: bytes):
    """A file mapping's piece that could not be read whole: the pages past
    the end of the file behind it, where the guest's own access faults
    (SIGBUS) as the read did, hold nothing and are left out; what lies
    before and between them (pages written copy-on-write) is kept."""
    got = len(head) // PAGE * PAGE
    if got:
        yield addr, head[:got]
    for a in range(addr + got, addr + n, PAGE):
        page = t.mem.peek(a, PAGE)
        if len(page) == PAGE:
            yield a, page


def nonzero_pages(t, start: int, end: int, ino: int):
    """(address, bytes) of each nonzero page of a private mapping."""
    for addr, data in resident_pieces(t, start, end, ino):
        for off, n in image.nonzero_runs(data):
            for i in range(off, off + n, PAGE):
                yield addr + i, data[i:i + PAGE]


def private_vmas(t):
    """(start, end, host inode) of the mappings whose contents an image
    carries: neither the host's vDSO block nor a shared mapping."""
    return [(start, end, ino) for start, end, perms, _off, ino, name in host_vmas(t)
            if name not in SPECIAL and perms[3] != "s"]


def _save_memory(t, out, shanon: sharedanon.Saver) -> tuple[list, dict]:
    """Every mapping's protection and contents (nonzero pages only, as runs
    into the process's memory blob); a shared file mapping by its range
    only (the restore maps the file again: `files` of the mm says which);
    the host's vDSO block apart."""
    vmas, special, pos = [], {}, 0
    for start, end, perms, _off, ino, name in host_vmas(t):
        if name in SPECIAL:
            special[name.decode()] = [start, end]
            if name == b"[vdso]":
                special["vdso_bytes"] = t.mem.peek(start, end - start).hex()
            continue
        prot = (C.PROT_READ if perms[0] == "r" else 0) | (C.PROT_WRITE if perms[1] == "w" else 0) \
            | (C.PROT_EXEC if perms[2] == "x" else 0)
        if perms[3] == "s" and name == sharedanon.HOST_NAME:
            vmas.append(shanon.vma(nonzero_pages(t, start, end, ino), start, end, prot, _off, ino))
            continue
        if perms[3] == "s" and _mapped_only_range(t.proc.mm, start, end):
            vmas.append(shanon.vma(nonzero_pages(t, start, end, ino), start, end, prot, _off, ino))
            continue
        if perms[3] == "s":
            pieces = t.proc.mm.files.overlapping(start, end)
            if sum(min(e, end) - max(s, start) for s, e, _fm in pieces) != end - start \
                    or not all(fm.shared and _shared_restorable(fm) for _s, _e, fm in pieces):
                raise Refused(f"task {t.tid}: a shared mapping at {start:#x}")
            vmas.extend({"start": max(s, start), "end": min(e, end), "prot": prot, "stack": False, "shared": True,
                         "runs": []} for s, e, _fm in pieces)
            continue
        runs: list[list[int]] = []
        for addr, n in out.write_memory(t, start, end, ino, resident_pieces):
            rel = addr - start
            if runs and runs[-1][0] + runs[-1][1] == rel:
                runs[-1][1] += n
            else:
                runs.append([rel, n, pos])
            pos += n
        vmas.append({"start": start, "end": end, "prot": prot, "stack": name == b"[stack]", "shared": False,
                     "runs": runs})
    return vmas, special


def _mapped_only(fm) -> bool:
    """A mapping of a memfd whose fds are all closed, or a shared one of a
    file with neither a name nor an fd left (a semaphore sem_open made
    and sem_unlink removed): only mappings hold the file, and the host's
    pages are all of it, so they are saved as shared anonymous memory is
    (checkpoint/sharedanon.py), by the host's inode, and the mm's `files`
    leave it out."""
    o = fm.obj
    if sys_memfd.is_memfd(fm.dentry):
        return o.open_count == 0
    return fm.shared and fm.dentry is not None and o is not None and o.nlink == 0 \
        and getattr(o, "open_count", 1) == 0


def _mapped_only_range(mm, start: int, end: int) -> bool:
    """The host's shared mapping [start, end) is one _mapped_only one."""
    pieces = mm.files.overlapping(start, end)
    return len(pieces) == 1 and _mapped_only(pieces[0][2])


def _save_mm(k, p, nameless: list) -> dict:
    """The mm's fields and file mappings; those of files with no name left
    also go to nameless, (entry, dentry), for unlinked.save_all."""
    mm = p.mm
    files = []
    out = {"brk_start": mm.brk_start, "brk": mm.brk, "start_stack": mm.start_stack,
           "arg_range": list(mm.arg_range), "env_range": list(mm.env_range),
           "saved_auxv": mm.saved_auxv.hex(), "dump_filter": mm.dump_filter,
           "ranges": [[s, e, int(c)] for s, e, c in mm.ranges], "files": files,
           "locked": [[s, e, fl] for s, e, fl in mm.locked.items], "def_locked": mm.def_locked}
    for s, e, fm in mm.files.items:
        if fm.dentry is not None and not _mapped_only(fm):
            files.append({"start": s, "end": e, **_place(k, fm.dentry), "origin": fm.origin,
                          "shared": fm.shared, "maywrite": fm.maywrite})
            if fm.dentry.inode.nlink == 0:
                nameless.append((files[-1], fm.dentry))
                if fm.obj is mm.exe and "exe_map" not in out:
                    out["exe_map"] = len(files) - 1     # a program with no name left: by its mapping
    return out


def _save_context(k, x, shares: Shares, opens: dict, pipes: dict, leader=None) -> dict:
    """A task's fd table and filesystem context: saved with it when it is
    the first task to hold them (`fds`; `cwd`, `root`, `umask`), else
    named by the tid of that task (`files_of`, `fs_of`); nothing for a
    thread sharing its leader's."""
    out: dict = {}
    if leader is None or x.files is not leader.files:
        first = shares.files[id(x.files)]
        out.update({"fds": _save_fds(k, x, opens, pipes)} if first == x.tid else {"files_of": first})
    if leader is None or x.fs is not leader.fs:
        first = shares.fs[id(x.fs)]
        out.update({"cwd": _path(k, x.fs.cwd), "root": _path(k, x.fs.root), "umask": x.fs.umask}
                   if first == x.tid else {"fs_of": first})
    return out


def _save_fds(k, t, opens: dict, pipes: dict) -> list:
    """The fd table: each fd names an open file description of the
    machine-wide list (`opens`, shared by fork and dup as on Linux)."""
    out = []
    for fd, f in sorted(t.files.files.items()):
        if id(f) not in opens:
            opens[id(f)] = (len(opens), _save_open(k, f, pipes), f)
        out.append({"fd": fd, "cloexec": fd in t.files.cloexec, "open": opens[id(f)][0]})
    return out


def _save_links(k, opens: dict, pipes: dict) -> None:
    """What names other open file descriptions, by their index in `files`:
    each epoll's interest list ([fd, the watched file, events, data,
    disabled (a EPOLLONESHOT that fired), changed (an edge not yet
    reported)]), a unix socket's peer, senders, backlog and files in
    flight (unixsock.py).  A description no fd holds (a connection not
    accepted, a file in flight) gets its entry here."""
    todo = list(opens.values())

    def index(g) -> int:
        if id(g) not in opens:
            if not _file_savable(g):
                raise Refused(f"a link to a file this version cannot save ({type(g).__name__})")
            opens[id(g)] = (len(opens), _save_open(k, g, pipes), g)
            todo.append(opens[id(g)])
        return opens[id(g)][0]
    while todo:
        _idx, e, f = todo.pop(0)
        if isinstance(f, EpollFile):
            for ent in f.entries.values():
                e["entries"].append([ent.fd, index(ent.file), ent.events, ent.data, int(ent.disabled),
                                     int(ent.changed)])
        elif isinstance(f, UnixSocket):
            e.update(unixsock.links(f, index))
        elif isinstance(f, InetSocket):
            e.update(inetsock.links(f, index))


def _save_locks(opens: dict, shares: Shares) -> None:
    """Each saved file's flock, OFD and record locks (filelocks.py), the
    record locks of an inode on the first of its descriptions."""
    seen: set[int] = set()
    for _i, e, f in sorted(opens.values(), key=lambda x: x[0]):
        if e.get("kind") != "file":
            continue
        try:
            held = filelocks.save(f, seen, shares.files)
        except KeyError:
            raise Refused(f"{e['path']}: a record lock of a process not saved") from None
        if held:
            e["locks"] = held


def _save_open(k, f, pipes: dict) -> dict:
    e = {"flags": f.flags}
    if isinstance(f, ConsoleFile):
        e["kind"] = "console"
    elif isinstance(f, PipeFile):
        e["kind"] = "pipe" if f.dentry is None else "fifo"
        if f.dentry is not None:        # a fifo's file: found again by its path
            e["path"] = _path(k, f.dentry)
        e["pipe"] = pipes.setdefault(id(f.pipe), (len(pipes), f.pipe))[0]
    elif isinstance(f, EventFdFile):
        e.update(kind="eventfd", count=f.count, semaphore=f.semaphore)
    elif isinstance(f, SignalFdFile):
        e.update(kind="signalfd", mask=f.mask, pid=f.proc.pid)     # the process whose signals it polls
    elif isinstance(f, PidFile):       # its process, or its pid once reaped (signals are ESRCH)
        e.update(kind="pidfd", pid=f.proc.pid, gone=k.procs.by_pid.get(f.proc.pid) is not f.proc)
    elif isinstance(f, EpollFile):
        e.update(kind="epoll", entries=[])      # filled by _save_links, once every file has its index
    elif isinstance(f, UnixSocket):
        e.update(unixsock.save(f, lambda d: _path(k, d)))
    elif isinstance(f, InetSocket):
        e.update(inetsock.save(f))
    elif netlinksock.savable(f):
        e.update(netlinksock.save(f))
    elif packetsock.handles(f):
        e.update(packetsock.save(f))
    elif pty.handles(f):
        e.update(pty.save_file(k, f))
    elif ttylines.handles(f):
        e.update(ttylines.save_file(k, f))
    elif inotify.handles(f):
        e.update(inotify.save(k, f))
    elif isinstance(f, TimerFdFile):
        e.update(kind="timerfd", clock=f.clk, ticks=f.ticks, **timers.state(f.timer))
    elif ipc.savable_file(f):
        e["kind"] = "mqueue"        # its queue's index: ipc.save
    elif f.flags & C.O_PATH:
        e.update(kind="path", **_place(k, f.dentry))
    else:
        e.update(kind="file", pos=f.pos, **_place(k, f.dentry))
    if f.owner is not None:     # F_SETOWN(_EX) and F_SETSIG, and who set them (sigio_perm)
        o = f.owner
        e["owner"] = [o.type, o.nr, o.uid, o.euid, o.signum]
    if f.async_fd is not None:  # O_ASYNC on, the fd its signals report
        e["async_fd"] = f.async_fd
    return e


def _save_sigq(sigq: dict) -> list:
    """Queued signals' information: [sig, si_code, fields] with fields the
    integers kill, SIGCHLD and faults give, or ["raw", hex, errno] for
    rt_sigqueueinfo's own bytes."""
    out = []
    for sig, q in sorted(sigq.items()):
        for code, fields in q:
            if fields[:1] == ("raw",):
                out.append([sig, code, ["raw", fields[1].hex(), fields[2] if len(fields) > 2 else 0]])
            elif fields[:1] == ("timer",):     # a POSIX timer's own signal, by the timer's id
                out.append([sig, code, ["timer", fields[1].id]])
            else:
                out.append([sig, code, list(fields)])
    return out


def _save_restart(t, regs) -> dict:
    """How the task goes on: from its registers, or (a wait with a
    relative timeout: checkpoint/restarts.py) by restart_syscall waiting
    what is left."""
    b = t.block
    if t.state is State.BLOCKED and b is not None:
        block = restarts.save(b.restart_fn)
        if block is not None:
            regs.rax = NR["restart_syscall"]
            return {"kind": "block", "block": block}
    return {"kind": "regs"}


def _save_stopped(t, regs) -> tuple[dict, object]:
    """A task in its process's group stop: SIGCONT ends the syscall it was
    leaving, if any, as it would have.  A restart by restart_syscall goes
    on to a relative wait's end (its time left kept, as a blocked task's
    is); any other such wait is made again whole, as a blocked task's is
    (its registers say ERESTARTNOINTR)."""
    out = {"kind": "stopped", "in_syscall": t.in_syscall}
    if t.in_syscall >= 0 and _signed(regs.rax) == -E.ERESTART_RESTARTBLOCK:
        block = restarts.save(t.restart_fn)
        if block is not None:
            out["block"] = block
        else:
            saved = ptrace.new_regs()
            ptrace.copy_regs(saved, regs)
            saved.rax = -E.ERESTARTNOINTR & (S64 - 1)
            regs = saved
    return out, regs


def _task_common(t) -> dict:
    """What a live task and a zombie's main thread both keep (/proc shows
    it until the reap): its tid and signals: its mask (a live task's own,
    the one to go back to, when it is in sigsuspend or a p-wait with a
    mask of the call's: asleep, stopped there, or restored into an epoll
    wait made again), pending and queued signals; its scheduling
    attributes (checkpoint/sched.py) and thread keyring
    (checkpoint/keyring.py)."""
    blocked = t.saved_mask if t.state is not State.DEAD and t.saved_mask is not None else t.blocked
    return {"tid": t.tid, "blocked": blocked, "pending": t.pending, "sigq": _save_sigq(t.sigq),
            "sched": sched.save(t.sched), "thread_keyring": keyring.save_task(t)}


def _save_task(t, frozen, secc: seccompstate.Saver) -> dict:
    """What is a task's own: its signals, registers and xstate, how it goes
    on, alternate stack, seccomp state and the words it leaves to the kernel."""
    regs = frozen[t.hpid][0] if t.hpid in frozen else t.regs
    if t.state is State.STOPPED:
        restart, regs = _save_stopped(t, regs)
    else:
        restart = _save_restart(t, regs)
    return {**_task_common(t),
            "altstack": list(t.altstack), "clear_child_tid": t.clear_child_tid, "robust_list": t.robust_list,
            "regs": {n: getattr(regs, n) for n in ptrace.REG_NAMES}, "restart": restart,
            "xstate": ptrace.get_xstate(t.hpid).hex(), "cpu": timers.save_task_cpu(t), "io": t.ioac.save(),
            **secc.task(t)}


def mem_blob(pid: int) -> str:
    """The name of process pid's memory blob."""
    return f"mem-{pid}.bin"


def _save_identity(k, p) -> dict:
    """What a process and a zombie both have: its ids and links, name,
    credentials, controlling tty, signal dispositions and the signals
    pending for the whole process."""
    c = p.creds
    return {
        "pid": p.pid, "ppid": p.parent.pid if p.parent else 0, "pgid": p.pgid, "sid": p.sid,
        "comm": p.comm.hex(), "start_ns": p.start_ns, "exit_signal": p.exit_signal,
        "console_ctty": p.ctty is k.console,
        **({"ctty_pty": p.ctty.pair.index} if pty.is_pty_slave(p.ctty) else {}), **ttylines.save_ctty(k, p),
        "creds": {"ids": [c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid],
                  "groups": list(c.groups),
                  "caps": [c.cap_inheritable, c.cap_permitted, c.cap_effective, c.cap_bset, c.cap_ambient],
                  "securebits": c.securebits},
        "sigactions": [list(a) for a in p.sighand.actions],
        "shared_pending": p.shared_pending, "shared_sigq": _save_sigq(p.sigq),
        "keyrings": keyring.save_process(p), "cgroup": cgroups.save_process(p),
        **timensstate.save_process(k, p),
    }


def _save_zombie(k, p) -> dict:
    """A process that exited and is not reaped yet: what wait4, waitid and
    /proc report of it (its wait status, its rusage and its waited-for
    children's, as sampled at its death) and its main thread's signals;
    no memory, no files, no threads."""
    u = p.usage if p.usage is not None else rusage.Usage()
    return {**_save_identity(k, p),
            "zombie": {"status": p.wait_status, "usage": timers.save_usage(u), "cusage": timers.save_usage(p.cusage),
                       "io": ioac.whole(p).save(),
                       "task": _task_common(p.leader)}}


def _save_process(k, p, frozen, w, opens: dict, pipes: dict, shanon: sharedanon.Saver, nameless: list,
                  secc: seccompstate.Saver, shares: Shares) -> dict:
    if p.zombie:
        return _save_zombie(k, p)
    t = p.leader
    blob = mem_blob(p.pid)
    with w.blob(blob) as out:
        vmas, special = _save_memory(t, out, shanon)
    return {
        **_save_identity(k, p),
        "exe_path": p.exe_path, "cmdline": [a.hex() for a in p.cmdline],
        "environ": [a.hex() for a in p.environ], "personality": p.personality,
        "flags": {"oom_score_adj": p.oom_score_adj, "oom_score_adj_min": p.oom_score_adj_min,
                  "ioprio": p.ioprio, "no_new_privs": p.no_new_privs, "dumpable": p.dumpable,
                  "child_subreaper": p.child_subreaper, "pdeath_signal": p.pdeath_signal, "execed": p.execed,
                  "stopped": p.stopped, "stop_report": p.stop_report,
                  "loginuid": p.loginuid, "sessionid": p.sessionid},
        "rlimits": [[r, s, h] for r, (s, h) in sorted(p.rlimits.items())],
        **timers.save_cpu(p), "itimers": timers.save_itimers(p), "posix_timers": timers.save_posix_timers(p), "next_timer_id": p.next_timer_id,
        **_save_context(k, t, shares, opens, pipes),
        **({"main_exited": True} if t.tid != p.pid else {}),
        "tasks": [{**_save_task(x, frozen, secc), **(_save_context(k, x, shares, opens, pipes, t) if x is not t else {})}
                  for x in p.threads],
        "mm": _save_mm(k, p, nameless), "memory": blob, "vmas": vmas, "special": special,
        "ipc": ipc.save_process(p),
    }


def save(k, make_writer) -> tuple[dict, object, int, int]:
    """Freeze the machine (check_supported first) and write it through the
    writer make_writer() gives once it is frozen (an image.Writer, or a
    migration's stream); returns what freeze stopped (for thaw), the
    writer, the number of processes and the image's size.  The disks are synced
    first, so they hold what the image's open files expect.  A failure
    thaws the machine."""
    check_supported(k)
    frozen = freeze(k)
    try:
        k.sync_all()
        w = make_writer()
        opens: dict = {}
        pipes: dict = {}
        shanon = sharedanon.Saver()
        nameless: list = []
        secc = seccompstate.Saver()
        shares = Shares(k)
        procs = [_save_process(k, p, frozen, w, opens, pipes, shanon, nameless, secc, shares)
                 for p in sorted(k.procs.by_pid.values(), key=lambda p: p.pid)]
        _save_links(k, opens, pipes)
        unlinked_blob = unlinked.save_all(w, opens, lambda d: _path(k, d), nameless)
        _save_locks(opens, shares)
        manifest = {
            "kernel": k.release, "cmdline": list(k.params.words), "created_ns": clock.realtime_ns(),
            "last_pid": k.procs.last_pid(k.init_ns.pid), "mounts": _save_mounts(k, w),
            "propagation": _save_propagation(k), "dev": _save_dev(k, w), "net": netstate.save(k),
            "console": {"session": k.console.session, "pgrp": k.console.pgrp}, "lines": ttylines.save_all(k),
            "ptys": pty.save_all(k),
            "processes": procs,
            "files": [e for _i, e, _f in sorted(opens.values(), key=lambda x: x[0])],
            "pipes": [{"id": i, "data": pp.buf.peek(len(pp.buf)).hex(), "size": pp.capacity}
                      for i, pp in pipes.values()],
            "ipc": ipc.save(k, w, opens), "keys": keyring.save(k),
            "netlink": netlinksock.save_table(k), "cgroups": cgroups.save(k),
            "cgroup_attrs": cgroups.save_attrs(k), "seccomp_filters": secc.filters,
            "time_namespaces": timensstate.save(k),
            "machine": machine.save(k),
        }
        if shanon.objects:
            manifest.update(shared_anon=shanon.save(w), shared_anon_blob=sharedanon.BLOB)
        if unlinked_blob is not None:
            manifest["unlinked_blob"] = unlinked_blob
        size = w.finish(manifest)
    except BaseException:
        thaw(k, frozen)
        raise
    return frozen, w, len(procs), size


def checkpoint(k, path: str) -> tuple[dict, str]:
    """Freeze and save the machine to path; returns what freeze stopped
    (for thaw) and a one-line summary."""
    started = clock.monotonic_ns()
    frozen, w, nprocs, size = save(k, lambda: image.Writer(path))
    took = (clock.monotonic_ns() - started) / 1e9
    msg = f"checkpoint: {nprocs} processes, {size >> 10}K written to {w.path} in {took:.3f}s"
    printk.pr_info(msg)
    return frozen, msg
