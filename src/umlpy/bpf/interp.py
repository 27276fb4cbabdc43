"""The eBPF interpreter (kernel/bpf/core.c's ___bpf_prog_run).

Programs are decoded once into (handler, dst, src, off, k) tuples; a run
dispatches each through its handler, found by opcode in a table, never
a chain of tests.  Registers are plain 64-bit ints.

Pointers are modelled: a program's memory is a set of regions (its stack,
its context, map values, ring buffer records), each at a fake address
whose high 32 bits name the region and whose low 32 bits are the offset.
Every load and store looks the region up and checks the bounds, so even a
program the verifier wrongly let through can reach nothing but its own
regions: no Python object, no host memory.  A fault ends the run with 0
(the packet dropped) and one kernel log line.
"""
from __future__ import annotations

from typing import Callable

from arch_um import clock
from umlpy.abi import bpf as B
from umlpy.abi import errno as E
from umlpy.bpf.maps import ArrayMap, Map, RingBufMap
from umlpy.kernel import printk
from umlpy.kernel.errors import KernelError

M64, M32 = (1 << 64) - 1, (1 << 32) - 1
STACK_HI, CTX_HI = 0xFFFF8000, 0xFFFF8001
MAP_HI = 0xFFFF9000              # + map index: a map's handle (no memory behind it)
ARRAY_HI = 0xFFFFA000            # + map index: an array map's values
DYN_HI = 0xFFFFB000              # hash values, ring buffer records: given out per run
DYN_END = 0xFFFFFFFF             # ... up to here (ARRAY_HI + MAX_USED_MAPS stays below DYN_HI)
MAX_STEPS = 1 << 20              # no run goes on longer (the verifier already bounds it)


class Fault(Exception):
    """An access outside every region (or any other impossible state)."""


class PacketEnd(Exception):
    """LD_ABS/LD_IND past the packet: the program returns 0."""


