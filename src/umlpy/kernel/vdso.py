"""The vDSO guest processes get: the host's, with the entries that would
answer from the host's state made to ask the kernel instead.

Each guest process is a host process, so the host maps its vDSO into it and
exec hands it on (AT_SYSINFO_EHDR): the time calls run there without a trap,
reading the host's clocks.  Its getcpu, though, reads which host CPU runs
the thread, while the guest machine has one CPU (CPU 0,
syscalls/sys_sched.py): that entry is overwritten in each new image by a
getcpu syscall, which traps to the kernel like any other.  (UML's own vDSO
answers CPU 0 the same way.)  Programs that ask the processor itself
(rdtscp, rdpid) still see the host's CPU numbers.

The wall clock is the host's until the guest sets its own
(kernel/timekeeping.py); from then on gettimeofday and time are
overwritten the same way, and clock_gettime traps for the wall clocks
only (kernel/vdso_trampoline.py: its monotonic and boot clocks stay
trap-free), in every new image and at once in every live address space
(`trap_time`), so no reader goes on seeing the host's time.  Until then
they cost no trap.  A restore that had to give the monotonic and boot
clocks offsets (kernel/timekeeping.py) makes clock_gettime trap for
every clock, the same way.

So does the vDSO of a process in a time namespace whose offsets are not
zero (kernel/timens.py): that is its own address space's, set when it
enters the namespace (a fork or exec into it, setns: `set_clocks`) and at
each exec (`patch`), and put back when it leaves for one without offsets.
"""
from __future__ import annotations

import struct

from arch_um.memory import GuestFault
from umlpy.abi import consts as C
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.kernel import printk
from umlpy.kernel.vdso_trampoline import movable_prologue, wall_trampoline

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
SHT_DYNSYM = 11
VDSO_MAX = 1 << 16      # the x86-64 vDSO image is a few pages



def trap_stub(name: str) -> bytes:
    """mov $__NR_name, %eax; syscall; ret: the entry's arguments are
    already where the syscall takes them."""
    return b"\xb8" + struct.pack("<I", NR[name]) + b"\x0f\x05\xc3"


PATCHES = {b"__vdso_getcpu": trap_stub("getcpu")}
CLOCK_GETTIME = b"__vdso_clock_gettime"     # traps for the wall clocks only, if it can
TIME_PATCHES = {CLOCK_GETTIME: trap_stub("clock_gettime"),
                b"__vdso_gettimeofday": trap_stub("gettimeofday"),
                b"__vdso_time": trap_stub("time")}
WALL_CLOCKS = (C.CLOCK_REALTIME, C.CLOCK_REALTIME_COARSE, C.CLOCK_TAI)
SHT_NOBITS = 8


