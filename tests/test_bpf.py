"""The eBPF interpreter's containment and the verifier's refusals, without
a guest: code the verifier would refuse is run directly, to show that the
interpreter alone keeps a program inside its own regions."""
import pytest

from umlpy.abi import bpf as B
from umlpy.abi import errno as E
from umlpy.bpf import interp
from umlpy.bpf.maps import ArrayMap
from umlpy.bpf.prog import load
from umlpy.bpf.verifier import VerifyError
from umlpy.kernel.mm import MemBudget


def insn(code, dst=0, src=0, off=0, imm=0):
    imm &= 0xFFFFFFFF
    return B.INSN.pack(code, dst | src << 4, off, imm - (1 << 32) if imm >> 31 else imm)


MOV64_IMM = B.BPF_ALU64 | B.BPF_MOV | B.BPF_K
EXIT = insn(B.BPF_JMP | B.BPF_EXIT)
RAM = MemBudget(256 << 20)       # the machine the maps here are charged to


def decoded(raw: bytes) -> list:
    """Decode without verifying (what a verifier bug would let through)."""
    out = []
    for i in range(0, len(raw), 8):
        code, regs, off, imm = B.INSN.unpack_from(raw, i)
        h = interp.handler(code, imm) or interp.exit_insn
        k = interp.operand(code, imm)
        if code == B.BPF_LD | B.BPF_IMM | B.BPF_DW:
            k = (imm & interp.M32) | (B.INSN.unpack_from(raw, i + 8)[3] & interp.M32) << 32
        out.append((h, regs & 0xF, regs >> 4, off, k))
    return out


def run_raw(raw: bytes, maps=()) -> int:
    return interp.run(decoded(raw), list(maps), bytearray(B.SK_BUFF_SIZE), b"packet")


@pytest.mark.parametrize("addr", [0, 0x1000, 0xFFFF8000 << 32 | 512, (interp.MAP_HI << 32), -8])
def test_stray_accesses_fault_instead_of_reaching_anything(addr):
    prog = (insn(B.BPF_LD | B.BPF_IMM | B.BPF_DW, 1, imm=addr & 0xFFFFFFFF) +
            insn(0, imm=(addr & interp.M64) >> 32) +
            insn(B.BPF_STX | B.BPF_MEM | B.BPF_DW, 1, 1) +
            insn(MOV64_IMM, 0, imm=7) + EXIT)
    assert run_raw(prog) == 0           # faulted: the run ends with 0


def test_stack_is_bounded_on_both_sides():
    below = insn(B.BPF_ST | B.BPF_MEM | B.BPF_DW, 10, off=-520, imm=1) + insn(MOV64_IMM, 0, imm=1) + EXIT
    above = insn(B.BPF_ST | B.BPF_MEM | B.BPF_B, 10, off=0, imm=1) + insn(MOV64_IMM, 0, imm=1) + EXIT
    inside = insn(B.BPF_ST | B.BPF_MEM | B.BPF_DW, 10, off=-512, imm=1) + insn(MOV64_IMM, 0, imm=1) + EXIT
    assert run_raw(below) == 0 and run_raw(above) == 0 and run_raw(inside) == 1


def test_map_values_cannot_be_left_through_pointer_arithmetic():
    m = ArrayMap(4, 8, 2, 0, RAM)
    lookup = (insn(B.BPF_LD | B.BPF_IMM | B.BPF_DW, 1, imm=0) + insn(0, imm=interp.MAP_HI) +
              insn(B.BPF_ALU64 | B.BPF_MOV | B.BPF_X, 2, 10) +
              insn(B.BPF_ALU64 | B.BPF_ADD | B.BPF_K, 2, imm=-4) +
              insn(B.BPF_ST | B.BPF_MEM | B.BPF_W, 2, imm=1) +
              insn(B.BPF_JMP | B.BPF_CALL, imm=B.BPF_FUNC_map_lookup_elem))
    past_end = lookup + insn(B.BPF_ST | B.BPF_MEM | B.BPF_DW, 0, off=8, imm=-1) + insn(MOV64_IMM, 0, imm=1) + EXIT
    before = lookup + insn(B.BPF_ST | B.BPF_MEM | B.BPF_DW, 0, off=-8, imm=-1) + insn(MOV64_IMM, 0, imm=1) + EXIT
    assert run_raw(past_end, [m]) == 0 and run_raw(before, [m]) == 1   # -8: element 0, still the map
    assert m.storage[:8] == b"\xff" * 8 and len(m.storage) == 16


