"""Which pages of a guest's host process were written, without reading
them: a userfaultfd in asynchronous write-protect mode registered over
the process's mappings, read with PAGEMAP_SCAN (Linux 6.7), which lists
the pages written since they were last protected and protects them again
in the same walk.  A live migration's pre-copy (checkpoint/migrate.py)
uses it where soft-dirty bits would serve; this host's kernel has none.

The userfaultfd must be made by the process whose memory it watches: the
kernel injects userfaultfd(2) into the stopped task and takes a copy of
the descriptor with pidfd_getfd.  UFFD_USER_MODE_ONLY is enough (writes
resolve in the host kernel: no fault ever waits for us) and is what an
unprivileged user may have.  Writes by the kernel's process_vm_writev
count, and so do MADV_DONTNEED and a page first made present by a write.
"""
from __future__ import annotations

import os

from arch_um._hostcall import ffi, lib

USERFAULTFD_FLAGS = os.O_CLOEXEC | os.O_NONBLOCK | 1      # | UFFD_USER_MODE_ONLY
_RUNS = 4096                                            # runs one scan call returns at most
_out = ffi.new("unsigned long[]", 2 * _RUNS)
_next = ffi.new("unsigned long *")


def take_fd(hpid: int, fd: int) -> int:
    """A copy in this process of the host process's fd (pidfd_getfd)."""
    r = lib.umlpy_pidfd_getfd(hpid, fd)
    if r < 0:
        raise OSError(-r, os.strerror(-r))
    return r


class WriteLog:
    """One host process's write log, over the ranges registered in it.
    Takes ownership of uffd (an fd of this process)."""

    def __init__(self, hpid: int, uffd: int) -> None:
        self.uffd = uffd
        self.pagemap = -1
        try:
            r = lib.umlpy_uffd_wp_api(uffd)
            if r < 0:
                raise OSError(-r, f"userfaultfd write-protect handshake: {os.strerror(-r)}")
            self.pagemap = os.open(f"/proc/{hpid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise

    def register(self, start: int, length: int) -> bool:
        """Watch [start, start + length), one whole mapping or several;
        False where the host refuses it (the caller reads that range
        whole each round instead)."""
        return lib.umlpy_uffd_wp_register(self.uffd, start, length) == 0

    def written(self, start: int, end: int, protect: bool = True) -> list[tuple[int, int]]:
        """The runs (start, end) of pages in [start, end) written since last
        protected; protect: protect them again in the same walk.  OSError
        if the host cannot say (the caller then reads the range whole)."""
        runs: list[tuple[int, int]] = []
        while start < end:
            n = lib.umlpy_pagemap_written(self.pagemap, start, end, int(protect), _out, _RUNS, _next)
            if n < 0:
                raise OSError(-n, f"PAGEMAP_SCAN: {os.strerror(-n)}")
            runs.extend((_out[2 * i], _out[2 * i + 1]) for i in range(n))
            if _next[0] <= start:
                break
            start = _next[0]
        return runs

    def close(self) -> None:
        for fd in (self.pagemap, self.uffd):
            if fd >= 0:
                os.close(fd)
        self.pagemap = self.uffd = -1
