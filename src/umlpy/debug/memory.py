"""The debugged process's memory as gdb reads and writes it, and the
software breakpoints in it.

Reads and writes go where ptrace's PEEKTEXT/POKETEXT go (FOLL_FORCE:
unreadable mappings are read, read-only private text is written, a copy
for this process only), never into the kernel's stub page, which is none
of the guest's.  A breakpoint is an int3 byte; reads show the byte it
hides, and a write over it changes that byte instead.
"""
from __future__ import annotations

from arch_um.memory import GuestFault, GuestMemory
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

INT3 = 0xCC


class TargetMemory:
    def __init__(self) -> None:
        self.breakpoints: dict[int, int] = {}     # address -> the byte its int3 hides

    def read(self, mem: GuestMemory, addr: int, n: int) -> bytes:
        """Up to n bytes from addr, as far as they are mapped."""
        if addr < STUB_END and addr + n > STUB_BASE:
            n = max(0, STUB_BASE - addr)
        data = bytearray(mem.peek(addr, n))
        for a, orig in self.breakpoints.items():
            if addr <= a < addr + len(data):
                data[a - addr] = orig
        return bytes(data)

    def write(self, mem: GuestMemory, addr: int, data: bytes) -> None:
        if addr < STUB_END and addr + len(data) > STUB_BASE:
            raise KernelError(E.EIO)
        data = bytearray(data)
        for a in self.breakpoints:
            if addr <= a < addr + len(data):
                self.breakpoints[a] = data[a - addr]
                data[a - addr] = INT3
        self._store(mem, addr, bytes(data))

    @staticmethod
    def _store(mem: GuestMemory, addr: int, data: bytes) -> None:
        try:
            mem.write(addr, data)
        except GuestFault:
            mem.poke(addr, data)

    def insert(self, mem: GuestMemory, addr: int) -> bool:
        """A breakpoint at addr (Z0); False where nothing is mapped."""
        if addr in self.breakpoints:
            return True
        orig = self.read(mem, addr, 1)
        if not orig:
            return False
        self.write(mem, addr, bytes((INT3,)))
        self.breakpoints[addr] = orig[0]
        return True

    def remove(self, mem: GuestMemory, addr: int) -> None:
        if addr in self.breakpoints:
            self.write(mem, addr, bytes((self.breakpoints.pop(addr),)))

    def remove_all(self, mem: GuestMemory | None) -> None:
        """Every breakpoint out (detach); what cannot be written is forgotten."""
        for addr in list(self.breakpoints):
            try:
                if mem is None:
                    raise KernelError(E.ESRCH)
                self.remove(mem, addr)
            except (KernelError, GuestFault):
                self.breakpoints.pop(addr, None)

    def restore_in(self, mem: GuestMemory) -> None:
        """A forked copy of the memory gets its original bytes back."""
        for addr, orig in self.breakpoints.items():
            try:
                mem.poke(addr, bytes((orig,)))
            except GuestFault:
                pass
