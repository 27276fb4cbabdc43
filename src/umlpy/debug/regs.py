"""The register file gdb sees for an x86-64 guest task, and the target
description (target.xml) that names it, made from one table so that the
two never disagree.

Where each register lives: the general registers are the ones the kernel
holds for a stopped task (t.regs), written through the checks a guest
tracer's PTRACE_POKEUSER passes (sys_ptrace's putreg); x87, SSE and the
upper AVX halves are in the task's XSAVE image (the host's
NT_X86_XSTATE, standard format: FXSAVE area, then the header at 512 and
YMM_Hi128 at 576), read and written whole.
"""
from __future__ import annotations

import struct

from arch_um import ptrace as hptrace
from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError
from umlpy.syscalls.sys_ptrace import _host, _putreg

_XCR0_OFFSET = 464          # the xsave area's sw_reserved: the host's XCR0 (ptrace's layout)
_XSTATE_BV = 512            # the XSAVE header's component bitmap
_YMMH = 576                 # YMM_Hi128 in the standard format
_AVX = 0x4

GPR = "gpr"
FPX = "fxsave"              # a field of the FXSAVE area: (offset, bytes)
FTAG = "ftag"
XS = "xstate"

_INT = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


def _core() -> list[tuple]:
    regs: list[tuple] = []
    for n in _INT:
        regs.append((n, 64, "data_ptr" if n in ("rbp", "rsp") else "int64", GPR, n))
    regs.append(("rip", 64, "code_ptr", GPR, "rip"))
    regs.append(("eflags", 32, "int32", GPR, "eflags"))
    for n in ("cs", "ss", "ds", "es", "fs", "gs"):
        regs.append((n, 32, "int32", GPR, n))
    for i in range(8):
        regs.append((f"st{i}", 80, "i387_ext", FPX, (32 + 16 * i, 10)))
    regs += [("fctrl", 32, "int", FPX, (0, 2)), ("fstat", 32, "int", FPX, (2, 2)),
             ("ftag", 32, "int", FTAG, None), ("fiseg", 32, "int", FPX, (12, 2)),
             ("fioff", 32, "int", FPX, (8, 4)), ("foseg", 32, "int", FPX, (20, 2)),
             ("fooff", 32, "int", FPX, (16, 4)), ("fop", 32, "int", FPX, (6, 2))]
    return regs


# (feature, registers: (name, bits, type, where, which))
FEATURES: list[tuple[str, list[tuple]]] = [
    ("org.gnu.gdb.i386.core", _core()),
    ("org.gnu.gdb.i386.sse", [(f"xmm{i}", 128, "vec128", FPX, (160 + 16 * i, 16)) for i in range(16)]
     + [("mxcsr", 32, "int", FPX, (24, 4))]),
    ("org.gnu.gdb.i386.linux", [("orig_rax", 64, "int", GPR, "orig_rax")]),
    ("org.gnu.gdb.i386.segments", [("fs_base", 64, "int", GPR, "fs_base"),
                                   ("gs_base", 64, "int", GPR, "gs_base")]),
    ("org.gnu.gdb.i386.avx", [(f"ymm{i}h", 128, "uint128", XS, (_YMMH + 16 * i, 16)) for i in range(16)]),
]

_VEC128 = """    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v16i8" type="int8" count="16"/>
    <vector id="v8i16" type="int16" count="8"/>
    <vector id="v4i32" type="int32" count="4"/>
    <vector id="v2i64" type="int64" count="2"/>
    <union id="vec128">
      <field name="v4_float" type="v4f"/>
      <field name="v2_double" type="v2d"/>
      <field name="v16_int8" type="v16i8"/>
      <field name="v8_int16" type="v8i16"/>
      <field name="v4_int32" type="v4i32"/>
      <field name="v2_int64" type="v2i64"/>
      <field name="uint128" type="uint128"/>
    </union>
"""


