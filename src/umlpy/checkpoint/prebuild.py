"""A migration's target builds the guest's address spaces while the
pre-copy runs, so that the downtime copies only what the final copy sent.

Why: the restore made every process's host memory afresh and copied the
image into it once the final copy had come; for a guest with 256 MiB
touched that was 135 ms of a 210 ms downtime, growing with the memory.
Here the target (`umlpy restore --listen`, before its kernel exists)
spawns a stub as the boot would (the template, with the kernel's seccomp
filter), clones it once per process whose pages come (a Space), maps
anonymous memory in that clone where each page is to live and writes the
page there.  A page sent again in a later round, or in the final copy,
is written again.  The restore (checkpoint/restore.py) then adopts a
Space as its process's host process: it keeps the pages the Space holds
inside the process's private mappings, clears those the final image says
are zero, unmaps the rest, and writes from the image only the pages the
Space lacks.

The Space's memory is the kernel's copy of the stream, not a guest's: no
guest code runs in it before the restore has made it the image's; and
the pages are checked as the stream is (page-aligned runs below the
task size, never on the stub's page or where the restore moves the vDSO
through).  A host where the template cannot be had (no seccomp listener,
a refused mapping) just goes without: every call here is an
optimisation, and the restore of the image stays complete alone.
"""
from __future__ import annotations

from types import SimpleNamespace

from arch_um import host, ptrace
from arch_um.memory import GuestFault, GuestMemory, TASK_SIZE
from arch_um.stub import STUB_BASE, STUB_END, Stub
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.checkpoint.dump import mem_blob
from umlpy.checkpoint.restore import HOST_MADV_HUGEPAGE, HUGE_PAGE, TEMP
from umlpy.kernel import hostas, trapset
from umlpy.kernel.errors import KernelError
from umlpy.kernel.mm import Intervals

PAGE = C.PAGE_SIZE
NO_GO = ((STUB_BASE, STUB_END), (TEMP, TEMP + (1 << 20)))    # the stub; where the restore moves the vDSO through


class Space:
    """One process's host process in the making: `mapped`, the ranges
    mapped here, and `filled`, those of them that hold the pages last sent
    for them (the rest reads as zeros, and the restore unmaps it)."""

    def __init__(self, hpid: int) -> None:
        self.hpid = hpid
        self.regs = ptrace.new_regs()
        self.mem = GuestMemory(hpid)
        self.mapped = Intervals()
        self.filled = Intervals()

    def put(self, addr: int, data: bytes) -> None:
        end = addr + len(data)
        for s, e in self.mapped.gaps(addr, end):
            if not self._map(s, e):     # (the host's own mapping there: the restore writes these pages)
                self.filled.clear(addr, end)
                return
        self.mem.write(addr, data)
        self.filled.set(addr, end, True)

    def _map(self, start: int, end: int) -> bool:
        """Map [start, end): by the huge pages that hold it where nothing is
        mapped there yet (a fault per 2 MiB as the pages are written, not
        one per page), else as it is."""
        lo, hi = start & -HUGE_PAGE, (end + HUGE_PAGE - 1) & -HUGE_PAGE
        if not self.mapped.overlapping(lo, hi) and self._mmap(lo, hi):
            self._inject("madvise", lo, hi - lo, HOST_MADV_HUGEPAGE)     # (the host's advice only)
            return True
        return self._mmap(start, end)

    def _mmap(self, start: int, end: int) -> bool:
        r = self._inject("mmap", start, end - start, C.PROT_READ | C.PROT_WRITE,
                         C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_FIXED_NOREPLACE, -1, 0)
        if r != start:
            return False
        self.mapped.set(start, end, True)
        return True

    def _inject(self, name: str, *args: int) -> int:
        r = ptrace.inject(self.hpid, self.regs, NR[name], *args)
        if r.fault:
            raise ptrace.HostError(E.ESRCH, "the prebuilt process died")
        return r.result


class Prebuilt:
    """The template and the Spaces, by blob name, until the restore takes
    them (take) or they are given up (discard)."""

    def __init__(self) -> None:
        self.stub = Stub()
        self.template: SimpleNamespace | None = None
        self.spaces: dict[str, Space] = {}
        self.broken = False

    def start(self) -> None:
        """Spawn the template as Procs.spawn_init would, seccomp filter and
        all; a host that refuses leaves the restore to do it."""
        try:
            hpid = ptrace.spawn(self.stub.path, trapset.fast_numbers())
            self.template = SimpleNamespace(hpid=hpid, regs=ptrace.new_regs())
            hostas.settle(self.template)
        except (ptrace.HostError, KernelError):
            self.discard()

    def put(self, blob: str, addr: int, data: bytes) -> None:
        """The pages from addr of blob's process, as the stream sent them."""
        if self.broken or self.template is None or not blob.startswith("mem-"):
            return
        end = addr + len(data)
        if end > TASK_SIZE or any(addr < e and end > s for s, e in NO_GO):
            return
        try:
            sp = self.spaces.get(blob)
            if sp is None:
                sp = self.spaces[blob] = self._clone()
            sp.put(addr, data)
        except (ptrace.HostError, KernelError, GuestFault, OSError):
            self.discard()      # (a host that lets this fail is not one to build on)

    def _clone(self) -> Space:
        t = self.template
        r = ptrace.inject(t.hpid, t.regs, NR["clone"], C.CLONE_PARENT | S.SIGCHLD, 0, 0, 0, 0)
        if r.fault or r.result < 0:
            raise KernelError(E.EAGAIN, "prebuild: host clone failed")
        sp = Space(r.result)
        ptrace.wait_pid(sp.hpid)
        ptrace.getregs(sp.hpid, sp.regs)
        return sp

    def take(self, pids: set[int]) -> tuple[int | None, dict[int, Space]]:
        """For the restore: (the host process pid 1 is to run in, the
        Spaces of the processes in pids); every other Space is killed.  The
        template is pid 1's unless pid 1 has a Space of its own (then the
        caller kills it with discard once its clones are made)."""
        if self.broken or self.template is None:
            return None, {}
        taken = {}
        for pid in pids:
            sp = self.spaces.pop(mem_blob(pid), None)
            if sp is not None:
                taken[pid] = sp
        for sp in self.spaces.values():
            _kill(sp.hpid)
        self.spaces = {}
        for sp in taken.values():
            host.share_affinity(sp.hpid)        # (made before the kernel pinned itself)
        if 1 in taken:
            return taken[1].hpid, taken
        init, self.template = self.template.hpid, None
        host.share_affinity(init)
        return init, taken

    def discard(self) -> None:
        """Give up what is left (the template included)."""
        self.broken = True
        for sp in self.spaces.values():
            _kill(sp.hpid)
        self.spaces = {}
        if self.template is not None:
            _kill(self.template.hpid)
            self.template = None


def _kill(hpid: int) -> None:
    """(Reaped by whoever waits next: the kernel's loop, as it reaps the
    host process an exec left.)"""
    host.kill_host(hpid, S.SIGKILL)
    ptrace.forget(hpid)
