"""/proc/PID/maps: the guest's view of its address space.

The host's page tables are the guest's, so the host's maps of the task's
host process are the truth about permissions and extents; they are
rewritten into the guest's view: the stub page is not the guest's and is
left out, file mappings (the host shows the page cache's memfds) name the
guest file when it is known (the executable, open files), the brk area is
`[heap]`, and no host path is shown.  If the host cannot tell, the kernel's
own list of ranges is shown instead.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from arch_um import procinfo
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.fs.procfs import pagemap
from umlpy.fs.procfs.mounts import dev_numbers
from umlpy.fs.procfs.target import Target, live
from umlpy.kernel.errors import KernelError
from umlpy.vfs import namei

# names the host may show that are Linux's own and leak nothing
_KEPT_PREFIXES = (b"[", b"/memfd:", b"/dev/zero", b"/SYSV")


@dataclass
class Vma:
    start: int
    end: int
    perms: str
    offset: int = 0
    dev: tuple[int, int] = (0, 0)
    ino: int = 0
    name: bytes = b""

    def line(self) -> bytes:
        head = (f"{self.start:08x}-{self.end:08x} {self.perms} {self.offset:08x} "
                f"{self.dev[0]:02x}:{self.dev[1]:02x} {self.ino} ").encode()
        if self.name:
            head = head.ljust(72) + b" " + self.name
        return head + b"\n"


def _guest_files(proc) -> dict[int, tuple[tuple[int, int], int, bytes]]:
    """host memfd inode -> (guest dev, guest ino, guest path) for the files
    this process may have mapped: its executable and its open files."""
    task = proc.threads[0]
    found: list[tuple[object, bytes]] = []
    if proc.exe_path:
        try:
            d = namei.lookup(task, C.AT_FDCWD, proc.exe_bytes)
            found.append((d.inode, proc.exe_bytes))
        except KernelError:
            pass
    for f in proc.fdtable.files.values():
        if f.dentry is not None and f.inode is not None and f.inode.is_reg \
                and getattr(f.inode, "data", None) is not None:
            found.append((f.inode, f.dentry.path(proc.fs.root)))
    out = {}
    for inode, path in found:
        try:
            mf = inode.memfile()
        except KernelError:
            continue
        hino = procinfo.fd_inode(mf.fd)
        if hino is not None:
            out[hino] = (dev_numbers(inode.fs), inode.ino, path)
    return out


def _mapped_file(proc, fm, start: int) -> tuple[tuple[int, int], int, bytes, int] | None:
    """The guest file a mapping at start was made of (mmap's record of it,
    fm: Linux's vm_file), and its offset there: a shared library, a file
    since closed; None for a SysV segment or /dev/zero, which keep the
    host's name."""
    d = getattr(fm, "dentry", None)
    if d is None or d.inode is not fm.obj:
        return None
    name = d.path(proc.fs.root) + (b" (deleted)" if d.unlinked() else b"")
    return dev_numbers(d.inode.fs), d.inode.ino, name, start - fm.origin


def _parse(proc, host: list[procinfo.HostVma], files: dict) -> list[Vma]:
    out = []
    for start, end, perms, offset, hino, name in host:
        if start < STUB_END and end > STUB_BASE:
            continue
        v = Vma(start, end, perms, offset)
        memfd = name.startswith(b"/memfd:")
        known = files.get(hino) if memfd else None
        kernel_name = None
        if known is None and (memfd or not name):
            fm = proc.mm.files.at(start) if proc.mm is not None else None
            found = _mapped_file(proc, fm, start)
            if found is not None:
                known = found[:3]
                if not name:    # a private file mapping the host holds as anonymous memory (a restore's copy)
                    v.offset = found[3]
            elif memfd:         # kernel pages with a name of their own (an AIO ring's "/[aio] (deleted)")
                kernel_name = getattr(getattr(fm, "obj", None), "maps_name", None)
        if known is not None:
            v.dev, v.ino, v.name = known
        elif kernel_name is not None:
            v.name = kernel_name
        elif name.startswith(_KEPT_PREFIXES):
            v.name = name
        out.append(v)
    return out


def _cut(v: Vma, lo: int, hi: int, **kw) -> Vma:
    """The part [lo, hi) of v, its file offset following."""
    n = Vma(lo, hi, v.perms, v.offset + (lo - v.start if v.ino else 0), v.dev, v.ino, v.name)
    for k, val in kw.items():
        setattr(n, k, val)
    return n


def _split_locked(vmas: list[Vma], mm) -> list[Vma]:
    """Linux splits a vma where an mlocked range begins or ends; the host's
    vma (never locked) is one: cut it there."""
    if not mm.locked.items:
        return vmas
    out = []
    for v in vmas:
        cuts = sorted({a for s, e, _ in mm.locked.overlapping(v.start, v.end) for a in (s, e)}
                      - {v.start, v.end})
        edges = [v.start, *cuts, v.end]
        out.extend(_cut(v, a, b) if cuts else v for a, b in zip(edges, edges[1:]))
    return out


def _mark_heap(vmas: list[Vma], mm) -> list[Vma]:
    """Anonymous memory over [brk_start, brk) is the heap; the host may have
    merged it with the bss before it: split there."""
    lo, hi = mm.brk_start, C.page_up(mm.brk)
    if hi <= lo:
        return vmas
    out = []
    for v in vmas:
        if v.name or v.ino or v.end <= lo or v.start >= hi:
            out.append(v)
            continue
        if v.start < lo:
            out.append(_cut(v, v.start, lo))
        out.append(_cut(v, max(v.start, lo), min(v.end, hi), name=b"[heap]"))
        if v.end > hi:
            out.append(_cut(v, hi, v.end))
    return out


def _perms(prot: int) -> str:
    return (("r" if prot & C.PROT_READ else "-") + ("w" if prot & C.PROT_WRITE else "-")
            + ("x" if prot & C.PROT_EXEC else "-") + "p")


def _unarm(vmas: list[Vma], mm) -> list[Vma]:
    """userfaultfd's armed pages are PROT_NONE on the host only: show the
    guest's protection, and one vma where the host split one for them."""
    armed = mm.uffd.armed if mm.uffd is not None else None
    if not armed:
        return vmas
    out: list[Vma] = []
    touched: set[int] = set()      # the pieces of split vmas: only they merge
    for v in vmas:
        pieces = [v]
        if not v.ino and not v.name and v.perms == "---p" \
                and any(p in armed for p in range(v.start, v.end, C.PAGE_SIZE)):
            pieces = [_cut(v, p, p + C.PAGE_SIZE, perms=_perms(armed[p]) if p in armed else v.perms)
                      for p in range(v.start, v.end, C.PAGE_SIZE)]
            touched.update(id(n) for n in pieces)
        for n in pieces:
            last = out[-1] if out else None
            if last is not None and (id(n) in touched or id(last) in touched) and last.end == n.start \
                    and not n.ino and not last.ino and not n.name and not last.name and last.perms == n.perms:
                last.end = n.end
                touched.add(id(last))
            else:
                out.append(n)
    return out


def vmas_of(proc) -> list[Vma]:
    if not live(proc):
        return []
    mm = proc.mm
    host = procinfo.task_vmas(proc.threads[0].hpid)
    if host is None:
        vmas = [Vma(s, e, "rw-p" if charged else "r--p") for s, e, charged in mm.ranges]
    else:
        vmas = _parse(proc, host, _guest_files(proc))
    return _split_locked(_mark_heap(_unarm(vmas, mm), mm), mm)


def maps_text(tg: Target, reader) -> bytes:
    tg.check_access(reader)
    return b"".join(v.line() for v in vmas_of(tg.proc()))


# the counters smaps shows as 0 (not tracked), in Linux 6.1's order; the
# rollup adds Pss_Anon, Pss_File and Pss_Shmem after Pss_Dirty
_SMAPS_ZERO = ("Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
               "Anonymous", "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped",
               "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss")


def _vmflags(v: Vma, locked: bool, dontdump: bool, charged: bool) -> str:
    """show_smap_vma_flags for what the kernel knows of v, in Linux's order,
    each followed by a space: what the permissions give (rd wr ex sh), what
    mprotect may give (mr mw me; ms shared), the stack's gd, mlock's lo,
    private writable memory accounted (ac) or not (nr: MAP_NORESERVE), and
    dd for a range left out of core dumps (MADV_DONTDUMP, which the host
    keeps)."""
    perms = v.perms
    shared = perms[3] == "s"
    flags = [f for c, f in zip(perms, ("rd", "wr", "ex", "sh")) if c not in "-p"]
    flags += ["mr", "mw", "me", "ms"] if shared else ["mr", "mw", "me"]
    stack = v.name == b"[stack]"
    if stack:
        flags.append("gd")
    if locked:
        flags.append("lo")
    if not shared and perms[1] == "w":
        flags.append("ac" if charged or stack else "nr")     # (exec's stack is always accounted)
    if dontdump:
        flags.append("dd")
    return "".join(f + " " for f in flags)


def _resident(proc, v: Vma, own: procinfo.SmapsVma | None, own_start: int) -> tuple[int, int]:
    """(Rss, Pss) in kB of v: the host's for its vma (own, the host vma v
    starts in, at own_start); a piece of a host vma (cut where the guest's
    vmas differ) counts its present pages in the host's pagemap, its Pss in
    the host vma's Pss/Rss ratio."""
    if own is not None and own_start == v.start and own.end == v.end:
        return own.rss, own.pss
    whole = (own.rss, own.pss) if own is not None and v.end <= own.end else (0, 0)
    kb = pagemap.present_pages(proc, v.start, v.end) * (C.PAGE_SIZE >> 10)
    return kb, kb * whole[1] // whole[0] if whole[0] else kb


def _counted(proc, vmas: list[Vma]):
    """Each vma with its (Rss, Pss, locked, dontdump); the host vma each
    starts in found by bisection (a scan per vma made smaps quadratic: 30 000
    mappings took minutes)."""
    host = procinfo.task_smaps(proc.threads[0].hpid) if proc.threads else {}
    starts = sorted(host)
    for v in vmas:
        i = bisect.bisect_right(starts, v.start) - 1
        own = host[starts[i]] if i >= 0 and v.start < host[starts[i]].end else None
        r, p = _resident(proc, v, own, starts[i] if own is not None else 0)
        locked = proc.mm.locked.at(v.start) is not None
        dontdump = own is not None and "dd" in own.flags
        yield v, r, p, locked, dontdump, proc.mm.charged_at(v.start)


def smaps_text(tg: Target, reader) -> bytes:
    """maps, each mapping followed by its counters: Size from the kernel's
    view, Rss and Pss from the host's page tables, Locked (Linux's Pss of
    a locked vma) from the kernel's mlock bookkeeping, the rest not
    tracked (0)."""
    tg.check_access(reader)
    proc = tg.proc()
    out = []
    for v, r, p, locked, dontdump, charged in _counted(proc, vmas_of(proc)):
        out.append(v.line())
        out.append((f"Size:           {(v.end - v.start) >> 10:8d} kB\n"
                    f"KernelPageSize:        4 kB\nMMUPageSize:           4 kB\n"
                    f"Rss:            {r:8d} kB\nPss:            {p:8d} kB\n"
                    + "".join(f"{(k + ':'):<16}{0:8d} kB\n" for k in _SMAPS_ZERO)
                    + f"Locked:         {p if locked else 0:8d} kB\n"
                    + "THPeligible:    0\nVmFlags: " + _vmflags(v, locked, dontdump, charged) + "\n").encode())
    return b"".join(out)


_ROLLUP_KINDS = ("Pss_Anon", "Pss_File", "Pss_Shmem")


def smaps_rollup_text(tg: Target, reader) -> bytes:
    """smaps summed over the address space (show_smaps_rollup): one header
    from the first mapping's start to the last one's end, the counters
    smaps tracks added up, Pss told apart by the kind of mapping."""
    tg.check_access(reader)
    proc = tg.proc()
    vmas = [v for v in vmas_of(proc) if v.name != b"[vsyscall]"]     # the gate vma is not the mm's
    if not vmas:
        return b""
    rss = pss = locked_pss = 0
    kinds = dict.fromkeys(_ROLLUP_KINDS, 0)
    for v, r, p, locked, _dontdump, _charged in _counted(proc, vmas):
        rss += r
        pss += p
        if locked:
            locked_pss += p
        shared_anon = v.perms[3] == "s" and (v.name.startswith((b"/dev/zero", b"/SYSV")) or not v.ino)
        kinds["Pss_Shmem" if shared_anon else "Pss_File" if v.ino else "Pss_Anon"] += p
    head = Vma(vmas[0].start, vmas[-1].end, "---p", name=b"[rollup]").line()
    rows = [("Rss", rss), ("Pss", pss), (_SMAPS_ZERO[0], 0), *kinds.items(),
            *((k, 0) for k in _SMAPS_ZERO[1:]), ("Locked", locked_pss)]
    return head + "".join(f"{(k + ':'):<16}{n:8d} kB\n" for k, n in rows).encode()


def vm_sizes(proc) -> dict[str, int]:
    """VmSize, VmStk, VmExe, VmLib, VmData (pages) as status counts them."""
    vmas = vmas_of(proc)
    if not vmas:
        return {}
    exe = proc.exe_bytes
    pages = {"size": 0, "stack": 0, "exe": 0, "lib": 0, "data": 0, "locked": proc.mm.locked_pages}
    for v in vmas:
        if v.name == b"[vsyscall]":
            continue        # the gate area, no vma: total_vm leaves it out (statm did)
        n = (v.end - v.start) // C.PAGE_SIZE
        pages["size"] += n
        if v.name == b"[stack]":
            pages["stack"] += n
        elif "x" in v.perms and v.name == exe:
            pages["exe"] += n
        elif "x" in v.perms and v.ino:
            pages["lib"] += n
        elif v.perms[1] == "w" and v.perms[3] == "p":
            pages["data"] += n
    return pages
