"""A read-only extent-tree walk, for the journal inode of ext4 images.

mke2fs -t ext4 maps the journal inode with extents.  Recovery only needs
that inode's logical-to-physical map, so this is the smallest reader that
gives it; the ext4 driver's extent code replaces it.  The tree is on disk
and untrusted: every header, count, depth and block number is checked.
"""
from __future__ import annotations

import struct
from typing import Callable

from umlpy.abi import errno as E
from umlpy.kernel.errors import KernelError

EXT_MAGIC = 0xF30A
EXT_HEADER = struct.Struct("<HHHHI")        # magic, entries, max, depth, generation
EXT_ENTRY = struct.Struct("<IHHI")          # leaf: block, len, start_hi, start_lo
EXT_INDEX = struct.Struct("<IIHH")          # index: block, leaf_lo, leaf_hi, unused
EXT_MAX_DEPTH = 5
EXT_INIT_MAX_LEN = 32768                    # longer lengths mark unwritten extents


def extent_blocks(read_block: Callable[[int], bytes], root: bytes, count: int,
                  fs_blocks: int) -> list[int]:
    """Physical block of logical blocks 0..count-1 under the tree whose root
    is root (i_block's 60 bytes); 0 for a hole or an unwritten extent."""
    out = [0] * count
    _walk(read_block, root, count, fs_blocks, out, EXT_MAX_DEPTH)
    return out


def _bad(msg: str) -> KernelError:
    return KernelError(E.EUCLEAN, f"ext4: journal inode: {msg}")


def _walk(read_block: Callable[[int], bytes], node: bytes, count: int, fs_blocks: int,
          out: list[int], depth_left: int) -> None:
    magic, entries, cap, depth, _ = EXT_HEADER.unpack_from(node)
    if magic != EXT_MAGIC or entries > cap or 12 * (cap + 1) > len(node) or depth > depth_left:
        raise _bad("bad extent header")
    for k in range(entries):
        off = 12 * (k + 1)
        if depth == 0:
            lblk, length, hi, lo = EXT_ENTRY.unpack_from(node, off)
            if length > EXT_INIT_MAX_LEN:
                continue                    # unwritten: reads as zeros, maps nothing
            start = lo | hi << 32
            if start == 0 or start + length > fs_blocks:
                raise _bad(f"extent at {start} outside the filesystem")
            n = max(0, min(length, count - lblk))
            out[lblk:lblk + n] = range(start, start + n)
        else:
            _, lo, hi, _ = EXT_INDEX.unpack_from(node, off)
            child = lo | hi << 32
            if not 0 < child < fs_blocks:
                raise _bad(f"index block {child} outside the filesystem")
            _walk(read_block, read_block(child), count, fs_blocks, out, depth - 1)
