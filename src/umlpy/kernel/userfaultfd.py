"""userfaultfd: missing pages of anonymous memory served by the guest.

Linux's fs/userfaultfd.c for UFFDIO_REGISTER_MODE_MISSING on private
anonymous memory.  The guest's memory is its host process's, and the
host's page tables are its page tables, so a registered page that is
missing (the host's pagemap shows it neither present nor swapped) is
*armed*: the kernel makes it PROT_NONE in the host process, remembering
the protection the guest gave it.  The guest's first touch is then a host
SIGSEGV stop at that page (`user_fault`); a copy the kernel makes for a
syscall fails there (`kernel_fault`; a file read that would return short
at such a page fails whole instead, `waits_at`).  Either way the faulting task gets
a uffd_msg queued on the context and waits (interruptibly: a signal runs
its handler and the access faults again) until UFFDIO_COPY or
UFFDIO_ZEROPAGE fills the page and wakes it, UFFDIO_WAKE or UNREGISTER
wakes it, or the context goes.  A filled page, or one no context serves
any more, is *disarmed*: its protection comes back (an injected mprotect
into a stopped task of that address space), so it behaves as plain
memory again.  Pages filled from another process are written through
/proc/PID/mem (which writes PROT_NONE private pages) and disarmed by the
faulting task itself when it runs again.

Deviations: the host does not say whether a fault was a read or a write,
so no UFFD_PAGEFAULT_FLAG_WRITE; no WP or MINOR modes (EINVAL, as a Linux
without them), no shmem or hugetlbfs ranges, no non-cooperative events
(fork, remap, remove, unmap: not offered in the features); a registered
range is tracked page by page, at most as many pages as the guest has
memory (ENOMEM beyond).  madvise(MADV_DONTNEED) arms the registered pages
it empties again.
"""
from __future__ import annotations

import struct
from collections import deque

from arch_um import procinfo, ptrace
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi import userfaultfd as U
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.kernel import printk
from umlpy.kernel.errors import Block, KernelError
from umlpy.kernel.mm import MMAP_MIN_ADDR, Intervals
from umlpy.kernel.task import State
from umlpy.kernel.wait import WaitQueue

PAGE = C.PAGE_SIZE
TASK_SIZE = 0x7FFFFFFFF000
# what this kernel offers: the fault's thread id, the exact address, SIGBUS
# instead of a message; no WP or MINOR (no arch support, as UML), no
# non-cooperative events, no shmem or hugetlbfs
FEATURES = U.UFFD_FEATURE_SIGBUS | U.UFFD_FEATURE_THREAD_ID | U.UFFD_FEATURE_EXACT_ADDRESS
SEGV_ACCERR = 2
_ENTRY = struct.Struct("<Q")     # a pagemap entry
BUS_ADRERR = 2


class Waiter:
    """A task waiting for a page (Linux's userfaultfd_wait_queue)."""
    __slots__ = ("task", "page", "msg", "wq", "woken")

    def __init__(self, task, page: int, msg: bytes) -> None:
        self.task, self.page, self.msg = task, page, msg
        self.wq = WaitQueue("userfaultfd fault")
        self.woken = False


