"""Classic BPF: seccomp filters and socket filters (SO_ATTACH_FILTER).
The checks a program passes before it is attached (Linux's
bpf_check_classic, and for seccomp then seccomp_check_filter's shorter
list of instructions) and two interpreters: over the 64 bytes of a
struct seccomp_data, and over a packet (byte, half and word loads in
network order at a constant or X-relative offset, the packet's length,
the ancillary data a negative offset names).

Why apart from bpf/interp.py: that one runs eBPF programs; classic
programs have their own instruction set, scratch memory and checks,
which Linux too checks on their own before translating.
"""
from __future__ import annotations

import struct

from arch_um.clock import random_bytes as host_random
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

MAXINSNS = 4096             # BPF_MAXINSNS
MEMWORDS = 16               # BPF_MEMWORDS
DATA_SIZE = 64              # sizeof(struct seccomp_data)
INSN = struct.Struct("<HBBI")   # struct sock_filter: code, jt, jf, k
U32 = 0xFFFFFFFF

# classes, sizes, modes, operations (linux/bpf_common.h)
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
K, X, A_SRC = 0x00, 0x08, 0x10
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80,
                                                       0x90, 0xA0)
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
TAX, TXA = 0x00, 0x80

_ALU_OPS = (ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH)
# seccomp_check_filter's list (with LD|W|ABS and the two LENs, which it rewrites)
ALLOWED = frozenset(
    [LD | W | ABS, LD | W | LEN, LDX | W | LEN, RET | K, RET | A_SRC, ALU | NEG, LD | IMM, LDX | IMM,
     MISC | TAX, MISC | TXA, LD | MEM, LDX | MEM, ST, STX, JMP | JA]
    + [ALU | op | src for op in _ALU_OPS for src in (K, X)]
    + [JMP | op | src for op in (JEQ, JGE, JGT, JSET) for src in (K, X)])
# chk_code_allowed: what a socket filter may hold
SOCKET_ALLOWED = ALLOWED | frozenset(
    [LD | size | mode for size in (H, B) for mode in (ABS, IND)] + [LD | W | IND, LDX | B | MSH]
    + [ALU | MOD | src for src in (K, X)])
_SIZES = {W: 4, H: 2, B: 1}

# ancillary data at negative offsets (SKF_AD_OFF + n), bpf_anc_helper's list
SKF_AD_OFF = 0xFFFFF000
AD_PROTOCOL, AD_PKTTYPE, AD_IFINDEX, AD_NLATTR, AD_NLATTR_NEST, AD_MARK, AD_QUEUE, AD_HATYPE = \
    0, 4, 8, 12, 16, 20, 24, 28
AD_RXHASH, AD_CPU, AD_ALU_XOR_X, AD_VLAN_TAG, AD_VLAN_TAG_PRESENT, AD_PAY_OFFSET, AD_RANDOM, AD_VLAN_TPID = \
    32, 36, 40, 44, 48, 52, 56, 60
_ANCILLARY = frozenset(range(0, 64, 4))


def decode(raw: bytes, socket: bool = False) -> list[tuple[int, int, int, int]]:
    """A filter as its instructions (code, jt, jf, k), checked: EINVAL for
    one seccomp (or, socket: a socket filter) does not take, a jump out of
    the program, no return at its end, scratch memory read before every
    path to it stored it, a division by the constant 0, a shift by 32 or
    more, or (sockets) ancillary data Linux does not have."""
    n = len(raw) // INSN.size
    if not 0 < n <= MAXINSNS or len(raw) % INSN.size:
        raise KernelError(E.EINVAL)
    prog = [INSN.unpack_from(raw, i * INSN.size) for i in range(n)]
    stored = [(1 << MEMWORDS) - 1] * n      # the slots stored on every path to i
    stored[0] = 0
    allowed = SOCKET_ALLOWED if socket else ALLOWED
    for i, (code, jt, jf, k) in enumerate(prog):
        if code not in allowed:
            raise KernelError(E.EINVAL)
        cls = code & 7
        if code == LD | W | ABS and not socket and (k >= DATA_SIZE or k & 3):
            raise KernelError(E.EINVAL)
        if code & 0xE7 == LD | ABS and socket and k >= SKF_AD_OFF and k - SKF_AD_OFF not in _ANCILLARY:
            raise KernelError(E.EINVAL)
        if code in (ALU | DIV | K, ALU | MOD | K) and k == 0:
            raise KernelError(E.EINVAL)
        if code in (ALU | LSH | K, ALU | RSH | K) and k >= 32:
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


