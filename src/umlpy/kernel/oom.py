"""Out of memory, as Linux's mm/oom_kill.c: past `mem=` the process with
the highest badness is killed.

The guest's memory is its host processes' memory, which they touch without
the kernel seeing it (no fault reaches umlpy), so the check is the kernel's
own, on a timer: while some guest task runs, a sample sums what its
processes hold as the host counts it (anonymous and shmem pages, each
shared page once: the proportional sizes of smaps_rollup; the page cache
of a mapped disk file is a kernel memfd, so it counts as shmem while
mapped, where Linux would reclaim it), and the shmem no process maps
(kernel/shmem.py: a memfd filled by write(2), a detached SysV segment).  A cheap bound
first (the resident sizes of statm, O(1) per process) spares the exact sum
while the guest is well below `mem=`.  The interval shrinks with the
headroom (the time a guest touching TOUCH_RATE needs to reach `mem=`,
between MIN_WAIT_NS and MAX_WAIT_NS), so a guest overshoots `mem=` by at
most what it touches in MIN_WAIT_NS; no timer runs while every guest task
sleeps.

Badness is oom_badness's: resident pages + swap + page tables, shifted by
oom_score_adj thousandths of RAM; the global init and oom_score_adj -1000
are never chosen.  Without a fault to catch, "the task
that allocates" (vm.oom_kill_allocating_task, and the "invoked oom-killer"
line) is the running process with the most anonymous memory.
"""
from __future__ import annotations

from arch_um import clock, procinfo
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.consts import PAGE_SIZE
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError
from umlpy.kernel.hostas import HostAs
from umlpy.kernel.mm import mapped_ids
from umlpy.kernel.process import Halt
from umlpy.kernel.task import State

OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000
OOM_DISABLE, OOM_ADJUST_MAX = -17, 15       # the legacy oom_adj's range
MIN_WAIT_NS = 10_000_000
MAX_WAIT_NS = 250_000_000
REAP_WAIT_NS = 1_000_000_000     # a victim not gone by then is passed over, as the oom_reaper's give-up
TOUCH_RATE = 4              # bytes a guest may touch per ns (4 GB/s): sets the interval
POPULATE_MIN = 1 << 20      # populate()'s smallest piece
SAMPLE_SHARE = 3            # a sample every 3 times its CPU cost at most: the timer takes at most a quarter of the kernel
PAGE_KB = PAGE_SIZE >> 10
GFP = "gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0"


def _spaces(k):
    """(process, host pid) of each live address space, once."""
    seen = set()
    for p in k.procs.by_pid.values():
        mm = p.mm
        if p.exited or mm is None or mm.mem is None or id(mm) in seen:
            continue
        seen.add(id(mm))
        yield p, mm.mem.pid


def usage(k) -> tuple[int, int]:
    """(anonymous, shmem) bytes the guest holds on the host: its processes'
    (each shared page once), and the pages of tmpfs files, memfds and SysV
    segments no process maps (kernel/shmem.py)."""
    anon = shmem = 0
    for _p, hpid in _spaces(k):
        r = procinfo.task_rollup(hpid) or {}
        anon += r.get("Pss_Anon", 0)
        shmem += r.get("Pss_Shmem", 0)
    return anon << 10, (shmem << 10) + k.mem_budget.shmem.unmapped(mapped_ids(k.procs))


def _resident_bound(k) -> int:
    """A cheap upper bound of usage(): every resident page, shared ones as
    often as they are mapped, file pages too, and all of shmem."""
    pages = procinfo.resident_pages([hpid for _p, hpid in _spaces(k)])
    return pages * PAGE_SIZE + k.mem_budget.shmem.in_ram()


