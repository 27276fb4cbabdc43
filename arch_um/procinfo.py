"""Host facts procfs shows in the guest's shape: a task's mappings, its
memory counters, the host CPU's description.

Every function answers None (or an empty value) when the host cannot tell,
so the kernel falls back to what it knows itself; the kernel rewrites or
filters everything it shows (host paths, the stub page) before the guest
sees it.
"""
import os
from typing import NamedTuple

from arch_um._hostcall import ffi, lib


def _read(path: str, limit: int = 1 << 20) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def thread_count(hpid: int) -> int:
    """How many host threads the host process hpid has (zombies among
    them), 0 if it is gone."""
    try:
        return len(os.listdir(f"/proc/{hpid}/task"))
    except OSError:
        return 0


def task_maps(hpid: int) -> bytes | None:
    """The host's /proc/<hpid>/maps of a guest task's host process."""
    return _read(f"/proc/{hpid}/maps", 16 << 20)


HostVma = tuple[int, int, str, int, int, bytes]    # start, end, perms, offset, inode, name


def task_vmas(hpid: int) -> list[HostVma] | None:
    """The host's mappings of a guest task's host process, parsed."""
    raw = task_maps(hpid)
    if raw is None:
        return None
    out = []
    for line in raw.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, _, hi = parts[0].partition(b"-")
        out.append((int(lo, 16), int(hi, 16), parts[1].decode(), int(parts[2], 16), int(parts[4]),
                    parts[5].strip() if len(parts) > 5 else b""))
    return out


def task_pagemap(hpid: int, first_page: int, count: int) -> bytes | None:
    """count 64-bit entries of the host's /proc/<hpid>/pagemap from page
    number first_page (the host's page-table view of a guest task)."""
    try:
        fd = os.open(f"/proc/{hpid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.pread(fd, 8 * count, 8 * first_page)
    except OSError:
        return None
    finally:
        os.close(fd)


def resident_pages(hpids: list[int]) -> int:
    """The resident pages of the host processes hpids, summed (statm's
    second field; those gone count nothing), in one call."""
    return lib.umlpy_resident_sum(ffi.new("int[]", hpids), len(hpids)) if hpids else 0


def task_statm(hpid: int) -> list[int] | None:
    """/proc/<hpid>/statm: size resident shared text lib data dt, in pages."""
    raw = _read(f"/proc/{hpid}/statm")
    if raw is None:
        return None
    try:
        vals = [int(v) for v in raw.split()]
    except ValueError:
        return None
    return vals if len(vals) == 7 else None


def cpuinfo() -> bytes:
    """The host's /proc/cpuinfo (empty if unreadable)."""
    return _read("/proc/cpuinfo") or b""


def fd_inode(fd: int) -> int | None:
    """The host inode number of one of the kernel's fds (a memfd), as the
    host's maps files name it."""
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return None


_PM_PRESENT, _PM_FILE_OR_SHARED_ANON = 1 << 63, 1 << 61


def _private_anon(hpid: int, addr: int) -> bool:
    """Whether addr is on a present page of private anonymous memory (its
    pagemap entry): no other process can share it, so there is no need to
    read and parse the whole maps file (the stack, the heap: most futexes)."""
    raw = task_pagemap(hpid, addr >> 12, 1)
    if raw is None or len(raw) != 8:
        return False
    v = int.from_bytes(raw, "little")
    return bool(v & _PM_PRESENT) and not v & _PM_FILE_OR_SHARED_ANON


def shared_key(hpid: int, addr: int) -> tuple[str, int, int] | None:
    """(device, inode, offset) of the shared host mapping holding addr in a
    guest task, or None if the page is private: a futex on memory shared
    between processes is keyed by what backs it, as Linux does.  The caller
    has just read the word, so its page is present."""
    if _private_anon(hpid, addr):
        return None
    raw = task_maps(hpid)
    if raw is None:
        return None
    for line in raw.splitlines():
        parts = line.split()
        lo, _, hi = parts[0].partition(b"-")
        start, end = int(lo, 16), int(hi, 16)
        if start <= addr < end:
            if parts[1][3:4] != b"s":
                return None
            return parts[3].decode(), int(parts[4]), int(parts[2], 16) + addr - start
    return None


class SmapsVma(NamedTuple):
    """One mapping of the host's smaps: its end, Rss, Pss and Anonymous
    (kB: anonymous pages are what Linux's anon_vma stands for) and its
    VmFlags (two-letter names: dd is VM_DONTDUMP, io VM_IO, ht hugetlb)."""
    end: int
    rss: int
    pss: int
    anon: int
    flags: frozenset


def task_smaps(hpid: int) -> dict[int, SmapsVma]:
    """start address -> SmapsVma of each mapping of a guest task's host
    process (its /proc/<hpid>/smaps)."""
    raw = _read(f"/proc/{hpid}/smaps", 64 << 20)
    out: dict[int, SmapsVma] = {}
    if raw is None:
        return out
    span = None
    fields: dict[bytes, int] = {}
    for line in raw.splitlines():
        key = line.split(b" ", 1)[0]
        if b"-" in key and not key.endswith(b":"):
            lo, _, hi = key.partition(b"-")
            span = (int(lo, 16), int(hi, 16))
            fields = {}
        elif span is None:
            continue
        elif key == b"VmFlags:":
            out[span[0]] = SmapsVma(span[1], fields.get(b"Rss:", 0), fields.get(b"Pss:", 0),
                                    fields.get(b"Anonymous:", 0),
                                    frozenset(f.decode() for f in line.split()[1:]))
        elif key in (b"Rss:", b"Pss:", b"Anonymous:"):
            fields[key] = int(line.split()[1])
    return out


def _kb_fields(raw: bytes | None, names: tuple[bytes, ...]) -> dict[str, int] | None:
    """The "Name:   N kB" lines of a host /proc file that are among names."""
    if raw is None:
        return None
    out = {}
    for line in raw.splitlines():
        key, sep, rest = line.partition(b":")
        if sep and key in names:
            try:
                out[key.decode()] = int(rest.split()[0])
            except (ValueError, IndexError):
                return None
    return out


def task_mem_status(hpid: int) -> dict[str, int] | None:
    """A host process's memory counters from /proc/<hpid>/status, in kB
    (kept by the host as counters: cheap to read)."""
    return _kb_fields(_read(f"/proc/{hpid}/status"),
                      (b"VmSize", b"RssAnon", b"RssFile", b"RssShmem", b"VmPTE", b"VmSwap"))


def involuntary_switches(hpid: int) -> int:
    """How often the host took the CPU from host thread hpid while it
    could run (its nonvoluntary_ctxt_switches): preemptions of its guest
    code, which the guest counts as its own; 0 if it is gone."""
    got = _kb_fields(_read(f"/proc/{hpid}/status"), (b"nonvoluntary_ctxt_switches",))
    return got.get("nonvoluntary_ctxt_switches", 0) if got else 0


def task_rollup(hpid: int) -> dict[str, int] | None:
    """Its proportional set sizes from /proc/<hpid>/smaps_rollup, in kB:
    summed over processes, a page shared by several counts once (a walk of
    its page tables: dearer than the status counters)."""
    return _kb_fields(_read(f"/proc/{hpid}/smaps_rollup"), (b"Pss_Anon", b"Pss_Shmem"))
