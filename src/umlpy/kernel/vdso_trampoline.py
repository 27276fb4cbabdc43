"""x86-64 code for a vDSO clock_gettime that traps for the wall clocks only.

Once the guest has its own wall clock (kernel/timekeeping.py), the host
vDSO's clock_gettime would answer CLOCK_REALTIME, CLOCK_REALTIME_COARSE
and CLOCK_TAI with the host's time, while its monotonic, raw and boot
clocks are still right and cheap.  So its entry becomes a jump to a
trampoline written into the vDSO image's zero padding after its last
section: the wall clocks go to the clock_gettime syscall, every other
clock runs the entry's first instructions (copied there) and jumps back
into the host's code after them.  Only instructions that run the same
at any address may be copied (endbr64, push, mov %rsp,%rbp); a host vDSO
whose entry starts otherwise gets the plain trapping stub instead.
"""
from __future__ import annotations

import struct

JMP_LEN = 5             # jmp rel32
# instructions whose meaning does not depend on where they are
_MOVABLE = (b"\xf3\x0f\x1e\xfa", b"\x48\x89\xe5",
            *(bytes([0x50 + r]) for r in range(8)), *(bytes([0x41, 0x50 + r]) for r in range(8)))


def movable_prologue(code: bytes) -> bytes | None:
    """The whole instructions at the start of code that cover a jump, if
    each is one that runs the same anywhere; else None."""
    n = 0
    while n < JMP_LEN:
        ins = next((i for i in _MOVABLE if code.startswith(i, n)), None)
        if ins is None:
            return None
        n += len(ins)
    return code[:n]


def _jmp(frm: int, to: int) -> bytes:
    """jmp rel32 at offset frm to offset to."""
    return b"\xe9" + struct.pack("<i", to - (frm + JMP_LEN))


def wall_trampoline(entry: int, at: int, prologue: bytes, wall_clocks: tuple[int, ...],
                    trap: bytes) -> tuple[bytes, bytes]:
    """(the trampoline to write at offset at, the new first bytes of the
    entry at offset entry): cmp $clk,%edi; je trap for each wall clock,
    the copied prologue, a jump back behind it, then trap (the trapping
    stub)."""
    checks_len = 5 * len(wall_clocks)
    trap_off = checks_len + len(prologue) + JMP_LEN
    code = b""
    for clk in wall_clocks:
        code += b"\x83\xff" + bytes([clk]) + b"\x74" + bytes([trap_off - (len(code) + 5)])
    code += prologue
    code += _jmp(at + len(code), entry + len(prologue))
    code += trap
    head = _jmp(entry, at) + b"\xcc" * (len(prologue) - JMP_LEN)
    return code, head
