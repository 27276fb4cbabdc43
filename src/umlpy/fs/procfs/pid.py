"""/proc/PID and /proc/PID/task/TID: one directory per process and thread.

Entries are those of Linux's tgid_base_stuff that tools read (ps, top,
pgrep, pidof, kill, lsof-style fd walks, mount listings).  Everything
belongs to the process's effective user, so the 0400/0500 entries
(environ, fd/) are the owner's, as in Linux; links that reveal paths ask
for the owner or root at readlink, as Linux's ptrace access check does.
"""
from __future__ import annotations

from typing import Callable

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi.capability import (CAP_AUDIT_CONTROL, CAP_SETGID, CAP_SETUID,
                                  CAP_SYS_ADMIN, CAP_SYS_NICE, CAP_SYS_RESOURCE)
from umlpy.fs.procfs import maps, mounts, pagemap, pidmem, pidstat, timens
from umlpy.fs.procfs.base import Dir, GenFile, Link, ListingFile, VirtFs, number, parse_int
from umlpy.fs.procfs.target import Target, live
from umlpy.kernel.cred import capable
from umlpy.kernel import ioac, nsproxy, oom, userns
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import DUMP_FILTER_MASK
from umlpy.kernel.task import AUDIT_UNSET, State
from umlpy.vfs import namei, nsfs
from umlpy.vfs.pipe import PipeInode

TASK_COMM_LEN = 16


def reader_root(reader):
    return reader.fs.root if reader is not None else None


def path_of(dentry, reader) -> bytes:
    """A dentry as the reader sees it, ` (deleted)` once unlinked (d_path);
    ENAMETOOLONG when that and its NUL pass PATH_MAX (d_path's buffer)."""
    p = dentry.path(reader_root(reader))
    if dentry.unlinked():
        p += b" (deleted)"
    if len(p) >= C.PATH_MAX:
        raise KernelError(E.ENAMETOOLONG)
    return p


def file_link_name(f, reader) -> bytes:
    """What /proc/PID/fd/N points to for an open file."""
    inode = f.inode
    named = getattr(inode, "link_name", None)
    if named is not None:
        return named().encode()
    if isinstance(inode, PipeInode):
        return f"pipe:[{inode.ino}]".encode()
    if f.dentry is not None:
        return path_of(f.dentry, reader)
    return f"anon_inode:{f.kind}".encode()     # the shared anonymous inode (vfs/anon.py)


# -- the entries: factories (fs, key, target) -> inode ---------------------------

Maker = Callable[[VirtFs, tuple, Target], object]


def _file(show: Callable, mode: int = 0o444, store: Callable | None = None, lazy: bool = False) -> Maker:
    """show(target, reader) -> bytes; store(target, writer, data)."""
    def make(fs: VirtFs, key: tuple, tg: Target):
        st = (lambda task, data: store(tg, task, data)) if store is not None else None
        return GenFile(fs, key, lambda task: show(tg, task), st, mode, tg.owner, alive=tg.alive, lazy=lazy)
    return make


def _mounts_file(show: Callable) -> Maker:
    """mounts and mountinfo: poll says when the mount table changed."""
    def make(fs: VirtFs, key: tuple, tg: Target):
        return mounts.MountsFile(fs, key, lambda task: show(tg, task), None, 0o444, tg.owner,
                                 alive=tg.alive, table=tg.kernel.mounts)
    return make


def _link(target: Callable) -> Maker:
    """target(target, reader) -> bytes, computed at each readlink: exe,
    cwd, root, magic links in Linux (proc_get_link)."""
    def make(fs: VirtFs, key: tuple, tg: Target):
        link = Link(fs, key, lambda: target(tg, fs.current()), tg.owner, alive=tg.alive)
        link.is_magic = True
        return link
    return make


def _from_memory(proc, rng: tuple[int, int], kept: list[bytes]) -> bytes:
    """argv or envp as the process's memory holds them now (a program may
    rewrite its argv, as Linux shows), or as exec gave them."""
    if not live(proc):
        return b""
    lo, hi = rng
    mem = proc.mm.mem
    if mem is not None and hi > lo:
        data = mem.read_upto(lo, hi - lo)
        if len(data) == hi - lo:
            return data
    return b"".join(a + b"\0" for a in kept)


def _cmdline(tg: Target, reader) -> bytes:
    p = tg.proc()
    return _from_memory(p, p.mm.arg_range if live(p) else (0, 0), p.cmdline)


