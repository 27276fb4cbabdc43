"""execve: the kernel is the ELF loader.

The task's host process execs the stub (kernel/hostas.py, wiping its
address space); then
the kernel maps the program's PT_LOAD segments (and its interpreter's) from
the page cache's memfds with injected mmap, builds the initial stack (argv,
envp, auxv) and points the registers at the entry.  `#!` scripts are
resolved here.  Before the point of no return, the program and its
interpreter are opened and read as Linux's do_open_execat and kernel_read
do (fs/binprm.py: fsnotify's events, fanotify's permission waits), so
that part is written in continuation style.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, TypeVar

from arch_um import clock
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import mount as MS
from umlpy.kernel import cred, printk, ptracer, timens
from umlpy.kernel.errors import KernelError
from umlpy.kernel.hostas import HostAs, randomizes
from umlpy.kernel.mm import FileMap, Mm
from umlpy.kernel.process import Halt
from umlpy.fs.binprm import Binprm, guarded, kernel_read, mount_has, open_exec
from umlpy.vfs import namei
from umlpy.vfs.perm import permission

ELF_MAGIC = b"\x7fELF"
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
ELF_ET_DYN_BASE = 0x555555554000
BRK_RANDOM_PAGES = (32 << 20) // C.PAGE_SIZE    # x86-64's arch_randomize_brk range
BINPRM_BUF_SIZE = 256       # what prepare_binprm reads first
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
R = TypeVar("R")


@dataclass
class Phdr:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass
class Elf:
    inode: object           # what its segments map (the file's mapped_inode)
    type: int
    entry: int
    phoff: int
    phnum: int
    phdrs: list[Phdr]
    interp: bytes | None


def read_elf(t, f, head: bytes, then: Callable[[Elf], R], main: bool = True) -> R:
    """load_elf_binary's reading of f: the ELF header from head (what was
    read first), the program headers and, for the program (main), the
    first PT_INTERP's name, each with kernel_read."""
    if len(head) < 64 or head[:4] != ELF_MAGIC:
        raise KernelError(E.ENOEXEC)
    (ident, etype, machine, _v, entry, phoff, _sh, _fl, _ehs, phentsize, phnum,
     *_rest) = _EHDR.unpack_from(head)
    if ident[4] != 2 or ident[5] != 1 or machine != 62 or etype not in (ET_EXEC, ET_DYN):
        raise KernelError(E.ENOEXEC)
    if phentsize != _PHDR.size or not 0 < phnum <= 256:
        raise KernelError(E.ENOEXEC)

    def parsed(raw: bytes) -> R:
        if len(raw) != phnum * _PHDR.size:
            raise KernelError(E.ENOEXEC)
        phdrs = [Phdr(ptype, flags, off, vaddr, filesz, memsz)
                 for ptype, flags, off, vaddr, _pa, filesz, memsz, _al in _PHDR.iter_unpack(raw)]
        elf = Elf(f.mapped_inode(), etype, entry, phoff, phnum, phdrs, None)
        interp = next((p for p in phdrs if p.type == PT_INTERP), None) if main else None
        if interp is None:
            return then(elf)
        if not 2 <= interp.filesz <= namei.PATH_MAX:
            raise KernelError(E.ENOEXEC)

        def named(name: bytes) -> R:
            if len(name) != interp.filesz or not name.endswith(b"\0"):
                raise KernelError(E.ENOEXEC)
            elf.interp = name.rstrip(b"\0")
            return then(elf)
        return kernel_read(t, f, interp.offset, interp.filesz, named)

    return kernel_read(t, f, phoff, phnum * _PHDR.size, parsed)


def _prot(flags: int) -> int:
    return ((C.PROT_READ if flags & 4 else 0) | (C.PROT_WRITE if flags & 2 else 0)
            | (C.PROT_EXEC if flags & 1 else 0))




