"""Host memory files and host files.

A MemFile is a host memfd owned by the kernel: tmpfs file data and the page
cache live in them, so that read/write in the kernel and mmap in the guest
(the tracee maps /proc/<kernel>/fd/N) see the same pages.
"""
import os

_SELF = os.getpid()


def kernel_fd_path(fd: int) -> str:
    """A path a tracee can open to reach one of the kernel's fds."""
    return f"/proc/{os.getpid()}/fd/{fd}"


class MemFile:
    __slots__ = ("fd",)

    def __init__(self, name: str = "umlpy", data: bytes = b"") -> None:
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        if data:
            os.pwrite(self.fd, data, 0)

    def pread(self, n: int, off: int) -> bytes:
        return os.pread(self.fd, n, off)

    def pwrite(self, data: bytes, off: int) -> int:
        return os.pwrite(self.fd, data, off)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def blocks(self) -> int:
        return os.fstat(self.fd).st_blocks

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def read_host_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def host_file_exists(path: str) -> bool:
    return os.path.exists(path)
