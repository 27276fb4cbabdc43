"""The verifier (kernel/bpf/verifier.c): what a program may do before it
is allowed to run.

Two passes, as Linux's: check_cfg walks the control flow (no jump out
of the program or into an ld_imm64, no unreachable instruction, and no
back-edge: loops are refused, so every run ends within insn_cnt steps),
then do_check walks every path with the register and stack types of
each instruction: scalars (a known value or unknown), the context, map
handles, map values and ring buffer records (the *_or_null ones until a
null check), the stack.  It refuses what Linux refuses in these terms,
with Linux's messages and errnos: uninitialised reads, accesses outside
an object, pointer arithmetic on nullable or 32-bit pointers, offsets
past 2^29, leaking pointers when unprivileged, unreleased ring buffer
records.  Scalars are tracked as known or unknown (no ranges): a pointer
plus an unknown scalar may not be dereferenced ("unbounded memory
access"), stricter than Linux.  The interpreter checks every access
again, so safety does not rest on this file.
"""
from __future__ import annotations

from umlpy.abi import bpf as B
from umlpy.abi import errno as E
from umlpy.bpf import interp
from umlpy.bpf.maps import ArrayMap, Map, RingBufMap

M64 = interp.M64
NOT_INIT, SCALAR, CTX, MAP_PTR, MAP_VALUE, STACK, MEM, MAP_VALUE_OR_NULL, MEM_OR_NULL = range(9)
NAMES = {NOT_INIT: "?", SCALAR: "scalar", CTX: "ctx", MAP_PTR: "map_ptr", MAP_VALUE: "map_value",
         STACK: "fp", MEM: "alloc_mem", MAP_VALUE_OR_NULL: "map_value_or_null",
         MEM_OR_NULL: "alloc_mem_or_null"}
NON_NULL = {MAP_VALUE_OR_NULL: MAP_VALUE, MEM_OR_NULL: MEM}
MAX_VAR_OFF = 1 << 29            # BPF_MAX_VAR_OFF
COMPLEXITY_LIMIT = 65536         # instructions walked over all paths (Linux: 1000000; no pruning here)
OP_NAMES = {B.BPF_ADD: "+=", B.BPF_SUB: "-=", B.BPF_MUL: "*=", B.BPF_DIV: "/=", B.BPF_OR: "|=",
            B.BPF_AND: "&=", B.BPF_LSH: "<<=", B.BPF_RSH: ">>=", B.BPF_NEG: "neg",
            B.BPF_MOD: "%=", B.BPF_XOR: "^=", B.BPF_MOV: "=", B.BPF_ARSH: "s>>=", B.BPF_END: "endian"}
HELPER_NAMES = {B.BPF_FUNC_map_lookup_elem: "map_lookup_elem",
                B.BPF_FUNC_map_update_elem: "map_update_elem",
                B.BPF_FUNC_map_delete_elem: "map_delete_elem",
                B.BPF_FUNC_ktime_get_ns: "ktime_get_ns",
                B.BPF_FUNC_get_prandom_u32: "get_prandom_u32",
                B.BPF_FUNC_get_smp_processor_id: "get_smp_processor_id",
                B.BPF_FUNC_ringbuf_output: "ringbuf_output",
                B.BPF_FUNC_ringbuf_reserve: "ringbuf_reserve",
                B.BPF_FUNC_ringbuf_submit: "ringbuf_submit",
                B.BPF_FUNC_ringbuf_discard: "ringbuf_discard",
                B.BPF_FUNC_ringbuf_query: "ringbuf_query"}


class VerifyError(Exception):
    """A refusal: its errno, its log line, the instructions walked."""

    def __init__(self, errno: int, msg: str, processed: int = 0) -> None:
        super().__init__(msg)
        self.errno, self.processed = errno, processed


