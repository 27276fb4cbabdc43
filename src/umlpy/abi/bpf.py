"""eBPF's user ABI (include/uapi/linux/bpf.h): bpf(2) commands, the
fields of union bpf_attr the kernel reads, map and program types, the
instruction encoding, helper numbers and struct __sk_buff's layout."""
from __future__ import annotations

import struct

# bpf(2) commands
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM = 0, 1, 2
BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_PROG_LOAD = 3, 4, 5

BPF_ATTR_SIZE = 144              # sizeof(union bpf_attr) of Linux 6.1
# BPF_MAP_CREATE: map_type, key_size, value_size, max_entries, map_flags,
# inner_map_fd, numa_node, map_name[16]
MAP_CREATE = struct.Struct("<7I16s")
MAP_CREATE_END = 72              # offsetofend(map_extra): what follows must be zero
# the *_ELEM commands: map_fd, pad, key, value (or next_key), flags
MAP_ELEM = struct.Struct("<IIQQQ")
MAP_ELEM_END = MAP_ELEM.size     # lookup, update: flags is their last field
MAP_DELETE_END = 16              # key
MAP_NEXT_KEY_END = 24            # next_key
# BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size,
# log_buf, kern_version, prog_flags, prog_name[16], prog_ifindex,
# expected_attach_type
PROG_LOAD = struct.Struct("<IIQQIIQII16sII")

# map types and flags
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_RINGBUF = 1, 2, 27
BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY = 0x1, 0x4, 0x8, 0x10
BPF_F_ZERO_SEED, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG = 0x40, 0x80, 0x100
BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4
BPF_OBJ_NAME_LEN = 16
MAX_BPF_STACK = 512

# program types; log levels
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_LOG_LEVEL1, BPF_LOG_LEVEL2, BPF_LOG_STATS = 1, 2, 4
BPF_LOG_MASK = BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2 | BPF_LOG_STATS
BPF_LOG_MIN_SIZE = 128
MAX_USED_MAPS = 64               # maps one program may name
BPF_MAXINSNS = 4096              # an unprivileged program's most instructions
BPF_COMPLEXITY_LIMIT_INSNS = 1000000

# one instruction: code, dst_reg:4 | src_reg:4, off, imm
INSN = struct.Struct("<BBhi")
# instruction classes
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = range(8)
# sizes and modes (LD/LDX/ST/STX)
BPF_W, BPF_H, BPF_B, BPF_DW = 0x00, 0x08, 0x10, 0x18
SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1, BPF_DW: 8}
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_ATOMIC = 0x00, 0x20, 0x40, 0x60, 0xC0
# ALU operations
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = (i << 4 for i in range(8))
BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH, BPF_END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
BPF_K, BPF_X = 0x00, 0x08
BPF_TO_LE, BPF_TO_BE = 0x00, 0x08
# jumps
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50
BPF_JSGT, BPF_JSGE, BPF_CALL, BPF_EXIT = 0x60, 0x70, 0x80, 0x90
BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE = 0xA0, 0xB0, 0xC0, 0xD0
# atomic operations (imm of BPF_STX | BPF_ATOMIC)
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
# src_reg of BPF_LD | BPF_IMM | BPF_DW, and of BPF_CALL
BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE = 1, 2
BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL = 1, 2
MAX_BPF_REG = 11
BPF_REG_FP = 10

# helpers (enum bpf_func_id) this kernel offers socket filters
BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem, BPF_FUNC_map_delete_elem = 1, 2, 3
BPF_FUNC_ktime_get_ns, BPF_FUNC_get_prandom_u32, BPF_FUNC_get_smp_processor_id = 5, 7, 8
BPF_FUNC_ringbuf_output, BPF_FUNC_ringbuf_reserve, BPF_FUNC_ringbuf_submit = 130, 131, 132
BPF_FUNC_ringbuf_discard, BPF_FUNC_ringbuf_query = 133, 134
BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP = 1, 2
BPF_RB_AVAIL_DATA, BPF_RB_RING_SIZE, BPF_RB_CONS_POS, BPF_RB_PROD_POS = 0, 1, 2, 3
BPF_RINGBUF_HDR_SZ = 8

# struct __sk_buff: (name, offset, size) of the fields a socket filter reads
SK_BUFF_SIZE = 192
SK_BUFF_FIELDS = (("len", 0), ("pkt_type", 4), ("mark", 8), ("queue_mapping", 12),
                  ("protocol", 16), ("vlan_present", 20), ("vlan_tci", 24),
                  ("vlan_proto", 28), ("priority", 32), ("ingress_ifindex", 36),
                  ("ifindex", 40), ("tc_index", 44), ("cb", 48), ("hash", 68))
SK_BUFF_READABLE_END = 72        # tc_classid and what follows: not for socket filters
SK_BUFF_CB, SK_BUFF_CB_END = 48, 68

# setsockopt
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27               # = SO_DETACH_FILTER