class Ctx:
    """A userfaultfd context: the address space it serves, its features,
    the faults not yet read (pending) and those read but not yet woken."""

    def __init__(self, k, mm, flags: int) -> None:
        self.kernel = k
        self.mm = mm
        self.flags = flags
        self.features = 0
        self.ready = False          # UFFDIO_API done
        self.released = False
        self.pending: deque[Waiter] = deque()
        self.waiting: list[Waiter] = []
        self.fd_wq = WaitQueue("userfaultfd")

    def queue(self, task, page: int, addr: int) -> Waiter:
        exact = addr if self.features & U.UFFD_FEATURE_EXACT_ADDRESS else page
        ptid = task.tid if self.features & U.UFFD_FEATURE_THREAD_ID else 0
        w = Waiter(task, page, U.MSG.pack(U.UFFD_EVENT_PAGEFAULT, 0, 0, 0, 0, exact, ptid))
        self.pending.append(w)
        self.waiting.append(w)
        self.fd_wq.wake_all()
        return w

    def drop(self, w: Waiter) -> None:
        """The waiter is gone (woken, interrupted, killed)."""
        if w in self.waiting:
            self.waiting.remove(w)
        try:
            self.pending.remove(w)
        except ValueError:
            pass

    def take(self, count: int) -> list[Waiter]:
        """Up to count unread faults, oldest first (read(2))."""
        out = []
        while self.pending and len(out) < count:
            out.append(self.pending.popleft())
        return out

    def unread(self, ws: list[Waiter]) -> None:
        """A read whose copy failed gives its messages back."""
        for w in reversed(ws):
            if w in self.waiting and not w.woken:
                self.pending.appendleft(w)

    def wake(self, start: int, end: int) -> None:
        """wake_userfault: every fault on a page in [start, end) tries again."""
        for w in [w for w in self.waiting if start <= w.page < end]:
            self.drop(w)
            w.woken = True
            w.wq.wake_all()

    def release(self) -> None:
        """The last fd closed: the ranges are plain memory again, every
        waiter tries again (and finds it so)."""
        self.released = True
        self.wake(0, 1 << 64)
        mu = self.mm.uffd
        if mu is not None:
            for s, e, c in mu.regs.items:
                if c is self:
                    mu.unregister(s, e)
            mu.disarm_now(self.kernel)


class MmUffd:
    """An address space's userfaultfd state: registered ranges (value: the
    context), armed pages (PROT_NONE on the host: page -> the guest's
    protection) and which of them are still missing."""

    def __init__(self, mm) -> None:
        self.mm = mm
        self.regs = Intervals()
        self.armed: dict[int, int] = {}
        self.missing: set[int] = set()

    def served(self, page: int) -> Ctx | None:
        """The live context a missing page's fault goes to."""
        if page not in self.missing:
            return None
        ctx = self.regs.at(page)
        return ctx if ctx is not None and not ctx.released else None

    def unregister(self, start: int, end: int) -> None:
        self.regs.clear(start, end)
        self.missing.difference_update([p for p in self.missing if start <= p < end])

    def forget(self, start: int, end: int) -> None:
        """[start, end) was mapped anew or unmapped: its registration and
        armed pages went with the old mapping."""
        if self.regs.items:
            self.regs.clear(start, end)
        for p in [p for p in self.armed if start <= p < end]:
            del self.armed[p]
            self.missing.discard(p)

    def forked(self, mm) -> MmUffd:
        """A child's copy: no registrations (no UFFD_FEATURE_EVENT_FORK), but
        the host copied the armed pages' PROT_NONE: they disarm on touch."""
        n = MmUffd(mm)
        n.armed = dict(self.armed)
        return n

    def disarm(self, t, pages: list[int] | None = None) -> None:
        """Give pages (default: every armed page no context waits for) their
        protection back, injected into t, a stopped task of this address
        space."""
        if pages is None:
            pages = [p for p in self.armed if p not in self.missing or self.served(p) is None]
        runs: list[list[int]] = []
        for p in sorted(pages):
            prot = self.armed.pop(p, None)
            if prot is None:
                continue
            self.missing.discard(p)
            if runs and runs[-1][1] == p and runs[-1][2] == prot:
                runs[-1][1] = p + PAGE
            else:
                runs.append([p, p + PAGE, prot])
        for s, e, prot in runs:
            _inject(t, "mprotect", s, e - s, prot)

    def disarm_now(self, k) -> None:
        """Disarm what can be, if a task of this address space is stopped
        (else each page disarms when it is touched)."""
        t = _stopped_task(k, self.mm)
        if t is not None and self.armed:
            self.disarm(t)


def _inject(t, name: str, *args: int) -> int:
    r = ptrace.inject(t.hpid, t.regs, NR[name], *args)
    if r.fault or -4096 < r.result < 0:
        printk.pr_warn(f"userfaultfd: injected {name} failed ({r.result})")
    return r.result