class Reg:
    """One register's type: a scalar's value (None: unknown), a pointer's
    offset, its map or record size, the id its null check follows and
    the reference it holds."""
    __slots__ = ("type", "val", "off", "var", "map", "size", "id", "ref")

    def __init__(self, rtype: int = NOT_INIT, val: int | None = None, off: int = 0,
                 bpf_map: Map | None = None, size: int = 0, rid: int = 0, ref: int = 0) -> None:
        self.type, self.val, self.off, self.var = rtype, val, off, False
        self.map, self.size, self.id, self.ref = bpf_map, size, rid, ref

    def copy(self) -> Reg:
        r = Reg(self.type, self.val, self.off, self.map, self.size, self.id, self.ref)
        r.var = self.var
        return r

    @property
    def is_ptr(self) -> bool:
        return self.type not in (NOT_INIT, SCALAR)


def scalar(val: int | None = None) -> Reg:
    return Reg(SCALAR, None if val is None else val & M64)


class State:
    """The types along one path: registers, the stack's spilled registers
    (by 8-byte slot) and initialised bytes (a bitmask, bit o + 512 for
    fp + o: copied for free), the references held."""
    __slots__ = ("regs", "spills", "init", "refs")

    def __init__(self) -> None:
        self.regs = [Reg() for _ in range(B.MAX_BPF_REG)]
        self.regs[1] = Reg(CTX)
        self.regs[B.BPF_REG_FP] = Reg(STACK)
        self.spills: dict[int, Reg] = {}
        self.init = 0
        self.refs: dict[int, int] = {}

    def copy(self) -> State:
        s = State.__new__(State)
        s.regs = [r.copy() for r in self.regs]
        s.spills = {k: r.copy() for k, r in self.spills.items()}
        s.init = self.init
        s.refs = dict(self.refs)
        return s

    def all_regs(self):
        yield from self.regs
        yield from self.spills.values()


def _first_uninit(st: State, o: int, size: int) -> int | None:
    """The first byte of fp + o .. + size not yet written, if any."""
    missing = ~(st.init >> (o + B.MAX_BPF_STACK)) & ((1 << size) - 1)
    return (missing & -missing).bit_length() - 1 if missing else None


