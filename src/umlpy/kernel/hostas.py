"""A guest task's host process, driven from the kernel: syscalls injected
into it while it is stopped (with the stub's scratch area for their
arguments), and replacing its image by a fresh stub for exec.  Used by
exec, mmap, SysV shm, mlock and rusage; nothing here knows about files.
"""
from __future__ import annotations

import struct

from arch_um import ptrace
from arch_um.hostfile import kernel_fd_path
from arch_um.memory import GuestMemory
from arch_um.stub import STUB_SCRATCH, STUB_SYSCALL
from umlpy.abi import consts as C
from umlpy.abi import errno as E
from umlpy.abi import signals as S
from umlpy.abi.syscall_nr import NUMBERS as NR
from umlpy.kernel.errors import KernelError


class HostAs:
    """Injected host syscalls into one stopped task, with a scratch area."""

    scratch = STUB_SCRATCH

    def __init__(self, t) -> None:
        self.t = t

    def call(self, name: str, *args: int) -> int:
        r = ptrace.inject(self.t.hpid, self.t.regs, NR[name], *args)
        if r.fault:
            raise KernelError(E.EFAULT, f"injected {name} faulted")
        return r.result

    def checked(self, name: str, *args: int) -> int:
        r = self.call(name, *args)
        if -4096 < r < 0:
            raise KernelError(-r, f"injected {name} failed")
        return r

    def map_shared(self, fd: int, writable: bool, start: int, length: int, prot: int, off: int) -> None:
        """MAP_SHARED|MAP_FIXED of one of the kernel's memfds at start,
        opened for writing when the mapping may become writable; the host
        fd is closed again (the mapping holds the memory)."""
        tfd = self.open_kernel_fd(fd, C.O_RDWR if writable else C.O_RDONLY)
        try:
            self.checked("mmap", start, length, prot, C.MAP_SHARED | C.MAP_FIXED, tfd, off)
        finally:
            self.call("close", tfd)

    def open_kernel_fd(self, fd: int, flags: int = C.O_RDONLY) -> int:
        """Open one of the kernel's fds (a memfd) in the task's host process;
        the path goes to the stub's scratch half, which no guest thread can
        change between our write and the host's read."""
        path = kernel_fd_path(fd).encode() + b"\0"
        self.t.mem.poke(self.scratch, path)
        return self.checked("open", self.scratch, flags | C.O_CLOEXEC)


def stub_auxv(mem: GuestMemory, rsp: int) -> dict[int, int]:
    """The host's auxv as the stub got it (vDSO, hwcaps)."""
    data = mem.read_upto(rsp, 4096)
    words = struct.unpack_from(f"<{len(data) // 8}Q", data)
    i = 1 + words[0] + 1
    while words[i]:
        i += 1
    i += 1
    aux = {}
    while i + 1 < len(words) and words[i] != C.AT_NULL:
        aux[words[i]] = words[i + 1]
        i += 2
    return aux


def randomizes(k, proc) -> bool:
    """PF_RANDOMIZE for the image an exec makes: its layout is randomised
    unless the process asked for none (ADDR_NO_RANDOMIZE: setarch -R) or
    kernel.randomize_va_space is 0."""
    return not proc.personality & C.ADDR_NO_RANDOMIZE and k.tunables.randomize_va_space != 0


def exec_host(k, t) -> dict[int, int]:
    """Replace the task's host image by a fresh stub; returns the host auxv."""
    regs = t.regs
    has = HostAs(t)
    path = k.stub.path.encode() + b"\0"
    a = has.scratch
    argv0 = a + len(path)
    arr = (argv0 + 16) & ~7
    t.mem.poke(a, path + b"umlpy-stub\0")
    t.mem.poke(arr, struct.pack("<QQQ", argv0, 0, 0))
    # setarch -R (gdb runs its inferiors so) or randomize_va_space 0: the
    # host lays out the new image's stack and mappings without
    # randomisation too, as Linux would
    norandom = 0 if randomizes(k, t.proc) else C.ADDR_NO_RANDOMIZE
    if norandom != t.proc.host_personality and \
            ptrace.inject(t.hpid, regs, NR["personality"], norandom).result >= 0:
        t.proc.host_personality = norandom
    r = ptrace.inject(t.hpid, regs, NR["execve"], a, arr, arr + 16)
    if r.event != ptrace.EVENT_EXEC:
        raise KernelError(-r.result if r.result < 0 else E.ENOEXEC, "host exec of the stub failed")
    settle(t)
    if t.mem is not None:
        t.mem.close()
    t.mem = GuestMemory(t.hpid)
    return stub_auxv(t.mem, regs.rsp)


def settle(t) -> None:
    """From an exec event stop to an ordinary stop at the stub's int3.

    At the exec event the execve's own return value is still to be written
    into rax, so nothing can be injected yet; one trip through int3 ends it.
    """
    ptrace.getregs(t.hpid, t.regs)
    t.regs.rip = STUB_SYSCALL + 2
    ptrace.resume(t.hpid, t.regs, ptrace.REGS_ALL, ptrace.PTRACE_CONT)
    while True:
        st, _ = ptrace.wait_pid(t.hpid)
        if st & 0x7f != 0x7f:
            raise KernelError(E.ESRCH, "task died during exec")
        if (st >> 8) & 0xff == S.SIGTRAP and not st >> 16:
            break
        ptrace.resume(t.hpid, t.regs, ptrace.REGS_CLEAN, ptrace.PTRACE_CONT)
    ptrace.getregs(t.hpid, t.regs)