def _stopped_task(k, mm):
    """A task of mm stopped in the kernel (the current one first), that
    host syscalls can be injected into; None if all run."""
    cur = k.sched.current
    if cur is not None and cur.proc.mm is mm and cur.state in (State.KERNEL, State.BLOCKED):
        return cur
    for p in k.procs.by_pid.values():
        if p.mm is mm:
            for t in p.threads:
                if t.state in (State.BLOCKED, State.KERNEL):
                    return t
    return None


def _mu(mm) -> MmUffd:
    if mm.uffd is None:
        mm.uffd = MmUffd(mm)
    return mm.uffd


# -- faults -------------------------------------------------------------------
def user_fault(k, t) -> bool:
    """A host SIGSEGV stop of t: if it is an armed page, the fault is
    userfaultfd's (True: t waits or goes on), else the guest's signal."""
    mu = t.proc.mm.uffd if t.proc.mm is not None else None
    if mu is None or not mu.armed:
        return False
    code, addr = ptrace.fault_info(t.hpid)
    page = addr & ~(PAGE - 1)
    if code != SEGV_ACCERR or not mu.armed.get(page):
        return False        # not armed, or PROT_NONE for the guest too: its SIGSEGV
    k.sched.run_fault(t, lambda: _user_fault(k, t, page, addr))
    return True


def _user_fault(k, t, page: int, addr: int) -> None:
    mu = t.proc.mm.uffd
    if mu is None or page not in mu.armed:
        return None         # disarmed meanwhile: the access goes again
    ctx = mu.served(page)
    if ctx is None:
        mu.disarm(t)
        return None
    if ctx.features & U.UFFD_FEATURE_SIGBUS:
        k.signals.force_sig(t, S.SIGBUS, BUS_ADRERR, (addr,))
        return None
    w = ctx.queue(t, page, addr)
    return _wait(ctx, w, lambda: _user_fault(k, t, page, addr), 0, None)


def _wait(ctx: Ctx, w: Waiter, again, restart: int, interrupted: int | None):
    def retry():
        if not w.woken:
            return _wait(ctx, w, again, restart, interrupted)
        return again()
    raise Block(w.wq, retry=retry, on_interrupt=lambda: ctx.drop(w), restart=restart,
                interrupted_result=interrupted)


def kernel_fault(k, t, addr: int | None, handler):
    """A copy to or from t's memory failed at addr during a syscall: if the
    page is armed, what to run instead of failing with EFAULT (the handler
    again once the page is there, or now if it only needed disarming);
    None: EFAULT it is."""
    mm = t.proc.mm
    mu = mm.uffd if mm is not None else None
    if mu is None or addr is None or not mu.armed:
        return None
    page = addr & ~(PAGE - 1)
    if not mu.armed.get(page):
        return None         # not armed, or PROT_NONE for the guest too
    ctx = mu.served(page)
    if ctx is None:
        mu.disarm(t)
        return handler
    if ctx.flags & U.UFFD_USER_MODE_ONLY or ctx.features & U.UFFD_FEATURE_SIGBUS:
        return None         # kernel faults are not this context's: EFAULT
    w = ctx.queue(t, page, addr)
    return lambda: _wait(ctx, w, lambda: (kernel_fault(k, t, addr, handler) or handler)(),
                         E.ERESTARTSYS, -E.EFAULT)


def waits_at(t, addr: int) -> bool:
    """Would a copy that stopped at addr wait there for a userfaultfd (a
    registered missing page some context serves kernel faults for)?  Such
    a copy fails whole (a GuestFault), so the call waits and runs again,
    rather than returning the short count a bad page gets."""
    mm = t.proc.mm
    mu = mm.uffd if mm is not None else None
    if mu is None or not mu.armed.get(addr & ~(PAGE - 1)):
        return False
    ctx = mu.served(addr & ~(PAGE - 1))
    return ctx is not None and not ctx.flags & U.UFFD_USER_MODE_ONLY \
        and not ctx.features & U.UFFD_FEATURE_SIGBUS