def cdiv(a: int, b: int) -> int:
    """C's integer division: towards zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def set_adj(k, p, adj: int, floor: bool) -> None:
    """Set p's oom_score_adj (and its floor, for a privileged writer), and
    those of the other processes on its address space (CLONE_VM without
    CLONE_THREAD), as __set_oom_adj; a vfork child keeps its own."""
    group = [p]
    if p.vfork_wq is None and p.mm is not None:
        group += [q for q in k.procs.by_pid.values()
                  if q is not p and q.mm is p.mm and q.vfork_wq is None and q.pid != 1]
    for q in group:
        q.oom_score_adj = adj
        if floor:
            q.oom_score_adj_min = adj


def total_pages(k) -> int:
    """totalpages: RAM + swap."""
    b = k.mem_budget
    return max(1, (b.limit + b.swap) // PAGE_SIZE)


def _counters(p) -> dict[str, int]:
    mm = p.mm
    st = procinfo.task_mem_status(mm.mem.pid) if mm is not None and mm.mem is not None else None
    return st or {}


def _file_backed(obj) -> bool:
    """Is a mapped object's page cache file pages to Linux (a disk
    filesystem's), not shmem (tmpfs and memfds: swap-backed; a SysV
    segment, which has no filesystem here)?"""
    fs = getattr(obj, "fs", None)
    return fs is not None and not getattr(fs, "swap_backed", False)


def rss_kb(p, st: dict[str, int]) -> tuple[int, int, int]:
    """(anon, file, shmem) resident kB as Linux's mm counters, from the
    host's (st): the host counts every mapped guest file page as shmem, the
    page cache being kernel memfds; Linux counts a disk file's as a file
    page.  The non-anonymous pages of the mappings of such files move over
    (a walk of the host's smaps: for the kill line only)."""
    anon, file, shmem = st.get("RssAnon", 0), st.get("RssFile", 0), st.get("RssShmem", 0)
    moved = 0
    for start, vma in procinfo.task_smaps(p.mm.mem.pid).items():
        objs = [fm.obj for _s, _e, fm in p.mm.files.overlapping(start, vma.end)]
        if objs and all(_file_backed(o) for o in objs):
            moved += vma.rss - vma.anon
    moved = max(0, min(moved, shmem))
    return anon, file + moved, shmem - moved


def badness(k, p) -> int | None:
    """oom_badness: None for a process that may not be killed (the global
    init; a pid namespace's init may, as Linux's is_global_init says)."""
    if p.pid == 1 or p.exited or p.zombie or p.mm is None or p.mm.mem is None \
            or p.oom_score_adj == OOM_SCORE_ADJ_MIN:
        return None
    st = _counters(p)
    kb = sum(st.get(f, 0) for f in ("RssAnon", "RssFile", "RssShmem", "VmSwap", "VmPTE"))
    return kb // PAGE_KB + p.oom_score_adj * (total_pages(k) // 1000)


def oom_score(k, p) -> int:
    """/proc/PID/oom_score: badness on Linux 6.1's 0..2000 scale (0 for
    what is never chosen)."""
    b = badness(k, p)
    if b is None:
        return 0
    return max(0, (1000 + cdiv(b * 1000, total_pages(k))) * 2 // 3)


class OomKiller:
    def __init__(self, k) -> None:
        self.k = k
        self.timer = None
        self.headroom = k.mem_budget.limit
        self.cost = 0               # the kernel's CPU time the last sample took, ns
        self.victims: list = []     # (process, until): killed, not yet gone: no second kill meanwhile
        self.legacy_warned = False
        k.sched.oom = self

    def legacy_used(self, writer, target) -> None:
        """A write of /proc/PID/oom_adj: Linux's warning, once per boot."""
        if not self.legacy_warned and writer is not None:
            self.legacy_warned = True
            printk.pr_warn(f"{writer.comm.decode(errors='replace')} ({writer.pid}): /proc/{target.pid}/oom_adj "
                           f"is deprecated, please use /proc/{target.pid}/oom_score_adj instead.")

    def arm(self) -> None:
        """A guest task runs: sample within the time it could take to fill
        the headroom, but no sooner than SAMPLE_SHARE times the kernel CPU
        the last sample took (a sample reads every process's counters:
        thousands of processes would have the kernel do little else; CPU
        time, not elapsed: a loaded host's delays must not space samples
        out, or a fast toucher overshoots mem= and the wrong victim dies)."""
        wait = min(MAX_WAIT_NS, max(MIN_WAIT_NS, self.headroom // TOUCH_RATE))
        self.timer = self.k.sched.add_timer(clock.monotonic_ns() + max(wait, SAMPLE_SHARE * self.cost),
                                            self._sample)

    def room(self) -> int:
        """What the guest may still take before `mem=`, measured now (the
        cheap bound first); at most 0 when it is out of memory."""
        k = self.k
        limit = k.mem_budget.limit
        used = _resident_bound(k) + k.mem_budget.kmem
        if used >= limit:
            used = sum(usage(k)) + k.mem_budget.kmem
        return limit - used

    def _sample(self) -> None:
        self.timer = None
        k = self.k
        if not any(t.state is State.USER for t in k.sched.tasks.values()):
            return      # re-armed when one runs again
        began = clock.process_cpu_ns()      # the kernel's CPU, not a loaded host's delays
        room = self.room()
        if room <= 0:
            self.out_of_memory()
        self.headroom = max(0, room)
        self.cost = clock.process_cpu_ns() - began
        self.arm()

    def _allocating(self):
        """The running process with the most anonymous memory."""
        running = {t.proc for t in self.k.sched.tasks.values() if t.state is State.USER}
        best, most = None, -1
        for p in running:
            if p.mm is not None and p.mm.mem is not None:
                anon = _counters(p).get("RssAnon", 0)
                if anon > most:
                    best, most = p, anon
        return best

    def out_of_memory(self, cur=None) -> None:
        """cur: the process whose allocation failed, when the kernel knows
        it (populate()); else the likeliest one running."""
        k = self.k
        now = clock.monotonic_ns()
        self.victims = [(v, until) for v, until in self.victims if not v.exited and now < until]
        if self.victims:
            return      # its memory is on the way out (unless stuck: the reaper's MMF_OOM_SKIP)
        cur = cur or self._allocating()
        comm = cur.comm.decode(errors="replace") if cur is not None else "swapper"
        adj = cur.oom_score_adj if cur is not None else 0
        printk.pr_warn(f"{comm} invoked oom-killer: {GFP}, oom_score_adj={adj}")
        how = k.tunables.panic_on_oom
        if how:
            self._panic(f"Out of memory: {'compulsory' if how == 2 else 'system-wide'} "
                        "panic_on_oom is enabled")
        if k.tunables.oom_kill_allocating_task and cur is not None and badness(k, cur) is not None:
            self._kill(cur, "Out of memory (oom_kill_allocating_task)")
            return
        victim, worst = None, None
        for p in sorted(k.procs.by_pid.values(), key=lambda p: p.pid):
            b = badness(k, p)
            if b is not None and (worst is None or b > worst):
                victim, worst = p, b
        if victim is None:
            printk.pr_warn("Out of memory and no killable processes...")
            self._panic("System is deadlocked on memory")
        self._kill(victim, "Out of memory")

    @staticmethod
    def _panic(msg: str) -> None:
        raise Halt(-1) from KernelError(0, msg)

    def _kill(self, p, message: str) -> None:
        st = _counters(p)
        name = p.comm.decode(errors="replace")
        printk.pr_info(f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
                       f"global_oom,task_memcg=/,task={name},pid={p.pid},uid={p.creds.uid}")
        anon, file, shmem = rss_kb(p, st)
        printk.pr_err(f"{message}: Killed process {p.pid} ({name}) total-vm:{st.get('VmSize', 0)}kB, "
                      f"anon-rss:{anon}kB, file-rss:{file}kB, shmem-rss:{shmem}kB, UID:{p.creds.uid} "
                      f"pgtables:{st.get('VmPTE', 0)}kB oom_score_adj:{p.oom_score_adj}")
        self.k.signals.send_proc(p, S.SIGKILL, C.SI_KERNEL, force=True)     # SEND_SIG_PRIV
        self.k.vm_events["oom_kill"] += 1
        self.victims.append((p, clock.monotonic_ns() + REAP_WAIT_NS))
        # the host frees the killed process's pages as it goes, as the reaper
        printk.pr_info(f"oom_reaper: reaped process {p.pid} ({name}), now anon-rss:0kB, "
                       "file-rss:0kB, shmem-rss:0kB")


def populate(t, start: int, length: int, advice: int) -> int:
    """Fault [start, start + length) in on the host (MADV_POPULATE_READ or
    _WRITE: madvise's own, MAP_POPULATE's, mlock's), in pieces no larger
    than what `mem=` still has room for, measured before each: one
    injected call would fault in all the range holds while the kernel waits
    on it, past `mem=` and the sampling above (a MAP_NORESERVE terabyte,
    or a sparse file's page cache).  Out of room, the OOM killer acts and
    the answer is ENOMEM, as Linux's populate meets VM_FAULT_OOM; else the
    host's (0, or its error for the first piece that failed)."""
    oom = t.kernel.sched.oom
    has = HostAs(t)
    pos, end = start, start + length
    while pos < end:
        room = oom.room() if oom is not None else end - pos
        if room <= 0:
            oom.out_of_memory(t.proc)
            return -E.ENOMEM
        n = min(end - pos, max(POPULATE_MIN, room & ~(PAGE_SIZE - 1)))
        r = has.call("madvise", pos, n, advice)
        if r < 0:
            return r
        pos += n
    return 0