def _load_segments(has: HostAs, elf: Elf, bias: int, mm, dentry) -> int:
    """Map every PT_LOAD of elf (found at dentry) at bias; returns the
    highest end address."""
    mem = has.t.mem
    memfile = elf.inode.memfile()
    tfd = has.open_kernel_fd(memfile.fd)
    top = 0
    try:
        for ph in elf.phdrs:
            if ph.type != PT_LOAD or ph.memsz == 0:
                continue
            if (ph.vaddr - ph.offset) % C.PAGE_SIZE:
                raise KernelError(E.ENOEXEC)
            prot = _prot(ph.flags)
            start = C.page_down(bias + ph.vaddr)
            file_end = bias + ph.vaddr + ph.filesz
            mem_end = bias + ph.vaddr + ph.memsz
            if ph.filesz:
                has.checked("mmap", start, C.page_up(file_end) - start, prot,
                            C.MAP_PRIVATE | C.MAP_FIXED, tfd, C.page_down(ph.offset))
                mm.add(start, C.page_up(file_end), bool(prot & C.PROT_WRITE))
                mm.map_file(start, C.page_up(file_end),
                             FileMap(elf.inode, start - C.page_down(ph.offset), False, True, dentry))
            if ph.memsz > ph.filesz:
                if ph.filesz and file_end % C.PAGE_SIZE:
                    mem.poke(file_end, bytes(C.page_up(file_end) - file_end))
                bss = C.page_up(file_end) if ph.filesz else start
                if C.page_up(mem_end) > bss:
                    has.checked("mmap", bss, C.page_up(mem_end) - bss, prot,
                                C.MAP_PRIVATE | C.MAP_FIXED | C.MAP_ANONYMOUS, -1, 0)
                    mm.add(bss, C.page_up(mem_end), True)
            top = max(top, C.page_up(mem_end))
    finally:
        has.call("close", tfd)
    return top


def _span(elf: Elf) -> tuple[int, int]:
    loads = [p for p in elf.phdrs if p.type == PT_LOAD]
    if not loads:
        raise KernelError(E.ENOEXEC)
    lo = C.page_down(min(p.vaddr for p in loads))
    hi = C.page_up(max(p.vaddr + p.memsz for p in loads))
    return lo, hi


def _phdr_addr(elf: Elf, bias: int) -> int:
    for p in elf.phdrs:
        if p.type == PT_PHDR:
            return bias + p.vaddr
    for p in elf.phdrs:
        if p.type == PT_LOAD and p.offset <= elf.phoff < p.offset + p.filesz:
            return bias + p.vaddr + (elf.phoff - p.offset)
    return 0


def _readable(inode, creds) -> bool:
    try:
        permission(inode, C.R_OK, creds)
    except KernelError:
        return False
    return True


@dataclass
class Image:
    """What exec found before the point of no return: the program (d,
    elf), the argv `#!` lines made, and the ELF interpreter's dentry and
    headers, if any."""
    d: object
    elf: Elf
    argv: list[bytes]
    interp: tuple[object, Elf] | None = None


def resolve(t, bprm: Binprm, path: bytes, argv: list[bytes], then: Callable[[Image], R],
            at: tuple[int, bytes, int] | None = None, script=None, depth: int = 0) -> R:
    """Follow `#!` lines (up to 4) to an ELF program, and open its
    interpreter: then() gets the Image.

    at: execveat's (dirfd, name, flags) for the first lookup (path is then
    the name it is known by); a symlink it must not follow is ELOOP.
    script: the open `#!` file whose interpreter path is, let go once
    that is open (exec_binprm's fput)."""
    if depth > 4:
        raise KernelError(E.ELOOP)
    report = True
    if at is not None:
        dirfd, name, flags = at
        d = namei.lookup(t, dirfd, name, follow=not flags & C.AT_SYMLINK_NOFOLLOW,
                         empty_ok=bool(flags & C.AT_EMPTY_PATH))
        report = bool(name)     # do_open_execat reports no open of an fd itself
    else:
        d = namei.lookup(t, C.AT_FDCWD, path)
    if d.inode.is_symlink:
        raise KernelError(E.ELOOP)

    def opened(f) -> R:
        if script is not None:
            bprm.put(script)
        return kernel_read(t, f, 0, BINPRM_BUF_SIZE, lambda head: handler(f, head))

    def handler(f, head: bytes) -> R:
        if head.startswith(b"#!"):
            line = head[2:].split(b"\n", 1)[0].strip()
            if not line:
                raise KernelError(E.ENOEXEC)
            interp, _, arg = line.replace(b"\t", b" ").partition(b" ")
            arg = arg.strip()
            new_argv = [interp] + ([arg] if arg else []) + [path] + argv[1:]
            return resolve(t, bprm, interp, new_argv, then, None, f, depth + 1)
        return read_elf(t, f, head, lambda elf: _interpreter(t, bprm, Image(d, elf, argv), then))

    return open_exec(t, bprm, d, opened, report)


def _interpreter(t, bprm: Binprm, img: Image, then: Callable[[Image], R]) -> R:
    """load_elf_binary before the point of no return: the interpreter
    opened as the program was (open_exec), its headers read."""
    if img.elf.interp is None:
        return then(img)
    idn = namei.lookup(t, C.AT_FDCWD, img.elf.interp)

    def found(ielf: Elf) -> R:
        img.interp = (idn, ielf)
        return then(img)
    return open_exec(t, bprm, idn, lambda f: kernel_read(
        t, f, 0, _EHDR.size, lambda head: read_elf(t, f, head, found, main=False)))


