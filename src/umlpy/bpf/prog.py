"""Loading a program (bpf_prog_load): its instructions checked for known
opcodes and well-formed ld_imm64 pairs, its maps resolved, the verifier
run, and the result decoded for the interpreter.  Socket filters run
here on a packet, with the struct __sk_buff they read."""
from __future__ import annotations

import struct
from typing import Callable

from umlpy.abi import bpf as B
from umlpy.abi import errno as E
from umlpy.bpf import interp
from umlpy.bpf.maps import Map
from umlpy.bpf.verifier import Verifier, VerifyError
from umlpy.vfs.anon import anon_inode
from umlpy.vfs.file import File

_LD_IMM64 = B.BPF_LD | B.BPF_IMM | B.BPF_DW


class Prog:
    """A verified program: its decoded code and the maps it uses."""

    def __init__(self, prog_type: int, code: list[interp.Decoded], maps: list[Map]) -> None:
        self.prog_type, self.code, self.maps = prog_type, code, maps

    def run_on_packet(self, data: bytes, protocol: int = 0, pkt_type: int = 0) -> int:
        """A socket filter's verdict on a packet: its r0 (0 drops it).
        protocol: its ETH_P_*, which __sk_buff holds in network order."""
        ctx = bytearray(B.SK_BUFF_SIZE)
        struct.pack_into("<III", ctx, 0, len(data), pkt_type, 0)
        struct.pack_into("<I", ctx, 16, (protocol & 0xFF) << 8 | protocol >> 8)
        return interp.run(self.code, self.maps, ctx, data)


def load(prog_type: int, raw: bytes, map_of_fd: Callable[[int], Map], privileged: bool) -> tuple[Prog, int]:
    """raw: the insn_cnt instructions; map_of_fd resolves an ld_imm64's fd
    (raising EBADF/EINVAL as __bpf_map_get)."""
    insns = [B.INSN.unpack_from(raw, i) for i in range(0, len(raw), B.INSN.size)]
    insns = [(code, regs & 0xF, regs >> 4, off, imm) for code, regs, off, imm in insns]
    maps: list[Map] = []
    at: dict[int, Map] = {}
    pc = 0
    while pc < len(insns):
        code, dst, src, off, imm = insns[pc]
        if interp.handler(code, imm) is None:
            raise VerifyError(E.EINVAL, f"unknown opcode {code:02x}")
        if code == _LD_IMM64:
            nxt = insns[pc + 1] if pc + 1 < len(insns) else None
            if nxt is None or nxt[0] or nxt[1] or nxt[2] or nxt[3] or off:
                raise VerifyError(E.EINVAL, "invalid bpf_ld_imm64 insn")
            if src in (B.BPF_PSEUDO_MAP_FD, B.BPF_PSEUDO_MAP_VALUE):
                m = map_of_fd(imm)
                at[pc] = m
                if m not in maps:
                    if len(maps) == B.MAX_USED_MAPS:
                        raise VerifyError(E.E2BIG, "too many maps used by the program")
                    maps.append(m)
            elif src:
                raise VerifyError(E.EINVAL, "unrecognized bpf_ld_imm64 insn")
            pc += 2
            continue
        pc += 1
    v = Verifier(insns, at, privileged)
    v.check()
    return Prog(prog_type, _decode(insns, at, maps), maps), v.processed


def _decode(insns: list, at: dict[int, Map], maps: list[Map]) -> list[interp.Decoded]:
    code: list[interp.Decoded] = []
    for pc, (op, dst, src, off, imm) in enumerate(insns):
        h = interp.handler(op, imm)
        if h is None:                    # the second half of an ld_imm64
            code.append((interp.exit_insn, 0, 0, 0, 0))
            continue
        k = interp.operand(op, imm)
        if op == _LD_IMM64:
            hi = insns[pc + 1][4]
            if src == B.BPF_PSEUDO_MAP_FD:
                k = (interp.MAP_HI + maps.index(at[pc])) << 32
            elif src == B.BPF_PSEUDO_MAP_VALUE:
                k = (interp.ARRAY_HI + maps.index(at[pc])) << 32 | hi
            else:
                k = (imm & interp.M32) | (hi & interp.M32) << 32
        code.append((h, dst, src, off, k))
    return code


class ProgFile(File):
    """The fd bpf(BPF_PROG_LOAD) returns: anon_inode:bpf-prog."""
    kind = "bpf-prog"

    def __init__(self, prog: Prog, flags: int) -> None:
        super().__init__(None, anon_inode(), flags)
        self.prog = prog
