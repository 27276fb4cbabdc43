"""Classic BPF as seccomp filters use it: the checks a filter passes
before it is attached (Linux's bpf_check_classic, then
seccomp_check_filter's list of allowed instructions) and an interpreter
over the 64 bytes of a struct seccomp_data.

Why apart from bpf/interp.py: that one runs eBPF programs; seccomp takes
classic programs, whose instruction set, scratch memory and checks
differ, and Linux too checks them on their own before translating.
"""
from __future__ import annotations

import struct

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

MAXINSNS = 4096             # BPF_MAXINSNS
MEMWORDS = 16               # BPF_MEMWORDS
DATA_SIZE = 64              # sizeof(struct seccomp_data)
INSN = struct.Struct("<HBBI")   # struct sock_filter: code, jt, jf, k
U32 = 0xFFFFFFFF

# classes, sizes, modes, operations (linux/bpf_common.h)
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, IMM, ABS, MEM, LEN = 0x00, 0x00, 0x20, 0x60, 0x80
K, X, A_SRC = 0x00, 0x08, 0x10
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, XOR = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0xA0
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
TAX, TXA = 0x00, 0x80

_ALU_OPS = (ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH)
# seccomp_check_filter's list (with LD|W|ABS and the two LENs, which it rewrites)
ALLOWED = frozenset(
    [LD | W | ABS, LD | W | LEN, LDX | W | LEN, RET | K, RET | A_SRC, ALU | NEG, LD | IMM, LDX | IMM,
     MISC | TAX, MISC | TXA, LD | MEM, LDX | MEM, ST, STX, JMP | JA]
    + [ALU | op | src for op in _ALU_OPS for src in (K, X)]
    + [JMP | op | src for op in (JEQ, JGE, JGT, JSET) for src in (K, X)])


def decode(raw: bytes) -> list[tuple[int, int, int, int]]:
    """A filter as its instructions (code, jt, jf, k), checked: EINVAL for
    one seccomp does not take, a jump out of the program, no return at
    its end, scratch memory read before every path to it stored it, or a
    division by the constant 0."""
    n = len(raw) // INSN.size
    if not 0 < n <= MAXINSNS or len(raw) % INSN.size:
        raise KernelError(E.EINVAL)
    prog = [INSN.unpack_from(raw, i * INSN.size) for i in range(n)]
    stored = [(1 << MEMWORDS) - 1] * n      # the slots stored on every path to i
    stored[0] = 0
    for i, (code, jt, jf, k) in enumerate(prog):
        if code not in ALLOWED:
            raise KernelError(E.EINVAL)
        cls = code & 7
        if code == LD | W | ABS and (k >= DATA_SIZE or k & 3):
            raise KernelError(E.EINVAL)
        if code == ALU | DIV | K and k == 0:
            raise KernelError(E.EINVAL)
        have = stored[i]
        if code in (LD | MEM, LDX | MEM, ST, STX):
            if k >= MEMWORDS or code in (LD | MEM, LDX | MEM) and not have >> k & 1:
                raise KernelError(E.EINVAL)
            if cls in (ST, STX):
                have |= 1 << k
        if cls == RET:
            continue
        if cls == JMP:
            targets = [i + 1 + k] if code == JMP | JA else [i + 1 + jt, i + 1 + jf]
        else:
            targets = [i + 1]
        for j in targets:
            if j >= n:
                raise KernelError(E.EINVAL)
            stored[j] &= have
    if prog[-1][0] & 7 != RET:
        raise KernelError(E.EINVAL)
    return prog


def run(prog: list[tuple[int, int, int, int]], data: bytes) -> int:
    """The filter's verdict (a u32) on a seccomp_data."""
    a = x = 0
    mem = [0] * MEMWORDS
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 7
        if cls == JMP:
            if code == JMP | JA:
                pc += k
                continue
            v = x if code & X else k
            op = code & 0xF0
            hit = a == v if op == JEQ else a > v if op == JGT else a >= v if op == JGE else bool(a & v)
            pc += jt if hit else jf
        elif cls == LD:
            mode = code & 0xE0
            a = (int.from_bytes(data[k:k + 4], "little") if mode == ABS else DATA_SIZE if mode == LEN
                 else mem[k] if mode == MEM else k)
        elif cls == RET:
            return (a if code & A_SRC else k) & U32
        elif cls == ALU:
            op = code & 0xF0
            v = x if code & X else k
            if op == NEG:
                a = -a & U32
            elif op == DIV:
                if not v:
                    return 0                # X of 0: the program returns 0, as Linux's conversion has it
                a //= v
            elif op == LSH:
                a = (a << (v & 31)) & U32   # a 32-bit shift by the low five bits, as Linux runs it
            elif op == RSH:
                a >>= v & 31
            else:
                a = (a + v if op == ADD else a - v if op == SUB else a * v if op == MUL else a & v if op == AND
                     else a | v if op == OR else a ^ v) & U32
        elif cls == LDX:
            mode = code & 0xE0
            x = DATA_SIZE if mode == LEN else mem[k] if mode == MEM else k
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        else:                           # MISC
            if code & 0xF8 == TXA:
                a = x
            else:
                x = a
