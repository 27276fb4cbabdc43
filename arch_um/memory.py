"""Guest memory access: the kernel's copy_to_user/copy_from_user.

Copies on a syscall's behalf go through process_vm_readv/writev, which
fault pages in exactly as the guest's own accesses would and honour the
page protections: a read from a PROT_NONE page or a write into a read-only
page (program text, the stub) fails, as copy_to_user fails on Linux with
EFAULT.  /proc/PID/mem would be cheaper (measured here, 8 bytes from Python:
1.3 us against 2.2 us) but it writes through any protection (FOLL_FORCE),
which let a plain read(2) into the stub's code page take over the kernel's
injected syscalls.  It stays for the one explicit path that must write
what the guest cannot: `poke`, for the kernel's own loader and the stub's
scratch half (and ptrace-style pokes), and `peek` for core dumps.

Addresses are range-checked first: anything at or above the user-space
limit, or wrapping around, is a fault without asking the host.
"""
from __future__ import annotations

import os

from arch_um._hostcall import ffi, lib

TASK_SIZE = 0x7FFFFFFFF000      # x86-64's user-space limit (TASK_SIZE_MAX)
PAGE_SIZE = 4096
CSTR_FIRST = 256        # what read_cstr reads first: most names are shorter
_BUF_SIZE = 1 << 16
_BUF = ffi.new("char[]", _BUF_SIZE)     # one bounce buffer: the kernel is one thread
_vm_read = lib.umlpy_vm_read
_vm_write = lib.umlpy_vm_write
_unpack = ffi.unpack
_string = ffi.string
_from_buffer = ffi.from_buffer


class GuestFault(Exception):
    """A guest address was not accessible (the syscall gets EFAULT)."""


def user_range_ok(addr: int, n: int) -> bool:
    """access_ok(): [addr, addr + n) lies below the user-space limit."""
    return 0 <= addr and n >= 0 and addr + n <= TASK_SIZE


class GuestMemory:
    """One host process's memory, as its syscalls see it."""

    __slots__ = ("pid", "fd")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = -1        # /proc/PID/mem, opened on the first poke

    def close(self) -> None:
        """Forget the process: a reaped host pid may be reused by another
        guest's process, so a stale handle must fault, not reach it."""
        self.pid = 0
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.pid == 0

    def read(self, addr: int, n: int) -> bytes:
        # the hot path of every syscall that takes a struct or a buffer:
        # one comparison chain, then the host call into a standing buffer
        if 0 < n <= _BUF_SIZE and 0 <= addr <= TASK_SIZE - n:
            got = _vm_read(self.pid, _BUF, addr, n)
            if got == n:
                return _unpack(_BUF, n)
            raise GuestFault(addr + max(got, 0))
        if n == 0:
            return b""
        if n < 0 or not user_range_ok(addr, n):
            raise GuestFault(addr)
        try:
            buf = ffi.new("char[]", n)
        except MemoryError:
            raise GuestFault(addr) from None
        got = _vm_read(self.pid, buf, addr, n)
        if got != n:
            raise GuestFault(addr + max(got, 0))
        return _unpack(buf, n)

    def read_prefix(self, addr: int, n: int) -> bytes:
        """What can be read of [addr, addr + n) up to the first bad page
        (a write to a file stores that much, as Linux's page-by-page copy)."""
        try:
            return self.read(addr, n)
        except GuestFault as f:
            good = f.args[0] - addr
            return self.read(addr, good) if 0 < good < n else b""

    def read_upto(self, addr: int, n: int) -> bytes:
        """As much as is readable from addr, up to n bytes (C strings, argv
        in /proc), even where the range runs past the user-space limit."""
        if n <= 0 or not 0 <= addr < TASK_SIZE:
            return b""
        return self.read_prefix(addr, min(n, TASK_SIZE - addr))

    def read_cstr(self, addr: int, limit: int) -> bytes | None:
        """The NUL-terminated string at addr, without its NUL, as Linux's
        strncpy_from_user reads it: at most limit bytes, never a byte past
        the NUL's page.  First CSTR_FIRST bytes (copying a whole page
        costs a third more than a short read), then the rest of the page,
        then twice as many pages each time, up to the bounce buffer (a copy
        stops at the first unreadable page, so reading ahead faults
        nothing): a short name costs one host call, an argument of 128 KiB
        six.  None: no NUL in the first limit bytes; GuestFault: an
        unreadable byte came before the NUL."""
        parts: list[bytes] = []
        chunk = CSTR_FIRST
        while limit > 0:
            if not 0 <= addr < TASK_SIZE:
                raise GuestFault(addr)
            if chunk < PAGE_SIZE:
                n = min(PAGE_SIZE - (addr & (PAGE_SIZE - 1)), limit, chunk)
                chunk = PAGE_SIZE
            else:
                n = min(chunk - (addr & (PAGE_SIZE - 1)), limit, TASK_SIZE - addr)
                chunk = min(2 * chunk, _BUF_SIZE)
            got = _vm_read(self.pid, _BUF, addr, n)
            if got <= 0:
                raise GuestFault(addr)
            s = _string(_BUF, got)      # up to the first NUL
            if len(s) < got:
                return b"".join(parts) + s if parts else s
            parts.append(s)
            addr += got
            limit -= got
        return None

    def write(self, addr: int, data: bytes) -> None:
        n = len(data)
        if not n:
            return
        if not 0 <= addr <= TASK_SIZE - n:
            raise GuestFault(addr)
        # bytes go to C as they are; other buffers (bytearray, memoryview) through from_buffer
        got = _vm_write(self.pid, data if type(data) is bytes else _from_buffer(data), addr, n)
        if got != n:
            raise GuestFault(addr + max(got, 0))

    def write_prefix(self, addr: int, data: bytes) -> int:
        """How much of data could be stored at addr before the first bad
        page (copy_to_user's count of what it did copy)."""
        try:
            self.write(addr, data)
        except GuestFault as f:
            return max(0, min(len(data), f.args[0] - addr))
        return len(data)

    def _forced_fd(self) -> int:
        if self.fd < 0:
            self.fd = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        return self.fd

    def peek(self, addr: int, n: int) -> bytes:
        """Read whatever the protections say, up to the first page the host
        cannot give (b"" if none): only for a core dump, which reads
        PROT_NONE memory as Linux's get_dump_page does."""
        if n <= 0 or not user_range_ok(addr, n) or not self.pid:
            return b""
        try:
            return os.pread(self._forced_fd(), n, addr)
        except OSError:
            return b""

    def poke(self, addr: int, data: bytes) -> None:
        """Write whatever the protections say: only for the kernel's own
        loader, the stub's scratch half and userfaultfd's filling of the
        pages it made PROT_NONE, never for a syscall's copy."""
        if not data:
            return
        if not user_range_ok(addr, len(data)) or not self.pid:
            raise GuestFault(addr)
        self._forced_fd()
        try:
            n = os.pwrite(self.fd, data, addr)
        except OSError:
            raise GuestFault(addr) from None
        if n != len(data):
            raise GuestFault(addr + n)