def symbols(image: bytes) -> dict[bytes, tuple[int, int]]:
    """name -> (offset, size) of the vDSO's dynamic symbols, from its section
    headers (the image is mapped whole, headers included)."""
    ehdr = _EHDR.unpack_from(image)
    shoff, shentsize, shnum = ehdr[6], ehdr[11], ehdr[12]
    shdrs = [_SHDR.unpack_from(image, shoff + i * shentsize) for i in range(shnum)]
    out = {}
    for _name, stype, _fl, _addr, off, size, link, _info, _al, entsize in shdrs:
        if stype != SHT_DYNSYM or not entsize:
            continue
        strtab = shdrs[link][4]
        for i in range(size // entsize):
            name, _inf, _oth, _ndx, value, symsize = _SYM.unpack_from(image, off + i * entsize)
            end = image.index(b"\0", strtab + name)
            out[image[strtab + name:end]] = (value, symsize)
    return out


def spare_from(image: bytes) -> int:
    """Where the image's own bytes end (headers, sections, section
    headers): the rest of its last page is padding, mapped executable."""
    ehdr = _EHDR.unpack_from(image)
    phoff, shoff, phentsize, phnum, shentsize, shnum = ehdr[5], ehdr[6], ehdr[9], ehdr[10], ehdr[11], ehdr[12]
    end = max(_EHDR.size, phoff + phentsize * phnum, shoff + shentsize * shnum)
    for i in range(shnum):
        _n, stype, _fl, _addr, off, size, *_rest = _SHDR.unpack_from(image, shoff + i * shentsize)
        if stype != SHT_NOBITS:
            end = max(end, off + size)
    return (end + 31) & ~15


def _clock_gettime_patches(image: bytes, entry: int, size: int) -> list[tuple[int, bytes]]:
    """The entry jumps to a trampoline in the image's padding that traps
    for the wall clocks only (kernel/vdso_trampoline.py); or, failing
    that, the whole entry traps."""
    prologue = movable_prologue(image[entry:entry + size])
    at = spare_from(image)
    if prologue is not None:
        code, head = wall_trampoline(entry, at, prologue, WALL_CLOCKS, TIME_PATCHES[CLOCK_GETTIME])
        if image[at:at + len(code)] == bytes(len(code)) and len(image) >= at + len(code):
            return [(at, code), (entry, head)]
    printk.pr_info("vdso: clock_gettime traps for every clock once the guest sets its time")
    return [(entry, TIME_PATCHES[CLOCK_GETTIME])]


def base_of(auxv: bytes) -> int:
    """Where exec mapped the vDSO, from the auxv it gave (0: none)."""
    for i in range(0, len(auxv) - 15, 16):
        key, value = struct.unpack_from("<QQ", auxv, i)
        if key == C.AT_SYSINFO_EHDR:
            return value
    return 0


def space_of(mm) -> tuple | None:
    """(memory, vDSO base) of a live address space that exec gave a vDSO;
    None for one without (gone, or exec'd without the host's vDSO)."""
    if mm is None or mm.mem is None or mm.mem.closed:
        return None
    base = base_of(mm.saved_auxv)
    return (mm.mem, base) if base else None


class Vdso:
    """Where the patched entries lie in the host's vDSO, found in the first
    image seen (every host process has the same vDSO)."""

    def __init__(self) -> None:
        self.patches: list[tuple[int, bytes]] | None = None
        self.time_patches: list[tuple[int, bytes]] = []
        self.clock_patch: list[tuple[int, bytes]] = []     # clock_gettime trapping for every clock
        self.clock_entry: list[tuple[int, bytes]] = []     # the bytes that patch overwrites, as the host has them
        self.ehdr = b""                 # the host vDSO's ELF header, to know it again
        self.time_trapped = False       # the guest's wall clock is its own
        self.clocks_trapped = False     # ... and its monotonic and boot clocks too

    def _find(self, mem, base: int) -> None:
        self.patches = []
        try:
            image = mem.read_upto(base, VDSO_MAX)
            syms = symbols(image)
            spare_from(image)
            self.ehdr = image[:_EHDR.size]
        except (ValueError, struct.error, IndexError) as exc:
            printk.pr_warn(f"vdso: cannot read the host's vDSO ({exc}): it answers for the host")
            return
        for table, found in ((PATCHES, self.patches), (TIME_PATCHES, self.time_patches)):
            for name, code in table.items():
                off, size = syms.get(name, (0, 0))
                if size >= len(code) and name == CLOCK_GETTIME:
                    found += _clock_gettime_patches(image, off, size)
                elif size >= len(code):
                    found.append((off, code))
                else:
                    printk.pr_warn(f"vdso: no room for {name.decode()} in the host's vDSO: it answers for the host")
        off, size = syms.get(CLOCK_GETTIME, (0, 0))
        trap = TIME_PATCHES[CLOCK_GETTIME]
        if size >= len(trap):
            self.clock_patch = [(off, trap)]
            self.clock_entry = [(off, image[off:off + len(trap)])]

    def learn(self, mem, base: int) -> None:
        """Find the entries, once, in the vDSO at base: one the host mapped
        and nothing patched yet (a restore gives its first process's before
        the saved bytes come: those may hold patches already, from which
        the trampoline cannot be made again)."""
        if self.patches is None:
            self._find(mem, base)

    def _time_code(self, own: bool, undo: bool) -> list[tuple[int, bytes]]:
        """The time entries as the guest's clocks stand and as the space's
        time namespace needs (own: clock_gettime traps for every clock):
        the wall trampoline (or, undo, the host's entry back over a
        whole-entry trap that may be there), then the whole-entry trap
        (last: it overwrites the trampoline's jump)."""
        return (self.time_patches if self.time_trapped else self.clock_entry if undo else []) + \
            (self.clock_patch if self.clocks_trapped or own else [])

    def patch(self, mem, base: int, own: bool) -> None:
        """Overwrite the entries in the vDSO mapped at base (a private copy
        of its page: the write breaks the sharing, as a debugger's would);
        own: its clock_gettime traps for every clock (the process's time
        namespace has offsets)."""
        self.learn(mem, base)
        for off, code in self.patches + self._time_code(own, undo=False):
            mem.poke(base + off, code)

    def trap_time(self, spaces, wall: bool = False, clocks: bool = False) -> None:
        """From now on the time entries trap (for the wall clocks; with
        clocks, clock_gettime for every clock), in new images and in the
        live address spaces given as (memory, vDSO base, own: as `patch`)."""
        self.time_trapped |= wall
        self.clocks_trapped |= clocks
        for mem, base, own in spaces:
            self.set_clocks(mem, base, own)

    def set_clocks(self, mem, base: int, own: bool) -> None:
        """The time entries of the live address space whose vDSO is at base
        as the guest's clocks stand, with clock_gettime trapping for every
        clock if own (as `patch`): one that unmapped or moved its vDSO has
        none there to patch (and its time is the host's: its own doing)."""
        self.learn(mem, base)
        if not self.ehdr or mem.read_upto(base, len(self.ehdr)) != self.ehdr:
            printk.pr_warn_ratelimited(f"vdso: no vDSO at {base:#x} in host pid {mem.pid}: its time is the host's")
            return
        try:
            for off, code in self._time_code(own, undo=True):
                mem.poke(base + off, code)
        except GuestFault:
            pass        # gone meanwhile