class RegisterFile:
    """The registers of one machine: AVX included where the host has it."""

    def __init__(self, xstate: bytes) -> None:
        xcr0 = struct.unpack_from("<Q", xstate, _XCR0_OFFSET)[0] if len(xstate) > _XCR0_OFFSET + 8 else 0
        avx = bool(xcr0 & _AVX) and len(xstate) >= _YMMH + 256
        self.features = [f for f in FEATURES if avx or f[0] != "org.gnu.gdb.i386.avx"]
        self.regs = [r for _, regs in self.features for r in regs]

    def target_xml(self) -> bytes:
        out = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
               '<target version="1.0">', "  <architecture>i386:x86-64</architecture>",
               "  <osabi>GNU/Linux</osabi>"]
        for name, regs in self.features:
            out.append(f'  <feature name="{name}">')
            if name.endswith(".sse"):
                out.append(_VEC128.rstrip("\n"))
            out += [f'    <reg name="{r[0]}" bitsize="{r[1]}" type="{r[2]}"/>' for r in regs]
            out.append("  </feature>")
        out.append("</target>")
        return "\n".join(out).encode() + b"\n"

    # -- reading --------------------------------------------------------------
    def read_all(self, t) -> bytes:
        xs = _host(hptrace.get_xstate, t.hpid)
        return b"".join(self._get(t, r, xs) for r in self.regs)

    def read_one(self, t, n: int) -> bytes:
        if not 0 <= n < len(self.regs):
            raise KernelError(E.EINVAL)
        r = self.regs[n]
        return self._get(t, r, _host(hptrace.get_xstate, t.hpid) if r[3] != GPR else b"")

    @staticmethod
    def _get(t, r: tuple, xs: bytes) -> bytes:
        _, bits, _, where, which = r
        size = bits // 8
        if where == GPR:
            return (getattr(t.regs, which) & ((1 << bits) - 1)).to_bytes(size, "little")
        if where == FTAG:
            return _full_tag(xs).to_bytes(size, "little")
        off, n = which
        return xs[off:off + n].ljust(size, b"\0")

    # -- writing --------------------------------------------------------------
    def write_all(self, t, data: bytes) -> None:
        """A G packet: every register gdb sent (a short one: the first ones)."""
        values, pos = [], 0
        for r in self.regs:
            size = r[1] // 8
            if pos + size > len(data):
                break
            values.append((r, data[pos:pos + size]))
            pos += size
        self._put(t, values)

    def write_one(self, t, n: int, data: bytes) -> None:
        if not 0 <= n < len(self.regs) or len(data) != self.regs[n][1] // 8:
            raise KernelError(E.EINVAL)
        self._put(t, [(self.regs[n], data)])

    @staticmethod
    def _put(t, values: list[tuple[tuple, bytes]]) -> None:
        xs = None
        for (name, bits, _, where, which), raw in values:
            v = int.from_bytes(raw, "little")
            if where == GPR:
                if getattr(t.regs, which) & ((1 << bits) - 1) != v:
                    _putreg(t, which, v)
                continue
            if xs is None:
                xs = bytearray(_host(hptrace.get_xstate, t.hpid))
            if where == FTAG:
                xs[4] = _abridged_tag(v)
                continue
            off, n = which
            xs[off:off + n] = raw[:n]
            if len(xs) >= _XSTATE_BV + 8:     # the component is in use now
                comp = 0x4 if where == XS else 0x3
                bv = struct.unpack_from("<Q", xs, _XSTATE_BV)[0] | comp
                struct.pack_into("<Q", xs, _XSTATE_BV, bv)
        if xs is not None:
            _host(hptrace.set_xstate, t.hpid, bytes(xs))


def _full_tag(xs: bytes) -> int:
    """The x87 tag word from FXSAVE's abridged one (a bit per register:
    empty or not), each register classed as FSTENV gives it: valid 0,
    zero 1, special 2, empty 3 (tags are by physical register, st(i) by
    the stack top)."""
    abridged = xs[4]
    top = (struct.unpack_from("<H", xs, 2)[0] >> 11) & 7
    tag = 0
    for phys in range(8):
        if not abridged & (1 << phys):
            cls = 3
        else:
            st = (phys - top) & 7
            mant, exp = struct.unpack_from("<QH", xs, 32 + 16 * st)
            exp &= 0x7fff
            if exp == 0x7fff:
                cls = 2
            elif exp == 0:
                cls = 1 if mant == 0 else 2
            else:
                cls = 0 if mant >> 63 else 2
        tag |= cls << (2 * phys)
    return tag


def _abridged_tag(tag: int) -> int:
    return sum(1 << i for i in range(8) if (tag >> (2 * i)) & 3 != 3)