def _environ(tg: Target, reader) -> bytes:
    tg.check_access(reader)
    p = tg.proc()
    return _from_memory(p, p.mm.env_range if live(p) else (0, 0), p.environ)


def _auxv(tg: Target, reader) -> bytes:
    """The auxiliary vector exec gave, AT_NULL included (a debugger finds
    the program's entry and the interpreter's base there)."""
    tg.check_access(reader)
    p = tg.proc()
    return p.mm.saved_auxv if live(p) else b""


def _io(tg: Target, reader) -> bytes:
    """do_io_accounting: the process's reads and writes, its threads',
    ended ones' and waited children's (kernel/ioac.py); under task/, the
    thread's own."""
    tg.check_access(reader)
    return (ioac.whole(tg.proc()) if tg.whole else tg.task().ioac).text()


def _comm(tg: Target, reader) -> bytes:
    return tg.proc().comm + b"\n"


def _set_comm(tg: Target, writer, data: bytes) -> None:
    p = tg.proc()
    if writer is not None and writer.proc is not p:
        raise KernelError(E.EINVAL)       # only a thread of the process itself
    p.comm = data[:TASK_COMM_LEN - 1]


def _set_loginuid(tg: Target, writer, data: bytes) -> None:
    """proc_loginuid_write and audit_set_loginuid: a process sets its own
    login uid, once without privilege and again only with
    CAP_AUDIT_CONTROL; a valid uid starts a new audit session."""
    p = tg.proc()
    if writer is None or writer.proc is not p:
        raise KernelError(E.EPERM)
    try:
        uid = int(data.strip() or b"x", 10)
    except ValueError:
        raise KernelError(E.EINVAL) from None
    if not 0 <= uid <= AUDIT_UNSET:
        raise KernelError(E.EINVAL)
    if p.loginuid != AUDIT_UNSET and not capable(p.creds, CAP_AUDIT_CONTROL):
        raise KernelError(E.EPERM)
    p.loginuid = uid
    p.sessionid = tg.fs.kernel.procs.new_audit_session() if uid != AUDIT_UNSET else AUDIT_UNSET


def _oom_score(tg: Target, reader) -> bytes:
    return b"%d\n" % oom.oom_score(tg.fs.kernel, tg.proc())


def _oom_score_adj(tg: Target, reader) -> bytes:
    return b"%d\n" % tg.proc().oom_score_adj


def _oom_adj(tg: Target, reader) -> bytes:
    """The legacy oom_adj: oom_score_adj scaled to -17..15."""
    adj = tg.proc().oom_score_adj
    return b"%d\n" % (oom.OOM_ADJUST_MAX if adj == oom.OOM_SCORE_ADJ_MAX
                      else oom.cdiv(adj * -oom.OOM_DISABLE, oom.OOM_SCORE_ADJ_MAX))


def _parse_adj(data: bytes, lo: int, hi: int) -> int:
    """kstrtoint of the stripped text (C's notation), within [lo, hi]."""
    words = data.split()
    if len(words) != 1:
        raise KernelError(E.EINVAL)
    v = parse_int(words[0])
    if not lo <= v <= hi:
        raise KernelError(E.EINVAL)
    return v


def _set_oom_score_adj(tg: Target, writer, data: bytes) -> None:
    """__set_oom_adj: below oom_score_adj_min only with CAP_SYS_RESOURCE,
    and a privileged writer's value becomes the new floor."""
    v = _parse_adj(data, oom.OOM_SCORE_ADJ_MIN, oom.OOM_SCORE_ADJ_MAX)
    p = tg.proc()
    privileged = writer is None or capable(writer.proc.creds, CAP_SYS_RESOURCE)
    if v < p.oom_score_adj_min and not privileged:
        raise KernelError(E.EACCES)
    oom.set_adj(tg.fs.kernel, p, v, privileged)


def _set_oom_adj(tg: Target, writer, data: bytes) -> None:
    """The legacy oom_adj (-17 disables, 15 is the most): scaled to
    oom_score_adj; lowering it needs CAP_SYS_RESOURCE."""
    v = _parse_adj(data, oom.OOM_DISABLE, oom.OOM_ADJUST_MAX)
    adj = oom.OOM_SCORE_ADJ_MAX if v == oom.OOM_ADJUST_MAX \
        else oom.cdiv(v * oom.OOM_SCORE_ADJ_MAX, -oom.OOM_DISABLE)
    p = tg.proc()
    if adj < p.oom_score_adj and writer is not None and not capable(writer.proc.creds, CAP_SYS_RESOURCE):
        raise KernelError(E.EACCES)
    tg.fs.kernel.oom.legacy_used(writer.proc if writer is not None else None, p)
    oom.set_adj(tg.fs.kernel, p, adj, False)


