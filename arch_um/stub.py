"""The stub executable every guest process runs as.

Guest processes are host processes that exec'ed this tiny static ELF; the
kernel then maps the guest program itself (exec is the kernel's, not the
host's).  Its one page holds `syscall; int3`, the trampoline through which
the kernel injects host syscalls.  It is generated here (no toolchain needed)
and kept in a memfd that tracees exec as /proc/<kernel>/fd/N.
"""
import os
import struct

# The page sits below the guest's vm.mmap_min_addr (kernel/mm.py), where no
# guest mapping may go, as UML's stub sits above its TASK_SIZE: the guest's
# address space has no hole in it (sanitizers' shadow ranges, stack_clash's
# fill of every gap, one reservation of terabytes all cross the middle).
# 64 KiB is the highest mmap_min_addr hosts set (Debian 12 has 4096), so the
# host lets the stub's exec map it.
STUB_BASE = 0x10000
_CODE_OFF = 64 + 56          # ELF header + one program header
STUB_SYSCALL = STUB_BASE + _CODE_OFF  # `syscall; int3`
STUB_CMPXCHG = STUB_SYSCALL + 3       # `lock cmpxchg [rdi], esi; int3`
STUB_END = STUB_BASE + 0x1000
# The page's second half is where the kernel writes the paths of injected
# open/execve calls: always mapped, readable by the host, never the guest's
# (memory below the guest's stack pointer may be a small thread stack's
# neighbour, or not mapped at all).  /proc/PID/mem writes make it private.
STUB_SCRATCH = STUB_BASE + 0x800
STUB_SCRATCH_SIZE = 0x800


def stub_image() -> bytes:
    code = b"\x0f\x05\xcc" + b"\xf0\x0f\xb1\x37\xcc"    # syscall; int3; lock cmpxchg [rdi], esi; int3
    ehdr = struct.pack(
        "<16sHHIQQQIHHHHHH",
        b"\x7fELF\x02\x01\x01" + b"\0" * 9,
        2, 62, 1,                 # ET_EXEC, EM_X86_64, EV_CURRENT
        STUB_SYSCALL, 64, 0,      # entry, phoff, shoff
        0, 64, 56, 1, 64, 0, 0,
    )
    size = _CODE_OFF + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, STUB_BASE, STUB_BASE, size, 0x1000, 0x1000)
    return ehdr + phdr + code


class Stub:
    """The stub held by the kernel in a memfd; `path` is what tracees exec."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("umlpy-stub", os.MFD_CLOEXEC)
        os.write(self.fd, stub_image())
        os.fchmod(self.fd, 0o555)
        self.path = f"/proc/{os.getpid()}/fd/{self.fd}"