# -- the ioctls ---------------------------------------------------------------
def validate_range(start: int, length: int) -> int:
    """validate_range: page-aligned, non-empty, within user space; the end."""
    if start % PAGE or length % PAGE or not length or start < MMAP_MIN_ADDR \
            or start >= TASK_SIZE or length > TASK_SIZE - start:
        raise KernelError(E.EINVAL)
    return start + length


def _vmas(mm, start: int, end: int) -> list[tuple[int, int, str, int]]:
    """The host's mappings over [start, end), (start, end, perms, inode),
    as find_vma and the walk after it see them: ENOMEM if none ends past
    start, EINVAL if the first begins at or past end."""
    host = procinfo.task_vmas(mm.mem.pid) if mm.mem is not None else None
    if host is None:
        raise KernelError(E.ENOMEM)
    vmas = sorted((s, e, perms, ino) for s, e, perms, _off, ino, _name in host
                  if e > start and e <= TASK_SIZE and not (s < STUB_END and e > STUB_BASE))
    if not vmas:
        raise KernelError(E.ENOMEM)
    if vmas[0][0] >= end:
        raise KernelError(E.EINVAL)
    return [v for v in vmas if v[0] < end]


def _prot(perms: str) -> int:
    return ((C.PROT_READ if perms[0] == "r" else 0) | (C.PROT_WRITE if perms[1] == "w" else 0)
            | (C.PROT_EXEC if perms[2] == "x" else 0))


def _live_mm(ctx: Ctx):
    mm = ctx.mm
    if mm is None or mm.mem is None:
        raise KernelError(E.ESRCH)       # mmget_not_zero: the address space is gone
    return mm


def register(t, ctx: Ctx, start: int, length: int, mode: int) -> int:
    """UFFDIO_REGISTER: the ioctls the range now takes."""
    end = validate_range(start, length)
    if mode & ~(U.UFFDIO_REGISTER_MODE_MISSING | U.UFFDIO_REGISTER_MODE_WP | U.UFFDIO_REGISTER_MODE_MINOR) \
            or not mode & U.UFFDIO_REGISTER_MODE_MISSING:
        raise KernelError(E.EINVAL)
    if mode & (U.UFFDIO_REGISTER_MODE_WP | U.UFFDIO_REGISTER_MODE_MINOR):
        raise KernelError(E.EINVAL)      # no CONFIG_HAVE_ARCH_USERFAULTFD_WP / _MINOR
    mm = _live_mm(ctx)
    vmas = _vmas(mm, start, end)
    mu = _mu(mm)
    for s, e, perms, ino in vmas:
        if perms[3] != "p" or ino:
            printk.pr_info_ratelimited("userfaultfd: only private anonymous memory can be registered")
            raise KernelError(E.EINVAL)
        for _s, _e, other in mu.regs.overlapping(max(s, start), min(e, end)):
            if other is not ctx:
                raise KernelError(E.EBUSY)
    host = _stopped_task(t.kernel, mm)
    if host is None:
        raise KernelError(E.EINVAL)
    spans = [(max(s, start), min(e, end), _prot(perms)) for s, e, perms, _ino in vmas]
    # each page is tracked: no more of them than the guest has memory
    if sum(hi - lo for lo, hi, _p in spans) // PAGE + len(mu.armed) > mm.budget.limit // PAGE:
        printk.pr_info_ratelimited("userfaultfd: range larger than this kernel tracks (mem=)")
        raise KernelError(E.ENOMEM)
    maps = _pagemaps(mm, spans)
    for lo, hi, _p in spans:
        mu.regs.set(lo, hi, ctx)
    _arm(host, mu, spans, maps)
    return U.UFFD_API_RANGE_IOCTLS