def _status(tg: Target, reader) -> bytes:
    return pidstat.status_text(tg, maps.vm_sizes(tg.proc()), reader.proc.creds.user_ns if reader is not None else None)


def _mountinfo(tg: Target, reader) -> bytes:
    return mounts.mountinfo_text(tg)


def _not_exited(tg: Target):
    p = tg.proc()
    if p.exited:
        raise KernelError(E.ENOENT)
    return p


def _cwd(tg: Target, reader) -> bytes:
    tg.check_access(reader)
    return path_of(_not_exited(tg).fs.cwd, reader)


def _root(tg: Target, reader) -> bytes:
    tg.check_access(reader)
    return path_of(_not_exited(tg).fs.root, reader)


def _exe(tg: Target, reader) -> bytes:
    tg.check_access(reader)
    p = _not_exited(tg)
    if not p.exe_path:
        raise KernelError(E.ENOENT)
    exe = p.mm.exe if p.mm is not None else None
    # the program's file unlinked while it runs: d_path's mark
    return p.exe_bytes + (b" (deleted)" if exe is not None and exe.nlink == 0 else b"")


class _ExeFile:
    """What following /proc/PID/exe (or a map_files link) reaches: the
    program's own file, or the mapped one."""
    __slots__ = ("inode", "dentry")

    def __init__(self, inode, dentry) -> None:
        self.inode, self.dentry = inode, dentry


def _exe_link(fs: VirtFs, key: tuple, tg: Target) -> Link:
    """/proc/PID/exe: its text the program's path (" (deleted)" once its
    file is unlinked); followed, the program's own file (Linux's
    exe_file), by the name its mapping was made by, so that an unlinked
    or replaced program is still itself; by its path if no mapping of it
    is left."""
    def magic():
        reader = fs.current()
        tg.check_access(reader)
        p = _not_exited(tg)
        exe = p.mm.exe if p.mm is not None else None
        if exe is None:
            return None
        for _s, _e, fm in p.mm.files.items:
            if fm.obj is exe and fm.dentry is not None and fm.dentry.inode is exe:
                return _ExeFile(exe, fm.dentry)
        d = namei.lookup(reader, C.AT_FDCWD, p.exe_bytes)
        return _ExeFile(d.inode, d)
    return Link(fs, key, lambda: _exe(tg, fs.current()), tg.owner, alive=tg.alive, magic=magic)


def _personality(tg: Target, reader) -> bytes:
    tg.check_access(reader)
    return b"%08x\n" % tg.proc().personality


def _slack_task(tg: Target, current):
    """The thread whose timer slack /proc/PID/timerslack_ns is (the leader's);
    another thread's asks for CAP_SYS_NICE, reading or writing."""
    task = tg.task()
    if current is not None and task is not current and not capable(current.proc.creds, CAP_SYS_NICE):
        raise KernelError(E.EPERM)
    return task


def _timerslack(tg: Target, reader) -> bytes:
    return b"%d\n" % _slack_task(tg, reader).sched.timer_slack_ns


def _set_timerslack(tg: Target, writer, data: bytes) -> None:
    """kstrtoull, base 10: digits and one newline; 0 puts the default back."""
    text = data[:-1] if data.endswith(b"\n") else data
    digits = text[1:] if text.startswith(b"+") else text
    if not digits.isdigit():
        raise KernelError(E.EINVAL)
    slack = int(digits)
    if slack >> 64:
        raise KernelError(E.ERANGE)
    s = _slack_task(tg, writer).sched
    s.timer_slack_ns = slack or s.default_slack_ns


KSTRTOX_BUF = 66        # kstrtox_from_user parses at most this much of a write


def kstrtouint(data: bytes) -> int:
    """Linux's kstrtouint with base 0, as a proc file's write parses it: an
    optional '+', then 0x/0X hex, a leading 0 octal or decimal, at most one
    newline after; anything else EINVAL, past 32 bits ERANGE."""
    text = data[:KSTRTOX_BUF].split(b"\0", 1)[0]
    text = text[:-1] if text.endswith(b"\n") else text
    text = text[1:] if text.startswith(b"+") else text
    if text[:2].lower() == b"0x" and text[2:3].isalnum():
        base, digits = 16, text[2:]
    else:
        base, digits = (8 if text.startswith(b"0") else 10), text
    if not digits or digits.lower().strip(b"0123456789abcdef"[:base]):
        raise KernelError(E.EINVAL)
    value = int(digits, base)
    if value >> 32:
        raise KernelError(E.ERANGE)
    return value