def _sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class Verifier:
    def __init__(self, insns: list[tuple[int, int, int, int, int]], maps: dict[int, Map],
                 privileged: bool) -> None:
        """insns: (code, dst, src, off, imm); maps: the map of each
        ld_imm64 that names one, by instruction index."""
        self.insns, self.maps, self.priv = insns, maps, privileged
        self.processed = 0
        self.next_id = 0

    def fail(self, errno: int, msg: str) -> None:
        raise VerifyError(errno, msg, self.processed)

    # -- check_cfg ---------------------------------------------------------------
    def check_cfg(self) -> None:
        n = len(self.insns)
        second = {pc + 1 for pc, i in enumerate(self.insns) if i[0] == B.BPF_LD | B.BPF_IMM | B.BPF_DW}
        seen = [False] * n
        todo = [0]
        while todo:
            pc = todo.pop()
            if seen[pc]:
                continue
            seen[pc] = True
            code, _, _, off, _ = self.insns[pc]
            cls, op = code & 7, code & 0xF0
            width = 2 if code == B.BPF_LD | B.BPF_IMM | B.BPF_DW else 1
            if cls in (B.BPF_JMP, B.BPF_JMP32) and op == B.BPF_EXIT:
                continue
            targets = [pc + width]
            if cls in (B.BPF_JMP, B.BPF_JMP32) and op != B.BPF_CALL:
                targets = [pc + 1 + off] if op == B.BPF_JA else [pc + 1, pc + 1 + off]
            for t in targets:
                if not 0 <= t < n:
                    self.fail(E.EINVAL, f"jump out of range from insn {pc} to {t}")
                if t in second:
                    self.fail(E.EINVAL, f"jump into the middle of ldimm64 insn {t - 1}")
                if t <= pc:
                    self.fail(E.EINVAL, f"back-edge from insn {pc} to {t}")
                todo.append(t)
        for pc in range(n):
            if not seen[pc] and pc not in second:
                self.fail(E.EINVAL, f"unreachable insn {pc}")

    # -- do_check ----------------------------------------------------------------
    def check(self) -> None:
        self.check_cfg()
        paths = [(0, State())]
        while paths:
            pc, st = paths.pop()
            while pc is not None:
                self.processed += 1
                if self.processed > COMPLEXITY_LIMIT:
                    self.fail(E.E2BIG, f"BPF program is too large. Processed {self.processed} insn")
                pc = self.step(pc, st, paths)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def readable(self, st: State, r: int) -> Reg:
        reg = st.regs[r]
        if reg.type == NOT_INIT:
            self.fail(E.EACCES, f"R{r} !read_ok")
        return reg

    def writable(self, r: int) -> None:
        if r == B.BPF_REG_FP:
            self.fail(E.EACCES, "frame pointer is read only")

    def step(self, pc: int, st: State, paths: list) -> int | None:
        code, dst, src, off, imm = self.insns[pc]
        if dst >= B.MAX_BPF_REG or src >= B.MAX_BPF_REG:
            self.fail(E.EINVAL, f"R{max(dst, src)} is invalid")
        cls = code & 7
        if cls in (B.BPF_ALU, B.BPF_ALU64):
            self.alu(st, code, dst, src, off, imm)
        elif cls in (B.BPF_JMP, B.BPF_JMP32):
            return self.jmp(pc, st, code, dst, src, off, imm, paths)
        elif cls == B.BPF_LDX:
            self.ldx(st, code, dst, src, off, imm)
        elif cls in (B.BPF_ST, B.BPF_STX):
            self.store(st, code, dst, src, off, imm)
        elif code == B.BPF_LD | B.BPF_IMM | B.BPF_DW:
            self.ld_imm64(pc, st, dst, src, off, imm)
            return pc + 2
        else:
            self.ld_pkt(st, code, dst, src, off, imm)
        return pc + 1

    # -- ALU -----------------------------------------------------------------------
    def alu(self, st: State, code: int, dst: int, src: int, off: int, imm: int) -> None:
        op, is64, by_reg = code & 0xF0, code & 7 == B.BPF_ALU64, code & B.BPF_X
        name = "BPF_ALU"
        if op == B.BPF_END:
            if src or off or imm not in (16, 32, 64) or is64:
                self.fail(E.EINVAL, "BPF_END uses reserved fields")
        elif op == B.BPF_NEG:
            if by_reg or src or off or imm:
                self.fail(E.EINVAL, "BPF_NEG uses reserved fields")
        elif (by_reg and (imm or off)) or (not by_reg and (src or off)):
            name = "BPF_MOV" if op == B.BPF_MOV else name
            self.fail(E.EINVAL, f"{name} uses reserved fields")
        if op not in OP_NAMES:
            self.fail(E.EINVAL, f"invalid BPF_ALU opcode {op:x}")
        if not by_reg and op in (B.BPF_DIV, B.BPF_MOD) and imm == 0:
            self.fail(E.EINVAL, "div by zero")
        if not by_reg and op in (B.BPF_LSH, B.BPF_RSH, B.BPF_ARSH) and not 0 <= imm < (64 if is64 else 32):
            self.fail(E.EINVAL, f"invalid shift {imm}")
        if op in (B.BPF_END, B.BPF_NEG):
            s = scalar(0)                 # no source (BPF_END's X bit means big endian)
        else:
            s = self.readable(st, src) if by_reg else scalar(interp.operand(code, imm))
        if op != B.BPF_MOV:
            self.readable(st, dst)
        self.writable(dst)
        d = st.regs[dst]
        if op == B.BPF_MOV:
            if is64:
                st.regs[dst] = s.copy()
            elif s.is_ptr:
                if not self.priv:
                    self.fail(E.EACCES, f"R{src} partial copy of pointer")
                st.regs[dst] = scalar()
            else:
                st.regs[dst] = scalar(None if s.val is None else s.val & interp.M32)
            return
        if d.is_ptr or s.is_ptr:
            st.regs[dst] = self.ptr_alu(op, is64, dst, src, d, s)
            return
        if op == B.BPF_END:
            known = d.val is not None
            st.regs[dst] = scalar(interp.endian(d.val, imm, bool(by_reg)) if known else None)
            return
        if d.val is None or s.val is None:
            st.regs[dst] = scalar()
            return
        mask = M64 if is64 else interp.M32
        fn = (interp.ALU64_OPS if is64 else interp.ALU32_OPS)[op]
        st.regs[dst] = scalar(fn(d.val & mask, s.val & mask) & mask)

    def ptr_alu(self, op: int, is64: bool, dst: int, src: int, d: Reg, s: Reg) -> Reg:
        """adjust_ptr_min_max_vals: pointer +/- scalar, and its limits."""
        opname = OP_NAMES[op]
        if d.is_ptr and s.is_ptr:
            if op == B.BPF_SUB and is64 and self.priv:
                return scalar()
            self.fail(E.EACCES, f"R{dst} pointer {opname} pointer prohibited")
        if not is64:
            self.fail(E.EACCES, f"R{dst} 32-bit pointer arithmetic prohibited")
        ptr, other = (d, s) if d.is_ptr else (s, d)
        if ptr.type in NON_NULL:
            self.fail(E.EACCES, f"R{dst} pointer arithmetic on {NAMES[ptr.type]} prohibited, "
                      "null-check it first")
        if ptr.type == MAP_PTR:
            self.fail(E.EACCES, f"R{dst} pointer arithmetic on map_ptr prohibited")
        if not d.is_ptr and op == B.BPF_SUB:
            self.fail(E.EACCES, f"R{dst} tried to subtract pointer from scalar")
        if op not in (B.BPF_ADD, B.BPF_SUB):
            if d.is_ptr or not self.priv:
                self.fail(E.EACCES, f"R{dst} bitwise operator {opname} on pointer prohibited")
            return scalar()
        out = ptr.copy()
        if other.val is None:
            out.var = True
            return out
        v = _sext(other.val, 64)
        if not -MAX_VAR_OFF < v < MAX_VAR_OFF:
            self.fail(E.EINVAL, f"math between {NAMES[ptr.type]} pointer and {v} is not allowed")
        out.off = ptr.off + (v if op == B.BPF_ADD else -v)
        if not -MAX_VAR_OFF < out.off < MAX_VAR_OFF:
            self.fail(E.EINVAL, f"value {out.off} makes {NAMES[ptr.type]} pointer be out of bounds")
        if not self.priv and not out.var:
            if out.type == STACK and not -B.MAX_BPF_STACK <= out.off < 0:
                self.fail(E.EACCES, f"R{dst} stack pointer arithmetic goes out of range, "
                          f"prohibited for !root; off={out.off}")
            if out.type == MAP_VALUE and not 0 <= out.off < out.map.value_size:
                self.fail(E.EACCES, f"R{dst} pointer arithmetic of map value goes out of range, "
                          "prohibited for !root")
        return out

    # -- jumps ---------------------------------------------------------------------
    def jmp(self, pc: int, st: State, code: int, dst: int, src: int, off: int, imm: int,
            paths: list) -> int | None:
        op, is32 = code & 0xF0, code & 7 == B.BPF_JMP32
        by_reg = code & B.BPF_X
        if op == B.BPF_JA:
            if is32 or by_reg or src or dst or imm:
                self.fail(E.EINVAL, "BPF_JA uses reserved fields")
            return pc + 1 + off
        if op == B.BPF_EXIT:
            if is32 or by_reg or src or dst or imm or off:
                self.fail(E.EINVAL, "BPF_EXIT uses reserved fields")
            return self.exit(st)
        if op == B.BPF_CALL:
            if is32 or by_reg or off or dst:
                self.fail(E.EINVAL, "BPF_CALL uses reserved fields")
            self.call(pc, st, src, imm)
            return pc + 1
        cond = interp.CONDS.get(op) or interp.SIGNED_CONDS.get(op)
        if cond is None:
            self.fail(E.EINVAL, f"invalid BPF_JMP/JMP32 opcode {op:x}")
        if (by_reg and imm) or (not by_reg and src):
            self.fail(E.EINVAL, "BPF_JMP/JMP32 uses reserved fields")
        d = self.readable(st, dst)
        s = self.readable(st, src) if by_reg else scalar(interp.operand(code, imm))
        taken, fall = pc + 1 + off, pc + 1
        if not by_reg and imm == 0 and op in (B.BPF_JEQ, B.BPF_JNE) and d.type in NON_NULL and not is32:
            other = st.copy()
            null_st, ok_st = (other, st) if op == B.BPF_JEQ else (st, other)
            self.mark_null(null_st, d.id, True)
            self.mark_null(ok_st, d.id, False)
            paths.append((taken, other))
            return fall
        if d.is_ptr or s.is_ptr:
            if d.is_ptr and not s.is_ptr and s.val == 0 and op in (B.BPF_JEQ, B.BPF_JNE) \
                    and d.type not in NON_NULL:
                return fall if op == B.BPF_JEQ else taken     # a pointer is never NULL
            if not self.priv or is32:
                self.fail(E.EACCES, f"R{dst} pointer comparison prohibited")
        elif d.val is not None and s.val is not None:
            sign = op in interp.SIGNED_CONDS
            conv = (lambda x: _sext(x, 32 if is32 else 64)) if sign else \
                (lambda x: x & (interp.M32 if is32 else M64))
            return taken if cond(conv(d.val), conv(s.val)) else fall
        paths.append((taken, st.copy()))
        return fall

    def mark_null(self, st: State, rid: int, is_null: bool) -> None:
        for i, r in enumerate(st.regs):
            if r.id == rid and r.type in NON_NULL:
                if is_null:
                    st.regs[i] = scalar(0)
                else:
                    r.type = NON_NULL[r.type]
        for k, r in list(st.spills.items()):
            if r.id == rid and r.type in NON_NULL:
                if is_null:
                    st.spills[k] = scalar(0)
                else:
                    r.type = NON_NULL[r.type]
        if is_null:
            st.refs.pop(rid, None)

    def exit(self, st: State) -> None:
        r0 = self.readable(st, 0)
        if r0.is_ptr and not self.priv:
            self.fail(E.EACCES, "R0 leaks addr as return value")
        for ref, at in st.refs.items():
            self.fail(E.EINVAL, f"Unreleased reference id={ref} alloc_insn={at}")
        return None

    # -- helper calls ----------------------------------------------------------------
    def call(self, pc: int, st: State, src: int, imm: int) -> None:
        if src == B.BPF_PSEUDO_CALL:
            self.fail(E.EINVAL, "bpf-to-bpf calls are not supported by this kernel")
        if src == B.BPF_PSEUDO_KFUNC_CALL:
            self.fail(E.EINVAL, "calling kernel functions is not supported")
        if src:
            self.fail(E.EINVAL, "BPF_CALL uses reserved fields")
        name = HELPER_NAMES.get(imm)
        if name is None:
            self.fail(E.EINVAL, f"invalid func unknown#{imm}")
        regs = st.regs
        r0 = scalar()
        if imm in (B.BPF_FUNC_map_lookup_elem, B.BPF_FUNC_map_update_elem, B.BPF_FUNC_map_delete_elem):
            m = self.map_arg(st, 1, name, imm, ring=False)
            self.mem_arg(st, 2, m.key_size, write=False)
            if imm == B.BPF_FUNC_map_update_elem:
                self.mem_arg(st, 3, m.value_size, write=False)
                self.scalar_arg(st, 4)
            if imm == B.BPF_FUNC_map_lookup_elem:
                r0 = Reg(MAP_VALUE_OR_NULL, bpf_map=m, rid=self.new_id())
        elif imm == B.BPF_FUNC_ringbuf_reserve:
            self.map_arg(st, 1, name, imm, ring=True)
            size = self.const_arg(st, 2)
            self.scalar_arg(st, 3)
            rid = self.new_id()
            r0 = Reg(MEM_OR_NULL, size=size, rid=rid, ref=rid)
            st.refs[rid] = pc
        elif imm in (B.BPF_FUNC_ringbuf_submit, B.BPF_FUNC_ringbuf_discard):
            self.release_arg(st, 1)
            self.scalar_arg(st, 2)
        elif imm == B.BPF_FUNC_ringbuf_output:
            self.map_arg(st, 1, name, imm, ring=True)
            self.mem_arg(st, 2, self.const_arg(st, 3), write=False)
            self.scalar_arg(st, 4)
        elif imm == B.BPF_FUNC_ringbuf_query:
            self.map_arg(st, 1, name, imm, ring=True)
            self.scalar_arg(st, 2)
        for r in range(1, 6):
            regs[r] = Reg()
        regs[0] = r0

    def arg_type(self, st: State, r: int, want: str) -> Reg:
        reg = self.readable(st, r)
        self.fail(E.EACCES, f"R{r} type={NAMES[reg.type]} expected={want}")
        return reg

    def map_arg(self, st: State, r: int, name: str, func: int, ring: bool) -> Map:
        reg = self.readable(st, r)
        if reg.type != MAP_PTR:
            self.arg_type(st, r, "map_ptr")
        if isinstance(reg.map, RingBufMap) != ring:
            self.fail(E.EINVAL, f"cannot pass map_type {reg.map.map_type} into func {name}#{func}")
        return reg.map

    def scalar_arg(self, st: State, r: int) -> Reg:
        reg = self.readable(st, r)
        if reg.is_ptr:
            self.arg_type(st, r, "scalar")
        return reg

    def const_arg(self, st: State, r: int) -> int:
        reg = self.scalar_arg(st, r)
        if reg.val is None:
            self.fail(E.EACCES, f"R{r} is not a known constant'")
        return reg.val

    def mem_arg(self, st: State, r: int, size: int, write: bool) -> None:
        """A pointer to size bytes a helper reads (or fills)."""
        reg = self.readable(st, r)
        if reg.type not in (STACK, MAP_VALUE, MEM):
            self.arg_type(st, r, "fp")
        if reg.var:
            self.fail(E.EACCES, f"R{r} variable offset access prohibited")
        if reg.type == STACK:
            o = reg.off
            if o < -B.MAX_BPF_STACK or o + size > 0 or size < 0:
                self.fail(E.EACCES, f"invalid indirect access to stack R{r} off={o} size={size}")
            gap = _first_uninit(st, o, size)
            if gap is not None:
                self.fail(E.EACCES, f"invalid indirect read from stack R{r} off {o}+{gap} size {size}")
        else:
            self.object_bounds(r, reg, reg.off, size)

    def release_arg(self, st: State, r: int) -> None:
        reg = self.readable(st, r)
        if reg.type != MEM or not reg.ref:
            self.arg_type(st, r, "alloc_mem")
        if reg.var:
            self.fail(E.EACCES, f"variable alloc_mem access R{r} disallowed")
        if reg.off < 0:
            self.fail(E.EACCES, f"negative offset alloc_mem ptr R{r} off={reg.off} disallowed")
        if reg.off:
            self.fail(E.EACCES, f"dereference of modified alloc_mem ptr R{r} off={reg.off} disallowed")
        ref = reg.ref
        del st.refs[ref]
        for i, x in enumerate(st.regs):
            if x.ref == ref:
                st.regs[i] = Reg()
        for k, x in list(st.spills.items()):
            if x.ref == ref:
                st.spills[k] = scalar()

    # -- memory ----------------------------------------------------------------------
    def object_bounds(self, r: int, reg: Reg, o: int, size: int) -> None:
        if reg.type == MAP_VALUE:
            if o < 0 or o + size > reg.map.value_size:
                self.fail(E.EACCES, f"invalid access to map value, value_size={reg.map.value_size} "
                          f"off={o} size={size}")
        elif o < 0 or o + size > reg.size:
            self.fail(E.EACCES, f"invalid access to memory, mem_size={reg.size} off={o} size={size}")

    def access(self, st: State, r: int, off: int, size: int, value: Reg | None) -> Reg:
        """check_mem_access: a load (value None: the loaded type comes back)
        or a store of value through register r."""
        reg = st.regs[r]
        o = reg.off + off
        if reg.type in (MAP_VALUE, MEM, STACK) and reg.var:
            self.fail(E.EACCES, f"R{r} unbounded memory access, make sure to bounds check any such access")
        if reg.type == STACK:
            if o < -B.MAX_BPF_STACK or o + size > 0:
                self.fail(E.EACCES, f"invalid stack off={o} size={size}")
            if o % size:
                self.fail(E.EACCES, f"misaligned stack access off ({reg.off})+{off} size {size}")
            return self.stack_read(st, r, o, size) if value is None else self.stack_write(st, o, size, value)
        if reg.type in (MAP_VALUE, MEM):
            self.object_bounds(r, reg, o, size)
        elif reg.type == CTX:
            if reg.off or reg.var:
                self.fail(E.EACCES, f"dereference of modified ctx ptr R{r} off={reg.off} disallowed")
            if not self.ctx_ok(o, size, value is not None):
                self.fail(E.EACCES, f"invalid bpf_context access off={o} size={size}")
        else:
            self.fail(E.EACCES, f"R{r} invalid mem access '{NAMES[reg.type]}'")
        if value is not None and value.is_ptr and not self.priv:
            self.fail(E.EACCES, f"R{r} leaks addr into {'map' if reg.type == MAP_VALUE else 'mem'}")
        return scalar()

    @staticmethod
    def ctx_ok(o: int, size: int, write: bool) -> bool:
        """sk_filter_is_valid_access: struct __sk_buff, cb[] writable."""
        if o < 0 or size not in (1, 2, 4, 8) or o % size:
            return False
        if B.SK_BUFF_CB <= o and o + size <= B.SK_BUFF_CB_END:
            return True
        return not write and size == 4 and o + size <= B.SK_BUFF_READABLE_END

    def stack_write(self, st: State, o: int, size: int, value: Reg) -> Reg:
        slot = o - o % 8
        old = st.spills.get(slot)
        if size == 8:
            st.spills[slot] = value.copy()
        else:
            if (value.is_ptr or (old is not None and old.is_ptr)) and not self.priv:
                self.fail(E.EACCES, "attempt to corrupt spilled pointer on stack")
            st.spills.pop(slot, None)
        st.init |= ((1 << size) - 1) << (o + B.MAX_BPF_STACK)
        return value

    def stack_read(self, st: State, r: int, o: int, size: int) -> Reg:
        gap = _first_uninit(st, o, size)
        if gap is not None:
            self.fail(E.EACCES, f"invalid read from stack R{r} off {o}+{gap} size {size}")
        spill = st.spills.get(o - o % 8)
        if spill is None:
            return scalar()
        if size == 8:
            return spill.copy()
        if spill.is_ptr and not self.priv:
            self.fail(E.EACCES, f"leaking pointer from stack off {o}")
        return scalar()

    def ldx(self, st: State, code: int, dst: int, src: int, off: int, imm: int) -> None:
        size = B.SIZE_BYTES[code & 0x18]
        if code & 0xE0 != B.BPF_MEM or imm:
            self.fail(E.EINVAL, "BPF_LDX uses reserved fields")
        self.readable(st, src)
        self.writable(dst)
        st.regs[dst] = self.access(st, src, off, size, None)

    def store(self, st: State, code: int, dst: int, src: int, off: int, imm: int) -> None:
        size = B.SIZE_BYTES[code & 0x18]
        mode = code & 0xE0
        if code & 7 == B.BPF_ST:
            if mode != B.BPF_MEM or src:
                self.fail(E.EINVAL, "BPF_ST uses reserved fields")
            self.readable(st, dst)
            self.access(st, dst, off, size, scalar(_sext(imm, 32)))
            return
        if mode == B.BPF_ATOMIC:
            self.atomic(st, size, dst, src, off, imm)
            return
        if mode != B.BPF_MEM or imm:
            self.fail(E.EINVAL, "BPF_STX uses reserved fields")
        value = self.readable(st, src)
        self.readable(st, dst)
        self.access(st, dst, off, size, value)

    def atomic(self, st: State, size: int, dst: int, src: int, off: int, imm: int) -> None:
        ops = {B.BPF_ADD, B.BPF_OR, B.BPF_AND, B.BPF_XOR}
        if imm not in ops | {o | B.BPF_FETCH for o in ops} | {B.BPF_XCHG, B.BPF_CMPXCHG}:
            self.fail(E.EINVAL, f"BPF_ATOMIC uses invalid atomic opcode {imm:02x}")
        if size not in (4, 8):
            self.fail(E.EINVAL, "invalid atomic operand size")
        value = self.readable(st, src)
        self.readable(st, dst)
        if imm == B.BPF_CMPXCHG:
            self.readable(st, 0)
        if value.is_ptr:
            self.fail(E.EACCES, f"R{src} leaks addr into mem")
        if st.regs[dst].type == CTX:
            self.fail(E.EACCES, f"BPF_ATOMIC stores into R{dst} ctx is not allowed")
        self.access(st, dst, off, size, None)
        self.access(st, dst, off, size, scalar())
        if imm == B.BPF_CMPXCHG:
            st.regs[0] = scalar()
        elif imm & B.BPF_FETCH:
            self.writable(src)
            st.regs[src] = scalar()

    def ld_imm64(self, pc: int, st: State, dst: int, src: int, off: int, imm: int) -> None:
        self.writable(dst)
        hi = self.insns[pc + 1][4]
        if src == 0:
            st.regs[dst] = scalar((imm & interp.M32) | (hi & interp.M32) << 32)
            return
        m = self.maps[pc]
        if src == B.BPF_PSEUDO_MAP_FD:
            st.regs[dst] = Reg(MAP_PTR, bpf_map=m)
            return
        if not isinstance(m, ArrayMap) or m.max_entries != 1:
            self.fail(E.EINVAL, f"direct value access on map type {m.map_type} is not supported")
        if not 0 <= hi < m.value_size:
            self.fail(E.EACCES, f"invalid access to map value pointer, value_size={m.value_size} off={hi}")
        st.regs[dst] = Reg(MAP_VALUE, off=hi, bpf_map=m)

    def ld_pkt(self, st: State, code: int, dst: int, src: int, off: int, imm: int) -> None:
        mode = code & 0xE0
        if mode not in (B.BPF_ABS, B.BPF_IND) or code & 0x18 == B.BPF_DW or dst or off or \
                (mode == B.BPF_ABS and src):
            self.fail(E.EINVAL, "BPF_LD_[ABS|IND] uses reserved fields")
        if st.regs[6].type != CTX:
            self.fail(E.EINVAL, "at the time of BPF_LD_ABS|IND R6 != pointer to skb")
        if mode == B.BPF_IND and self.readable(st, src).is_ptr:
            self.fail(E.EACCES, f"R{src} leaks addr into packet offset")
        for r in range(1, 6):
            st.regs[r] = Reg()
        st.regs[0] = scalar()