def _load(raw: bytes, maps=None, priv=True):
    return load(B.BPF_PROG_TYPE_SOCKET_FILTER, raw, lambda fd: maps[fd], priv)


def test_loops_and_jumps_out_are_refused():
    loop = insn(MOV64_IMM, 0, imm=0) + insn(B.BPF_JMP | B.BPF_JA, off=-2) + EXIT
    with pytest.raises(VerifyError) as e:
        _load(loop)
    assert e.value.errno == E.EINVAL and "back-edge" in str(e.value)


def test_division_by_zero_semantics():
    # r1 = 0 from ctx->mark (unknown to the verifier); r0 = 7 / r1; w2 = -1 % w1
    raw = (insn(B.BPF_LDX | B.BPF_MEM | B.BPF_W, 1, 1, off=8) +
           insn(MOV64_IMM, 0, imm=7) + insn(B.BPF_ALU64 | B.BPF_DIV | B.BPF_X, 0, 1) +
           insn(MOV64_IMM, 2, imm=-1) + insn(B.BPF_ALU | B.BPF_MOD | B.BPF_X, 2, 1) +
           insn(B.BPF_ALU64 | B.BPF_ADD | B.BPF_X, 0, 2) + EXIT)
    prog, _ = _load(raw)
    assert prog.run_on_packet(b"x") == 0xFFFFFFFF


def test_unprivileged_pointer_leak_refused():
    leak = insn(B.BPF_ALU64 | B.BPF_MOV | B.BPF_X, 0, 10) + EXIT
    _load(leak, priv=True)
    with pytest.raises(VerifyError) as e:
        _load(leak, priv=False)
    assert e.value.errno == E.EACCES


def test_maps_are_charged_to_ram():
    from umlpy.bpf.maps import HashMap
    from umlpy.kernel.errors import KernelError
    ram = MemBudget(64 << 20)
    big = HashMap(8, 1 << 21, 24, 0, ram)           # 48 MiB charged, not allocated
    assert ram.kmem >= 48 << 20
    with pytest.raises(KernelError) as e:
        HashMap(8, 1 << 21, 16, 0, ram)
    assert e.value.errno == E.ENOMEM
    del big                                         # freed: uncharged
    assert ram.kmem == 0
    HashMap(8, 1 << 21, 16, 0, ram)


def test_byte_swaps_and_their_known_values():
    # r1 = 0x11223344; r1 = be16 r1 (0x4433); r2 = le32 of r1; r0 = r1 + r2
    raw = (insn(MOV64_IMM, 1, imm=0x11223344) +
           insn(B.BPF_ALU | B.BPF_END | B.BPF_TO_BE, 1, imm=16) +
           insn(B.BPF_ALU64 | B.BPF_MOV | B.BPF_X, 2, 1) +
           insn(B.BPF_ALU | B.BPF_END | B.BPF_TO_LE, 2, imm=32) +
           insn(B.BPF_ALU64 | B.BPF_MOV | B.BPF_X, 0, 1) +
           insn(B.BPF_ALU64 | B.BPF_ADD | B.BPF_X, 0, 2) + EXIT)
    prog, _ = _load(raw)
    assert prog.run_on_packet(b"x") == 2 * 0x4433