def s64(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def s32(x: int) -> int:
    x &= M32
    return x - (1 << 32) if x >> 31 else x


class Run:
    """One execution: registers, regions and what helpers need."""
    __slots__ = ("regs", "regions", "maps", "dyn", "next_hi", "packet", "records")

    def __init__(self, maps: list[Map], ctx: bytearray, packet: bytes) -> None:
        self.regs = [0] * B.MAX_BPF_REG
        self.regions: dict[int, bytearray] = {STACK_HI: bytearray(B.MAX_BPF_STACK), CTX_HI: ctx}
        for i, m in enumerate(maps):
            if isinstance(m, ArrayMap):
                self.regions[ARRAY_HI + i] = m.storage
        self.maps = maps
        self.dyn: dict[int, int] = {}        # id(buffer) -> its region, while the run lasts
        self.next_hi = DYN_HI
        self.packet = packet
        self.records: dict[int, tuple[RingBufMap, bytearray]] = {}
        self.regs[1] = CTX_HI << 32
        self.regs[B.BPF_REG_FP] = (STACK_HI << 32) | B.MAX_BPF_STACK

    def region_of(self, buf: bytearray) -> int:
        hi = self.dyn.get(id(buf))
        if hi is None:
            if self.next_hi >= DYN_END:
                raise Fault("too many regions")
            hi = self.dyn[id(buf)] = self.next_hi
            self.next_hi += 1
            self.regions[hi] = buf
        return hi

    def span(self, addr: int, size: int) -> tuple[bytearray, int]:
        addr &= M64
        buf = self.regions.get(addr >> 32)
        off = addr & M32
        if buf is None or off + size > len(buf) or size < 0:
            raise Fault(f"access to {addr:#x} size {size}")
        return buf, off

    def load(self, addr: int, size: int) -> int:
        buf, off = self.span(addr, size)
        return int.from_bytes(buf[off:off + size], "little")

    def store(self, addr: int, size: int, value: int) -> None:
        buf, off = self.span(addr, size)
        buf[off:off + size] = (value & ((1 << (size * 8)) - 1)).to_bytes(size, "little")

    def read(self, addr: int, size: int) -> bytes:
        buf, off = self.span(addr, size)
        return bytes(buf[off:off + size])

    def map_at(self, handle: int) -> Map:
        i = (handle >> 32) - MAP_HI
        if handle & M32 or not 0 <= i < len(self.maps):
            raise Fault(f"not a map: {handle:#x}")
        return self.maps[i]

    def value_ptr(self, m: Map, found: tuple[bytearray, int] | None) -> int:
        if found is None:
            return 0
        buf, off = found
        hi = ARRAY_HI + self.maps.index(m) if isinstance(m, ArrayMap) else self.region_of(buf)
        return (hi << 32) | off


# -- helpers: (run, r1..r5) -> r0 ------------------------------------------------

def _map_lookup(r: Run, a: list[int]) -> int:
    m = r.map_at(a[1])
    return r.value_ptr(m, m.lookup(r.read(a[2], m.key_size)))


def _errno_of(fn: Callable[[], None]) -> int:
    try:
        fn()
    except KernelError as e:
        return -e.errno & M64
    return 0


def _map_update(r: Run, a: list[int]) -> int:
    m = r.map_at(a[1])
    key, value = r.read(a[2], m.key_size), r.read(a[3], m.value_size)
    return _errno_of(lambda: m.update(key, value, a[4]))


def _map_delete(r: Run, a: list[int]) -> int:
    m = r.map_at(a[1])
    key = r.read(a[2], m.key_size)
    return _errno_of(lambda: m.delete(key))


def _ringbuf_map(r: Run, handle: int) -> RingBufMap:
    m = r.map_at(handle)
    if not isinstance(m, RingBufMap):
        raise Fault("not a ring buffer")
    return m


def _ringbuf_reserve(r: Run, a: list[int]) -> int:
    m = _ringbuf_map(r, a[1])
    if a[3]:
        return 0                       # flags must be zero: NULL, as Linux's
    rec = m.reserve(a[2])
    if rec is None:
        return 0
    hi = r.region_of(rec)
    r.records[hi] = (m, rec)
    return hi << 32


def _ringbuf_commit(keep: bool) -> Callable[[Run, list[int]], int]:
    def helper(r: Run, a: list[int]) -> int:
        hi = (a[1] & M64) >> 32
        got = r.records.pop(hi, None)
        if got is None or a[1] & M32:
            raise Fault("not a reserved record")
        got[0].commit(got[1], keep)
        del r.regions[hi]
        return 0
    return helper


def _ringbuf_output(r: Run, a: list[int]) -> int:
    m = _ringbuf_map(r, a[1])
    data = r.read(a[2], a[3])
    rec = m.reserve(len(data))
    if rec is None:
        return -E.EAGAIN & M64         # no room, as bpf_ringbuf_output
    rec[:] = data
    m.commit(rec, True)
    return 0


def _ringbuf_query(r: Run, a: list[int]) -> int:
    return _ringbuf_map(r, a[1]).query(a[2])


HELPERS: dict[int, Callable[[Run, list[int]], int]] = {
    B.BPF_FUNC_map_lookup_elem: _map_lookup,
    B.BPF_FUNC_map_update_elem: _map_update,
    B.BPF_FUNC_map_delete_elem: _map_delete,
    B.BPF_FUNC_ktime_get_ns: lambda r, a: clock.monotonic_ns(),
    B.BPF_FUNC_get_prandom_u32: lambda r, a: int.from_bytes(clock.random_bytes(4), "little"),
    B.BPF_FUNC_get_smp_processor_id: lambda r, a: 0,
    B.BPF_FUNC_ringbuf_output: _ringbuf_output,
    B.BPF_FUNC_ringbuf_reserve: _ringbuf_reserve,
    B.BPF_FUNC_ringbuf_submit: _ringbuf_commit(True),
    B.BPF_FUNC_ringbuf_discard: _ringbuf_commit(False),
    B.BPF_FUNC_ringbuf_query: _ringbuf_query,
}


# -- the handlers: (run, pc, dst, src, off, k) -> next pc (-1: exit) ------------

Handler = Callable[[Run, int, int, int, int, int], int]


def _div(a: int, b: int) -> int:
    return a // b if b else 0


def _mod(a: int, b: int) -> int:
    return a % b if b else a


ALU64_OPS: dict[int, Callable[[int, int], int]] = {
    B.BPF_ADD: lambda a, b: a + b, B.BPF_SUB: lambda a, b: a - b,
    B.BPF_MUL: lambda a, b: a * b, B.BPF_DIV: _div, B.BPF_MOD: _mod,
    B.BPF_OR: lambda a, b: a | b, B.BPF_AND: lambda a, b: a & b,
    B.BPF_XOR: lambda a, b: a ^ b, B.BPF_LSH: lambda a, b: a << (b & 63),
    B.BPF_RSH: lambda a, b: a >> (b & 63), B.BPF_ARSH: lambda a, b: s64(a) >> (b & 63),
    B.BPF_MOV: lambda a, b: b, B.BPF_NEG: lambda a, b: -a,
}
ALU32_OPS: dict[int, Callable[[int, int], int]] = {
    **ALU64_OPS,
    B.BPF_LSH: lambda a, b: a << (b & 31), B.BPF_RSH: lambda a, b: a >> (b & 31),
    B.BPF_ARSH: lambda a, b: s32(a) >> (b & 31),
}


def _alu(fn: Callable[[int, int], int], mask: int, reg: bool) -> Handler:
    """dst op= src (or the immediate, in k, extended as the class wants);
    32-bit operations see and leave the low halves (zero-extended)."""
    if reg:
        def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
            regs = r.regs
            regs[d] = fn(regs[d] & mask, regs[s] & mask) & mask
            return pc + 1
    else:
        def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
            regs = r.regs
            regs[d] = fn(regs[d] & mask, k) & mask
            return pc + 1
    return h


def endian(value: int, width: int, to_be: bool) -> int:
    """BPF_END on a little-endian machine: to_le truncates, to_be swaps."""
    value &= (1 << width) - 1
    return int.from_bytes(value.to_bytes(width // 8, "little"), "big") if to_be else value


def _end(width: int, to_be: bool) -> Handler:
    def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
        r.regs[d] = endian(r.regs[d], width, to_be)
        return pc + 1
    return h


CONDS: dict[int, Callable[[int, int], bool]] = {
    B.BPF_JEQ: lambda a, b: a == b, B.BPF_JNE: lambda a, b: a != b,
    B.BPF_JGT: lambda a, b: a > b, B.BPF_JGE: lambda a, b: a >= b,
    B.BPF_JLT: lambda a, b: a < b, B.BPF_JLE: lambda a, b: a <= b,
    B.BPF_JSET: lambda a, b: bool(a & b),
}
SIGNED_CONDS: dict[int, Callable[[int, int], bool]] = {
    B.BPF_JSGT: lambda a, b: a > b, B.BPF_JSGE: lambda a, b: a >= b,
    B.BPF_JSLT: lambda a, b: a < b, B.BPF_JSLE: lambda a, b: a <= b,
}


def _jmp(cond: Callable[[int, int], bool], conv: Callable[[int], int], reg: bool) -> Handler:
    if reg:
        def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
            return pc + 1 + off if cond(conv(r.regs[d]), conv(r.regs[s])) else pc + 1
    else:
        def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
            return pc + 1 + off if cond(conv(r.regs[d]), conv(k)) else pc + 1
    return h


def _ja(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
    return pc + 1 + off


def exit_insn(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
    return -1


def _call(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
    regs = r.regs
    regs[0] = HELPERS[k](r, regs[:6]) & M64
    return pc + 1


def _ld_imm64(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
    r.regs[d] = k
    return pc + 2


def _ldx(size: int) -> Handler:
    def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
        r.regs[d] = r.load(r.regs[s] + off, size)
        return pc + 1
    return h


def _stx(size: int) -> Handler:
    def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
        r.store(r.regs[d] + off, size, r.regs[s])
        return pc + 1
    return h


def _st(size: int) -> Handler:
    def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
        r.store(r.regs[d] + off, size, k)
        return pc + 1
    return h


_ATOMIC_OPS: dict[int, Callable[[int, int], int]] = {
    B.BPF_ADD: lambda a, b: a + b, B.BPF_OR: lambda a, b: a | b,
    B.BPF_AND: lambda a, b: a & b, B.BPF_XOR: lambda a, b: a ^ b,
}


def _atomic(size: int) -> Handler:
    """BPF_STX | BPF_ATOMIC: k holds the operation (imm)."""
    mask = (1 << (size * 8)) - 1

    def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
        regs = r.regs
        addr = regs[d] + off
        old = r.load(addr, size)
        if k == B.BPF_XCHG:
            r.store(addr, size, regs[s])
        elif k == B.BPF_CMPXCHG:
            if old == regs[0] & mask:
                r.store(addr, size, regs[s])
            regs[0] = old
            return pc + 1
        else:
            r.store(addr, size, _ATOMIC_OPS[k & ~B.BPF_FETCH](old, regs[s] & mask))
        if k & B.BPF_FETCH:
            regs[s] = old
        return pc + 1
    return h


def _ld_pkt(size: int, indirect: bool) -> Handler:
    """Legacy packet access: r0 = the packet's bytes at [src +] imm, big
    endian; past the end the program returns 0."""
    def h(r: Run, pc: int, d: int, s: int, off: int, k: int) -> int:
        at = s32((r.regs[s] if indirect else 0) + k)
        if at < 0 or at + size > len(r.packet):
            raise PacketEnd
        r.regs[0] = int.from_bytes(r.packet[at:at + size], "big")
        return pc + 1
    return h


def _table() -> dict[int, Handler]:
    t: dict[int, Handler] = {}
    for cls, ops, mask in ((B.BPF_ALU64, ALU64_OPS, M64), (B.BPF_ALU, ALU32_OPS, M32)):
        for op, fn in ops.items():
            t[cls | op | B.BPF_K] = _alu(fn, mask, False)
            if op != B.BPF_NEG:
                t[cls | op | B.BPF_X] = _alu(fn, mask, True)
    for cls, conv, sconv in ((B.BPF_JMP, lambda x: x & M64, s64), (B.BPF_JMP32, lambda x: x & M32, s32)):
        for op, cond in CONDS.items():
            t[cls | op | B.BPF_K] = _jmp(cond, conv, False)
            t[cls | op | B.BPF_X] = _jmp(cond, conv, True)
        for op, cond in SIGNED_CONDS.items():
            t[cls | op | B.BPF_K] = _jmp(cond, sconv, False)
            t[cls | op | B.BPF_X] = _jmp(cond, sconv, True)
    t[B.BPF_JMP | B.BPF_JA] = _ja
    t[B.BPF_JMP | B.BPF_EXIT] = exit_insn
    t[B.BPF_JMP | B.BPF_CALL] = _call
    t[B.BPF_LD | B.BPF_IMM | B.BPF_DW] = _ld_imm64
    for code, n in B.SIZE_BYTES.items():
        t[B.BPF_LDX | B.BPF_MEM | code] = _ldx(n)
        t[B.BPF_STX | B.BPF_MEM | code] = _stx(n)
        t[B.BPF_ST | B.BPF_MEM | code] = _st(n)
        if n in (4, 8):
            t[B.BPF_STX | B.BPF_ATOMIC | code] = _atomic(n)
        if n != 8:
            t[B.BPF_LD | B.BPF_ABS | code] = _ld_pkt(n, False)
            t[B.BPF_LD | B.BPF_IND | code] = _ld_pkt(n, True)
    return t


HANDLERS = _table()
# BPF_END's width is its immediate
ENDS: dict[tuple[int, int], Handler] = {
    (B.BPF_ALU | B.BPF_END | src, width): _end(width, src == B.BPF_TO_BE)
    for src in (B.BPF_TO_LE, B.BPF_TO_BE) for width in (16, 32, 64)}


def handler(code: int, imm: int) -> Handler | None:
    """The handler of an opcode (None: no such instruction)."""
    return ENDS.get((code, imm)) if code & 0xF7 == B.BPF_ALU | B.BPF_END else HANDLERS.get(code)

Decoded = tuple[Handler, int, int, int, int]


def operand(code: int, imm: int) -> int:
    """The immediate as the instruction uses it: sign-extended to 64 bits
    for 64-bit operations, kept to 32 for 32-bit ones."""
    cls = code & 7
    if cls in (B.BPF_ALU, B.BPF_JMP32):
        return imm & M32
    if cls == B.BPF_STX and code & 0xE0 == B.BPF_ATOMIC:
        return imm
    return imm & M64


def run(code: list[Decoded], maps: list[Map], ctx: bytearray, packet: bytes) -> int:
    """Run a verified program; its r0 as a u32, 0 if it faulted."""
    r = Run(maps, ctx, packet)
    pc = steps = 0
    try:
        while pc >= 0:
            h, d, s, off, k = code[pc]
            pc = h(r, pc, d, s, off, k)
            steps += 1
            if steps > MAX_STEPS:
                raise Fault("too many steps")
    except PacketEnd:
        return 0
    except (Fault, IndexError, KeyError, KernelError) as e:
        printk.printk(printk.WARNING, f"bpf: program stopped: {e}")
        return 0
    finally:
        for m, rec in r.records.values():
            m.commit(rec, False)      # a verified program released them; be safe anyway
    return r.regs[0] & M32

