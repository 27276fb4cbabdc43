"""Another process's memory as a debugger reaches it: Linux's
access_remote_vm with FOLL_FORCE, for PTRACE_PEEK/POKE and /proc/PID/mem.

Forced access reads mapped memory whatever its protection (PROT_NONE
included) and writes read-only private mappings (breakpoints into text);
where nothing is mapped it stops.  The kernel's stub page is never the
guest's: it reads as unmapped and takes no writes.
"""
from __future__ import annotations

from arch_um.memory import GuestFault
from arch_um.stub import STUB_BASE, STUB_END
from umlpy.abi import consts as C


def touches_stub(addr: int, n: int) -> bool:
    return addr < STUB_END and addr + n > STUB_BASE


def read(mem, addr: int, n: int) -> bytes:
    """Up to n bytes from addr, a page at a time, stopping at the first
    page that is not mapped (or is the stub): b"" if the first is not."""
    out: list[bytes] = []
    while n > 0:
        chunk = min(n, C.PAGE_SIZE - addr % C.PAGE_SIZE)
        if touches_stub(addr, chunk):
            break
        try:
            data = mem.read(addr, chunk)
        except GuestFault:
            data = mem.peek(addr, chunk)
        if not data:
            break
        out.append(data)
        if len(data) < chunk:
            break
        addr += chunk
        n -= chunk
    return b"".join(out)


def write(mem, addr: int, data: bytes) -> int:
    """Store data at addr, a page at a time; how many bytes went in."""
    done = 0
    while done < len(data):
        chunk = min(len(data) - done, C.PAGE_SIZE - (addr + done) % C.PAGE_SIZE)
        part = data[done:done + chunk]
        if touches_stub(addr + done, chunk):
            break
        try:
            mem.write(addr + done, part)
        except GuestFault:
            try:
                mem.poke(addr + done, part)
            except GuestFault:
                break
        done += chunk
    return done