def _coredump_filter(tg: Target, reader) -> bytes:
    """Which mappings a core holds (proc_coredump_filter_read): nothing for
    a process without an address space."""
    p = tg.proc()
    return b"%08x\n" % p.mm.dump_filter if live(p) else b""


def _set_coredump_filter(tg: Target, writer, data: bytes) -> None:
    """Only the filter's bits are kept; the rest of the value is ignored."""
    value = kstrtouint(data)
    p = tg.proc()
    if live(p):
        p.mm.dump_filter = value & DUMP_FILTER_MASK


def _id_map(which: str) -> Maker:
    """/proc/PID/{uid,gid,projid}_map: the process's user namespace's map
    (kernel/userns.py: reading, and the rules of its one write)."""
    def show(tg: Target, reader) -> bytes:
        own = reader.proc.creds.user_ns if reader is not None else None
        return userns.show_map(own, tg.proc().creds.user_ns, which)

    def store(tg: Target, writer, data: bytes) -> None:
        userns.write_map(writer.proc.creds, tg.proc().creds.user_ns, which, data,
                         CAP_SETGID if which == "gid_map" else CAP_SETUID, CAP_SYS_ADMIN)
    return _file(show, 0o644, store)


def _setgroups(tg: Target, reader) -> bytes:
    return b"allow\n" if getattr(tg.proc().creds.user_ns, "setgroups_allowed", True) else b"deny\n"


def _set_setgroups(tg: Target, writer, data: bytes) -> None:
    """proc_setgroups_write: "allow" or "deny" (kernel/userns.py's rules)."""
    word = data.strip(b" \t\n")
    if word not in (b"allow", b"deny"):
        raise KernelError(E.EINVAL)
    userns.write_setgroups(writer.proc.creds, tg.proc().creds.user_ns, word == b"allow", CAP_SYS_ADMIN)


def _const(value: str) -> Callable:
    b = (value + "\n").encode()
    return lambda tg, reader: b


def _fd_table(fs: VirtFs, key: tuple, tg: Target, make_one: Callable) -> tuple[Callable, Callable]:
    """The fd directory's table, and its lookup of one fd."""
    def table():
        p = tg.proc_or_none()
        if p is None or p.exited:
            return {}
        return {str(fd).encode(): (lambda fd=fd: make_one(fs, (*key, fd), tg, fd))
                for fd in sorted(p.fdtable.files)}

    def find(name: bytes):
        p = tg.proc_or_none()
        fd = number(name)
        if p is None or p.exited or fd not in p.fdtable.files:
            return None
        return lambda: make_one(fs, (*key, fd), tg, fd)
    return table, find


def _fd_link(fs: VirtFs, key: tuple, tg: Target, fd: int) -> Link:
    f = tg.proc().fdtable.files.get(fd)
    mode = 0
    if f is not None:
        mode = (0o500 if f.readable else 0) | (0o300 if f.writable else 0)

    def target() -> bytes:
        reader = fs.current()
        tg.check_access(reader)
        cur = tg.proc().fdtable.files.get(fd)
        if cur is None:
            raise KernelError(E.ENOENT)
        return file_link_name(cur, reader)

    def magic():
        tg.check_access(fs.current())
        return tg.proc().fdtable.files.get(fd)
    return Link(fs, key, target, tg.owner, mode, alive=lambda: tg.has_fd(fd), magic=magic, size=64)


def _fdinfo_file(fs: VirtFs, key: tuple, tg: Target, fd: int) -> GenFile:
    def show(reader) -> bytes:
        tg.check_access(reader)
        p = tg.proc()
        f = p.fdtable.files.get(fd)
        if f is None:
            raise KernelError(E.ENOENT)
        flags = f.flags | C.O_LARGEFILE | (C.O_CLOEXEC if fd in p.fdtable.cloexec else 0)
        m = f.dentry.mount if f.dentry is not None else None
        mnt = m.mnt_id if m is not None else 0
        ino = f.inode.ino if f.inode is not None else 0
        head = f"pos:\t{f.pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\nino:\t{ino}\n".encode()
        extra = getattr(f, "fdinfo", None)      # show_fdinfo of the file's kind
        if extra is not None:
            return head + extra()
        extra = getattr(f, "fdinfo_in", None)   # one that names pids: as this instance numbers them
        return head + extra(fs) if extra is not None else head
    return GenFile(fs, key, show, owner=tg.owner, alive=lambda: tg.has_fd(fd))