def _random_program(rng, codes, alu) -> bytes:
    """Registers and stack initialised, a map lookup maybe, then random
    but mostly well-formed instructions and an exit."""
    pack = B.INSN.pack
    raw = b"".join(pack(MOV64_IMM, r, 0, rng.randint(-3, 70)) for r in (0, 2, 3, 4, 5, 7, 8, 9))
    raw += b"".join(pack(B.BPF_ST | B.BPF_MEM | B.BPF_DW, 10, -8 * k, 0) for k in range(1, 9))
    raw += pack(B.BPF_ALU64 | B.BPF_MOV | B.BPF_X, 6 | 1 << 4, 0, 0)
    if rng.random() < 0.5:
        raw += (pack(B.BPF_LD | B.BPF_IMM | B.BPF_DW, 1 | 1 << 4, 0, rng.choice([3, 4, 5])) + pack(0, 0, 0, 0) +
                pack(B.BPF_ALU64 | B.BPF_MOV | B.BPF_X, 2 | 10 << 4, 0, 0) + pack(0x07, 2, 0, -8) +
                pack(0x85, 0, 0, 1) + pack(0x55, 0, 1, 0) + EXIT)
    n = rng.randint(1, 24)
    for i in range(n):
        c = rng.choice(codes) if rng.random() < 0.95 else rng.randint(0, 255)
        cls, op = c & 7, c & 0xF0
        if cls in (B.BPF_JMP, B.BPF_JMP32) and op == B.BPF_EXIT and rng.random() < 0.9:
            c, cls, op = (x := rng.choice(alu)), x & 7, x & 0xF0
        d, s = rng.randint(0, 10), rng.randint(0, 10)
        off = rng.choice([0, 0, 1, 2, -4, -8, 8, rng.randint(-600, 600)])
        imm = rng.choice([0, 1, 3, 4, 5, 8, 16, 32, 64, -1, rng.randint(-2**31, 2**31 - 1)])
        if c == B.BPF_LD | B.BPF_IMM | B.BPF_DW:
            raw += pack(c, d | rng.choice([0, 1, 2]) << 4, 0, rng.choice([3, 4, 5, 9])) + pack(0, 0, 0, 0)
            continue
        if cls in (B.BPF_JMP, B.BPF_JMP32) and op == B.BPF_CALL:
            imm = rng.choice([1, 2, 3, 5, 7, 8, 130, 131, 132, 133, 134, 99])
        elif cls in (B.BPF_JMP, B.BPF_JMP32):
            off = rng.randint(0, n - i - 1)
        if cls in (B.BPF_ALU, B.BPF_ALU64, B.BPF_JMP, B.BPF_JMP32) and op not in (B.BPF_CALL, B.BPF_EXIT) \
                and rng.random() < 0.9:
            imm, s = (0, s) if c & B.BPF_X else (imm, 0)
            off = 0 if cls in (B.BPF_ALU, B.BPF_ALU64) else off
        if c & 0xF7 == B.BPF_ALU | B.BPF_END:
            imm = rng.choice([16, 32, 64])
        if cls in (B.BPF_LDX, B.BPF_STX, B.BPF_ST) and rng.random() < 0.8:
            base = s if cls == B.BPF_LDX else d
            off = -8 * rng.randint(1, 8) if base == 10 else rng.choice([0, 4, 8])
        raw += insn(c, d, s, off, imm)
    return raw + EXIT


def test_random_programs_are_refused_or_run_cleanly(monkeypatch):
    """Whatever the verifier accepts runs without a fault (it would be a
    verifier hole, not an escape: the interpreter checks anyway)."""
    import random
    from umlpy.bpf.maps import HashMap, RingBufMap
    from umlpy.kernel.errors import KernelError
    faults = []
    monkeypatch.setattr(interp.printk, "printk", lambda level, msg: faults.append(msg))
    maps = {3: ArrayMap(4, 8, 4, 0, RAM), 4: HashMap(4, 16, 4, 0, RAM), 5: RingBufMap(0, 0, 4096, 0, RAM)}

    def map_of_fd(fd):
        if fd not in maps:
            raise KernelError(E.EBADF)
        return maps[fd]
    codes = sorted(interp.HANDLERS) + [B.BPF_ALU | B.BPF_END | B.BPF_TO_LE, B.BPF_ALU | B.BPF_END | B.BPF_TO_BE]
    alu = [c for c in codes if c & 7 in (B.BPF_ALU, B.BPF_ALU64)]
    rng = random.Random(4)
    accepted = 0
    for _ in range(1500):
        raw = _random_program(rng, codes, alu)
        for priv in (True, False):
            try:
                prog, _ = load(B.BPF_PROG_TYPE_SOCKET_FILTER, raw, map_of_fd, priv)
            except (VerifyError, KernelError):
                continue
            accepted += 1
            prog.run_on_packet(b"0123456789abcdef")
    assert accepted > 50 and not faults
