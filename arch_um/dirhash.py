"""ext4's directory-name hash, compiled (umlpy_dirhash in _hostcall.c).

Pure computation, no host call: it lives here because arch_um holds the
project's compiled helpers and the kernel image (a zip of Python) cannot
carry C.  fs/ext4/dirhash.py chooses the hash and reads its result; this
only runs it.  In Python, half-MD4 alone took longer than the rest of a
lookup in an indexed directory.
"""
from __future__ import annotations

from arch_um._hostcall import lib

LEGACY, HALF_MD4, TEA = 0, 1, 2


def compute(name: bytes, kind: int, signed: bool, seed: tuple[int, int, int, int]) -> tuple[int, int]:
    """(major, minor) as the hash leaves them, before the index masks major:
    kind is LEGACY, HALF_MD4 or TEA, signed whether bytes are read as
    signed chars, seed the four starting words (not used by LEGACY)."""
    v = lib.umlpy_dirhash(name, len(name), kind, signed, *seed)
    return v >> 32, v & 0xFFFFFFFF