class _FdDir(Dir):
    """/proc/PID/fd and fdinfo: the process itself may always look in,
    even once its changed ids made the directory root's (proc_fd_permission:
    a thread of the same group passes whatever the mode says)."""

    def __init__(self, fs: VirtFs, key: tuple, table, find, mode: int, owner, tg: Target) -> None:
        super().__init__(fs, key, table, mode, owner, tg.alive, find)
        self.tg = tg

    def grants(self, creds) -> bool:
        p = self.tg.proc_or_none()
        return p is not None and p.creds is creds       # its threads share its creds


def _fd_dir(make_one: Callable, mode: int) -> Maker:
    def make(fs: VirtFs, key: tuple, tg: Target):
        return _FdDir(fs, key, *_fd_table(fs, key, tg, make_one), mode,
                      tg.dir_owner if mode == 0o555 else tg.owner, tg)
    return make


def _map_files_dir(fs: VirtFs, key: tuple, tg: Target) -> Dir:
    """/proc/PID/map_files (checkpoint/restore): a link per file mapping,
    named by its range as maps shows it, reading the file's path; listing
    needs ptrace read access, following (to the mapped file itself) also
    CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the initial user namespace
    (proc_map_files_get_link)."""
    def table():
        reader = fs.current()
        tg.check_access(reader)
        p = tg.proc_or_none()
        if p is None or p.exited:
            return {}
        return {f"{v.start:x}-{v.end:x}".encode(): (lambda v=v: _map_file_link(fs, (*key, v.start), tg, v))
                for v in maps.vmas_of(p) if v.ino}
    return Dir(fs, key, table, 0o500, tg.owner, tg.alive)


def _map_file_link(fs: VirtFs, key: tuple, tg: Target, v: maps.Vma) -> Link:
    # the mapped file's open mode (f_mode): read, and write for a shared writable mapping
    mode = 0o400 | (0o200 if v.perms[1] == "w" and v.perms[3] == "s" else 0)

    def magic():
        reader = fs.current()
        tg.check_access(reader)
        creds = reader.proc.creds if reader is not None else None
        if creds is not None and not userns.checkpoint_restore_capable(creds, None):
            raise KernelError(E.EPERM)
        p = _not_exited(tg)
        for s, e, fm in p.mm.files.items:
            if s <= v.start < e and fm.dentry is not None:
                return _ExeFile(fm.dentry.inode, fm.dentry)
        raise KernelError(E.ENOENT)
    return Link(fs, key, lambda: v.name, tg.owner, mode, alive=tg.alive, magic=magic, size=64)


def _ns_dir(fs: VirtFs, key: tuple, tg: Target) -> Dir:
    """/proc/PID/ns: a magic link per namespace kind, reading `uts:[INO]`
    and opening the namespace (for setns and the NS_GET_* ioctls); both
    ask for ptrace read access, as proc_ns_get_link does."""
    def ns_of(name: str):
        tg.check_access(fs.current())
        proc = _not_exited(tg)
        if name == "pid":
            return proc.pidns       # its own; pid_for_children is its nsproxy's
        return proc.ns.of(nsproxy.PROC_ENTRIES[name])

    def link(name: str) -> Link:
        return Link(fs, (*key, name), lambda: ns_of(name).name().encode(), tg.owner,
                    alive=tg.alive, magic=lambda: nsfs.inode_of(ns_of(name)).path())

    def table():
        return {name.encode(): (lambda name=name: link(name)) for name in nsproxy.PROC_ENTRIES}
    return Dir(fs, key, table, 0o511, tg.owner, tg.alive)


def _task_dir(fs: VirtFs, key: tuple, tg: Target) -> Dir:
    def tids() -> list[int]:
        """The threads listed (a zombie leader's process: its pid)."""
        p = tg.proc_or_none()
        if p is None:
            return []
        return [t.tid for t in p.threads if t.state is not State.DEAD] or [p.pid]

    def table():
        return {str(fs.vnr(tid)).encode(): (lambda tid=tid: pid_dir(fs, tg.pid, tid)) for tid in tids()}

    def find(name: bytes):
        tid = fs.global_of(name)
        return (lambda: pid_dir(fs, tg.pid, tid)) if tid and tid in tids() else None
    return Dir(fs, key, table, 0o555, tg.dir_owner, tg.alive, find)


