"""The vDSO guest processes get: the host's, with the entries that would
answer from the host's state made to ask the kernel instead.

Each guest process is a host process, so the host maps its vDSO into it and
exec hands it on (AT_SYSINFO_EHDR): the time calls run there without a trap,
reading the host's clock, which is the guest's.  Its getcpu, though, reads
which host CPU runs the thread, while the guest machine has one CPU (CPU 0,
syscalls/sys_sched.py): that entry is overwritten in each new image by a
getcpu syscall, which traps to the kernel like any other.  (UML's own vDSO
answers CPU 0 the same way.)  Programs that ask the processor itself
(rdtscp, rdpid) still see the host's CPU numbers.
"""
from __future__ import annotations

import struct

from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.kernel import printk

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
SHT_DYNSYM = 11
VDSO_MAX = 1 << 16      # the x86-64 vDSO image is a few pages

# mov $__NR_getcpu, %eax; syscall; ret (the arguments are already in place)
GETCPU_STUB = b"\xb8" + struct.pack("<I", NR["getcpu"]) + b"\x0f\x05\xc3"
PATCHES = {b"__vdso_getcpu": GETCPU_STUB}


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


class Vdso:
    """Where the patched entries lie in the host's vDSO, found in the first
    image seen (every host process has the same vDSO)."""

    def __init__(self) -> None:
        self.patches: list[tuple[int, bytes]] | None = None

    def _find(self, mem, base: int) -> list[tuple[int, bytes]]:
        try:
            syms = symbols(mem.read_upto(base, VDSO_MAX))
        except (ValueError, struct.error, IndexError) as exc:
            printk.pr_warn(f"vdso: cannot read the host's vDSO ({exc}): its getcpu reports host CPUs")
            return []
        found = []
        for name, code in PATCHES.items():
            off, size = syms.get(name, (0, 0))
            if size >= len(code):
                found.append((off, code))
            else:
                printk.pr_warn(f"vdso: no room for {name.decode()} in the host's vDSO: it answers for the host")
        return found

    def patch(self, mem, base: int) -> None:
        """Overwrite the entries in the vDSO mapped at base (a private copy
        of its page: the write breaks the sharing, as a debugger's would)."""
        if self.patches is None:
            self.patches = self._find(mem, base)
        for off, code in self.patches:
            mem.poke(base + off, code)
