"""The vDSO clock_gettime trampoline (kernel/vdso_trampoline.py) without
a guest: which entries may be moved, and where its jumps land
(test_settime runs it in the guest)."""
from __future__ import annotations

import struct

from umlpy.kernel.vdso_trampoline import movable_prologue, wall_trampoline

TRAP = b"\xb8\xe4\x00\x00\x00\x0f\x05\xc3"


def _target(code: bytes, at: int, pos: int) -> int:
    assert code[pos] == 0xE9
    return at + pos + 5 + struct.unpack_from("<i", code, pos + 1)[0]


def test_only_position_independent_prologues_move():
    assert movable_prologue(b"\x55\x48\x89\xe5\x41\x56\x53\x48") == b"\x55\x48\x89\xe5\x41\x56"
    assert movable_prologue(b"\xf3\x0f\x1e\xfa\x55\x48\x89\xe5") == b"\xf3\x0f\x1e\xfa\x55"
    assert movable_prologue(b"\x55\x48\x8d\x05\x00\x00\x00\x00") is None     # lea (%rip): no
    assert movable_prologue(b"\x48\x83\xec\x10\x55\x55") is None


def test_wall_clocks_trap_and_the_rest_jump_back():
    entry, at, prologue = 0xB10, 0x1A70, b"\x55\x48\x89\xe5\x41\x56"
    code, head = wall_trampoline(entry, at, prologue, (0, 5, 11), TRAP)
    assert _target(head, entry, 0) == at and head[5:] == b"\xcc"
    trap = len(code) - len(TRAP)
    assert code[trap:] == TRAP
    for i, clk in enumerate((0, 5, 11)):
        cmp_je = code[5 * i:5 * i + 5]
        assert cmp_je[:3] == b"\x83\xff" + bytes([clk]) and cmp_je[3] == 0x74
        assert 5 * i + 5 + cmp_je[4] == trap
    assert code[15:21] == prologue
    assert _target(code, at, 21) == entry + len(prologue)