def build_stack(top: int, argv: list[bytes], envp: list[bytes], auxv: list[tuple[int, int]],
                execfn: bytes) -> tuple[int, bytes, bytes, int, int, bytes]:
    """The initial stack below `top`: (sp, the bytes from sp to the strings,
    the strings up to top, argv start, env start, the auxv as stored, up to
    AT_NULL: mm->saved_auxv).  The strings stay apart from the rest: joined,
    megabytes of arguments would be copied into fresh memory once more (each
    new page of it a host page fault)."""
    strings = b"\0".join([*argv, *envp, execfn, b""])     # each with its NUL, in one copy
    str_base = top - len(strings)
    info = (str_base - 32) & ~15
    rand_addr, plat_addr = info, info + 16
    ptrs = []
    p = str_base
    for a in argv + envp:
        ptrs.append(p)
        p += len(a) + 1
    execfn_addr = p
    full_aux = auxv + [(C.AT_RANDOM, rand_addr), (C.AT_EXECFN, execfn_addr),
                       (C.AT_PLATFORM, plat_addr), (C.AT_NULL, 0)]
    vec = [len(argv)] + ptrs[:len(argv)] + [0] + ptrs[len(argv):] + [0]
    for k, v in full_aux:
        vec += [k, v]
    sp = (info - 8 * len(vec)) & ~15
    head = bytearray(str_base - sp)
    struct.pack_into(f"<{len(vec)}Q", head, 0, *vec)
    head[rand_addr - sp:rand_addr - sp + 16] = clock.random_bytes(16)
    head[plat_addr - sp:plat_addr - sp + 7] = b"x86_64\0"
    aux_off = 8 * (len(vec) - 2 * len(full_aux))
    return (sp, bytes(head), strings, str_base, str_base + sum(len(a) + 1 for a in argv),
            bytes(head[aux_off:aux_off + 16 * len(full_aux)]))


# what the host leaves below a fresh image's stack pointer for sure: its
# execve grows the stack 128 KiB past the stub's own few arguments
STACK_ROOM = 96 << 10


def _grow_stack(has: HostAs, sp: int) -> None:
    """Arguments and environment larger than the room the host left: the
    process itself writes into the lowest page they need (an injected
    clock_gettime there), and the host grows its stack as it does for a
    fault of the process's own; a remote write (process_vm_writev) never
    grows a stack, so without this the initial stack would not fit."""
    has.call("clock_gettime", C.CLOCK_MONOTONIC, sp & ~(C.PAGE_SIZE - 1))


def random_pages(count: int) -> int:
    """A random whole number of pages below count pages, in bytes (count
    at most 2^32, as randomize_page's range)."""
    return int.from_bytes(clock.random_bytes(4), "little") % count * C.PAGE_SIZE


def setid_exec(t, img: Image) -> bool:
    """Whether the exec honours the program's set-user-ID or set-group-ID
    bit (bprm_fill_uid's checks): then the personality flags that would
    weaken the new image (ADDR_NO_RANDOMIZE among them) go before it is
    laid out, as Linux's per_clear does, so that setarch -R does not take
    a set-user-ID program's ASLR away."""
    return bool(cred.exec_setid_bits(t.proc, img.d.inode, mount_has(img.d, MS.MOUNT_ATTR_NOSUID)))


