"""Core dumps: Linux's fs/coredump.c (whether to dump, the file's name from
kernel.core_pattern, creating it) and binfmt_elf's elf_core_dump (an ELF
core file of the dying process).

It lives beside the syscalls because it names, unlinks and creates its
file exactly as unlink(2) and open(2) do, as the dying process (its fs ids,
cwd and umask).  The core is an x86-64 ET_CORE: the ELF header, one
PT_NOTE and a PT_LOAD per mapping (the host's mappings of the task, the
stub left out), the notes (NT_PRSTATUS, NT_FPREGSET and NT_X86_XSTATE per
thread; NT_PRPSINFO, NT_SIGINFO, NT_AUXV and NT_FILE once), then from the
next page each mapping's contents as coredump_filter and MADV_DONTDUMP
decide.  Memory is read a chunk at a time, and only what holds data:
the pages the host has of anonymous memory (its pagemap), the data of a
mapped file's page cache (SEEK_DATA, so a huge sparse file costs nothing);
the rest, pages of zeros and pages the host cannot give are holes, skipped
in a sparse file as Linux skips them.  RLIMIT_CORE bounds
what is written: a piece that would pass it ends the dump there, as
dump_emit; a write error (a full disk) ends it too.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from arch_um import procinfo, ptrace
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi.capability import SUID_DUMP_DISABLE, SUID_DUMP_ROOT
from umlpy.kernel import printk, rusage
from umlpy.kernel import timekeeping
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.hostas import randomizes
from umlpy.kernel.ipc import ShmSegment
from umlpy.kernel.mm import (DUMP_ANON_PRIVATE, DUMP_ANON_SHARED, DUMP_ELF_HEADERS, DUMP_HUGETLB_PRIVATE,
                             DUMP_HUGETLB_SHARED, DUMP_MAPPED_PRIVATE, DUMP_MAPPED_SHARED, FileMap)
from umlpy.kernel.signal import MIN_COREDUMP, pack_siginfo
from umlpy.kernel.task import FsContext, State
from umlpy.syscalls.sys_file import dentry_open, do_unlink, open_walk

PAGE = C.PAGE_SIZE
CHUNK_PAGES = 64                # memory read and written this many pages at a time
PAGEMAP_CHUNK = 1 << 16         # pagemap entries looked at per read (512 KiB)
_PM_PRESENT, _PM_SWAP = 1 << 63, 1 << 62
ELF_MAGIC = b"\x7fELF"
ET_CORE, EM_X86_64, PT_LOAD, PT_NOTE = 4, 62, 1, 4
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_SIGINFO, NT_FILE, NT_X86_XSTATE = 0x53494749, 0x46494c45, 0x202
PF_X, PF_W, PF_R = 1, 2, 4
PN_XNUM = 0xFFFF
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_NHDR = struct.Struct("<III")
_PRSTATUS_HEAD = struct.Struct("<iiih2xQQiiii8q")       # up to pr_reg
_PRPSINFO = struct.Struct("<bcbb4xQIIiiii16s80s")
FXSAVE_SIZE = 512
# task flags a dying process shows in NT_PRPSINFO: PF_FORKNOEXEC,
# PF_DUMPCORE, PF_SIGNALED, PF_RANDOMIZE
PF_FORKNOEXEC, PF_DUMPCORE, PF_SIGNALED, PF_RANDOMIZE = 0x40, 0x200, 0x400, 0x400000
ELF_PRARGSZ = 80
# the kernel's own mappings, always dumped whole (always_dump_vma)
_SPECIAL = frozenset((b"[vdso]", b"[vvar]", b"[vvar_vclock]", b"[vsyscall]", b"[uprobes]"))


class Seg(NamedTuple):
    """One PT_LOAD: a mapping, its flags, how much of it is dumped, what
    it shows (a FileMap, or None: anonymous or the kernel's own), whether
    it is shared, whether it is the kernel's ([vdso], ...)."""
    start: int
    end: int
    flags: int
    dump: int
    fm: FileMap | None
    shared: bool
    special: bool


# -- kernel.core_pattern -------------------------------------------------------

def _escaped(s: bytes) -> bytes:
    """cn_esc_printf: a name put in a path may not make directories ('/'
    becomes '!'), nor be "." or ".." on its own."""
    s = s.replace(b"/", b"!")
    return b"!" + s[1:] if s in (b".", b"..") else s


def format_corename(pattern: bytes, t, sig: int, limit: int) -> bytes:
    """The core file's name as Linux's format_corename expands a file
    pattern: %p/%P pid, %i/%I tid, %u/%g real ids, %d dumpability, %s the
    signal, %t the time, %h the host name, %e the command, %f and %E the
    executable (basename; path with '!' for '/'), %c RLIMIT_CORE, %%; other
    specifiers and a lone trailing % give nothing; kernel.core_uses_pid
    adds ".PID" to a name whose pattern has no %p."""
    proc = t.proc
    exe = proc.exe_bytes
    values = {
        # %p and %i as the process's own pid namespace numbers it, %P and %I the global ones
        b"p": b"%d" % t.kernel.procs.vnr(proc, proc.pid), b"P": b"%d" % proc.pid,
        b"i": b"%d" % t.kernel.procs.vnr(proc, t.tid), b"I": b"%d" % t.tid,
        b"u": b"%d" % proc.creds.uid, b"g": b"%d" % proc.creds.gid, b"d": b"%d" % proc.dumpable,
        b"s": b"%d" % sig, b"t": b"%d" % (timekeeping.realtime_ns() // 10**9),
        b"h": _escaped(proc.ns.uts.hostname.encode()), b"e": _escaped(proc.comm),
        b"f": _escaped(exe.rsplit(b"/", 1)[-1]), b"E": exe.replace(b"/", b"!"),
        b"c": b"%d" % limit, b"%": b"%",
    }
    out = []
    i = 0
    pid_in_pattern = False
    while i < len(pattern):
        c = pattern[i:i + 1]
        if c == b"%":
            spec = pattern[i + 1:i + 2]
            pid_in_pattern |= spec == b"p"
            out.append(values.get(spec, b""))
            i += 2
        else:
            out.append(c)
            i += 1
    if t.kernel.tunables.core_uses_pid and not pid_in_pattern:
        out.append(b"." + values[b"p"])
    return b"".join(out)


# -- the file ------------------------------------------------------------------

def _open_core(t, name: bytes, unlink: bool):
    """The core file, made new as Linux's do_coredump makes it: an old one
    of that name is unlinked first (not when dumping as root for a
    set-user-ID program), then O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 less
    the umask; it must be a regular file with one link, owned by the
    dumper's fs uid, with mode 0600 exactly.  None if any of that fails."""
    flags = C.O_CREAT | C.O_EXCL | C.O_RDWR | C.O_NOFOLLOW | C.O_LARGEFILE
    try:
        if unlink:
            try:
                do_unlink(t, C.AT_FDCWD, name, False)
            except KernelError:
                pass        # no such file is fine; anything else fails at the open
        d, created = open_walk(t, C.AT_FDCWD, name, flags, 0o600)
        f = dentry_open(t, d, flags, created).get()
    except (KernelError, Block):
        return None
    inode = f.inode
    if inode.nlink != 1 or not inode.is_reg or inode.uid != t.proc.creds.fsuid \
            or inode.mode & 0o677 != 0o600 or not f.writable:
        f.put()
        return None
    return f


class CoreWriter:
    """The core file as dump_emit and dump_skip see it: pieces written
    whole or not at all within RLIMIT_CORE (holes do not count), the
    first failure ending the dump."""

    def __init__(self, t, f, limit: int) -> None:
        self.t = t
        self.f = f
        self.limit = limit
        self.pos = 0
        self.written = 0
        self.ok = True

    def emit(self, data: bytes) -> bool:
        if not self.ok or self.written + len(data) > self.limit:
            self.ok = False
            return False
        try:
            done = self.f.pwrite(self.t, data, self.pos)
        except KernelError:
            done = -1
        if done != len(data):
            self.ok = False
            return False
        self.pos += done
        self.written += done
        return True

    def skip_to(self, pos: int) -> None:
        self.pos = max(self.pos, pos)

    def finish(self) -> None:
        """A dump that ends in a hole still has its full size (the last
        byte written, as do_coredump does)."""
        size = self.f.inode.size()
        if self.ok and self.pos > size:
            self.pos -= 1
            self.emit(b"\0")


# -- notes ---------------------------------------------------------------------

def note(name: bytes, ntype: int, desc: bytes) -> bytes:
    """An ELF note: name and description each padded to 4 bytes."""
    n = name + b"\0"
    return (_NHDR.pack(len(n), len(desc), ntype) + n.ljust(-(-len(n) // 4) * 4, b"\0")
            + desc.ljust(-(-len(desc) // 4) * 4, b"\0"))


def _timeval(ns: int) -> tuple[int, int]:
    return ns // 10**9, ns % 10**9 // 1000


def _prstatus(t, sig: int, regs, leader: bool) -> bytes:
    """struct elf_prstatus: the signal, pending and blocked sets, ids, CPU
    times (the whole group's for the leader), the registers, fpvalid."""
    proc = t.proc
    own = rusage.own(proc) if leader else rusage.of(t, rusage.RUSAGE_THREAD)
    vnr = _own_view(proc)
    parent = vnr(proc.parent.pid) if proc.parent is not None else 0
    head = _PRSTATUS_HEAD.pack(sig, 0, 0, sig, t.pending, t.blocked, vnr(t.tid), parent, vnr(proc.pgid),
                               vnr(proc.sid),
                               *_timeval(own.utime), *_timeval(own.stime),
                               *_timeval(proc.cusage.utime), *_timeval(proc.cusage.stime))
    gregs = struct.pack("<27Q", *(getattr(regs, n) & 0xFFFFFFFFFFFFFFFF for n in ptrace.REG_NAMES))
    return head + gregs + struct.pack("<i4x", 1)


def _prpsinfo(k, proc) -> bytes:
    """struct elf_prpsinfo: state R (it is running its own death), flags,
    real ids, pids, the command and the start of its arguments."""
    lo, hi = proc.mm.arg_range
    args = proc.mm.mem.read_upto(lo, min(hi - lo, ELF_PRARGSZ - 1)) if hi > lo else b""
    args = args.rstrip(b"\0").replace(b"\0", b" ")
    flags = PF_DUMPCORE | PF_SIGNALED | (0 if proc.execed else PF_FORKNOEXEC) \
        | (PF_RANDOMIZE if randomizes(k, proc) else 0)
    vnr = _own_view(proc)
    parent = vnr(proc.parent.pid) if proc.parent is not None else 0
    nice = proc.leader.sched.nice
    return _PRPSINFO.pack(0, b"R", 0, nice, flags, proc.creds.uid, proc.creds.gid, vnr(proc.pid), parent,
                          vnr(proc.pgid), vnr(proc.sid), proc.comm[:15], args)


def _own_view(proc):
    """A pid as the dumping process's pid namespace numbers it (the notes' ids)."""
    return lambda nr: proc.leader.kernel.procs.vnr(proc, nr)


def _file_note(proc, segs: list[Seg]) -> bytes:
    """NT_FILE: each file mapping's range, page offset and path (a file
    since unlinked " (deleted)"; /dev/zero and SysV segments as Linux
    names their shmem files)."""
    entries, names = [], []
    root = proc.fs.root
    for s in segs:
        got = proc.mm.files.overlapping(s.start, s.end)
        if not got:
            continue
        fm = got[0][2]
        if fm.dentry is not None:
            name = fm.dentry.path(root) + (b" (deleted)" if fm.dentry.unlinked() else b"")
        elif isinstance(fm.obj, ShmSegment):
            name = b"/SYSV%08x (deleted)" % (fm.obj.key & 0xFFFFFFFF)
        elif fm.obj is None and fm.shared:
            name = b"/dev/zero (deleted)"
        else:
            continue
        entries.append((s.start, s.end, (s.start - fm.origin) // PAGE))
        names.append(name + b"\0")
    head = struct.pack("<QQ", len(entries), PAGE)
    return head + b"".join(struct.pack("<QQQ", *e) for e in entries) + b"".join(names)


def _thread_regs(k, t, dumper) -> tuple[object, bytes] | None:
    """A thread's registers and xstate: the dumper's as it stopped; another
    thread is stopped first if it runs guest code (it dies with the
    process next)."""
    if t is dumper or t.state is not State.USER:
        regs = t.regs
    else:
        k.sched.loop.flush()
        regs = ptrace.new_regs()
        if not ptrace.stop_for_dump(t.hpid, regs):
            return None
    try:
        xstate = ptrace.get_xstate(t.hpid)
    except ptrace.HostError:
        xstate = b""
    return regs, xstate


def _notes(k, t, sig: int, code: int, fields: tuple, segs: list[Seg]) -> bytes:
    """The PT_NOTE's contents in Linux's order: the dumping thread's
    NT_PRSTATUS, the process's NT_PRPSINFO, NT_SIGINFO, NT_AUXV and
    NT_FILE, the thread's NT_FPREGSET and NT_X86_XSTATE; then each other
    thread's three."""
    proc = t.proc
    out = []
    others = [x for x in proc.threads if x is not t and x.state is not State.DEAD]
    for i, th in enumerate([t, *others]):
        got = _thread_regs(k, th, t)
        if got is None:
            continue
        regs, xstate = got
        out.append(note(b"CORE", NT_PRSTATUS, _prstatus(th, sig, regs, th is proc.leader)))
        if i == 0:
            out.append(note(b"CORE", NT_PRPSINFO, _prpsinfo(k, proc)))
            out.append(note(b"CORE", NT_SIGINFO, pack_siginfo(sig, code, fields)))
            out.append(note(b"CORE", NT_AUXV, proc.mm.saved_auxv))
            out.append(note(b"CORE", NT_FILE, _file_note(proc, segs)))
        if xstate:
            out.append(note(b"CORE", NT_FPREGSET, xstate[:FXSAVE_SIZE]))
            out.append(note(b"LINUX", NT_X86_XSTATE, xstate))
    return b"".join(out)


# -- which memory --------------------------------------------------------------

def _perm_flags(perms: str) -> int:
    return (PF_R if perms[0] == "r" else 0) | (PF_W if perms[1] == "w" else 0) \
        | (PF_X if perms[2] == "x" else 0)


def _dump_size(proc, vma: procinfo.HostVma, sm: procinfo.SmapsVma | None, fm: FileMap | None,
               filt: int) -> int:
    """How much of a mapping the core holds, as Linux's vma_dump_size:
    special mappings ([vdso], [vvar], [vsyscall]) whole; none of one
    marked MADV_DONTDUMP or VM_IO; shared ones by whether their file is
    gone (anonymous shared) or not; private ones whole if they hold
    anonymous pages (filter bit 0), else file mappings whole (bit 2) or
    only their ELF header page (bit 4)."""
    start, end, perms, _off, _ino, name = vma
    whole = end - start
    if name in _SPECIAL:
        return whole
    flags = sm.flags if sm is not None else frozenset()
    if "dd" in flags or "io" in flags:
        return 0
    if "ht" in flags:
        return whole if filt & (DUMP_HUGETLB_SHARED if perms[3] == "s" else DUMP_HUGETLB_PRIVATE) else 0
    if perms[3] == "s":
        gone = fm is None or fm.dentry is None or fm.dentry.inode.nlink == 0
        return whole if filt & (DUMP_ANON_SHARED if gone else DUMP_MAPPED_SHARED) else 0
    if sm is not None and sm.anon and filt & DUMP_ANON_PRIVATE:
        return whole
    if fm is None or fm.dentry is None:
        return 0
    if filt & DUMP_MAPPED_PRIVATE:
        return whole
    if filt & DUMP_ELF_HEADERS and start == fm.origin and perms[0] == "r":
        inode = fm.dentry.inode
        if inode.mode & 0o111 or proc.mm.mem.peek(start, 4) == ELF_MAGIC:
            return PAGE
    return 0


def _segments(proc) -> list[Seg]:
    """The PT_LOADs: the host's mappings of the task but the stub's, in
    address order (the vsyscall page last, as Linux's gate vma)."""
    hpid = proc.mm.mem.pid
    vmas = procinfo.task_vmas(hpid) or []
    smaps = procinfo.task_smaps(hpid)
    filt = proc.mm.dump_filter
    segs = []
    for vma in vmas:
        start, end = vma[0], vma[1]
        if start < STUB_END and end > STUB_BASE:
            continue
        got = proc.mm.files.overlapping(start, end)
        fm = got[0][2] if got else None
        size = _dump_size(proc, vma, smaps.get(start), fm, filt)
        segs.append(Seg(start, end, _perm_flags(vma[2]), size, fm, vma[2][3] == "s", vma[5] in _SPECIAL))
    return segs


def _present_runs(hpid: int, start: int, end: int):
    """[lo, hi) runs of pages of [start, end) that are in memory or swap
    (the host's pagemap, read in bounded pieces; the rest is holes)."""
    first, last = start // PAGE, end // PAGE
    for base in range(first, last, PAGEMAP_CHUNK):
        n = min(PAGEMAP_CHUNK, last - base)
        raw = procinfo.task_pagemap(hpid, base, n)
        if raw is None:
            yield base * PAGE, (base + n) * PAGE       # the host cannot tell: read it all
            continue
        if raw.count(0) == len(raw):
            continue
        run = None
        for i, (v,) in enumerate(struct.iter_unpack("<Q", raw)):
            if v & (_PM_PRESENT | _PM_SWAP):
                if run is None:
                    run = base + i
            elif run is not None:
                yield run * PAGE, (base + i) * PAGE
                run = None
        if run is not None:
            yield run * PAGE, (base + len(raw) // 8) * PAGE


def _file_runs(memfile, start: int, end: int, origin: int):
    """[lo, hi) runs of [start, end) where the mapped file's page cache
    holds data (SEEK_DATA/SEEK_HOLE on its memfd): its holes read as zeros
    and are holes of the core, never pages the host would have to make."""
    pos, stop = start - origin, min(end - origin, C.page_up(memfile.size()))
    while pos < stop:
        try:
            data = memfile.seek(pos, C.SEEK_DATA)
        except OSError:
            return          # no data past pos
        if data >= stop:
            return
        hole = min(C.page_up(memfile.seek(data, C.SEEK_HOLE)), stop)
        yield C.page_down(data) + origin, hole + origin
        pos = hole


def _runs(hpid: int, s: Seg) -> list[tuple[int, int]]:
    """What of a dumped mapping is read: of anonymous private memory the
    pages the host has, of a file the data its page cache holds (and of a
    private one its copied pages), of the rest (shared anonymous memory,
    which mem= bounds; the kernel's own mappings) everything."""
    end = s.start + s.dump
    memfile = getattr(s.fm.obj, "memfile", None) if s.fm is not None else None
    if memfile is None:
        return [(s.start, end)] if s.special or s.shared else list(_present_runs(hpid, s.start, end))
    try:
        runs = list(_file_runs(memfile(), s.start, end, s.fm.origin))
    except KernelError:
        runs = []
    if not s.fm.shared:
        runs = sorted(runs + list(_present_runs(hpid, s.start, end)))
    merged: list[tuple[int, int]] = []
    for lo, hi in runs:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _dump_range(w: CoreWriter, mem, lo: int, hi: int) -> bool:
    """[lo, hi) of guest memory into the core a chunk at a time; pages of
    zeros are holes, and so is the rest of a chunk from the first page the
    host cannot give (past the end of a mapped file, [vvar])."""
    zero = bytes(PAGE)
    for addr in range(lo, hi, CHUNK_PAGES * PAGE):
        n = min(CHUNK_PAGES * PAGE, hi - addr)
        data = mem.peek(addr, n)
        data = data[:len(data) // PAGE * PAGE]
        for off in range(0, len(data), PAGE):
            page = data[off:off + PAGE]
            if page == zero:
                w.skip_to(w.pos + PAGE)
            elif not w.emit(page):
                return False
        w.skip_to(w.pos + n - len(data) // PAGE * PAGE)
    return True


def write_core(k, t, w: CoreWriter, sig: int, code: int, fields: tuple) -> None:
    """elf_core_dump: headers, notes, then from the next page the memory."""
    proc = t.proc
    segs = _segments(proc)
    notes = _notes(k, t, sig, code, fields, segs)
    nseg = len(segs) + 1
    phnum = min(nseg, PN_XNUM)
    ph_off = _EHDR.size
    note_off = ph_off + nseg * _PHDR.size
    data_off = -(-(note_off + len(notes)) // PAGE) * PAGE
    offsets, pos = [], data_off
    for s in segs:
        offsets.append(pos)
        pos += s.dump
    extnum = nseg >= PN_XNUM
    ident = ELF_MAGIC + bytes([2, 1, 1, 0]) + bytes(8)
    w.emit(_EHDR.pack(ident, ET_CORE, EM_X86_64, 1, 0, ph_off, pos if extnum else 0, 0, _EHDR.size,
                      _PHDR.size, phnum, _SHDR.size if extnum else 0, 1 if extnum else 0, 0))
    w.emit(_PHDR.pack(PT_NOTE, 0, note_off, 0, 0, len(notes), 0, 0))
    for s, off in zip(segs, offsets):
        w.emit(_PHDR.pack(PT_LOAD, s.flags, off, s.start, 0, s.dump, s.end - s.start, PAGE))
    w.emit(notes)
    w.skip_to(data_off)
    hpid = proc.mm.mem.pid
    for s, off in zip(segs, offsets):
        if not w.ok:
            return
        for lo, hi in _runs(hpid, s):
            w.skip_to(off + lo - s.start)
            if not _dump_range(w, proc.mm.mem, lo, hi):
                return
        w.skip_to(off + s.dump)
    if extnum:
        w.emit(_SHDR.pack(0, 0, 0, 0, 0, 0, 0, nseg, 0, 0))


# -- do_coredump ----------------------------------------------------------------

def _name(proc) -> str:
    return f"{proc.comm.decode(errors='replace')}[{proc.pid}]"


def do_coredump(k, t, sig: int, code: int, fields: tuple) -> bool:
    """A core for a death by sig, as Linux's do_coredump: none for a
    process that is not dumpable or has no address space; a pipe pattern
    is not supported (logged; the status still says dumped, as a helper
    would have taken it); a file only within an RLIMIT_CORE of a page or
    more, made as the process's fs ids (as root, and only by an absolute
    name from init's root, for a set-user-ID program under
    suid_dumpable 2).  True when the core file was written (the wait
    status's core flag), even cut short by RLIMIT_CORE."""
    proc = t.proc
    mm = proc.mm
    if mm is None or mm.mem is None or proc.dumpable == SUID_DUMP_DISABLE:
        return False
    pattern = k.tunables.core_pattern
    if pattern.startswith(b"|"):
        printk.pr_info(f"{_name(proc)} killed by signal {sig}: core dump not written "
                       f"(core_pattern {pattern.decode(errors='replace')!r}: umlpy runs no dump helpers)")
        return True
    limit = proc.rlimit(C.RLIMIT_CORE)[0]
    if limit < MIN_COREDUMP:
        return False
    name = format_corename(pattern, t, sig, limit)
    as_root = proc.dumpable == SUID_DUMP_ROOT
    if as_root and not name.startswith(b"/"):
        printk.pr_warn(f"Pid {proc.pid}({proc.comm.decode(errors='replace')}) can only dump core "
                       "to fully qualified path!")
        return False
    creds, fs = proc.creds, t.fs
    if as_root:
        root_creds = creds.copy()
        root_creds.fsuid = root_creds.fsgid = 0
        proc.creds = root_creds
        init = k.procs.by_pid.get(1)
        init_root = init.fs.root if init is not None else fs.root
        t.fs = FsContext(init_root, init_root, fs.umask)
    try:
        f = _open_core(t, name, unlink=not as_root)
        if f is None:
            return False
        try:
            f.inode.truncate(0)
            w = CoreWriter(t, f, limit)
            write_core(k, t, w, sig, code, fields)
            w.finish()
        finally:
            f.put()
    finally:
        proc.creds, t.fs = creds, fs
    return True