def _interpret(prog: list[tuple[int, int, int, int]], size: int, load) -> int:
    """Run a checked program: its return value (a u32).  size: what LEN
    loads; load(code, off) the value a load from the data gives (code is
    the load's, off its offset with X added for IND), or None to end the
    program with 0 (a load past a packet's end)."""
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
            if mode in (ABS, IND):
                off = (k + x if mode == IND else k) & U32
                if mode == ABS and off - SKF_AD_OFF == AD_ALU_XOR_X:
                    a ^= x
                    continue
                got = load(code, off)
                if got is None:
                    return 0
                a = got
            else:
                a = size if mode == LEN else mem[k] if mode == MEM else k
        elif cls == RET:
            return (a if code & A_SRC else k) & U32
        elif cls == ALU:
            op = code & 0xF0
            v = x if code & X else k
            if op == NEG:
                a = -a & U32
            elif op in (DIV, MOD):
                if not v:
                    return 0                # X of 0: the program returns 0, as Linux's conversion has it
                a = a // v if op == DIV else a % v
            elif op == LSH:
                a = (a << (v & 31)) & U32   # a 32-bit shift by the low five bits, as Linux runs it
            elif op == RSH:
                a >>= v & 31
            else:
                a = (a + v if op == ADD else a - v if op == SUB else a * v if op == MUL else a & v if op == AND
                     else a | v if op == OR else a ^ v) & U32
        elif cls == LDX:
            mode = code & 0xE0
            if mode == MSH:
                got = load(LD | B | ABS, k)
                if got is None:
                    return 0
                x = (got & 0xF) << 2
            else:
                x = size if mode == LEN else mem[k] if mode == MEM else k
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        else:                           # MISC
            if code & 0xF8 == TXA:
                a = x
            else:
                x = a


def run(prog: list[tuple[int, int, int, int]], data: bytes) -> int:
    """The filter's verdict (a u32) on a seccomp_data: its words in the
    machine's byte order (decode let through only aligned words in it)."""
    return _interpret(prog, DATA_SIZE, lambda code, off: int.from_bytes(data[off:off + 4], "little"))


def run_packet(prog: list[tuple[int, int, int, int]], data: bytes, anc: dict[int, int]) -> int:
    """A socket filter's verdict on a packet (the bytes from where the
    family's skb->data points): how many bytes to keep, 0 to drop it.
    Loads are in network order; one past the packet's end drops it, as
    Linux's does; anc gives the ancillary values (protocol, pkttype...)
    the program may ask for at SKF_AD_OFF."""
    size = len(data)

    def load(code: int, off: int) -> int | None:
        if code & 0xE0 == ABS and off >= SKF_AD_OFF:
            n = off - SKF_AD_OFF
            return int.from_bytes(host_random(4), "little") if n == AD_RANDOM else anc.get(n, 0)
        width = _SIZES[code & 0x18]
        if off + width > size:
            return None
        return int.from_bytes(data[off:off + width], "big")
    return _interpret(prog, size, load)


class SocketFilter:
    """SO_ATTACH_FILTER's program, run where SO_ATTACH_BPF's would be
    (net/socket.Socket.filtered)."""
    __slots__ = ("prog",)

    def __init__(self, prog: list[tuple[int, int, int, int]]) -> None:
        self.prog = prog

    def run_on_packet(self, data: bytes, protocol: int = 0, pkt_type: int = 0) -> int:
        """protocol: the packet's ETH_P_* (SKF_AD_PROTOCOL's ntohs(skb->protocol))."""
        return run_packet(self.prog, data, {AD_PROTOCOL: protocol, AD_PKTTYPE: pkt_type})