def _pagemaps(mm, spans: list[tuple[int, int, int]]) -> list[bytes]:
    maps = [procinfo.task_pagemap(mm.mem.pid, lo // PAGE, (hi - lo) // PAGE) for lo, hi, _p in spans]
    if any(raw is None or len(raw) != 8 * ((hi - lo) // PAGE) for raw, (lo, hi, _p) in zip(maps, spans)):
        raise KernelError(E.ENOMEM)
    return maps


def _arm(host, mu: MmUffd, spans: list[tuple[int, int, int]], maps: list[bytes]) -> None:
    """Arm the pages of spans (start, end, the guest's protection) that the
    host's pagemap shows neither present nor swapped."""
    arm = []
    for raw, (lo, _hi, prot) in zip(maps, spans):
        for i, (entry,) in enumerate(_ENTRY.iter_unpack(raw)):
            p = lo + i * PAGE
            if not entry >> 62 & 3 and p not in mu.armed:
                mu.armed[p] = prot
                mu.missing.add(p)
                arm.append(p)
    _protect_none(host, arm)


def dropped(t, start: int, end: int) -> None:
    """madvise(MADV_DONTNEED) emptied [start, end): its registered pages
    are missing again."""
    mu = t.proc.mm.uffd
    if mu is None or not mu.regs.items:
        return
    regs = [(max(s, start), min(e, end)) for s, e, c in mu.regs.overlapping(start, end) if not c.released]
    if not regs:
        return
    try:
        spans = [(max(s, lo), min(e, hi), _prot(perms)) for lo, hi in regs
                 for s, e, perms, _ino in _vmas(t.proc.mm, lo, hi)]
        _arm(t, mu, spans, _pagemaps(t.proc.mm, spans))
    except KernelError:
        printk.pr_warn("userfaultfd: the host could not tell which pages madvise emptied")


def _protect_none(t, pages: list[int]) -> None:
    runs: list[list[int]] = []
    for p in pages:
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + PAGE
        else:
            runs.append([p, p + PAGE])
    for s, e in runs:
        _inject(t, "mprotect", s, e - s, C.PROT_NONE)


def reprotect(t, start: int, end: int, prot: int) -> None:
    """mprotect over armed pages: the guest's protection changes, the
    host's stays PROT_NONE until the page is filled or let go."""
    mu = t.proc.mm.uffd
    if mu is None:
        return
    pages = sorted(p for p in mu.armed if start <= p < end)
    for p in pages:
        mu.armed[p] = prot
    _protect_none(t, pages)


def unregister(t, ctx: Ctx, start: int, length: int) -> None:
    """UFFDIO_UNREGISTER: waiters on the range wake, it is plain memory."""
    end = validate_range(start, length)
    mm = _live_mm(ctx)
    vmas = _vmas(mm, start, end)
    if any(perms[3] != "p" or ino for _s, _e, perms, ino in vmas):
        raise KernelError(E.EINVAL)
    mu = mm.uffd
    if mu is None:
        return
    for s, e, c in mu.regs.overlapping(start, end):
        c.wake(max(s, start), min(e, end))
    mu.unregister(start, end)
    mu.disarm_now(t.kernel)


def wake(ctx: Ctx, start: int, length: int) -> None:
    end = validate_range(start, length)
    ctx.wake(start, end)


def fill(t, ctx: Ctx, dst: int, length: int, src: int | None, dontwake: bool) -> int:
    """UFFDIO_COPY (from src) or UFFDIO_ZEROPAGE (src None) into missing
    pages: the bytes filled, or the error of the first page."""
    end = validate_range(dst, length)
    mm = _live_mm(ctx)
    mu = mm.uffd
    covered = mu.regs.overlapping(dst, end) if mu is not None else []
    if sum(min(e, end) - max(s, dst) for s, e, _c in covered) != length:
        return -E.ENOENT        # find_dst_vma: not all registered
    done = 0
    err = 0
    for p in range(dst, end, PAGE):
        if p not in mu.missing:
            err = E.EEXIST
            break
        if src is not None:
            try:
                data = t.mem.read(src + (p - dst), PAGE)
                mm.mem.poke(p, data)
            except Exception:       # GuestFault of the source, or of the host write
                err = E.EFAULT
                break
        mu.missing.discard(p)
        done += PAGE
    if done:
        filled = list(range(dst, dst + done, PAGE))
        if t.proc.mm is mm:
            mu.disarm(t, filled)
        if not dontwake:
            ctx.wake(dst, dst + done)
    if not done and err:
        return -err
    return done