# name -> maker, in Linux's listing order; "task" only in a process's directory
ENTRIES: list[tuple[str, Maker]] = [
    ("task", _task_dir),
    ("fd", _fd_dir(_fd_link, 0o500)),
    ("map_files", _map_files_dir),
    ("fdinfo", _fd_dir(_fdinfo_file, 0o555)),
    ("ns", _ns_dir),
    ("net", lambda fs, key, tg: fs.net_dir),
    ("environ", _file(_environ, 0o400)),
    ("auxv", _file(_auxv, 0o400)),
    ("status", _file(_status)),
    ("personality", _file(_personality, 0o400)),
    ("limits", _file(lambda tg, r: pidstat.limits_text(tg))),
    ("timens_offsets", timens.OffsetsInode),
    ("comm", _file(_comm, 0o644, _set_comm)),
    ("cmdline", _file(_cmdline)),
    ("stat", _file(pidstat.stat_text)),
    ("statm", _file(lambda tg, r: pidstat.statm_text(tg))),
    ("maps", _file(maps.maps_text)),
    ("smaps", _file(maps.smaps_text)),
    ("smaps_rollup", _file(maps.smaps_rollup_text)),
    ("mem", pidmem.MemInode),
    ("pagemap", pagemap.PagemapInode),
    ("cwd", _link(_cwd)),
    ("root", _link(_root)),
    ("exe", _exe_link),
    ("mounts", _mounts_file(lambda tg, r: mounts.mounts_text(tg))),
    ("mountinfo", _mounts_file(_mountinfo)),
    ("wchan", _file(_const("0"))),
    ("cgroup", _file(lambda tg, reader: f"0::{tg.proc().cgroup.path()}\n".encode(errors="surrogateescape"))),
    ("oom_adj", _file(_oom_adj, 0o644, _set_oom_adj)),
    ("oom_score", _file(_oom_score)),
    ("oom_score_adj", _file(_oom_score_adj, 0o644, _set_oom_score_adj)),
    ("loginuid", _file(lambda tg, r: b"%d" % tg.proc().loginuid, 0o644, _set_loginuid)),
    ("sessionid", _file(lambda tg, r: b"%d" % tg.proc().sessionid)),
    ("io", _file(_io, 0o400)),
    ("uid_map", _id_map("uid_map")),
    ("gid_map", _id_map("gid_map")),
    ("projid_map", _id_map("projid_map")),
    ("setgroups", _file(_setgroups, 0o644, _set_setgroups)),
    ("timerslack_ns", _file(_timerslack, 0o666, _set_timerslack, lazy=True)),
    ("coredump_filter", _file(_coredump_filter, 0o644, _set_coredump_filter)),
]
TGID_ONLY = {"task", "map_files", "timens_offsets", "timerslack_ns", "coredump_filter"}     # not in /proc/PID/task/TID


class TgidDir(Dir):
    """/proc/PID itself: open, it names the process it was opened for, as
    a pidfd does for pidfd_send_signal (Linux's tgid_pidfd_to_pid); a
    later process with the same pid is not that one."""

    def __init__(self, fs: VirtFs, key: tuple, table, tg: Target) -> None:
        super().__init__(fs, key, table, 0o555, tg.dir_owner, tg.alive)
        self.tg = tg

    def open_file(self, dentry, flags: int, task) -> ListingFile:
        f = super().open_file(dentry, flags, task)
        f.tgid_process = self.tg.proc_or_none()
        return f


def pid_dir(fs: VirtFs, pid: int, tid: int | None = None, whole: bool = False) -> Dir:
    """/proc/PID (tid None), /proc/PID/task/TID, or (whole) /proc/TID: a
    thread's own number looked up in /proc, a directory as its process's
    whose files name the thread (proc_pid_lookup finds any task)."""
    tg = Target(fs, pid, tid, whole or tid is None)
    key = ("pid", pid, ("tgid", tid) if whole else tid)
    entries = ENTRIES if tg.whole else [e for e in ENTRIES if e[0] not in TGID_ONLY]

    makers: dict = {}

    def table():
        if tg.proc_or_none() is None:
            return {}
        if not makers:      # once, at the first look inside (a listing of /proc makes thousands of these)
            makers.update((name.encode(), lambda name=name, make=make: make(fs, (*key, name), tg))
                          for name, make in entries)
        return makers
    if tg.whole:
        return TgidDir(fs, key, table, tg)
    return Dir(fs, key, table, 0o555, tg.dir_owner, tg.alive)