def load(k, t, img: Image, bprm: Binprm, envp: list[bytes], host_aux: dict[int, int],
         execfn: bytes) -> None:
    """Map the image's program (and its interpreter) into the fresh stub
    image and set up the task; the new address space holds the files."""
    d, elf, argv = img.d, img.elf, img.argv
    proc = t.proc
    mm = Mm(k.mem_budget)
    mm.mem = t.mem
    has = HostAs(t)
    lo, hi = _span(elf)
    bias = 0
    randomized = randomizes(k, proc)
    if elf.type == ET_DYN:
        # a randomised load base, as Linux's (28 bits of pages), unless the
        # process asked for ADDR_NO_RANDOMIZE (setarch -R) or ASLR is off
        rnd = random_pages(1 << 28) if randomized else 0
        bias = ELF_ET_DYN_BASE + rnd - lo
    top = _load_segments(has, elf, bias, mm, d)
    base = 0
    entry = bias + elf.entry
    if img.interp is not None:
        idn, ielf = img.interp
        ilo, ihi = _span(ielf)
        # let the host pick a free range the interpreter fits in
        region = has.checked("mmap", 0, ihi - ilo, C.PROT_NONE,
                             C.MAP_PRIVATE | C.MAP_ANONYMOUS, -1, 0)
        base = region - ilo if ielf.type == ET_DYN else 0
        _load_segments(has, ielf, base, mm, idn)
        entry = base + ielf.entry
    if randomized and k.tunables.randomize_va_space > 1:
        # the heap a random number of pages past the program, within 32 MiB (arch_randomize_brk)
        top += random_pages(BRK_RANDOM_PAGES)
    mm.brk_start = mm.brk = top
    tracer = t.ptrace.tracer if t.ptrace is not None else None
    if isinstance(tracer, ptracer.KernelTracer):
        tracer = None       # the kernel's own debugger is as privileged as the kernel
    secure = cred.exec_creds(proc, d.inode, mount_has(d, MS.MOUNT_ATTR_NOSUID), _readable(d.inode, proc.creds),
                             tracer)
    k.keys.exec(t)
    # a 64-bit program never reads-implies-exec (set_personality_64bit);
    # a set-id one drops the flags that would weaken it (PER_CLEAR_ON_SETID)
    proc.personality &= ~(C.READ_IMPLIES_EXEC | (C.PER_CLEAR_ON_SETID if secure else 0))
    creds = proc.creds
    auxv = [(C.AT_SYSINFO_EHDR, host_aux.get(C.AT_SYSINFO_EHDR, 0)),
            (C.AT_MINSIGSTKSZ, host_aux.get(C.AT_MINSIGSTKSZ, 2048)),
            (C.AT_HWCAP, host_aux.get(C.AT_HWCAP, 0)), (C.AT_PAGESZ, C.PAGE_SIZE),
            (C.AT_CLKTCK, 100), (C.AT_PHDR, _phdr_addr(elf, bias)), (C.AT_PHENT, _PHDR.size),
            (C.AT_PHNUM, elf.phnum), (C.AT_BASE, base), (C.AT_FLAGS, 0),
            (C.AT_ENTRY, bias + elf.entry), (C.AT_UID, creds.uid), (C.AT_EUID, creds.euid),
            (C.AT_GID, creds.gid), (C.AT_EGID, creds.egid), (C.AT_SECURE, int(secure)),
            (C.AT_HWCAP2, host_aux.get(C.AT_HWCAP2, 0))]
    if auxv[0][1]:
        k.vdso.patch(t.mem, auxv[0][1], timens.traps(proc.ns.time))
    else:
        auxv = auxv[1:]
    stack_top = (t.regs.rsp - 256) & ~15
    sp, head, strings, argstart, envstart, mm.saved_auxv = build_stack(stack_top, argv, envp, auxv, execfn)
    if stack_top - sp > STACK_ROOM:
        _grow_stack(has, sp)
    t.mem.write(sp, head)
    t.mem.write(argstart, strings)
    mm.start_stack = sp
    mm.arg_range = (argstart, envstart)
    mm.env_range = (envstart, envstart + sum(len(e) + 1 for e in envp))
    regs = t.regs
    for name in ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
                 "rax", "rcx", "rdx", "rsi", "rdi", "fs_base", "gs_base"):
        setattr(regs, name, 0)
    regs.orig_rax = (1 << 64) - 1
    regs.rip = entry
    regs.rsp = sp
    t.regs_dirty = True
    old = proc.mm
    if old is not None:
        mm.dump_filter = old.dump_filter
    mm.set_exe(d.inode)
    mm.held = [f.get() for f in bprm.files]
    proc.mm = mm
    if old is not None:
        if old.mem is not None and old.mem.closed:
            old.mem = None      # it was this task's handle, closed with the old image
        old.release()
    proc.exe_path = d.path(t.fs.root).decode("utf-8", "surrogateescape")    # any bytes, kept
    proc.comm = execfn.rsplit(b"/", 1)[-1][:15]
    proc.cmdline = list(argv)
    proc.environ = list(envp)
    proc.execed = True
    for hook in list(k.exec_hooks):
        hook(t)     # the gdb server waiting for this program (umlpy.debug)


def run_init(k, t, host_aux: dict[int, int], candidates: list[bytes], argv_tail: list[bytes],
             envp: list[bytes], explicit: bool) -> None:
    """Exec the first init that loads into the first task (kernel_init's
    run_init_process): an explicit init= is the only candidate; without
    one, Linux's list is tried in order."""
    last = None
    for path in candidates:
        bprm = Binprm()
        try:
            img = guarded(bprm, lambda: resolve(t, bprm, path, [path] + argv_tail, lambda i: i))
        except KernelError as e:
            last = e
            if explicit:
                break
            continue
        printk.pr_info(f"Run {path.decode()} as init process")
        try:
            load(k, t, img, bprm, envp, host_aux, path)
        finally:
            bprm.release()
        k.sched.resume_new(t)
        return
    if explicit:
        raise Halt(-1, reboot=False) from KernelError(
            last.errno if last else E.ENOENT,
            f"Requested init {candidates[0].decode()} failed (error {-(last.errno if last else 2)}).")
    raise Halt(-1) from KernelError(E.ENOENT, "No working init found.")
