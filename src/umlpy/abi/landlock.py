"""Landlock ABI (include/uapi/linux/landlock.h) as Linux 6.1 has it:
ABI version 2, filesystem access rights only."""
from __future__ import annotations

import struct

ABI_VERSION = 2                     # 6.1: 1 (5.13) plus LANDLOCK_ACCESS_FS_REFER (5.19)

CREATE_RULESET_VERSION = 1 << 0     # landlock_create_ruleset's only flag
RULE_PATH_BENEATH = 1               # landlock_add_rule's only rule type

ACCESS_FS_EXECUTE = 1 << 0
ACCESS_FS_WRITE_FILE = 1 << 1
ACCESS_FS_READ_FILE = 1 << 2
ACCESS_FS_READ_DIR = 1 << 3
ACCESS_FS_REMOVE_DIR = 1 << 4
ACCESS_FS_REMOVE_FILE = 1 << 5
ACCESS_FS_MAKE_CHAR = 1 << 6
ACCESS_FS_MAKE_DIR = 1 << 7
ACCESS_FS_MAKE_REG = 1 << 8
ACCESS_FS_MAKE_SOCK = 1 << 9
ACCESS_FS_MAKE_FIFO = 1 << 10
ACCESS_FS_MAKE_BLOCK = 1 << 11
ACCESS_FS_MAKE_SYM = 1 << 12
ACCESS_FS_REFER = 1 << 13

NUM_ACCESS_FS = 14
MASK_ACCESS_FS = (1 << NUM_ACCESS_FS) - 1
# the rights a rule on a file (not a directory) may grant
ACCESS_FILE = ACCESS_FS_EXECUTE | ACCESS_FS_WRITE_FILE | ACCESS_FS_READ_FILE

MAX_NUM_LAYERS = 16                 # LANDLOCK_MAX_NUM_LAYERS: stacked domains

# struct landlock_ruleset_attr { __u64 handled_access_fs; }
RULESET_ATTR = struct.Struct("<Q")
# struct landlock_path_beneath_attr { __u64 allowed_access; __s32 parent_fd; } __packed
PATH_BENEATH_ATTR = struct.Struct("<Qi")
