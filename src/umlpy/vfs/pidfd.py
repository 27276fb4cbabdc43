"""A pidfd: a file naming a process, readable (POLLIN) once it has exited."""
from __future__ import annotations

import struct

from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import POLLIN, File


class PidFile(File):
    kind = "[pidfd]"

    def __init__(self, proc, flags: int) -> None:
        super().__init__(None, anon_inode(), C.O_RDWR | flags)
        self.proc = proc

    def poll(self) -> int:
        return POLLIN if self.proc.exited else 0

    def fdinfo_in(self, procfs) -> bytes:
        """pidfd_show_fdinfo: the pid as the procfs instance's namespace
        numbers it, then in each namespace below (-1 once it was reaped,
        0 where the instance cannot see it)."""
        pid = self.proc.pid
        nr = procfs.vnr(pid) if procfs.kernel.procs.by_pid.get(pid) is self.proc else -1
        nrs = procfs.kernel.procs.pidmap.levels(procfs.pidns, pid) if nr > 0 else [nr]
        return (f"Pid:\t{nr}\nNSpid:\t" + "\t".join(map(str, nrs)) + "\n").encode()

    def poll_queues(self) -> list:
        return [self.proc.exit_wq]


def install(t, proc, flags: int = 0) -> int:
    """A new pidfd for proc in t's table (always close-on-exec, as Linux)."""
    return t.files.install(PidFile(proc, flags), True)


def install_at_user(t, proc, addr: int) -> None:
    """clone's CLONE_PIDFD: the new child's pidfd, its number stored at addr."""
    t.mem.write(addr, struct.pack("<i", install(t, proc)))


def process_of(t, fd: int, tgid_dirs: bool = False):
    """The process a pidfd names; with tgid_dirs (pidfd_send_signal) an
    open /proc/PID directory names one too (its file's tgid_process)."""
    f = t.files.get(fd)
    if isinstance(f, PidFile):
        return f.proc
    proc = getattr(f, "tgid_process", None) if tgid_dirs else None
    if proc is None:
        raise KernelError(E.EBADF)
    return proc
