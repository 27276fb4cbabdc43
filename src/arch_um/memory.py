"""Guest memory access through /proc/PID/mem.

Measured here: os.pread/os.pwrite on an open /proc/PID/mem fd costs about
0.45 us for up to 4 KiB, the cheapest way from Python, and only it can write
read-only pages (the loader needs that for partial bss pages).  The fd belongs
to one address space: reopen after an exec.
"""
import os


class GuestFault(Exception):
    """A guest address was not mapped (the syscall gets EFAULT)."""


class GuestMemory:
    __slots__ = ("pid", "fd")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self, addr: int, n: int) -> bytes:
        if n == 0:
            return b""
        try:
            data = os.pread(self.fd, n, addr)
        except (OSError, OverflowError, ValueError):
            raise GuestFault(addr) from None
        if len(data) != n:
            # /proc/PID/mem stops at the first unmapped page
            raise GuestFault(addr + len(data))
        return data

    def read_upto(self, addr: int, n: int) -> bytes:
        """Read as much as is mapped, up to n bytes (for C strings)."""
        try:
            return os.pread(self.fd, n, addr)
        except (OSError, OverflowError, ValueError):
            return b""

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        try:
            n = os.pwrite(self.fd, data, addr)
        except (OSError, OverflowError, ValueError):
            raise GuestFault(addr) from None
        if n != len(data):
            raise GuestFault(addr + n)
